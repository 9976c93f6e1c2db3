"""Dev-corpus misses the file itself decides, read by what the code computes (session 42,
helper misses64).  The fixtures are ours.

- ADP006: an MLP whose layers are built as a comprehension of Linears, then put one by one
  into a list by ``for i, layer in enumerate(layers):`` (or ``for layer in layers:``), each
  followed by its activation, the list becoming ``nn.Sequential(*modules)`` (mnistvit's MLP):
  the loop variable is the comprehension's Linear, so a Linear -> GELU pair runs in the
  Sequential.  Near-misses: a fixed ReLU after each Linear, and a loop over a list of
  settings (no layer) whose body builds nothing the pair needs.
- ADP009: projections handed back mixed (Zaya's CCA block): q and k concatenated and mixed by
  a causal convolution, returned as ``query, key, value`` beside v's own projection.  The
  returned tuple keeps the v step apart from the q/k mix, so the three are handed on to a
  caller as an attention's operands (match._returned_together).  The v projection lies twenty
  operations after k there: ADP009's ``max_gap`` (20) reaches it, the default 16 does not.
  Near-misses: one mix of all three returned with a copy of itself; the mix alone; key and
  value of another input.
"""

from __future__ import annotations

import textwrap

import torch
from corpus_forms import finding_at, float64_pair, found, rules

from adopter.synth import fix_text

LOOPED_MLP = textwrap.dedent("""\
    from torch import nn


    class MLP(nn.Module):
        def __init__(self, sizes, activation="relu"):
            super().__init__()
            layers = [nn.Linear(i, j) for i, j in zip(sizes[:-1], sizes[1:])]
            modules = []
            for LOOP:
                modules.append(layer)
                if i < len(layers) - 1:
                    if activation == "relu":
                        modules.append(nn.ReLU())
                    elif activation == "gelu":
                        modules.append(ACT)  # pair
                    else:
                        raise ValueError(activation)
            self.stack = nn.Sequential(*modules)

        def forward(self, x):
            return self.stack(x)


    class Model(nn.Module):
        def __init__(self, head_activation="gelu"):
            super().__init__()
            self.head = MLP([8, 16, 4], activation=head_activation)

        def forward(self, x):
            return self.head(x)
""")


def _looped(loop: str = "i, layer in enumerate(layers)", act: str = "nn.GELU()") -> str:
    return LOOPED_MLP.replace("LOOP", loop).replace("ACT", act)


def test_comprehension_linears_appended_by_an_enumerate_loop_then_gelu():
    code = _looped()
    assert finding_at(code, "ADP006", "# pair") is not None
    fixed = fix_text(code, "model.py", rules("ADP006")).text
    assert "FoldingSequential(*modules)" in fixed
    a, b = float64_pair(code, fixed, "Model")
    x = torch.randn(5, 8, dtype=torch.float64, requires_grad=True)
    y = torch.randn(5, 8, dtype=torch.float64, requires_grad=True)
    with torch.no_grad():
        y.copy_(x)
    # float64, 8- and 16-term dot products: far below 1e-10
    torch.testing.assert_close(b(y), a(x), rtol=0, atol=1e-10)
    a(x).sum().backward()
    b(y).sum().backward()
    torch.testing.assert_close(y.grad, x.grad, rtol=0, atol=1e-10)


def test_comprehension_linears_appended_by_a_plain_loop():
    code = _looped(loop="layer in layers").replace("if i < len(layers) - 1:", "if len(layers) > 1:")
    assert finding_at(code, "ADP006", "# pair") is not None


def test_looped_mlp_near_misses():
    # the activation after each Linear is a fixed ReLU on every path
    assert found(_looped(act="nn.ReLU()"), "ADP006") == []
    # the loop walks a list of settings, not layers: the appended value is no Linear
    settings = _looped().replace("layers = [nn.Linear(i, j) for i, j in zip(sizes[:-1], sizes[1:])]",
                                 "layers = [(i, j) for i, j in zip(sizes[:-1], sizes[1:])]")
    assert found(settings, "ADP006") == []


CCA = textwrap.dedent("""\
    import torch
    import torch.nn.functional as F
    from torch import nn


    class ConvMixedProjections(nn.Module):
        def __init__(self, dim, heads):
            super().__init__()
            self.heads = heads
            self.q_proj = nn.Linear(dim, dim)
            self.k_proj = nn.Linear(dim, dim)
            self.v_proj = nn.Linear(dim, dim)
            self.mix = nn.Conv1d(2 * dim, 2 * dim, 3, groups=2 * heads)

        def forward(self, x, cached=None):
            b, n, d = x.shape
            q = self.q_proj(x)  # first
            k = self.k_proj(KV)
            qk = torch.cat([q, k], dim=-1)
            q_res = q.view(b, n, self.heads, -1)
            k_res = k.view(b, n, self.heads, -1)
            q_res = (q_res + k_res) * 0.5
            MORE
            qk = qk.transpose(1, 2)
            if cached is not None:
                qk = torch.cat([cached, qk], dim=-1)
            else:
                qk = F.pad(qk, (2, 0))
            qk = self.mix(qk).transpose(1, 2)
            query = qk[..., :d].reshape(b, n, self.heads, -1) + q_res
            key = qk[..., d:].reshape(b, n, self.heads, -1) + k_res
            value = self.v_proj(KV).view(b, n, self.heads, -1)
            return RETURNED


    class Attention(nn.Module):
        def __init__(self, dim=8, heads=2):
            super().__init__()
            self.proj = ConvMixedProjections(dim, heads)

        def forward(self, x):
            q, k, v = (t.transpose(1, 2) for t in self.proj(x))
            return torch.softmax(q @ k.transpose(-1, -2), dim=-1) @ v
""")

