"""Forms found while checking the blind batch of research63 (plain-torch LLM code of
fine-tuning kits, an inference engine and a linear-attention library).  The fixtures are ours.

- A module function stored on another object's attribute (``mod.Attention.forward =
  patched_forward``, how fine-tuning kits swap in their attention): nothing in the file calls it,
  so it was read only by the file-scope rules, and its RoPE and hand-written attention were
  missed.  It is the patched class's method now: a root of the model flows.  Near-miss: the same
  patched forward with a softmax over the query axis is no SDPA site.
- A module's public method with exactly its ``forward``'s parameters (``forward_torch`` next to
  a ``forward`` that calls an extension): the plain-torch path a runner calls instead of
  ``forward``.  Nothing in the file calls it, and it takes one tensor, so it was no entry point
  and its RMSNorm was missed.  Near-misses: the same method computing a layer norm (mean
  subtracted); a public one-tensor method with another signature stays unread, as before.
"""

from __future__ import annotations

from corpus_forms import found, line_of, rules

from adopter.synth import fix_text

PATCHED = """\
import math

import torch
from torch import nn


def rotate_half(x):
    x1, x2 = torch.chunk(x, 2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def apply_rope(q, k, cos, sin):
    q_out = (q * cos) + (rotate_half(q) * sin)
    k_out = (k * cos) + (rotate_half(k) * sin)
    return q_out, k_out


def patched_forward(self, hidden_states, cos, sin, attention_mask=None):
    b, t, _ = hidden_states.shape
    q = self.q_proj(hidden_states).view(b, t, self.num_heads, self.head_dim).transpose(1, 2)
    k = self.k_proj(hidden_states).view(b, t, self.num_heads, self.head_dim).transpose(1, 2)
    v = self.v_proj(hidden_states).view(b, t, self.num_heads, self.head_dim).transpose(1, 2)
    q, k = apply_rope(q, k, cos, sin)
    scores = torch.matmul(q, k.transpose(2, 3)) / math.sqrt(self.head_dim)
    if attention_mask is not None:
        scores = scores + attention_mask
    probs = nn.functional.softmax(scores, dim=-1, dtype=torch.float32).to(q.dtype)
    out = torch.matmul(probs, v).transpose(1, 2).reshape(b, t, -1)
    return self.o_proj(out)


def apply_patch(modeling):
    modeling.Attention.forward = patched_forward
"""

PATCHED_NEAR = PATCHED.replace("softmax(scores, dim=-1,", "softmax(scores, dim=-2,")

ALTERNATIVE = """\
import torch
from torch import nn


class RMSNorm(nn.Module):
    def __init__(self, d, eps=1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.variance_epsilon = eps

    def forward(self, hidden_states, cache=None, output_fp32=False, **kwargs):
        out = torch.empty_like(hidden_states)
        torch.ops.myext.rms_norm(hidden_states, self.weight, out, self.variance_epsilon)
        return out

    def forward_torch(self, hidden_states, cache=None, output_fp32=False, **kwargs):
        variance = hidden_states.to(torch.float32).pow(2).mean(-1, keepdim=True)
        hidden_states = hidden_states * torch.rsqrt(variance + self.variance_epsilon)
        if not output_fp32:
            hidden_states = hidden_states.to(self.weight.dtype)
        return hidden_states * self.weight
"""

ALTERNATIVE_NEAR = """\
import torch
from torch import nn


class LayerNorm(nn.Module):
    def __init__(self, d, eps=1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.variance_epsilon = eps

    def forward(self, hidden_states, cache=None, **kwargs):
        out = torch.empty_like(hidden_states)
        torch.ops.myext.layer_norm(hidden_states, self.weight, out, self.variance_epsilon)
        return out

    def forward_torch(self, hidden_states, cache=None, **kwargs):
        mean = hidden_states.mean(-1, keepdim=True)
        variance = (hidden_states - mean).pow(2).mean(-1, keepdim=True)
        hidden_states = (hidden_states - mean) * torch.rsqrt(variance + self.variance_epsilon)
        return hidden_states * self.weight
"""


def _covers(code: str, rule: str, needle: str) -> bool:
    at = line_of(code, needle)
    return any(f.line <= at <= f.end_line for f in found(code, rule))


def test_rope_in_a_forward_stored_on_a_patched_class_is_found():
    assert _covers(PATCHED, "ADP014", "q_out = (q * cos)")


def test_attention_in_a_forward_stored_on_a_patched_class_is_found():
    assert _covers(PATCHED, "ADP010", "probs = nn.functional.softmax")


def test_a_patched_forward_with_softmax_over_queries_is_no_sdpa_site():
    assert found(PATCHED_NEAR, "ADP010") == []
    assert _covers(PATCHED_NEAR, "ADP014", "q_out = (q * cos)")  # (the rest is read as before)


def test_a_function_handed_on_but_not_stored_on_an_attribute_stays_unread():
    handed = PATCHED.replace("modeling.Attention.forward = patched_forward",
                             "return {'attention': patched_forward}")
    assert found(handed, "ADP010") == []


def test_rmsnorm_in_a_method_with_forwards_parameters_is_found():
    assert _covers(ALTERNATIVE, "ADP011", "hidden_states = hidden_states * torch.rsqrt")


def test_a_layer_norm_in_such_a_method_is_no_rmsnorm():
    assert found(ALTERNATIVE_NEAR, "ADP011") == []


def test_a_one_tensor_method_with_another_signature_stays_unread():
    other = ALTERNATIVE.replace("def forward_torch(self, hidden_states, cache=None, output_fp32=False, **kwargs)",
                                "def reference(self, hidden_states, output_fp32=False)")
    assert found(other, "ADP011") == []


def test_the_fix_of_the_alternative_forward_keeps_the_computation():
    import torch

    fixed = fix_text(ALTERNATIVE, "model.py", rules("ADP011")).text
    assert fixed != ALTERNATIVE
    original, patched = {}, {}
    exec(compile(ALTERNATIVE, "orig.py", "exec"), original)  # noqa: S102 (our own fixture)
    exec(compile(fixed, "fixed.py", "exec"), patched)  # noqa: S102
    torch.manual_seed(0)
    a = original["RMSNorm"](32)
    b = patched["RMSNorm"](32)
    with torch.no_grad():
        a.weight.copy_(torch.randn(32))
    b.load_state_dict(a.state_dict(), strict=True)
    x = torch.randn(4, 7, 32)
    # float32, a 32-term mean of squares then rsqrt: a few ulps apart
    torch.testing.assert_close(b.forward_torch(x), a.forward_torch(x), rtol=1e-5, atol=1e-6)
