"""ADP010, older wrong patches review62 found (session 47, wrong90).

1. A triangle buffer changed in place in the class after it is registered
   (``self.tri[..., 0] = 0``, ``self.tri[:, :, :, 0].zero_()``) was still read as the triangle
   it was made as: the fill was taken to keep every row's first key, so no rows' guard was
   written, and on the row the change emptied the additive mask differs from the fill (the
   original's row is uniform, the patched one a softmax of the scores).  The buffer changed in
   place is no triangle now: the rows' guard sends such calls to the original (outputs and
   gradients equal), while the untouched triangle keeps its unguarded patch."""

from __future__ import annotations

import textwrap

import pytest

torch = pytest.importorskip("torch")

from sdpa_modules import RULES, Counter, assert_same_step, load, sdpa_fixed

from adopter.synth import fix_text

F64 = torch.float64


def _patched_and_equal(source, inputs, calls=None):
    """Fix ``source``, then run original and patched in float64, eval and train, on
    ``inputs()`` each time: equal steps, and ``calls`` fused calls when given."""
    fixed = sdpa_fixed(source)
    a_ns, b_ns = load(source, "original"), load(fixed, "patched")
    torch.manual_seed(0)
    a = a_ns["Heads"]().to(F64)
    b = b_ns["Heads"]().to(F64)
    b.load_state_dict(a.state_dict())
    counter = Counter(b_ns)
    for train in (False, True):
        a.train(train), b.train(train)
        assert_same_step(a, b, inputs())
    if calls is not None:
        assert counter.calls == calls


TRIANGLE = textwrap.dedent('''
    import torch
    import torch.nn as nn


    class Causal(nn.Module):
        def __init__(self, n=6):
            super().__init__()
            self.register_buffer("tri", torch.tril(torch.ones(n, n)).view(1, 1, n, n))
    CHANGE
        def forward(self, q, k, v):
            w = torch.matmul(q, k.transpose(-1, -2))
            w = w / (v.size(-1) ** 0.5)
            n, m = q.size(-2), k.size(-2)
            w = w.masked_fill(self.tri[:, :, :n, :m] == 0, -1e4)
            w = nn.functional.softmax(w, dim=-1)
            return torch.matmul(w, v)
''')

CHANGES = {
    "item_store": "        self.tri[..., 0] = 0\n",
    "method_on_view": "        self.tri[:, :, :, 0].zero_()\n",
    "data_fill": "        self.tri.data[:, :, 0, :].fill_(0)\n",
}


def _qkv(n=6, m=6):
    g = torch.Generator().manual_seed(3)
    return [torch.randn(2, 2, s, 8, dtype=F64, generator=g) for s in (n, m, m)]


def _pair(source: str, fixed: str):
    a_ns, b_ns = load(source, "original"), load(fixed, "patched")
    torch.manual_seed(0)
    a = a_ns["Causal"]().to(F64)
    b = b_ns["Causal"]().to(F64)
    b.load_state_dict(a.state_dict())
    return a, b, Counter(b_ns)


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_a_triangle_changed_in_place_after_registering_gets_the_rows_guard(change):
    source = TRIANGLE.replace("CHANGE\n", CHANGES[change])
    fixed = sdpa_fixed(source)
    assert ".all(-1).any()" in fixed  # (the rows' guard: a row the change emptied takes the original)
    a, b, _ = _pair(source, fixed)
    for train in (False, True):
        a.train(train), b.train(train)
        assert_same_step(a, b, _qkv())
        assert_same_step(a, b, _qkv(6, 4))


def test_the_changed_row_is_not_idle():
    """Without the guard the additive mask differs from the fill on the emptied row."""
    source = TRIANGLE.replace("CHANGE\n", CHANGES["item_store"])
    a = load(source, "original")["Causal"]().to(F64)
    q, k, v = _qkv()
    mask = torch.zeros(6, 6, dtype=F64).masked_fill(a.tri[0, 0] == 0, -1e4)
    fused = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    assert not torch.allclose(a(q, k, v), fused)


