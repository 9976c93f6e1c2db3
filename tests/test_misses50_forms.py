"""Dropout written as the package's own module, gated on the training flag (misses50).
Read by what the module's forward computes, never its name; the fixtures are ours.

- A module whose forward is ``if self.p > 0 and (self.training or self.<flag>): return
  F.dropout(x, p=self.p, training=True)`` and ``x`` otherwise (fairseq's dropout module):
  a dropout at rate 0 is the identity, so it is ``F.dropout(x, p=self.p, training=self.training
  or self.<flag>)``.  A flag bound to False in ``__init__`` and never again is settled false
  (a plain dropout); one a method sets at run time (``make_generation_fast_``) is read at run
  time: the SDPA fix's rate is ``m.p if m.training or m.<flag> else 0.0``, exact in train, in
  eval, and in eval with the flag set.
- The same module in another module of the package (formulas.dropout_wrapper read in that
  module's reader).
- Look-alikes that are not a dropout of the input: stochastic depth (drops whole samples),
  a channel dropout (``F.dropout2d``), a module that also scales, one whose flag defaults True
  (drops in eval), one that drops without a training test, one whose gate reads a method.
- ADP005 (dropout, residual add, LayerNorm) reports the module, and does not fix it (the
  kernel reads nn.Dropout's p).
"""

from __future__ import annotations

import textwrap

import pytest
from corpus_forms import assert_reported_not_fixed, covered, dropout_add_norm, edit, finding_at, float64_pair, rules

from adopter.engine import analyze
from adopter.structure import package_of
from adopter.synth import fix_text


GATED_DROPOUT = textwrap.dedent("""\
    import torch.nn as nn
    import torch.nn.functional as F


    class GatedDrop(nn.Module):
        def __init__(self, p, name=None):
            super().__init__()
            self.p = p
            self.name = name
            self.keep_in_eval = False

        def forward(self, x, inplace: bool = False):
            if self.p > 0 and (self.training or self.keep_in_eval):
                return F.dropout(x, p=self.p, training=True, inplace=inplace)
            else:
                return x

        def prepare_for_inference_(self, retain=False):
            if retain:
                self.keep_in_eval = True
""")

ATTENTION = textwrap.dedent("""\
    import torch
    import torch.nn as nn
    IMPORT


    class Attention(nn.Module):
        def __init__(self, dim=16, heads=2, p=0.1):
            super().__init__()
            self.heads = heads
            self.qkv = nn.Linear(dim, dim * 3)
            self.proj = nn.Linear(dim, dim)
            self.attn_drop = GatedDrop(p, name="attention")

        def forward(self, x):
            b, n, c = x.shape
            q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
            attn = torch.matmul(q, k.transpose(-2, -1)) * (c // self.heads) ** -0.5
            attn = torch.softmax(attn, dim=-1)
            attn = self.attn_drop(attn)
            x = torch.matmul(attn, v).transpose(1, 2).reshape(b, n, c)
            return self.proj(x)
""")
SAME_FILE = GATED_DROPOUT + "\n\n" + ATTENTION.replace("import torch\nimport torch.nn as nn\nIMPORT\n", "import torch\n")
SCORES = "attn = torch.matmul(q, k.transpose(-2, -1))"


def test_gated_dropout_module_in_the_same_file():
    assert covered(SAME_FILE, SCORES, "ADP010")
    # the gate written other ways: the rate test after the training test, `0 < p`, `!= 0`,
    # the `x` returned after the if; no run-time flag at all
    for old, new in (("self.p > 0 and (self.training or self.keep_in_eval)",
                      "(self.training or self.keep_in_eval) and 0 < self.p"),
                     ("self.p > 0 and", "self.p != 0 and"),
                     ("        else:\n            return x", "        return x"),
                     ("(self.training or self.keep_in_eval)", "self.training")):
        assert covered(edit(SAME_FILE, old, new), SCORES, "ADP010"), new


