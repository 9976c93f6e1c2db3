"""speed21 (session 38): exact speed-ups in the matcher's state copies (the test of 1 fails on
the old code; 2 and 3 are checked by what they must still give).

1. ``match._State.copy`` copies its containers with displays (``{**d}``, ``{*s}``: no global look-up
   of ``dict``/``set``, no call per container) and makes an empty aliases or
   guards table as a fresh ``{}``: the copy holds equal, independent containers of the same
   plain types, and the search never calls ``dict``/``set`` to make one.
2. ``Matcher._bind_node`` drops the aliases of a step's outputs only where the state has
   aliases: the bindings, aliases and produced keys after a step are those of the old code.
"""

from __future__ import annotations

import ast
import builtins
import textwrap

from adopter import match as match_mod
from adopter.engine import analyze
from adopter.ruleset import load_rules


def _state(aliases=None, guards=None):
    state = match_mod._State()
    state.env.update({"q": "q_value", "%0": "t0"})
    state.values.update({"q": ("k", "q"), "%0": ("k", "t0")})
    state.aliases.update(aliases or {})
    state.guards.update(guards or {})
    state.produced.update({"t0"})
    state.matched = ("n0",)
    state.steps = (0,)
    return state


def _contents(state):
    return (dict(state.env), dict(state.values), dict(state.aliases), dict(state.guards),
            set(state.produced), state.matched, state.steps)


def test_copy_is_equal_and_independent_with_and_without_aliases():
    for aliases, guards in (({}, {}), ({"k": "q"}, {"g": True})):
        state = _state(aliases, guards)
        before = _contents(state)
        copy = state.copy()
        assert _contents(copy) == before
        for name in ("env", "values", "aliases", "guards", "produced"):
            assert type(getattr(copy, name)) is type(getattr(state, name))
            assert getattr(copy, name) is not getattr(state, name)
        # writes to the copy leave the original as it was (and the other way round)
        copy.env["x"] = 1
        copy.values["x"] = ("k", "x")
        copy.aliases["x"] = "q"
        copy.guards["x"] = False
        copy.produced.add("x")
        assert _contents(state) == before
        state.aliases["y"] = "q"
        assert "y" not in copy.aliases
        assert copy._memo is None and copy._bound is None and copy._chain is None and copy._reach is None


def test_copy_calls_no_container_constructor(monkeypatch):
    """The old copy called dict() four times and set() once per state (fails there)."""
    calls = []
    real_dict, real_set = builtins.dict, builtins.set

    def counting_dict(*args, **kwargs):
        calls.append("dict")
        return real_dict(*args, **kwargs)

    def counting_set(*args, **kwargs):
        calls.append("set")
        return real_set(*args, **kwargs)

    state, empty = _state({"k": "q"}, {"g": True}), _state()  # (made before the counting starts)
    monkeypatch.setattr(match_mod, "dict", counting_dict, raising=False)
    monkeypatch.setattr(match_mod, "set", counting_set, raising=False)
    state.copy()
    empty.copy()
    monkeypatch.undo()
    assert calls == []


SOURCE = textwrap.dedent('''
    import math
    import torch
    from torch import nn


    class Attention(nn.Module):
        def __init__(self, dim):
            super().__init__()
            self.q = nn.Linear(dim, dim)
            self.k = nn.Linear(dim, dim)
            self.v = nn.Linear(dim, dim)

        def forward(self, x):
            q, k, v = self.q(x), self.k(x), self.v(x)
            scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))
            probs = scores.softmax(dim=-1)
            return probs @ v


    class NotAttention(nn.Module):
        def __init__(self, dim):
            super().__init__()
            self.q = nn.Linear(dim, dim)

        def forward(self, x):
            q = self.q(x)
            scores = q @ x.transpose(-2, -1)
            return scores.sum(dim=-1)
''')


def test_attention_found_and_look_alike_not():
    """The matcher with the cut copies still finds the attention and not the look-alike (a
    score product without softmax and value product)."""
    result = analyze(SOURCE, "model.py", load_rules(), None)
    findings = result.findings if hasattr(result, "findings") else result
    lines = {f.rule: f for f in findings}
    assert "ADP010" in lines
    attention_line = SOURCE.splitlines().index("class NotAttention(nn.Module):") + 1
    assert all(f.line < attention_line for f in findings if f.rule == "ADP010")


def test_bound_keys_are_the_bound_values_and_produced_keys():
    """3. ``_State.bound_keys``: the keys the variables hold (not stale or layer identities)
    and the produced keys, the produced set itself left as it was (the union made in place
    in the comprehension's set, not in ``produced``)."""
    state = _state()
    state.values.update({"w": ("l", "self.w"), "old": ("stale", "s", 1)})
    state.produced.add("p")
    produced = set(state.produced)
    assert state.bound_keys() == {"q", "t0", "p"}
    assert state.produced == produced and state.bound_keys() is not state.produced
