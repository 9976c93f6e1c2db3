"""ADP010, two older wrong patches review61 found (session 46, wrong84):

1. An if test the guard copies (it runs again before the region) that reads a ``@property``
   whose getter changes state (a counter), or calls a method that does: the original runs it
   once per forward, the patched module once more, so a toggling test picks the other arm.
   Declined; a property that only reads stays patched and equal, and so do tests mend81 had
   declined for calling (``getattr``/``hasattr`` of a constant name of the module, a dict
   display's ``get``), in a plain if and in an elif chain.  A same-file function in an elif test
   stays declined however plain its body (review62: it may read a property of its argument
   that changes state), and so does ``getattr`` of another object's attribute.
2. A clamp bound that is an attribute of another object than the module (``self.cfg.bound``,
   ``cfg.bound`` of a module constant or a forward argument) was read as a number, passed with
   the temperature folded into the query, while it holds one entry per key (the patched module
   raised where the original ran).  Declined; a bound of math, numpy or a 0-d tensor placed on
   the scale's or the input's device stays patched and equal."""

from __future__ import annotations

import textwrap

import pytest

torch = pytest.importorskip("torch")

from sdpa_modules import RULES, Counter, assert_same_step, load, sdpa_fixed

from adopter.synth import fix_text

F64 = torch.float64

PROPERTY = textwrap.dedent('''
    import torch
    from torch import nn


    class Heads(nn.Module):
        def __init__(self, dim=8, heads=2):
            super().__init__()
            self.h = heads
            self.d = dim // heads
            self.qkv = nn.Linear(dim, 3 * dim)
            self.bias = nn.Parameter(torch.randn(heads, 5, 5))

        @property
        def biased(self):
            GETTER

        def forward(self, x):
            b, n, _ = x.shape
            q, k, v = self.qkv(x).view(b, n, 3, self.h, self.d).permute(2, 0, 3, 1, 4)
            if self.biased:
                s = torch.matmul(q, k.transpose(-2, -1)) * self.d ** -0.5 + self.bias
            else:
                s = torch.matmul(q, k.transpose(-2, -1)) * self.d ** -0.5
            p = s.softmax(dim=-1)
            return torch.matmul(p, v).transpose(1, 2).reshape(b, n, -1)
''')

COUNTING = "self.calls = getattr(self, 'calls', 0) + 1\n        return self.calls % 2 == 0"
READING = "return self.h > 1"


def _prop(getter: str) -> str:
    return PROPERTY.replace("GETTER", getter)


def test_an_if_test_reading_a_property_that_counts_is_declined():
    result = fix_text(_prop(COUNTING), "attention.py", RULES)
    assert result.error is None and not result.applied
    assert any("property" in str(r) and "second time" in str(r) for r in result.skipped), result.skipped


def test_reading_the_counting_property_once_more_changes_the_output():
    """Not idle: one more read before the if (what the guard does) picks the other arm."""
    source = _prop(COUNTING)
    twice = source.replace("        if self.biased:\n", "        self.biased\n        if self.biased:\n")
    assert twice != source
    torch.manual_seed(0)
    a, b = load(source, "original")["Heads"]().to(F64), load(twice, "twice")["Heads"]().to(F64)
    b.load_state_dict(a.state_dict())
    x = torch.randn(2, 5, 8, dtype=F64)
    with torch.no_grad():
        assert not torch.allclose(a(x), b(x))


def _patched_and_equal(source: str, shape: tuple = (2, 5, 8)) -> None:
    """Fixed, then equal to the original in float64 (eval and train) on an input of ``shape``,
    the fused call run."""
    fixed = sdpa_fixed(source)
    original, patched = load(source, "original"), load(fixed, "patched")
    counter = Counter(patched)
    torch.manual_seed(0)
    a, b = original["Heads"]().to(F64), patched["Heads"]().to(F64)
    b.load_state_dict(a.state_dict())
    x = torch.randn(*shape, dtype=F64)
    for training in (False, True):
        a.train(training)
        b.train(training)
        assert_same_step(a, b, [x])
    assert counter.calls == 2


def _elif(source: str, test: str) -> str:
    """The template with its steps in the elif arm of a chain on ``test`` (review61's m81x form:
    another score in the first arm)."""
    block = source[source.index(f"        if {test}:\n"):source.index("        p = s.softmax")]
    chained = source.replace(block, f"        if not ({test}):\n            s = -torch.cdist(q, k)\n"
                                    f"        elif {test}:\n"
                                    "            s = torch.matmul(q, k.transpose(-2, -1)) * self.d ** -0.5\n")
    assert chained != source
    return chained


def test_an_if_test_reading_a_property_that_only_reads_is_patched_and_equal():
    _patched_and_equal(_prop(READING))


