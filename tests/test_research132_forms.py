"""Forms found while checking the blind batch research132 (reinforcement learning, robotics
and world models: action-chunking policies, world-model trainers, RL network builders).  The
fixtures are ours.

- A trainer whose ``optim_kwargs`` parameter is dead on entry: the body begins by binding the
  same name to its own ``dict(lr=..., weight_decay=...)``, then builds the optimizer (a class
  parameter defaulting to ``AdamW``) with ``**optim_kwargs``.  The name being a parameter made
  the spread read as the caller's keywords (which might choose ``fused=``), so the call was
  left alone although what the caller passes reaches no use.
Near-misses: the parameter rebound only under an ``if`` (the caller's dict flows on the other
path), read before it is rebound, or rebound to a dict that spreads it; a caller's
``**optim_kwargs`` used as it is.
"""

from __future__ import annotations

import ast

import torch

from corpus_forms import finding_at, found, rules

from adopter.structure.literals import spread_keys
from adopter.synth import fix_text

TRAINER = """\
import torch
from torch.optim import AdamW


class Trainer:
    def __init__(self, model, learning_rate=3e-4, weight_decay=0.0, optim_klass=AdamW,
                 optim_kwargs: dict = dict()):
        optim_kwargs = dict(
            lr=learning_rate,
            weight_decay=weight_decay
        )
        self.model = model
        self.optim = optim_klass(model.parameters(), **optim_kwargs)

    def step(self, x):
        loss = self.model(x).pow(2).mean()
        loss.backward()
        self.optim.step()
        self.optim.zero_grad()
        return loss
"""


def test_a_parameter_rebound_first_to_a_literal_dict_passes_its_keys():
    assert finding_at(TRAINER, "ADP012", "self.optim = optim_klass(") is not None
    fixed = fix_text(TRAINER, "model.py", rules("ADP012")).text
    # the class is a parameter: the keyword is guarded on the default class
    assert fixed.count('{"fused": True} if optim_klass is AdamW else {}') == 1
    ast.parse(fixed)
    # the patched trainer runs: the fused AdamW step on the CPU updates the weights as the
    # unfused one does (float32, one step of a 4x4 Linear: tolerance of a few ulps)
    namespaces = []
    for code in (TRAINER, fixed):
        ns: dict = {}
        exec(compile(code, "model.py", "exec"), ns)
        namespaces.append(ns)
    torch.manual_seed(0)
    base = torch.nn.Linear(4, 4)
    x = torch.randn(8, 4)
    weights = []
    for ns in namespaces:
        model = torch.nn.Linear(4, 4)
        model.load_state_dict(base.state_dict())
        trainer = ns["Trainer"](model, learning_rate=1e-2)
        trainer.step(x)
        weights.append(model.weight.detach().clone())
    assert namespaces[1]["Trainer"](torch.nn.Linear(4, 4)).optim.defaults["fused"] is True
    assert torch.allclose(weights[0], weights[1], rtol=1e-5, atol=1e-6)
    assert not torch.equal(weights[0], base.weight.detach())


def test_the_caller_keywords_still_count_where_they_may_reach_the_call():
    under_if = TRAINER.replace("        optim_kwargs = dict(\n",
                               "        if not optim_kwargs:\n            optim_kwargs = dict(\n")
    under_if = under_if.replace("            lr=learning_rate,\n            weight_decay=weight_decay\n        )\n",
                                "                lr=learning_rate,\n                weight_decay=weight_decay\n"
                                "            )\n")
    ast.parse(under_if)
    assert not found(under_if, "ADP012")
    read_first = TRAINER.replace("        optim_kwargs = dict(\n",
                                 "        self.extra = len(optim_kwargs)\n        optim_kwargs = dict(\n")
    assert not found(read_first, "ADP012")
    merged = TRAINER.replace("optim_kwargs = dict(\n", "optim_kwargs = dict(\n            **optim_kwargs,\n")
    assert not found(merged, "ADP012")
    passed_on = TRAINER.replace("        optim_kwargs = dict(\n            lr=learning_rate,\n"
                                "            weight_decay=weight_decay\n        )\n", "")
    assert not found(passed_on, "ADP012")


def test_spread_keys_of_a_parameter_dead_on_entry():
    def keys(body: str):
        func = ast.parse(body).body[0]
        call = next(n for n in ast.walk(func) if isinstance(n, ast.Call) and n.keywords
                    and n.keywords[-1].arg is None)
        got = spread_keys(call.keywords[-1].value, func)
        return None if got is None else [(k, ast.unparse(v)) for k, v in got]

    assert keys("def f(p, lr, kw={}):\n kw = dict(lr=lr)\n return g(p, **kw)") == [("lr", "lr")]
    assert keys("def f(p, lr, kw={}):\n kw = {'lr': lr}\n kw['eps'] = 1e-8\n return g(p, **kw)") == [
        ("lr", "lr"), ("eps", "1e-08")]
    assert keys("def f(p, lr, kw={}):\n return g(p, **kw)") is None
    assert keys("def f(p, lr, kw={}):\n if lr:\n  kw = dict(lr=lr)\n return g(p, **kw)") is None
    assert keys("def f(p, lr, kw={}):\n h(kw)\n kw = dict(lr=lr)\n return g(p, **kw)") is None
    assert keys("def f(p, lr, kw={}):\n kw = dict(kw, lr=lr)\n return g(p, **kw)") is None
    assert keys("def f(p, lr, **kw):\n kw = dict(lr=lr)\n return g(p, **kw)") == [("lr", "lr")]
