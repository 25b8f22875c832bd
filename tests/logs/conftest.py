"""Reading logs back as their users' tools do: TensorBoard's own event reader, and the store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cnnlab.api import open_store

# The TensorBoard tag of each store epochs column (what a user finds in the SCALARS tab).
TAGS = {"train_loss": "loss/train", "val_loss": "loss/val", "train_accuracy": "accuracy/train",
        "val_accuracy": "accuracy/val", "penalty": "train/penalty", "lr": "train/lr",
        "images_per_second": "train/images_per_second", "seconds": "train/seconds_per_epoch"}


def read_events(folder: Path) -> Any:
    """A TensorBoard run folder through TensorBoard's EventAccumulator, keeping every event."""
    from tensorboard.backend.event_processing import event_accumulator as ea

    accumulator = ea.EventAccumulator(str(folder), size_guidance={ea.SCALARS: 0, ea.HISTOGRAMS: 0, ea.TENSORS: 0})
    accumulator.Reload()
    return accumulator


def scalars(accumulator: Any, tag: str) -> list[tuple[int, float]]:
    return [(event.step, event.value) for event in accumulator.Scalars(tag)]


def hparams(accumulator: Any) -> dict[str, Any]:
    """The hyperparameters TensorBoard's HPARAMS tab shows for the run."""
    from tensorboard.plugins.hparams import plugin_data_pb2

    content = accumulator.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    start = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info
    return {name: getattr(value, value.WhichOneof("kind")) for name, value in start.hparams.items()}


def store_runs(folder: Path) -> dict[str, dict[str, Any]]:
    """Run id -> its record and epochs, from the store."""
    with open_store(folder) as store:
        return {run.id: {"record": run, "epochs": store.epochs(run.id)} for run in store.runs()}


def expected_curve(epochs: list[dict[str, Any]], column: str) -> list[tuple[int, float]]:
    """A store column as TensorBoard steps: the epoch's number, 1 for the first."""
    return [(epoch["epoch"] + 1, epoch[column]) for epoch in epochs if epoch.get(column) is not None]


def assert_logs_equal_store(log_folder: Path, folder: Path) -> dict[str, Any]:
    """Each run of the store has one TensorBoard run named after it whose every per-epoch scalar is
    the store's; returns run id -> its events."""
    import pytest

    runs = store_runs(folder)
    names = {f"{run['record'].architecture}-{run['record'].variant}_repeat{run['record'].repeat}_{run_id}": run_id
             for run_id, run in runs.items()}
    assert sorted(path.name for path in log_folder.iterdir()) == sorted(names)
    read = {}
    for name, run_id in names.items():
        events = read_events(log_folder / name)
        for column, tag in TAGS.items():
            expected = expected_curve(runs[run_id]["epochs"], column)
            found = scalars(events, tag)
            assert [step for step, _ in found] == [step for step, _ in expected], (name, tag)
            assert [value for _, value in found] == pytest.approx([value for _, value in expected], rel=1e-5), (name, tag)
        read[run_id] = events
    return read
