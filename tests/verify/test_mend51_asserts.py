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


def _batch_second(monkeypatch, code: str) -> bool:
    node = ast.parse(textwrap.dedent(code)).body[0]
    monkeypatch.setattr(inputs, "_function_def", lambda func: node)
    return inputs.batch_second(lambda: None)


def test_a_square_mask_compared_with_the_length_states_no_batch_axis(monkeypatch):
    # sequence-first: the padding mask's first size is the first input's second (the batch)
    assert _batch_second(monkeypatch, """\
        def forward(self, query, key_padding_mask=None):
            t, b, c = query.size()
            assert key_padding_mask.size(0) == b
            return query
    """)
    # batch-first with a square [n, n] mask: both its sizes are the length, no batch stated
    # (review48: read as sequence-first before)
    assert not _batch_second(monkeypatch, """\
        def forward(self, x, attn_mask=None):
            b, n, c = x.size()
            assert attn_mask.size(0) == n and attn_mask.size(1) == n
            return x
    """)
    assert not _batch_second(monkeypatch, """\
        def forward(self, x, attn_mask=None):
            b, n, c = x.shape
            assert attn_mask.shape[0] == n
            assert n == attn_mask.shape[1]
            return x
    """)
