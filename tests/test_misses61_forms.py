"""Research misses left after sessions 39-40, read by what the code computes (session 41,
helper misses61).  The fixtures are ours.

- An inlined helper testing its mask parameter against None (earthformer's
  ``masked_softmax(score, mask)``: ``if mask is not None:`` re-masks the probabilities,
  ``softmax(...) * mask``; the ``else`` arm is a plain softmax).  At a call handing it a value
  that is never None (``F.pad(...)`` of the mask, a name bound once to a same-file function
  whose every return is a tensor expression) the test goes one way, and the plain arm is no
  attention that call runs: no ADP010 finding there.  Near-misses that keep the finding: a mask
  bound to None on one branch, a caller's own parameter, a same-file function that may return
  None, a name bound by unpacking.
"""

from __future__ import annotations

import ast
import textwrap

import torch
from adopter.structure import never_none
from corpus_forms import found

REMASKED = textwrap.dedent("""\
    import torch
    import torch.nn.functional as F
    from torch import nn


    def remasked_softmax(score, mask):
        if mask is not None:
            score = score.masked_fill(torch.logical_not(mask), -1e18)
            weights = torch.softmax(score, dim=-1) * mask
        else:
            weights = torch.softmax(score, dim=-1)
        return weights


    def window_mask(n, device):
        keep = torch.ones(n, n, device=device)
        allowed = keep.tril() == 1
        allowed = allowed.reshape(1, 1, n, n)
        return allowed


    def maybe_mask(n, device, use):
        if use:
            return torch.ones(n, n, device=device) == 1
        return None


    class Attention(nn.Module):
        def __init__(self, dim, extra, padding):
            super().__init__()
            self.qkv = nn.Linear(dim, 3 * dim)
            self.drop = nn.Dropout(0.1)
            self.extra = extra
            self.padding = padding

        def forward(self, x, mask):
            q, k, v = self.qkv(x).chunk(3, dim=-1)
            score = q @ k.transpose(-2, -1)
            MASK_LINES
            probs = remasked_softmax(score, mask=MASK_ARG)
            probs = self.drop(probs)
            return probs @ v
""")


def _attention(mask_lines: str, mask_arg: str) -> str:
    return REMASKED.replace("MASK_LINES", mask_lines.replace("\n", "\n        ")).replace("MASK_ARG", mask_arg)


def test_padded_mask_is_never_none_the_plain_arm_is_not_run():
    code = _attention('padded = F.pad(mask, (0, self.extra), "constant", 1)', "padded")
    assert found(code, "ADP010") == []


def test_mask_from_a_same_file_function_returning_tensors_is_never_none():
    code = _attention("allowed = window_mask(x.shape[-2], x.device)", "allowed")
    assert found(code, "ADP010") == []


def test_mask_bound_to_none_on_one_branch_keeps_the_plain_arm():
    code = _attention('if self.padding == "ignore":\n    keep = torch.ones(x.shape[-2], device=x.device) == 1\n'
                      "else:\n    keep = None", "keep")
    [finding] = found(code, "ADP010")
    assert finding.line == code.splitlines().index("        weights = torch.softmax(score, dim=-1)") + 1


def test_caller_parameter_or_function_that_may_return_none_keeps_the_plain_arm():
    for lines, arg in (("pass", "mask"),
                       ("allowed = maybe_mask(x.shape[-2], x.device, self.extra > 0)", "allowed"),
                       ("allowed, other = window_mask(2, x.device), None", "allowed"),
                       ("for allowed in (mask,):\n    pass", "allowed")):
        assert len(found(_attention(lines, arg), "ADP010")) == 1, lines


def _never_none(source: str, expr: str) -> bool:
    module = ast.parse(textwrap.dedent(source))
    functions = {f.name: f for f in module.body if isinstance(f, ast.FunctionDef)}
    resolve = {"F.pad": "torch.nn.functional.pad", "torch.ones": "torch.ones"}.get
    return never_none.never_none(ast.parse(expr, mode="eval").body, functions["caller"],
                                 lambda e: resolve(ast.unparse(e)), functions)


