"""The study conductor: plan, pre-flight, execute, select on validation, retrain, test once.

``run_study`` (the API and ``cnnlab run``) is a thin call into ``conduct``; this module holds
the protocol itself, so every executor and every caller follows the same steps in the same
order. The test split is read by nothing that chooses: selection reads validation metrics only,
and with ``evaluate.retrain_on`` set only the finals measure the test split (after every epoch
with ``evaluate.test_curves``, for the report's curves alone). The one exception is
``evaluate.validate_on: test``, which the spec must ask for and the report warns about.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Optional, Union

from cnnlab.analysis.comparisons import run_results
from cnnlab.analysis.selection import SelectionRules, final_config, select_finals
from cnnlab.analysis.tables import ResultRow, result_rows
from cnnlab.data import DataCache
from cnnlab.errors import SpecError, StoreError
from cnnlab.execute.driver import PlanOutcome
from cnnlab.execute.local import execute_local
from cnnlab.execute.preflight import preflight
from cnnlab.execute.progress import StudyProgress
from cnnlab.execute.tensorboard_log import TensorBoardLog
from cnnlab.spec.overrides import apply_overrides, override_words, with_flag
from cnnlab.spec.plan import RunConfig, expand
from cnnlab.spec.study import Study
from cnnlab.store import Store
from cnnlab.store.lock import StoreLock
from cnnlab.store.store import DB_NAME
from cnnlab.train import environment, select_device

EXECUTORS = ("local", "ray")


def default_output(study: Study) -> Path:
    """``runs/<study name>`` with the name made safe for a folder."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", study.name).strip("-.") or "study"
    return Path("runs") / slug


@dataclass
class StudyRun:
    """What a study run did: the outcome, where the store is, and the results table."""

    outcome: PlanOutcome
    folder: Path
    rows: list[ResultRow]
    plan: list[RunConfig]
    earlier_runs: int = 0  # runs of earlier versions of the study in the folder, counted nowhere
    tensorboard: Optional[Path] = None  # where the TensorBoard logs went, when they were written


@dataclass
class ExecutionSettings:
    """How runs are executed; none of it changes a run's identity or results."""

    force: bool = False
    threads: Optional[int] = None
    workers: Union[int, str] = "auto"
    executor: str = "local"
    address: str = "auto"
    gpus_per_run: Optional[float] = None
    # TensorBoard logs in this folder (``train.log: [tensorboard]`` writes them to <out>/tensorboard).
    tensorboard: Optional[Union[str, Path]] = None
    # The seeds of a configuration as one stacked model: auto, always, never (default: train.stack).
    stack: Optional[str] = None


def tensorboard_folder(study: Study, settings: ExecutionSettings, folder: Path) -> Optional[Path]:
    """Where the study's TensorBoard logs go: the folder asked for, else <out>/tensorboard when the
    spec's ``train.log`` lists tensorboard, else nowhere."""
    if settings.tensorboard is not None:
        return Path(settings.tensorboard)
    return folder / "tensorboard" if "tensorboard" in study.train.log else None


