"""``cnnlab export-logs``: a store's runs as TensorBoard files, or in an MLflow tracking store.

Both read the store whole first (records, epochs, and each artifact's checksum), so a damaged
store is one error before anything is written. The names are the live logs' own
(``tensorboard_log``): one TensorBoard run, or one MLflow run, per cnnlab run, named
``<configuration>_repeat<r>[_fold<f>]_<run id>``; steps are epoch numbers (1 for the first).

MLflow: an experiment named after the study; per run the flattened configuration as parameters,
each epoch's metrics (the store's names: ``val_accuracy``, ``lr``...), the final ones as
``final/<name>``, tags (architecture, variant, phase, run_id, status, repeat, fold), and the
run's weights and predictions files as artifacts. Exporting again skips the runs already there
as finished, and replaces (deletes, then writes anew) those exported unfinished or trained since.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator, Optional, Union

from cnnlab.fsutil import write_bytes_atomic
from cnnlab.execute.tensorboard_log import (INSTALL_HINT, LogError, RunLog, check_writable, config_log_name,
                                            final_metrics, flat_config, summary_writer)
from cnnlab.records import RunRecord
from cnnlab.store import Store
from cnnlab.store.schema import EPOCH_COLUMNS

# Runs still queued or training have nothing final to show; every other status is exported.
EXPORTED = ("done", "failed", "diverged", "interrupted")
MLFLOW_STATUS = {"done": "FINISHED", "failed": "FAILED", "diverged": "FAILED", "interrupted": "KILLED"}
# The run's files an MLflow run gets (store artifact kinds); examples and checkpoints stay behind.
MLFLOW_ARTIFACTS = ("weights", "predictions")
# MLflow's log_batch takes at most 100 parameters and 1,000 metrics a call.
PARAMS_PER_CALL, METRICS_PER_CALL = 100, 1000


@dataclass
class StoredRun:
    record: RunRecord
    epochs: list[dict[str, Any]]

    @property
    def config(self) -> dict[str, Any]:
        return dict(self.record.config or {})

    @property
    def name(self) -> str:
        record = self.record
        return config_log_name({"architecture": record.architecture, "variant": record.variant,
                                "sweep": record.sweep or {}, "phase": record.phase, "repeat": record.repeat,
                                "fold": record.fold}, record.id)


@dataclass
class Exported:
    """What an export did: the study, where to, and how many runs (written, already there, left out)."""

    study: str
    where: str
    written: int = 0
    already: int = 0
    left_out: int = 0  # queued or still training
    experiment: Optional[str] = None
    file_store: bool = False  # an MLflow file: store, which MLflow's own tools read only when allowed


def _read(folder: Union[str, Path], study: Optional[str], artifacts: tuple[str, ...]) -> tuple[str, list[StoredRun], int]:
    """The study's exportable runs with their epochs; every listed artifact checked against its
    recorded checksum (a StoreError before anything is written)."""
    with Store(folder, create=False) as store:
        name = store.study(study).name
        records = store.runs(name)
        runs = [StoredRun(record, store.epochs(record.id)) for record in records if record.status in EXPORTED]
        for run in runs:
            for kind in artifacts:
                store.artifact_bytes(run.record.id, kind)
    return name, runs, len(records) - len(runs)


def export_tensorboard(folder: Union[str, Path], out: Union[str, Path], study: Optional[str] = None) -> Exported:
    """Write a store's runs as TensorBoard files under ``out`` (a run's earlier files there replaced)."""
    summary_writer()
    out = Path(out)
    check_writable(out, "TensorBoard logs")
    name, runs, left_out = _read(folder, study, ())
    for written, run in enumerate(runs):
        try:
            log = RunLog(out, run.name)
            for epoch in run.epochs:
                log.epoch(epoch["epoch"], {column: epoch.get(column) for column in EPOCH_COLUMNS})
            if run.record.done:
                log.results(run.config, run.record, len(run.epochs))
            log.close()
        except OSError as error:
            raise LogError(f"cannot write TensorBoard logs to {out} ({error.strerror or error}); "
                           f"{written} of {len(runs)} runs were written (exporting again rewrites them all)") from None
    return Exported(name, str(out), written=len(runs), left_out=left_out)


# ---------------------------------------------------------------- MLflow


def _mlflow() -> Any:
    try:
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise LogError(f"exporting to MLflow needs the mlflow package (mlflow-skinny is enough), which is not "
                       f"installed: {INSTALL_HINT} (or pip install mlflow-skinny); nothing was written") from None
    return MlflowClient


def _local_path(uri: str) -> Optional[Path]:
    """The folder of a ``file:`` URI (checked before anything is read), None for other schemes."""
    if not uri.startswith("file:"):
        return None
    from urllib.parse import unquote, urlparse

    return Path(unquote(urlparse(uri).path))


def _millis(stamp: Optional[str]) -> int:
    try:
        return int(datetime.fromisoformat(str(stamp)).timestamp() * 1000)
    except ValueError:
        return int(time.time() * 1000)


# MLflow 3 keeps its file store "in maintenance" and refuses it unless this is set. A ``file:`` URI
# asks for that store by name, so the export opts in for itself (and says so: MLflow's own tools
# need the same setting to read it).
FILE_STORE_SWITCH = "MLFLOW_ALLOW_FILE_STORE"


@contextlib.contextmanager
def _file_store_allowed(local: bool) -> Iterator[None]:
    before = os.environ.get(FILE_STORE_SWITCH)
    if local and before is None:
        os.environ[FILE_STORE_SWITCH] = "true"
    try:
        yield
    finally:
        if local and before is None:
            os.environ.pop(FILE_STORE_SWITCH, None)


def export_mlflow(folder: Union[str, Path], uri: str, study: Optional[str] = None) -> Exported:
    """Write a store's runs into the MLflow tracking store at ``uri`` (experiment: the study's name)."""
    client_class = _mlflow()
    from mlflow.exceptions import MlflowException

    local = _local_path(uri)
    if local is not None:
        check_writable(local, "MLflow runs")
    name, runs, left_out = _read(folder, study, MLFLOW_ARTIFACTS)
    done = Exported(name, uri, left_out=left_out, experiment=name, file_store=local is not None)
    try:
        with _file_store_allowed(local is not None):
            _export_runs(client_class(tracking_uri=uri), folder, name, runs, done)
    except MlflowException as error:
        raise LogError(f"MLflow refused the export to {uri}: {error.message}; {done.written} of {len(runs)} runs "
                       "were written (exporting again finishes the rest)") from None
    except ImportError as error:  # a store kind mlflow-skinny cannot open (sqlite:, postgresql:...)
        raise LogError(f"MLflow cannot open {uri} without more packages ({error}): pip install mlflow opens "
                       "database stores; file:PATH and http(s) tracking servers need only mlflow-skinny") from None
    except OSError as error:
        raise LogError(f"cannot write MLflow runs to {uri} ({error.strerror or error}); {done.written} of "
                       f"{len(runs)} runs were written (exporting again finishes the rest)") from None
    return done


def _export_runs(client: Any, folder: Union[str, Path], name: str, runs: list[StoredRun], done: Exported) -> None:
    """Each run into the study's experiment (made, or restored when deleted), those there as finished skipped."""
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        experiment_id = client.create_experiment(name)
    else:
        experiment_id = experiment.experiment_id
        if experiment.lifecycle_stage == "deleted":
            client.restore_experiment(experiment_id)
    with Store(folder, create=False) as store, tempfile.TemporaryDirectory(prefix="cnnlab-mlflow-") as files:
        for run in runs:
            if _already(client, experiment_id, run):
                done.already += 1
                continue
            _write_run(client, experiment_id, run, store, Path(files))
            done.written += 1


