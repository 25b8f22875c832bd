"""Running a study: the conductor (plan, pre-flight, execute, select, retrain, test once), the
driver that alone writes the store, and the executors (this machine, or a Ray cluster)."""

from cnnlab.execute.conductor import ExecutionSettings, StudyRun, conduct, default_output
from cnnlab.execute.driver import Driver, PlanOutcome
from cnnlab.execute.local import execute_local
from cnnlab.execute.preflight import known_shape_problems, model_problems, preflight
from cnnlab.execute.progress import StudyProgress, make_progress
from cnnlab.execute.runner import train_run

__all__ = [
    "Driver", "ExecutionSettings", "PlanOutcome", "StudyProgress", "StudyRun", "conduct", "default_output",
    "execute_local", "known_shape_problems", "make_progress", "model_problems", "preflight", "train_run",
]
