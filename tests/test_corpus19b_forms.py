"""Forms found missing while checking the blind batch corpus19b (torchvision-style CNNs and
research reimplementations of eleven packages new to the corpus).  Three forms, each with
near-misses; the fixtures are ours.

- Conv -> BatchNorm pairs called through the names of a loop over a literal list of rows of
  ``self`` layers (``for conv, bn in [(self.conv1, self.bn1), (self.conv2, self.bn2)]: x =
  act(bn(conv(x)))``, a ResNet deep stem): each name holds a layer of one kind on every
  iteration when the rows' layers at its place are built alike, so the call is that kind's
  (ADP007; the fix rewrites the loop body once and folds every row).  Near-misses: a row whose
  norm is another kind, a row naming a local value instead of a layer of ``self``.
- A statement calling through a name bound to one of two same-file functions (``attn_fn =
  attention if not memory_efficient else chunked_attention``; ``out = attn_fn(q, k, v)``): read
  as an ``if`` calling each function, so each is inlined as a direct call is (ADP010 in the
  plain attention function).  Near-misses: neither function is attention, the name rebound to
  another function before the call.
- An activation class given through a module-level conditional alias (``GELU = nn.GELU if
  hasattr(nn, "GELU") else GELU_``, the fallback a same-file module whose forward is the tanh
  GELU formula) as a constructor parameter's default (``activation = default(activation,
  GELU)``), built later (``self.act = activation()``): either alternative is a GELU, and a
  same-file class held as a value types as what the class computes, as when it is built
  directly (ADP006).  Near-misses: both alternatives a SiLU, a QuickGELU class as the default,
  the alias bound twice at module level.
- A method returning a list it builds in the branches of an ``if`` (``if self.use_bn: layers =
  [conv, bn, act] else: layers = [conv, act]; return layers``), spread into an ``nn.Sequential``
  at each call (``nn.Sequential(*self._make_layers(3, 48), *self._make_layers(48, 64))``, DBCNN's
  SCNN): the cheap test for "the returned name is bound to a list display" looked at the
  function's top-level statements only; it now reads the branches of its ifs, so each spread is
  a pair (ADP007, placed at the call as spreads of a factory's list are).  Near-misses: no branch
  holds a BatchNorm, the BatchNorm before the conv.
- An attention module whose ``forward(self, q, k, v, mask=None, dropout=None)`` calls
  ``dropout(p)`` (the Annotated Transformer's ``ScaledDotProductAttention``), instantiated and
  called with ``dropout=self.dropout`` by another class *of the same file*: what the callers pass
  was read from the package's other modules only (bindings._passed_in); the file's own classes
  now count too, so ``dropout`` is an ``nn.Dropout`` and the softmax is ADP010's.  Near-misses: no
  class calls the module, a caller passes a LayerNorm for it, two callers pass different kinds.
"""

from __future__ import annotations

import textwrap

from corpus_forms import assert_bn_fold_matches, finding_at, found, rules

from adopter.synth import fix_text

# ---------------------------------------------------------------- loop over literal rows

STEM = """\
import torch
from torch import nn


class Stem(nn.Module):
    def __init__(self, width=8):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1, bias=False)
        self.bn2 = NORM2
        self.conv3 = nn.Conv2d(width, width, 3, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(width)
        self.act = nn.ReLU(inplace=True)
        self.pool = nn.AvgPool2d(2)

    def forward(self, x):
        def stem(x):
            for conv, bn in ROWS:
                x = self.act(bn(conv(x)))  # pair
            return self.pool(x)

        return stem(x)
"""

ROWS = "[(self.conv1, self.bn1), (self.conv2, self.bn2), (self.conv3, self.bn3)]"


def _stem(norm2: str = "nn.BatchNorm2d(width)", rows: str = ROWS) -> str:
    return STEM.replace("NORM2", norm2).replace("ROWS", rows)


def test_loop_over_literal_rows_of_conv_and_bn_is_a_pair():
    assert finding_at(_stem(), "ADP007", "# pair") is not None


def test_loop_over_literal_rows_fix_folds_every_row():
    code = _stem()
    fixed = fix_text(code, "model.py", rules("ADP007")).text
    assert fixed != code
    assert "conv_bn(x, conv, bn)" in fixed
    # float64 with drawn running statistics: folding is exact to rounding (3x3x8 = 72-term sums)
    assert_bn_fold_matches(code, fixed, "Stem", (), (2, 3, 8, 8))


