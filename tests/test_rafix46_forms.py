"""Verify's inputs for forwards whose later arguments need a rank of their own (rafix46).
The fixtures are ours.

Verify read the rank a forward's code states only of its FIRST input (``b, c, h, w =
x.shape``); a later input was tried as [batch, seq, width] (or 4-D when einsum names it so),
so a forward that unpacks a later input's shape into more names (retro-transformer's chunked
cross-attention: ``batch_size, chunks, neighbors, neighbor_len, d_model = e.shape``) was
"no inputs it accepts".  ``inputs.shape_ranks`` reads, for every parameter, the count of names
its ``.shape`` (or ``.size()``) is unpacked into; a later input unpacked into 4 names is tried
first as [batch, 4, seq, width], into 5-8 names as tokens of that rank (the first input's batch,
the sequence's length last but one).  Only the order of the tries changes: a wrong guess costs a
try, never a verdict (the original and the patched module are compared on the same inputs).

A module whose first convolution is 1-D was fed sequences only; one whose forward pools a
channel-first map to a sequence first (kronecker-attention's ``torch.cat((x.mean(dim=-1),
x.mean(dim=-2)), dim=-1)`` before its Conv1d) is now also tried with [batch, channels, side,
side], after every sequence (a module that takes a sequence still gets one first).

Near-misses (no rank stated): a starred unpacking (``b, *rest = e.shape``), a parameter unpacked
with two counts on two paths, a slice of the shape (``e.shape[1:]``), a shape of a local or an
attribute (``self.e.shape``), a shape unpacked into one name.
"""

from __future__ import annotations

import json
import linecache
import shutil
import textwrap
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from adopter.cli import main
from adopter.verify.inputs import shape_ranks
from adopter.verify.result import FAIL, PASS

FIXTURE = Path(__file__).parent / "verify" / "fixtures" / "research" / "neighbours"


def _verify(tmp_path: Path, capsys) -> dict[str, dict]:
    original = tmp_path / "original"
    fixed = tmp_path / "fixed"
    shutil.copytree(FIXTURE, original)
    shutil.copytree(FIXTURE, fixed)
    before = (fixed / "attention.py").read_text()
    main(["fix", str(fixed / "attention.py"), "--no-config", "--no-deps", "--select", "ADP010"])
    capsys.readouterr()
    assert (fixed / "attention.py").read_text() != before  # the fixer patches both sites
    main(["verify", str(original / "attention.py"), "--no-config", "--no-benchmark", "--output-format", "json",
          "--select", "ADP010"])
    data = json.loads(capsys.readouterr().out)
    assert "errors" not in data
    assert not [r for r in data["results"] if r["verdict"] == FAIL]
    return {r["class"]: r for r in data["results"] if not r["combined"] and r["rule"] == "ADP010"}


def test_later_inputs_of_rank_four_and_five_are_fed_and_verified(tmp_path, capsys):
    rows = _verify(tmp_path, capsys)
    # main: both "no inputs it accepts" (the later input tried as [batch, seq, width] only)
    assert rows["NeighbourAttention"]["verdict"] == PASS, rows["NeighbourAttention"]
    assert rows["MemoryAttention"]["verdict"] == PASS, rows["MemoryAttention"]
    # main: "no inputs it accepts" (sequences only for a Conv1d module)
    assert rows["AxisPooledAttention"]["verdict"] == PASS, rows["AxisPooledAttention"]


def test_a_conv1d_module_taking_sequences_gets_a_sequence_first():
    from torch import nn

    from adopter.verify.inputs import input_options
    from adopter.verify.sizes import VERIFY

    class Sequences(nn.Module):
        def __init__(self):
            super().__init__()
            self.proj = nn.Conv1d(16, 16, 1)

        def forward(self, x):
            return self.proj(x)

    module = Sequences()
    calls = list(input_options(module, {}, VERIFY, {}))
    ranks = [c.args[0].dim() for c in calls]
    assert ranks[0] == 3 and ranks[-1] == 4 and ranks.count(4) == 1, ranks
    assert module(*calls[0].args).dim() == 3


def _ranks(source: str) -> dict[str, int]:
    namespace: dict = {}
    path = "<shape_ranks>"
    text = textwrap.dedent(source)
    linecache.cache[path] = (len(text), None, text.splitlines(True), path)
    exec(compile(text, path, "exec"), namespace)  # noqa: S102 (our own fixture)
    return shape_ranks(namespace["forward"])


def test_ranks_are_read_from_unpacked_shapes_of_any_parameter():
    assert _ranks("""
        def forward(self, x, e, m, p):
            b, n, d = x.shape
            batch, chunks, neighbours, length, width = e.shape
            [bm, slots, lm, dm] = m.size()
            return x
    """) == {"x": 3, "e": 5, "m": 4}


def test_near_misses_state_no_rank():
    assert _ranks("""
        def forward(self, x, a, b, c, d, f, g):
            first, *rest = a.shape              # starred: any rank
            if b.dim() == 4:
                n1, n2, n3, n4 = b.shape        # two counts on two paths
            else:
                n1, n2, n3 = b.shape
            s1, s2 = c.shape[1:]                 # a slice of the shape
            t1, t2, t3, t4 = self.d.shape        # an attribute, not the parameter
            local = x + 1
            u1, u2, u3, u4 = local.shape         # a local
            (only,) = f.shape                    # one name: rank 1, stated
            v1, v2, v3, v4 = g.shape(0)          # a call of a shape attribute with arguments
            return x
    """) == {"f": 1}
