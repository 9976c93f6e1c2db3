"""Verify's inputs for a module-level attention function whose scale width is a number
(research116, session 45; the fixture is ours: ``tests/verify/fixtures/research/research116``).

A function ``attention(q, k, v, d_k)`` that scales the scores by ``1 / math.sqrt(d_k)`` (the
annotated-transformer form; DeepFloyd IF's ``model/nn.py`` carries one) was skipped: every
parameter was guessed as a tensor, and ``math.sqrt`` of a tensor of more than one element
raises, so no guessed call ran ("no inputs it accepts").  A parameter that the code hands
alone to a function of the ``math`` module, and never reads as a tensor or an object, is now
given a small count, as the divisor of a floor division already was.  Near-misses: a parameter
also indexed or read as an attribute, one rebound, one handed to a ``math`` name that is not
the module, or one handed with other arguments, is left as it was.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from adopter.cli import main
from adopter.verify.result import PASS

FIXTURES = Path(__file__).parent / "verify" / "fixtures" / "research" / "research116"


def _read(reader, source: str, extra: dict | None = None):
    import linecache
    import textwrap

    text = textwrap.dedent(source)
    path = f"<research116-read-{abs(hash(text))}>"
    linecache.cache[path] = (len(text), None, text.splitlines(True), path)
    namespace: dict = dict(extra or {})
    exec(compile(text, path, "exec"), namespace)  # noqa: S102 (a fixture function of ours)
    return reader(namespace["forward"])


def test_a_parameter_handed_to_math_is_a_number():
    from adopter.verify.inputs import math_params

    assert _read(math_params, """
        import math
        def forward(q, k, v, d_k):
            return (q @ k.transpose(-2, -1) / math.sqrt(d_k)).softmax(-1) @ v
    """) == {"d_k"}
    # imported inside the function too
    assert _read(math_params, """
        def forward(q, k, d_k):
            import math
            return q @ k.transpose(-2, -1) * (1 / math.sqrt(d_k))
    """) == {"d_k"}
    # near-misses: also indexed, read as an attribute, rebound; a "math" that is no module;
    # handed with another argument
    assert _read(math_params, """
        import math
        def forward(q, k, d_k):
            return q @ k.transpose(-2, -1) / math.sqrt(d_k) + d_k[0]
    """) == set()
    assert _read(math_params, """
        import math
        def forward(q, k, d_k):
            return q @ k.transpose(-2, -1) / math.sqrt(d_k) * d_k.scale
    """) == set()
    assert _read(math_params, """
        import math
        def forward(q, k, d_k):
            d_k = q.shape[-1]
            return q @ k.transpose(-2, -1) / math.sqrt(d_k)
    """) == set()

    class Helper:
        @staticmethod
        def sqrt(t):
            return t.sqrt()

    assert _read(math_params, """
        def forward(q, k, d_k):
            return q @ k.transpose(-2, -1) / math.sqrt(d_k)
    """, {"math": Helper()}) == set()
    assert _read(math_params, """
        import math
        def forward(q, k, d_k):
            return q @ k.transpose(-2, -1) / math.pow(d_k, 0.5)
    """) == set()


def test_a_function_with_a_numeric_scale_width_is_verified(tmp_path, capsys):
    original = tmp_path / "original"
    shutil.copytree(FIXTURES, original)
    main(["verify", str(original / "sqrt_width.py"), "--no-config", "--no-benchmark", "--output-format",
          "json", "--select", "ADP010"])
    data = json.loads(capsys.readouterr().out)
    assert "errors" not in data
    rows = [r for r in data["results"] if not r["combined"] and r["rule"] == "ADP010"]
    assert len(rows) == 1, rows
    row = rows[0]
    # main: skip ("no inputs it accepts": d_k guessed as a tensor, which math.sqrt refuses)
    assert row["verdict"] == PASS, row
    # the count is passed as a number, after the three tensors
    assert row["details"]["inputs"].endswith(", 4"), row
