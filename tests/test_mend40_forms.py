"""review40's counter-examples to session 38's merged work (mended by mend40): our own
fixtures, each with the form its change was written for, which must keep working.

- ``check``'s fixable verdict for a finding the analysis lengthened to the call of an
  inlined helper is the verdict ``fix`` gives (it used to be looked up by the shorter span).
"""

from __future__ import annotations

import textwrap

import pytest

from corpus_forms import finding_at, rules

from adopter.engine import analyze
from adopter.synth import fix_text
from adopter.synth.fixable import plan_findings


def _check_and_fix(code: str, rule: str):
    """(check's planned findings, fix's result) for ``code`` under ``rule``."""
    analysis = analyze(code, "model.py", rules(rule))
    return plan_findings(analysis, code, "model.py"), fix_text(code, "model.py", rules(rule))


# -------------------------------------------- findings lengthened to an inlined helper's call

PRODUCT_IN_A_HELPER = textwrap.dedent("""\
    import math

    import torch
    from torch import nn


    def mix(weights, values):
        return weights @ values


    class SelfAttention(nn.Module):
        def __init__(self, width, heads):
            super().__init__()
            self.heads = heads
            self.to_qkv = nn.Linear(width, 3 * width)

        def forward(self, x):
            b, n, c = x.shape
            q, k, v = self.to_qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
            sim = (q @ k.transpose(-2, -1)) / math.sqrt(q.shape[-1])
            sim = sim.softmax(dim=-1)
            print("mixing")
            y = mix(sim, v)
            return y.transpose(1, 2).reshape(b, n, c)
    """)

GELU_IN_A_HELPER = textwrap.dedent("""\
    import torch
    from torch import nn


    def tanh_gelu(x):
        return nn.functional.gelu(x, approximate="tanh")


    class GatedUnit(nn.Module):
        def __init__(self, width):
            super().__init__()
            self.gate = nn.Linear(width, width)
            self.up = nn.Linear(width, width)

        def forward(self, x):
            g = self.gate(x)
            g = tanh_gelu(g)
            return self.up(x) * g
    """)


def test_check_says_what_fix_does_for_a_finding_lengthened_to_a_helper_call():
    for code, rule in ((PRODUCT_IN_A_HELPER, "ADP010"), (GELU_IN_A_HELPER, "ADP006")):
        planned, fixed = _check_and_fix(code, rule)
        assert len(planned) == 1 and planned[0].end_line > planned[0].line
        assert not fixed.applied and len(fixed.skipped) == 1
        declined, why = fixed.skipped[0]
        assert (declined.line, declined.end_line) == (planned[0].line, planned[0].end_line)
        assert planned[0].fixable is False
        assert planned[0].not_fixable == why and "inlined" in why


def test_a_helper_free_twin_is_still_fixable_in_check_and_fixed():
    code = PRODUCT_IN_A_HELPER.replace("y = mix(sim, v)", "y = sim @ v")
    planned, fixed = _check_and_fix(code, "ADP010")
    assert [f.fixable for f in planned] == [True]
    assert [f.line for f in fixed.applied] == [planned[0].line]


# ------------------------------------- a comprehension's list changed through an alias or a call

CHANGED_LISTS = textwrap.dedent("""\
    import torch.nn as nn


    def make_relu(kinds):
        for j in range(len(kinds)):
            kinds[j] = nn.ReLU


    def passed_on(widths):
        acts = [nn.GELU for _ in range(len(widths) - 1)]
        make_relu(acts)
        net = nn.Sequential()
        for i in range(len(widths) - 1):
            net.add_module("fc" + str(i), nn.Linear(widths[i], widths[i + 1]))
            net.add_module("act" + str(i), acts[i]())  # passed-on
        return net


    def aliased(widths):
        acts = [nn.GELU for _ in range(len(widths) - 1)]
        other = acts
        for j in range(len(other)):
            other[j] = nn.ReLU
        net = nn.Sequential()
        for i in range(len(widths) - 1):
            net.add_module("fc" + str(i), nn.Linear(widths[i], widths[i + 1]))
            net.add_module("act" + str(i), acts[i]())  # aliased
        return net


    def indexed_only(widths):
        acts = [nn.GELU for _ in range(len(widths) - 1)]
        net = nn.Sequential()
        for i in range(len(acts)):
            net.add_module("fc" + str(i), nn.Linear(widths[i], widths[i + 1]))
            net.add_module("act" + str(i), acts[i]())  # indexed-only
        return net
    """)


