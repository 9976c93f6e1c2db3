"""One reading of ``assert p is not None and ...`` (review48: verify21's ``asserted_at``
re-wrote ``asserted_given``'s).  Both ask :func:`inputs.asserted_not_none`; the fixtures are
ours."""

from __future__ import annotations

import ast
import textwrap

from adopter.verify import inputs


def _assert(code: str) -> ast.Assert:
    return ast.parse(textwrap.dedent(code)).body[0]


def test_asserted_not_none_reads_each_and_clause_of_the_names_given():
    stmt = _assert("assert b is not None and x.dim() == 3 and a is not None and b is not None, 'msg'")
    assert inputs.asserted_not_none(stmt, {"a", "b"}) == ["b", "a"]
    # another name, an ``or``, ``is None``, ``!= None``: no statement that the input is given
    assert inputs.asserted_not_none(stmt, {"x"}) == []
    assert inputs.asserted_not_none(_assert("assert a is not None or b is not None"), {"a", "b"}) == []
    assert inputs.asserted_not_none(_assert("assert a is None"), {"a"}) == []
    assert inputs.asserted_not_none(_assert("assert a != None"), {"a"}) == []


def test_asserted_at_and_asserted_given_agree_on_one_assert(monkeypatch):
    code = textwrap.dedent("""\
        def forward(self, x, key=None, value=None, scale=1.0):
            assert key is not None and value is not None and scale is not None
            return x
    """)
    node = ast.parse(code).body[0]

    def forward(self, x, key=None, value=None, scale=1.0):
        return x

    monkeypatch.setattr(inputs, "_function_def", lambda func: node)
    # every parameter the body asserts given, optional or not
    assert inputs.asserted_given(forward) == {"key", "value", "scale"}
    # at the failed assert's line: the optional ones (None defaults) alone, in order
    assert inputs.asserted_at(forward, node, 2) == ["key", "value"]
    assert inputs.asserted_at(forward, node, 3) == []