def test_loop_over_one_name_of_literal_layers():
    code = textwrap.dedent("""\
        import torch
        from torch import nn


        class Chain(nn.Module):
            def __init__(self, width=8):
                super().__init__()
                self.a = nn.Conv2d(width, width, 1, bias=False)
                self.b = nn.Conv2d(width, width, 1, bias=False)
                self.norm = nn.BatchNorm2d(width)

            def forward(self, x):
                for conv in [self.a, self.b]:
                    x = torch.relu(self.norm(conv(x)))  # pair
                return x
    """)
    assert finding_at(code, "ADP007", "# pair") is not None


def test_row_with_another_norm_kind_is_no_pair():
    assert finding_at(_stem(norm2="nn.GroupNorm(2, width)"), "ADP007", "# pair") is None


def test_row_with_another_conv_kind_is_no_pair():
    code = _stem().replace("self.conv2 = nn.Conv2d(", "self.conv2 = nn.ConvTranspose2d(")
    assert finding_at(code, "ADP007", "# pair") is None


def test_row_naming_a_local_value_is_no_pair():
    rows = "[(self.conv1, self.bn1), (self.conv2, self.bn2), (self.conv3, torch.nn.Identity())]"
    assert finding_at(_stem(rows=rows), "ADP007", "# pair") is None


def test_rows_of_unequal_width_are_no_pair():
    rows = "[(self.conv1, self.bn1), (self.conv2, self.bn2, self.act)]"
    assert finding_at(_stem(rows=rows), "ADP007", "# pair") is None


# ---------------------------------------------------------------- a name choosing a function

CHOICE = """\
import torch
from torch import nn, einsum


def attention(q, k, v, mask=None, **kwargs):
    q = q * q.shape[-1] ** -0.5
    sim = einsum("b h i d, b h j d -> b h i j", q, k)
    if mask is not None:
        sim = sim.masked_fill(~mask, -torch.finfo(sim.dtype).max)
    attn = sim.softmax(dim=-1)  # softmax
    RENORM
    return einsum("b h i j, b h j d -> b h i d", attn, v)


def chunked_attention(q, k, v, mask=None, chunk=64, **kwargs):
    q = q * q.shape[-1] ** -0.5
    outs = []
    for qc in q.split(chunk, dim=-2):
        w = einsum("b h i d, b h j d -> b h i j", qc, k)
        w = (w - w.amax(dim=-1, keepdim=True)).exp()
        outs.append(einsum("b h i j, b h j d -> b h i d", w, v) / w.sum(dim=-1, keepdim=True))
    return torch.cat(outs, dim=-2)


class Attention(nn.Module):
    def __init__(self, dim, heads=2, dim_head=8, chunked=False):
        super().__init__()
        self.heads = heads
        self.chunked = chunked
        self.to_q = nn.Linear(dim, heads * dim_head, bias=False)
        self.to_kv = nn.Linear(dim, 2 * heads * dim_head, bias=False)
        self.to_out = nn.Linear(heads * dim_head, dim)

    def forward(self, x, mask=None, chunked=None):
        chunked = self.chunked if chunked is None else chunked
        b, n, _ = x.shape
        q = self.to_q(x)
        k, v = self.to_kv(x).chunk(2, dim=-1)
        q, k, v = (t.reshape(b, n, self.heads, -1).transpose(1, 2) for t in (q, k, v))
        attn_fn = attention if not chunked else chunked_attention
        REBIND
        out = attn_fn(q, k, v, mask=mask)
        return self.to_out(out.transpose(1, 2).reshape(b, n, -1))
"""


def _choice(renorm: str = "", rebind: str = "") -> str:
    return CHOICE.replace("RENORM", renorm or "pass").replace("REBIND", rebind or "pass")


def test_call_through_a_name_choosing_a_function_inlines_each():
    assert finding_at(_choice(), "ADP010", "# softmax") is not None


def test_function_choice_finding_only_once():
    code = _choice()
    assert len([f for f in found(code, "ADP010") if f.line <= code.splitlines().index(
        next(t for t in code.splitlines() if "# softmax" in t)) + 1 <= f.end_line]) == 1


def test_function_choice_of_no_attention_is_no_site():
    code = _choice(renorm="attn = attn / attn.sum(dim=-1, keepdim=True).clamp(min=1e-6) * 0.5")
    assert finding_at(code, "ADP010", "# softmax") is None


def test_function_choice_rebound_before_the_call_calls_the_other():
    # attn_fn names only chunked_attention at the call: attention is not called there, and a
    # function that some method mentions is no root of its own
    code = _choice(rebind="attn_fn = chunked_attention")
    assert finding_at(code, "ADP010", "# softmax") is None


# ---------------------------------------------------------------- GELU through a conditional alias

