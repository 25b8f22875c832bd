"""Training: the loop, optimizers, schedules, early stopping, device selection, the checkpoint
format, and (in ``fast``) what makes it fast."""

from cnnlab.train.batches import Normalizer
from cnnlab.train.checkpoint import CHECKPOINT_FORMAT, parse_checkpoint, serialize_state
from cnnlab.train.device import configure_threads, environment, select_device
from cnnlab.train.evaluation import EvalResult, evaluate
from cnnlab.train.trainer import Diverged, TrainCallback, TrainData, Trainer, TrainResult

__all__ = [
    "CHECKPOINT_FORMAT", "Diverged", "EvalResult", "Normalizer", "TrainCallback", "TrainData", "TrainResult", "Trainer",
    "configure_threads", "environment", "evaluate", "parse_checkpoint", "select_device", "serialize_state",
]
