"""The canonical-operation table: every spelling of one computation is one graph node.

The table (adopter/structure/ops.py) is data; these tests pin what it makes of code -- the
spellings of a softmax, of matrix products and transposes, masks, dtype round trips and
activations -- that adding a spelling is one table entry, and that a rule can still ask for
exact spellings (the paper benchmark's conventions).
"""

from __future__ import annotations

import ast
import copy
import textwrap

import pytest

from adopter import engine
from adopter.engine import analyze
from adopter.ruleset import load_rule, load_rules
from adopter.structure import module_structure
from adopter.structure import ops as ops_table
from adopter.structure.canon import (TABLE, einsum, einsum_broadcast, fill_value, held_fill, permutation_swaps_last_two,
                                     rearrange_swaps_last_two)

SPELLINGS = textwrap.dedent('''
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    from einops import rearrange
    from transformers.activations import ACT2FN


    class A(nn.Module):
        def __init__(self, config):
            super().__init__()
            self.attend = nn.Softmax(dim=-1)
            self.drop = nn.Dropout(0.1)
            self.act = ACT2FN[config.hidden_act]
            self.gelu = ACT2FN["gelu"]
            self.relu = nn.ReLU()

        def forward(self, q, k, a, mask):
            s1 = F.softmax(a, dim=-1)
            s2 = torch.softmax(a, -1)
            s3 = a.softmax(-1)
            s4 = self.attend(a)
            s5 = nn.Softmax(-1)(a)
            s6 = torch.softmax(a, dim=a.dim() - 1)
            s7 = F.softmax(a, dim=len(a.shape) - 1)
            q1 = q @ k.transpose(-1, -2)
            q2 = torch.matmul(q, k.mT)
            q3 = torch.bmm(q, k.permute(0, 2, 1))
            q4 = torch.einsum("bhid,bhjd->bhij", q, k)
            q5 = q.matmul(rearrange(k, "b h n d -> b h d n"))
            m1 = a.masked_fill(mask, float("-inf"))
            m2 = torch.where(mask, a, torch.finfo(a.dtype).min)
            c1 = a.float()
            c2 = a.to(torch.float32)
            c3 = a.type_as(q)
            g1 = self.gelu(a)
            g2 = self.act(a)
            g3 = self.relu(a)
            d1 = self.drop(a)
            d2 = F.dropout(a, p=0.1, training=self.training)
            return s1, s2, s3, s4, s5, s6, s7, q1, q2, q3, q4, q5, m1, m2, c1, c2, c3, g1, g2, g3, d1, d2
''')


def _nodes(source: str, cls: str = "A") -> dict[str, list]:
    """Nodes of ``cls.forward`` by the local name they assign."""
    structure = module_structure(ast.parse(source), None, source)
    flow = structure.classes[cls].flow("forward")
    found: dict[str, list] = {}
    for node in flow.nodes:
        for out in node.outs:
            found.setdefault(out.text, []).append(node)
    return found


def test_every_softmax_spelling_is_one_operation_over_the_last_dimension():
    nodes = _nodes(SPELLINGS)
    for name in ("s1", "s2", "s3", "s4", "s5", "s6", "s7"):
        [node] = nodes[name]
        assert node.canon == "torch.nn.functional.softmax", name
        assert [a.text for a in node.view.args] == ["a"], name
        assert dict(node.view.kwargs)["dim"].value == -1, name


def test_matrix_products_and_transposes_of_the_last_two_axes():
    nodes = _nodes(SPELLINGS)
    for name in ("q1", "q2", "q3", "q4", "q5"):
        [product] = nodes[name]
        assert product.canon == "torch.matmul", name
        view = product.view
        assert view is not None and view.origins and view.origins[1] is not None, name
        key_span, dims = view.origins[1]
        assert set(dims) == {-2, -1}, name
        assert key_span[1] < key_span[3] or key_span[0] < key_span[2]


def test_masks_and_dtype_round_trips():
    nodes = _nodes(SPELLINGS)
    for name in ("m1", "m2"):
        [node] = nodes[name]
        assert node.canon == "torch.Tensor.masked_fill" and node.view.args[0].text == "a", name
    assert {dict(nodes[n][0].view.kwargs)["dtype"].text for n in ("c1", "c2")} == {"torch.float32"}
    assert dict(nodes["c3"][0].view.kwargs)["dtype"].text == "q.dtype"


