"""How far apart two steps of a pattern may be: statements count where the match is."""

from __future__ import annotations

import textwrap

from adopter.engine import analyze
from adopter.ruleset import load_rules

HELPER_STEPS = 30  # well past the 16 statements two steps of a match may be apart

CODE = textwrap.dedent('''
    import torch
    from torch import nn


    def positional_bias(table):
    {body}
        return p


    class Attention(nn.Module):
        def __init__(self, dim):
            super().__init__()
            self.table = nn.Parameter(torch.randn(dim, dim))

        def forward(self, q, k, v):
            scores = q @ k.transpose(-1, -2)
            {between}
            attn = (scores + rel).softmax(dim=-1)
            return attn @ v
''')


def _found(between: str, steps: int) -> tuple[list[int], int]:
    """The softmax's line once per ADP010 finding that covers it, and that line."""
    body = "\n".join(["    p = table"] + [f"    p = torch.tanh(p) * {i}" for i in range(steps)])
    code = CODE.format(body=body, between=between)
    rules = [r for r in load_rules() if r.id == "ADP010"]
    softmax = next(n for n, line in enumerate(code.splitlines(), 1) if ".softmax(" in line)
    return [softmax for f in analyze(code, "model.py", rules).findings if f.line <= softmax <= f.end_line], softmax


def test_a_helper_inlined_between_two_steps_counts_as_its_call():
    # the relative-position term of Transformer-XL-style attention, computed by a helper
    # between the scores and their softmax (enformer's get_positional_embed is ~30 operations)
    found, softmax = _found("rel = positional_bias(self.table)", HELPER_STEPS)
    assert found == [softmax]


def test_the_same_helper_with_a_short_body_is_found_too():
    found, softmax = _found("rel = positional_bias(self.table)", 2)
    assert found == [softmax]
