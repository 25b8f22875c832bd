"""Running a study: the conductor (plan, pre-flight, execute, select, retrain, test once), the
driver that alone writes the store, the executors (this machine, or a Ray cluster), and the logs
written from the runs' events (TensorBoard; ``export_logs``: a store's runs to TensorBoard or MLflow)."""

from cnnlab.execute.conductor import ExecutionSettings, StudyRun, conduct, default_output
from cnnlab.execute.driver import Driver, PlanOutcome
from cnnlab.execute.export_logs import export_mlflow, export_tensorboard
from cnnlab.execute.local import execute_local
from cnnlab.execute.preflight import known_shape_problems, model_problems, preflight
from cnnlab.execute.progress import StudyProgress, make_progress
from cnnlab.execute.runner import train_run
from cnnlab.execute.tensorboard_log import LogError, TensorBoardLog

__all__ = [
    "Driver", "ExecutionSettings", "PlanOutcome", "StudyProgress", "StudyRun", "conduct", "default_output",
    "LogError", "TensorBoardLog", "execute_local", "export_mlflow", "export_tensorboard", "known_shape_problems", "make_progress", "model_problems",
    "preflight", "train_run",
]