def test_activations_known_and_chosen_at_run_time():
    nodes = _nodes(SPELLINGS)
    assert nodes["g1"][0].canon == "torch.nn.functional.gelu" and not nodes["g1"][0].maybe
    assert nodes["g2"][0].canon == "" and "torch.nn.functional.gelu" in nodes["g2"][0].maybe
    assert nodes["g3"][0].canon == "torch.nn.functional.relu"
    for name in ("d1", "d2"):
        [node] = nodes[name]
        assert node.canon == "torch.nn.functional.dropout" and dict(node.view.kwargs)["p"].value == 0.1, name


@pytest.mark.parametrize("equation, expected", [
    ("bhid,bhjd->bhij", ("matmul_t", (0, 1))),  # q . k: scores
    ("b h i d, b h j d -> b h i j", ("matmul_t", (0, 1))),
    ("bhjd,bhid->bhij", ("matmul_t", (1, 0))),  # operands the other way round
    ("bhij,bhjd->bhid", ("matmul", (0, 1))),  # probabilities . v
    ("...ij,...jd->...id", ("matmul", (0, 1))),
    ("bij,bjd->bid", ("matmul", (0, 1))),
    ("bhij,hg->bgij", None),  # talking heads: mixes heads, not a product of these axes
    ("bhid,bhjd->bhji", ("matmul_t", (1, 0))),  # k . q: the scores transposed, still a product
    ("bid,bjd->bi", None),
    # channel-first operands (guided-diffusion's QKVAttention): q^T . k, then v . p^T
    ("bct,bcs->bts", ("t_matmul", (0, 1))),
    ("bts,bcs->bct", ("matmul_t", (1, 0))),
    ("bcs,bst->bct", ("matmul", (0, 1))),
    ("bcs,bct->bst", ("t_matmul", (0, 1))),
    ("bct,bsc->bts", ("t_matmul_t", (0, 1))),  # a^T @ b^T
    ("bct,bcs->bct", None),  # an output axis of both operands: no product
])
def test_einsum_equations(equation, expected):
    assert einsum(equation) == expected


@pytest.mark.parametrize("equation, expected", [
    # multi-query: k and v have no head axis; they read as k.unsqueeze(-3)
    ("b h i d, b j d -> b h i j", ("matmul_t", (0, 1), ((), (-3,)))),
    ("b h i j, b j d -> b h i d", ("matmul", (0, 1), ((), (-3,)))),
    ("...hid,...jd->...hij", ("matmul_t", (0, 1), ((), (-3,)))),
    ("bhid,jd->bhij", ("matmul_t", (0, 1), ((), (-3, -4)))),  # nearest the end first
    ("bjd,bhid->bhij", ("matmul_t", (1, 0), ((-3,), ()))),
    ("bhid,bhjd->bhij", ("matmul_t", (0, 1), ((), ()))),
    ("hbid,bjd->bhij", None),  # q's batch axes in another order than the output's
    ("bhid,bgjd->bhij", None),  # an axis of an operand the output lacks: summed, not broadcast
])
def test_einsum_equations_that_broadcast_an_operand(equation, expected):
    assert einsum_broadcast(equation) == expected
    assert einsum(equation) == (expected[:2] if expected and not any(expected[2]) else None)


def test_a_broadcast_einsum_is_the_matmul_of_the_unsqueezed_operands():
    torch = pytest.importorskip("torch")
    q, k = torch.randn(2, 3, 5, 4, dtype=torch.float64), torch.randn(2, 7, 4, dtype=torch.float64)
    kind, (i, j), dims = einsum_broadcast("bhid,bjd->bhij")
    assert kind == "matmul_t" and (i, j) == (0, 1)
    for dim in dims[1]:
        k = k.unsqueeze(dim)
    torch.testing.assert_close(q @ k.transpose(-2, -1), torch.einsum("bhid,bjd->bhij", q, k.squeeze(1)))


def test_permutes_rearranges_and_fill_values():
    assert permutation_swaps_last_two([0, 1, 3, 2]) and permutation_swaps_last_two([0, -1, -2])
    assert not permutation_swaps_last_two([0, 2, 3, 1]) and not permutation_swaps_last_two([1, 0, 2, 3])
    assert rearrange_swaps_last_two("b h n d -> b h d n")
    assert not rearrange_swaps_last_two("b n (h d) -> b h n d") and not rearrange_swaps_last_two("b h n d -> b n h d")
    for text, kind in [("float('-inf')", "inf"), ("-math.inf", "inf"), ("torch.finfo(x.dtype).min", "finite"),
                       ("-torch.finfo(x.dtype).max", "finite"), ("-1e9", "finite"), ("0.0", None), ("-1.0", None)]:
        assert fill_value(ast.parse(text, mode="eval").body) == kind, text


