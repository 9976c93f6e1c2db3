"""Exact refactors of session 37 (mend37): the readings keep their answers after one walk
replaced a walk per stored name (passed_lists) and shared syntax helpers replaced copies."""

import ast

from adopter.structure.passed_lists import list_items


def _caller(src: str) -> ast.FunctionDef:
    return ast.parse(src).body[0]


def _items(src: str, index: int = 0) -> list[str]:
    caller = _caller(src)
    return [ast.unparse(e) for e in list_items(ast.Name(id="layers", ctx=ast.Load()), caller, index)]


def test_plain_bindings_give_every_display_item():
    src = ("def f(flag):\n"
           "    if flag:\n"
           "        layers = [a, b]\n"
           "    else:\n"
           "        layers: list = [c, d]\n"
           "    layers.append(e)\n")
    assert _items(src) == ["a", "c"]
    assert _items(src, 1) == ["b", "d"]


def test_another_binding_of_the_name_gives_nothing():
    plain = "def f():\n    layers = [a, b]\n"
    assert _items(plain) == ["a"]
    for extra in ("    layers += [c]\n", "    for layers in xs:\n        pass\n", "    del layers\n",
                  "    if (layers := [c]):\n        pass\n", "    with g() as layers:\n        pass\n"):
        assert _items(plain + extra) == [], extra


def test_a_name_stored_twice_in_one_assignment_gives_nothing():
    assert _items("def f():\n    layers = other = [a, b]\n") == []
    assert _items("def f():\n    layers, other = [a, b], [c]\n") == []
