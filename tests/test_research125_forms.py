"""Forms from research125's blind batch of Hugging Face-style model files (session 46).

* ADP009: a module-level function that defines ``__init__`` and ``forward`` for another file's
  attention class and hands them to a patching call (the fine-tuning kits' idiom: ``def
  patch(): def __init__(self, config): self.q_proj = nn.Linear(...) ...; def forward(self, x):
  ...; patch_function(cls, "__init__", __init__)``) builds the layers its sibling ``forward``
  calls on ``self``: the nested definitions are read as one class, and the q/k/v triple is
  found (also where the real forward is reached through an alias that a wrapper of the same
  name calls).  Look-alikes stay silent: a nested ``__init__`` called in place (the function's
  own helper, never patched), keys and values of another input, and a forward defined in
  another function than the ``__init__`` that built the layers.
"""

from __future__ import annotations

import pytest

from corpus_forms import found, line_of, rules

PATCHED = """\
import torch
import torch.nn.functional as F
from torch import nn


def patch_attention(target_cls, patch_function):
    def __init__(self, config):
        super(target_cls, self).__init__()
        self.num_heads = config.num_attention_heads
        self.head_dim = config.hidden_size // self.num_heads
        self.q_proj = nn.Linear(config.hidden_size, config.hidden_size, bias=False)
        self.k_proj = nn.Linear(config.hidden_size, config.hidden_size, bias=False)
        self.v_proj = nn.Linear(config.hidden_size, config.hidden_size, bias=False)
        self.o_proj = nn.Linear(config.hidden_size, config.hidden_size, bias=False)

    def forward(self, hidden_states, attention_mask=None):
        b, n, _ = hidden_states.size()
        q = self.q_proj(hidden_states)
        k = self.k_proj(hidden_states)
        v = self.v_proj(hidden_states)
        q = q.view(b, n, self.num_heads, self.head_dim).transpose(1, 2)
        k = k.view(b, n, self.num_heads, self.head_dim).transpose(1, 2)
        v = v.view(b, n, self.num_heads, self.head_dim).transpose(1, 2)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attention_mask)
        return self.o_proj(out.transpose(1, 2).reshape(b, n, -1))

    patch_function(target_cls, "__init__", __init__)
    patch_function(target_cls, "forward", forward)
"""

# the real forward kept under another name, the patched one a wrapper calling it
ALIASED = PATCHED.replace(
    '    patch_function(target_cls, "forward", forward)\n',
    "    _full_forward = forward\n"
    "    def forward(self, *args, **kwargs):\n"
    "        return _full_forward(self, *args, **kwargs)\n"
    '    patch_function(target_cls, "forward", forward)\n')

# the nested __init__ is the function's own helper, called in place: nothing is patched
CALLED_IN_PLACE = PATCHED.replace(
    '    patch_function(target_cls, "__init__", __init__)\n',
    "    holder = target_cls.__new__(target_cls)\n    __init__(holder, target_cls.config)\n")

# keys and values of another input: no one-input triple
CROSS = PATCHED.replace(
    "    def forward(self, hidden_states, attention_mask=None):",
    "    def forward(self, hidden_states, context, attention_mask=None):").replace(
    "k = self.k_proj(hidden_states)", "k = self.k_proj(context)").replace(
    "v = self.v_proj(hidden_states)", "v = self.v_proj(context)")

# the forward defined by another function than the __init__ that built the layers
SPLIT = PATCHED.replace(
    "    def forward(self, hidden_states, attention_mask=None):",
    '    patch_function(target_cls, "__init__", __init__)\n\n\n'
    "def patch_forward(target_cls, patch_function):\n"
    "    def forward(self, hidden_states, attention_mask=None):").replace(
    '    patch_function(target_cls, "__init__", __init__)\n    patch_function', "    patch_function")


@pytest.mark.parametrize("code", [PATCHED, ALIASED], ids=["patched", "aliased"])
def test_patched_init_and_forward_read_as_one_class(code):
    hits = found(code, "ADP009")
    assert [f.line for f in hits] == [line_of(code, "q = self.q_proj(hidden_states)")]


@pytest.mark.parametrize("code", [CALLED_IN_PLACE, CROSS, SPLIT], ids=["called-in-place", "cross", "split"])
def test_look_alikes_stay_silent(code):
    assert "def __init__(self, config):" in code and "self.q_proj(hidden_states)" in code
    assert found(code, "ADP009") == []


@pytest.mark.parametrize("code", [PATCHED, ALIASED], ids=["patched", "aliased"])
def test_the_fused_projection_computes_the_same(code):
    torch = pytest.importorskip("torch")
    from torch import nn

    from adopter.synth.core import fix_text

    result = fix_text(code, "model.py", rules("ADP009"))
    assert "fused_qkv(hidden_states, self.q_proj, self.k_proj, self.v_proj)" in result.text

    class Config:
        hidden_size = 32
        num_attention_heads = 4

    def patched(text):
        class Target(nn.Module):
            pass

        space: dict = {}
        exec(compile(text, "model.py", "exec"), space)
        space["patch_attention"](Target, setattr)
        return Target

    original, fused = patched(code), patched(result.text)
    torch.manual_seed(0)
    a = original(Config()).double()
    b = fused(Config()).double()
    b.load_state_dict(a.state_dict())
    x = torch.randn(2, 7, 32, dtype=torch.float64)
    mask = torch.ones(2, 1, 7, 7, dtype=torch.bool).tril()
    for kwargs in ({}, {"attention_mask": mask}):
        assert torch.allclose(a(x, **kwargs), b(x, **kwargs), rtol=1e-12, atol=1e-12), kwargs


# review63 (session 46): a patch function whose forward is handed to another class than the
# __init__ that built these layers: that forward runs on the other class's own layers, so it is
# not read with these (silent); handed to the same class, it still is (PATCHED above).
OTHER_CLASS = PATCHED.replace("def patch_attention(target_cls, patch_function):",
                              "def patch_attention(target_cls, other_cls, patch_function):").replace(
    '    patch_function(target_cls, "forward", forward)\n', '    patch_function(other_cls, "forward", forward)\n')


def test_forward_handed_to_another_class_stays_silent():
    assert 'patch_function(other_cls, "forward", forward)' in OTHER_CLASS
    assert found(OTHER_CLASS, "ADP009") == []


def test_forward_handed_to_both_classes_is_read():
    code = OTHER_CLASS.replace('    patch_function(other_cls, "forward", forward)\n',
                               '    patch_function(other_cls, "forward", forward)\n'
                               '    patch_function(target_cls, "forward", forward)\n')
    assert [f.line for f in found(code, "ADP009")] == [line_of(code, "q = self.q_proj(hidden_states)")]