def test_the_untouched_triangle_keeps_its_unguarded_patch():
    source = TRIANGLE.replace("CHANGE\n", "")
    fixed = sdpa_fixed(source)
    assert ".all(-1).any()" not in fixed
    a, b, counter = _pair(source, fixed)
    for train in (False, True):
        a.train(train), b.train(train)
        assert_same_step(a, b, _qkv())
    assert counter.calls == 2


def test_a_copy_of_the_triangle_changed_in_place_leaves_the_buffer_a_triangle():
    """Look-alike: ``self.tri.clone()`` changed in place is another tensor."""
    source = TRIANGLE.replace("CHANGE\n", "        self.tri.clone()[..., 0] = 0\n")
    fixed = sdpa_fixed(source)
    assert ".all(-1).any()" not in fixed
    a, b, _ = _pair(source, fixed)
    assert_same_step(a, b, _qkv())


# 2. A clamp bound bound to a local first (``bnd = self.cfg.bound``) or held by a module-level
#    constant tensor of one entry per key was read as a number (the name hid it), the temperature
#    folded into the query: the patched module raised where the original ran.  The name is read
#    for its value: declined; a local or module constant of math on numbers stays patched, equal.

CLAMPED = textwrap.dedent('''
    import math
    import torch
    from torch import nn

    TOP


    class Limits:
        def __init__(self):
            self.top = torch.linspace(0.0, 2.0, 6).view(1, 1, 1, 6).double()


    class Heads(nn.Module):
        def __init__(self, dim=16, heads=4, head_dim=4):
            super().__init__()
            self.heads = heads
            self.head_dim = head_dim
            self.qkv = nn.Linear(dim, 3 * heads * head_dim, bias=False)
            self.out = nn.Linear(heads * head_dim, dim)
            self.temp = nn.Parameter(torch.log(10 * torch.rand(1, heads, 1, 1)))
            self.lim = Limits()

        def forward(self, x):
            n, t, _ = x.shape
            q, k, v = self.qkv(x).reshape(n, t, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
            scores = q @ k.transpose(-1, -2)
            LOCAL
            scores = scores * torch.clamp(self.temp, max=BOUND).exp()
            return self.out((scores.softmax(-1) @ v).transpose(1, 2).reshape(n, t, -1))
''')

PER_KEY_TOP = "TOP = torch.linspace(0.0, 2.0, 6).view(1, 1, 1, 6).double()"
NUMBER_TOP = "TOP = math.log(100.0)"


def _clamped(top: str, local: str, bound: str) -> str:
    return CLAMPED.replace("TOP\n", top + "\n").replace("        LOCAL\n", f"        {local}\n" if local else "") \
        .replace("BOUND", bound)


PER_KEY = {
    "local_of_another_object": (NUMBER_TOP, "bnd = self.lim.top", "bnd"),
    "module_constant_tensor": (PER_KEY_TOP, "", "TOP"),
    "local_of_module_constant": (PER_KEY_TOP, "bnd = TOP", "bnd"),
    # (review66: a local bound in a form not read for one value)
    "tuple_unpacked_local": (PER_KEY_TOP, "_, bnd = 0, TOP", "bnd"),
    "annotated_local": (PER_KEY_TOP, "bnd: torch.Tensor = TOP", "bnd"),
    "chained_local": (PER_KEY_TOP, "bnd = other = TOP", "bnd"),
}
NUMBERS = {
    "local_of_math": (NUMBER_TOP, "bnd = math.log(1.0 / 0.01)", "bnd"),
    "module_constant_number": (NUMBER_TOP, "", "TOP"),
}


def _x():
    return (torch.randn(2, 6, 16, dtype=F64),)


@pytest.mark.parametrize("form", sorted(PER_KEY))
def test_a_per_key_bound_behind_a_name_is_declined(form):
    source = _clamped(*PER_KEY[form])
    result = fix_text(source, "attention.py", RULES)
    assert result.error is None and not result.applied, result.text
    torch.manual_seed(0)
    load(source, "original")["Heads"]().to(F64)(*_x())  # (the original runs)


