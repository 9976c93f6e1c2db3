"""A later input that the forward multiplies elementwise with its first input's values is tried
shaped as the first input is, after every other guess (verify21, session 42; hsir's MST
``MS_MSA``: ``v = v * mask_attn``, ``v`` a projection of the ``[b, h, w, c]`` map and
``mask_attn`` read from ``mask`` alone, was skipped with "no inputs it accepts": ``mask`` got
only mask guesses). ``inputs.elementwise_partners`` follows values through assignments in line
order (sizes carry none); ``LIKE_FIRST`` draws the later input at the call's first input's shape.
Fixture ``research/guided_map`` is ours. A patch without the per-head temperature fails."""

from __future__ import annotations

import dataclasses
import linecache
import textwrap
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from test_verify_research import fix_then_verify  # noqa: E402
from verify_patches import adp010_verdicts  # noqa: E402

from adopter.verify.inputs import elementwise_partners  # noqa: E402
from adopter.verify.result import FAIL, PASS  # noqa: E402

FIXTURE = Path(__file__).parent / "fixtures" / "research" / "guided_map" / "attention.py"


def test_the_guided_map_attention_is_fed_a_guide_like_its_map_and_verified(tmp_path, capsys):
    # main: skip, "no inputs it accepts" (the guide tried as masks only)
    patches, _ = fix_then_verify(tmp_path, capsys, "guided_map", "attention.py")
    rows = [r for r in patches if r["rule"] == "ADP010"]
    assert [(r["class"], r["verdict"]) for r in rows] == [("GuidedSpectralAttention", PASS)], rows


def test_a_patch_without_the_temperature_fails(tmp_path):
    from adopter.synth import fix_text

    def fix(text, path, rules, package=None):
        result = fix_text(text, path, rules, package)
        assert "k * self.temperature" in result.text
        return dataclasses.replace(result, text=result.text.replace("k * self.temperature", "k"))

    results = adp010_verdicts(tmp_path, FIXTURE.read_text(), fix)
    assert [r.verdict for r in results] == [FAIL], results


def _forward(source: str):
    path = f"<partners-{abs(hash(source))}>"
    text = textwrap.dedent(source)
    linecache.cache[path] = (len(text), None, text.splitlines(True), path)
    namespace: dict = {}
    exec(compile(text, path, "exec"), namespace)  # noqa: S102 (our own fixture)
    return namespace["forward"]


def test_partners_are_read_from_the_values_that_meet():
    assert elementwise_partners(_forward("""
        def forward(self, x, guide, other):
            b, n, c = x.shape
            v = self.to_v(x)
            g = self.enc(guide.permute(0, 2, 1)).reshape(b, n, c)  # sizes of x carry no values
            q, v, g = map(self.split, (x, v, g))
            v = v * g
            return v
    """)) == {"guide"}
    # an augmented product, either operand order
    assert elementwise_partners(_forward("""
        def forward(self, x, gate):
            h = self.proj(x)
            h *= self.norm(gate)
            return h
    """)) == {"gate"}


def test_near_misses_state_no_partner():
    # added, not multiplied; a product of the later input with itself; one operand reading both
    # inputs; the later input multiplied with a module weight; bound after the product
    assert elementwise_partners(_forward("""
        def forward(self, x, a, b, c, d, e):
            h = self.proj(x)
            y = h + a
            z = b * self.enc(b)
            w = h * (c + x)
            u = d * self.weight
            t = h * f
            f = e
            return y
    """)) == set()
