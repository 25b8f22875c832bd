"""Stacked seeds train as the seeds alone would (docs/stacked_seeds.md).

A stacked group of three and the same three runs trained alone must give the same metrics each
epoch (to float rounding: grouped and batched products sum in another order) and the same
weights, with everything that draws randomness or decides per run: dropout, augmentation, batch
norm, L1/L2 penalties, early stopping that stops members at different epochs, a plateau schedule
that fires for one member only, and a member that diverges. Each fixture first asserts that the
thing it tests happens in it.
"""

from __future__ import annotations

import pytest
import torch

from cnnlab.data import ArrayDataset
from cnnlab.models import build_model
from cnnlab.spec.training import Train
from cnnlab.spec.variant import LayerChanges
from cnnlab.train import Diverged, Normalizer, TrainCallback, TrainData, Trainer, parse_checkpoint, serialize_state
from cnnlab.train.stacked import StackedTrainer
from tests.models.architectures import layers

MODEL = layers([{"conv": {"filters": 8, "kernel": 3, "padding": "same"}}, {"maxpool": 2},
                {"conv": {"filters": 8, "kernel": 3}}, "flatten", {"dense": 32}, {"dense": 10}])
SEEDS = (7, 8, 9)
ADAM = {"optimizer": {"name": "adam", "lr": 0.003}, "batch_size": 32, "epochs": 3}
# With batch norm after a layer, that layer's bias has a gradient of pure rounding noise (the norm
# cancels the bias), which Adam scales up to full-size steps: the lone and the stacked run then
# differ in that bias by whole steps (harmlessly: the norm cancels it). Plain SGD keeps noise noise,
# and at this rate training is not chaotic: at lr 0.2 (or 0.05 with momentum 0.9) a lone run whose
# initial weights were scaled by 1 + 1e-7 ended its second epoch 4e-2 (6e-4) off in training loss,
# so no two summation orders could agree there.
SGD = {"optimizer": {"name": "sgd", "lr": 0.1}, "batch_size": 32, "epochs": 3}
# Plateau and early stopping with these seeds: members 7 and 8 stop after epoch 3, member 9 runs
# on to epoch 7, and only member 9's rate is ever cut (asserted by the test that uses it).
PER_MEMBER = {"optimizer": {"name": "sgd", "lr": 0.05, "momentum": 0.9}, "batch_size": 64, "epochs": 8,
              "schedule": {"name": "plateau", "monitor": "val_loss", "patience": 2, "factor": 0.5, "min_delta": 0.02},
              "early_stopping": {"monitor": "val_accuracy", "patience": 2, "min_delta": 0.005}}
EVERYTHING = LayerChanges.model_validate({"dropout": 0.25, "batchnorm": True, "l1": 1e-4, "l2": 1e-3})
MEASURED = ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "penalty", "lr")
# Losses agree to about 1e-6 here; a prediction may flip on a near tie.
LOSS_TOLERANCE, ACCURACY_TOLERANCE = 1e-4, 2 / 300


@pytest.fixture(scope="module")
def digits() -> tuple[ArrayDataset, ArrayDataset]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = torch.from_numpy((bunch.images * (255.0 / 16.0)).round().clip(0, 255)).to(torch.uint8)[:, None]
    labels = torch.from_numpy(bunch.target).long()
    return ArrayDataset(images[:500], labels[:500]), ArrayDataset(images[500:800], labels[500:800])


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class Checkpoints(TrainCallback):
    """Each checkpoint as a resume reads it: through its bytes."""

    def __init__(self):
        self.saved: dict[int, dict] = {}

    def on_checkpoint(self, epoch, state):
        self.saved[epoch] = parse_checkpoint(serialize_state(state))


def _trainer(digits, spec, seed, *, stacked, variant=None, augment=(), callbacks=()) -> Trainer:
    train, val = digits
    data = TrainData(train, val, val, Normalizer(torch.full((1, 1, 1, 1), 1 / 255.0), torch.zeros((1, 1, 1, 1))),
                     list(augment))
    built = build_model(MODEL, (1, 8, 8), 10, variant, generator_seed=seed)
    return Trainer(built, data, Train.model_validate(spec), seed, torch.device("cpu"), callbacks=callbacks,
                   own_rng=stacked)


def _alone(digits, spec, **options) -> tuple[list[Trainer], list]:
    """The lone runs, each built right before it trains (a lone trainer seeds the global generator
    its dropout draws from when it is built, as the runner builds it)."""
    trainers, results = [], []
    for seed in SEEDS:
        trainers.append(_trainer(digits, spec, seed, stacked=False, **options))
        results.append(trainers[-1].fit())
    return trainers, results


