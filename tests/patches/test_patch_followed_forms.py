"""The rewrites of forms the analysis learnt to follow compute what the original did, on real
torch modules: an activation from a same-file table or dict factory, a same-file Linear
subclass that does not override forward (ADP006), and attention scores written with
``torch.baddbmm(..., beta=0, alpha=scale)`` (ADP010), a BatchNorm1d over ``flatten(0, 1)`` of a
Linear's output (ADP008), each in training and in eval mode.

Each case is the rule's own before-example, patched by the real ``fix_text`` and run side by
side with the original in float64 (so the tolerance is float64 rounding of a few reductions
of length 16), forward and backward.
"""

from __future__ import annotations

import pytest
import torch

from adopter.ruleset import load_rules
from adopter.synth import fix_text

RULES = {r.id: r for r in load_rules()}
# (rule, example, the activation keys its constructor may be given: the kernel runs GELU fused
# and anything else as written)
CASES = [
    ("ADP006", "an activation class taken from a same-file table by a key chosen at run time", ("gelu", "relu")),
    ("ADP006", "a same-file factory returning an activation picked from a dict by its argument", ("gelu", "tanh")),
    ("ADP006", "a same-file subclass of nn.Linear that does not override forward is a Linear", (None,)),
    ("ADP008", "BatchNorm1d over the tokens of every image (flatten(0, 1)), then the Linear output's shape back",
     (None,)),
    ("ADP010", "scores by torch.baddbmm(empty, q, k^T, beta=0, alpha=scale): the ignored input, a scaled product",
     (None,)),
]
RUNS = [(r, n, act) for r, n, acts in CASES for act in acts]
DIM = 16


def _example(rule_id: str, name: str):
    return next(e for e in RULES[rule_id].examples if e.name == name)


def _load(text: str, name: str) -> dict:
    namespace: dict = {"__name__": name}
    exec(compile(text, f"<{name}>", "exec"), namespace)
    return namespace


def _inputs(rule_id: str) -> list[torch.Tensor]:
    if rule_id == "ADP010":
        return [torch.randn(6, 5, DIM, dtype=torch.float64) for _ in range(3)]
    return [torch.randn(3, 5, DIM, dtype=torch.float64)]


@pytest.mark.parametrize("rule_id, name, act", RUNS, ids=[f"{r}-{n[:40]}-{a}" for r, n, a in RUNS])
@pytest.mark.parametrize("training", [True, False])
def test_patched_module_matches(rule_id, name, act, training):
    example = _example(rule_id, name)
    patched = fix_text(example.before, "model.py", [RULES[rule_id]])
    assert [f.rule for f in patched.applied] == [rule_id], patched.skipped
    original, new = _load(example.before, "original"), _load(patched.text, "patched")
    cls_name = next(n for n, v in original.items() if isinstance(v, type) and issubclass(v, torch.nn.Module)
                    and v.__module__ == "original" and "forward" in v.__dict__ and n not in ("TracedLinear",))
    kwargs = {"act": act} if act is not None else {}
    torch.manual_seed(0)
    old = original[cls_name](DIM, **kwargs).double()
    fresh = new[cls_name](DIM, **kwargs).double()
    if not training:  # eval: BatchNorm with running statistics (made non-trivial), folded by the kernel
        with torch.no_grad():
            for name_, buffer in old.named_buffers():
                if name_.endswith("running_mean"):
                    buffer.normal_()
                elif name_.endswith("running_var"):
                    buffer.uniform_(0.5, 2.0)
    fresh.load_state_dict(old.state_dict(), strict=True)
    old.train(training)
    fresh.train(training)
    inputs = _inputs(rule_id)
    a = [x.clone().requires_grad_(True) for x in inputs]
    b = [x.clone().requires_grad_(True) for x in inputs]
    y_old, y_new = old(*a), fresh(*b)
    torch.testing.assert_close(y_new, y_old, rtol=1e-10, atol=1e-12)
    y_old.sum().backward()
    y_new.sum().backward()
    for ga, gb in zip(a, b):
        torch.testing.assert_close(gb.grad, ga.grad, rtol=1e-10, atol=1e-12)
