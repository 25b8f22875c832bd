"""The checkpoint format, written and read here alone.

A checkpoint is ``torch.save`` of a dict of tensors and plain data (``Trainer.state_dict``), read
back with ``weights_only=True`` so that nothing in a file can execute. The store keeps it as
opaque bytes; the executor's driver parses it here before a resume. (A finished run's weights
are an artifact file: ``cnnlab.store.artifacts``.)
"""

from __future__ import annotations

import io
import pickle
import warnings
from pathlib import Path
from typing import Any, Optional

import torch

from cnnlab.errors import StoreError, TrainError

# 2: flatten is in Keras' height-width-channel order, so a dense kernel after it means another thing.
CHECKPOINT_FORMAT = 2
CHECKPOINT_KEYS = {"format", "epochs_done", "model", "optimizer", "schedule", "rng_torch", "rng_data", "history"}
MAX_EPOCHS = 100_000  # train.epochs' upper bound in the spec
_WHAT = "checkpoint"


def serialize_state(state: dict[str, Any]) -> bytes:
    """A checkpoint file's bytes (``torch.save`` of tensors and plain data; read back with weights_only)."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def parse_checkpoint(source: Path | bytes, where: Optional[Path] = None) -> dict[str, Any]:
    """A checkpoint's state (from a file or its bytes), read with ``weights_only=True``: nothing in
    it can execute. Anything else is refused with a StoreError naming ``where`` (or the file)."""
    path = source if isinstance(source, Path) else (where or f"the {_WHAT} of this run")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's notes on pickle protocols are not the user's business
            state = torch.load(source if isinstance(source, Path) else io.BytesIO(source), map_location="cpu",
                               weights_only=True)
    except pickle.UnpicklingError:
        # torch's own message suggests weights_only=False, i.e. running the file's code: never.
        raise StoreError(f"{path}: not a valid {_WHAT}: it asks to load objects other than tensors and plain data, "
                         "which could run code, so it was refused and nothing in it ran; delete it or rerun with --force") from None
    except Exception as error:  # a damaged or cut file
        raise StoreError(f"{path}: not a valid {_WHAT} ({type(error).__name__}: {str(error)[:200]}); "
                         "delete it or rerun with --force") from None
    if not isinstance(state, dict) or not set(state) >= CHECKPOINT_KEYS:
        raise StoreError(f"{path}: not a cnnlab {_WHAT} (expected a dict with {', '.join(sorted(CHECKPOINT_KEYS))}); "
                         "delete it or rerun with --force")
    problem = _checkpoint_problem(state)
    if problem:
        raise StoreError(f"{path}: not a cnnlab {_WHAT} ({problem}); delete it or rerun with --force")
    return state


def check_format(state: dict[str, Any]) -> None:
    """Refuse a parsed checkpoint written in another format version than this cnnlab's."""
    if state.get("format") != CHECKPOINT_FORMAT:
        raise TrainError(f"checkpoint format {state.get('format')!r} is not {CHECKPOINT_FORMAT}; rerun with --force")


def _tensors(value: Any) -> bool:
    return isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in value.items())


def _checkpoint_problem(state: dict[str, Any]) -> Optional[str]:
    """What makes a dict with the checkpoint's keys unusable for a resume, or None."""
    done = state["epochs_done"]
    if not isinstance(done, int) or isinstance(done, bool) or not 0 < done <= MAX_EPOCHS:
        return f"epochs_done is {str(done)[:40]!r}, not a number of epochs"
    if not _tensors(state["model"]):
        return "its model is not a state dict of named tensors"
    for key in ("rng_torch", "rng_data"):
        if not isinstance(state[key], torch.Tensor):
            return f"{key} is not a random generator state"
    if not isinstance(state["optimizer"], dict) or not isinstance(state["schedule"], dict):
        return "its optimizer or schedule state is not a dict"
    history = state["history"]
    if not isinstance(history, list) or len(history) > done or not all(isinstance(h, dict) for h in history):
        return f"its history is not a list of at most {done} per-epoch records"
    for key in ("best_model",):
        if state.get(key) is not None and not _tensors(state[key]):
            return f"{key} is not a state dict of named tensors"
    return None