def conduct(
    study: Study,
    text: str,
    path: Optional[str],
    out: Optional[Union[str, Path]],
    *,
    data_dir: Optional[Union[str, Path]] = None,
    epochs: Optional[int] = None,
    limit_train: Optional[int] = None,
    precision: Optional[str] = None,
    overrides: Optional[Mapping[str, Any]] = None,
    settings: Optional[ExecutionSettings] = None,
    progress: Optional[StudyProgress] = None,
) -> StudyRun:
    """Run a loaded study (see ``cnnlab.api.run_study`` for the arguments' meaning)."""
    settings = settings or ExecutionSettings()
    if settings.executor not in EXECUTORS:
        raise SpecError(f"unknown executor '{settings.executor}'; use 'local' or 'ray'")
    if limit_train is not None and limit_train < 1:
        raise SpecError(f"limit_train must be at least 1; found {limit_train}")
    # An override is an edit of the spec: the runs get the ids the edited file would give them.
    overrides = with_flag(overrides, "train.precision", "--precision", precision)
    study = apply_overrides(study, overrides)
    plan = expand(study, epochs=epochs, limit_train=limit_train)
    # What the report and 'cnnlab ls' show of the command line; --epochs also shortens the variants' own.
    changed = override_words(overrides) + [f"{flag} {value}" for flag, value in
                                           (("--epochs", epochs), ("--limit-train", limit_train)) if value is not None]
    if epochs is not None and isinstance(study.evaluate.final_epochs, int):
        # --epochs shortens the finals too (a trial run); their mean-best-epoch rule is short already.
        shorter = min(epochs, study.evaluate.final_epochs)
        study = study.model_copy(update={"evaluate": study.evaluate.model_copy(update={"final_epochs": shorter})})
    folder = Path(out) if out is not None else default_output(study)
    progress = progress or StudyProgress()
    logs = tensorboard_folder(study, settings, folder)
    if logs is not None:  # checked before anything trains: the package is there, the folder writable
        progress = TensorBoardLog(progress, logs, histograms="histograms" in study.train.log)
    if settings.executor == "ray":
        from cnnlab.execute.cluster import connect

        connect(settings.address)  # fail at once, before anything is written
    cache = DataCache(Path(data_dir) if data_dir else None, log=progress.message)
    # Before the folder is touched: bad input is one error (exit 2), not a failed run each.
    preflight(_unfinished(plan, folder, study.name, settings.force), cache)
    with Store(folder) as store, StoreLock(folder, study.name):
        spec = study.model_dump(mode="json")
        store.save_study(study.name, text, {**spec, "overrides": changed} if changed else spec, path,
                         environment(select_device(study.train.device)))
        # What this command runs is what every table counts; runs of earlier plans (a quick trial,
        # an edited architecture) stay in the store, uncounted, until 'cnnlab prune'.
        store.set_plan(study.name, [config.run_id for config in plan])
        started = time.perf_counter()
        if logs is not None:
            progress.message(f"TensorBoard logs: {logs} (watch them with: tensorboard --logdir {logs})")

        def execute(configs: list[RunConfig], force: bool) -> PlanOutcome:
            return _execute(configs, store, cache, progress, study, settings, force)

        try:
            outcome = execute(plan, settings.force)
            if study.evaluate.retrain_on != "none" and not outcome.interrupted:
                finals = _finals(store, study, plan)
                for final in finals:
                    progress.message(f"Final: retraining {final.label.removesuffix(' (final)')} on "
                                     f"{study.evaluate.retrain_on}, {final.train.epochs} epochs; then measuring the "
                                     "test split" + (" after every epoch (never read by any choice)"
                                                     if final.test_curve else " once"))
                if finals:
                    outcome.merge(execute(plan + finals, False))
                    plan = plan + finals
                    store.set_plan(study.name, [config.run_id for config in plan])
        finally:
            store.add_wall_time(study.name, time.perf_counter() - started)
        rows = result_rows(store.runs(study.name))
        earlier = len(store.runs(study.name, earlier=True))
    return StudyRun(outcome, folder, rows, plan, earlier, logs)


def _unfinished(plan: list[RunConfig], folder: Path, study: str, force: bool) -> list[RunConfig]:
    """The runs a rerun would train: a finished study is not pre-flighted (nor its data loaded)."""
    if force or not (folder / DB_NAME).exists():
        return plan
    try:
        with Store(folder, create=False) as store:
            done = {run.id for run in store.runs(study, every=True) if run.done}
    except StoreError:  # an empty file a killed first run left, or a foreign one: opening it for
        return plan     # writing next either sets it up or says what is wrong with it
    return [config for config in plan if config.run_id not in done]


def _execute(configs: list[RunConfig], store: Store, cache: DataCache, progress: StudyProgress, study: Study,
             settings: ExecutionSettings, force: bool) -> PlanOutcome:
    if settings.executor == "ray":
        from cnnlab.execute.cluster import execute_ray

        gpus = settings.gpus_per_run
        if gpus is None:
            gpus = 1.0 if study.train.device == "cuda" else 0.0
        return execute_ray(configs, store, cache, progress, address=settings.address, force=force,
                           threads=settings.threads or study.train.threads or 1, gpus=gpus, stack=settings.stack)
    return execute_local(configs, store, cache, progress, force=force, threads=settings.threads,
                         workers=settings.workers, stack=settings.stack)


def _finals(store: Store, study: Study, plan: list[RunConfig]) -> list[RunConfig]:
    """The retrains of the configurations the spec's rules choose on validation (none when nothing finished)."""
    rules = SelectionRules.from_spec(study.model_dump(mode="json"))
    return [final_config(selection, plan, study.evaluate.retrain_on, study.evaluate.test_curves)
            for selection in select_finals(run_results(store, study.name), rules)]
