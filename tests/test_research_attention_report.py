"""The research attention benchmark's report: a site declined in a later round of ``fix_text``
(its finding placed in that round's text, moved by the earlier rounds' rewrites) is found with
its reason through ``final_line``."""
import importlib.util
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "research_attention.py"
spec = importlib.util.spec_from_file_location("research_attention_report", SCRIPT)
research = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = research
spec.loader.exec_module(research)


def test_a_line_after_an_insertion_moves_with_it():
    old = "a\nb\nc\nd\n"
    new = "a\nx1\nx2\nb\nc\nd\n"
    assert research.final_line(old, new, 1) == 1
    assert research.final_line(old, new, 3) == 5
    assert research.final_line(old, new, 4) == 6


def test_a_changed_line_has_no_place():
    old = "a\nb\nc\n"
    new = "a\nB\nc\n"
    assert research.final_line(old, new, 2) is None
    assert research.final_line(old, new, 3) == 3
