"""The Python API, mirroring the command line for notebook users.

    import cnnlab
    result = cnnlab.run_study("examples/quickstart.yaml", out="runs/quickstart")
    store = cnnlab.open_store("runs/quickstart")
    for run in store.runs():
        print(run["architecture"], run["variant"], run["val_accuracy"])
    curves = store.epochs(run["id"])          # per-epoch metrics as plain dicts
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Optional, Union

from cnnlab.analysis.comparisons import run_results
from cnnlab.analysis.selection import final_config, select_best
from cnnlab.analysis.tables import ResultRow, result_rows
from cnnlab.errors import SpecError
from cnnlab.execute.driver import PlanOutcome
from cnnlab.execute.local import execute_local
from cnnlab.execute.progress import StudyProgress
from cnnlab.execute.runner import DataCache
from cnnlab.spec.loader import load_study, parse_study
from cnnlab.spec.plan import RunConfig, expand
from cnnlab.spec.study import Study
from cnnlab.store import Store
from cnnlab.store.lock import StoreLock
from cnnlab.train import environment, select_device

SpecLike = Union[str, Path, Mapping[str, Any], Study]


def load_spec(spec: SpecLike) -> tuple[Study, str, Optional[str]]:
    """A study from a file path, a dict or a ``Study``; with its text and path."""
    if isinstance(spec, Study):
        import yaml

        return spec, yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False), None
    if isinstance(spec, Mapping):
        import yaml

        return parse_study(dict(spec), "<dict>"), yaml.safe_dump(dict(spec), sort_keys=False), None
    study, text = load_study(spec)
    return study, text, str(spec)


def default_output(study: Study) -> Path:
    """``runs/<study name>`` with the name made safe for a folder."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", study.name).strip("-.") or "study"
    return Path("runs") / slug


@dataclass
class StudyRun:
    """What ``run_study`` did: the outcome, where the store is, and the results table."""

    outcome: PlanOutcome
    folder: Path
    rows: list[ResultRow]
    plan: list[RunConfig]


def run_study(
    spec: SpecLike,
    out: Optional[Union[str, Path]] = None,
    *,
    data_dir: Optional[Union[str, Path]] = None,
    epochs: Optional[int] = None,
    limit_train: Optional[int] = None,
    precision: Optional[str] = None,
    force: bool = False,
    threads: Optional[int] = None,
    workers: Union[int, str] = "auto",
    executor: str = "local",
    address: str = "auto",
    gpus_per_run: Optional[float] = None,
    progress: Optional[StudyProgress] = None,
) -> StudyRun:
    """Train every run of a study that is not finished yet and store the results.

    Rerunning skips finished runs and resumes interrupted ones from their last checkpoint;
    ``force=True`` trains everything again. ``epochs`` and ``limit_train`` override the spec
    (for quick trials); they change the runs' identity, so they do not mix with full runs.
    ``precision`` ("fp32" or "bf16") replaces train.precision and changes the identity too.
    ``workers > 1`` trains that many runs at once in worker processes, splitting the cores;
    ``"auto"`` (the default) uses one single-threaded worker per core for plans that would
    train for more than about a minute, and this process otherwise.
    ``executor="ray"`` runs each run as a task on the Ray cluster at ``address`` with
    ``threads`` CPUs (default 1) and ``gpus_per_run`` GPUs (default: 1 when train.device is
    cuda) per run; this process alone writes the store.
    """
    if executor not in ("local", "ray"):
        raise SpecError(f"unknown executor '{executor}'; use 'local' or 'ray'")
    study, text, path = load_spec(spec)
    if limit_train is not None and limit_train < 1:
        raise SpecError(f"limit_train must be at least 1; found {limit_train}")
    if precision not in (None, "fp32", "bf16"):
        raise SpecError(f"precision must be 'fp32' or 'bf16'; found {precision!r}")
    plan = expand(study, epochs=epochs, limit_train=limit_train, precision=precision)
    folder = Path(out) if out is not None else default_output(study)
    progress = progress or StudyProgress()
    if executor == "ray":
        from cnnlab.execute.cluster import connect

        connect(address)  # fail at once, before anything is written
    with Store(folder) as store, StoreLock(folder, study.name):
        store.save_study(study.name, text, study.model_dump(mode="json"), path, environment(select_device(study.train.device)))
        cache = DataCache(Path(data_dir) if data_dir else None, log=progress.message)
        started = time.perf_counter()

        def execute(configs: list[RunConfig], force: bool) -> PlanOutcome:
            if executor == "ray":
                from cnnlab.execute.cluster import execute_ray

                gpus = gpus_per_run if gpus_per_run is not None else (1.0 if study.train.device == "cuda" else 0.0)
                return execute_ray(configs, store, cache, progress, address=address, force=force,
                                   threads=threads or study.train.threads or 1, gpus=gpus)
            return execute_local(configs, store, cache, progress, force=force, threads=threads, workers=workers)

        try:
            outcome = execute(plan, force)
            if study.evaluate.retrain_on == "train+val" and not outcome.interrupted:
                final = _final_retrain(store, study, plan)
                if final is not None:
                    progress.message(f"Retraining the best configuration on train+val: {final.label}, "
                                     f"{final.train.epochs} epochs; then measuring the test split once")
                    retrain = execute(plan + [final], False)
                    outcome.merge(retrain)
                    plan = plan + [final]
        finally:
            store.add_wall_time(study.name, time.perf_counter() - started)
        rows = result_rows(store.runs(study.name))
    return StudyRun(outcome, folder, rows, plan)


def _final_retrain(store: Store, study: Study, plan: list[RunConfig]) -> Optional[RunConfig]:
    """The retrain of the configuration selected on validation (None when nothing finished)."""
    selection = select_best(run_results(store, study.name), study.evaluate.select)
    return final_config(selection, plan) if selection is not None else None


def open_store(folder: Union[str, Path]) -> Store:
    """Open an existing output folder's store for reading (``runs()``, ``epochs(id)``, ``studies()``)."""
    return Store(folder, create=False)
