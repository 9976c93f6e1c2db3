"""adopter_kernels.liger_swiglu / liger_rope (ADP013 / ADP014's targets): the guarded calls
into Liger Kernel.

Liger needs CUDA and Triton, so on CPU the wrappers must compute exactly the original
expressions (``act(gate) * up``; ``(q * cos) + (rotate_half(q) * sin)``);
what can be checked of Liger itself here is that the function it calls exists with the
signature used: it is read from the liger-kernel 0.8.5 wheel, downloaded at test time with
pip (never vendored), without importing it.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import zipfile

import pytest
import torch
from torch import nn

from adopter_kernels import liger_rope, liger_silu_mul, liger_swiglu
from adopter_kernels.liger import LIGER_ROPE, LIGER_SWIGLU, _fresh, _rope_shapes_fit, is_rotate_half, is_silu

transformers_activations = pytest.importorskip("transformers.activations")


@pytest.mark.parametrize("act", [nn.SiLU(), transformers_activations.ACT2FN["silu"], nn.GELU(),
                                 transformers_activations.ACT2FN["gelu_new"]], ids=["SiLU", "hf-silu", "GELU", "gelu_new"])
def test_cpu_computes_the_original_expression_exactly(act):
    gate = torch.randn(2, 5, 16, requires_grad=True)
    up = torch.randn(2, 5, 16, requires_grad=True)
    out = liger_swiglu(gate, up, act)
    expected = act(gate) * up
    torch.testing.assert_close(out, expected, rtol=0, atol=0)
    (g1, u1) = torch.autograd.grad(out.sum(), (gate, up))
    (g2, u2) = torch.autograd.grad(expected.sum(), (gate, up))
    torch.testing.assert_close(g1, g2, rtol=0, atol=0)
    torch.testing.assert_close(u1, u2, rtol=0, atol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_function_form_on_cpu_is_silu_times_up_exactly(dtype):
    gate = torch.randn(2, 5, 16, dtype=dtype, requires_grad=True)
    up = torch.randn(2, 5, 16, dtype=dtype, requires_grad=True)
    out = liger_silu_mul(gate, up)
    expected = nn.functional.silu(gate) * up
    torch.testing.assert_close(out, expected, rtol=0, atol=0)
    grads = torch.autograd.grad(out.sum(), (gate, up))
    torch.testing.assert_close(grads, torch.autograd.grad(expected.sum(), (gate, up)), rtol=0, atol=0)


def test_function_form_takes_liger_for_cuda_tensors_only(monkeypatch):
    """The function form passes F.silu to the guard, which is_silu accepts: Liger's function
    is called for CUDA tensors of one shape and dtype (faked here: no GPU), never on CPU."""
    from adopter_kernels import liger

    calls = []
    monkeypatch.setattr(liger, "_liger", lambda *name: (lambda a, b: calls.append(name) or a * 0))
    monkeypatch.setattr(liger, "recording", lambda *t: False)
    gate, up = torch.randn(3, 4), torch.randn(3, 4)
    torch.testing.assert_close(liger_silu_mul(gate, up), nn.functional.silu(gate) * up, rtol=0, atol=0)
    assert calls == []
    monkeypatch.setattr(torch.Tensor, "is_cuda", property(lambda self: True))
    liger_silu_mul(gate, up)
    assert calls == [LIGER_SWIGLU]
    liger_silu_mul(gate, up[:1])  # shapes that only broadcast: the eager expression
    assert calls == [LIGER_SWIGLU]


def test_only_real_silu_takes_the_fused_path():
    assert is_silu(nn.SiLU()) and is_silu(transformers_activations.ACT2FN["silu"])
    assert is_silu(nn.functional.silu)
    assert not is_silu(nn.SiLU(inplace=True))
    assert not is_silu(nn.GELU()) and not is_silu(transformers_activations.ACT2FN["gelu"])
    hooked = nn.SiLU()
    hooked.register_forward_hook(lambda *a: None)
    assert not is_silu(hooked)

    class Custom(nn.SiLU):
        def forward(self, x):
            return super().forward(x) * 2

    assert not is_silu(Custom())


@pytest.fixture(scope="module")
def liger_wheel(tmp_path_factory):
    folder = tmp_path_factory.mktemp("liger")
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "-q",
         "liger-kernel==0.8.5", "-d", str(folder)], capture_output=True, text=True, timeout=300)
    wheels = list(folder.glob("liger_kernel-0.8.5-*.whl"))
    if proc.returncode != 0 or not wheels:
        pytest.skip(f"liger-kernel wheel not downloadable here: {proc.stderr.strip()[-200:]}")
    return wheels[0]


def test_the_liger_function_called_exists_with_that_signature(liger_wheel):
    module, name = LIGER_SWIGLU
    with zipfile.ZipFile(liger_wheel) as wheel:
        source = wheel.read(module.replace(".", "/") + ".py").decode()
    functions = {f.name: f for f in ast.parse(source).body if isinstance(f, ast.FunctionDef)}
    assert name in functions
    params = [a.arg for a in functions[name].args.args]
    assert params == ["a", "b"]  # liger_swiglu(a, b) == silu(a) * b: the wrapper calls fused(gate, up)
    assert "LigerSiLUMulFunction.apply(a, b)" in ast.unparse(functions[name])


def _functions(wheel, module):
    with zipfile.ZipFile(wheel) as archive:
        source = archive.read(module.replace(".", "/") + ".py").decode()
    return {f.name: f for f in ast.parse(source).body if isinstance(f, ast.FunctionDef)}


def test_the_liger_rope_function_exists_with_that_signature(liger_wheel):
    module, name = LIGER_ROPE
    functions = _functions(liger_wheel, module)
    assert name in functions
    args = functions[name].args
    # liger_rope(q, k, cos, sin, position_ids=None, unsqueeze_dim=1, ...): the wrapper calls fused(q, k, cos, sin)
    assert [a.arg for a in args.args][:6] == ["q", "k", "cos", "sin", "position_ids", "unsqueeze_dim"]
    assert len(args.defaults) >= len(args.args) - 4  # everything after sin has a default
    assert "LigerRopeFunction.apply(q, k, cos, sin" in ast.unparse(functions[name])


def test_liger_rope_kernel_writes_into_the_transposed_contiguous_storage(liger_wheel):
    """Why the wrapper copies q and k: Liger's forward rotates ``q.transpose(1, 2).contiguous()``
    in place and returns a view of it, so a q made by ``view(...).transpose(1, 2)`` would be
    overwritten.  The copy made by ``_fresh`` has exactly that layout, so it is what Liger writes."""
    forward = ast.unparse(_functions(liger_wheel, "liger_kernel.ops.rope")["rope_forward"])
    assert "q = q.transpose(1, 2)" in forward and "q = q.contiguous()" in forward
    assert "return (q.transpose(1, 2), k.transpose(1, 2), cos, sin)" in forward


def _rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float64])
@pytest.mark.parametrize("cos_shape", ["batch", "one", "2d"])
def test_rope_on_cpu_is_the_original_expression_bit_for_bit(dtype, cos_shape):
    bsz, heads, kv_heads, seq, dim = 2, 4, 2, 5, 8
    q = torch.randn(bsz, seq, heads, dim, dtype=dtype).transpose(1, 2).requires_grad_(True)
    k = torch.randn(bsz, kv_heads, seq, dim, dtype=dtype, requires_grad=True)
    shape = {"batch": (bsz, 1, seq, dim), "one": (1, 1, seq, dim), "2d": (seq, dim)}[cos_shape]
    angles = torch.randn(shape, dtype=torch.float64)
    cos, sin = angles.cos().to(dtype), angles.sin().to(dtype)
    q_out, k_out = liger_rope(q, k, cos, sin, _rotate_half)
    q_ref, k_ref = (q * cos) + (_rotate_half(q) * sin), (k * cos) + (_rotate_half(k) * sin)
    torch.testing.assert_close(q_out, q_ref, rtol=0, atol=0)
    torch.testing.assert_close(k_out, k_ref, rtol=0, atol=0)
    grads = torch.autograd.grad((q_out * 2 + 1).sum() + k_out.pow(2).sum(), (q, k))
    expected = torch.autograd.grad((q_ref * 2 + 1).sum() + k_ref.pow(2).sum(), (q, k))
    for got, want in zip(grads, expected):
        torch.testing.assert_close(got, want, rtol=0, atol=0)


def test_rope_falls_back_to_the_callers_own_rotate_half():
    """A helper named rotate_half that rotates differently is still what the code computes."""
    def other(x):
        return x.flip(-1)

    q, k = torch.randn(1, 2, 3, 4), torch.randn(1, 2, 3, 4)
    cos, sin = torch.randn(3, 4), torch.randn(3, 4)
    q_out, k_out = liger_rope(q, k, cos, sin, other)
    torch.testing.assert_close(q_out, (q * cos) + (other(q) * sin), rtol=0, atol=0)
    torch.testing.assert_close(k_out, (k * cos) + (other(k) * sin), rtol=0, atol=0)


def test_only_the_half_rotation_is_recognised():
    assert is_rotate_half(_rotate_half, 64) and is_rotate_half(_rotate_half, 2)
    assert not is_rotate_half(_rotate_half, 7)  # odd head size: no halves
    assert not is_rotate_half(lambda x: x.flip(-1), 8)
    assert not is_rotate_half(lambda x: -_rotate_half(x), 8)
    assert not is_rotate_half(lambda x: _rotate_half(x) * 1.5, 8)
    assert not is_rotate_half(lambda x: _rotate_half(x).double(), 8)

    def interleaved(x):  # GPT-J / CodeGen's rotate_every_two
        x1, x2 = x[..., ::2], x[..., 1::2]
        return torch.stack((-x2, x1), dim=-1).flatten(-2)

    assert not is_rotate_half(interleaved, 8)

    def broken(x):
        raise RuntimeError("no")

    assert not is_rotate_half(broken, 8)


def test_liger_is_only_given_the_layouts_it_broadcasts_like_eager():
    q, k = torch.empty(2, 4, 5, 8), torch.empty(2, 2, 5, 8)
    assert _rope_shapes_fit(q, k, torch.empty(2, 1, 5, 8), torch.empty(2, 1, 5, 8))
    assert _rope_shapes_fit(q, k, torch.empty(1, 1, 5, 8), torch.empty(1, 1, 5, 8))
    assert _rope_shapes_fit(q, k, torch.empty(5, 8), torch.empty(5, 8))
    # (bsz, seq, dim) broadcasts bsz against the heads in eager: not Liger's meaning
    assert not _rope_shapes_fit(q, k, torch.empty(2, 5, 8), torch.empty(2, 5, 8))
    assert not _rope_shapes_fit(q, k, torch.empty(2, 4, 5, 8), torch.empty(2, 4, 5, 8))  # per-head angles
    assert not _rope_shapes_fit(q, k, torch.empty(5, 4), torch.empty(5, 4))  # partial rotary width
    assert not _rope_shapes_fit(q, k, torch.empty(5, 8), torch.empty(1, 1, 5, 8))
    assert not _rope_shapes_fit(q, torch.empty(2, 2, 6, 8), torch.empty(5, 8), torch.empty(5, 8))
    assert not _rope_shapes_fit(torch.empty(2, 4, 5, 7), torch.empty(2, 2, 5, 7), torch.empty(5, 7), torch.empty(5, 7))
    assert not _rope_shapes_fit(q.flatten(0, 1), k, torch.empty(5, 8), torch.empty(5, 8))


def test_liger_gets_copies_never_the_callers_q():
    base = torch.randn(2, 5, 4, 8)
    q = base.transpose(1, 2)  # Hugging Face's layout: q.transpose(1, 2) is contiguous
    copy = _fresh(q)
    torch.testing.assert_close(copy, q, rtol=0, atol=0)
    assert copy.shape == q.shape
    assert copy.untyped_storage().data_ptr() != base.untyped_storage().data_ptr()
    # Liger's own .contiguous() on the transposed copy is then a no-op: it writes into the copy
    assert copy.transpose(1, 2).is_contiguous()
    assert _fresh(torch.randn(2, 4, 5, 8)).transpose(1, 2).is_contiguous()


def test_the_liger_fused_linear_cross_entropy_exists_with_that_signature(liger_wheel):
    from adopter_kernels.liger import LIGER_FLCE

    module, name = LIGER_FLCE
    args = _functions(liger_wheel, module)[name].args
    names = [a.arg for a in args.args]
    # the wrapper calls fused(hidden_2d, weight, labels_1d, bias, ignore_index=, label_smoothing=, reduction=)
    assert names[:4] == ["input", "weight", "target", "bias"]
    assert {"ignore_index", "label_smoothing", "reduction"} <= set(names)


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_fused_linear_cross_entropy_on_cpu_is_the_eager_loss_bit_for_bit(bias, dtype):
    from adopter_kernels import liger_fused_linear_cross_entropy

    head = nn.Linear(16, 50, bias=bias).to(dtype)
    hidden = torch.randn(2, 7, 16, dtype=dtype, requires_grad=True)
    labels = torch.randint(0, 50, (2, 7))
    labels[0, 2] = -100  # ignored position
    loss = liger_fused_linear_cross_entropy(hidden[:, :-1], head, labels[:, 1:])
    logits = head(hidden).float()
    shift_logits = logits[..., :-1, :].contiguous()
    expected = nn.CrossEntropyLoss()(shift_logits.view(-1, 50), labels[..., 1:].contiguous().view(-1))
    # Shifting the hidden states before the head (not the logits after it) changes the matmul's
    # shape, which may round differently in bfloat16; in float32 it is bit-exact here.
    tol = dict(rtol=0, atol=0) if dtype == torch.float32 else dict(rtol=2e-2, atol=2e-2)
    torch.testing.assert_close(loss, expected, **tol)
    got = torch.autograd.grad(loss, (hidden, head.weight))
    want = torch.autograd.grad(expected, (hidden, head.weight))
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, **tol)
