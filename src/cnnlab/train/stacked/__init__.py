"""The seeds of one configuration trained as one stacked model (``docs/stacked_seeds.md``):
``StackedForward`` computes all members' layers at once, ``StackedTrainer`` runs their epochs,
``policy`` says where it pays."""

from cnnlab.train.stacked.forward import MemberRandomness, StackedForward, unstackable
from cnnlab.train.stacked.policy import CPU_MAX_STEP_FLOPS, STACK_MODES, StackChoice, StackMode, choose
from cnnlab.train.stacked.trainer import StackedTrainer

__all__ = ["CPU_MAX_STEP_FLOPS", "MemberRandomness", "STACK_MODES", "StackChoice", "StackMode", "StackedForward",
           "StackedTrainer", "choose", "unstackable"]