ACT = """\
import math
import torch
from torch import nn


def default(val, d):
    return val if val is not None else d


class GELU_(nn.Module):
    def forward(self, x):
        return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * torch.pow(x, 3))))


class Swish_(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(x)


class QuickGELU_(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(1.702 * x)


ALIAS
EXTRA

class FeedForward(nn.Module):
    def __init__(self, dim, mult=4, activation=None):
        super().__init__()
        activation = default(activation, DEFAULT)
        self.w1 = nn.Linear(dim, dim * mult)
        self.act = activation()
        self.w2 = nn.Linear(dim * mult, dim)

    def forward(self, x):
        x = self.w1(x)
        x = self.act(x)  # act
        return self.w2(x)
"""

GELU_ALIAS = 'GELU = nn.GELU if hasattr(nn, "GELU") else GELU_'


def _act(alias: str = GELU_ALIAS, default: str = "GELU", extra: str = "") -> str:
    return ACT.replace("ALIAS", alias).replace("EXTRA", extra).replace("DEFAULT", default)


def test_gelu_through_a_module_level_conditional_alias():
    assert finding_at(_act(), "ADP006", "# act") is not None


def test_same_file_gelu_class_as_a_default_value():
    assert finding_at(_act(default="GELU_"), "ADP006", "# act") is not None


def test_gelu_alias_fix_passes_the_layer():
    code = _act()
    fixed = fix_text(code, "model.py", rules("ADP006")).text
    assert "bias_gelu(x, self.w1, self.act)" in fixed


def test_conditional_alias_of_two_silus_is_no_gelu():
    code = _act(alias='SiLU = nn.SiLU if hasattr(nn, "SiLU") else Swish_', default="SiLU")
    assert finding_at(code, "ADP006", "# act") is None


def test_quick_gelu_class_as_a_default_is_no_gelu():
    assert finding_at(_act(default="QuickGELU_"), "ADP006", "# act") is None


def test_conditional_alias_bound_twice_is_not_read():
    code = _act(extra="GELU = nn.ReLU\n")
    assert finding_at(code, "ADP006", "# act") is None


# ---------------------------------------------------------------- a list built in an if's branches

BRANCH_LIST = """\
import torch
from torch import nn


class SCNN(nn.Module):
    def __init__(self, use_bn=True):
        super().__init__()
        self.use_bn = use_bn
        self.features = nn.Sequential(
            *self._make_layers(3, 8, 3, 1, 1),  # first
            *self._make_layers(8, 8, 3, 2, 1),  # second
        )

    def _make_layers(self, in_ch, out_ch, ksz, stride, pad):
        if self.use_bn:
            layers = [
                FIRST,
                SECOND,
                nn.ReLU(True),
            ]
        else:
            layers = [
                nn.Conv2d(in_ch, out_ch, ksz, stride, pad),
                nn.ReLU(True),
            ]
        return layers

    def forward(self, x):
        return self.features(x)
"""

CONV = "nn.Conv2d(in_ch, out_ch, ksz, stride, pad)"
BN = "nn.BatchNorm2d(out_ch)"


def _branch_list(first: str = CONV, second: str = BN) -> str:
    return BRANCH_LIST.replace("FIRST", first).replace("SECOND", second)


def test_list_built_in_if_branches_and_spread_is_a_pair_at_each_spread():
    code = _branch_list()
    assert finding_at(code, "ADP007", "# first") is not None
    assert finding_at(code, "ADP007", "# second") is not None


def test_list_built_in_if_branches_fix_folds():
    code = _branch_list()
    fixed = fix_text(code, "model.py", rules("ADP007")).text
    assert "FoldingSequential(" in fixed
    assert_bn_fold_matches(code, fixed, "SCNN", (), (2, 3, 16, 16))


def test_list_built_in_if_branches_without_a_norm_is_no_pair():
    code = _branch_list(second="nn.Dropout(0.1)")
    assert not found(code, "ADP007")


def test_list_built_in_if_branches_norm_first_is_no_pair():
    code = _branch_list(first="nn.BatchNorm2d(in_ch)", second=CONV)
    assert not found(code, "ADP007")


# ---------------------------------------------------------------- a layer a same-file caller passes in

PASSED = """\
import math
import torch
import torch.nn.functional as F
from torch import nn


class ScaledDotProductAttention(nn.Module):
    def forward(self, query, key, value, mask=None, dropout=None):
        scores = torch.matmul(query, key.transpose(-2, -1)) / math.sqrt(query.size(-1))
        if mask is not None:
            scores = scores.masked_fill(mask.eq(0), -1e9)
        p_attn = F.softmax(scores, dim=-1)  # softmax
        if dropout is not None:
            p_attn = dropout(p_attn)
        return torch.matmul(p_attn, value)


class MultiHeadAttention(nn.Module):
    def __init__(self, heads=2, d_model=16, p=0.1):
        super().__init__()
        self.h, self.d_k = heads, d_model // heads
        self.q, self.k, self.v = (nn.Linear(d_model, d_model) for _ in range(3))
        self.sdpa = ScaledDotProductAttention()
        self.dropout = LAYER

    def forward(self, x, mask=None):
        b = x.size(0)
        q, k, v = (t.view(b, -1, self.h, self.d_k).transpose(1, 2) for t in (self.q(x), self.k(x), self.v(x)))
        out = self.sdpa(q, k, v, mask=mask, dropout=self.dropout)
        return out.transpose(1, 2).reshape(b, -1, self.h * self.d_k)
"""