def test_never_none_reads_bindings_exactly():
    assert _never_none("def caller(x):\n    m = torch.ones(3)\n    m = m.reshape(1, 3)\n", "m")
    assert not _never_none("def caller(x):\n    m = torch.ones(3)\n    m = m.item()\n", "m")
    assert not _never_none("def caller(x):\n    m = torch.ones(3)\n    del m\n    m = x\n", "m")
    assert not _never_none("def caller(x):\n    m = torch.ones(3)\n    with x as m:\n        pass\n", "m")
    assert not _never_none("def f():\n    if x:\n        return torch.ones(2)\n\ndef caller(x):\n    m = f()\n", "m")
    assert _never_none("def f():\n    return torch.ones(2) == 1\n\ndef caller(x):\n    m = f()\n", "m")
    assert not _never_none("def f():\n    return torch.ones(2) == 1\n\ndef caller(f):\n    m = f()\n", "m")
    assert _never_none("def caller(x):\n    pass\n", "F.pad(x, (0, 1))")
    assert not _never_none("def caller(x):\n    pass\n", "x.get(1)")


def test_remasked_arm_differs_from_the_plain_softmax_on_a_fully_masked_row():
    # why the re-masking arm is no SDPA form (GUIDE: re-masking after softmax): a row whose
    # every key is masked gets zeros there, uniform weights from the plain softmax
    score = torch.randn(2, 4, dtype=torch.float64)
    mask = torch.tensor([[1, 1, 0, 0], [0, 0, 0, 0]], dtype=torch.float64)
    filled = score.masked_fill(torch.logical_not(mask), -1e18)
    remasked = torch.softmax(filled, dim=-1) * mask
    plain = torch.softmax(filled, dim=-1)
    assert torch.equal(remasked[1], torch.zeros(4, dtype=torch.float64))
    assert torch.allclose(plain[1], torch.full((4,), 0.25, dtype=torch.float64))
    assert torch.allclose(remasked[0], plain[0])


def _with_module_code(module_code: str, mask_lines: str) -> str:
    """The attention above with ``module_code`` before its class (a second same-file function)."""
    code = _attention(mask_lines, "allowed")
    return code.replace("class Attention(", textwrap.dedent(module_code) + "\n\nclass Attention(", 1)


def test_function_a_call_may_not_run_keeps_the_plain_arm():
    # names.functions keeps the last ``def`` seen: a decorator, a conditional redefinition or
    # a later module-level rebinding may make the name call something returning None
    returns_mask = "def full_mask(n, device):\n    return torch.ones(n, n, device=device) == 1\n"
    returns_none = "def full_mask(n, device):\n    return None\n"
    call = "allowed = full_mask(x.shape[-2], x.device)"
    assert found(_with_module_code(returns_mask, call), "ADP010") == []
    for module_code in ("def gone(f):\n    return lambda *a: None\n\n\n@gone\n" + returns_mask,
                        returns_none + "\n\nif torch.cuda.is_available():\n"
                        + textwrap.indent(returns_mask, "    "),
                        returns_mask + "\n\nfull_mask = lambda n, device: None\n",
                        returns_mask + "\n\nfor full_mask in (print,):\n    pass\n"):
        assert len(found(_with_module_code(module_code, call), "ADP010")) == 1, module_code


def test_local_bound_by_another_form_keeps_the_plain_arm():
    # ``case ... as``, an import, ``except ... as`` bind the name as surely as an assignment
    padded = "allowed = F.pad(mask, (0, 1))\n"
    for later in ("match self.padding:\n    case None as allowed:\n        pass",
                  "if self.padding is None:\n    from os import sep as allowed",
                  "try:\n    pass\nexcept ValueError as allowed:\n    pass"):
        assert len(found(_attention(padded + later, "allowed"), "ADP010")) == 1, later
    assert _never_none("def caller(x):\n    m = torch.ones(3)\n    def inner(m):\n        pass\n", "m") is False


def test_a_helper_adding_a_never_none_term_in_place_keeps_its_finding():
    """The way taken updates the scores in place (``x += extra``): the test is not decided and
    both ways read as before, where the fixer reads the helper's adds off the call's arguments
    (fix23) -- deciding it lost the finding (the lead's clean clone, session 41)."""
    import test_fix23_probs_helper as fix23
    code = fix23.HEAD + fix23.HELPER + fix23.CALLER.replace(
        "extra = self.pair_proj(pair).permute(0, 3, 1, 2)", "extra = torch.zeros(b, 1, n, n)")
    assert "torch.zeros(b, 1, n, n)" in code
    assert found(code, "ADP010")
    assert fix23._fixed(code) != code
