"""The checkpoint format: written, parsed back, and anything else refused without running it."""

from __future__ import annotations

import io
import os
import pickle

import pytest
import torch

from cnnlab.errors import StoreError, TrainError
from cnnlab.train.checkpoint import (
    CHECKPOINT_FORMAT, CHECKPOINT_KEYS, check_format, parse_checkpoint, serialize_state,
)


def _state(**changes):
    state = {"format": CHECKPOINT_FORMAT, "epochs_done": 2, "model": {"conv1.0.weight": torch.randn(4, 1, 3, 3)},
             "optimizer": {}, "schedule": {}, "rng_torch": torch.get_rng_state(),
             "rng_data": torch.Generator().get_state(), "history": [{"train_loss": 1.0}, {"train_loss": 0.5}]}
    return {**state, **changes}


class _Boom:
    def __reduce__(self):
        import os

        return (os.system, ("touch /tmp/cnnlab-pwned",))


def test_a_checkpoint_that_runs_code_or_is_not_a_state_dict_is_refused(tmp_path):
    planted = tmp_path / "checkpoint.pt"
    planted.write_bytes(pickle.dumps({"format": 1, "x": _Boom()}))
    with pytest.raises(StoreError, match="not a valid checkpoint"):
        parse_checkpoint(planted)
    buffer = io.BytesIO()
    torch.save([1, 2, 3], buffer)
    planted.write_bytes(buffer.getvalue())
    with pytest.raises(StoreError, match="not a cnnlab checkpoint"):
        parse_checkpoint(planted)
    assert not os.path.exists("/tmp/cnnlab-pwned")


def test_a_checkpoint_round_trips_through_its_bytes():
    state = _state()
    parsed = parse_checkpoint(serialize_state(state))
    assert set(parsed) == CHECKPOINT_KEYS and parsed["history"] == state["history"]
    assert torch.equal(parsed["model"]["conv1.0.weight"], state["model"]["conv1.0.weight"])
    check_format(parsed)


def test_refusals_name_the_file_they_came_from(tmp_path):
    where = tmp_path / "artifacts" / "run" / "checkpoint.pt"
    with pytest.raises(StoreError, match="not a number of epochs") as error:
        parse_checkpoint(serialize_state(_state(epochs_done=0)), where)
    assert str(where) in str(error.value) and "--force" in str(error.value)
    with pytest.raises(StoreError, match="the checkpoint of this run: not a valid checkpoint"):
        parse_checkpoint(b"half of a checkpoint")
    with pytest.raises(StoreError, match="history is not a list of at most 1"):
        parse_checkpoint(serialize_state(_state(epochs_done=1)))


def test_another_format_version_is_refused_with_what_to_do():
    with pytest.raises(TrainError, match=f"checkpoint format 1 is not {CHECKPOINT_FORMAT}; rerun with --force"):
        check_format(_state(format=1))
