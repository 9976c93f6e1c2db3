"""A later input the forward moves from [batch, i, j, width] to [batch, width, i, j] with
``.permute(0, 3, 1, 2)`` -- as it is, or after one module call (unimol-tools'
``self.linear_bias(pair).permute(0, 3, 1, 2)``, a bias per head for every pair of tokens) -- is
tried as a pairwise representation, [batch, tokens, tokens, width] (``inputs.pair_params``).
Fixture ``research/pair_bias`` (ours; its probabilities helper is fix23's form): fixed and
verified; on main verify found "no inputs it accepts" (the pair tried as [batch, tokens, width])."""

from __future__ import annotations

import textwrap

import pytest

pytest.importorskip("torch")

from test_verify_research import fix_then_verify  # noqa: E402

from adopter.verify.inputs import pair_params  # noqa: E402
from adopter.verify.result import PASS  # noqa: E402


def test_the_pair_biased_attention_is_fed_a_pair_and_verified(tmp_path, capsys):
    patches, _ = fix_then_verify(tmp_path, capsys, "pair_bias", "attention.py")
    rows = [r for r in patches if r["rule"] == "ADP010"]
    assert [r["class"] for r in rows] == ["PairBiasedAttention"]
    assert rows[0]["verdict"] == PASS, rows


def _pairs(source: str) -> set[str]:
    import linecache

    namespace: dict = {}
    path = "<pair_params>"
    text = textwrap.dedent(source)
    linecache.cache[path] = (len(text), None, text.splitlines(True), path)
    exec(compile(text, path, "exec"), namespace)  # noqa: S102 (our own fixture)
    return pair_params(namespace["forward"])


def test_pairs_are_read_from_the_permute_and_near_misses_are_not():
    assert _pairs("""
        def forward(self, x, a, b, c, d, e, f):
            y = a.permute(0, 3, 1, 2)          # as it is
            y = self.proj(b).permute(0, 3, 1, 2)  # through one module call
            y = c.permute(0, 2, 1, 3)          # heads moved, not a pair's width
            y = self.proj(d, x).permute(0, 3, 1, 2)  # a call of two inputs
            y = (e + 1).permute(0, 3, 1, 2)     # another expression
            y = g(f).permute(0, 3, 1, 2)        # not a module attribute
            return y
    """) == {"a", "b"}
