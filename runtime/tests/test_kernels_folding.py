"""conv_bn and linear_bn: folding in eval mode, exact eager behaviour in training mode, and a
folded-weight cache that never serves stale weights."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from adopter_kernels import conv_bn, linear_bn
from adopter_kernels import folding


def _randomize_bn(bn):
    with torch.no_grad():
        if bn.running_mean is not None:
            bn.running_mean.normal_(0, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
        if bn.weight is not None:
            bn.weight.normal_(1, 0.2)
            bn.bias.normal_(0, 0.2)
    return bn


def _cb_eager(x, conv, bn):
    return bn(conv(x))


def _cb_kernel(x, conv, bn):
    return conv_bn(x, conv, bn)


def _lb_eager(x, lin, bn):
    return bn(lin(x))


def _lb_kernel(x, lin, bn):
    return linear_bn(x, lin, bn)


CONVS = {
    "plain": dict(),
    "no-bias": dict(bias=False),
    "stride-pad": dict(stride=2, padding=1),
    "groups-dilation": dict(groups=2, dilation=2, padding=2),
    "reflect": dict(padding=1, padding_mode="reflect"),
    "circular": dict(padding=1, padding_mode="circular"),
    "replicate-same": dict(padding="same", padding_mode="replicate"),
}


@pytest.mark.parametrize("kw", CONVS.values(), ids=CONVS.keys())
def test_conv_bn_eval_folds_and_matches(kw, equivalent, monkeypatch):
    conv, bn = nn.Conv2d(4, 6, 3, **kw), _randomize_bn(nn.BatchNorm2d(6))
    conv.eval(), bn.eval()
    x = torch.randn(2, 4, 9, 9)
    with torch.no_grad():
        expected = bn(conv(x))

        def no_bn(*a, **k):
            raise AssertionError("batch_norm must not run when folding")

        monkeypatch.setattr(F, "batch_norm", no_bn)
        torch.testing.assert_close(conv_bn(x, conv, bn), expected)
    monkeypatch.undo()
    # With grad, gradients reach conv and BN affine parameters through the folding. Folding
    # reorders float sums, so weight gradients (sums over every output pixel) are compared in
    # float64, where the reordering is invisible; the float32 outputs above use default tolerances.
    equivalent(_cb_eager, _cb_kernel, [conv.double(), bn.double()], [x.double()])


@pytest.mark.parametrize("affine", [True, False])
def test_conv_bn_train_mode_is_the_two_step_computation(affine, equivalent):
    conv, bn = nn.Conv2d(3, 5, 3, padding=1), nn.BatchNorm2d(5, affine=affine, momentum=0.3)
    conv.train(), bn.train()
    a, b = equivalent(_cb_eager, _cb_kernel, [conv, bn], [torch.randn(4, 3, 6, 6)])
    # running statistics and the batch counter were updated identically (checked in equivalent)
    assert a[1].num_batches_tracked.item() == b[1].num_batches_tracked.item() == 1


def test_conv_bn_without_running_stats_uses_batch_stats_in_eval(equivalent):
    conv, bn = nn.Conv2d(3, 5, 1), nn.BatchNorm2d(5, track_running_stats=False)
    conv.eval(), bn.eval()
    equivalent(_cb_eager, _cb_kernel, [conv, bn], [torch.randn(4, 3, 5, 5)])


@pytest.mark.parametrize("dims", [1, 3])
def test_conv_bn_other_dimensionalities(dims, equivalent):
    conv = (nn.Conv1d if dims == 1 else nn.Conv3d)(3, 4, 3, padding=1)
    bn = _randomize_bn((nn.BatchNorm1d if dims == 1 else nn.BatchNorm3d)(4)).eval()
    x = torch.randn((2, 3) + (5,) * dims, dtype=torch.float64)
    equivalent(_cb_eager, _cb_kernel, [conv.double(), bn.double()], [x])


def test_conv_bn_unbatched_input_keeps_the_eager_error():
    conv, bn = nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4).eval()
    with pytest.raises(ValueError):
        bn(conv(torch.randn(3, 8, 8)))
    with pytest.raises(ValueError):
        conv_bn(torch.randn(3, 8, 8), conv, bn)


def test_conv_bn_cache_is_reused_and_invalidated_by_an_optimizer_step():
    torch.manual_seed(1)
    conv, bn = nn.Conv2d(3, 4, 3), _randomize_bn(nn.BatchNorm2d(4))
    ref_conv, ref_bn = copy.deepcopy(conv), copy.deepcopy(bn)
    x = torch.randn(2, 3, 7, 7)
    opt = torch.optim.SGD(list(conv.parameters()) + list(bn.parameters()), lr=0.1, momentum=0.9)
    ref_opt = torch.optim.SGD(list(ref_conv.parameters()) + list(ref_bn.parameters()), lr=0.1, momentum=0.9)
    for step in range(3):
        for m in (conv, bn, ref_conv, ref_bn):
            m.eval()
        with torch.no_grad():
            got = conv_bn(x, conv, bn)
            cached = folding._FOLD_CACHE[conv][2]
            again = conv_bn(x, conv, bn)
            assert folding._FOLD_CACHE[conv][2] is cached  # second call served from the cache
            torch.testing.assert_close(got, ref_bn(ref_conv(x)))
            torch.testing.assert_close(again, got)
        # a training step (batch statistics) through the kernel and through eager
        for m in (conv, bn, ref_conv, ref_bn):
            m.train()
        opt.zero_grad(), ref_opt.zero_grad()
        conv_bn(x, conv, bn).square().mean().backward()
        ref_bn(ref_conv(x)).square().mean().backward()
        opt.step(), ref_opt.step()
        torch.testing.assert_close(bn.running_mean, ref_bn.running_mean)
        torch.testing.assert_close(bn.running_var, ref_bn.running_var)
        torch.testing.assert_close(conv.weight, ref_conv.weight)


def test_conv_bn_cache_sees_load_state_dict_and_eval_steps_with_grad():
    conv, bn = nn.Conv2d(2, 3, 1), _randomize_bn(nn.BatchNorm2d(3)).eval()
    x = torch.randn(1, 2, 4, 4)
    with torch.no_grad():
        first = conv_bn(x, conv, bn)
    other_conv, other_bn = nn.Conv2d(2, 3, 1), _randomize_bn(nn.BatchNorm2d(3)).eval()
    conv.load_state_dict(other_conv.state_dict())
    bn.load_state_dict(other_bn.state_dict())
    with torch.no_grad():
        second = conv_bn(x, conv, bn)
        torch.testing.assert_close(second, other_bn(other_conv(x)))
    assert not torch.allclose(first, second)
    # an eval-mode fine-tuning step (grad enabled) folds inside autograd, then no_grad sees it
    opt = torch.optim.SGD(conv.parameters(), lr=0.5)
    conv_bn(x, conv, bn).sum().backward()
    opt.step()
    with torch.no_grad():
        torch.testing.assert_close(conv_bn(x, conv, bn), bn(conv(x)))


def test_conv_bn_cache_filled_in_inference_mode_serves_grad_enabled_frozen_calls():
    conv, bn = nn.Conv2d(2, 3, 3), _randomize_bn(nn.BatchNorm2d(3)).eval()
    for p in list(conv.parameters()) + list(bn.parameters()):
        p.requires_grad_(False)
    x = torch.randn(1, 2, 5, 5)
    with torch.inference_mode():
        torch.testing.assert_close(conv_bn(x, conv, bn), bn(conv(x)))
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    conv_bn(xa, conv, bn).sum().backward()
    bn(conv(xb)).sum().backward()
    torch.testing.assert_close(xa.grad, xb.grad)


def test_conv_bn_with_parameters_created_in_inference_mode():
    with torch.inference_mode():
        conv, bn = nn.Conv2d(2, 3, 3), _randomize_bn(nn.BatchNorm2d(3)).eval()
        x = torch.randn(1, 2, 5, 5)
        torch.testing.assert_close(conv_bn(x, conv, bn), bn(conv(x)))


def test_conv_bn_non_matching_modules_run_as_written(equivalent):
    # transposed conv and a BatchNorm of the wrong dimensionality are not folded
    deconv, bn = nn.ConvTranspose2d(3, 4, 2), _randomize_bn(nn.BatchNorm2d(4)).eval()
    equivalent(_cb_eager, _cb_kernel, [deconv, bn], [torch.randn(2, 3, 4, 4)])
    conv, relu = nn.Conv2d(3, 4, 1), nn.ReLU()
    equivalent(_cb_eager, _cb_kernel, [conv, relu], [torch.randn(2, 3, 4, 4)])


# ------------------------------------------------------------------------------------ linear_bn


@pytest.mark.parametrize("bias", [True, False])
def test_linear_bn_eval_folds_and_matches(bias, equivalent, monkeypatch):
    lin, bn = nn.Linear(10, 6, bias=bias), _randomize_bn(nn.BatchNorm1d(6)).eval()
    x = torch.randn(5, 10)
    with torch.no_grad():
        expected = bn(lin(x))
        monkeypatch.setattr(F, "batch_norm", lambda *a, **k: (_ for _ in ()).throw(AssertionError()))
        torch.testing.assert_close(linear_bn(x, lin, bn), expected)
    monkeypatch.undo()
    equivalent(_lb_eager, _lb_kernel, [lin.double(), bn.double()], [x.double()])


def test_linear_bn_train_mode_updates_running_stats_like_eager(equivalent):
    lin, bn = nn.Linear(10, 6), nn.BatchNorm1d(6, momentum=None)  # cumulative average
    a, b = equivalent(_lb_eager, _lb_kernel, [lin, bn], [torch.randn(8, 10)])
    assert a[1].num_batches_tracked.item() == 1


def test_linear_bn_3d_input_is_not_folded(equivalent):
    # BatchNorm1d on (N, C, L) normalises dim 1 (here the sequence), not the Linear's features
    lin, bn = nn.Linear(8, 5), _randomize_bn(nn.BatchNorm1d(6)).eval()
    equivalent(_lb_eager, _lb_kernel, [lin, bn], [torch.randn(4, 6, 8)])


def test_linear_bn_cache_invalidated_by_optimizer_step():
    lin, bn = nn.Linear(4, 3), _randomize_bn(nn.BatchNorm1d(3)).eval()
    x = torch.randn(6, 4)
    with torch.no_grad():
        before = linear_bn(x, lin, bn)
    opt = torch.optim.Adam(list(lin.parameters()) + list(bn.parameters()), lr=0.1)
    linear_bn(x, lin, bn).pow(2).sum().backward()
    opt.step()
    with torch.no_grad():
        after = linear_bn(x, lin, bn)
        torch.testing.assert_close(after, bn(lin(x)))
    assert not torch.allclose(before, after)
