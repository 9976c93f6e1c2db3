"""Inputs verify builds from what the forward's own code reads (verify23, session 43).

Three forms of fixture ``research/verify23_forms`` (ours), each fixed by ``adopter fix`` and
verified (outputs and gradients compared); on main each was a skip:

- ``divided.py``: einops patterns and an axis size handed through the class's ``**kwargs`` by a
  caller whose size is a parameter of its own (unknown statically): the key is kept with a guessed
  count (``construct._through_var_keyword``, a later build), and the einops error "can't divide
  axis of length 7 in chunks of 2" (a class token cut off first) grows the token axis
  (``inputs.repairs``);
- ``grouped.py``: ``if groups is None: return x`` (a ``return``, not a ``raise``) ahead of the attention is a guard whose else
  side the edit is on (``branches.guards``), and ``groups[:, None] == groups[None, :]`` makes
  ``groups`` one label per sample (``inputs.labels_compared``);
- ``keyed.py``: a dict argument read by keys the module holds as strings
  (``inputs.subscript_keys``/``keyed_dicts``).

The look-alikes below must stay silent."""

from __future__ import annotations

import ast
import importlib.util
import re
import textwrap
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from test_verify_research import fix_then_verify  # noqa: E402

from adopter.verify import branches  # noqa: E402
from adopter.verify.callsites import UNKNOWN  # noqa: E402
from adopter.verify.construct import _through_var_keyword  # noqa: E402
from adopter.verify.inputs import labels_compared, repairs, subscript_keys  # noqa: E402
from adopter.verify.result import PASS  # noqa: E402
from adopter.verify.sizes import VERIFY  # noqa: E402

FORMS = "verify23_forms"


def _diff(reason: str) -> float:
    found = re.search(r"max abs diff ([0-9.e+-]+)", reason)
    assert found, reason
    return float(found.group(1))


@pytest.mark.parametrize("rel, cls", [("divided.py", "DividedAttention"), ("grouped.py", "GroupedSampleAttention"),
                                      ("keyed.py", "HistoryAttention")])
def test_each_form_is_fixed_and_verified(tmp_path, capsys, rel, cls):
    patches, _ = fix_then_verify(tmp_path, capsys, FORMS, rel)
    rows = [r for r in patches if r["rule"] == "ADP010" and r["class"] == cls]
    assert rows and all(r["verdict"] == PASS for r in rows), rows
    for row in rows:
        assert "outputs and gradients match" in row["reason"]
        assert _diff(row["reason"]) < 1e-4  # float32 over a handful of keys


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_keyed_patch_equals_the_original_in_float64(tmp_path, capsys):
    """The keyed form's verify diff is 0 (one query: the fused path does the same products); an
    independent float64 check on inputs of our own, padding included, and the fused call in it."""
    fix_then_verify(tmp_path, capsys, FORMS, "keyed.py")
    fixed_text = (tmp_path / "fixed" / FORMS / "keyed.py").read_text()
    assert "scaled_dot_product_attention" in fixed_text
    original = _load(tmp_path / "original" / FORMS / "keyed.py", "v23_keyed_original")
    fixed = _load(tmp_path / "fixed" / FORMS / "keyed.py", "v23_keyed_fixed")
    torch.manual_seed(0)
    a = original.HistoryAttention(16, group="g").double()
    b = fixed.HistoryAttention(16, group="g").double()
    b.load_state_dict(a.state_dict())
    features = {"g.target": torch.randn(3, 16, dtype=torch.float64),
                "g.history": torch.randn(3, 7, 16, dtype=torch.float64),
                "g.history_length": torch.tensor([7, 3, 1])}
    want, got = a(features), b(features)
    assert torch.allclose(want, got, atol=1e-10), (want - got).abs().max()


# ---- look-alikes ----------------------------------------------------------------------------

