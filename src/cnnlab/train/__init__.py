"""Training: the loop, optimizers, schedules, early stopping, device selection."""

from cnnlab.train.batches import Normalizer
from cnnlab.train.device import configure_threads, environment, select_device
from cnnlab.train.evaluation import EvalResult, evaluate
from cnnlab.train.trainer import Diverged, TrainCallback, TrainData, Trainer, TrainResult

__all__ = [
    "Diverged", "EvalResult", "Normalizer", "TrainCallback", "TrainData", "TrainResult", "Trainer",
    "configure_threads", "environment", "evaluate", "select_device",
]
