"""Research-code forms found by computation (session 37, misses52).

- ADP015: an LM head built through a same-file helper that returns the layers it is handed run
  in order (``nn.Sequential(*layers)``, the one layer, or ``nn.Identity()``), the ``None``
  entries dropped first (``RMSNorm(d) if norm else None``): the helper's call is an
  nn.Sequential of the kept layers, its last one the vocabulary Linear.
- ADP010: queries-first scores upcast, filled and cast back before the softmax (fairseq-era
  ``s.float().masked_fill(m, -inf).type_as(s)``): found, and fixed where the cast goes back to
  the dtype of q, k or v (the softmax then computes in the fused call's dtype); any other
  target (``.half()``) is found and declined.
"""

from __future__ import annotations

import textwrap

import pytest

from adopter.synth import fix_text
from corpus_forms import finding_at, float64_pair, found, rules

_HELPER = '''
def exists(v):
    return v is not None


def Chain(*modules):
    modules = list(filter(exists, modules))
    count = len(modules)
    if count == 0:
        return nn.Identity()
    elif count == 1:
        return modules[0]
    return nn.Sequential(*modules)
'''


def _lm(helper: str = _HELPER, head: str = "Chain(Norm(dim) if not post_norm else None, nn.Linear(dim, num_tokens))"):
    return textwrap.dedent('''
        import torch
        import torch.nn.functional as F
        from torch import nn
        ''') + textwrap.dedent(helper) + textwrap.dedent(f'''

        class Norm(nn.Module):
            def __init__(self, dim):
                super().__init__()
                self.gamma = nn.Parameter(torch.ones(dim))

            def forward(self, x):
                return F.normalize(x, dim=-1) * self.gamma


        class LM(nn.Module):
            def __init__(self, num_tokens, dim, post_norm=False):
                super().__init__()
                self.token_emb = nn.Embedding(num_tokens, dim)
                self.body = nn.Linear(dim, dim)
                self.to_logits = {head}

            def forward(self, x, return_loss=False):
                if return_loss:
                    x, labels = x[:, :-1], x[:, 1:]
                x = self.body(self.token_emb(x))
                logits = self.to_logits(x)  # head
                if not return_loss:
                    return logits
                return F.cross_entropy(logits.transpose(1, 2), labels)
        ''')


def test_head_built_by_a_none_dropping_sequential_helper_is_found():
    assert finding_at(_lm(), "ADP015", "# head") is not None


def test_helper_filtering_with_a_comprehension_or_lambda_is_the_same_builder():
    comp = _HELPER.replace("list(filter(exists, modules))", "[m for m in modules if m is not None]")
    assert finding_at(_lm(comp), "ADP015", "# head") is not None
    lam = _HELPER.replace("filter(exists, modules)", "filter(lambda m: m is not None, modules)")
    assert finding_at(_lm(lam), "ADP015", "# head") is not None


def test_helper_that_keeps_none_is_no_sequential_of_the_optional_layer():
    # without the filter nn.Sequential keeps the None and calling it fails: not typed
    keeps = _HELPER.replace("    modules = list(filter(exists, modules))\n", "")
    assert found(_lm(keeps), "ADP015") == []
    # ... a plain list of layers is still a Sequential of them
    assert finding_at(_lm(keeps, "Chain(Norm(dim), nn.Linear(dim, num_tokens))"), "ADP015", "# head") is not None


def test_helper_filtering_by_another_test_or_returning_another_container_is_not_read():
    other_test = _HELPER.replace("return v is not None", "return v is not None and v.training")
    assert found(_lm(other_test), "ADP015") == []
    wrong_single = _HELPER.replace("return modules[0]", "return modules[-1]")
    assert found(_lm(wrong_single), "ADP015") == []
    module_list = _HELPER.replace("return nn.Sequential(*modules)", "return nn.ModuleList(modules)")
    assert found(_lm(module_list), "ADP015") == []


def test_helper_whose_last_layer_is_no_linear_is_no_lm_head():
    # the logits are the norm's output, not a Linear's
    assert found(_lm(head="Chain(nn.Linear(dim, num_tokens), Norm(num_tokens) if not post_norm else None)"),
                 "ADP015") == []


_RECAST = textwrap.dedent("""\
    import math
    import torch
    from torch import nn


    class PaddedAttention(nn.Module):
        def __init__(self, d=8, heads=2):
            super().__init__()
            self.qkv = nn.Linear(d, 3 * d)
            self.heads = heads
            self.out = nn.Linear(d, d)

        def forward(self, x, pad):
            b, n, _ = x.shape
            q, k, v = self.qkv(x).view(b, n, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
            s = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(q.size(-1))
            FILL
            p = PROBS
            o = torch.matmul(p, v)
            return self.out(o.transpose(1, 2).reshape(b, n, -1))
    """)
_FILL = "s = s.float().masked_fill(pad[:, None, None, :], float('-inf')).type_as(s)"


