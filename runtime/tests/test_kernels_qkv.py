"""fused_qkv: one GEMM, three results equal to the three Linears, gradients on the originals."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from adopter_kernels import fused_qkv
from adopter_kernels import projections


def _eager(x, q, k, v):
    return q(x), k(x), v(x)


def _kernel(x, q, k, v):
    return fused_qkv(x, q, k, v)


BIASES = {"all": (True, True, True), "none": (False, False, False), "mixed": (True, False, True)}


@pytest.mark.parametrize("bias", BIASES.values(), ids=BIASES.keys())
def test_fused_qkv_outputs_and_gradients(bias, equivalent):
    q, k, v = (nn.Linear(16, 16, bias=b) for b in bias)
    equivalent(_eager, _kernel, [q, k, v], [torch.randn(2, 5, 16)])


def test_fused_qkv_grouped_query_widths(equivalent):
    q, k, v = nn.Linear(16, 16), nn.Linear(16, 4), nn.Linear(16, 4, bias=False)
    equivalent(_eager, _kernel, [q, k, v], [torch.randn(3, 16)])


def test_fused_qkv_is_one_gemm():
    q, k, v = nn.Linear(8, 8), nn.Linear(8, 8), nn.Linear(8, 8)
    outs = fused_qkv(torch.randn(2, 3, 8), q, k, v)
    assert len({o.untyped_storage().data_ptr() for o in outs}) == 1


def test_fused_qkv_outputs_support_in_place_updates_and_head_views():
    q, k, v = nn.Linear(8, 8), nn.Linear(8, 8), nn.Linear(8, 8)
    x = torch.randn(2, 3, 8, requires_grad=True)
    a, b, c = fused_qkv(x, q, k, v)
    a = a.mul_(0.5)  # e.g. scaling queries in place, legal on the original Linear outputs
    heads = a.view(2, 3, 2, 4).transpose(1, 2)
    (heads.sum() + b.sum() + c.sum()).backward()
    x2 = x.detach().clone().requires_grad_()
    ref = q(x2).mul_(0.5).sum() + k(x2).sum() + v(x2).sum()
    ref.backward()
    torch.testing.assert_close(x.grad, x2.grad)


def test_fused_qkv_training_never_uses_a_stale_cache():
    q, k, v = nn.Linear(6, 6), nn.Linear(6, 6), nn.Linear(6, 6)
    opt = torch.optim.SGD([p for m in (q, k, v) for p in m.parameters()], lr=0.1)
    x = torch.randn(4, 6)
    with torch.no_grad():
        fused_qkv(x, q, k, v)  # fills the cache
    cached = projections._QKV_CACHE[q][3]
    for _ in range(2):
        opt.zero_grad()
        outs = fused_qkv(x, q, k, v)
        for o, m in zip(outs, (q, k, v)):
            torch.testing.assert_close(o, m(x))
        sum(o.square().sum() for o in outs).backward()
        assert all(m.weight.grad is not None for m in (q, k, v))
        opt.step()
    with torch.no_grad():
        outs = fused_qkv(x, q, k, v)
        assert projections._QKV_CACHE[q][3] is not cached  # refreshed after the steps
        for o, m in zip(outs, (q, k, v)):
            torch.testing.assert_close(o, m(x))
        again = projections._QKV_CACHE[q][3]
        fused_qkv(x, q, k, v)
        assert projections._QKV_CACHE[q][3] is again  # unchanged weights: cache hit


def test_fused_qkv_cache_sees_load_state_dict_and_inference_mode():
    q, k, v = nn.Linear(6, 6), nn.Linear(6, 6), nn.Linear(6, 6)
    x = torch.randn(2, 6)
    with torch.inference_mode():
        fused_qkv(x, q, k, v)
    k.load_state_dict(nn.Linear(6, 6).state_dict())
    with torch.inference_mode():
        outs = fused_qkv(x, q, k, v)
        for o, m in zip(outs, (q, k, v)):
            torch.testing.assert_close(o, m(x))
    # frozen weights, input requiring grad: the (inference-filled) cache must still work
    for m in (q, k, v):
        m.requires_grad_(False)
    xg = x.clone().requires_grad_()
    sum(o.sum() for o in fused_qkv(xg, q, k, v)).backward()
    xr = x.clone().requires_grad_()
    (q(xr).sum() + k(xr).sum() + v(xr).sum()).backward()
    torch.testing.assert_close(xg.grad, xr.grad)


def test_fused_qkv_mismatched_layers_run_separately(equivalent):
    # different input widths cannot share a GEMM; a non-Linear is just called
    q, k, v = nn.Linear(8, 4), nn.Linear(8, 4), nn.Identity()
    equivalent(_eager, _kernel, [q, k, v], [torch.randn(2, 8)])
    assert not projections._fusable(nn.Linear(8, 4), nn.Linear(6, 4), nn.Linear(8, 4))
    assert not projections._fusable(nn.Linear(8, 4), nn.Linear(8, 4), nn.Linear(8, 4).double())
    assert projections._fusable(nn.Linear(8, 4), nn.Linear(8, 2, bias=False), nn.Linear(8, 4))
