"""Verify's inputs for two fairseq-style, sequence-first attentions (verify21, session 42; the
forms of tardis-em's ``MultiHeadAttention`` and ``PairBiasSelfAttention``, fixed but skipped with
"no inputs it accepts"). Fixture ``research/seq_first`` is ours.

1. An ``assert key is not None and value is not None`` under a branch of the forward (a module
   built for neither self- nor encoder-decoder attention) failed every call: the parameters that
   the failing assert (placed by the traceback) states are given are now given
   (``inputs.raising_params`` via ``asserted_at``), as a ``raise`` under ``if p is None:`` was.
2. ``assert pad_mask.size(0) == batch`` (or ``.shape[0]``), with ``batch`` the second name
   unpacked from the first input's size, states the first input sequence-first
   (``inputs.batch_second``), as an unpacked ``mb, s = mask.size()`` did.
3. A later input normalised, projected and rebound before its ``.permute(0, 3, 1, 2)``
   (``edges = self.norm(edges)``, ``bias = self.proj(edges)``, ``bias = bias.permute(0, 3, 1,
   2)``) is read as a pairwise representation (``inputs.pair_params`` follows a local to its
   last binding before the line read); the unmasked tries now reach the first input's second
   guess (sequence-first) with it.
A patch that drops the pair bias fails; near-misses state nothing."""

from __future__ import annotations

import linecache
import textwrap

import pytest

torch = pytest.importorskip("torch")

from test_verify_research import fix_then_verify  # noqa: E402
from verify_patches import adp010_verdicts, replacing_fix  # noqa: E402

from adopter.verify.inputs import batch_second, pair_params, raising_params  # noqa: E402
from adopter.verify.result import FAIL, PASS  # noqa: E402


def test_both_sequence_first_attentions_are_fed_and_verified(tmp_path, capsys):
    # main: both skip, "no inputs it accepts"
    patches, _ = fix_then_verify(tmp_path, capsys, "seq_first", "attention.py")
    rows = {r["class"]: r for r in patches if r["rule"] == "ADP010"}
    assert set(rows) == {"RoleAttention", "EdgeBiasedAttention"}
    assert all(r["verdict"] == PASS for r in rows.values()), rows


def _fixture() -> str:
    from pathlib import Path

    return (Path(__file__).parent / "fixtures" / "research" / "seq_first" / "attention.py").read_text()


def _fixer_then(edit):
    """The fixer's own patch, then ``edit`` applied to its text."""
    import dataclasses

    from adopter.synth import fix_text

    def fix(text, path, rules, package=None):
        result = fix_text(text, path, rules, package)
        return dataclasses.replace(result, text=edit(result.text))
    return fix


def test_the_fixer_s_patch_passes_and_without_the_pair_bias_fails(tmp_path):
    source = _fixture()
    results = {r.class_name: r.verdict for r in adp010_verdicts(tmp_path, source, _fixer_then(lambda t: t))}
    assert results == {"RoleAttention": PASS, "EdgeBiasedAttention": PASS}, results

    def drop_bias(text: str) -> str:
        at = text.index("attn_mask=bias.expand(")
        end = text.index("scale=1.0", at)
        assert "bias" in text[at:end]
        return text[:at] + text[end:]

    results = {r.class_name: r.verdict for r in adp010_verdicts(tmp_path, source, _fixer_then(drop_bias))}
    assert results["EdgeBiasedAttention"] == FAIL, results


def _function(source: str, name: str = "forward"):
    path = f"<{name}-{abs(hash(source))}>"
    text = textwrap.dedent(source)
    linecache.cache[path] = (len(text), None, text.splitlines(True), path)
    namespace: dict = {}
    exec(compile(text, path, "exec"), namespace)  # noqa: S102 (our own fixture)
    return namespace[name]


def _failure(func, *args):
    try:
        func(None, *args)
    except AssertionError as exc:
        return exc
    raise AssertionError("no assertion failed")


def test_the_failing_assert_names_the_inputs_to_give():
    func = _function("""
        def forward(self, x, key=None, value=None, other=None, flag=True):
            if flag:
                assert key is not None and value is not None
            assert other is None or other > 0
            return x
    """)
    assert raising_params(func, _failure(func, 1)) == ("key", "value")
    # near-misses: an assert that does not test `is not None`, or on a parameter not None-default
    func = _function("""
        def forward(self, x, key=None, value=0):
            assert value is not None
            assert key is None or key > 0
            assert x > 5
            return x
    """)
    assert raising_params(func, _failure(func, 1)) == ()
    func = _function("""
        def forward(self, x, key=None):
            assert x > 5
            if key is not None:
                return key
            return x
    """)
    # another assert of the function failed: its `is not None` tests elsewhere say nothing
    assert raising_params(func, _failure(func, 1)) == ()


def test_a_later_input_s_first_size_checked_against_the_second_states_sequence_first():
    assert batch_second(_function("""
        def forward(self, x, mask):
            t, b, c = x.size()
            assert mask.size(0) == b
    """))
    assert batch_second(_function("""
        def forward(self, x, mask):
            t, b, c = x.shape
            if b == mask.shape[0]:
                return x
    """))
    # near-misses: the mask's second size, the first input's own size, the first name
    assert not batch_second(_function("""
        def forward(self, x, mask):
            t, b, c = x.size()
            assert mask.size(1) == b
    """))
    assert not batch_second(_function("""
        def forward(self, x, mask):
            t, b, c = x.size()
            assert x.size(0) == b
    """))
    assert not batch_second(_function("""
        def forward(self, x, mask):
            b, t, c = x.size()
            assert mask.size(0) == b
    """))


def test_a_rebound_pair_is_followed_to_its_last_binding_before_the_permute():
    assert pair_params(_function("""
        def forward(self, x, edges):
            edges = self.norm(edges)
            bias = self.proj(edges)
            bias = bias.permute(0, 3, 1, 2)
            return bias
    """)) == {"edges"}
    # near-misses: the local's last binding before the permute is no module call of an input,
    # a binding after the permute is not read, a tuple binding is not followed
    assert pair_params(_function("""
        def forward(self, x, edges, other):
            bias = self.proj(edges)
            bias = bias + 1
            y = bias.permute(0, 3, 1, 2)
            z = w.permute(0, 3, 1, 2)
            w = self.proj(other)
            u, t = self.proj(other), 1
            return u.permute(0, 3, 1, 2)
    """)) == set()