def _already(client: Any, experiment_id: str, run: StoredRun) -> bool:
    """True when the run is there as finished, from this very training (a run trained again with
    --force keeps its id but not its finish time); any other copy of it is deleted (replaced next)."""
    found = client.search_runs([experiment_id], filter_string=f"tags.run_id = '{run.record.id}'")
    for old in found:
        tags = old.data.tags
        if run.record.done and tags.get("status") == "done" and tags.get("finished_at") == run.record.finished_at:
            return True
        client.delete_run(old.info.run_id)
    return False


def _write_run(client: Any, experiment_id: str, run: StoredRun, store: Store, files: Path) -> None:
    from mlflow.entities import Metric, Param

    record = run.record
    tags = {"architecture": record.architecture, "variant": record.variant, "phase": record.phase,
            "run_id": record.id, "status": record.status, "repeat": str(record.repeat),
            "fold": "" if record.fold is None else str(record.fold), "study": record.study,
            "finished_at": record.finished_at or ""}
    started = _millis(record.started_at or record.created_at)
    created = client.create_run(experiment_id, start_time=started, tags=tags, run_name=run.name)
    mlflow_id = created.info.run_id
    params = [Param(key, str(value)) for key, value in flat_config(run.config).items()]
    metrics = [Metric(column, float(epoch[column]), started, epoch["epoch"] + 1)
               for epoch in run.epochs for column in EPOCH_COLUMNS if isinstance(epoch.get(column), (int, float))]
    if record.done:
        metrics += [Metric(key, value, started, len(run.epochs)) for key, value in final_metrics(record).items()]
    for start in range(0, len(params), PARAMS_PER_CALL):
        client.log_batch(mlflow_id, params=params[start:start + PARAMS_PER_CALL])
    for start in range(0, len(metrics), METRICS_PER_CALL):
        client.log_batch(mlflow_id, metrics=metrics[start:start + METRICS_PER_CALL])
    for kind in MLFLOW_ARTIFACTS:
        data = store.artifact_bytes(record.id, kind)
        if data is None:
            continue
        path = files / record.id / store.artifact_path(record.id, kind).name
        path.parent.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(path, data)
        client.log_artifact(mlflow_id, str(path))
    ended = _millis(record.finished_at) if record.finished_at else None
    client.set_terminated(mlflow_id, MLFLOW_STATUS[record.status], end_time=ended)