def test_gated_dropout_module_the_fix_reads_the_run_time_flag():
    result = fix_text(SAME_FILE, "model.py", rules("ADP010"))
    assert result.applied, result
    assert ("dropout_p=( self.attn_drop.p if self.attn_drop.training or self.attn_drop.keep_in_eval else 0.0 )"
            in " ".join(result.text.split()))
    import torch

    # eval (the identity), train at rate 0, and eval with the flag set at rate 0 (the fused
    # call then drops at the module's rate: 0, so both are exact and deterministic)
    for training, p, keep in ((False, 0.1, False), (True, 0.0, False), (False, 0.0, True)):
        a, b = float64_pair(SAME_FILE, result.text, "Attention", p=p)
        a.train(training)
        b.train(training)
        a.attn_drop.prepare_for_inference_(retain=keep)
        b.attn_drop.prepare_for_inference_(retain=keep)
        x = torch.randn(2, 5, 16, dtype=torch.float64)
        xa, xb = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
        out_a, out_b = a(xa), b(xb)
        torch.testing.assert_close(out_b, out_a)
        out_a.sum().backward()
        out_b.sum().backward()
        torch.testing.assert_close(xb.grad, xa.grad)


def test_gated_dropout_in_eval_with_the_flag_set_still_drops_after_the_fix():
    """The flag the patch reads is live: at rate 1 in eval with the flag set, the original
    drops every probability (output = the projection's bias), and so must the fixed one."""
    import torch

    result = fix_text(SAME_FILE, "model.py", rules("ADP010"))
    assert result.applied and "scaled_dot_product_attention(" in result.text
    for keep in (False, True):
        out_a, out_b, bias = _eval_at_rate_one(SAME_FILE, result.text, keep)
        torch.testing.assert_close(out_b, out_a)
        assert torch.allclose(out_a, bias) == keep


def _eval_at_rate_one(text: str, fixed: str, keep: bool):
    """The original's and the fixed module's outputs in eval at dropout rate 1 with the run-time
    flag set to ``keep``, and the projection's bias (the output when every probability drops)."""
    import torch

    a, b = float64_pair(text, fixed, "Attention", p=1.0)
    a.eval()
    b.eval()
    a.attn_drop.prepare_for_inference_(retain=keep)
    b.attn_drop.prepare_for_inference_(retain=keep)
    x = torch.randn(2, 5, 16, dtype=torch.float64)
    out_a, out_b = a(x), b(x)
    return out_a, out_b, a.proj.bias.expand_as(out_a)


# modules that are not a dropout of their input (each edit of the same-file fixture)
STOCHASTIC_DEPTH = """def forward(self, x, inplace: bool = False):
        if self.p > 0 and (self.training or self.keep_in_eval):
            keep = 1 - self.p
            mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
            return x * mask / keep
        else:
            return x"""
NOT_A_DROPOUT = {
    "stochastic depth (whole samples)": (
        """def forward(self, x, inplace: bool = False):
            if self.p > 0 and (self.training or self.keep_in_eval):
                return F.dropout(x, p=self.p, training=True, inplace=inplace)
            else:
                return x""".replace("\n            ", "\n        "), STOCHASTIC_DEPTH),
    "channel dropout": ("return F.dropout(x, p=self.p, training=True, inplace=inplace)",
                        "return F.dropout2d(x, p=self.p, training=True, inplace=inplace)"),
    "also scales": ("return F.dropout(x, p=self.p, training=True, inplace=inplace)",
                    "return F.dropout(x, p=self.p, training=True, inplace=inplace) * 2.0"),
    "drops in eval always": ("self.keep_in_eval = False", "self.keep_in_eval = True"),
    "no training test": ("self.p > 0 and (self.training or self.keep_in_eval)", "self.p > 0"),
    "gate reads a method": ("(self.training or self.keep_in_eval)", "(self.training or self.keep())"),
    "gate reads an attribute nothing binds": ("(self.training or self.keep_in_eval)",
                                              "(self.training or self.retained)"),
    "another rate tested": ("self.p > 0 and", "self.q > 0 and"),
    "returns something else otherwise": ("        else:\n            return x",
                                         "        else:\n            return x * 0.5"),
}


