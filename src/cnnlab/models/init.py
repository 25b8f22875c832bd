"""Weight initializers: PyTorch's own, or Keras' (glorot uniform kernels, zero biases), or He.

Keras and PyTorch initialize differently (PyTorch's kaiming-uniform with a=sqrt(5) and
non-zero biases), which matters when a study is compared with a Keras report; ``keras`` makes
a cnnlab model start the way the Keras one did.
"""

from __future__ import annotations

from torch import nn

from cnnlab.errors import ModelError
from cnnlab.registry import did_you_mean

INIT_SCHEMES = ("default", "keras", "xavier", "he")


def check_init(scheme: str) -> None:
    """A ModelError with a did-you-mean for an unknown scheme, checked before anything is built."""
    if scheme not in INIT_SCHEMES:
        raise ModelError(
            f"unknown init '{scheme}'{did_you_mean(str(scheme), INIT_SCHEMES)}; known: {', '.join(INIT_SCHEMES)}"
        )


def initialize(module: nn.Module, scheme: str) -> None:
    """Re-initialize every conv/dense kernel and bias (and batch norm) in place.

    default: leave PyTorch's initialization; keras and xavier: glorot (xavier) uniform kernels,
    zero biases; he: kaiming normal for ReLU with fan_in, zero biases (torch's untruncated
    normal, where Keras' he_normal truncates at two standard deviations). Batch norm always
    starts at gamma 1, beta 0, moving mean 0 and variance 1, as in both libraries.
    """
    check_init(scheme)
    if scheme == "default":
        return
    for child in module.modules():
        if isinstance(child, (nn.Conv2d, nn.Linear)):
            if scheme == "he":
                nn.init.kaiming_normal_(child.weight, mode="fan_in", nonlinearity="relu")
            else:
                nn.init.xavier_uniform_(child.weight)
            if child.bias is not None:
                nn.init.zeros_(child.bias)
        elif isinstance(child, nn.modules.batchnorm._BatchNorm):
            child.reset_parameters()
