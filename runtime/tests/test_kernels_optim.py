"""adopter_kernels.fused_optimizer (ADP012's target) on CPU.

On CPU parameters the factory must build exactly the optimizer the code asked for.  The fused
branch is exercised on CPU too, by declaring CPU a fused device (torch has fused CPU kernels
since 2.4): the optimizer must then be built with ``fused=True`` and train to the same weights.
"""

from __future__ import annotations

import pytest
import torch

from adopter_kernels import fused_optimizer, optim
from adopter.ruleset import load_rules
from adopter.synth import fix_text

OPTIMIZERS = [
    (torch.optim.AdamW, dict(lr=1e-2, weight_decay=0.01)),
    (torch.optim.Adam, dict(lr=1e-2)),
    (torch.optim.SGD, dict(lr=0.1, momentum=0.9)),
]


def _model(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.GELU(), torch.nn.Linear(16, 4))


def _train(model, optimizer, steps=5):
    torch.manual_seed(1)
    for _ in range(steps):
        x = torch.randn(6, 8)
        loss = model(x).pow(2).mean()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    return [p.detach().clone() for p in model.parameters()]


@pytest.mark.parametrize("cls, kwargs", OPTIMIZERS, ids=lambda v: getattr(v, "__name__", ""))
def test_cpu_parameters_get_the_plain_optimizer(cls, kwargs):
    reference_model, model = _model(), _model()
    reference = cls(reference_model.parameters(), **kwargs)
    built = fused_optimizer(cls)(model.parameters(), **kwargs)  # a generator: read once
    assert type(built) is cls
    assert not built.defaults.get("fused")
    assert sum(len(g["params"]) for g in built.param_groups) == 4
    for a, b in zip(_train(reference_model, reference), _train(model, built)):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize("cls, kwargs", OPTIMIZERS, ids=lambda v: getattr(v, "__name__", ""))
def test_fused_branch_when_the_device_has_fused_kernels(cls, kwargs, monkeypatch):
    monkeypatch.setattr(optim, "FUSED_DEVICES", ("cpu",))
    reference_model, model = _model(), _model()
    reference = cls(reference_model.parameters(), **kwargs)
    built = fused_optimizer(cls)(model.parameters(), **kwargs)
    assert type(built) is cls and built.defaults["fused"] is True
    for a, b in zip(_train(reference_model, reference), _train(model, built)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_param_groups_with_generators_are_read_once(monkeypatch):
    monkeypatch.setattr(optim, "FUSED_DEVICES", ("cpu",))
    model = _model()
    groups = [
        {"params": (p for p in model[0].parameters()), "lr": 1e-3},
        {"params": model[2].weight},
    ]
    built = fused_optimizer(torch.optim.AdamW)(groups, lr=1e-2)
    assert [len(g["params"]) for g in built.param_groups] == [2, 1]
    assert built.param_groups[0]["lr"] == 1e-3 and built.defaults["fused"] is True


def test_an_explicit_choice_is_passed_on(monkeypatch):
    monkeypatch.setattr(optim, "FUSED_DEVICES", ("cpu",))
    model = _model()
    built = fused_optimizer(torch.optim.Adam)(model.parameters(), lr=1e-3, foreach=False)
    assert built.defaults["foreach"] is False and not built.defaults["fused"]
    built = fused_optimizer(torch.optim.Adam)(model.parameters(), lr=1e-3, differentiable=True)
    assert built.defaults["differentiable"] is True and not built.defaults["fused"]


def test_non_float_or_mixed_devices_do_not_fuse(monkeypatch):
    monkeypatch.setattr(optim, "FUSED_DEVICES", ("cuda",))
    assert not optim.fused_applies([torch.zeros(2, requires_grad=True)])
    assert not optim.fused_applies([])
    monkeypatch.setattr(optim, "FUSED_DEVICES", ("cpu",))
    assert optim.fused_applies([torch.zeros(2)])
    assert not optim.fused_applies([torch.zeros(2), torch.zeros(2, dtype=torch.int64)])


def test_bad_arguments_fail_as_the_optimizer_does():
    with pytest.raises(TypeError, match="iterable of Tensors"):
        fused_optimizer(torch.optim.SGD)(torch.zeros(2, requires_grad=True), lr=0.1)
    with pytest.raises(ValueError, match="Invalid learning rate"):
        fused_optimizer(torch.optim.SGD)(_model().parameters(), lr=-1.0)


def test_the_patched_training_code_trains_the_same():
    """The rule's before-example, patched by fix_text, run on CPU next to the original."""
    rule = next(r for r in load_rules() if r.id == "ADP012")
    example = next(e for e in rule.examples if e.after is not None and "def train" in e.before)
    patched = fix_text(example.before, "train.py", [rule]).text
    assert "fused_optimizer(torch.optim.AdamW)(model.parameters()" in patched
    results = []
    for text in (example.before, patched):
        namespace: dict = {}
        exec(compile(text, "train.py", "exec"), namespace)
        model = torch.nn.Linear(8, 3)
        torch.manual_seed(0)
        with torch.no_grad():
            for p in model.parameters():
                p.normal_()
        batches = [(torch.randn(4, 8), torch.randint(0, 3, (4,))) for _ in range(3)]
        namespace["train"](model, batches)
        results.append([p.detach().clone() for p in model.parameters()])
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
