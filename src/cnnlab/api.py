"""The Python API, mirroring the command line for notebook users.

    import cnnlab
    result = cnnlab.run_study("examples/quickstart.yaml", out="runs/quickstart")
    store = cnnlab.open_store("runs/quickstart")
    for run in store.runs():
        print(run["architecture"], run["variant"], run["val_accuracy"])
    curves = store.epochs(run["id"])          # per-epoch metrics as plain dicts
    model = cnnlab.load_model("runs/quickstart")             # the best run's model, to use elsewhere
    probabilities = model.probabilities(images)              # uint8 images, normalized as in training

A facade: the study protocol lives in ``cnnlab.execute.conductor``, the spec in ``cnnlab.spec``,
the store in ``cnnlab.store`` and using a finished model in ``cnnlab.inference``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Optional, Union

from cnnlab.execute.conductor import ExecutionSettings, StudyRun, conduct, default_output
from cnnlab.execute.grouping import STACK_MODES
from cnnlab.execute.progress import StudyProgress
from cnnlab.inference import LoadedModel, load_model
from cnnlab.spec.loader import load_spec
from cnnlab.spec.study import Study
from cnnlab.store import Store

SpecLike = Union[str, Path, Mapping[str, Any], Study]

__all__ = ["LoadedModel", "SpecLike", "StudyRun", "default_output", "load_model", "load_spec", "open_store", "run_study"]


def run_study(
    spec: SpecLike,
    out: Optional[Union[str, Path]] = None,
    *,
    data_dir: Optional[Union[str, Path]] = None,
    epochs: Optional[int] = None,
    limit_train: Optional[int] = None,
    precision: Optional[str] = None,
    overrides: Optional[Mapping[str, Any]] = None,
    force: bool = False,
    threads: Optional[int] = None,
    workers: Union[int, str] = "auto",
    executor: str = "local",
    address: str = "auto",
    gpus_per_run: Optional[float] = None,
    tensorboard: Optional[Union[str, Path]] = None,
    stack: Optional[str] = None,
    progress: Optional[StudyProgress] = None,
) -> StudyRun:
    """Train every run of a study that is not finished yet and store the results.

    Rerunning skips finished runs and resumes interrupted ones from their last checkpoint;
    ``force=True`` trains everything again. ``epochs`` and ``limit_train`` override the spec
    (for quick trials); they change the runs' identity, so they do not mix with full runs.
    ``precision`` ("fp32" or "bf16") replaces train.precision and changes the identity too.
    ``overrides`` sets spec settings by their dotted paths, as ``cnnlab run SPEC KEY=VALUE``
    does (``{"train.optimizer.lr": 0.01, "variants.l2.l2": 1e-4}``; see ``cnnlab.spec.overrides``):
    an edit of the spec, so the runs get the ids the edited file would give them; the store
    keeps the overrides and the report shows them. Overrides are validated as the spec is. Every configuration and the data split are
    checked before anything trains (bad input is one error, nothing written).
    ``workers > 1`` trains that many runs at once in worker processes, splitting the cores;
    ``"auto"`` (the default) uses one single-threaded worker per core for plans that would
    train for more than about 10 s a core, and this process otherwise.
    ``executor="ray"`` runs each run as a task on the Ray cluster at ``address`` with
    ``threads`` CPUs (default 1) and ``gpus_per_run`` GPUs (default: 1 when train.device is
    cuda) per run; this process alone writes the store.
    ``tensorboard`` (a folder) writes TensorBoard logs there while the study trains, as the spec's
    ``train.log: [tensorboard]`` does into ``<out>/tensorboard``; logs never change a run's id.
    ``stack`` ("auto", "always", "never"; default: the spec's ``train.stack``, auto) trains the
    seeds of a configuration as one stacked model: auto where that is measured faster (small
    nets on a CPU, any net on a GPU). Each seed is still its own run, with its own id, record and
    checkpoints; stacking never changes a run's id.
    """
    if stack is not None and stack not in STACK_MODES:
        raise ValueError(f"stack={stack!r}: expected one of {', '.join(STACK_MODES)}")
    study, text, path = load_spec(spec)
    settings = ExecutionSettings(force=force, threads=threads, workers=workers, executor=executor,
                                 address=address, gpus_per_run=gpus_per_run, tensorboard=tensorboard, stack=stack)
    return conduct(study, text, path, out, data_dir=data_dir, epochs=epochs, limit_train=limit_train,
                   precision=precision, overrides=overrides, settings=settings, progress=progress)


def open_store(folder: Union[str, Path]) -> Store:
    """Open an existing output folder's store for reading (``runs()``, ``epochs(id)``, ``studies()``)."""
    return Store(folder, create=False)
