"""What the report's curve figures need beyond the curves: the spec's order of variants and
architectures (so that each keeps one colour in every figure, whatever the ranking) and the
known effects that explain a strange-looking curve, said beside it.

Two effects are known:

- batch-norm warm-up: evaluation uses moving statistics that follow the training batches
  slowly (Keras' momentum 0.99), so with few steps an epoch they still hold mostly their
  starting values after the first epochs and validation accuracy stays low while train
  accuracy (measured on each batch's own statistics) rises;
- a final retrain trains on train+val, so it has no validation curve.

Two of the spec's choices change how every curve reads, and the report says so wherever they show:
``evaluate.validate_on: test`` (the validation curves are the test split's, and every choice saw
it) and ``evaluate.keras_loss`` (losses drawn with the kernel penalty added, as Keras reports them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Optional, Sequence

from cnnlab.figures import SPLIT_LABEL
from cnnlab.metrics import axis_label
from cnnlab.report.data import Curve, ReportData, keras_loss

VALIDATION_ON_TEST = (
    "Warning: validation = test split. As the spec asks (evaluate.validate_on: test), every validation number in "
    "this report is measured on the test split, so every choice made on them (the best epoch, early stopping, the "
    "best configuration and the finals) saw the test split: its test numbers are optimistic, not an estimate on "
    "unseen data.")

FEW_STEPS = 100  # steps an epoch below which batch norm's moving statistics visibly lag


@dataclass(frozen=True)
class Effect:
    """A known effect on one configuration's curves: a few words beside the curve (``short``)
    and, once under the figure, what it is (``long``)."""

    kind: str  # batchnorm_warmup | final_retrain | no_validation
    short: str
    long: str


@dataclass(frozen=True)
class CurveContext:
    """The spec's order of variants and architectures, and the known effects per configuration."""

    variants: tuple[str, ...] = ()
    architectures: tuple[str, ...] = ()
    effects: dict[str, tuple[Effect, ...]] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=lambda: dict(SPLIT_LABEL))  # each split's name in a legend
    penalty: str = ""  # the penalty the losses include ("L2 penalty"), or "" for the cross-entropy alone

    def covering(self, curves: Sequence[Curve]) -> "CurveContext":
        """This context with any variant or architecture of ``curves`` it lacks put last."""
        variants = self.variants + tuple(v for v in dict.fromkeys(c.variant for c in curves) if v not in self.variants)
        architectures = self.architectures + tuple(a for a in dict.fromkeys(c.architecture for c in curves)
                                                   if a not in self.architectures)
        return replace(self, variants=variants, architectures=architectures)

    def ylabel(self, metric: str) -> str:
        if metric == "loss" and self.penalty:
            return f"loss + {self.penalty} (log scale)"
        return axis_label(metric)

    def effects_of(self, curve: Curve) -> tuple[Effect, ...]:
        found = self.effects.get(curve.configuration, ())
        if not any(effect.kind == "final_retrain" for effect in found) and not _has_validation(curve):
            found += (Effect("no_validation", "no validation curve", "A panel without a validation curve: the run "
                                                                    "recorded no validation metrics."),)
        return found


def _has_validation(curve: Curve) -> bool:
    return any(value is not None for key in ("val_accuracy", "val_loss") for value in curve.mean.get(key, []))


def validates_on_test(spec: Optional[dict[str, Any]]) -> bool:
    """Whether the study's validation data was its test split (``evaluate.validate_on: test``, study C)."""
    return ((spec or {}).get("evaluate") or {}).get("validate_on") == "test"


def validation_warning(spec: Optional[dict[str, Any]]) -> Optional[str]:
    """The warning the report gives beside every choice when validation was the test split."""
    return VALIDATION_ON_TEST if validates_on_test(spec) else None


def penalty_words(spec: Optional[dict[str, Any]]) -> str:
    """The penalty the study's variants add to the loss: "L2 penalty", "L1 and L2 penalty" or "kernel penalty"."""
    variants = [v for v in ((spec or {}).get("variants") or {}).values() if isinstance(v, dict)]
    kinds = [kind.upper() for kind in ("l1", "l2") if any(v.get(kind) for v in variants)]
    return f"{' and '.join(kinds) or 'kernel'} penalty"


def loss_words(spec: Optional[dict[str, Any]]) -> str:
    """What the report's losses are, for a caption (and a loss column's header)."""
    if keras_loss(spec):
        return f"loss incl. {penalty_words(spec)}, as Keras reports it"
    return "loss (cross-entropy, without the weight penalty)"


def curve_context(data: ReportData) -> CurveContext:
    """The context of a study's curves: its spec's order, the effects its runs show, and what its
    validation curves and losses are."""
    spec = data.spec
    variants = tuple(str(name) for name in (spec.get("variants") or {"none": {}}))
    architectures = tuple(str(name) for name in (spec.get("architectures") or {}))
    effects = {}
    for curve in data.curves:
        run = _first_run(data, curve)
        found = _effects(run, curve) if run is not None else ()
        if found:
            effects[curve.configuration] = found
    labels = dict(SPLIT_LABEL)
    if validates_on_test(spec):
        labels["val"] = "validation = test split (dashed)"
    return CurveContext(variants, architectures, effects, labels, penalty_words(spec) if keras_loss(spec) else "")


def _first_run(data: ReportData, curve: Curve) -> Any:
    from cnnlab.spec.plan import configuration_label

    for run in data.runs:
        if run.done and configuration_label(run.architecture, run.variant, run.sweep or {}, run.phase) == curve.configuration:
            return run
    return None


def _effects(run: Any, curve: Curve) -> tuple[Effect, ...]:
    found = []
    if run.phase == "final" and not _has_validation(curve):  # a retrain on train alone keeps its validation split
        found.append(Effect("final_retrain", "final retrain: no validation curve",
                            "A final retrain on train+val has no validation split and so no validation curve; its "
                            "test result is in the results table, its curves in the Best configuration section."))
    warmup = _batchnorm_warmup(run)
    if warmup is not None:
        found.append(warmup)
    return tuple(found)


def _batchnorm_warmup(run: Any) -> Optional[Effect]:
    from cnnlab.spec.plan import RunConfig

    try:
        config = RunConfig.model_validate(run.config)
        momenta = [float(layer.momentum) for layer in config.layer_list() if layer.type == "batchnorm"]
    except Exception:  # an older or damaged config: no note rather than no report
        return None
    if config.variant_spec.batchnorm is not None:
        momenta.append(float(config.variant_spec.batchnorm.momentum))
    train = (run.split_sizes or {}).get("train")
    if not momenta or not train:
        return None
    steps = math.ceil(int(train) / config.train.batch_size)
    if steps >= FEW_STEPS:
        return None
    momentum = max(momenta)
    left = 100 * momentum ** steps
    default = " (Keras' default)" if momentum == 0.99 else ""
    return Effect("batchnorm_warmup", f"batch-norm warm-up: {steps} steps/epoch",
                  f"Batch-norm warm-up, not a bug: evaluation uses moving statistics that follow the training "
                  f"batches with momentum {momentum:g}{default}, and with {steps} steps an epoch they "
                  f"still hold {left:.0f}% of their starting values after one epoch, so validation accuracy stays "
                  f"low for the first epochs while train accuracy (measured on each batch's own statistics) rises. "
                  f"A smaller batch (more steps an epoch) or a lower momentum shortens it.")
