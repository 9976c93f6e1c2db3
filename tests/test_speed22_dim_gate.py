"""speed22: the text gate in front of passed_defaults' walk for ``dim=``/``axis=`` keywords is
exact -- it skips the walk only where the walk would find no such keyword -- and skips it for
a helper whose body passes no axis keyword (a length, an offset)."""

import ast

from adopter.structure import passed_defaults as pd

_FORMS = {
    "plain": "def f(x, dim=-1):\n    return x.mean(dim=dim)\n",
    "spaced comment paren": "def f(x, d=-1):\n    return x.mean(dim = (  # the axis\n        d))\n",
    "continuation axis": "def f(x, d=-1):\n    return x.sum(axis=\\\n        d)\n",
    "one line": "def f(x, dim=-1): return x.softmax(dim=dim)\n",
    "length only": "def f(x, n=0):\n    return x[:, n:]\n",
    "dim compared": "def f(x, dim=-1):\n    if dim == -1:\n        return x\n    return x.mean(dim=-1)\n",
    "another name": "def f(x, dim=-1):\n    return x.mean(dim=other)\n",
    "default only": "def f(x, dim=-1,\n      eps=1e-6):\n    return x * eps\n",
}


def _parsed(src):
    func = ast.parse(src).body[0]
    params = [(a.arg, i) for i, a in enumerate(func.args.args) if i]
    return func, params, src.split("\n")


def test_gate_agrees_with_the_walk():
    for name, src in _FORMS.items():
        func, params, lines = _parsed(src)
        gated = pd._dim_params(func, params, lines)
        func, params, _ = _parsed(src)
        assert gated == pd._dim_params(func, params), name


def test_gate_skips_the_walk_of_bodies_without_an_axis_keyword():
    for name in ("length only", "dim compared", "another name", "default only"):
        func, params, lines = _parsed(_FORMS[name])
        assert pd._dim_params(func, params, lines) == []
        assert "_dim_keywords" not in func.__dict__, name  # the body was not walked
    func, params, lines = _parsed(_FORMS["plain"])
    assert pd._dim_params(func, params, lines) == [("dim", 1)]
    assert "_dim_keywords" in func.__dict__
