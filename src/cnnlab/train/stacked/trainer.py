"""Train the seeds of one configuration together: one forward and backward pass for all of them.

Each member is an ordinary ``Trainer`` (its own model, optimizer, schedule, early stopping, data
generator, history, callbacks and checkpoints); only the arithmetic of an epoch's steps and of
the per-epoch evaluations is shared (``forward.StackedForward``). So a member's learning rate,
plateau schedule and early stopping are its own, its checkpoint is the file a lone run writes
(any member can resume alone), and what it records is what it would record alone, to float
rounding: the grouped and batched products sum in another order than the lone run's.

A member that early stopping stops, or that diverges, leaves the stack: the others go on, and
the group ends when none is left.
"""

from __future__ import annotations

import math
import time
from typing import Callable, Optional, Sequence, Union

import torch
import torch.nn.functional as F

from cnnlab.data import ArrayDataset, augment_batch
from cnnlab.train.batches import Normalizer, ordered_batches
from cnnlab.train.evaluation import EvalResult
from cnnlab.train.stacked.forward import MemberRandomness, StackedForward
from cnnlab.train.trainer import Diverged, Trainer, TrainResult

# Evaluation batches of a group hold each member's share of a lone run's batch (the activation
# budget), but at least this many images per member, so that the step overhead does not return.
MIN_EVAL_IMAGES = 32

Outcome = Union[TrainResult, Diverged, Exception]


