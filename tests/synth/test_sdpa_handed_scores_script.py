"""ADP010's handed-scores form (the caller hands q and k to the helper that takes its scores,
:meth:`adopter.synth.sdpa._Attention._handed_scores`) in a module compiled with
``torch.jit.script``: the helper's new parameter is typed ``Optional[Tuple[Tensor, Tensor]]``
(TorchScript types an unannotated parameter as a Tensor), and where the helper's scores
parameter is annotated as a tensor the caller hands an empty tensor of q in their place (the
helper never reads it then; TorchScript refuses None for a Tensor).  The patched module is
written to a file, imported, scripted, and run beside the original (float64, eval and training,
with and without a mask).  Near-miss: a name that is not q or k going over with them leaves the
parameter untyped and the scores' argument None."""

from __future__ import annotations

import importlib.util
import textwrap

import pytest

torch = pytest.importorskip("torch")

from sdpa_modules import assert_same_step, load, sdpa_fixed  # noqa: E402

F64 = torch.float64

TYPED = textwrap.dedent('''
    import math
    from typing import Optional

    import torch
    from torch import nn


    class Split(nn.Module):
        def __init__(self, width: int, heads: int):
            super().__init__()
            self.heads = heads
            self.size = width // heads
            self.drop = nn.Dropout(0.0)

        def attend(self, values: torch.Tensor, scores: torch.Tensor,
                   keep: Optional[torch.Tensor] = None) -> torch.Tensor:
            if keep is not None:
                scores = scores.masked_fill(keep.unsqueeze(1).eq(0), -1e9)
            weights = torch.softmax(scores, dim=-1)
            weights = self.drop(weights)
            return torch.matmul(weights, values)

        def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                    keep: Optional[torch.Tensor] = None) -> torch.Tensor:
            scores = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(self.size)
            return self.attend(v, scores, keep)
''')


def _imported(tmp_path, source: str, name: str):
    path = tmp_path / f"{name}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_new_parameter_is_typed_and_the_scores_argument_a_tensor():
    fixed = sdpa_fixed(TYPED)
    assert "qk: Optional[Tuple[torch.Tensor, torch.Tensor]] = None" in fixed
    assert "from typing import Optional, Tuple" in fixed
    assert "return self.attend(v, q.new_empty(0), keep, qk=(q, k))" in fixed


@pytest.mark.parametrize("masked", [False, True])
def test_the_patched_module_scripts_and_computes_what_the_original_does(tmp_path, masked):
    original = _imported(tmp_path, TYPED, "typed_original")
    patched = _imported(tmp_path, sdpa_fixed(TYPED), "typed_patched")
    a = torch.jit.script(original.Split(8, 2))
    b = torch.jit.script(patched.Split(8, 2))
    eager = patched.Split(8, 2)
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 2, n, 4, dtype=F64) for n in (5, 7, 7))
    kwargs = {}
    if masked:
        keep = torch.ones(2, 5, 7, dtype=torch.long)
        keep[1, :, 5:] = 0
        kwargs["keep"] = keep
    for training in (False, True):
        for module in (a, b, eager):
            module.train(training)
        assert_same_step(a, b, [q, k, v], **kwargs)
        assert_same_step(a, eager, [q, k, v], **kwargs)


def test_an_other_name_handed_over_leaves_the_parameter_untyped():
    # near-miss: `import math as m` in the caller goes over with q and k (a module, not a tensor)
    source = TYPED.replace(
        "        scores = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(self.size)\n",
        "        import math as m\n"
        "        scores = torch.matmul(q, k.transpose(-2, -1)) / m.sqrt(self.size)\n")
    assert source != TYPED
    fixed = sdpa_fixed(source)
    assert "qk=None" in fixed and "Tuple" not in fixed
    assert "return self.attend(v, None, keep, qk=(q, k, m))" in fixed
    a, b = load(source, "original")["Split"](8, 2), load(fixed, "patched")["Split"](8, 2)
    torch.manual_seed(1)
    q, k, v = (torch.randn(2, 2, n, 4, dtype=F64) for n in (5, 7, 7))
    assert_same_step(a, b, [q, k, v])
