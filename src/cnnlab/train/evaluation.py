"""Evaluation in inference mode with large batches; the model's train/eval mode is restored."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F

from cnnlab.data import ArrayDataset
from cnnlab.train.batches import Normalizer, ordered_batches


@dataclass
class EvalResult:
    loss: float
    accuracy: float
    probabilities: Optional[torch.Tensor] = None  # N x classes, float32, when asked for


def evaluate(
    model: torch.nn.Module,
    data: ArrayDataset,
    normalizer: Normalizer,
    device: torch.device,
    batch_size: int = 1024,
    autocast: bool = False,
    keep_probabilities: bool = False,
    memory_format: torch.memory_format = torch.contiguous_format,
) -> EvalResult:
    """Mean cross-entropy and accuracy over ``data``; optionally every softmax output."""
    was_training = model.training
    model.eval()
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    correct = torch.zeros((), dtype=torch.long, device=device)
    kept = []
    try:
        with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
            for x, y in ordered_batches(data, batch_size, normalizer, device, memory_format):
                logits = model(x).float()
                loss_sum += F.cross_entropy(logits, y, reduction="sum").double()
                correct += (logits.argmax(1) == y).sum()
                if keep_probabilities:
                    kept.append(logits.softmax(1).cpu())
    finally:
        model.train(was_training)
    n = max(len(data), 1)
    probabilities = torch.cat(kept) if kept else None
    return EvalResult(loss_sum.item() / n, correct.item() / n, probabilities)
