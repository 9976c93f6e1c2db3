"""A later required input that the forward tests for None -- directly (``memory is not None``)
or through a module function that is only that test (``exists(memory)``) -- is tried as None
once every guessed value failed (``inputs.none_tested``): feedback-transformer's ``memory``, a
(keys, values) pair unpacked only when it exists.  Fixture ``research/memory_pair`` (ours): fixed
and verified; on main verify found "no inputs it accepts"."""

from __future__ import annotations

import textwrap

import pytest

pytest.importorskip("torch")

from test_verify_research import fix_then_verify  # noqa: E402

from adopter.verify.inputs import none_tested  # noqa: E402
from adopter.verify.result import PASS  # noqa: E402


def test_the_memory_attention_is_fed_none_and_verified(tmp_path, capsys):
    patches, _ = fix_then_verify(tmp_path, capsys, "memory_pair", "attention.py")
    rows = [r for r in patches if r["rule"] == "ADP010"]
    assert [r["class"] for r in rows] == ["MemoryAttention"]
    assert rows[0]["verdict"] == PASS, rows


def _tested(source: str) -> set[str]:
    namespace: dict = {}
    path = "<none_tested>"
    import linecache

    text = textwrap.dedent(source)
    linecache.cache[path] = (len(text), None, text.splitlines(True), path)
    exec(compile(text, path, "exec"), namespace)
    return none_tested(namespace["forward"])


def test_direct_and_helper_tests_count_and_other_helpers_do_not():
    assert _tested("""
        def exists(val):
            return val is not None
        def missing(val):
            return val is None
        def present(val):
            return bool(val)
        def forward(x, a, b, c, d):
            if a is not None and exists(b) and not missing(c) and present(d):
                return x
            return x
    """) == {"a", "b", "c"}


def test_a_required_input_annotated_optional_is_fed_none_and_verified(tmp_path, capsys):
    # (probs65) ``value_compression: Optional[nn.Linear]`` is not tested for None itself; only its
    # annotation says None is accepted: both compressions None once every guess failed
    patches, _ = fix_then_verify(tmp_path, capsys, "optional_pair", "attention.py")
    rows = [r for r in patches if r["rule"] == "ADP010"]
    assert [r["class"] for r in rows] == ["CompressedAttention"]
    assert rows[0]["verdict"] == PASS, rows
    assert rows[0]["details"]["inputs"].endswith("None, None"), rows


def test_annotations_that_admit_none():
    import inspect
    import typing

    from adopter.verify.inputs import may_be_none

    def f(a: typing.Optional[int], b: "int | None", c: typing.Union[int, None], d: int,
          e: typing.Union[int, str], g=None, h: "Optional[Tensor]" = None):
        return a

    assert [may_be_none(p.annotation) for p in inspect.signature(f).parameters.values()] == \
        [True, True, True, False, False, False, True]
