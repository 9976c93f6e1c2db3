"""Files in Python 3.12 syntax (type parameters, ``type`` statements, f-strings with the outer
quote inside a field) are analysed and fixed under Python 3.11 through a rendering that keeps
every line and column (adopter/newer_syntax.py): the same findings, at the same places, as their
3.11 twins; the fix keeps the 3.12 syntax byte for byte outside the patched lines; a file
neither ``ast`` nor LibCST reads keeps its clear error.  Our own fixtures."""

from __future__ import annotations

import ast
import difflib
import sys
import textwrap

import libcst as cst
import pytest
from corpus_forms import rules

from adopter import newer_syntax
from adopter.engine import AnalysisError, analyze
from adopter.synth import fix_text

pytestmark = pytest.mark.skipif(sys.version_info >= (3, 12), reason="the fallback runs where ast rejects 3.12 syntax")

NEW = textwrap.dedent("""\
    import math

    import torch
    from torch import nn

    type Shape = tuple[int, ...]


    def first[T](items: list[T]) -> T:
        return items[0]


    class Attention[T](nn.Module):
        def __init__(self, dim: int, heads: int):
            super().__init__()
            self.heads = heads
            self.qkv = nn.Linear(dim, 3 * dim)
            self.proj = nn.Linear(dim, dim)

        def forward(self, x):
            b, n, c = x.shape
            cfg = {"name": "attn"}
            print(f"{cfg["name"]}: {x.shape}")
            q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
            attn = (q @ k.transpose(-2, -1)) / math.sqrt(q.shape[-1])
            attn = attn.softmax(dim=-1)
            out = (attn @ v).transpose(1, 2).reshape(b, n, c)
            return self.proj(out)
""")

# the 3.12 pieces of NEW and their 3.11 spellings
TWINS = [("type Shape =", "Shape ="), ("def first[T]", "def first"), ("Attention[T]", "Attention"),
         ('f"{cfg["name"]}', "f\"{cfg['name']}")]


def as_311(code: str) -> str:
    for new, old in TWINS:
        code = code.replace(new, old)
    return code


OLD = as_311(NEW)


def places(code: str, *ids: str) -> list[tuple]:
    return [(f.rule, f.line, f.column, f.end_line, f.end_column, f.fixable)
            for f in analyze(code, "model.py", rules(*ids)).findings]


def test_the_fixture_is_newer_syntax_and_its_twin_is_not():
    with pytest.raises(SyntaxError):
        ast.parse(NEW)
    ast.parse(OLD)
    cst.parse_module(NEW)


def test_rendering_keeps_every_line_and_column_and_parses():
    rendered = newer_syntax.render(NEW)
    assert rendered is not None
    ast.parse(rendered)
    assert [len(line) for line in rendered.split("\n")] == [len(line) for line in NEW.split("\n")]
    # lines without 3.12 syntax are untouched; the alias keeps its = and value in place
    changed = [(a, b) for a, b in zip(NEW.split("\n"), rendered.split("\n")) if a != b]
    assert len(changed) == 4
    assert ("type Shape = tuple[int, ...]", "Shape      = tuple[int, ...]") in changed


def test_found_where_the_311_twin_is_found():
    found = places(NEW, "ADP010", "ADP004")
    assert found == places(OLD, "ADP010", "ADP004")
    assert ("ADP010", 25, 17, 27, 24, True) in found


def test_the_analysis_says_it_read_a_rendering():
    assert analyze(NEW, "model.py", rules("ADP010")).rendered is not None
    assert analyze(OLD, "model.py", rules("ADP010")).rendered is None


def test_fixed_like_the_twin_and_311_syntax_kept_byte_for_byte():
    new = fix_text(NEW, "model.py", rules("ADP010"))
    old = fix_text(OLD, "model.py", rules("ADP010"))
    assert new.error is None and old.error is None
    assert [(f.rule, f.line) for f in new.applied] == [(f.rule, f.line) for f in old.applied] == [("ADP010", 25)]
    assert "scaled_dot_product_attention(q, k, v" in new.text
    # the same patch: the fixed 3.12 file spelled in 3.11 is the fixed twin
    assert as_311(new.text) == old.text
    # every line the patch did not touch is the original's, 3.12 syntax included
    kept = difflib.SequenceMatcher(None, NEW.split("\n"), new.text.split("\n"), autojunk=False)
    unchanged = [line for op, a0, a1, _, _ in kept.get_opcodes() if op == "equal" for line in NEW.split("\n")[a0:a1]]
    for piece in ("type Shape = tuple[int, ...]", "def first[T](items: list[T]) -> T:",
                  "class Attention[T](nn.Module):", '        print(f"{cfg["name"]}: {x.shape}")'):
        assert piece in unchanged
    assert cst.parse_module(new.text).code == new.text
    with pytest.raises(SyntaxError):
        ast.parse(new.text)  # (still 3.12 syntax)


