"""What the blind-batch form tests (``tests/test_corpus*_forms.py``) ask of a fixture: the
findings one rule reports on it, and whether one of them covers the line holding a needle."""

from __future__ import annotations

from adopter.engine import analyze
from adopter.ruleset import load_rules, select_rules

RULES = load_rules()


def findings(code: str, rule: str):
    return analyze(code, "model.py", select_rules(RULES, [rule])).findings


def rules(*ids):
    """The loaded rules with these ids (for ``fix_text``)."""
    return select_rules(RULES, list(ids))


def line_of(code: str, needle: str) -> int:
    return next(n for n, text in enumerate(code.splitlines(), 1) if needle in text)


def found(code: str, rule: str, path: str = "model.py") -> list:
    """The findings of ``rule`` alone on ``code`` analysed as ``path``."""
    return [f for f in analyze(code, path, rules(rule)).findings if f.rule == rule]


def finding_at(code: str, rule: str, needle: str):
    """The finding of ``rule`` whose lines cover the line holding ``needle`` (None if none)."""
    line = line_of(code, needle)
    return next((f for f in found(code, rule) if f.line <= line <= f.end_line), None)


def covered(code: str, needle: str, rule: str) -> bool:
    line = next(n for n, text in enumerate(code.splitlines(), 1) if needle in text)
    return any(f.line <= line <= f.end_line for f in findings(code, rule))


def assert_bn_fold_matches(original_code: str, fixed_code: str, cls: str, args: tuple, shape: tuple) -> None:
    """The fixed module computes what the original does in eval mode, in float64, with
    BatchNorm running statistics drawn at random (fresh ones fold to nearly nothing): the
    fixed class takes the original's state dict strictly, then both see one random input."""
    import torch

    original, patched = {}, {}
    exec(compile(original_code, "orig.py", "exec"), original)  # noqa: S102 (our own fixture)
    exec(compile(fixed_code, "fixed.py", "exec"), patched)  # noqa: S102
    torch.manual_seed(0)
    a = original[cls](*args).double()
    b = patched[cls](*args).double()
    with torch.no_grad():
        for m in a.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2)
    b.load_state_dict(a.state_dict(), strict=True)
    a.eval()
    b.eval()
    x = torch.randn(*shape, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(b(x), a(x), rtol=0, atol=1e-10)


def float64_pair(original_code: str, fixed_code: str, cls: str, **kwargs):
    """The class ``cls`` built from the original and from the fixed code (torch's seed 0,
    ``kwargs`` to both), in float64, the fixed one holding the original's state dict strictly:
    a pair whose outputs and gradients a form test compares."""
    import torch

    original, patched = {}, {}
    exec(compile(original_code, "orig.py", "exec"), original)  # noqa: S102 (our own fixture)
    exec(compile(fixed_code, "fixed.py", "exec"), patched)  # noqa: S102
    torch.manual_seed(0)
    a = original[cls](**kwargs).double()
    b = patched[cls](**kwargs).double()
    b.load_state_dict(a.state_dict(), strict=True)
    return a, b
