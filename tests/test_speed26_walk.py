"""speed (session 26): treewalk.ast_walk is ast.walk (the same node objects in the same order),
made in one generator; the check path's modules walk with it."""
import ast
import textwrap

from adopter.structure.treewalk import ast_walk

# Fixture: every kind of field ast_walk skips (names, attributes, keyword and parameter names,
# a constant's kind, f-string conversions, import levels and modules, type comments) beside
# the fields that hold nodes, lists of nodes, lists of names, and None.
SOURCE = textwrap.dedent('''
    from ..pkg.mod import a as b, c
    from . import d
    import torch.nn.functional as F, os
    global_x: int = 1

    @decorate(1, k=2)
    class Block(Base, metaclass=Meta):
        def forward(self, x, /, y=u"s", *rest, scale=None, **extra):  # type: (int) -> int
            global counter
            def inner():
                nonlocal scale
                scale = 2
            s = f"{x!r:>{scale}} {y!s} {rest!a}"
            z = x[1:2, ..., None] @ x.mT
            del z.attr, z[0]
            w = [v for v in rest if v] + list({k: v for k, v in extra.items()})
            match w:
                case Point(x=0, y=yy) if yy:
                    pass
                case [a, *others]:
                    pass
                case {"k": v, **kw}:
                    pass
                case str() | None as alt:
                    pass
            try:
                q = -z ** 2 if not w else (lambda t, *, u=1: t + u)(x)
            except* (ValueError, TypeError) as err:
                raise RuntimeError() from err
            async def later():
                async with lock as l, other():
                    await thing
                async for item in stream:
                    yield item
            return F.softmax(q, dim=-1) < 0 <= 1
''')


def test_ast_walk_yields_what_ast_walk_yields():
    tree = ast.parse(SOURCE, type_comments=True)
    roots = [tree, *ast.walk(tree)]  # from every node: whole trees, expressions, singletons
    for root in roots:
        expected = list(ast.walk(root))
        got = list(ast_walk(root))
        assert len(got) == len(expected) and all(a is b for a, b in zip(got, expected)), ast.dump(root)[:80]
    # the context and operator singletons are among them, as ast.walk gives them
    kinds = {type(n) for n in ast_walk(tree)}
    assert {ast.Load, ast.Store, ast.Del, ast.MatMult, ast.USub, ast.Lt} <= kinds


def test_ast_walk_lists_children_before_it_yields_their_parent():
    """ast.walk reads a node's children before yielding the node: a child replaced by the
    caller at that point is not visited (the same in both)."""
    def visit(walker):
        tree = ast.parse("f(g(x))")
        seen = []
        for node in walker(tree):
            seen.append(type(node).__name__)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "f":
                node.args = [ast.Constant(1)]
        return seen

    assert visit(ast_walk) == visit(ast.walk)
    assert "Constant" not in visit(ast.walk)


def test_the_check_path_does_not_use_ast_walk():
    from pathlib import Path

    import adopter

    root = Path(adopter.__file__).parent
    users = [p.relative_to(root).as_posix() for folder in ("structure", "synth") for p in (root / folder).glob("*.py")
             if "ast.walk(" in p.read_text()]
    users += [name for name in ("engine.py", "match.py") if "ast.walk(" in (root / name).read_text()]
    assert users == []
