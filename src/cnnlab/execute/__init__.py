"""Running a study: the conductor (plan, pre-flight, execute, select, retrain, test once), the
driver that alone writes the store, the executors (this machine, or a Ray cluster), and the logs
written from the runs' events (TensorBoard; ``export_logs``: a store's runs to TensorBoard or MLflow).

The names below are imported on first use (PEP 562): a worker process imports
``cnnlab.execute.local`` and ``runner`` only, and importing the conductor with them (the analysis,
hence SciPy) cost each of the quickstart's workers 0.7 s of its start (2.0 s against 1.3 s).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_WHERE = {
    "ExecutionSettings": "conductor", "StudyRun": "conductor", "conduct": "conductor", "default_output": "conductor",
    "Driver": "driver", "PlanOutcome": "driver",
    "export_mlflow": "export_logs", "export_tensorboard": "export_logs",
    "execute_local": "local",
    # (not the function preflight: once its module is imported, that name is the module)
    "known_shape_problems": "preflight", "model_problems": "preflight",
    "StudyProgress": "progress", "make_progress": "progress",
    "train_run": "runner",
    "LogError": "tensorboard_log", "TensorBoardLog": "tensorboard_log",
}

__all__ = [
    "Driver", "ExecutionSettings", "LogError", "PlanOutcome", "StudyProgress", "StudyRun", "TensorBoardLog",
    "conduct", "default_output", "execute_local", "export_mlflow", "export_tensorboard", "known_shape_problems",
    "make_progress", "model_problems", "train_run",
]

if TYPE_CHECKING:  # what type checkers and readers see; at run time __getattr__ imports on demand
    from cnnlab.execute.conductor import ExecutionSettings, StudyRun, conduct, default_output
    from cnnlab.execute.driver import Driver, PlanOutcome
    from cnnlab.execute.export_logs import export_mlflow, export_tensorboard
    from cnnlab.execute.local import execute_local
    from cnnlab.execute.preflight import known_shape_problems, model_problems
    from cnnlab.execute.progress import StudyProgress, make_progress
    from cnnlab.execute.runner import train_run
    from cnnlab.execute.tensorboard_log import LogError, TensorBoardLog


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    globals()[name] = value
    return value