def _recast(fill: str = _FILL, probs: str = "s.softmax(-1)") -> str:
    return _RECAST.replace("FILL", fill).replace("PROBS", probs)


@pytest.mark.parametrize("fill, probs", [
    (_FILL, "s.softmax(-1)"),
    (_FILL.replace(".type_as(s)", ".type_as(q)"), "torch.softmax(s, dim=-1)"),
    (_FILL, "torch.softmax(s.float(), dim=-1).type_as(q)"),  # the softmax upcast again, cast back
])
def test_scores_cast_back_after_an_upcast_fill_fix_to_the_same_attention(fill, probs):
    import torch

    code = _recast(fill, probs)
    assert finding_at(code, "ADP010", "o = torch.matmul(p, v)") is not None
    result = fix_text(code, "model.py", rules("ADP010"))
    assert len(result.applied) == 1 and not result.skipped
    assert "scaled_dot_product_attention(" in result.text
    a, b = float64_pair(code, result.text, "PaddedAttention")
    x = torch.randn(3, 5, 8, dtype=torch.float64, requires_grad=True)
    x2 = x.detach().clone().requires_grad_(True)
    pad = torch.tensor([[False] * 5, [False] * 3 + [True] * 2, [False] + [True] * 4])  # no row fully padded
    out_a, out_b = a(x, pad), b(x2, pad)
    # the original rounds the float64 scores to float32 (``.float()``) before the fill: agreement
    # to float32's rounding of scores of size ~1 over 5 keys, not float64's
    torch.testing.assert_close(out_b, out_a, rtol=1e-5, atol=1e-6)
    out_a.square().sum().backward()
    out_b.square().sum().backward()
    torch.testing.assert_close(x2.grad, x.grad, rtol=1e-5, atol=1e-6)


def test_scores_cast_to_another_dtype_after_the_fill_are_found_not_fixed():
    code = _recast(_FILL.replace(".type_as(s)", ".half()"))
    assert finding_at(code, "ADP010", "o = torch.matmul(p, v)") is not None
    result = fix_text(code, "model.py", rules("ADP010"))
    assert not result.applied and len(result.skipped) == 1
    assert "dtype other than q's" in result.skipped[0][1]


def test_recast_scores_normalised_over_the_queries_are_no_site():
    assert found(_recast(probs="s.softmax(-2)"), "ADP010") == []


def _pair_in(code: str, fixed: str, dtype):
    """The original and fixed PaddedAttention in ``dtype``, the fixed one holding the original's state."""
    import torch

    original, patched = {}, {}
    exec(compile(code, "orig.py", "exec"), original)  # noqa: S102 (our own fixture)
    exec(compile(fixed, "fixed.py", "exec"), patched)  # noqa: S102
    torch.manual_seed(0)
    a = original["PaddedAttention"]().to(dtype)
    b = patched["PaddedAttention"]().to(dtype)
    b.load_state_dict(a.state_dict(), strict=True)
    return a, b


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_finite_fill_cast_back_builds_its_mask_as_the_original_fills(dtype):
    # (review39) a -1e9 fill in float32 cast back to float16 is -inf there; the mask built in
    # float16 directly cannot hold -1e9 (masked_fill raises), so the fix must fill in float32
    # and cast to q's dtype as the original does
    import torch

    dtype = getattr(torch, dtype)
    code = _recast(_FILL.replace("float('-inf')", "-1e9"))
    result = fix_text(code, "model.py", rules("ADP010"))
    assert len(result.applied) == 1 and not result.skipped
    a, b = _pair_in(code, result.text, dtype)
    torch.manual_seed(1)
    x = torch.randn(3, 5, 8).to(dtype)
    pad = torch.tensor([[False] * 5, [False] * 3 + [True] * 2, [False] + [True] * 4])  # no row fully padded
    with torch.no_grad():
        out_a, out_b = a(x, pad), b(x, pad)
    # the fused CPU kernel accumulates in float32 (half: ~1e-3 relative per rounding; bfloat16 ~8e-3)
    tol = {torch.float32: (1e-5, 1e-6), torch.float16: (2e-3, 2e-3), torch.bfloat16: (1.6e-2, 1.6e-2)}[dtype]
    torch.testing.assert_close(out_b, out_a, rtol=tol[0], atol=tol[1])


@pytest.mark.parametrize("rebinding", [
    "from itertools import filterfalse as filter",  # keeps the None entries, drops the layers
    "def len(values):\n    return 1",
    "list = tuple",
])
def test_helper_whose_file_rebinds_the_builtins_it_reads_is_not_read(rebinding):
    # (review39) list, filter and len are the builtins only where the file binds them to nothing else
    code = _lm().replace("from torch import nn\n", "from torch import nn\n" + rebinding + "\n", 1)
    assert rebinding in code
    assert found(code, "ADP015") == []
