"""What the SDPA tests share: fix a source with ADP010 alone, load a source as a module
namespace, and count the calls the patched module makes to scaled_dot_product_attention
(so that a fallback cannot pass for the fused path).  No torch import here: the test files
skip themselves without torch before importing this."""

from __future__ import annotations

from adopter.ruleset import load_rules
from adopter.synth import fix_text

RULES = [r for r in load_rules() if r.id == "ADP010"]


def load(source: str, name: str) -> dict:
    namespace: dict = {"__name__": name}
    exec(compile(source, f"<{name}>", "exec"), namespace)
    return namespace


def sdpa_fixed(source: str) -> str:
    """``source`` fixed with ADP010 alone: exactly one rewrite, and a second fix changes nothing."""
    result = fix_text(source, "attention.py", RULES)
    assert result.error is None
    assert [f.rule for f in result.applied] == ["ADP010"], result.skipped
    assert fix_text(result.text, "attention.py", RULES).text == result.text  # a second fix is a no-op
    return result.text


class Counter:
    """Counts the calls of ``scaled_dot_product_attention`` made through ``namespace``."""

    def __init__(self, namespace: dict):
        self.calls = 0
        inner = namespace["scaled_dot_product_attention"]

        def counted(*args, **kwargs):
            self.calls += 1
            return inner(*args, **kwargs)

        namespace["scaled_dot_product_attention"] = counted


def assert_same_step(original, patched, inputs, **kwargs) -> None:
    """One forward and backward of both modules on copies of ``inputs`` (tensors; the floating
    ones get gradients): outputs, the inputs' gradients and, when both are modules, every
    parameter's gradient must match (``torch.testing``'s defaults for the dtype: the tests run
    in float64 over a handful of keys and channels).  The backward is of a fixed random
    projection of the outputs, so every output element counts."""
    import torch

    def copies():
        return [t.detach().clone().requires_grad_(t.is_floating_point()) for t in inputs]

    args_a, args_b = copies(), copies()
    out_a, out_b = original(*args_a, **kwargs), patched(*args_b, **kwargs)
    torch.testing.assert_close(out_b, out_a)
    weight = torch.randn_like(out_a)
    (weight * out_a).sum().backward()
    (weight * out_b).sum().backward()
    for a, b in zip(args_a, args_b):
        if a.requires_grad:
            torch.testing.assert_close(b.grad, a.grad)
    if isinstance(original, torch.nn.Module) and isinstance(patched, torch.nn.Module):
        grads = dict(original.named_parameters())
        for name, param in patched.named_parameters():
            torch.testing.assert_close(param.grad, grads[name].grad)


def fused_calls_of_equal_steps(source: str, x, mask) -> int:
    """Fix ``source`` (its ``Heads`` class), load original and patched in float64 with the same
    weights, check one training and one eval step of each alike (:func:`assert_same_step`, with
    ``mask``), and return the fused calls the patched module made."""
    import torch

    fixed = sdpa_fixed(source)
    original, patched = load(source, "original"), load(fixed, "patched")
    counter = Counter(patched)
    torch.manual_seed(0)
    a = original["Heads"]().to(torch.float64)
    b = patched["Heads"]().to(torch.float64)
    b.load_state_dict(a.state_dict())
    for training in (False, True):
        a.train(training)
        b.train(training)
        assert_same_step(a, b, [x], mask=mask)
    return counter.calls


def assert_moved_change_alters_output(source: str, between: str) -> None:
    """The decline a test asserts for a change ``between`` the steps is not idle: moved before
    the scores (where a fused call at the product would read q and k), the change alters the
    output of ``source``'s ``Heads`` (float64, eval, the same weights)."""
    import torch

    scores = "        s = torch.matmul(q, k.transpose(-2, -1)) * q.shape[-1] ** -0.5\n"
    block = "".join(" " * 8 + line + "\n" for line in between.split("; "))
    moved = source.replace(block, "").replace(scores, block + scores)
    assert moved != source
    original, changed = load(source, "original"), load(moved, "moved")
    torch.manual_seed(0)
    a = original["Heads"]().to(torch.float64).eval()
    b = changed["Heads"]().to(torch.float64).eval()
    b.load_state_dict(a.state_dict())
    x = torch.randn(2, 5, 16, dtype=torch.float64)
    with torch.no_grad():
        assert not torch.allclose(a(x), b(x)), between