def _func(source: str, name: str = "forward"):
    import linecache

    text = textwrap.dedent(source)
    path = f"<verify23-{abs(hash(text))}>"
    linecache.cache[path] = (len(text), None, text.splitlines(True), path)
    namespace: dict = {"torch": torch}
    exec(compile(text, path, "exec"), namespace)
    return namespace[name]


class _Holder(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self._seq_name = "u.seq"


def test_a_dict_also_used_otherwise_is_not_read_as_keyed():
    keyed = _func("""
        def forward(self, feats):
            seq = feats[self._seq_name]
            pos = feats["pos"]
            return seq + pos
    """)
    assert subscript_keys(keyed, "feats", _Holder()) == {"u.seq": "seq", "pos": "pos"}
    iterated = _func("""
        def forward(self, feats):
            seq = feats["seq"]
            return seq * len(feats)
    """)
    assert subscript_keys(iterated, "feats", _Holder()) is None
    computed = _func("""
        def forward(self, feats, k):
            seq = feats[k]
            return seq
    """)
    assert subscript_keys(computed, "feats", _Holder()) is None


def test_labels_need_one_axis_and_an_equality():
    assert labels_compared(_func("""
        def forward(self, x, g=None):
            g = g.to(x.device)
            same = g[:, None] == g[None, :]
            return x * same
    """), "g")
    # indexed as one axis but never compared: not labels
    assert not labels_compared(_func("""
        def forward(self, x, w=None):
            return x * w[None, :]
    """), "w")
    # compared, but rebound to another tensor first: the indexing states nothing
    assert not labels_compared(_func("""
        def forward(self, x, g=None):
            g = x.sum(-1)
            return x * (g[:, None] == g[None, :])
    """), "g")


def test_an_early_return_guards_only_what_follows_it():
    text = textwrap.dedent("""
        def forward(x, g=None):
            if g is None:
                return x
            y = x * 2
            return y
        def other(x, g=None):
            if g is None:
                x = x + 1
            y = x * 2
            return y
        def refusing(x, g=None):
            if g is None:
                raise ValueError("g is required")
            y = x * 2
            return y
    """)
    tree = ast.parse(text)
    first, second, third = tree.body
    found = branches.guards(text, {first.body[1].lineno})
    assert [(g.kind, g.name, g.want, g.branch) for g in found] == [("param", "g", "given", "else")]
    # the early return's own line is not after it; a body that does not leave is no guard
    assert branches.guards(text, {first.body[0].lineno}) == []
    assert branches.guards(text, {second.body[1].lineno}) == []
    # a raise refuses the call: no path to take (a module that cannot train stays a skip)
    assert branches.guards(text, {third.body[1].lineno}) == []


def test_unknown_keywords_are_guessed_only_through_var_keyword():
    import inspect

    def with_kwargs(dim, pattern=None, **sizes):
        pass

    def without(dim, pattern=None, n=1):
        pass

    params = list(inspect.signature(with_kwargs).parameters.values())
    bound = {"dim": UNKNOWN, "pattern": "b (f n) d", "n": UNKNOWN, "f": 3}
    assert _through_var_keyword(bound, params, VERIFY) == {"n": 2}
    assert _through_var_keyword(bound, list(inspect.signature(without).parameters.values()), VERIFY) == {}


def test_the_einops_repair_grows_the_token_axis_and_nothing_else():
    from adopter.verify.build import Call

    x = torch.randn(2, 8, 32)
    call = Call((x,), {})
    error = RuntimeError(" Error while processing rearrange-reduction pattern \"b (f n) d -> (b n) f d\".\n"
                         " Shape mismatch, can't divide axis of length 7 in chunks of 2")
    shapes = [tuple(c.args[0].shape) for c in repairs(call, error)]
    assert shapes == [(2, 9, 32)]
    # an axis far from the split one is left alone (the error speaks of another tensor)
    other = RuntimeError("Shape mismatch, can't divide axis of length 30 in chunks of 4")
    assert repairs(call, other) == []
