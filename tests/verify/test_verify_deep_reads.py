"""verify19: how a constructor's arguments are read is worked out once per class in a walk.

A model whose classes each hand most of their arguments to the next one (model -> stage -> block
-> attention) asked ``facts.argument_reads`` for the next class's reads once per handed argument,
and each of those asked again one level down: eight arguments through seven levels is 8**6 visits
of the innermost constructor, which kept verify from building a window-attention model for tens
of minutes.  The reads must come out the same, only once each.
"""

from __future__ import annotations

import ast
import time

from adopter.verify import facts

LEVELS = 7  # the deepest walk argument_reads makes (depth 0 .. 6)
WIDTH = 8


def _chain_source() -> str:
    """Classes Level0 .. Level6: each hands all of its WIDTH arguments on to the next, the last
    builds a layer from the first argument and reads a field of the second."""
    params = ", ".join(f"a{i}" for i in range(WIDTH))
    lines = ["import torch.nn as nn", ""]
    for level in range(LEVELS):
        lines.append(f"class Level{level}(nn.Module):")
        lines.append(f"    def __init__(self, {params}):")
        lines.append("        super().__init__()")
        if level + 1 < LEVELS:
            lines.append(f"        self.inner = Level{level + 1}({params})")
        else:
            lines.append("        self.proj = nn.Linear(a0, a0)")
            lines.append("        self.drop = nn.Dropout(a1.dropout)")
        lines.append("")
    return "\n".join(lines)


def _classes() -> dict[str, ast.ClassDef]:
    return facts.class_nodes(ast.parse(_chain_source()))


def test_reads_follow_the_whole_chain():
    reads = facts.argument_reads(_classes(), "Level0")
    assert set(reads) == {f"a{i}" for i in range(WIDTH)}
    # the innermost constructor's reads reach the outermost arguments
    assert "dropout" in reads["a1"].attrs
    assert ("nn.Linear", 0) in reads["a0"].handed_as
    assert not reads["a2"].attrs


def test_a_deep_chain_is_read_in_well_under_a_second_per_level():
    # 8**6 = 262,144 visits of the innermost constructor without the memo (minutes of CPU);
    # with it, each class is read once: far under the bound even on a loaded machine
    started = time.process_time()
    facts.argument_reads(_classes(), "Level0")
    assert time.process_time() - started < 5.0


def test_a_shared_memo_gives_each_class_the_reads_of_a_fresh_walk():
    classes = _classes()
    memo: dict = {}
    for name in classes:
        shared = facts.argument_reads(classes, name, memo=memo)
        fresh = facts.argument_reads(classes, name)
        assert set(shared) == set(fresh)
        for param in fresh:
            assert set(shared[param].attrs) == set(fresh[param].attrs)
            assert shared[param].handed_as == fresh[param].handed_as


def test_a_cycle_of_classes_still_ends():
    source = ("import torch.nn as nn\n"
              "class A(nn.Module):\n    def __init__(self, x, y):\n        super().__init__()\n"
              "        self.b = B(x, y)\n        self.n = nn.Linear(y, y)\n"
              "class B(nn.Module):\n    def __init__(self, x, y):\n        super().__init__()\n"
              "        self.a = A(x, y)\n        self.c = x.width\n")
    reads = facts.argument_reads(facts.class_nodes(ast.parse(source)), "A")
    assert "width" in reads["x"].attrs
    assert ("nn.Linear", 0) in reads["y"].handed_as


def test_a_shared_memo_over_a_cycle_gives_the_reads_of_a_fresh_walk():
    # A hands y to B, B hands it back to A, which builds nn.Linear(y, y).  Read from A first,
    # B's reads there stop at A (already on the walk) and miss the Linear; a memo keyed by the
    # class alone would hand that partial answer to a later walk starting at B
    source = ("import torch.nn as nn\n"
              "class A(nn.Module):\n    def __init__(self, x, y):\n        super().__init__()\n"
              "        self.b = B(x, y)\n        self.n = nn.Linear(y, y)\n"
              "class B(nn.Module):\n    def __init__(self, x, y):\n        super().__init__()\n"
              "        self.a = A(x, y)\n        self.c = x.width\n")
    classes = facts.class_nodes(ast.parse(source))
    memo: dict = {}
    facts.argument_reads(classes, "A", memo=memo)
    shared = facts.argument_reads(classes, "B", memo=memo)
    fresh = facts.argument_reads(classes, "B")
    assert ("nn.Linear", 0) in fresh["y"].handed_as
    assert shared["y"].handed_as == fresh["y"].handed_as
    assert set(shared["x"].attrs) == set(fresh["x"].attrs)
