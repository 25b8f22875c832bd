"""Which run stands for a configuration, and which configuration is another's baseline: what
``cnnlab explain --config LABEL`` explains and what the report sets beside the best configuration.

A configuration's run is chosen by the rule that picks the best run (``BEST_RUN_RULE``): its
final retrain when it has one, else its median repeat on the selection metric, never the
luckiest seed.
"""

from __future__ import annotations

from typing import Optional, Sequence

from cnnlab.analysis.comparisons import RunResult, configuration_intervals
from cnnlab.analysis.selection import Selection, best_run_id
from cnnlab.errors import StoreError
from cnnlab.registry import did_you_mean


def configuration_run_id(results: Sequence[RunResult], configuration: str, metric: str = "val_accuracy") -> str:
    """The run that stands for ``configuration`` (a label as 'cnnlab ls' shows it); a StoreError
    naming the configurations when no finished run has that label."""
    members = [r for r in results if r.configuration == configuration]
    if not members:
        labels = list(dict.fromkeys(r.configuration for r in results))
        raise StoreError(f"no finished configuration '{configuration}'{did_you_mean(configuration, labels)}; "
                         f"configurations: {', '.join(labels) or 'none'}")
    if members[0].phase == "final":  # a retrain label names that one run
        return members[0].run_id
    interval = configuration_intervals(members, metric).get(configuration)
    if interval is None:  # no run measured the metric: no median to take, the first repeat it is
        return min(members, key=lambda r: (r.repeat, r.fold or 0)).run_id
    found = best_run_id(results, Selection(configuration, metric, interval, 1, members))
    return found if found is not None else members[0].run_id


def baseline_configuration(results: Sequence[RunResult], configuration: str,
                           baseline: Optional[str] = None) -> Optional[str]:
    """The label of ``configuration``'s baseline: the ``baseline`` variant (the spec's
    evaluate.baseline; default the first variant in the plan) of the same architecture and sweep
    point, as the comparisons pair them. None when ``configuration`` is that baseline, or the
    group has no such variant with finished runs."""
    members = [r for r in results if r.configuration == configuration or
               (r.phase == "final" and r.configuration.removesuffix(" (final)") == configuration)]
    if not members:
        return None
    group = members[0].group
    variants = list(dict.fromkeys(r.variant for r in results if r.phase == "select" and r.group == group))
    base = baseline if baseline is not None else (variants[0] if variants else None)
    if base is None or base == members[0].variant or base not in variants:
        return None
    return next(r.configuration for r in results if r.phase == "select" and r.group == group and r.variant == base)
