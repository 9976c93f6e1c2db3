"""ADP009: three Linears held in an ``nn.ModuleList`` of copies, called by index or through a
``zip`` over the list (session 39, helper misses58).  The fixtures are ours.

``nn.ModuleList([nn.Linear(d, d) for _ in range(4)])``, or a same-file ``clones(layer, 4)``
returning ``nn.ModuleList([copy.deepcopy(layer) for _ in range(N)])``, holds four Linears, each
with its own weights: ``self.linears[0](x)``, ``[1]``, ``[2]`` are three distinct projections of
x (structure/module_copies.py records the positions).  ``q, k, v = (layer(y).view(...) for
layer, y in zip(self.linears, [x] * 3))`` is read as the three calls written out, in order.
Reported, not fixed: the members run by index, and a patch would have to keep the list's keys.

Near-misses: the zip over three different inputs (cross attention, the annotated transformer's
``zip(self.linears, (query, key, value))``), one Linear called three times, a count that is
not a literal, members built from the loop index, outputs that never meet (concatenated).
"""

from __future__ import annotations

import textwrap

from corpus_forms import found, line_of

HEADER = textwrap.dedent("""\
    import copy

    import torch.nn.functional as F
    from torch import nn


    def clones(module, N):
        \"\"\"N copies.\"\"\"
        return nn.ModuleList([copy.deepcopy(module) for _ in range(N)])


    class Attention(nn.Module):
        def __init__(self, d, h, n=4):
            super().__init__()
            self.h = h
            self.linears = BUILT

        def forward(self, x, mem=None):
            b = x.size(0)
    """)

INDEXED = """\
        q = self.linears[0](x)  # first
        k = self.linears[1](x)
        v = self.linears[2](x)
        return self.linears[3](F.scaled_dot_product_attention(q, k, v))
"""

ZIPPED = """\
        q, k, v = (  # first
            layer(y).view(b, -1, self.h, 4).transpose(1, 2)
            for layer, y in zip(self.linears, INPUTS, strict=False)
        )
        o = F.scaled_dot_product_attention(q, k, v)
        return self.linears[-1](o.transpose(1, 2).reshape(b, -1, self.h * 4))
"""

COMPREHENSION = "nn.ModuleList([nn.Linear(d, d) for _ in range(4)])"
CLONES = "clones(nn.Linear(d, d, bias=False), 4)"


def code(body: str, built: str = CLONES, inputs: str = "[x] * 3") -> str:
    return HEADER.replace("BUILT", built) + body.replace("INPUTS", inputs)


def site(text: str):
    (finding,) = found(text, "ADP009")
    assert finding.line == line_of(text, "# first")
    return finding


def test_indexed_copies_are_three_projections():
    for built in (COMPREHENSION, CLONES):
        assert not site(code(INDEXED, built)).fixable  # (the members run by index: reported only)


def test_zip_over_the_list_and_one_input_repeated():
    for built in (COMPREHENSION, CLONES):
        site(code(ZIPPED, built))
    site(code(ZIPPED, inputs="(x, x, x)"))


def test_zip_over_different_inputs_is_no_site():
    assert found(code(ZIPPED, inputs="(x, mem, mem)"), "ADP009") == []


def test_one_layer_called_three_times_is_no_site():
    text = code(INDEXED.replace("[1]", "[0]").replace("[2]", "[0]"))
    assert found(text, "ADP009") == []


def test_a_count_that_is_not_a_literal_leaves_the_positions_unknown():
    assert found(code(INDEXED, "clones(nn.Linear(d, d), n)"), "ADP009") == []
    assert found(code(INDEXED, "nn.ModuleList([nn.Linear(d, d) for _ in range(n)])"), "ADP009") == []


def test_copies_built_from_the_loop_index_are_not_copies():
    # each member reads the loop name: not N copies of one layer (the positions stay unknown)
    built = "nn.ModuleList([nn.Linear(d, d * (i + 1)) for i in range(4)])"
    assert found(code(INDEXED, built), "ADP009") == []


def test_outputs_that_never_meet_are_no_site():
    # concatenated into a feed-forward (no product, no attention takes two of them)
    body = INDEXED.replace("F.scaled_dot_product_attention(q, k, v)", "torch.cat([q, k, v], dim=-1)")
    assert found(code(body).replace("import copy", "import copy\n\nimport torch"), "ADP009") == []


def test_one_module_listed_three_times_shares_its_weights():
    # ``[lin for _ in range(4)]`` lists one Linear four times: one set of weights, not four
    # projections (only an element that builds a layer, a call, is a copy per position)
    text = code(INDEXED, "nn.ModuleList([lin for _ in range(4)])")
    text = text.replace("        self.h = h\n", "        self.h = h\n        lin = nn.Linear(d, d)\n")
    assert "lin = nn.Linear(d, d)" in text
    assert found(text, "ADP009") == []
    site(code(INDEXED, COMPREHENSION))  # (the element built per position still is)