class StackedTrainer:
    """Trains ``members`` (lone trainers of one configuration, at the same epoch) as one stack."""

    def __init__(self, members: Sequence[Trainer], commit: Optional[Callable[[], None]] = None,
                 leave: Optional[Callable[[int, Outcome], None]] = None):
        first = members[0]
        if any(m.start_epoch != first.start_epoch for m in members):
            raise ValueError("the members of a stacked group must resume from the same epoch")
        if any(m.own_rng is None for m in members):
            raise ValueError("stacked members keep their own dropout generator (Trainer(own_rng=True))")
        self.members = list(members)
        # Called once the members' checkpoints of an epoch have all gone to their callbacks: the runner
        # sends them on together, to be stored in one transaction.
        self.commit = commit or (lambda: None)
        # Called with a member's index and outcome once it is done (stopped, diverged, finished, failed),
        # right after the commit of its last checkpoint: its run is recorded at once, not when the group ends.
        self._leave = leave or (lambda i, outcome: None)
        self.device = first.device
        self.spec = first.spec
        self.data = first.data  # the members' splits are one and the same (the repeats share the split)
        for member in self.members[1:]:  # so one copy serves them all (on a GPU each trainer made its own)
            member.data, member.normalizer = first.data, first.normalizer
        self.randomness = MemberRandomness([m.own_rng for m in members], self.device)
        self.forward = StackedForward([m.built for m in members], self.randomness)

    # ------------------------------------------------------------ loop

    def fit(self) -> list[Outcome]:
        """Train every member to its end; each member's result, or the divergence or error that
        ended it. Each member's outcome also goes to ``leave`` as soon as the member is done."""
        outcomes: dict[int, Outcome] = {}
        stopped: dict[int, Optional[int]] = {}
        for member in self.members:
            member._emit("on_train_start", member, member.start_epoch)
        active = []
        for i, member in enumerate(self.members):
            stopped[i] = member.stopped
            if stopped[i] is None and member.start_epoch < self.spec.epochs:
                active.append(i)
        epoch = self.members[0].start_epoch
        while active and epoch < self.spec.epochs:
            started = [self.members[i].begin_epoch(epoch) for i in active]
            count = len(active)
            trained = self._train_epoch(epoch, active)
            # Each member's share of the group's time: what its training cost, as a lone run's time
            # is (what the time constraint of a selection and every time column compare).
            share = (time.perf_counter() - min(started)) / count
            left: list[int] = []
            for i in list(active):
                if isinstance(trained[i], Diverged):
                    outcomes[i] = trained[i]
                    active.remove(i)
                    left.append(i)
            measured = self._evaluate_epoch(active)
            for i in list(active):
                member = self.members[i]
                stopped[i] = member.end_epoch(epoch, trained[i], share, measured.get(i))
                if stopped[i] is not None:
                    active.remove(i)
                    left.append(i)
                    self._last_checkpoint(i)
            self.commit()
            for i in left:
                if i not in outcomes:  # stopped early (a diverged member's outcome is its divergence)
                    outcomes[i] = self._finish(i, stopped[i])
                self._leave(i, outcomes[i])
            epoch += 1
        remaining = [i for i in range(len(self.members)) if i not in outcomes]
        for i in remaining:
            self._last_checkpoint(i)
        self.commit()
        for i in remaining:
            outcomes[i] = self._finish(i, stopped[i])
            self._leave(i, outcomes[i])
        return [outcomes[i] for i in range(len(self.members))]

    def _last_checkpoint(self, i: int) -> None:
        """A member's last state, checkpointed with the others' of the same epoch before it finishes.
        Killed before its run is recorded done, the member then resumes at its end and only
        finishes (measured, as here, by its own lone evaluation), never alone mid-way, where it
        would compute in another order than its group did."""
        member = self.members[i]
        self._sync_randomness()
        if member.history and member.callbacks:
            member._emit("on_checkpoint", len(member.history) - 1, member.state_dict(len(member.history) - 1))
        member.val_probabilities = None  # what it finishes with is measured by the lone path, resumed or not

    def _finish(self, i: int, stopped: Optional[int]) -> Outcome:
        """A member's end (best weights, final evaluation); an error there ends that member only."""
        try:
            return self.members[i].finish(stopped)
        except Exception as error:  # noqa: BLE001 - handed to leave, which fails this member's run alone
            return error

    def _sync_randomness(self) -> None:
        for member, state in zip(self.members, self.randomness.states):
            member.own_rng = state

    # ------------------------------------------------------------ one epoch

    def _stacked_normalizer(self, normalizer: Normalizer, count: int) -> Normalizer:
        return Normalizer(normalizer.scale.repeat(1, count, 1, 1), normalizer.shift.repeat(1, count, 1, 1))

    def _batches(self, active: list[int]):
        """The epoch's stacked batches: each member's images in its own shuffled order (drawn from
        its own generator, as ``shuffled_batches`` draws it), its own augmentation."""
        members = [self.members[i] for i in active]
        train: ArrayDataset = members[0].data.train
        normalizer = members[0].normalizer
        count, n, size = len(active), len(train), self.spec.batch_size
        orders = torch.stack([torch.randperm(n, generator=m.generator) for m in members]).to(train.images.device)
        augment = self.data.augment
        stacked = None if augment else self._stacked_normalizer(normalizer, count)
        for start in range(0, n, size):
            index = orders[:, start:start + size]  # (S, b)
            if augment:
                images = torch.stack([augment_batch(normalizer(train.images.index_select(0, row)), augment, m.generator)
                                      for row, m in zip(index, members)], dim=1)
            else:
                b = index.shape[1]
                # (b*S, C, H, W): image k of each member in turn, so a view is the stacked (b, S*C, H, W);
                # the normalizer turns it into floats and channels-last in one pass
                picked = train.images.index_select(0, index.t().reshape(-1))
                images = picked.view(b, count * picked.shape[1], *picked.shape[2:])
            x = stacked(images, torch.channels_last) if stacked is not None else self.forward.images(images)
            labels = train.labels.index_select(0, index.reshape(-1)).view(count, -1)
            yield x.to(self.device, non_blocking=True), labels.to(self.device, non_blocking=True)

    def _train_epoch(self, epoch: int, active: list[int]) -> dict[int, Union[dict[str, float], Diverged]]:
        members = [self.members[i] for i in active]
        for member in members:
            member.model.train()
        count = len(active)
        n = len(self.data.train)
        batches = math.ceil(n / self.spec.batch_size)
        loss_sum = torch.zeros(count, device=self.device)
        correct = torch.zeros(count, device=self.device, dtype=torch.long)
        penalties = [torch.zeros((), device=self.device) for _ in members]
        penalized = members[0].has_penalty
        autocast = members[0].autocast
        seen = 0
        started = last_report = time.perf_counter()
        callbacks = any(m.callbacks for m in members)
        try:
            for batch, (x, y) in enumerate(self._batches(active)):
                b = y.shape[1]
                with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=autocast):
                    logits = self.forward(x, active, training=True)
                    losses = F.cross_entropy(logits.float().reshape(count * b, -1), y.reshape(-1),
                                             reduction="none").view(count, b).mean(1)
                for member in members:
                    member.optimizer.zero_grad(set_to_none=True)
                total = losses.sum()  # each member's gradient is that of its own mean loss
                if penalized:
                    terms = [member.built.penalty() for member in members]
                    total = total + torch.stack(terms).sum()
                    penalties = [term.detach() for term in terms]
                total.backward()
                for member in members:
                    member.optimizer.step()
                seen += b
                loss_sum += losses.detach() * b
                correct += (logits.detach().argmax(2) == y).sum(1)
                now = time.perf_counter()
                if callbacks and (now - last_report >= Trainer.PROGRESS_SECONDS or batch == batches - 1):
                    last_report = now
                    losses_now, correct_now = (loss_sum / seen).tolist(), (correct.double() / seen).tolist()
                    rate = seen * count / max(now - started, 1e-9)
                    for k, member in enumerate(members):
                        member._emit("on_batch_end", epoch, batch + 1, batches, {
                            "loss": losses_now[k], "accuracy": correct_now[k], "images_per_second": rate})
        finally:  # the members' batch-norm statistics, whatever ends the epoch
            self.forward.flush()
        self._sync_randomness()
        rate = seen * count / (time.perf_counter() - started)  # each member's share of the group's time
        out: dict[int, Union[dict[str, float], Diverged]] = {}
        for k, i in enumerate(active):
            train_loss = float(loss_sum[k]) / seen
            if not math.isfinite(train_loss):
                out[i] = Diverged(epoch, train_loss)
                continue
            out[i] = {"train_loss": train_loss, "train_accuracy": int(correct[k]) / seen,
                      "penalty": float(penalties[k]), "train_images_per_second": rate}
        return out

    # ------------------------------------------------------------ evaluation

    def _evaluate_epoch(self, active: list[int]) -> dict[int, dict[str, EvalResult]]:
        """The per-epoch measurements ``Trainer.end_epoch`` would make, for all members at once."""
        if not active:
            return {}
        data = self.data
        measured: dict[int, dict[str, EvalResult]] = {i: {} for i in active}
        splits = []
        if data.val is not None and len(data.val):
            splits.append(("val", data.val))
        if data.test_each_epoch and data.test is not None and len(data.test):
            splits.append(("test", data.test))
        for name, split in splits:
            for i, result in zip(active, self.evaluate(split, active)):
                measured[i][name] = result
        return measured

    def evaluate(self, data: ArrayDataset, active: list[int]) -> list[EvalResult]:
        """Each active member's loss, accuracy and softmax outputs on ``data``, in inference mode."""
        members = [self.members[i] for i in active]
        first = members[0]
        count = len(active)
        size = max(MIN_EVAL_IMAGES, first.eval_batch_size // count)
        loss_sum = torch.zeros(count, dtype=torch.float64, device=self.device)
        correct = torch.zeros(count, dtype=torch.long, device=self.device)
        kept = []
        with torch.inference_mode(), torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=first.autocast):
            for x, y in ordered_batches(data, size, first.eval_normalizer, self.device):
                b = y.shape[0]
                if x.dim() == 4:
                    x = x.repeat(1, count, 1, 1).contiguous(memory_format=torch.channels_last)
                logits = self.forward(x, active, training=False).float()  # (S, b, classes)
                loss_sum += F.cross_entropy(logits.reshape(count * b, -1), y.repeat(count),
                                            reduction="none").view(count, b).double().sum(1)
                correct += (logits.argmax(2) == y).sum(1)
                kept.append(logits.softmax(2).cpu())
        n = max(len(data), 1)
        probabilities = torch.cat(kept, dim=1) if kept else None
        return [EvalResult(float(loss_sum[k]) / n, int(correct[k]) / n,
                           probabilities[k] if probabilities is not None else None) for k in range(count)]

