"""How runs become pairs: reading the store (the gap at the best epoch, sweeps, split sizes),
the fold correction from sizes or from k (store records and RunResults alike), which variants
group together, which is the baseline, and the order of the paired differences."""

from __future__ import annotations


import pytest

from cnnlab.analysis.comparisons import RunResult, compare, fold_correction, run_results
from cnnlab.analysis.statistics import mean_interval
from cnnlab.records import RunRecord, StudyRecord
from tests.analysis.stored_runs import run_record


class _Store:
    """The Results protocol over hand-made records and epoch histories."""

    def __init__(self, runs: list[RunRecord], epochs: dict[str, list[dict]] | None = None):
        self._runs, self._epochs = runs, epochs or {}

    def study(self, name=None) -> StudyRecord:
        return StudyRecord("s", "", {}, None, None, "", "", 0.0)

    def runs(self, study=None, status=None) -> list[RunRecord]:
        return [r for r in self._runs if status is None or r.status == status]

    def epochs(self, run_id):
        return self._epochs.get(run_id, [])


def _record(**changes) -> RunRecord:
    return run_record(**{"val_accuracy": 0.9, **changes})


# --- reading the store ---------------------------------------------------------------------------

def test_the_gap_is_train_minus_val_accuracy_at_the_best_epoch():
    history = [{"epoch": 0, "train_accuracy": 0.80, "val_accuracy": 0.78},
               {"epoch": 1, "train_accuracy": 0.95, "val_accuracy": 0.90},
               {"epoch": 2, "train_accuracy": 0.99, "val_accuracy": 0.88}]
    (result,) = run_results(_Store([_record(best_epoch=1)], {"r1": history}), "s")
    assert result.metrics["gap"] == pytest.approx(0.05)
    assert result.history == history


def test_a_best_epoch_beyond_the_history_gives_no_gap():
    # A best epoch the epoch log does not reach (a log cut short): no gap, and no error.
    history = [{"epoch": 0, "train_accuracy": 0.80, "val_accuracy": 0.78}]
    (result,) = run_results(_Store([_record(best_epoch=1)], {"r1": history}), "s")
    assert "gap" not in result.metrics and result.metrics["val_accuracy"] == 0.9
    (empty,) = run_results(_Store([_record(best_epoch=0)]), "s")
    assert "gap" not in empty.metrics


def test_run_results_keep_the_sweep_point():
    (swept,) = run_results(_Store([_record(sweep={"lr": 0.1})]), "s")
    assert swept.sweep == {"lr": 0.1} and swept.configuration == "net/none lr=0.1"
    (plain,) = run_results(_Store([_record(sweep=None)]), "s")
    assert plain.sweep == {} and plain.configuration == "net/none"


# --- the fold correction -------------------------------------------------------------------------

def _fold_records(folds, *, split_sizes=None, config=None) -> list[RunRecord]:
    return [_record(id=f"r{fold}", fold=fold, split_sizes=split_sizes, config=config) for fold in folds]


def test_store_records_give_the_correction_from_their_split_sizes():
    runs = _fold_records(range(5), split_sizes={"train": 400, "val": 100, "test": 50}, config={"kfold": 5})
    assert fold_correction(runs) == {"n_train": 400, "n_test": 100}


def test_store_records_without_sizes_fall_back_to_the_spec_k():
    # Three of five folds finished: k is the spec's 5, so n_test / n_train = 1 / 4, not 1 / 2.
    assert fold_correction(_fold_records(range(3), config={"kfold": 5})) == {"n_train": 4.0, "n_test": 1.0}
    # No kfold in the config (or no config): k is the number of distinct folds.
    assert fold_correction(_fold_records(range(3), config={})) == {"n_train": 2.0, "n_test": 1.0}
    assert fold_correction(_fold_records(range(4))) == {"n_train": 3.0, "n_test": 1.0}


def _fold_result(fold, *, kfold=None, train_size=None, val_size=None, repeat=0) -> RunResult:
    extra = {} if kfold is None else {"kfold": kfold}
    return RunResult(f"r{repeat}-{fold}", "net", "none", {}, "select", repeat, fold, {"val_accuracy": 0.9},
                     train_size=train_size, val_size=val_size, **extra)


