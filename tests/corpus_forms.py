"""What the blind-batch form tests (``tests/test_corpus*_forms.py``) ask of a fixture: the
findings one rule reports on it, and whether one of them covers the line holding a needle."""

from __future__ import annotations

import textwrap

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


def assert_bn_fold_matches(original_code: str, fixed_code: str, cls: str, args: tuple, shape: tuple,
                           atol: float = 1e-10) -> None:
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
            if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2)
    b.load_state_dict(a.state_dict(), strict=True)
    a.eval()
    b.eval()
    x = torch.randn(*shape, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(b(x), a(x), rtol=0, atol=atol)


def load_fixture(source: str, name: str):
    """What ``name`` is bound to once the fixture ``source`` (ours, or its fix) is run."""
    namespace: dict = {}
    exec(compile(source, "<fixture>", "exec"), namespace)  # noqa: S102 (our own fixture)
    return namespace[name]


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


# Norm classes a Block's ``norm_layer`` default may name (NORM), a conv -> norm pair in its
# forward built as NORM_OF(c): a BatchNorm subclass with its own FORWARD, one with none, a
# GroupNorm subclass and a module of its own (cnnsmall's and cnnfix33's forms).
NORM_SUBCLASSES = textwrap.dedent("""\
    import torch
    from torch import nn
    from torch.nn.modules.batchnorm import _BatchNorm


    class SyncBN(_BatchNorm):
        def _check_input_dim(self, x):
            if x.dim() != 4:
                raise ValueError("expected 4-D input")

        FORWARD


    class FrozenBN(nn.BatchNorm2d):
        pass


    class ChannelNorm(nn.GroupNorm):
        def __init__(self, c):
            super().__init__(1, c)


    class OwnNorm(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.scale = nn.Parameter(torch.ones(1, c, 1, 1))

        def forward(self, x):
            return x * self.scale


    class Block(nn.Module):
        def __init__(self, c, norm_layer=NORM):
            super().__init__()
            self.conv = nn.Conv2d(c, c, 3, padding=1, bias=False)
            self.bn = NORM_OF(c)

        def forward(self, x):
            return self.bn(self.conv(x))  # pair
""")


def edit(text: str, old: str, new: str) -> str:
    """``text`` with ``old`` replaced (which must be there: a near-miss that edits nothing tests nothing)."""
    assert old in text, old
    return text.replace(old, new)


def dropout_add_norm(dropout: str) -> str:
    """A block that drops out a Linear's output with the module ``dropout`` builds (a dropout of
    the fixture's own), adds the residual and layer-normalises: ADP005's site, to follow the
    dropout module's class in a fixture."""
    return textwrap.dedent(f"""\


        class Output(nn.Module):
            def __init__(self, d, p):
                super().__init__()
                self.dense = nn.Linear(d, d)
                self.dropout = {dropout}
                self.norm = nn.LayerNorm(d)

            def forward(self, h, residual):
                h = self.dense(h)
                h = self.dropout(h)
                return self.norm(h + residual)
    """)


def assert_reported_not_fixed(code: str, rule: str, needle: str, why: str) -> None:
    """``rule`` is found at the line holding ``needle`` as the code's one finding of it, planned
    as not fixable for a reason that says ``why``, and the fixer leaves the code as it is."""
    from adopter.synth import fix_text
    from adopter.synth.fixable import plan_findings

    assert finding_at(code, rule, needle) is not None
    planned = plan_findings(analyze(code, "model.py", rules(rule)), code, "model.py")
    assert len(planned) == 1 and not planned[0].fixable
    assert why in planned[0].not_fixable
    assert fix_text(code, "model.py", rules(rule)).text == code


def sdpa_fixed(source: str) -> str:
    """The text ``fix`` writes for a fixture whose one finding, ADP010's, is applied."""
    from adopter.synth import fix_text

    result = fix_text(source, "model.py", rules("ADP010"))
    assert [f.rule for f in result.applied] == ["ADP010"], result.skipped
    return result.text


class FusedCalls:
    """Counts the fused calls a patched module makes (through its module namespace)."""

    def __init__(self, module):
        self.calls = 0
        namespace = type(module).forward.__globals__
        inner = namespace["scaled_dot_product_attention"]

        def counted(*args, **kwargs):
            self.calls += 1
            return inner(*args, **kwargs)

        namespace["scaled_dot_product_attention"] = counted