def test_the_per_key_bound_is_not_idle():
    """Folding the clamped temperature into the query, as the wrong patch did, raises."""
    source = _clamped(*PER_KEY["module_constant_tensor"])
    torch.manual_seed(0)
    m = load(source, "original")["Heads"]().to(F64)
    t = torch.clamp(m.temp, max=load(source, "o2")["TOP"]).exp()
    assert t.shape[-1] == 6
    q = torch.randn(2, 4, 6, 4, dtype=F64)
    with pytest.raises(RuntimeError):
        torch.nn.functional.scaled_dot_product_attention(q * t, q, q, scale=1.0)


@pytest.mark.parametrize("form", sorted(NUMBERS))
def test_a_number_bound_behind_a_name_stays_patched_and_equal(form):
    _patched_and_equal(_clamped(*NUMBERS[form]), _x, calls=2)


# 3. An if test the guard copies (reads again before the region) that draws from a random
#    generator (``torch.rand``, ``random.random``, ``np.random.rand``) or steps an iterator
#    (``it.__next__()``), or reads a property of another object whose getter changes state: the
#    patched module drew twice (another draw picks the other arm).  Declined; a test reading
#    the module's own setting stays patched and equal.

BRANCHED = textwrap.dedent('''
    import itertools
    import random
    import numpy as np
    import torch
    import torch.nn as nn


    class SUB:
        @property
        def on(self):
            GETTER


    class Heads(nn.Module):
        def __init__(self, dim=8, heads=2):
            super().__init__()
            self.h = heads
            self.d = dim // heads
            self.count = itertools.count()
            self.sub = SUB()
            self.qkv = nn.Linear(dim, 3 * dim)
            self.bias = nn.Parameter(torch.randn(heads, 5, 5))

        def forward(self, x):
            b, n, _ = x.shape
            q, k, v = self.qkv(x).view(b, n, 3, self.h, self.d).permute(2, 0, 3, 1, 4)
            if self.h < 0:
                s = -torch.cdist(q, k)
            elif TEST:
                s = torch.matmul(q, k.transpose(-2, -1)) * self.d ** -0.5 + self.bias
            else:
                s = torch.matmul(q, k.transpose(-2, -1)) * self.d ** -0.5
            p = s.softmax(dim=-1)
            return torch.matmul(p, v).transpose(1, 2).reshape(b, n, -1)
''')

DRAWING = {
    "torch_rand": ("torch.rand(()) < 0.5", "Reader"),
    "torch_rand_item": ("torch.rand(1).item() < 0.5", "Reader"),
    "python_random": ("random.random() < 0.5", "Reader"),
    "numpy_random": ("np.random.rand() < 0.5", "Reader"),
    "dunder_next": ("self.count.__next__() % 2 == 0", "Reader"),
    "foreign_counting_property": ("self.sub.on", "Flip"),
}


GETTERS = {"Flip": 'self._on = not getattr(self, "_on", False)\n        return self._on',
           "Reader": "return True"}


def _branched(test: str, sub: str) -> str:
    """(``sub``: the one other class, whose property ``on`` counts or only reads; the file has
    no other class defining ``on``, since the object's class is not known to the fixer)"""
    return BRANCHED.replace("TEST", test).replace("SUB", sub).replace("GETTER", GETTERS[sub])


def _first(test: str, sub: str) -> str:
    """The drawing test first (``if TEST: ... elif self.h > 0: ...``, the steps in both arms)."""
    source = _branched(test, sub)
    chain = "        if self.h < 0:\n            s = -torch.cdist(q, k)\n        elif "
    assert chain in source
    return source.replace(chain, "        if ").replace("        else:\n", "        elif self.h > 0:\n")


@pytest.mark.parametrize("form", sorted(DRAWING))
@pytest.mark.parametrize("where", [_first, _branched])
def test_an_if_test_that_draws_or_steps_is_declined(form, where):
    result = fix_text(where(*DRAWING[form]), "attention.py", RULES)
    assert result.error is None and not result.applied, result.text


def test_drawing_the_test_once_more_changes_the_output():
    """Not idle: one more draw before the if (what the guard does) picks another arm."""
    source = _first(*DRAWING["torch_rand"])
    twice = source.replace("        if torch.rand", "        torch.rand(())\n        if torch.rand")
    torch.manual_seed(0)
    a = load(source, "original")["Heads"]().to(F64)
    b = load(twice, "twice")["Heads"]().to(F64)
    b.load_state_dict(a.state_dict())
    x = torch.randn(2, 5, 8, dtype=F64)
    differ = 0
    for seed in range(8):
        torch.manual_seed(seed)
        oa = a(x)
        torch.manual_seed(seed)
        differ += not torch.allclose(oa, b(x))
    assert differ


