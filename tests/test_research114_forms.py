"""Forms found while checking the blind batch research114 (GPT / ViT / CLIP-style
reimplementations on PyPI: a Django GPT trainer, a Lightning GPT-2, a methylation GPT with a
mixture of experts, a CLIP extension, a cryo-ET SAM2 adapter).  The fixtures are ours.

- ADP006, missed: a mixture of experts whose experts are ``nn.ModuleDict`` rows of an
  ``nn.ModuleList`` (``{"linear1": nn.Linear(...), "activation": make_act(name), ...}``, the
  activation from a same-file factory keyed by a run-time string with a GELU entry), run in a
  list comprehension inside ``torch.stack``: ``[e["linear2"](e["activation"](e["linear1"](x)))
  for e in self.experts]``.  The statement loop ``for e in self.experts:`` already made ``e`` an
  alias of the list's members (``experts[]``, whose ModuleDict members the bindings record as
  ``experts[].linear1``); a comprehension's loop name did not, so its element's calls were
  unresolved.  A comprehension of one unconditional loop of a name over ``self.<attr>``, a list
  the class binds members of, now reads its element with the same alias.
Near-misses (silent): the same comprehension with a fixed ReLU member, a dropout between the
Linear and the activation, and a loop over a plain list attribute that binds no layers.
"""
from __future__ import annotations

import textwrap

from corpus_forms import covered

EXPERTS = textwrap.dedent("""\
    import torch
    import torch.nn as nn


    def make_act(name):
        if name == "relu":
            return nn.ReLU()
        if name == "gelu":
            return nn.GELU()
        raise ValueError(name)


    class Experts(nn.Module):
        def __init__(self, d, n, activation="gelu"):
            super().__init__()
            self.experts = nn.ModuleList(
                [
                    nn.ModuleDict(
                        {
                            "linear1": nn.Linear(d, 4 * d),
                            "activation": make_act(activation),
                            "drop": nn.Dropout(0.1),
                            "linear2": nn.Linear(4 * d, d),
                        }
                    )
                    for _ in range(n)
                ]
            )

        def forward(self, x, gates):
            outs = torch.stack(
                [e["linear2"](e["drop"](e["activation"](e["linear1"](x)))) for e in self.experts],
                dim=1,
            )
            return (outs * gates.unsqueeze(-1)).sum(1)
""")
NEEDLE = 'e["activation"](e["linear1"](x))'


def test_expert_rows_run_in_a_comprehension_are_found():
    assert covered(EXPERTS, NEEDLE, "ADP006")


def test_the_statement_loop_form_is_still_found():
    comprehension = (
        "        outs = torch.stack(\n"
        '            [e["linear2"](e["drop"](e["activation"](e["linear1"](x)))) for e in self.experts],\n'
        "            dim=1,\n"
        "        )\n"
    )
    loop = (
        "        rows = []\n"
        "        for e in self.experts:\n"
        '            rows.append(e["linear2"](e["drop"](e["activation"](e["linear1"](x)))))\n'
        "        outs = torch.stack(rows, dim=1)\n"
    )
    code = EXPERTS.replace(comprehension, loop)
    assert code != EXPERTS
    assert covered(code, NEEDLE, "ADP006")


def test_comprehension_near_misses_stay_silent():
    cases = {
        "a fixed ReLU member": (EXPERTS.replace('"activation": make_act(activation)', '"activation": nn.ReLU()'),
                                NEEDLE),
        "a dropout between": (EXPERTS.replace('e["drop"](e["activation"](e["linear1"](x)))',
                                              'e["activation"](e["drop"](e["linear1"](x)))'),
                              'e["activation"](e["drop"](e["linear1"](x)))'),
        "a plain list of functions": (EXPERTS.replace(
            "    def forward(self, x, gates):",
            "        self.fns = [torch.relu, torch.tanh]\n\n    def forward(self, x, gates):").replace(
            "for e in self.experts]", "for e in self.fns]").replace(
            'e["linear2"](e["drop"](e["activation"](e["linear1"](x))))', 'e(self.experts[0]["linear1"](x))'),
            'e(self.experts[0]["linear1"](x))'),
    }
    for why, (code, needle) in cases.items():
        assert code != EXPERTS, why
        assert not covered(code, needle, "ADP006"), why
