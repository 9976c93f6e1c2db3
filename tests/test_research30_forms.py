"""Forms found while checking the blind batch research30 (research reimplementations: mixture
of experts, time-series transformers, Linformer, differential and additive attention, a
PaLM-style block).  The fixtures are ours.

- An activation layer chosen in ``__init__`` by a string parameter that is also kept on the
  module (``self.kind = kind``; ``if kind == "glu": self.act = self._glu elif kind == "gelu":
  self.act = nn.GELU() ...``), and a forward that branches on the kept string (``if self.kind ==
  "glu": h = self.act(self.gate(x)) * self.up(x)``): inside that branch ``self.act`` is the
  layer built under the same key only, so the GELU built under another key is not what the
  Linear feeds there (ADP006 reported it: a false positive).  Near-misses that must still be
  reported: the branch whose key is the GELU's, the ``else`` of the test, a kept attribute that
  something else in the file may set, and a kept attribute assigned from an expression rather
  than the parameter.
"""

from __future__ import annotations

from corpus_forms import finding_at

KEYED = """\
import torch.nn as nn
import torch.nn.functional as F


class Expert(nn.Module):
    def __init__(self, d=8, h=16, kind="glu"):
        super().__init__()
        self.kind = KEPT
        self.gate = nn.Linear(d, h)
        self.up = nn.Linear(d, h)
        self.down = nn.Linear(h, d)
        if kind == "glu":
            self.act = self._glu
        elif kind == "gelu":
            self.act = nn.GELU()
        elif kind == "relu":
            self.act = nn.ReLU()
        else:
            raise ValueError(kind)

    def _glu(self, x):
        return F.silu(x) * x

    def forward(self, x):
        if self.kind == "WHICH":
            h = self.act(self.gate(x)) * self.up(x)
        else:
            h = self.act(self.up(x))
        return self.down(h)
EXTRA"""


def _code(which="glu", kept="kind", extra=""):
    return KEYED.replace("WHICH", which).replace("KEPT", kept).replace("EXTRA", extra)


def test_layer_built_under_another_key_is_not_the_branch_layer():
    code = _code()
    assert finding_at(code, "ADP006", "h = self.act(self.gate(x)) * self.up(x)") is None
    # the else branch may run with kind == "gelu": still a site
    assert finding_at(code, "ADP006", "h = self.act(self.up(x))") is not None


def test_branch_of_the_gelu_key_is_still_reported():
    code = _code(which="gelu")
    assert finding_at(code, "ADP006", "h = self.act(self.gate(x)) * self.up(x)") is not None


def test_kept_attribute_set_elsewhere_is_not_read_as_the_key():
    extra = "\n\ndef make():\n    e = Expert()\n    e.kind = 'gelu'\n    return e\n"
    code = _code(extra=extra)
    assert finding_at(code, "ADP006", "h = self.act(self.gate(x)) * self.up(x)") is not None


def test_kept_attribute_not_the_parameter_is_not_read_as_the_key():
    code = _code(kept="kind.lower()")
    assert finding_at(code, "ADP006", "h = self.act(self.gate(x)) * self.up(x)") is not None


def test_parameter_assigned_again_in_init_is_not_read_as_the_key():
    code = _code().replace('        self.kind = kind\n', '        self.kind = kind\n        kind = "gelu"\n')
    assert 'kind = "gelu"' in code
    assert finding_at(code, "ADP006", "h = self.act(self.gate(x)) * self.up(x)") is not None


def test_parameter_passed_on_by_keyword_is_still_the_key():
    code = _code().replace("        self.down = nn.Linear(h, d)\n",
                           "        self.down = nn.Linear(h, d)\n        self.note = dict(kind=kind)\n")
    assert finding_at(code, "ADP006", "h = self.act(self.gate(x)) * self.up(x)") is None
