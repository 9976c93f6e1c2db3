"""ADP012's patch (``fused=True``) trains as the original does, also when the parameters move
after the optimizer was built (PyTorch >= 2.4 has fused Adam, AdamW and SGD kernels on CPU).

The rule's examples are patched by ``fix_text`` and run next to the originals on CPU; the
fused step is checked to be the one that ran (``_fused_*`` of torch.optim), and the patch
declares the torch floor that makes ``fused=True`` valid on CPU.
"""

from __future__ import annotations

import pytest
import torch

from adopter.engine import analyze
from adopter.ruleset import load_rules
from adopter.synth import fix_text

RULE = next(r for r in load_rules() if r.id == "ADP012")
# the optimizer, its arguments, the aten operator of its fused step
OPTIMIZERS = [
    (torch.optim.AdamW, dict(lr=1e-2, weight_decay=0.01), "aten::_fused_adamw_"),
    (torch.optim.Adam, dict(lr=1e-2, amsgrad=True), "aten::_fused_adam_"),
    (torch.optim.SGD, dict(lr=0.1, momentum=0.9, nesterov=True), "aten::_fused_sgd_"),
]


def _model(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.GELU(), torch.nn.Linear(16, 4))


def _train(model, optimizer, dtype, steps=4):
    torch.manual_seed(1)
    for _ in range(steps):
        loss = model(torch.randn(6, 8, dtype=dtype)).pow(2).mean()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    return [p.detach().clone() for p in model.parameters()]


@pytest.mark.parametrize("cls, kwargs, operator", OPTIMIZERS, ids=lambda v: getattr(v, "__name__", ""))
def test_fused_step_runs_after_the_parameters_moved(cls, kwargs, operator):
    """Built over float32 parameters that ``model.double()`` then replaces in place, as
    ``model.to(device)`` / ``accelerator.prepare()`` do after the optimizer exists: the fused
    kernel (seen by the profiler) runs on the moved parameters and trains to the for-loop's
    weights."""
    reference_model, model = _model(), _model()
    reference = cls(reference_model.parameters(), **kwargs)
    patched = cls(model.parameters(), **kwargs, fused=True)
    reference_model.double()
    model.double()
    expected = _train(reference_model, reference, torch.float64)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profile:
        got = _train(model, patched, torch.float64)
    for a, b in zip(expected, got):
        torch.testing.assert_close(b, a)
    steps = [e for e in profile.events() if e.name == operator]
    assert len(steps) == 4 and patched.param_groups[0]["params"][0].dtype == torch.float64


def _run(text: str):
    namespace: dict = {"__name__": "patched"}
    exec(compile(text, "train.py", "exec"), namespace)
    return namespace


def test_the_patched_training_function_trains_the_same():
    example = next(e for e in RULE.examples if e.after is not None and "def train" in e.before)
    patched = fix_text(example.before, "train.py", [RULE])
    assert patched.text == example.after and patched.requirements == {"torch>=2.4"}
    results = []
    for text in (example.before, patched.text):
        model = torch.nn.Linear(8, 3)
        with torch.no_grad():
            torch.manual_seed(0)
            for p in model.parameters():
                p.normal_()
        torch.manual_seed(2)
        batches = [(torch.randn(4, 8), torch.randint(0, 3, (4,))) for _ in range(3)]
        _run(text)["train"](model, batches)
        results.append([p.detach().clone() for p in model.parameters()])
    for a, b in zip(*results):
        torch.testing.assert_close(b, a)


def test_configure_optimizers_and_main_are_found_though_no_forward_reaches_them():
    for example in RULE.examples:
        if example.after is None:
            continue
        found = analyze(example.before, "m.py", [RULE]).findings
        assert len(found) == 1, example.name
    lightning = next(e for e in RULE.examples if "configure_optimizers" in e.before)
    module = _run(fix_text(lightning.before, "m.py", [RULE]).text)
    optimizer = module["Classifier"](4, 2).configure_optimizers()
    assert type(optimizer) is torch.optim.Adam and optimizer.defaults["fused"] is True


def test_other_rules_still_see_only_the_model():
    """The file scope is ADP012's own: a softmax in a function no forward reaches stays
    unreported by a model-scope rule."""
    softmax = next(r for r in load_rules() if r.id == "ADP004")
    text = (
        "import torch\nfrom torch import nn\n\n\nclass M(nn.Module):\n    def forward(self, x):\n        return x\n\n"
        "    def sample(self, logits):\n        return torch.nn.functional.softmax(logits, dim=-1)\n"
    )
    assert analyze(text, "m.py", [softmax]).findings == []


def test_a_class_chosen_at_run_time_gets_fused_only_when_it_is_the_fused_one():
    """``optim_klass = RMSprop if use_rmsprop else Adam``: the patched call builds a fused Adam
    that trains (float64) to the unfused Adam's weights, and still builds RMSprop, which has no
    ``fused`` argument (passing it would raise a TypeError)."""
    example = next(e for e in RULE.examples if e.after is not None and "optim_klass" in e.before)
    patched = fix_text(example.before, "train.py", [RULE])
    assert patched.text == example.after
    original, fixed = _run(example.before)["build"], _run(patched.text)["build"]
    for use_rmsprop in (False, True):
        reference_model, model = _model().double(), _model().double()
        reference, optimizer = original(reference_model, 1e-2, use_rmsprop), fixed(model, 1e-2, use_rmsprop)
        assert type(optimizer) is type(reference)
        assert optimizer.defaults.get("fused") is (None if use_rmsprop else True)
        for a, b in zip(_train(reference_model, reference, torch.float64), _train(model, optimizer, torch.float64)):
            torch.testing.assert_close(b, a)