def _softmax_rule(tmp_path, spellings: str | None = None):
    text = ('id = "USR010"\nname = "sm"\nsummary = "s"\n[kernel]\npackage = "p"\nimport = "p.softmax"\n'
            '[forward]\nsource = "$y = torch.nn.functional.softmax($x, dim=-1, ...)"\n'
            'target = "$y = p.softmax($x, dim=-1, ...)"\n')
    if spellings:
        text += f'spellings = "{spellings}"\n'
    path = tmp_path / f"sm-{spellings}.toml"
    path.write_text(text)
    return load_rule(path)


def test_a_rule_matches_every_spelling_or_with_exact_spellings_only_its_own(tmp_path):
    every = analyze(SPELLINGS, "m.py", [_softmax_rule(tmp_path)]).findings
    exact = analyze(SPELLINGS, "m.py", [_softmax_rule(tmp_path, "exact")]).findings
    assert len(every) == 7
    assert [f.line for f in exact] == [f.line for f in every][:1]  # F.softmax(a, dim=-1) only


def test_a_fix_writes_the_canonical_call_for_any_spelling(tmp_path):
    from adopter.synth import fix_text

    source = "import torch\n\n\ndef f(a):\n    return a.softmax(-1, dtype=torch.float32)\n"
    result = fix_text(source, "m.py", [_softmax_rule(tmp_path)])
    assert "return softmax(a, dim=-1, dtype=torch.float32)" in result.text  # positional dim, keyword dtype kept


@pytest.fixture
def restored_table():
    saved = copy.deepcopy(ops_table.OPS)
    yield ops_table.OPS
    ops_table.OPS.clear()
    ops_table.OPS.update(saved)
    TABLE.__init__(ops_table.OPS)
    engine._MATCHERS.clear()


def test_adding_a_spelling_is_one_table_entry(restored_table, tmp_path, monkeypatch):
    monkeypatch.setenv("ADOPTER_NO_CACHE", "1")
    source = textwrap.dedent('''
        import torch
        import fastops


        def attend(q, k, v):
            scores = q @ k.transpose(-1, -2)
            probs = fastops.softmax(scores, dim=-1)
            return probs @ v
    ''')
    rules = [r for r in load_rules() if r.id in ("ADP004", "ADP010")]
    assert analyze(source, "m.py", rules).findings == []
    # the one entry: a vendored kernel library's softmax is a softmax
    restored_table["torch.nn.functional.softmax"]["functions"].append("fastops.softmax")
    TABLE.__init__(restored_table)
    engine._MATCHERS.clear()
    rules = [r for r in load_rules() if r.id in ("ADP004", "ADP010")]
    assert sorted(f.rule for f in analyze(source, "m.py", rules).findings) == ["ADP004", "ADP010"]


@pytest.mark.parametrize("text,expected", [
    ("s - s.amax(dim=-1, keepdim=True)", True),
    ("s - s.amax(dim=-1, keepdim=True).detach()", True),
    ("s - s.amax(-1, keepdim=True).detach()", True),
    ("s - s.max(dim=-1, keepdim=True).values", True),
    ("s - s.max(-1, keepdim=True)[0].detach()", True),
    ("a.b - a.b.amax(dim=-1, keepdim=True)", True),
    ("s - s.amax(dim=-2, keepdim=True)", False),
    ("s - s.amax(dim=-1)", False),
    ("s - t.amax(dim=-1, keepdim=True)", False),
    ("s - s.max(dim=-1, keepdim=True)", False),
    ("s - s.amax(dim=-1, keepdim=True) * 2", False),
    ("s - s.mean(dim=-1, keepdim=True)", False),
])
def test_subtracting_the_row_maximum(text, expected):
    from adopter.structure.canon import subtracts_row_max

    assert subtracts_row_max(ast.parse(text, mode="eval").body) is expected