def _assert_same_run(alone, stacked, label: str) -> None:
    assert len(alone.history) == len(stacked.history), label
    for epoch, (a, b) in enumerate(zip(alone.history, stacked.history)):
        for key in MEASURED:
            tolerance = ACCURACY_TOLERANCE if key.endswith("accuracy") else LOSS_TOLERANCE
            assert b[key] == pytest.approx(a[key], abs=tolerance), f"{label}, epoch {epoch + 1}: {key}"
    assert (stacked.best_epoch, stacked.stopped_epoch, stacked.restored_best) == \
        (alone.best_epoch, alone.stopped_epoch, alone.restored_best), label
    for key in ("test_loss", "test_accuracy"):
        assert stacked.final[key] == pytest.approx(alone.final[key], abs=LOSS_TOLERANCE if "loss" in key
                                                   else ACCURACY_TOLERANCE), label


def _assert_same_weights(alone: Trainer, stacked: Trainer, tolerance: float = 1e-4) -> None:
    mine, theirs = stacked.model.state_dict(), alone.model.state_dict()
    assert mine.keys() == theirs.keys()
    for name, value in theirs.items():
        if value.is_floating_point():
            torch.testing.assert_close(mine[name], value, atol=tolerance, rtol=tolerance, msg=name)
        else:
            assert torch.equal(mine[name], value), name  # batch norm's step counters


@pytest.mark.parametrize("spec, variant, augment", [
    (SGD, EVERYTHING, ()),
    (ADAM, None, ({"translate": 1}, "hflip")),
], ids=["dropout-batchnorm-l1-l2", "augmentation"])
def test_a_stacked_group_trains_each_member_as_it_trains_alone(digits, spec, variant, augment):
    alone, results_alone = _alone(digits, spec, variant=variant, augment=augment)
    group = [_trainer(digits, spec, seed, stacked=True, variant=variant, augment=augment) for seed in SEEDS]
    results_stacked = StackedTrainer(group).fit()
    # The members differ from each other (their seeds), so agreeing with their own lone run is no accident.
    assert len({round(r.history[-1]["train_loss"], 4) for r in results_alone}) == 3
    for seed, a, b, lone, member in zip(SEEDS, results_alone, results_stacked, alone, group):
        _assert_same_run(a, b, f"seed {seed}")
        _assert_same_weights(lone, member)
        assert torch.allclose(b.probabilities["test"], a.probabilities["test"], atol=1e-4)


def test_each_member_stops_early_and_decays_its_rate_on_its_own(digits):
    results_alone = [_trainer(digits, PER_MEMBER, seed, stacked=False).fit() for seed in SEEDS]
    # The fixture has what it is for: members stop at different epochs, and the plateau fires for one only.
    stops = [result.stopped_epoch for result in results_alone]
    cut = [len({logs["lr"] for logs in result.history}) > 1 for result in results_alone]
    assert len({len(result.history) for result in results_alone}) > 1, stops
    assert cut.count(True) == 1, cut
    group = [_trainer(digits, PER_MEMBER, seed, stacked=True) for seed in SEEDS]
    results_stacked = StackedTrainer(group).fit()
    for seed, a, b in zip(SEEDS, results_alone, results_stacked):
        _assert_same_run(a, b, f"seed {seed}")
        assert [logs["lr"] for logs in b.history] == [logs["lr"] for logs in a.history]


def _diverging(trainer: Trainer) -> Trainer:
    with torch.no_grad():
        trainer.built.module.dense1[0].weight.mul_(1e38)  # its logits overflow: the loss is not finite
    return trainer


def test_a_member_that_diverges_ends_diverged_and_the_others_go_on(digits):
    alone, results_alone = [], []
    for seed in SEEDS:
        trainer = _trainer(digits, ADAM, seed, stacked=False)
        alone.append(_diverging(trainer) if seed == SEEDS[1] else trainer)
        try:
            results_alone.append(trainer.fit())
        except Diverged as error:
            results_alone.append(error)
    assert isinstance(results_alone[1], Diverged) and results_alone[1].epoch == 0  # the fixture's divergence
    group = [_trainer(digits, ADAM, seed, stacked=True) for seed in SEEDS]
    _diverging(group[1])
    results_stacked = StackedTrainer(group).fit()
    assert isinstance(results_stacked[1], Diverged) and results_stacked[1].epoch == 0
    for k in (0, 2):
        _assert_same_run(results_alone[k], results_stacked[k], f"seed {SEEDS[k]}")
        _assert_same_weights(alone[k], group[k])


