"""Verify repairs found on the blind batch research29 (fixture ``research/cached_bias``, ours).

- A constructor argument the class only stores (``self.n = n``) and reads nowhere: the module
  built is the same whatever it holds, so verify guesses a small count for it
  (``facts.stored_only``; DecepticonsInAlexandria's ViT attention, "cannot infer argument `n`").
  Near-misses: the attribute read back, the argument read in ``__init__``, handed to
  ``super().__init__``, or attributes read by ``getattr``.
- A value kept on ``self`` and used as a number there (``range(self.span)``, ``x + self.span``):
  a count (its TimeSformer's ``num_frames``).
- A module whose forward stores a buffer sized by its input (FasterViT's position bias caching
  ``self.relative_bias = self.pos_emb``): the original ran during the input search, so its state
  no longer loads into a fresh patched module; the patched one is run once on the same inputs and
  the state loaded again (``core._loads_after_a_run``).  On main the window attention there was
  not found; with the finding and without the repair it failed with "size mismatch".
"""

from __future__ import annotations

import ast
import inspect
import types

import pytest

pytest.importorskip("torch")

from test_verify_research import fix_then_verify  # noqa: E402

from adopter.verify import facts  # noqa: E402
from adopter.verify.construct import ClassFacts, NeedsFactory, _param_candidates  # noqa: E402
from adopter.verify.result import PASS  # noqa: E402
from adopter.verify.sizes import VERIFY  # noqa: E402


def test_the_cached_bias_fixture_is_fixed_and_verified(tmp_path, capsys):
    patches, _ = fix_then_verify(tmp_path, capsys, "cached_bias", "attention.py")
    rows = {r["class"]: r for r in patches if r["rule"] == "ADP010"}
    assert set(rows) == {"WindowAttention", "PlainAttention", "FrameAttention"}, rows
    assert all(r["verdict"] == PASS for r in rows.values()), rows


def _class(init: str, forward: str = "        return x") -> ast.ClassDef:
    source = ("class A:\n"
              "    def __init__(self, dim, n):\n"
              f"{init}\n"
              "    def forward(self, x):\n"
              f"{forward}\n")
    return ast.parse(source).body[0]


def _candidates(cls: ast.ClassDef, name: str):
    reads = facts.argument_reads({"A": cls}, "A")
    param = inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    info = ClassFacts(cls=type("A", (), {}), params=[param], reads=reads, classes={"A": cls})
    return _param_candidates(info, param, types.ModuleType("m"), VERIFY)


def test_an_argument_only_stored_is_guessed_a_small_count():
    cls = _class("        self.n = n")
    assert facts.stored_only(cls, "n")
    found = _candidates(cls, "n")
    assert found and all(isinstance(v, int) and v > 0 for v in found)


def test_an_argument_never_mentioned_is_stored_only():
    assert facts.stored_only(_class("        self.dim = dim"), "n")


@pytest.mark.parametrize("init, forward", [
    ("        self.n = n", "        return x.view(self.n, -1)"),  # read back in the forward
    ("        self.n = n\n        self.m = n * 2", "        return x"),  # read in __init__
    ("        super().__init__(n)", "        return x"),  # handed on
    ("        self.n = n", "        return getattr(self, 'n') * x"),  # read by name
])
def test_an_argument_read_somewhere_is_not_stored_only(init, forward):
    assert not facts.stored_only(_class(init, forward), "n")


def test_an_argument_read_back_untracked_still_needs_a_factory():
    # ``x.view(self.n, -1)`` says nothing the guesses read: no guess
    with pytest.raises(NeedsFactory):
        _candidates(_class("        self.n = n", "        return x.view(self.n, -1)"), "n")


@pytest.mark.parametrize("forward", ["        for t in range(self.n):\n            x = x + t\n        return x",
                                     "        return x[:, : x.shape[1] + self.n]",
                                     "        return x[int(self.n):]"])
def test_a_kept_value_used_as_a_number_is_a_count(forward):
    reads = facts.argument_reads({"A": _class("        self.n = n", forward)}, "A")
    assert reads["n"].numeric