def test_run_results_without_k_count_their_folds():
    # A RunResult built without kfold (0: unknown) falls back to the distinct folds it has.
    assert fold_correction([_fold_result(f) for f in range(3)]) == {"n_train": 2.0, "n_test": 1.0}
    assert fold_correction([_fold_result(f, kfold=5) for f in range(3)]) == {"n_train": 4.0, "n_test": 1.0}


def test_two_folds_are_corrected_and_one_fold_is_not():
    assert fold_correction([_fold_result(f, kfold=2) for f in range(2)]) == {"n_train": 1.0, "n_test": 1.0}
    assert fold_correction([_fold_result(f) for f in range(2)]) == {"n_train": 1.0, "n_test": 1.0}
    # A single fold (k unknown) is not cross-validation: the plain t, and the dict unpacks.
    assert fold_correction([_fold_result(0, repeat=r) for r in range(3)]) == {}
    assert mean_interval([0.9, 0.91, 0.92], **fold_correction([_fold_result(0)])).method == "t"


def test_sizes_known_for_only_some_runs_fall_back_to_k():
    runs = [_fold_result(0, kfold=5, train_size=400, val_size=100),
            _fold_result(1, kfold=5, train_size=400, val_size=None),
            _fold_result(2, kfold=5, train_size=None, val_size=100)]
    assert fold_correction(runs) == {"n_train": 4.0, "n_test": 1.0}


# --- groups and baselines ------------------------------------------------------------------------

def _seeds(variant, values, *, architecture="net", sweep=None):
    return [RunResult(f"{architecture}-{variant}-{r}", architecture, variant, dict(sweep or {}), "select", r, None,
                      {"val_accuracy": v}) for r, v in enumerate(values)]


BASE = [0.90, 0.91, 0.89, 0.92, 0.90]
BETTER = [0.93, 0.94, 0.925, 0.945, 0.935]


def test_a_sweep_point_is_one_group_whatever_the_order_of_its_keys():
    one = _seeds("none", BASE, sweep={"lr": 0.1, "wd": 0.0})
    other = _seeds("a", BETTER, sweep={"wd": 0.0, "lr": 0.1})
    assert one[0].group == other[0].group
    (c,) = compare(one + other)
    assert (c.baseline_name, c.variant_name, c.same_group) == ("none", "a", True)


def test_the_given_order_of_variants_picks_the_baseline():
    results = _seeds("none", BASE) + _seeds("a", BETTER)
    (c,) = compare(results, variants_order=["a", "none"])
    assert (c.baseline, c.variant) == ("net/a", "net/none") and c.verdict == "worse"
    # Variants the order does not name come after those it does.
    results += _seeds("b", BETTER)
    comparisons = compare(results, variants_order=["b"])
    assert [(c.baseline_name, c.variant_name) for c in comparisons] == [("b", "none"), ("b", "a")]


def test_a_group_without_the_named_baseline_is_skipped_and_the_others_compared():
    results = (_seeds("none", BASE, architecture="small") + _seeds("a", BETTER, architecture="small")
               + _seeds("ref", BASE, architecture="big") + _seeds("a", BETTER, architecture="big"))
    (c,) = compare(results, baseline="ref")
    assert (c.baseline, c.variant) == ("big/ref", "big/a")


# --- the order of the pairs ----------------------------------------------------------------------

def test_differences_come_in_repeat_then_fold_order():
    def runs(variant, value):
        return [RunResult(f"{variant}-{r}-{f}", "net", variant, {}, "select", r, f,
                          {"val_accuracy": value(r, f)}, train_size=80, val_size=20, kfold=5)
                for r in (1, 0) for f in (3, 0, 4, 2, 1)]

    (c,) = compare(runs("none", lambda r, f: 0.5) + runs("a", lambda r, f: 0.5 + 0.01 * (5 * r + f)))
    expected = tuple(0.01 * i for i in range(10))
    assert c.test.differences == pytest.approx(expected)
    (s,) = compare(_seeds("none", [0.5] * 6) + _seeds("a", [0.5 + 0.01 * r for r in range(6)]))
    assert s.test.differences == pytest.approx(tuple(0.01 * r for r in range(6)))