def _passed(layer: str = "nn.Dropout(p)", extra: str = "") -> str:
    return PASSED.replace("LAYER", layer) + extra


def test_layer_a_same_file_caller_passes_in_types_the_parameter():
    assert finding_at(_passed(), "ADP010", "# softmax") is not None


def test_module_no_class_calls_leaves_the_parameter_unknown():
    code = PASSED.split("class MultiHeadAttention")[0]
    assert finding_at(code, "ADP010", "# softmax") is None


def test_caller_passing_a_norm_is_no_dropout():
    assert finding_at(_passed("nn.LayerNorm(16)"), "ADP010", "# softmax") is None


def test_callers_passing_different_kinds_leave_it_unknown():
    other = textwrap.dedent("""\


        class Other(nn.Module):
            def __init__(self):
                super().__init__()
                self.sdpa = ScaledDotProductAttention()
                self.norm = nn.LayerNorm(8)

            def forward(self, q, k, v):
                return self.sdpa(q, k, v, dropout=self.norm)
    """)
    assert finding_at(_passed(extra=other), "ADP010", "# softmax") is None


# ---------------------------------------------------------------- a GELU function of a sibling module

SIBLING_ACT = """\
import math
import torch


def gelu(x):
    cdf = 0.5 * (1.0 + torch.erf(x / math.sqrt(2.0)))
    return x * cdf


def quick_gelu(x):
    return x * torch.sigmoid(1.702 * x)
"""

SIBLING_BLOCK = """\
import torch
from actpkg.acts import ACT


class Block(torch.nn.Module):
    def __init__(self, hidden=16, inner=32):
        super().__init__()
        self.intermediate = torch.nn.Linear(hidden, inner)
        self.output = torch.nn.Linear(inner, hidden)

    def forward(self, x):
        return self.output(ACT(self.intermediate(x)))  # act
"""


def _sibling_package(root, act: str = "gelu"):
    folder = root / "actpkg"
    folder.mkdir()
    (folder / "__init__.py").write_text("")
    (folder / "acts.py").write_text(SIBLING_ACT)
    (folder / "block.py").write_text(SIBLING_BLOCK.replace("ACT", act))
    return folder / "block.py"


def _sibling_found(path):
    from adopter.engine import analyze
    from adopter.structure import package_of

    text = path.read_text()
    line = next(n for n, t in enumerate(text.splitlines(), 1) if "# act" in t)
    return [f for f in analyze(text, str(path), rules("ADP006"), package_of(str(path))).findings
            if f.rule == "ADP006" and f.line <= line <= f.end_line]


def test_gelu_function_of_a_sibling_module_after_a_linear(tmp_path):
    assert _sibling_found(_sibling_package(tmp_path))


def test_gelu_function_of_a_sibling_module_fix_matches(tmp_path, monkeypatch):
    import torch
    from adopter.structure import package_of

    path = _sibling_package(tmp_path)
    text = path.read_text()
    fixed = fix_text(text, str(path), rules("ADP006"), package_of(str(path))).text
    assert "linear_gelu(x, self.intermediate)" in fixed
    monkeypatch.syspath_prepend(str(tmp_path))
    original, patched = {}, {}
    exec(compile(text, "orig.py", "exec"), original)  # noqa: S102 (our own fixture)
    exec(compile(fixed, "fixed.py", "exec"), patched)  # noqa: S102
    torch.manual_seed(0)
    a = original["Block"]().double()
    b = patched["Block"]().double()
    b.load_state_dict(a.state_dict(), strict=True)
    x = torch.randn(3, 5, 16, dtype=torch.float64)
    # float64, one 16-term dot product then an erf: equal to rounding
    torch.testing.assert_close(b(x), a(x), rtol=0, atol=1e-12)


def test_quick_gelu_function_of_a_sibling_module_is_no_gelu(tmp_path):
    assert not _sibling_found(_sibling_package(tmp_path, act="quick_gelu"))


def test_imported_function_outside_a_package_is_not_read(tmp_path):
    alone = tmp_path / "alone.py"
    alone.write_text(SIBLING_BLOCK.replace("ACT", "gelu"))
    assert not _sibling_found(alone)