def test_a_patch_over_a_line_in_newer_syntax_is_declined_not_rendered():
    code = NEW.replace("        attn = attn.softmax(dim=-1)\n",
                       '        attn = attn.softmax(dim=-1); print(f"{cfg["name"]}")\n')
    result = fix_text(code, "model.py", rules("ADP010"))
    assert result.text == code
    assert not result.applied
    assert [(f.rule, f.line) for f, _ in result.skipped] == [("ADP010", 25)]
    assert "newer Python syntax" in result.skipped[0][1]


def test_a_file_neither_parser_reads_keeps_the_clear_error():
    bad = NEW.replace("def first[T](items", "def first[T](:items")
    with pytest.raises(AnalysisError, match=r"syntax error at 6:6: invalid syntax"):
        analyze(bad, "model.py", rules("ADP010"))
    result = fix_text(bad, "model.py", rules("ADP010"))
    assert result.error is not None and result.error == "syntax error at 6:6: invalid syntax"
    assert newer_syntax.render(bad) is None


def test_a_file_ast_reads_never_reaches_the_fallback(monkeypatch):
    def refuse(text):
        raise AssertionError("rendered a file ast parses")

    monkeypatch.setattr(newer_syntax, "render", refuse)
    assert places(OLD, "ADP010")
    assert fix_text(OLD, "model.py", rules("ADP010")).applied


def test_the_engine_parses_a_newer_file_as_311_once(monkeypatch):
    """The engine's own ``ast.parse`` failed already: the fallback parses only the rendering."""
    from adopter import engine

    parsed = []
    real = ast.parse

    def counting(text, *args, **kwargs):
        parsed.append(text)
        return real(text, *args, **kwargs)

    monkeypatch.setattr(ast, "parse", counting)
    tree, text = engine.parse_text(NEW, "model.py")
    assert text != NEW and isinstance(tree, ast.Module)
    assert parsed.count(NEW) == 1 and parsed.count(text) == 1


def test_multi_line_type_parameters_become_joined_blank_lines():
    code = textwrap.dedent("""\
        class Box[
            T,
            U: int,
        ](dict):
            def get[K](self, key: K) -> K:
                return key
    """)
    rendered = newer_syntax.render(code)
    tree = ast.parse(rendered)
    assert [len(line) for line in rendered.split("\n")] == [len(line) for line in code.split("\n")]
    box = tree.body[0]
    assert (box.name, box.lineno, [b.id for b in box.bases]) == ("Box", 1, ["dict"])
    assert (box.body[0].name, box.body[0].lineno, box.body[0].col_offset) == ("get", 5, 4)


def test_fstrings_311_reads_stay_and_others_become_blank_literals():
    code = 'a = f"{x!r:>{w}}"\nb = f"{d["k"]}" + f"{y}"\nc = rf"{d[\'k\']}\\d"\n'
    rendered = newer_syntax.render(code)
    assert rendered.split("\n")[0] == 'a = f"{x!r:>{w}}"'
    assert rendered.split("\n")[1] == 'b =  "        " + f"{y}"'
    assert rendered.split("\n")[2] == code.split("\n")[2]
    ast.parse(rendered)
    # columns count characters, as the findings' columns do: a non-ASCII text before keeps them
    assert newer_syntax.render('x = "éé"; y = f"{d["a"]}"; z = 1\n') == 'x = "éé"; y =  "        "; z = 1\n'


SIBLING_ACT = textwrap.dedent("""\
    import math
    import torch

    type Act = str


    def gelu[T](x: T) -> T:
        cdf = 0.5 * (1.0 + torch.erf(x / math.sqrt(2.0)))
        return x * cdf


    def name_of(d: dict) -> str:
        return f"{d["act"]}"
""")

SIBLING_BLOCK = textwrap.dedent("""\
    import torch
    from modernpkg.acts import gelu


    class Block(torch.nn.Module):
        def __init__(self, hidden=16, inner=32):
            super().__init__()
            self.intermediate = torch.nn.Linear(hidden, inner)
            self.output = torch.nn.Linear(inner, hidden)

        def forward(self, x):
            return self.output(gelu(self.intermediate(x)))  # act
""")