def test_a_members_checkpoint_is_the_file_a_lone_run_writes_and_resumes_alone(digits):
    lone_saved, member_saved = Checkpoints(), Checkpoints()
    spec = {**SGD, "epochs": 4}
    lone = _trainer(digits, spec, SEEDS[0], stacked=False, variant=EVERYTHING, callbacks=[lone_saved])
    uninterrupted = lone.fit()
    group = [_trainer(digits, spec, seed, stacked=True, variant=EVERYTHING,
                      callbacks=[member_saved] if seed == SEEDS[0] else []) for seed in SEEDS]
    StackedTrainer(group).fit()
    ours, theirs = member_saved.saved[1], lone_saved.saved[1]
    assert ours.keys() == theirs.keys()
    # The same random streams, drawn as often: dropout's generator and the data order's, bit for bit.
    assert torch.equal(ours["rng_torch"], theirs["rng_torch"]) and torch.equal(ours["rng_data"], theirs["rng_data"])
    assert ours["epochs_done"] == theirs["epochs_done"] == 2
    for name, value in theirs["model"].items():
        torch.testing.assert_close(ours["model"][name], value, atol=1e-4, rtol=1e-4, msg=name)
    # Resumed alone from the member's checkpoint, the run ends as the uninterrupted lone run.
    resumed = _trainer(digits, spec, SEEDS[0], stacked=False, variant=EVERYTHING)
    resumed.load_state_dict(ours)
    _assert_same_run(uninterrupted, resumed.fit(), "resumed alone")
    _assert_same_weights(lone, resumed)


def test_a_stacked_group_resumed_from_its_members_checkpoints_ends_as_the_uninterrupted_group(digits):
    spec = {**PER_MEMBER, "epochs": 6}
    saved = [Checkpoints() for _ in SEEDS]
    whole = [_trainer(digits, spec, seed, stacked=True, variant=EVERYTHING, callbacks=[saved[k]])
             for k, seed in enumerate(SEEDS)]
    uninterrupted = StackedTrainer(whole).fit()
    resumed_from = 1  # after epoch 2: every member has a checkpoint there
    group = [_trainer(digits, spec, seed, stacked=True, variant=EVERYTHING) for seed in SEEDS]
    for trainer, checkpoints in zip(group, saved):
        trainer.load_state_dict(checkpoints.saved[resumed_from])
    resumed = StackedTrainer(group).fit()
    for a, b in zip(uninterrupted, resumed):
        assert [{k: v for k, v in logs.items() if k in MEASURED} for logs in b.history] == \
            [{k: v for k, v in logs.items() if k in MEASURED} for logs in a.history]  # bit for bit: one thread
    for a, b in zip(whole, group):
        _assert_same_weights(a, b, tolerance=0.0)


def test_members_resuming_from_different_epochs_are_refused(digits):
    saved = Checkpoints()
    first = _trainer(digits, ADAM, SEEDS[0], stacked=True, callbacks=[saved])
    StackedTrainer([first]).fit()
    resumed = _trainer(digits, ADAM, SEEDS[0], stacked=True)
    resumed.load_state_dict(saved.saved[0])
    with pytest.raises(ValueError, match="same epoch"):
        StackedTrainer([resumed, _trainer(digits, ADAM, SEEDS[1], stacked=True)])


def test_a_member_that_stops_leaves_at_once_and_its_checkpoint_there_only_finishes(digits):
    saved = [Checkpoints() for _ in SEEDS]
    group = [_trainer(digits, PER_MEMBER, seed, stacked=True, callbacks=[saved[k]]) for k, seed in enumerate(SEEDS)]
    left: list[tuple[int, int]] = []  # (member, epochs the last member had trained by then)
    results = StackedTrainer(group, leave=lambda i, outcome: left.append((i, len(group[-1].history)))).fit()
    first = min(range(3), key=lambda k: len(results[k].history))
    stop = results[first].stopped_epoch
    assert stop is not None and stop < len(results[-1].history) - 1  # the fixture: one stops before another
    # It was recorded done when it stopped, not when the group ended.
    assert (first, stop + 1) in left and sorted(i for i, _ in left) == [0, 1, 2]
    # Its last checkpoint is its stop: resumed there, alone, it only finishes, to the same result.
    state = saved[first].saved[stop]
    assert state["early_stopping"]["stopped_epoch"] == stop
    alone = _trainer(digits, PER_MEMBER, SEEDS[first], stacked=False)
    alone.load_state_dict(state)
    resumed = alone.fit()
    assert resumed.history == results[first].history and resumed.final == results[first].final
