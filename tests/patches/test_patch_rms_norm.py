"""ADP011 on real torch modules: the patched RMSNorm computes what the hand-written one did,
with the same output dtype, forward and backward, for float32, bfloat16, float16 and float64
inputs and for float32 and bfloat16 weights.

The modules are the rule's own before-examples (LLaMA-style and T5-style norms), patched by
the real ``fix_text`` and executed side by side.
"""

from __future__ import annotations

import pytest
import torch

from adopter.ruleset import load_rules
from adopter.synth import fix_text

RULE = next(r for r in load_rules() if r.id == "ADP011")
FIXES = [e for e in RULE.examples if e.after is not None]
HIDDEN = 32


def _load(text: str, name: str) -> dict:
    namespace: dict = {"__name__": name}
    exec(compile(text, f"<{name}>", "exec"), namespace)
    return namespace


def _classes(example):
    patched = fix_text(example.before, "norm.py", [RULE])
    assert patched.applied, "the rule must rewrite the example"
    assert "torch.rsqrt" not in patched.text and "rms_norm(" in patched.text
    original, new = _load(example.before, "original"), _load(patched.text, "patched")
    names = [n for n, v in original.items() if isinstance(v, type) and issubclass(v, torch.nn.Module)
             and v is not torch.nn.Module and n != "nn"]
    assert len(names) == 1
    return original[names[0]], new[names[0]]


@pytest.mark.parametrize("example", FIXES, ids=[e.name.split(":")[0] for e in FIXES])
@pytest.mark.parametrize("input_dtype", [torch.float32, torch.bfloat16, torch.float16, torch.float64])
@pytest.mark.parametrize("weight_dtype", [torch.float32, torch.bfloat16])
def test_patched_norm_matches_forward_and_backward(example, input_dtype, weight_dtype):
    old_cls, new_cls = _classes(example)
    torch.manual_seed(0)
    old = old_cls(HIDDEN, eps=1e-5)
    with torch.no_grad():
        old.weight.normal_()
    old = old.to(weight_dtype)
    new = new_cls(HIDDEN, eps=1e-5).to(weight_dtype)
    new.load_state_dict(old.state_dict(), strict=True)

    x = (torch.randn(3, 5, HIDDEN, dtype=torch.float64) * 3).to(input_dtype)
    x_old = x.clone().requires_grad_(True)
    x_new = x.clone().requires_grad_(True)
    y_old, y_new = old(x_old), new(x_new)
    assert y_new.dtype == y_old.dtype  # dtype behaviour kept exactly
    low = torch.bfloat16 in (input_dtype, weight_dtype) or input_dtype == torch.float16
    tol = dict(rtol=2e-2, atol=2e-2) if low else dict(rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(y_new, y_old, **tol)

    grad = torch.randn_like(y_old)
    y_old.backward(grad)
    y_new.backward(grad)
    assert x_new.grad.dtype == x_old.grad.dtype
    torch.testing.assert_close(x_new.grad, x_old.grad, **tol)
    torch.testing.assert_close(new.weight.grad, old.weight.grad, **tol)


def test_eps_is_the_models_not_rms_norms_default():
    """rms_norm's default eps is the dtype's machine epsilon; the patch must pass the model's."""
    old_cls, new_cls = _classes(FIXES[0])
    old, new = old_cls(HIDDEN, eps=0.5), new_cls(HIDDEN, eps=0.5)
    new.load_state_dict(old.state_dict())
    x = torch.randn(2, HIDDEN) * 0.1  # small activations: eps dominates the variance
    torch.testing.assert_close(new(x), old(x))
    assert not torch.allclose(new(x), torch.nn.functional.rms_norm(x, (HIDDEN,)) * new.weight)