def _sibling_found(root, act: str):
    from adopter.structure import package_of

    folder = root / "modernpkg"
    folder.mkdir()
    (folder / "__init__.py").write_text("")
    (folder / "acts.py").write_text(act)
    path = folder / "block.py"
    path.write_text(SIBLING_BLOCK)
    text = path.read_text()
    return [(f.rule, f.line) for f in analyze(text, str(path), rules("ADP006"), package_of(str(path))).findings]


def test_a_gelu_defined_in_a_sibling_module_in_newer_syntax(tmp_path):
    assert _sibling_found(tmp_path, SIBLING_ACT) == [("ADP006", 12)]


def test_a_sibling_in_newer_syntax_computing_no_gelu_is_no_gelu(tmp_path):
    sigmoid = SIBLING_ACT.replace("cdf = 0.5 * (1.0 + torch.erf(x / math.sqrt(2.0)))", "cdf = torch.sigmoid(x)")
    assert _sibling_found(tmp_path, sigmoid) == []


def test_verify_says_plainly_that_this_python_cannot_import_the_file(tmp_path):
    pytest.importorskip("torch")
    from adopter.config import Config
    from adopter.verify import verify_file
    from adopter.verify.core import options_for
    from adopter.verify.result import SKIP

    path = tmp_path / "model.py"
    path.write_text(NEW)
    results = verify_file(str(path), rules("ADP010"), Config(), benchmark=False,
                          options=options_for(Config(), benchmark=False))
    assert [(r.rule, r.line, r.verdict) for r in results] == [("ADP010", 25, SKIP)]
    assert "newer Python syntax than this Python (3.11) can import" in results[0].reason
    assert "Traceback" not in results[0].reason


def test_check_and_fix_through_the_cli(tmp_path, capsys):
    from adopter.cli import main

    path = tmp_path / "model.py"
    path.write_text(NEW)
    assert main(["check", "--select=ADP010", "--no-config", str(path)]) == 1
    assert f"{path}:25:17: ADP010" in capsys.readouterr().out
    main(["fix", "--select=ADP010", "--no-config", str(path)])
    fixed = path.read_text()
    assert "scaled_dot_product_attention(q, k, v" in fixed
    assert fixed == fix_text(NEW, str(path), rules("ADP010")).text
    assert 'print(f"{cfg["name"]}: {x.shape}")' in fixed and "def first[T]" in fixed


def test_structure_of_a_file_in_newer_syntax():
    """The same classes and layers as the twin (the log line's f-string reads as a blank literal)."""
    import re

    from adopter.describe import describe_file

    def layers(code: str) -> list[str]:
        return [re.sub(r"%\d+", "%", line) for line in describe_file(code, "model.py").splitlines()
                if "print" not in line and "DL nodes" not in line]

    assert layers(NEW) == layers(OLD)
    assert "class Attention:" in layers(NEW)


# An f-string in 3.12 syntax is a blank literal to the fixer: a name read only there must not be
# deleted or rebound by a patch, or the restored f-string reads a name the patch removed.
HIDDEN_READ = textwrap.dedent('''\
    import math

    import torch
    import torch.nn.functional as F

    LABELS = {"op": "attention"}


    def attend(q, k, v):
        scores = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(q.size(-1))
        weights = F.softmax(scores, dim=-1)
        return torch.matmul(weights, v)


    def label():
        return f"{LABELS["op"]} uses {F.softmax.__qualname__}"
    ''')


def test_names_read_in_blanked_fstrings_are_collected_but_not_attributes_or_keywords():
    code = 'x = f"{a["k"]} {b.c} {d(e=1)}"\ny = f"{g}"\n'
    assert newer_syntax.names_read_in_blanked_strings(code) == {"a", "b", "d"}


def test_a_patch_removing_an_import_a_blanked_fstring_reads_is_declined():
    result = fix_text(HIDDEN_READ, "model.py", rules("ADP010"))
    assert result.text == HIDDEN_READ
    assert not result.applied
    assert [(f.rule, f.line) for f, _ in result.skipped] == [("ADP010", 10)]
    assert "remove or rebind F" in result.skipped[0][1]


def test_a_blanked_fstring_reading_names_the_patch_keeps_is_still_fixed():
    code = HIDDEN_READ.replace('{F.softmax.__qualname__}', '{math.pi}')
    result = fix_text(code, "model.py", rules("ADP010"))
    assert [(f.rule, f.line) for f in result.applied] == [("ADP010", 10)]
    assert 'f"{LABELS["op"]} uses {math.pi}"' in result.text
