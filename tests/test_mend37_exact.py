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


def test_class_syntax_readings_shared_by_the_layer_typer_and_its_helpers():
    from adopter.structure import appending, built_blocks, class_syntax, layers

    cls = ast.parse("class S(nn.Sequential):\n"
                    "    def __init__(self):\n"
                    "        super(S, self).__init__()\n"
                    "        self.n = 0\n"
                    "    def append(self, m):\n"
                    "        self.add_module(str(self.n), m)\n"
                    "        self.n += 1\n"
                    "    async def forward(self, x):\n"
                    "        return x\n").body[0]
    methods = class_syntax.methods(cls)
    assert list(methods) == ["__init__", "append", "forward"]
    init = methods["__init__"]
    assert class_syntax.super_init(init.body[0]) is init.body[0].value
    assert class_syntax.super_init(init.body[1]) is None
    assert class_syntax.super_init(ast.parse("other().__init__()").body[0]) is None
    assert class_syntax.self_attr(init.body[1].targets[0])
    assert not class_syntax.self_attr(ast.parse("cls.n").body[0].value)
    assert class_syntax.is_name(ast.parse("self").body[0].value, "self")
    assert not class_syntax.is_name(None, "self")
    # one function, not copies: the layer typer and both helper modules read with it
    assert layers._super_init is built_blocks.super_init is appending.super_init is class_syntax.super_init
    assert layers._methods is built_blocks.class_methods is class_syntax.methods
    assert appending._is_name is layers._is_name and appending._self_attr is layers._self_attribute
    # the counter-named append after an empty super(S, self).__init__() still reads as Sequential's
    assert appending.starts_empty(init)
    assert appending.appends_last(methods["append"], init, methods)
    with_member = ast.parse("def __init__(self):\n    super().__init__(conv)\n").body[0]
    assert not appending.starts_empty(with_member)
