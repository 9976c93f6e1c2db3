"""Shared helpers for the kernel tests: every kernel is checked against the eager expression it
replaces, on deep copies of the same modules, for outputs and for all gradients."""

from __future__ import annotations

import copy
from typing import Callable, Sequence

import pytest
import torch


@pytest.fixture(autouse=True)
def _seed_and_threads():
    torch.manual_seed(0)
    yield


def _flatten(out):
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, (tuple, list)):
        return [t for o in out for t in _flatten(o)]
    return []


def assert_equivalent(
    eager: Callable,
    kernel: Callable,
    modules: Sequence[torch.nn.Module],
    inputs: Sequence[torch.Tensor],
    *,
    backward: bool = True,
    **tol,
):
    """Run ``eager(*inputs, *modules)`` and ``kernel(...)`` on independent copies and compare
    outputs, input gradients and every parameter gradient (and buffers afterwards)."""
    mods_a = list(modules)
    mods_b = [copy.deepcopy(m) for m in modules]
    ins_a = [t.detach().clone().requires_grad_(backward and t.is_floating_point()) for t in inputs]
    ins_b = [t.detach().clone().requires_grad_(backward and t.is_floating_point()) for t in inputs]
    out_a = _flatten(eager(*ins_a, *mods_a))
    out_b = _flatten(kernel(*ins_b, *mods_b))
    assert len(out_a) == len(out_b)
    for a, b in zip(out_a, out_b):
        torch.testing.assert_close(b, a, **tol)
    if backward:
        grads = [torch.randn_like(a) for a in out_a if a.requires_grad]
        torch.autograd.backward([a for a in out_a if a.requires_grad], grads)
        torch.autograd.backward([b for b in out_b if b.requires_grad], grads)
        for a, b in zip(ins_a, ins_b):
            if a.requires_grad:
                torch.testing.assert_close(b.grad, a.grad, **tol)
        for ma, mb in zip(mods_a, mods_b):
            for (name, pa), (_, pb) in zip(ma.named_parameters(), mb.named_parameters()):
                assert (pa.grad is None) == (pb.grad is None), name
                if pa.grad is not None:
                    torch.testing.assert_close(pb.grad, pa.grad, msg=lambda m: f"{name}: {m}", **tol)
    for ma, mb in zip(mods_a, mods_b):
        for (name, ba), (_, bb) in zip(ma.named_buffers(), mb.named_buffers()):
            torch.testing.assert_close(bb, ba, msg=lambda m: f"buffer {name}: {m}")
    return mods_a, mods_b


@pytest.fixture
def equivalent():
    return assert_equivalent
