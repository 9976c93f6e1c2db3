"""review65's counter-examples to session 47's merged readings, closed in general form
(mend94, session 47).  The fixtures are ours.

1. Scaled scores minus a term (graph ``_scaled_scores_minus``): a term bound on its own line
   (``fill = 1e4 * (1 - keep)``, then ``s * keep - fill``) is a blend as the inline term is --
   a number times a tensor, or a value reading the minuend's factor (``_bound_term_blends``).
2. ModuleDict comprehensions: a conditional value (``nn.Linear(...) if name != "k" else
   nn.Identity()``) types each written-out key by the branch that key takes
   (bindings ``_value_for_key``); a test on anything else names no member.
3. A processor annotated with a sibling module's attention: an attribute that a subclass in that
   module binds to another layer is not borrowed (bindings ``_subclass_overrides``).
4. ``getattr(models, arch)(...)``: ``arch += "_x"`` before the call rebinds the parameter.
"""

from __future__ import annotations

import textwrap

import torch
from corpus_forms import edit, finding_at, found, line_of, rules, sdpa_fixed

from adopter.engine import analyze
from adopter.ruleset import load_rules, select_rules
from adopter.structure import package_of

# ------------------------------------------------------------------ 1. a term bound before

SCORES = """\
import math
import torch
from torch import nn


class Attention(nn.Module):
    def __init__(self, heads, dim):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.weight = nn.Parameter(torch.rand(heads) + 0.5)

    def forward(self, x, points, bias, keep):
        b, n, _ = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        far = (points[:, None, :, None] - points[:, None, None, :]).norm(dim=-1)
        TERM
        logits = q.matmul(k.transpose(-1, -2)) / math.sqrt(3)
        scores = logits * FACTOR - NAME
        scores = scores + bias
        return torch.softmax(scores, dim=-1).matmul(v)
"""


def _scores(term: str, factor: str = "keep", name: str = "term") -> str:
    return SCORES.replace("TERM", term).replace("FACTOR", factor).replace("NAME", name)


def _inputs():
    torch.manual_seed(3)
    x = torch.randn(2, 6, 16, dtype=torch.float64, requires_grad=True)
    points = torch.randn(2, 6, 3, dtype=torch.float64)
    bias = torch.randn(2, 1, 6, 6, dtype=torch.float64)
    keep = (torch.rand(2, 1, 6, 6) > 0.3).double()
    return x, points, bias, keep


def test_a_blend_term_bound_on_its_own_line_is_no_bias():
    for term in ("term = 1e4 * (1 - keep)", "term = (1 - keep) * 1e4", "term = far * keep",
                 "hidden = 1 - keep\n        term = far * hidden"):
        assert not found(_scores(term), "ADP010"), term


def test_a_bound_tensor_term_that_is_no_blend_stays_an_attention_whose_fix_agrees():
    code = _scores("term = far * self.weight[:, None, None]", factor="0.5")
    assert finding_at(code, "ADP010", "torch.softmax(scores") is not None
    fixed = sdpa_fixed(code)
    assert "scaled_dot_product_attention" in fixed
    spaces = [{}, {}]
    exec(compile(code, "orig.py", "exec"), spaces[0])  # noqa: S102 (our own fixture)
    exec(compile(fixed, "fixed.py", "exec"), spaces[1])  # noqa: S102
    torch.manual_seed(0)
    a = spaces[0]["Attention"](4, 16).double()
    b = spaces[1]["Attention"](4, 16).double()
    b.load_state_dict(a.state_dict(), strict=True)
    out_a, out_b = a(*_inputs()), b(*_inputs())
    # float64, 4-wide heads and 6 keys: a few ulps apart at most
    torch.testing.assert_close(out_b, out_a, rtol=1e-12, atol=1e-12)


# ------------------------------------------------- 2. a ModuleDict comprehension's conditional value

DICT = textwrap.dedent("""\
    import torch
    import torch.nn as nn


    class Block(nn.Module):
        def __init__(self, dim=8, heads=2):
            super().__init__()
            self.heads = heads
            self.proj = nn.ModuleDict({key: VALUE for key in ("q", "k", "v", "o")})

        def forward(self, x):
            q = self.proj["q"](x)  # needle
            k = self.proj["k"](x)
            b, n, d = q.shape
            q, k = (t.view(b, n, self.heads, -1).transpose(1, 2) for t in (q, k))
            v = self.proj["v"](x).view(b, n, self.heads, -1).transpose(1, 2)
            att = torch.softmax(q @ k.transpose(-1, -2) / (d // self.heads) ** 0.5, dim=-1)
            return self.proj["o"]((att @ v).transpose(1, 2).reshape(b, n, d))
""")