@pytest.mark.parametrize("why", sorted(NOT_A_DROPOUT))
def test_look_alikes_are_not_a_dropout(why):
    old, new = NOT_A_DROPOUT[why]
    # (the flag bound once, in __init__: settled, not read at run time)
    text = edit(SAME_FILE, "            self.keep_in_eval = True", "            pass")
    assert covered(text, SCORES, "ADP010")
    assert not covered(edit(text, old, new), SCORES, "ADP010"), why


def test_a_flag_that_defaults_true_but_is_set_at_run_time_is_read_at_run_time():
    """Bound True in __init__ and again by a method: the module drops in eval until told
    otherwise; the patch reads the flag, so the fused call drops when the module would."""
    text = edit(SAME_FILE, "self.keep_in_eval = False", "self.keep_in_eval = True")
    text = edit(text, "            self.keep_in_eval = True", "            self.keep_in_eval = False")
    result = fix_text(text, "model.py", rules("ADP010"))
    assert "if self.attn_drop.training or self.attn_drop.keep_in_eval else 0.0" in " ".join(result.text.split())


def _package(tmp_path, files: dict):
    top = tmp_path / "gatepkg"
    top.mkdir()
    (top / "__init__.py").touch()
    for rel, text in files.items():
        (top / rel).write_text(text)
    return top


def test_gated_dropout_module_of_a_sibling_module(tmp_path):
    top = _package(tmp_path, {"gated_drop.py": GATED_DROPOUT,
                              "attention.py": ATTENTION.replace("IMPORT", "from gatepkg.gated_drop import GatedDrop")})
    path = top / "attention.py"
    text = path.read_text()
    package = package_of(str(path))
    line = next(n for n, t in enumerate(text.splitlines(), 1) if SCORES in t)
    findings = analyze(text, str(path), rules("ADP010"), package).findings
    assert any(f.rule == "ADP010" and f.line <= line <= f.end_line for f in findings)
    result = fix_text(text, str(path), rules("ADP010"), package)
    assert "if self.attn_drop.training or self.attn_drop.keep_in_eval else 0.0" in " ".join(result.text.split())
    # the sibling's module drops whole samples: no dropout, no finding
    (top / "gated_drop.py").write_text(edit(GATED_DROPOUT, NOT_A_DROPOUT["stochastic depth (whole samples)"][0],
                                            STOCHASTIC_DEPTH))
    package = package_of(str(path))
    findings = analyze(text, str(path), rules("ADP010"), package).findings
    assert not any(f.rule == "ADP010" and f.line <= line <= f.end_line for f in findings)


DROPOUT_ADD_NORM = GATED_DROPOUT + dropout_add_norm("GatedDrop(p)")


def test_gated_dropout_before_a_residual_add_and_layer_norm_is_reported_not_fixed():
    line = "return self.norm(h + residual)"
    assert_reported_not_fixed(DROPOUT_ADD_NORM, "ADP005", line, "nn.Dropout's p")
    scaled = edit(DROPOUT_ADD_NORM, "return F.dropout(x, p=self.p, training=True, inplace=inplace)",
                  "return F.dropout(x, p=self.p, training=True, inplace=inplace) * 2.0")
    assert finding_at(scaled, "ADP005", line) is None


SOFTMAX_MODULE = textwrap.dedent("""\
    import torch.nn as nn


    class RowSoftmax(nn.Module):
        def __init__(self, dim=-1):
            super().__init__()
            self.dim = dim

        def forward(self, x):
            return x.softmax(self.dim)
""")