def test_a_comprehension_list_passed_on_or_aliased_has_unknown_items():
    assert finding_at(CHANGED_LISTS, "ADP006", "# passed-on") is None
    assert finding_at(CHANGED_LISTS, "ADP006", "# aliased") is None


def test_a_comprehension_list_read_by_index_and_len_only_is_still_a_site():
    assert finding_at(CHANGED_LISTS, "ADP006", "# indexed-only") is not None


# ------------------------------------------------ a module constant's fill, bound more than once

FILLED_BY_A_CONSTANT = textwrap.dedent("""\
    import torch
    from torch import nn

    _NEG = -2.3819763e38


    class WindowAttention(nn.Module):
        def __init__(self, width, heads):
            super().__init__()
            self.heads = heads
            self.head_dim = width // heads
            self.q = nn.Linear(width, width, bias=False)
            self.k = nn.Linear(width, width, bias=False)
            self.v = nn.Linear(width, width, bias=False)

        def forward(self, x, keep):
            b, t, _ = x.shape
            q = self.q(x).view(b, t, self.heads, self.head_dim)
            k = self.k(x).view(b, t, self.heads, self.head_dim)
            v = self.v(x).view(b, t, self.heads, self.head_dim)
            s = torch.einsum("btnh,bsnh->bnts", q, k) * (self.head_dim**-0.5)
            s = torch.where(keep[:, None], s, _NEG)
            p = nn.functional.softmax(s.float(), dim=-1).type_as(x)
            return torch.einsum("bnts,bsnh->btnh", p, v).reshape(b, t, -1)
    """)


def _sdpa_lines(code: str) -> list[int]:
    from corpus_forms import found

    return [f.line for f in found(code, "ADP010")]


def test_a_constant_fill_bound_once_is_a_mask():
    assert _sdpa_lines(FILLED_BY_A_CONSTANT) != []


def test_a_constant_fill_bound_again_or_written_through_global_is_not_read():
    scaled = FILLED_BY_A_CONSTANT.replace("_NEG = -2.3819763e38\n", "_NEG = -2.3819763e38\n_NEG /= 1e38\n")
    branches = FILLED_BY_A_CONSTANT.replace(
        "_NEG = -2.3819763e38\n", "if torch.cuda.is_available():\n    _NEG = -2.0\nelse:\n    _NEG = -2.3819763e38\n")
    written = FILLED_BY_A_CONSTANT + "\n\ndef soften():\n    global _NEG\n    _NEG = -2.0\n"
    for code in (scaled, branches, written):
        assert _sdpa_lines(code) == []


# --------------------------------------------- a tensor made of a parameter scaling the scores

TEMPERATURE_TENSOR = textwrap.dedent("""\
    import torch
    import torch.nn.functional as F


    def attend(q, k, v, temperature):
        logits = torch.matmul(q, k.transpose(-2, -1))
        logits = logits / torch.as_tensor(temperature, dtype=torch.float32)
        return torch.matmul(F.softmax(logits, dim=-1), v)
    """)

TEMPERATURE_NUMBER = TEMPERATURE_TENSOR.replace(
    "def attend(q, k, v, temperature):\n", "def attend(q, k, v):\n    temperature = q.shape[-1] ** 0.5\n")


