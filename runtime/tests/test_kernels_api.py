"""Package-level guarantees: the exported names, cheap import, lazy/fail-safe compilation."""

from __future__ import annotations

import subprocess
import sys
import warnings

import pytest
import torch

import adopter_kernels as K
from adopter_kernels import _runtime


def test_exports_exactly_the_documented_api():
    assert sorted(K.__all__) == sorted(
        [
            "softmax",
            "dropout_add_layer_norm",
            "bias_gelu",
            "linear_gelu",
            "conv_bn",
            "linear_bn",
            "FoldingSequential",
            "fused_qkv",
            "sdpa_bert_self_attention",
            "sdpa_t5_attention",
            "sdpa_gpt2_attention",
            "liger_swiglu",
            "liger_silu_mul",
            "liger_rope",
            "liger_fused_linear_cross_entropy",
        ]
    )
    for name in K.__all__:
        assert callable(getattr(K, name))


def test_import_pulls_in_nothing_beyond_torch():
    code = (
        "import sys, torch\n"
        "before = set(sys.modules)\n"
        "import adopter_kernels\n"
        "extra = sorted(m for m in set(sys.modules) - before if not m.startswith('adopter_kernels'))\n"
        "print(extra)\n"
        "assert not extra, extra\n"
        "assert 'transformers' not in sys.modules\n"
        "assert 'torch._dynamo' not in sys.modules and 'torch._inductor' not in sys.modules\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_compile_is_never_used_for_cpu_tensors(monkeypatch):
    monkeypatch.setenv("ADOPTER_KERNELS_COMPILE", "1")
    assert not _runtime.compile_allowed(torch.zeros(2))


class _CudaLike:
    """What compile_allowed reads of a tensor (this machine has no CUDA device)."""

    is_cuda = True


def test_compile_on_cuda_is_opt_in(monkeypatch):
    # Measured slower than eager on an H200 (docs/training.md): off unless asked for.
    monkeypatch.delenv("ADOPTER_KERNELS_COMPILE", raising=False)
    monkeypatch.delenv("ADOPTER_KERNELS_NO_COMPILE", raising=False)
    assert not _runtime.compile_allowed(_CudaLike())
    monkeypatch.setenv("ADOPTER_KERNELS_COMPILE", "1")
    assert _runtime.compile_allowed(_CudaLike())
    monkeypatch.setenv("ADOPTER_KERNELS_NO_COMPILE", "1")  # the off switch wins
    assert not _runtime.compile_allowed(_CudaLike())


def test_lazy_compiled_compiles_on_first_call_only(monkeypatch):
    calls = []

    def fake_compile(fn, **kw):
        calls.append(fn)
        return fn

    monkeypatch.setattr(torch, "compile", fake_compile)
    lc = _runtime.LazyCompiled(lambda a: a + 1, "plus_one")
    assert calls == []  # nothing at construction
    assert lc(torch.ones(1)).item() == 2 and lc(torch.ones(1)).item() == 2
    assert len(calls) == 1


def test_lazy_compiled_falls_back_to_eager_when_the_compiler_fails(monkeypatch):
    def broken(*a, **k):
        raise RuntimeError("no triton here")

    monkeypatch.setattr(torch, "compile", lambda fn, **kw: broken)
    lc = _runtime.LazyCompiled(lambda a: a * 3, "times_three")
    with pytest.warns(RuntimeWarning, match="times_three"):
        assert lc(torch.ones(1)).item() == 3
    assert lc.broken
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert lc(torch.ones(1)).item() == 3  # eager from now on, silently


def test_lazy_compiled_reports_user_errors_without_disabling_itself(monkeypatch):
    def strict(fn, **kw):
        return fn

    monkeypatch.setattr(torch, "compile", strict)
    lc = _runtime.LazyCompiled(lambda a, b: a @ b, "matmul")
    with pytest.raises(RuntimeError, match="shapes cannot be multiplied"):
        lc(torch.ones(2, 3), torch.ones(2, 3))
    assert not lc.broken


def test_hooks_and_overridden_forward_disable_fast_paths():
    lin = torch.nn.Linear(2, 2)
    assert _runtime.is_plain(lin, torch.nn.Linear)
    h = lin.register_forward_hook(lambda *a: None)
    assert not _runtime.is_plain(lin, torch.nn.Linear)
    h.remove()

    class Custom(torch.nn.Linear):
        def forward(self, x):
            return super().forward(x) * 2

    assert not _runtime.is_plain(Custom(2, 2), torch.nn.Linear)


def test_tensor_signature_tracks_in_place_updates_and_replacement():
    p = torch.nn.Parameter(torch.zeros(3))
    s0 = _runtime.tensor_signature(p, None)
    with torch.no_grad():
        p.add_(1)
    s1 = _runtime.tensor_signature(p, None)
    assert s0 != s1
    p.data = torch.zeros(3)
    assert _runtime.tensor_signature(p, None) != s1
    with torch.inference_mode():
        t = torch.zeros(2)
    assert _runtime.tensor_signature(t) is None
