"""The compiled 2x2 max-pool kernel computes exactly what PyTorch's max pooling computes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from cnnlab.models import build_model
from cnnlab.train.fast import FastForward, max_pool

from tests.models import architectures as arch
from tests.models.architectures import CIFAR10, layers

HAS_COMPILER = any(shutil.which(name) for name in ("cc", "gcc", "clang"))
needs_compiler = pytest.mark.skipif(not HAS_COMPILER, reason="no C compiler on this machine")


def _input(shape, dtype, kind):
    generator = torch.Generator().manual_seed(sum(shape))
    if kind == "ties":  # few distinct values, zeros included: the first maximum must win
        x = torch.randint(-1, 2, shape, generator=generator).float()
    else:
        x = torch.randn(shape, generator=generator)
    if kind == "nan":
        x.view(-1)[:: 7] = float("nan")
    return x.to(dtype).contiguous(memory_format=torch.channels_last)


@needs_compiler
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
@pytest.mark.parametrize("shape", [(3, 64, 30, 30), (2, 3, 7, 9), (5, 17, 2, 3), (1, 1, 4, 4), (2, 4, 6, 5), (2, 8, 5, 7), (3, 12, 5, 6), (2, 16, 6, 5), (2, 24, 4, 4)])
@pytest.mark.parametrize("kind", ["random", "ties", "nan"])
def test_values_gradients_and_tie_breaking_equal_pytorchs(shape, dtype, kind, threads):
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        x = _input(shape, dtype, kind)
        assert max_pool.applies(x, 2, 2, 0)
        ours_in = x.clone().requires_grad_()
        theirs_in = x.clone().requires_grad_()
        ours, theirs = max_pool.max_pool_2x2(ours_in), F.max_pool2d(theirs_in, 2, 2)
        assert ours.is_contiguous(memory_format=torch.channels_last)
        torch.testing.assert_close(ours, theirs, rtol=0, atol=0, equal_nan=True)
        grad = torch.randn(theirs.shape, generator=torch.Generator().manual_seed(1)).to(dtype)
        ours.backward(grad)
        theirs.backward(grad)
        # Every input gradient is written: the dropped odd row/column gets exact zeros, not garbage.
        torch.testing.assert_close(ours_in.grad, theirs_in.grad, rtol=0, atol=0)
        assert ours_in.grad.is_contiguous(memory_format=torch.channels_last)
        with torch.no_grad():
            torch.testing.assert_close(max_pool.max_pool_2x2(x), theirs.detach(), rtol=0, atol=0, equal_nan=True)
    finally:
        torch.set_num_threads(previous)


def test_only_2x2_stride_2_channels_last_cpu_pooling_applies():
    x = torch.zeros(2, 4, 6, 6).contiguous(memory_format=torch.channels_last)
    assert not max_pool.applies(x.contiguous(), 2, 2, 0)  # NCHW
    assert not max_pool.applies(x, 3, 2, 0)
    assert not max_pool.applies(x, 2, 1, 0)
    assert not max_pool.applies(x, 2, 2, 1)
    assert not max_pool.applies(x.double(), 2, 2, 0)
    assert not max_pool.applies(torch.zeros(2, 4, 1, 6).contiguous(memory_format=torch.channels_last), 2, 2, 0)


@needs_compiler
@pytest.mark.parametrize("kernel_pays", [True, False])
def test_the_trainers_forward_pools_where_it_measured_faster_and_still_matches_the_model(monkeypatch, kernel_pays):
    monkeypatch.setattr(max_pool, "pays", lambda x: kernel_pays)  # what the timing of this shape found
    built = build_model(layers(arch.A2), CIFAR10, 10, generator_seed=0)
    built.module.to(memory_format=torch.channels_last)
    fast = FastForward(built)
    x = torch.randn((4,) + CIFAR10, generator=torch.Generator().manual_seed(0))
    x = x.contiguous(memory_format=torch.channels_last)
    out = fast(x)
    seen, frontier = set(), [out.grad_fn]
    while frontier:
        node = frontier.pop()
        if node is not None and node not in seen:
            seen.add(node)
            frontier += [parent for parent, _ in node.next_functions]
    kinds = {type(node).__name__ for node in seen}
    assert ("_MaxPool2x2Backward" in kinds) == kernel_pays
    assert ("MaxPool2DWithIndicesBackward0" in kinds) == (not kernel_pays)
    torch.testing.assert_close(out, built.module(x), rtol=1e-4, atol=1e-5)  # dense: oneDNN vs MKL rounding


@needs_compiler
def test_the_timing_of_a_shape_is_done_once_and_leaves_the_global_generator_alone():
    x = torch.randn(8, 16, 12, 12).contiguous(memory_format=torch.channels_last).requires_grad_()
    before = torch.get_rng_state()
    first = max_pool.pays(x)
    # A run's dropout draws from the global generator: timing a shape must not move its stream.
    assert torch.equal(torch.get_rng_state(), before)
    assert isinstance(first, bool)
    key = (tuple(x.shape), x.dtype, True, torch.get_num_threads())
    max_pool._FASTER[key] = not first  # remembered: the second call does not time again
    assert max_pool.pays(x) is (not first)
    del max_pool._FASTER[key]


def _in_fresh_process(tmp_path: Path, env: dict[str, str]) -> str:
    """Whether the kernel is used, decided in a new process with its own user cache."""
    script = textwrap.dedent("""
        import torch
        from cnnlab.models import build_model
        from cnnlab.train.fast import FastForward, max_pool
        from tests.models import architectures as arch
        from tests.models.architectures import CIFAR10, layers
        built = build_model(layers(arch.A2), CIFAR10, 10, generator_seed=0)
        built.module.to(memory_format=torch.channels_last)
        x = torch.randn((4,) + CIFAR10).contiguous(memory_format=torch.channels_last)
        torch.testing.assert_close(FastForward(built)(x), built.module(x))
        print("kernel" if max_pool.available() else "pytorch")
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                          cwd=Path(__file__).resolve().parents[3],
                          env={**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), **env})
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@needs_compiler
def test_the_kernel_is_compiled_once_into_the_user_cache(tmp_path):
    assert _in_fresh_process(tmp_path, {}) == "kernel"
    built = sorted((tmp_path / "cache" / "cnnlab" / "kernels").iterdir())
    assert [path.suffix for path in built] == [".so"]
    stamp = built[0].stat().st_mtime_ns
    assert _in_fresh_process(tmp_path, {}) == "kernel"
    assert built[0].stat().st_mtime_ns == stamp  # reused, not rebuilt


def test_without_a_working_compiler_training_falls_back_and_leaves_no_debris(tmp_path):
    broken = tmp_path / "bin" / "cc"
    broken.parent.mkdir()
    # A compiler that dies halfway through writing its output.
    broken.write_text('#!/bin/sh\nfor a; do case "$prev" in -o) echo half > "$a";; esac; prev="$a"; done\nexit 1\n')
    broken.chmod(0o755)
    env = {"PATH": str(broken.parent), "CC": str(broken)}  # the only compiler it can find
    assert _in_fresh_process(tmp_path, env) == "pytorch"
    folder = tmp_path / "cache" / "cnnlab" / "kernels"
    assert not folder.exists() or list(folder.iterdir()) == []


def test_the_switch_turns_the_kernel_off(tmp_path):
    assert _in_fresh_process(tmp_path, {max_pool.ENV_SWITCH: "0"}) == "pytorch"
