"""Lines a fix moves one level in (the original path kept under the SDPA guard) or writes new
(the guard's terms) are wrapped as Black writes them when they no longer fit.

Ruff's formatter (Black's style, in the dev extra) is the oracle for plain statements: a file
of them laid out by :func:`fit_line` must be what ``ruff format`` makes of the same file.
"""

import subprocess
import sys
import textwrap
from pathlib import Path

import libcst as cst
import pytest

from adopter.synth.layout import Refit
from adopter.synth.style import Style

RUFF = Path(sys.executable).parent / "ruff"
LIMIT = 88


def _fit(text: str) -> str:
    # Refit, as the fixer runs it over new code (no shift): fit_line on every one-line
    # statement, fit_if on every if, at their indentation, with a configured line length
    return cst.parse_module(text).visit(Refit(0, "    ", Style(line_length=LIMIT, configured=True), None)).code


def _ruff_format(text: str, tmp_path: Path) -> str:
    if not RUFF.is_file():
        pytest.skip("ruff is not installed (it is in the dev extra)")
    path = tmp_path / "m.py"
    path.write_text(text)
    done = subprocess.run([str(RUFF), "format", "--isolated", "--line-length", str(LIMIT), str(path)],
                          check=False, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return path.read_text()


STATEMENTS = [
    # a reshape plus a mask (CLIP's causal mask, moved under the guard)
    "attn_weights = attn_weights.view(bsz, self.num_heads, tgt_len, src_len) + causal_attention_mask",
    # scaled, then masked: broken at the loosest operator first, then at the next where still long
    "return attn_weights.view(bsz, self.num_heads, tgt_len, src_len) * self.scale + attention_mask",
    "x = a_long_name_for_a_value - another_long_name_for_a_value + a_third_long_name_value_xx",
    "scores += relative_position_bias.unsqueeze(0).to(scores.dtype) * self.relative_scale_factor",
]


@pytest.mark.parametrize("depth", [1, 4])
@pytest.mark.parametrize("statement", STATEMENTS)
def test_a_long_arithmetic_value_is_wrapped_as_black_does(statement: str, depth: int, tmp_path: Path):
    text = "".join("    " * i + "if c:\n" for i in range(depth)) + "    " * depth + statement + "\n"
    fitted = _fit(text)
    assert fitted != text
    assert max(len(line) for line in fitted.splitlines()) <= LIMIT
    assert fitted == _ruff_format(text, tmp_path)
    assert _fit(fitted) == fitted  # a second pass changes nothing


CALLS = [
    # a mask the SDPA fix writes as a conditional expression in parentheses: split inside
    # them, the sum broken before its operator and the reshape chain at its last brackets
    ("attn_output = scaled_dot_product_attention(query, key, value, attn_mask=(rel_pos_bias + "
     "attention_mask.expand(bsz, self.num_heads, tgt_len, src_len).reshape(bsz * self.num_heads, tgt_len, "
     "src_len) if attention_mask is not None else rel_pos_bias), dropout_p=self.dropout if self.training "
     "else 0.0, scale=1.0)"),
    # the else branch too long for its line: wrapped at its last call's brackets
    ("attn_output = scaled_dot_product_attention(query, key, value, attn_mask=(torch.where(causal_mask, "
     "mask_value, attention_mask) if attention_mask is not None else torch.zeros_like(~causal_mask, "
     "dtype=query.dtype).masked_fill(~causal_mask, mask_value)), scale=1.0)"),
]


@pytest.mark.parametrize("statement", CALLS)
def test_a_long_mask_argument_is_wrapped_as_black_does(statement: str, tmp_path: Path):
    text = "if c:\n    if c:\n        " + statement + "\n"
    fitted = _fit(text)
    assert max(len(line) for line in fitted.splitlines()) <= LIMIT
    assert fitted == _ruff_format(text, tmp_path)
    assert _fit(fitted) == fitted


@pytest.mark.parametrize("statement", [
    "x = a + b",  # fits
    'message = "a string far too long to break, which Black leaves as it is: ' + "x" * 40 + '"',
    # an operand that would need its own brackets opened too (Black's other splits)
    "y = f(" + ", ".join(f"argument_{i}" for i in range(12)) + ")[0] + zzzzzzzzzzzzzzz",
    # an operand alone longer than the line: nothing to gain by moving it
    "z = " + "a" * 90 + " + b",
])
def test_what_does_not_fit_that_way_stays(statement: str):
    text = "if c:\n    " + statement + "\n"
    fitted = _fit(text)
    assert fitted == text


def test_a_guard_comparison_too_long_for_its_line_breaks_before_the_operator():
    mask = "causal_attention_mask"
    test = (f"attention_mask is not None or ({mask} is not None and torch.is_grad_enabled() and "
            f"{mask}.amax(-1).min() <= torch.finfo({mask}.dtype).min / 2)")
    text = textwrap.dedent(f"""\
        if c:
            if c:
                if {test}:
                    pass
        """)
    fitted = _fit(text)
    assert max(len(line) for line in fitted.splitlines()) <= LIMIT
    assert textwrap.dedent(f"""\
                    and torch.is_grad_enabled()
                    and {mask}.amax(-1).min()
                    <= torch.finfo({mask}.dtype).min / 2
                )
            ):
        """) in textwrap.dedent(fitted.split("or (\n", 1)[1])
    assert ast_equal(text, fitted)
    # where the comparison fits, it keeps its line
    shallow = f"if {test.replace(mask, 'mask')}:\n    pass\n"
    assert "and mask.amax(-1).min() <= torch.finfo(mask.dtype).min / 2\n" in _fit(shallow)


def ast_equal(a: str, b: str) -> bool:
    import ast

    return ast.dump(ast.parse(a)) == ast.dump(ast.parse(b))