@pytest.mark.parametrize("test", ["self.sub.on", "self.h > 1"])
@pytest.mark.parametrize("where", [_first, _branched])
def test_a_reading_test_stays_patched_and_equal(test, where):
    _patched_and_equal(where(test, "Reader"), lambda: (torch.randn(2, 5, 8, dtype=F64),))


# 4. A kept statement between the scores and the context product that changes k in place by a
#    route the fixer did not read: the fused call (reading k at the end) saw the changed k.
#    Declined; the same routes with an out-of-place function stay patched and equal.

BETWEEN = textwrap.dedent('''
    import operator
    import torch
    import torch.nn as nn
    import torch.utils.dlpack


    class Heads(nn.Module):
        def __init__(self, dim=8, heads=2):
            super().__init__()
            self.h = heads
            self.d = dim // heads
            self.qkv = nn.Linear(dim, 3 * dim)

        def forward(self, x):
            b, n, _ = x.shape
            q, k, v = self.qkv(x).view(b, n, 3, self.h, self.d).permute(2, 0, 3, 1, 4)
            q, k, v = q.clone(), k.clone(), v.clone()
            s = torch.matmul(q, k.transpose(-2, -1)) * self.d ** -0.5
            CHANGE
            p = s.softmax(dim=-1)
            return torch.matmul(p, v).transpose(1, 2).reshape(b, n, -1)
''')

IN_PLACE = {
    "call_attr": "torch.Tensor.mul_.__call__(k, 2.0)",
    "walrus": "(f := torch.Tensor.mul_)(k, 2.0)",
    "map": "list(map(torch.Tensor.mul_, [k], [2.0]))",
    "methodcaller": "operator.methodcaller('mul_', 2.0)(k)",
    "dict_of_functions": "ops = {'m': torch.Tensor.mul_}\n        ops['m'](k, 2.0)",
    "module_alias": "g = torch.Tensor\n        g.mul_(k, 2.0)",
    "dlpack": "torch.utils.dlpack.from_dlpack(torch.utils.dlpack.to_dlpack(k.detach())).mul_(2.0)",
    "swap_tensors": "torch.utils.swap_tensors(k, k * 2.0)",
}
OUT_OF_PLACE = {
    "held_mul": "f = torch.Tensor.mul\n        f(k, 2.0)",
    "map_mul": "list(map(torch.Tensor.mul, [k], [2.0]))",
    "methodcaller_mul": "operator.methodcaller('mul', 2.0)(k)",
}


def _between(change: str) -> str:
    return BETWEEN.replace("CHANGE", change)


@pytest.mark.parametrize("form", sorted(IN_PLACE))
def test_a_kept_in_place_change_of_k_is_declined(form):
    result = fix_text(_between(IN_PLACE[form]), "attention.py", RULES)
    assert result.error is None and not result.applied, result.text


@pytest.mark.parametrize("form", ["call_attr", "map", "swap_tensors"])
def test_the_kept_change_is_not_idle(form):
    """Run before the scores (where the fused call reads k), the change alters the output."""
    source = _between(IN_PLACE[form])
    moved = source.replace(f"        {IN_PLACE[form]}\n", "").replace(
        "        s = torch.matmul", f"        {IN_PLACE[form]}\n        s = torch.matmul")
    assert moved != source
    torch.manual_seed(0)
    a = load(source, "original")["Heads"]().to(F64)
    b = load(moved, "moved")["Heads"]().to(F64)
    b.load_state_dict(a.state_dict())
    x = torch.randn(2, 5, 8, dtype=F64)
    assert not torch.allclose(a(x), b(x))


@pytest.mark.parametrize("form", sorted(OUT_OF_PLACE))
def test_an_out_of_place_look_alike_stays_patched_and_equal(form):
    _patched_and_equal(_between(OUT_OF_PLACE[form]), lambda: (torch.randn(2, 5, 8, dtype=F64),), calls=2)
