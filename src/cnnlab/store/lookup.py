"""Which stored run a command means: "best" (what the report calls the best run) or a run id, whole
or a unique prefix. The one lookup explain, export, predict and load_model share."""

from __future__ import annotations

from typing import Any, Optional

from cnnlab.errors import StoreError
from cnnlab.records import RunRecord
from cnnlab.registry import did_you_mean
from cnnlab.store.store import Store

BEST = "best"


def find_run(store: Store, run: str, study: Optional[str] = None) -> RunRecord:
    """``run`` "best" (``analysis.study_best_run_id``: the report's and ``explain --best``'s meaning), a
    run id or a unique prefix of one; a StoreError that says what to give otherwise."""
    if run == BEST:
        return best_run(store, study)
    record = store.run(run)
    if record is not None:
        return record
    ids = [item.id for item in store.runs()]
    matches = [i for i in ids if run and i.startswith(run)]
    if len(matches) == 1:
        return store.run(matches[0])
    if len(matches) > 1:
        raise StoreError(f"run id '{run}' is ambiguous in {store.folder}: {', '.join(matches[:5])}")
    raise StoreError(f"{store.folder} has no run '{run}'{did_you_mean(run, ids)}; "
                     f"'cnnlab ls {store.folder} --runs' lists the runs")


def best_run(store: Store, study: Optional[str] = None) -> RunRecord:
    """The study's best run, by the one definition the report states (``analysis.BEST_RUN_RULE``):
    the final retrain of the configuration selected on validation when there is one, else that
    configuration's median repeat. A StoreError when no run is finished or none has validation metrics."""
    from cnnlab.analysis import study_best_run_id

    name = store.study(study).name
    if not store.runs(name, status="done"):
        raise StoreError(f"study '{name}' in {store.folder} has no finished run; run 'cnnlab run SPEC' first")
    run_id = study_best_run_id(store, name)
    if run_id is None:
        raise StoreError(f"study '{name}' in {store.folder} has no finished run with validation metrics, so no "
                         "configuration is selected and no run is the best; name one with --run ID "
                         f"('cnnlab ls {store.folder} --runs' lists them)")
    return store.run(run_id)


def rebuilt_model(record: RunRecord, config: Any, input_shape: tuple[int, ...], classes: int,
                  weights: dict[str, Any], device: Optional[Any] = None) -> Any:
    """A finished run's model (``models.BuiltModel``) rebuilt from its configuration (a RunConfig),
    with its stored weights, in eval mode (on ``device`` when given)."""
    from cnnlab.models import build_model

    built = build_model(config.layer_list(), input_shape, classes, variant=config.variant_spec,
                        init="default", generator_seed=0)
    try:
        built.module.load_state_dict(weights)
    except RuntimeError as error:
        raise StoreError(f"run {record.id}: the stored weights do not fit the model its config builds "
                         f"({str(error).splitlines()[0]})") from None
    built.module.eval()
    if device is not None:
        built.module.to(device)
    return built