def test_softmax_module_of_a_sibling_module(tmp_path):
    """The sibling reading is the same-file one's (layers._wrapper): a softmax module another
    module defines is a softmax over the axis the construction fixes; over the queries' axis
    it is not attention's."""
    attention = edit(ATTENTION, "IMPORT", "from gatepkg.gated_drop import GatedDrop\nfrom gatepkg.rows import RowSoftmax")
    attention = edit(attention, "self.proj = nn.Linear(dim, dim)",
                     "self.proj = nn.Linear(dim, dim)\n        self.attend = RowSoftmax(dim=-1)")
    attention = edit(attention, "attn = torch.softmax(attn, dim=-1)", "attn = self.attend(attn)")
    attention = edit(attention, 'GatedDrop(p, name="attention")', "nn.Dropout(p)")  # (the softmax alone is new)
    top = _package(tmp_path, {"gated_drop.py": GATED_DROPOUT, "rows.py": SOFTMAX_MODULE, "attention.py": attention})
    path = top / "attention.py"
    line = next(n for n, t in enumerate(attention.splitlines(), 1) if SCORES in t)

    def found():
        findings = analyze(path.read_text(), str(path), rules("ADP010"), package_of(str(path))).findings
        return any(f.rule == "ADP010" and f.line <= line <= f.end_line for f in findings)

    assert found()
    path.write_text(edit(attention, "RowSoftmax(dim=-1)", "RowSoftmax(dim=-2)"))
    assert not found()


def test_a_gate_whose_dropout_reads_self_training_is_the_plain_dropout():
    """``training=self.training`` under ``self.training or self.<flag>`` drops only in
    training: in eval with the flag set it is the identity, so the fix's rate must not read
    the flag (review37: the flag's rate dropped every probability there)."""
    import torch

    text = edit(SAME_FILE, "F.dropout(x, p=self.p, training=True, inplace=inplace)",
                "F.dropout(x, p=self.p, training=self.training, inplace=inplace)")
    assert covered(text, SCORES, "ADP010")
    result = fix_text(text, "model.py", rules("ADP010"))
    assert result.applied and "scaled_dot_product_attention(" in result.text
    assert "keep_in_eval else" not in " ".join(result.text.split())
    for keep in (False, True):
        out_a, out_b, bias = _eval_at_rate_one(text, result.text, keep)
        # float64 softmax over 5 keys: rounding only
        torch.testing.assert_close(out_b, out_a)
        assert not torch.allclose(out_a, bias)


def test_a_written_out_layer_norm_with_cast_parameters_is_still_read():
    """misses50's gated-dropout test of ``self.<attr>`` once shadowed formulas' older
    ``_self_attr`` (which strips casts) at module level, and the written-out LayerNorm with
    ``self.weight.float()`` stopped being one (review37)."""
    import ast

    from adopter.structure import formulas
    from adopter.structure.names import collect_names

    src = textwrap.dedent("""\
        import torch
        import torch.nn as nn


        class Norm(nn.Module):
            def __init__(self, dim, eps=1e-5):
                super().__init__()
                self.weight = nn.Parameter(torch.ones(dim))
                self.bias = nn.Parameter(torch.zeros(dim))
                self.eps = eps

            def forward(self, x):
                mean = x.mean(-1, keepdim=True)
                var = (x - mean).pow(2).mean(-1, keepdim=True)
                return self.weight.float() * ((x - mean) / torch.sqrt(var + self.eps)) + self.bias.float()
    """)
    tree = ast.parse(src)
    names = collect_names(tree)
    cls = next(node for node in tree.body if isinstance(node, ast.ClassDef))
    assert formulas.layer_norm_module(cls, names)
    # the look-alike: the shift is not an attribute of self
    other = ast.parse(src.replace("+ self.bias.float()", "+ x.float()"))
    cls = next(node for node in other.body if isinstance(node, ast.ClassDef))
    assert not formulas.layer_norm_module(cls, collect_names(other))
