"""FoldingSequential: an nn.Sequential whose adjacent Conv/Linear -> BatchNorm members are folded
in eval mode, and which otherwise is nn.Sequential (children, state dict, indexing, hooks,
training, program transformations)."""

from __future__ import annotations

import copy
import io
import pickle
from collections import OrderedDict

import pytest
import torch
from torch import nn

from adopter_kernels import FoldingSequential
from adopter_kernels import folding

# float64 throughout: folding reorders a per-channel affine map into the conv's reduction, so
# eval outputs differ from the two-step ones only by a few ulps of the (order-1) activations.
TOL = dict(rtol=1e-12, atol=1e-12)


def _randomize(module):
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                if m.running_mean is not None:
                    m.running_mean.normal_(0, 0.5)
                    m.running_var.uniform_(0.5, 2.0)
                if m.weight is not None:
                    m.weight.normal_(1, 0.2)
                    m.bias.normal_(0, 0.2)
    return module


def _cnn_members():
    return [nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
            nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=2), nn.BatchNorm2d(8),
            nn.MaxPool2d(2), nn.Conv2d(8, 4, 1), nn.BatchNorm2d(4)]


def _pair(members_fn, *, ordered=False):
    """The same members in an nn.Sequential and in a FoldingSequential with the original's
    state dict loaded strictly (float64)."""
    torch.manual_seed(0)
    members = members_fn()
    if ordered:
        original = nn.Sequential(OrderedDict((f"m{i}", m) for i, m in enumerate(members)))
    else:
        original = nn.Sequential(*members)
    original = _randomize(original).double()
    clones = [copy.deepcopy(m) for m in original]
    for m in clones:  # fresh parameters, so the strict load is what makes them equal
        for p in m.parameters():
            torch.nn.init.normal_(p)
    if ordered:
        patched = FoldingSequential(OrderedDict(zip(original._modules.keys(), clones)))
    else:
        patched = FoldingSequential(*clones)
    patched = patched.double()
    result = patched.load_state_dict(original.state_dict(), strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    return original, patched


def _count_calls(monkeypatch):
    calls = []
    real = folding._fold

    def spy(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(folding, "_fold", spy)
    return calls


@pytest.mark.parametrize("ordered", [False, True], ids=["modules", "OrderedDict"])
def test_eval_output_matches_and_pairs_are_folded(ordered, monkeypatch):
    original, patched = _pair(_cnn_members, ordered=ordered)
    assert list(patched.state_dict()) == list(original.state_dict())
    original.eval(), patched.eval()
    calls = _count_calls(monkeypatch)
    x = torch.randn(2, 3, 16, 16, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(patched(x), original(x), **TOL)
    assert len(calls) == 3  # the three Conv2d -> BatchNorm2d pairs
    with torch.no_grad():
        patched(x)
    assert len(calls) == 3  # folded weights cached while nothing changes


def test_training_outputs_buffers_and_grads_are_identical(monkeypatch):
    original, patched = _pair(_cnn_members)
    original.train(), patched.train()
    calls = _count_calls(monkeypatch)
    x = torch.randn(2, 3, 16, 16, dtype=torch.float64)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    ya, yb = original(xa), patched(xb)
    assert torch.equal(ya, yb)
    g = torch.randn_like(ya)
    ya.backward(g), yb.backward(g)
    assert torch.equal(xa.grad, xb.grad)
    for (name, pa), pb in zip(original.named_parameters(), patched.parameters()):
        assert torch.equal(pa.grad, pb.grad), name
    for (name, ba), bb in zip(original.named_buffers(), patched.buffers()):
        assert torch.equal(ba, bb), name  # running statistics updated the same way
    assert not calls  # batch statistics: nothing folded


def test_eval_with_grad_reaches_the_same_parameters():
    """Frozen BatchNorm statistics while fine-tuning: folding stays differentiable."""
    original, patched = _pair(_cnn_members)
    original.eval(), patched.eval()
    x = torch.randn(2, 3, 16, 16, dtype=torch.float64)
    ya, yb = original(x), patched(x)
    torch.testing.assert_close(yb, ya, **TOL)
    g = torch.randn_like(ya)
    ya.backward(g), yb.backward(g)
    for (name, pa), pb in zip(original.named_parameters(), patched.parameters()):
        torch.testing.assert_close(pb.grad, pa.grad, msg=lambda m: f"{name}: {m}", rtol=1e-10, atol=1e-10)


def test_linear_batchnorm1d_pairs():
    original, patched = _pair(lambda: [nn.Linear(6, 5), nn.BatchNorm1d(5), nn.ReLU(),
                                       nn.Linear(5, 3, bias=False), nn.BatchNorm1d(3, affine=False)])
    original.eval(), patched.eval()
    x = torch.randn(7, 6, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(patched(x), original(x), **TOL)


def test_batch_statistics_in_eval_and_mismatched_pairs_run_as_written(monkeypatch):
    # BatchNorm without running statistics, a Linear whose output BatchNorm1d reads as
    # (N, C, L) with C not the Linear's features, a norm before the conv
    original, patched = _pair(lambda: [nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4, track_running_stats=False),
                                       nn.Flatten(2), nn.Linear(196, 4), nn.BatchNorm1d(4),
                                       nn.BatchNorm1d(4), nn.Conv1d(4, 4, 1)])
    original.eval(), patched.eval()
    calls = _count_calls(monkeypatch)
    x = torch.randn(2, 3, 16, 16, dtype=torch.float64)
    with torch.no_grad():
        assert torch.equal(patched(x), original(x))
    assert not calls


def test_member_hooks_are_honoured_and_prevent_folding(monkeypatch):
    original, patched = _pair(_cnn_members)
    original.eval(), patched.eval()
    seen = {"a": [], "b": []}
    original[1].register_forward_hook(lambda m, i, o: seen["a"].append(i[0].clone()))
    patched[1].register_forward_hook(lambda m, i, o: seen["b"].append(i[0].clone()))
    # a pre-hook that changes the conv's input must change the result as it does for Sequential
    original[3].register_forward_pre_hook(lambda m, i: (i[0] * 2,))
    patched[3].register_forward_pre_hook(lambda m, i: (i[0] * 2,))
    calls = _count_calls(monkeypatch)
    x = torch.randn(2, 3, 16, 16, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(patched(x), original(x), **TOL)
    assert len(seen["b"]) == 1 and torch.equal(seen["b"][0], seen["a"][0])  # the conv's output
    assert len(calls) == 1  # only the last pair has no hook


def test_container_hooks_run_and_global_hooks_prevent_folding(monkeypatch):
    original, patched = _pair(_cnn_members)
    original.eval(), patched.eval()
    outs = []
    patched.register_forward_hook(lambda m, i, o: outs.append(o))
    calls = _count_calls(monkeypatch)
    x = torch.randn(2, 3, 16, 16, dtype=torch.float64)
    with torch.no_grad():
        y = patched(x)
    assert len(outs) == 1 and outs[0] is y and len(calls) == 3
    with torch.no_grad():
        expected = original(x)
    called = []
    handle = nn.modules.module.register_module_forward_hook(lambda m, i, o: called.append(type(m)))
    try:
        with torch.no_grad():
            torch.testing.assert_close(patched(x), expected, **TOL)
    finally:
        handle.remove()
    # a global hook sees every member called, as with nn.Sequential (each member once, then the container)
    assert called[:-1] == [type(m) for m in patched] and called[-1] is FoldingSequential
    assert len(calls) == 3


def test_members_replaced_or_appended_later_are_honoured():
    original, patched = _pair(_cnn_members)
    original.eval(), patched.eval()
    for seq in (original, patched):
        seq[2] = nn.Identity()  # conv -> bn -> Identity now
        seq.append(nn.Conv2d(4, 2, 1).double())
    patched[-1].load_state_dict(original[-1].state_dict())
    x = torch.randn(2, 3, 16, 16, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(patched(x), original(x), **TOL)


def test_a_member_returning_a_tuple_ends_folding():
    class Split(nn.Module):
        def forward(self, x):
            return x, x

    class First(nn.Module):
        def forward(self, pair):
            return pair[0]

    original, patched = _pair(lambda: [nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4), Split(), First(),
                                       nn.Conv2d(4, 4, 1), nn.BatchNorm2d(4)])
    original.eval(), patched.eval()
    x = torch.randn(2, 3, 5, 5, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(patched(x), original(x), **TOL)


def test_sequential_behaviour_is_kept():
    _, patched = _pair(_cnn_members)
    assert isinstance(patched, nn.Sequential)
    assert len(patched) == 8 and isinstance(patched[1], nn.BatchNorm2d)
    assert type(patched[0:2]) is FoldingSequential and len(patched[0:2]) == 2
    assert [type(m) for m in patched] == [type(m) for m in _cnn_members()]
    clone = copy.deepcopy(patched)
    restored = pickle.loads(pickle.dumps(patched))
    buffer = io.BytesIO()
    torch.save(patched, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=False)
    x = torch.randn(2, 3, 16, 16, dtype=torch.float64)
    patched.eval()
    with torch.no_grad():
        expected = patched(x)
        for other in (clone, restored, loaded):
            assert type(other) is FoldingSequential
            other.eval()
            torch.testing.assert_close(other(x), expected, **TOL)


@pytest.mark.parametrize("tool", ["script", "trace", "fx", "export", "compile"])
def test_program_transformations_record_the_sequential_program(tool):
    original, patched = _pair(_cnn_members)
    original.eval(), patched.eval()
    x = torch.randn(2, 3, 16, 16, dtype=torch.float64)
    if tool == "script":
        recorded = torch.jit.script(patched)
    elif tool == "trace":
        recorded = torch.jit.trace(patched, (x,))
        assert "conv" in str(recorded.graph) and "batch_norm" in str(recorded.inlined_graph)
    elif tool == "fx":
        recorded = torch.fx.symbolic_trace(patched)
        assert len([n for n in recorded.graph.nodes if n.op == "call_module"]) == 8
    elif tool == "export":
        recorded = torch.export.export(patched, (x,)).module()
    else:
        recorded = torch.compile(patched, backend="eager", fullgraph=True)
    with torch.no_grad():
        # The recorded program is the two-step one: equal to the original's bit for bit.
        assert torch.equal(recorded(x), original(x))


class SeparableConv2d(nn.Sequential):
    """Depth-wise then 1x1: a Sequential subclass whose output is a Conv2d's."""

    def __init__(self, cin, cout):
        super().__init__(nn.Conv2d(cin, cin, 3, padding=1, groups=cin, bias=False), nn.Conv2d(cin, cout, 1))


def _separable_members():
    return [SeparableConv2d(3, 6), nn.BatchNorm2d(6), nn.ReLU(),
            nn.Sequential(nn.Conv2d(6, 6, 3, padding=1), nn.ReLU(), nn.Linear(10, 4)), nn.BatchNorm2d(6)]


def test_a_member_ending_in_a_conv_folds_into_its_last_conv(monkeypatch):
    original, patched = _pair(_separable_members)
    original.eval(), patched.eval()
    calls = _count_calls(monkeypatch)
    x = torch.randn(2, 3, 10, 10, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(patched(x), original(x), **TOL)
    assert len(calls) == 1  # the separable conv's 1x1; the other Sequential ends in a Linear


def test_a_member_ending_in_a_conv_runs_as_written_with_hooks_or_its_own_forward(monkeypatch):
    original, patched = _pair(_separable_members)
    original.eval(), patched.eval()
    seen = []
    patched[0].register_forward_hook(lambda m, i, o: seen.append(o))
    calls = _count_calls(monkeypatch)
    x = torch.randn(2, 3, 10, 10, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(patched(x), original(x), **TOL)
    assert len(seen) == 1 and not calls

    class Scaled(SeparableConv2d):
        def forward(self, x):
            return super().forward(x) * 2

    scaled = Scaled(3, 6).double().eval()
    bn = _randomize(nn.BatchNorm2d(6)).double().eval()
    with torch.no_grad():
        assert torch.equal(FoldingSequential(scaled, bn)(x), bn(scaled(x)))
    assert not calls


def test_conv_bn_over_a_separable_conv_attribute_matches_training_and_eval(monkeypatch):
    from adopter_kernels import conv_bn

    torch.manual_seed(1)
    sep, bn = SeparableConv2d(4, 5).double(), _randomize(nn.BatchNorm2d(5)).double()
    x = torch.randn(2, 4, 7, 7, dtype=torch.float64)
    sep.eval(), bn.eval()
    calls = _count_calls(monkeypatch)
    with torch.no_grad():
        torch.testing.assert_close(conv_bn(x, sep, bn), bn(sep(x)), **TOL)
    assert len(calls) == 1
    sep.train(), bn.train()
    a, b = copy.deepcopy((sep, bn)), copy.deepcopy((sep, bn))
    ya, yb = a[1](a[0](x)), conv_bn(x, *b)
    assert torch.equal(ya, yb)
    ya.sum().backward(), yb.sum().backward()
    for pa, pb in zip([*a[0].parameters(), *a[1].parameters()], [*b[0].parameters(), *b[1].parameters()]):
        assert torch.equal(pa.grad, pb.grad)
    assert torch.equal(a[1].running_mean, b[1].running_mean)


def test_linear_gelu_pair_runs_as_bias_gelu(monkeypatch):
    """A Linear -> GELU pair of members (rule ADP006 in a container) goes through bias_gelu's
    fused path and computes what nn.Sequential computes (outputs and gradients); a ReLU, or a
    Linear subclass, runs as written."""
    from adopter_kernels import activations

    calls = []
    real = activations._fused
    monkeypatch.setattr(activations, "_fused", lambda *a: calls.append(a[2]) or real(*a))
    torch.manual_seed(0)
    members = [torch.nn.Linear(6, 12), torch.nn.GELU(approximate="tanh"), torch.nn.Linear(12, 6)]
    plain = torch.nn.Sequential(*members).double()
    folding = FoldingSequential(*copy.deepcopy(list(plain))).double()
    x = torch.randn(4, 6, dtype=torch.float64, requires_grad=True)
    y = x.detach().clone().requires_grad_(True)
    torch.testing.assert_close(folding(y), plain(x))
    plain(x).sum().backward()
    folding(y).sum().backward()
    torch.testing.assert_close(y.grad, x.grad)
    assert calls == ["tanh", "tanh"]

    class MyLinear(torch.nn.Linear):
        def forward(self, x):
            return super().forward(x) + 1

    calls.clear()
    for seq in (FoldingSequential(torch.nn.Linear(6, 6), torch.nn.ReLU()),
                FoldingSequential(MyLinear(6, 6), torch.nn.GELU())):
        reference = torch.nn.Sequential(*seq)
        z = torch.randn(2, 6)
        torch.testing.assert_close(seq(z), reference(z))
    assert calls == []


def _spy_pairs(monkeypatch):
    """The (first, second) members of every pair the container hands a kernel."""
    pairs = []
    real = folding._pair_kernel

    def spy(first, second):
        kernel = real(first, second)
        if kernel is not None:
            pairs.append((type(first), type(second)))
        return kernel

    monkeypatch.setattr(folding, "_pair_kernel", spy)
    return pairs


def test_plain_identity_members_between_a_pair_are_passed_over(monkeypatch):
    # open_clip's MLP at scale_fc=False: Linear, nn.Identity() (the LayerNorm's place), GELU
    torch.manual_seed(0)
    members = [nn.Linear(6, 12), nn.Identity(), nn.GELU(), nn.Linear(12, 6),
               nn.Conv2d(3, 4, 1), nn.Identity(), nn.Identity(), nn.BatchNorm2d(4)]
    original = nn.Sequential(*members[:4]).double().eval()
    patched = FoldingSequential(*copy.deepcopy(list(original))).double().eval()
    pairs = _spy_pairs(monkeypatch)
    x = torch.randn(3, 6, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(patched(x), original(x), **TOL)
    assert pairs == [(nn.Linear, nn.GELU)]
    convs = _randomize(nn.Sequential(*members[4:])).double().eval()
    folded = FoldingSequential(*copy.deepcopy(list(convs))).double().eval()
    pairs.clear()
    calls = _count_calls(monkeypatch)
    image = torch.randn(2, 3, 5, 5, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(folded(image), convs(image), **TOL)
    assert pairs == [(nn.Conv2d, nn.BatchNorm2d)] and len(calls) == 1


def test_a_hooked_identity_or_another_layer_between_keeps_the_members_apart(monkeypatch):
    torch.manual_seed(0)
    hooked = nn.Identity()
    seen = []
    hooked.register_forward_hook(lambda m, i, o: seen.append(o))
    for middle in (hooked, nn.LayerNorm(12)):
        patched = FoldingSequential(nn.Linear(6, 12), middle, nn.GELU()).double().eval()
        original = nn.Sequential(*patched).double()
        pairs = _spy_pairs(monkeypatch)
        x = torch.randn(3, 6, dtype=torch.float64)
        with torch.no_grad():
            torch.testing.assert_close(patched(x), nn.Sequential.forward(original, x), **TOL)
        assert pairs == []
    assert len(seen) == 2  # the hook ran in both calls (patched and as written)