def _test(test: str, extra: str = "") -> str:
    """The template's if testing ``test`` (the property reading only), with ``extra`` lines
    added to ``__init__`` and a counting ``tick`` method and an ``exists`` function beside."""
    source = _prop(READING).replace("        if self.biased:\n", f"        if {test}:\n")
    source = source.replace("    @property\n", "    def tick(self):\n        self.calls = getattr(self, 'calls', 0) + 1\n"
                            "        return self.calls % 2 == 0\n\n    @property\n")
    assert "def tick" in source
    source = source.replace("class Heads(", "def exists(val):\n    return val is not None\n\n\nclass Heads(")
    return source.replace("        self.bias = nn.Parameter", f"        {extra}\n        self.bias = nn.Parameter" if extra
                          else "        self.bias = nn.Parameter")


def test_an_if_test_calling_a_counting_method_is_declined():
    result = fix_text(_test("self.tick()"), "attention.py", RULES)
    assert result.error is None and not result.applied
    assert any("may change state" in str(r) for r in result.skipped), result.skipped


READ_ONLY_TESTS = {
    "getattr of a constant name": ('getattr(self, "flagged", True)', ""),
    "hasattr of a constant name": ('hasattr(self, "bias")', ""),
    "a dict's get": ('self.cfg.get("biased")', 'self.cfg = {"biased": True}'),
}


@pytest.mark.parametrize("case", sorted(READ_ONLY_TESTS))
def test_an_if_test_that_only_reads_is_patched_and_equal(case):
    """mend81's conservative declines of these reads (elif chains) lifted for reads whose
    evaluation cannot change state; the plain if of this template the same."""
    test, extra = READ_ONLY_TESTS[case]
    source = _test(test, extra)
    for text in (source, _elif(source, test)):
        _patched_and_equal(text)


BOUND = textwrap.dedent('''
    import math
    import numpy as np
    import torch
    from torch import nn


    class Cfg:
        def __init__(self):
            self.bound = torch.linspace(0.0, 2.0, 6).view(1, 1, 1, 6).double()


    SHARED = Cfg()


    class Heads(nn.Module):
        def __init__(self, dim=16, heads=4, head_dim=4):
            super().__init__()
            self.heads = heads
            self.head_dim = head_dim
            self.qkv = nn.Linear(dim, 3 * heads * head_dim, bias=False)
            self.out = nn.Linear(heads * head_dim, dim)
            self.scale = nn.Parameter(torch.log(10 * torch.rand(1, heads, 1, 1)))
            self.cfg = Cfg()

        def forward(self, x, cfg=SHARED):
            n, t, _ = x.shape
            q, k, v = self.qkv(x).reshape(n, t, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
            scores = q @ k.transpose(-1, -2)
            scores = scores * torch.clamp(self.scale, max=BOUND).exp()
            return self.out((scores.softmax(-1) @ v).transpose(1, 2).reshape(n, t, -1))
''')

PER_KEY = ["self.cfg.bound", "SHARED.bound", "cfg.bound"]
NUMBERS = ["math.log(100.0)", "np.log(100.0)", "torch.log(torch.tensor(100.0)).to(self.scale.device)",
           "torch.log(torch.tensor(100.0, device=x.device))"]


@pytest.mark.parametrize("bound", PER_KEY)
def test_a_clamp_bound_held_by_another_object_is_declined(bound):
    result = fix_text(BOUND.replace("BOUND", bound), "attention.py", RULES)
    assert result.error is None and not result.applied
    assert any("may be a tensor that differs between keys" in str(r) for r in result.skipped), result.skipped


@pytest.mark.parametrize("bound", PER_KEY)
def test_the_per_key_bound_gives_each_key_its_own_temperature(bound):
    """Not idle: the original runs (six keys) and its scores' scale differs between keys."""
    source = BOUND.replace("BOUND", bound)
    torch.manual_seed(0)
    module = load(source, "original")["Heads"]().to(F64)
    scale = torch.clamp(module.scale, max=module.cfg.bound).exp()
    assert scale.shape[-1] == 6 and not torch.allclose(scale[..., :1].expand_as(scale), scale)
    module(torch.randn(2, 6, 16, dtype=F64))


@pytest.mark.parametrize("bound", NUMBERS)
def test_a_clamp_bound_of_numbers_stays_patched_and_equal(bound):
    _patched_and_equal(BOUND.replace("BOUND", bound), (2, 6, 16))


@pytest.mark.parametrize("test", ["exists(self.bias)", 'getattr(self.sub, "flag", True)'])
def test_an_elif_test_calling_a_function_or_reading_another_object_is_declined(test):
    """review62: ``read_toggle(self)`` / ``getattr(self.sub, "toggle")`` read a property that
    flips a flag; the guard would read it a second time.  Declined in an elif chain."""

    elif_source = _elif(_test(test, "self.sub = nn.Identity()"), test)
    result = fix_text(elif_source, "model.py", RULES)
    assert not result.applied and result.text == elif_source