def test_a_conditional_comprehension_value_types_each_key_by_its_branch():
    for value in ('(nn.Linear(dim, dim) if key != "k" else nn.Identity())',
                  '(nn.Identity() if key == "v" else nn.Linear(dim, dim))',
                  '(nn.Linear(dim, dim) if key not in ("k",) else nn.Identity())',
                  '(nn.Linear(dim, dim) if dim > 4 else nn.Identity())'):
        assert not found(DICT.replace("VALUE", value), "ADP009"), value
    for value in ('(nn.Linear(dim, dim) if key != "o" else nn.Identity())',
                  '(nn.Linear(dim, dim) if key in ("q", "k", "v") else nn.Identity())'):
        code = DICT.replace("VALUE", value)
        assert [f.line for f in found(code, "ADP009")] == [line_of(code, "# needle")], value


# ------------------------------------- 3. a subclass in the annotated class's module rebinds a member

ATTENTION = textwrap.dedent("""\
    import torch.nn as nn


    class Attention(nn.Module):
        def __init__(self, dim, heads=2, processor=None):
            super().__init__()
            self.heads = heads
            self.to_q = nn.Linear(dim, dim)
            self.to_k = nn.Linear(dim, dim)
            self.to_v = nn.Linear(dim, dim)
            self.processor = processor

        def forward(self, x):
            return self.processor(self, x)
    SUBCLASS""")

SUB = textwrap.dedent("""


    class Shared(Attention):
        def __init__(self, dim, heads=2, processor=None):
            super().__init__(dim, heads, processor)
            self.to_k = LAYER
""")

PROCESSOR = textwrap.dedent("""\
    import torch.nn.functional as F
    from PKG.attention import Attention


    class Processor:
        def __call__(self, attn: Attention, x):
            q = attn.to_q(x)  # needle
            k = attn.to_k(x)
            v = attn.to_v(x)
            b, n, d = q.shape
            q, k, v = (t.view(b, -1, attn.heads, d // attn.heads).transpose(1, 2) for t in (q, k, v))
            return F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, n, d)
""")


def _processor(tmp_path, name: str, subclass: str):
    top = tmp_path / name
    top.mkdir()
    (top / "__init__.py").touch()
    (top / "attention.py").write_text(ATTENTION.replace("SUBCLASS", subclass))
    path = top / "processor.py"
    path.write_text(PROCESSOR.replace("PKG", name))
    return [f for f in analyze(path.read_text(), str(path), rules("ADP009"), package_of(str(path))).findings
            if f.rule == "ADP009"]


def test_a_member_a_sibling_subclass_rebinds_is_not_borrowed(tmp_path):
    assert _processor(tmp_path, "noshare", "") != []
    assert _processor(tmp_path, "samelayer", SUB.replace("LAYER", "nn.Linear(dim, dim)")) != []
    assert _processor(tmp_path, "shared", SUB.replace("LAYER", "nn.Identity()")) == []


# ---------------------------------------------------- 4. getattr(models, arch) after arch += ...

GETATTR = textwrap.dedent('''
    from torch import nn
    from torchvision import models


    class Net(nn.Module):
        def __init__(self, arch="resnet34", pretrained=False):
            super().__init__()
            CHANGE
            net = getattr(models, arch)(pretrained=pretrained)
            self.stem = nn.Sequential(net.conv1, net.bn1, net.relu)

        def forward(self, x):
            return self.stem(x)
''')

ALL = select_rules(load_rules(), ["ALL"])


def _conv_bn(code: str) -> list:
    return [f.line for f in analyze(code, "model.py", ALL).findings if f.rule == "ADP007"]


def test_an_augmented_architecture_name_is_no_longer_the_default():
    assert _conv_bn(GETATTR.replace("CHANGE", "pass")) == [11]
    assert _conv_bn(GETATTR.replace("CHANGE", 'arch += "_wide"')) == []
    assert _conv_bn(GETATTR.replace("CHANGE", 'pretrained += 0')) == [11]
