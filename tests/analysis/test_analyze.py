"""``analyze`` on a hand-made store (no training): the study's baseline setting decides what each
variant is compared with, and the final retrain is found and reported."""

from __future__ import annotations


from cnnlab.analysis.study import analyze
from cnnlab.records import RunRecord, StudyRecord
from tests.analysis.stored_runs import run_record


class _Store:
    """The Results protocol over hand-made records."""

    def __init__(self, spec: dict, runs: list[RunRecord]):
        self.spec, self._runs = spec, runs

    def study(self, name=None) -> StudyRecord:
        return StudyRecord("s", "", self.spec, None, None, "", "", 0.0)

    def runs(self, study=None, status=None) -> list[RunRecord]:
        return [r for r in self._runs if status is None or r.status == status]

    def epochs(self, run_id):
        run = next(r for r in self._runs if r.id == run_id)
        if run.val_accuracy is None:
            return []
        return [{"train_accuracy": run.val_accuracy + 0.05, "val_accuracy": run.val_accuracy, "train_loss": 0.2,
                 "val_loss": 0.3}]


def _record(run_id: str, variant: str, repeat: int, phase: str = "select", **metrics) -> RunRecord:
    return run_record(id=run_id, variant=variant, repeat=repeat, phase=phase, best_epoch=0, **metrics)


def _runs() -> list[RunRecord]:
    runs = []
    for variant, values in (("none", [0.90, 0.91, 0.89]), ("dropout", [0.93, 0.95, 0.94]), ("l2", [0.90, 0.92, 0.91])):
        runs += [_record(f"{variant}{r}", variant, r, val_accuracy=v) for r, v in enumerate(values)]
    return runs + [_record("final", "dropout", 0, "final", test_accuracy=0.955)]


def test_variants_are_compared_with_the_baseline_the_study_names():
    analysis = analyze(_Store({"evaluate": {"baseline": "dropout"}}, _runs()))
    assert [(c.baseline_name, c.variant_name) for c in analysis.comparisons] == [("dropout", "none"), ("dropout", "l2")]
    default = analyze(_Store({}, _runs()))  # without one, the first variant listed
    assert [(c.baseline_name, c.variant_name) for c in default.comparisons] == [("none", "dropout"), ("none", "l2")]


def test_the_final_retrain_is_found_and_its_test_reported():
    analysis = analyze(_Store({}, _runs()))
    assert analysis.selection.configuration == "net/dropout"
    assert analysis.final is not None and analysis.final.run_id == "final"
    assert [f.kind for f in analysis.findings[:2]] == ["selection", "final"]
    assert "test accuracy 95.5%" in analysis.findings[1].text
    without = analyze(_Store({}, _runs()[:-1]))
    assert without.final is None and [f.kind for f in without.findings].count("final") == 0
