"""ADP014 on real torch modules: a small LLaMA-style attention block with a module-level
``apply_rotary_pos_emb`` (written here, not copied), patched by the real ``fix_text`` and run
side by side with the original on CPU, where the patched code must be bit-exact forward and
backward.  Also: code that only looks like RoPE is left alone by the fixer.
"""

from __future__ import annotations

import pytest
import torch

from adopter.ruleset import load_rules
from adopter.synth import fix_text

RULE = next(r for r in load_rules() if r.id == "ADP014")

BLOCK = '''
import torch
from torch import nn


def rotate_half(x):
    """Swap the halves of the last dimension, negating the second."""
    x1 = x[..., : x.shape[-1] // 2]
    x2 = x[..., x.shape[-1] // 2 :]
    return torch.cat((-x2, x1), dim=-1)


def apply_rotary_pos_emb(q, k, cos, sin, position_ids):
    cos = cos[position_ids].unsqueeze(1)
    sin = sin[position_ids].unsqueeze(1)
    q_embed = (q * cos) + (rotate_half(q) * sin)
    k_embed = (k * cos) + (rotate_half(k) * sin)
    return q_embed, k_embed


class Attention(nn.Module):
    def __init__(self, hidden, heads, kv_heads, max_positions=32):
        super().__init__()
        self.heads, self.kv_heads, self.head_dim = heads, kv_heads, hidden // heads
        self.q_proj = nn.Linear(hidden, heads * self.head_dim, bias=False)
        self.k_proj = nn.Linear(hidden, kv_heads * self.head_dim, bias=False)
        self.v_proj = nn.Linear(hidden, kv_heads * self.head_dim, bias=False)
        self.o_proj = nn.Linear(heads * self.head_dim, hidden, bias=False)
        inv_freq = 1.0 / (10000 ** (torch.arange(0, self.head_dim, 2).float() / self.head_dim))
        freqs = torch.outer(torch.arange(max_positions).float(), inv_freq)
        emb = torch.cat((freqs, freqs), dim=-1)
        self.register_buffer("cos_cached", emb.cos(), persistent=False)
        self.register_buffer("sin_cached", emb.sin(), persistent=False)

    def forward(self, hidden_states, position_ids):
        bsz, seq, _ = hidden_states.shape
        q = self.q_proj(hidden_states).view(bsz, seq, self.heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(hidden_states).view(bsz, seq, self.kv_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(hidden_states).view(bsz, seq, self.kv_heads, self.head_dim).transpose(1, 2)
        cos = self.cos_cached.to(hidden_states.dtype)
        sin = self.sin_cached.to(hidden_states.dtype)
        q, k = apply_rotary_pos_emb(q, k, cos, sin, position_ids)
        groups = self.heads // self.kv_heads
        k = k.repeat_interleave(groups, dim=1)
        v = v.repeat_interleave(groups, dim=1)
        scores = torch.matmul(q, k.transpose(2, 3)) / self.head_dim ** 0.5
        out = torch.matmul(torch.softmax(scores, dim=-1), v)
        return self.o_proj(out.transpose(1, 2).reshape(bsz, seq, -1))
'''


def _load(text: str, name: str) -> dict:
    namespace: dict = {"__name__": name}
    exec(compile(text, f"<{name}>", "exec"), namespace)
    return namespace


def test_patch_is_the_expected_edit_and_a_second_fix_changes_nothing():
    patched = fix_text(BLOCK, "attention.py", [RULE])
    assert [f.rule for f in patched.applied] == ["ADP014"] and patched.skipped == []
    assert "q_embed, k_embed = liger_rope(q, k, cos, sin, rotate_half)" in patched.text
    assert "rotate_half(q) * sin" not in patched.text and "from adopter_kernels import liger_rope" in patched.text
    assert fix_text(patched.text, "attention.py", [RULE]).text == patched.text


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_patched_attention_is_bit_exact_on_cpu(dtype):
    old_cls = _load(BLOCK, "original")["Attention"]
    new_cls = _load(fix_text(BLOCK, "attention.py", [RULE]).text, "patched")["Attention"]
    torch.manual_seed(0)
    old = old_cls(32, 4, 2).to(dtype)
    new = new_cls(32, 4, 2).to(dtype)
    new.load_state_dict(old.state_dict(), strict=True)
    x = torch.randn(2, 6, 32, dtype=dtype)
    position_ids = torch.tensor([[0, 1, 2, 3, 4, 5], [3, 4, 5, 6, 7, 8]])
    x_old, x_new = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    y_old, y_new = old(x_old, position_ids), new(x_new, position_ids)
    torch.testing.assert_close(y_new, y_old, rtol=0, atol=0)
    grad = torch.randn_like(y_old)
    y_old.backward(grad)
    y_new.backward(grad)
    torch.testing.assert_close(x_new.grad, x_old.grad, rtol=0, atol=0)
    for (name, p_old), (_, p_new) in zip(old.named_parameters(), new.named_parameters()):
        torch.testing.assert_close(p_new.grad, p_old.grad, rtol=0, atol=0, msg=name)


LOOKALIKES = {
    "scaled rotation": "q_embed = (q * cos) + (rotate_half(q) * 2 * sin)",
    "rotation of another tensor": "q_embed = (q * cos) + (rotate_half(k) * sin)",
    "flipped rotation": "q_embed = (q * cos) + (rotate_half(q).flip(-1) * sin)",
    "another function": "q_embed = (q * cos) + (torch.flip(q, (-1,)) * sin)",
}


@pytest.mark.parametrize("line", LOOKALIKES.values(), ids=LOOKALIKES.keys())
def test_code_that_only_looks_like_rope_is_not_rewritten(line):
    text = BLOCK.replace("q_embed = (q * cos) + (rotate_half(q) * sin)", line)
    assert line in text
    assert fix_text(text, "attention.py", [RULE]).text == text


def test_a_precomputed_rotation_is_not_rewritten():
    """``r = rotate_half(q)`` on its own line, the product with something else: left alone."""
    text = BLOCK.replace(
        "    q_embed = (q * cos) + (rotate_half(q) * sin)\n",
        "    r = rotate_half(q)\n    q_embed = (q * cos) + (cos * sin)\n    q_embed = q_embed + r\n",
    )
    assert fix_text(text, "attention.py", [RULE]).text == text
