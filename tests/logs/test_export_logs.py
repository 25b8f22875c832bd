"""``cnnlab export-logs``: a finished store as TensorBoard files (read back with TensorBoard's event
reader) and in a real MLflow file store (read back with MlflowClient), and its bad input."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest

from cnnlab.api import open_store, run_study
from cnnlab.execute.tensorboard_log import flat_config
from cnnlab.store.schema import EPOCH_COLUMNS
from tests.cli.conftest import cnnlab
from tests.conftest import TINY_STUDY

from .conftest import assert_logs_equal_store, hparams, scalars, store_runs


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished two-run study, trained without logs (exports only read it)."""
    folder = tmp_path_factory.mktemp("export") / "out"
    assert run_study(copy.deepcopy(TINY_STUDY), folder).outcome.ok
    return folder


def test_export_to_tensorboard_writes_each_run_as_the_store_holds_it_and_again_replaces_it(finished, tmp_path):
    for _ in range(2):  # exported twice: each run's earlier files are replaced, no epoch shows twice
        result = cnnlab("export-logs", finished, "--tensorboard", tmp_path / "tb")
        assert result.returncode == 0, result.stderr
        assert "Wrote 2 run(s) of study 'tiny'" in result.stdout
        assert f"tensorboard --logdir {tmp_path / 'tb'}" in result.stdout
        read = assert_logs_equal_store(tmp_path / "tb", finished)
    for run_id, run in store_runs(finished).items():
        assert hparams(read[run_id])["variant"] == run["record"].variant
        assert scalars(read[run_id], "final/val_accuracy") == [(3, pytest.approx(run["record"].val_accuracy))]


def test_export_to_mlflow_gives_one_run_per_run_with_params_metrics_tags_and_files(finished, tmp_path, monkeypatch):
    from mlflow.tracking import MlflowClient

    uri = (tmp_path / "mlruns").as_uri()
    result = cnnlab("export-logs", finished, "--mlflow", uri)
    assert result.returncode == 0, result.stderr
    assert "Exported 2 run(s) of study 'tiny' to MLflow experiment 'tiny'" in result.stdout
    # MLflow 3 reads its file store only when allowed, as the command says.
    assert f"MLFLOW_ALLOW_FILE_STORE=true mlflow ui --backend-store-uri {uri}" in result.stdout
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("tiny")
    exported = {run.data.tags["run_id"]: run for run in client.search_runs([experiment.experiment_id])}
    stored = store_runs(finished)
    assert sorted(exported) == sorted(stored)
    with open_store(finished) as store:
        for run_id, run in exported.items():
            record, epochs = stored[run_id]["record"], stored[run_id]["epochs"]
            assert run.info.status == "FINISHED"
            assert run.info.run_name == f"small-{record.variant}_repeat0_{run_id}"
            assert {key: run.data.tags[key] for key in ("architecture", "variant", "phase", "status")} == {
                "architecture": "small", "variant": record.variant, "phase": "select", "status": "done"}
            assert run.data.params == {key: str(value) for key, value in flat_config(record.config).items()}
            assert run.data.params["train.optimizer.lr"] == "0.01"
            for column in EPOCH_COLUMNS:
                history = [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, column)]
                assert history == [(e["epoch"] + 1, e[column]) for e in epochs if e.get(column) is not None], column
            assert run.data.metrics["final/test_accuracy"] == record.test_accuracy
            files = {item.path for item in client.list_artifacts(run.info.run_id)}
            assert files == {"weights.safetensors", "predictions.npz"}
            local = client.download_artifacts(run.info.run_id, "weights.safetensors", str(tmp_path))
            assert Path(local).read_bytes() == store.artifact_bytes(run_id, "weights")

    again = cnnlab("export-logs", finished, "--mlflow", uri)
    assert again.returncode == 0 and "Exported 0 run(s)" in again.stdout and "(2 already there)" in again.stdout
    assert len(client.search_runs([experiment.experiment_id])) == 2


def _clean_error(result: subprocess.CompletedProcess, *words: str) -> None:
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr and result.stderr.startswith("error: ")
    for word in words:
        assert word in result.stderr


def test_an_unknown_store_is_one_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    _clean_error(cnnlab("export-logs", tmp_path / "empty", "--tensorboard", tmp_path / "tb"), "no cnnlab store")
    assert not (tmp_path / "tb").exists()


def test_an_unwritable_destination_is_one_clear_error_and_nothing_written(finished, tmp_path):
    (tmp_path / "file").write_text("in the way")
    _clean_error(cnnlab("export-logs", finished, "--tensorboard", tmp_path / "file" / "tb"), "cannot write",
                 "is a file, not a folder")
    _clean_error(cnnlab("export-logs", finished, "--mlflow", (tmp_path / "file" / "mlruns").as_uri()),
                 "cannot write MLflow runs")
    assert (tmp_path / "file").read_text() == "in the way"


@pytest.mark.parametrize(("blocked", "option"), [(["mlflow"], "--mlflow"),
                                                 (["tensorboard", "torch.utils.tensorboard"], "--tensorboard")])
def test_a_missing_package_names_the_extra(finished, tmp_path, blocked, option):
    # A real cnnlab process in which the package cannot be imported.
    code = f"import sys; sys.modules.update(dict.fromkeys({blocked!r})); from cnnlab.cli import main; sys.exit(main())"
    target = (tmp_path / "mlruns").as_uri() if option == "--mlflow" else str(tmp_path / "tb")
    result = subprocess.run([sys.executable, "-c", code, "export-logs", str(finished), option, target],
                            capture_output=True, text=True, timeout=300)
    _clean_error(result, "pip install 'cnnlab[logs]'")
    assert list(tmp_path.iterdir()) == []


def test_export_logs_needs_one_destination(finished):
    result = cnnlab("export-logs", finished)
    assert result.returncode == 2 and "one of the arguments --tensorboard --mlflow is required" in result.stderr