def test_a_tensor_made_of_a_parameter_is_not_folded_into_the_query():
    for code in (TEMPERATURE_TENSOR, TEMPERATURE_TENSOR.replace(", dtype=torch.float32", "")):
        fixed = fix_text(code, "model.py", rules("ADP010"))
        assert fixed.text == code and not fixed.applied
        assert [why for _, why in fixed.skipped] == [
            f"the scale `{'torch.as_tensor(temperature' + (', dtype=torch.float32' if 'float32' in code else '')})`"
            " may be a tensor that differs between keys"]


def test_a_tensor_made_of_a_local_number_is_still_folded_and_computes_the_same():
    torch = pytest.importorskip("torch")
    fixed = fix_text(TEMPERATURE_NUMBER, "model.py", rules("ADP010"))
    assert [f.line for f in fixed.applied] == [7]
    original, patched = {}, {}
    exec(compile(TEMPERATURE_NUMBER, "orig.py", "exec"), original)  # noqa: S102 (our own fixture)
    exec(compile(fixed.text, "fixed.py", "exec"), patched)  # noqa: S102
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 3, 5, 8, dtype=torch.float64) for _ in range(3))
    # float64, a softmax over 5 keys of sums of 8 products: a few ulps of rounding
    torch.testing.assert_close(patched["attend"](q, k, v), original["attend"](q, k, v), rtol=1e-10, atol=1e-12)


# ------------------------------------------------ the reshape function through an alias of torch

def test_the_reshape_function_through_an_alias_of_torch_is_still_fixed():
    from test_research77_forms import RESHAPED_ATTENTION

    code = RESHAPED_ATTENTION.replace("torch.reshape(", "th.reshape(").replace("import torch\n", "import torch\nimport torch as th\n", 1)
    assert code.count("th.reshape(") == 2
    fixed = fix_text(code, "model.py", rules("ADP010"))
    assert [f.rule for f in fixed.applied] == ["ADP010"]
    assert "th.reshape(w" not in fixed.text


# ------------------------------------------------------------------ shared readings (review40)

def test_one_reading_of_a_two_way_chunk_along_the_last_axis():
    import ast

    from adopter.structure.halves import chunk_in_two_last

    def tensor(code: str, torch_names=("torch",)):
        call = ast.parse(code, mode="eval").body
        resolve = lambda e: "torch.chunk" if ast.unparse(e) in {f"{n}.chunk" for n in torch_names} else None  # noqa: E731
        found = chunk_in_two_last(call, resolve)
        return None if found is None else ast.unparse(found)

    for code in ("x.chunk(2, -1)", "x.chunk(2, dim=-1)", "x.chunk(chunks=2, dim=-1)", "torch.chunk(x, 2, -1)",
                 "torch.chunk(x, 2, dim=-1)", "torch.chunk(x, chunks=2, dim=-1)"):
        assert tensor(code) == "x", code
    assert tensor("f(y).chunk(2, dim=-1)") == "f(y)"
    for code in ("x.chunk(3, -1)", "x.chunk(2, 1)", "x.chunk(2, dim=-2)", "x.chunk(2)", "x.chunk(2.0, -1)",
                 "torch.chunk(*xs, 2, -1)", "x.chunk(2, -1, dim=-1)", "x.split(2, -1)", "x.chunk(2, -1, out=y)"):
        assert tensor(code) is None, code


def test_one_character_segment_for_newer_syntax_and_the_fixer():
    from adopter.newer_syntax import char_segment

    lines = ["ab = f\"{d[\"é\"]}\"", "cd(1,", "  2)"]
    assert char_segment(lines, 1, 5, 1, 17) == 'f"{d["é"]}"'
    assert char_segment(lines, 2, 0, 3, 4) == "cd(1,\n  2)"
    assert char_segment(lines, 1, 3, 3, 2) == "= f\"{d[\"é\"]}\"\ncd(1,\n  "
    assert char_segment(lines, 7, 0, 7, 3) == ""
