"""TensorBoard logs written while a study trains (``train.log``, ``--tensorboard``), read back with
TensorBoard's own event reader, against the store the same study wrote."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from cnnlab.api import run_study
from cnnlab.execute.progress import StudyProgress
from cnnlab.errors import SpecError
from cnnlab.spec.loader import load_spec
from cnnlab.spec.plan import expand
from tests.cli.conftest import cnnlab, write_study

from .conftest import assert_logs_equal_store, hparams, read_events, scalars, store_runs


def test_a_study_logging_to_tensorboard_shows_every_epoch_the_store_holds_and_the_settings(tmp_path, tiny_study):
    tiny_study["train"]["log"] = ["tensorboard"]
    result = run_study(tiny_study, tmp_path / "out")
    assert result.outcome.ok and result.tensorboard == tmp_path / "out" / "tensorboard"
    read = assert_logs_equal_store(tmp_path / "out" / "tensorboard", tmp_path / "out")
    for run_id, run in store_runs(tmp_path / "out").items():
        events, record = read[run_id], run["record"]
        shown = hparams(events)
        assert shown["architecture"] == "small" and shown["variant"] == record.variant
        assert shown["train.optimizer.lr"] == pytest.approx(0.01) and shown["train.epochs"] == 3
        assert not any(name.startswith("layers.") for name in shown)  # the architecture's name says them
        for metric in ("val_accuracy", "test_accuracy", "best_val_loss"):
            assert scalars(events, f"final/{metric}") == [(3, pytest.approx(record[metric], rel=1e-6))]
        assert events.Tags()["histograms"] == []  # only when asked


def test_histograms_are_each_epochs_weights_when_asked(tmp_path, tiny_study):
    tiny_study["train"]["log"] = ["tensorboard", "histograms"]
    tiny_study["variants"] = {"none": {}}
    assert run_study(tiny_study, tmp_path / "out").outcome.ok
    (folder,) = (tmp_path / "out" / "tensorboard").iterdir()
    events = read_events(folder)
    assert sorted(events.Tags()["histograms"]) == ["weights/conv1.0.bias", "weights/conv1.0.weight",
                                                   "weights/dense1.bias", "weights/dense1.weight"]
    histogram = events.Histograms("weights/conv1.0.weight")
    assert [event.step for event in histogram] == [1, 2, 3]
    assert all(event.histogram_value.num == 4 * 1 * 3 * 3 for event in histogram)  # every weight counted
    assert histogram[0].histogram_value.sum != histogram[-1].histogram_value.sum  # it trained


def test_runs_trained_in_worker_processes_are_logged_by_the_driver_alone(tmp_path, tiny_study):
    # The workers only send events (as a Ray cluster's would, with no shared disk); the files are the driver's.
    tiny_study["train"]["log"] = ["tensorboard", "histograms"]
    assert run_study(tiny_study, tmp_path / "out", workers=2, threads=1).outcome.ok
    read = assert_logs_equal_store(tmp_path / "out" / "tensorboard", tmp_path / "out")
    for events in read.values():
        assert [event.step for event in events.Histograms("weights/dense1.weight")] == [1, 2, 3]
    # TensorBoard names an event file after the process writing it: this one, the driver.
    files = list((tmp_path / "out" / "tensorboard").glob("*/events.out.tfevents.*"))
    assert len(files) == 2 and all(f".{os.getpid()}." in path.name for path in files)


def test_logs_change_no_run_id_so_turning_them_on_trains_nothing_again(tmp_path, tiny_study):
    first = run_study(tiny_study, tmp_path / "out")
    logged = dict(tiny_study, train={**tiny_study["train"], "log": ["tensorboard", "histograms"]})
    plain_ids = [config.run_id for config in expand(load_spec(tiny_study)[0])]
    logged_ids = [config.run_id for config in expand(load_spec(logged)[0])]
    assert plain_ids == logged_ids == [config.run_id for config in first.plan]
    again = run_study(logged, tmp_path / "out")
    assert again.outcome.skipped == 2 and again.outcome.statuses == {}


class _StopAt(StudyProgress):
    """Ctrl-C at the end of one epoch of the first run."""

    def __init__(self, epoch: int):
        self.epoch = epoch

    def run_epoch(self, run_id, epoch, logs) -> None:
        if epoch == self.epoch:
            raise KeyboardInterrupt


def test_a_resumed_run_logs_each_epoch_once_as_the_store_keeps_it(tmp_path, tiny_study):
    tiny_study["train"].update(epochs=5, checkpoint_every=2, log=["tensorboard"])
    tiny_study["variants"] = {"none": {}}
    # Stopped in epoch 4 of 5, the last checkpoint after epoch 2: epoch 3, logged already, is trained again
    # (TensorBoard is told to drop it), and the store forgets epochs 3 and 4 as the log must.
    assert run_study(tiny_study, tmp_path / "out", progress=_StopAt(3)).outcome.interrupted
    assert run_study(tiny_study, tmp_path / "out").outcome.ok
    assert_logs_equal_store(tmp_path / "out" / "tensorboard", tmp_path / "out")


def test_cnnlab_run_tensorboard_writes_there_and_says_how_to_watch(tmp_path, tiny_study):
    spec = write_study(tmp_path, tiny_study)
    result = cnnlab("run", spec, "--out", tmp_path / "out", "--tensorboard", tmp_path / "tb", "--no-report")
    assert result.returncode == 0, result.stderr
    assert f"tensorboard --logdir {tmp_path / 'tb'}" in result.stderr
    assert_logs_equal_store(tmp_path / "tb", tmp_path / "out")
    assert not (tmp_path / "out" / "tensorboard").exists()


def test_logs_that_cannot_be_written_stop_the_study_before_anything_trains(tmp_path, tiny_study):
    spec = write_study(tmp_path, tiny_study)
    (tmp_path / "tb").write_text("a file, not a folder")
    result = cnnlab("run", spec, "--out", tmp_path / "out", "--tensorboard", tmp_path / "tb" / "logs", "--quiet")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "cannot write TensorBoard logs" in result.stderr and "is a file, not a folder" in result.stderr
    assert not (tmp_path / "out").exists()


def test_without_the_tensorboard_package_a_clear_error_names_the_extra(tmp_path, tiny_study):
    tiny_study["train"]["log"] = ["tensorboard"]
    spec = write_study(tmp_path, tiny_study)
    # A real cnnlab process in which the package cannot be imported.
    blocked = ("import sys; sys.modules['tensorboard'] = sys.modules['torch.utils.tensorboard'] = None; "
               "from cnnlab.cli import main; sys.exit(main())")
    result = subprocess.run([sys.executable, "-c", blocked, "run", str(spec), "--out", str(tmp_path / "out")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "pip install 'cnnlab[logs]'" in result.stderr
    assert not (tmp_path / "out").exists()


def test_histograms_without_tensorboard_is_a_spec_error(tiny_study):
    tiny_study["train"]["log"] = ["histograms"]
    with pytest.raises(SpecError, match="list tensorboard too"):
        load_spec(tiny_study)