# four more element-wise steps between the projections: v lies past the default gap
FAR = "q_res = q_res.tanh()\n        q_res = q_res.tanh()\n        q_res = q_res.tanh()\n        q_res = q_res.tanh()"


def _cca(more: str = "pass", kv: str = "x", returned: str = "query, key, value") -> str:
    return CCA.replace("MORE", more).replace("KV", kv).replace("RETURNED", returned)


def test_projections_returned_mixed_by_a_convolution_beside_v():
    code = _cca()
    assert finding_at(code, "ADP009", "# first") is not None
    _same_attention(code)


def test_v_projection_past_the_default_gap_is_reached_by_the_rules_bound():
    code = _cca(more=FAR)
    assert finding_at(code, "ADP009", "# first") is not None
    _same_attention(code)
    narrow = [r for r in rules("ADP009")]
    from adopter.engine import analyze
    from adopter.records import replace

    assert analyze(code, "model.py", [replace(narrow[0], max_gap=0)]).findings == []


def _same_attention(code: str) -> None:
    fixed = fix_text(code, "model.py", rules("ADP009")).text
    assert "fused_qkv(x, self.q_proj, self.k_proj, self.v_proj)" in fixed
    a, b = float64_pair(code, fixed, "Attention")
    x = torch.randn(2, 5, 8, dtype=torch.float64)
    with torch.no_grad():
        # float64, 8-term projections and a 5-key softmax: far below 1e-10
        torch.testing.assert_close(b(x), a(x), rtol=0, atol=1e-10)


def test_mixed_projection_near_misses():
    # one mix of all three steps, returned with a copy of itself: no operand kept apart
    assert found(_cca(returned="query + value, key + value"), "ADP009") == []
    # the q/k mix alone handed back (v computed, then dropped)
    assert found(_cca(returned="query, key"), "ADP009") == []
    # key and value project another input: no three-way fusion
    assert found(_cca(kv="cached"), "ADP009") == []


def _plain_loop(before: str = "", first: str = "") -> str:
    """The plain-loop MLP with ``before`` run between building the list and the loop, and
    ``first`` as the loop body's first statement (review48's counter-examples, our fixture)."""
    code = _looped(loop="layer in layers").replace("if i < len(layers) - 1:", "if len(layers) > 1:")
    if before:
        code = code.replace("        modules = []\n", "        " + before + "\n        modules = []\n")
    if first:
        code = code.replace("            modules.append(layer)\n",
                            "            " + first + "\n            modules.append(layer)\n")
    return code


def test_loop_variable_holds_no_element_once_the_body_or_the_list_changes_it():
    assert finding_at(_plain_loop(), "ADP006", "# pair") is not None
    # the body binds the name again: the appended value is a Tanh or a Sequential, no Linear
    assert found(_plain_loop(first="layer = nn.Tanh()"), "ADP006") == []
    assert found(_plain_loop(first="layer = nn.Sequential(layer, nn.Tanh())"), "ADP006") == []
    # every element skipped before it is appended
    assert found(_plain_loop(first="if isinstance(layer, nn.Linear):\n                continue"), "ADP006") == []
    # the list's items replaced between build and loop
    assert found(_plain_loop(before="layers[:] = [nn.Tanh() for _ in layers]"), "ADP006") == []
    assert found(_plain_loop(before="layers.clear()\n        layers.append(nn.Tanh())"), "ADP006") == []
    literal = _plain_loop(before="layers[0] = nn.Tanh()").replace(
        "[nn.Linear(i, j) for i, j in zip(sizes[:-1], sizes[1:])]", "[nn.Linear(8, 4)]")
    assert finding_at(literal.replace("        layers[0] = nn.Tanh()\n", ""), "ADP006", "# pair") is not None
    assert found(literal, "ADP006") == []


HEADS = textwrap.dedent("""\
    import torch
    from torch import nn


    class SpanHead(nn.Module):
        def __init__(self, dim):
            super().__init__()
            self.start = nn.Linear(dim, 1)
            self.end = nn.Linear(dim, 1)
            self.conf = nn.Linear(dim, 1)

        def forward(self, h):
            s = self.start(h)  # first
            e = self.end(h)
            c = self.conf(h)
            MIX
            return RETURNED
""")


def test_heads_mixed_without_a_layer_over_their_concatenation_are_no_hand_off():
    def heads(mix: str, returned: str) -> str:
        return HEADS.replace("MIX", mix).replace("RETURNED", returned)

    # three single heads returned: the hand-off read before misses64 (kept)
    assert finding_at(heads("pass", "s, e, c"), "ADP009", "# first") is not None
    # review48: two heads mixed by arithmetic beside the third are a model's outputs
    assert found(heads("mid = (s + e) * 0.5\n        size = e - s", "mid, size, c"), "ADP009") == []
    # concatenated and split again with no layer between: still arithmetic of the heads
    assert found(heads("se = torch.cat([s, e], -1) * 2.0", "se[..., :1], se[..., 1:], c"), "ADP009") == []
