"""A dataclass config whose required fields include some no name guess values (lightzero's
UniZero ``TransformerConfig``: ``tokens_per_block: int``, ``attention: str``, the mask size a
property ``max_tokens`` of two of them): the field's annotation values it
(``construct._typed_guess``): a number as ``guess_value`` types numbers, and a ``str`` or
``bool`` field the class under test never reads by its type.  Fixture
``research/typed_config`` (ours): fixed and verified; on main the build stopped at "cannot infer
`config.window`" (the config class was dropped for its unguessed fields, and the attribute bag
cannot value a property).  A ``str`` field the class reads, or an unannotated one, stays
unguessed: its value would pick what the class does -- unless the class compares it with strings
(fixver53): then the first of them, as for a mode stored on self."""

from __future__ import annotations

import ast
import textwrap
from dataclasses import dataclass

import pytest

pytest.importorskip("torch")

from test_verify_research import fix_then_verify

from adopter.verify import facts
from adopter.verify.construct import NeedsFactory, _config_fields, _shrunk_fields
from adopter.verify.result import PASS
from adopter.verify.sizes import VERIFY


def test_the_chunked_attention_is_built_and_verified(tmp_path, capsys):
    patches, _ = fix_then_verify(tmp_path, capsys, "typed_config", "attention.py")
    rows = [r for r in patches if r["rule"] == "ADP010"]
    assert [r["class"] for r in rows] == ["ChunkedSelfAttention"]
    assert rows[0]["verdict"] == PASS, rows


@dataclass
class _Typed:
    tokens_per_chunk: int
    pattern: str
    enabled: bool
    embed_dim: int


@dataclass
class _Untyped:
    pattern: "object"
    embed_dim: int


def _reads(init_body: str) -> facts.Reads:
    source = "class A:\n    def __init__(self, config):\n" + textwrap.indent(init_body, " " * 8) + "\n"
    cls = ast.parse(source).body[0]
    return facts.argument_reads({"A": cls}, "A")["config"]


def test_unread_fields_are_valued_by_their_annotation():
    reads = _reads("self.dim = config.embed_dim")
    kwargs = _shrunk_fields(_config_fields(_Typed), {}, VERIFY, False, reads, _Typed)
    assert kwargs["pattern"] == "" and kwargs["enabled"] is False
    assert isinstance(kwargs["tokens_per_chunk"], int) and kwargs["tokens_per_chunk"] > 0
    # without the class (no annotations) the same fields stay unguessed, as before
    with pytest.raises(NeedsFactory):
        _shrunk_fields(_config_fields(_Typed), {}, VERIFY, False, reads)


def test_a_str_field_the_class_reads_stays_unguessed():
    # read, but compared with no string: nothing says which value it holds
    reads = _reads("self.dim = config.embed_dim\nself.kind = config.pattern.lower()")
    with pytest.raises(NeedsFactory, match="pattern"):
        _shrunk_fields(_config_fields(_Typed), {}, VERIFY, False, reads, _Typed)


def test_a_str_field_the_class_compares_takes_the_first_string():
    # fixver53 (session 43): a mode the class compares with strings where it reads it is valued
    # by the first of them, as a typed bag values a compared field stored on self (kan-gpt); the
    # check still needs the edited lines to run on the config built
    reads = _reads("self.dim = config.embed_dim\nif config.pattern == 'dense':\n    self.dense = True")
    kwargs = _shrunk_fields(_config_fields(_Typed), {}, VERIFY, False, reads, _Typed)
    assert kwargs["pattern"] == "dense"


def test_an_unannotated_field_stays_unguessed():
    reads = _reads("self.dim = config.embed_dim")
    with pytest.raises(NeedsFactory, match="pattern"):
        _shrunk_fields(_config_fields(_Untyped), {}, VERIFY, False, reads, _Untyped)