@pytest.mark.parametrize("text, names, kind", [
    # a fill made into a tensor, moved, held in a name: still the fill
    ("torch.full([], torch.finfo(w.dtype).min, dtype=w.dtype, device=w.device)", {}, "finite"),
    ("torch.tensor(m, dtype=w.dtype).to(w.device)", {"m": "finite"}, "finite"),
    ("w.new_full((), float('-inf'))", {}, "inf"),
    ("torch.as_tensor(data=-1e9)", {}, "finite"),
    ("m", {"m": "inf"}, "inf"),
    ("torch.full_like(att, float('-inf'))", {}, "inf"),  # where(c, att, full_like(att, -inf))
    # a tensor of another value, a name holding no fill, an unknown call: not a fill
    ("torch.full([], 0.0)", {}, None),
    ("torch.tensor(m)", {}, None),
    ("torch.zeros([]).to(w.device)", {}, None),
    ("torch.full([])", {}, None),
    ("torch.full_like(att, 0.0)", {}, None),
])
def test_held_fills(text, names, kind):
    assert held_fill(ast.parse(text, mode="eval").body, names.get) == kind


def test_a_where_fill_held_in_a_rebound_name_is_read_as_a_masked_fill():
    # GPT-2 / GPT-Neo: the fill value is a tensor built from finfo.min in two bindings of one
    # name, and the where comes before the additive mask
    code = textwrap.dedent("""
        import torch
        from torch import nn


        class Attention(nn.Module):
            def forward(self, q, k, v, keep, attention_mask):
                w = torch.matmul(q, k.transpose(-1, -2))
                fill = torch.finfo(w.dtype).min
                fill = torch.tensor(fill, dtype=w.dtype).to(w.device)
                w = torch.where(keep, w, fill)
                w = w + attention_mask
                w = torch.softmax(w, dim=-1)
                return torch.matmul(w, v)
    """)
    rules = [r for r in load_rules() if r.id == "ADP010"]
    assert [f.line for f in analyze(code, "m.py", rules).findings] == [8]  # from the scores
    # the same name rebound to something that is no fill: no masked_fill, so no attention
    other = code.replace("fill = torch.tensor(fill, dtype=w.dtype).to(w.device)", "fill = torch.tensor(0.5)")
    assert analyze(other, "m.py", rules).findings == []


def test_a_fill_a_caller_may_pass_is_guarded_as_a_mask():
    # `mask_value` is a parameter assigned a large negative only when the caller passes None:
    # another value (0.0, say) may reach the where, so the rewrite must not assume a mask.  Since
    # rafix48 the fill is read at run time: the fused call runs behind a guard that sends a fill
    # that is not -inf or at most -1e4 to the original code
    import torch

    from adopter.synth import fix_text

    code = textwrap.dedent("""
        import torch
        from torch import nn


        class Attention(nn.Module):
            def forward(self, q, k, v, keep, mask_value=None):
                if mask_value is None:
                    mask_value = torch.finfo(q.dtype).min
                w = torch.matmul(q, k.transpose(-1, -2))
                w = torch.where(keep, w, mask_value)
                w = torch.softmax(w, dim=-1)
                return torch.matmul(w, v)
    """)
    rules = [r for r in load_rules() if r.id == "ADP010"]
    result = fix_text(code, "m.py", rules)
    assert [f.rule for f in result.applied] == ["ADP010"]
    assert "not (mask_value <= -10000.0)" in result.text
    original, patched = {}, {}
    exec(compile(code, "original.py", "exec"), original)
    exec(compile(result.text, "patched.py", "exec"), patched)
    generator = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, 5, 4, generator=generator, dtype=torch.float64) for _ in range(3))
    keep = torch.rand(2, 1, 5, 5, generator=generator) > 0.3
    keep[..., 0] = True  # (no row hidden whole: the fused path is taken for a mask)
    for fill in (None, 0.0, -0.5):  # a mask, and fills that are no mask
        want = original["Attention"]()(q, k, v, keep, fill)
        got = patched["Attention"]()(q, k, v, keep, fill)
        torch.testing.assert_close(got, want)  # float64: the fused and the written-out attention agree
    # bound in the body only, the same value is a known fill and the site is rewritten
    local = code.replace("keep, mask_value=None)", "keep)").replace("if mask_value is None:\n            ", "")
    assert "mask_value = torch.finfo(q.dtype).min" in local
    assert [f.rule for f in fix_text(local, "m.py", rules).applied] == ["ADP010"]
