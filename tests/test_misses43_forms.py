"""The dev corpus's misses, read by their computation (session 34, helper misses43).  The
fixtures are ours.

- ADP010 (any rule): a module's public method over tensors it is handed, that uses its module
  for settings alone (``def attend(self, q, k, v, mask)``: no call through ``self``, no
  attribute set) and that nothing in the file calls, is the module's API as a public
  module-level function nothing calls is the file's: its code runs where other files call it.
  Near-misses: such a method whose softmax is renormalised, a sampling method that calls the
  module itself (``self(idx)``), a private one (dead code: ``test_structure``'s ruling, kept),
  and a private helper that forward does call (inlined there: one site, not two).
"""

from __future__ import annotations

import textwrap

from corpus_forms import found, line_of

TENSOR_METHOD = textwrap.dedent('''
    import math

    import torch
    from torch import nn


    class SelfAttention(nn.Module):
        def __init__(self, dim, heads):
            super().__init__()
            self.heads = heads
            self.head_dim = dim // heads
            self.to_qkv = nn.Linear(dim, dim * 3)
            self.out = nn.Linear(dim, dim)

        def forward(self, x):
            b, n, d = x.shape
            q, k, v = self.to_qkv(x).view(b, n, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
            y = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
            return self.out(y.transpose(1, 2).reshape(b, n, d))

        def attend(self, q, k, v, mask):
            scores = (q @ k.transpose(-1, -2)) / math.sqrt(self.head_dim)
            if mask is not None:
                scores = scores + mask
            scores = torch.softmax(scores, dim=-1).type_as(v)
            return scores @ v
''')

SOFTMAX = "softmax("


def _site(code: str, needle: str = SOFTMAX) -> bool:
    line = line_of(code, needle)
    return any(f.line <= line <= f.end_line for f in found(code, "ADP010"))


def test_a_method_over_the_tensors_it_is_handed_that_nothing_calls():
    assert _site(TENSOR_METHOD)


def test_only_a_method_with_two_required_operands_is_read():
    # Near miss: a public settings-only method whose one required argument is ids and whose
    # others are optional settings (a generation helper returning a dict) is not a root; the
    # attention method over q, k, v and mask is
    from adopter.engine import parse
    from adopter.structure.model import module_structure

    code = TENSOR_METHOD + textwrap.dedent('''

        def prepare_inputs(self, ids, past=None, mask=None):
            if past is not None:
                ids = ids[:, -1:]
            return {"ids": ids, "past": past, "mask": mask}
    ''').replace("\n", "\n    ")
    roots = module_structure(parse(code, "model.py"), None, code, "model.py").classes["SelfAttention"].roots
    assert "attend" in roots and "prepare_inputs" not in roots


def test_the_same_method_private_is_dead_code():
    # Near miss: private and called by nothing in the file (test_structure's dead-code ruling)
    code = TENSOR_METHOD.replace("def attend(", "def _attend(")
    assert "def _attend(" in code
    assert found(code, "ADP010") == []


def test_a_method_that_stores_on_its_module_is_not_read():
    # Near miss: the method keeps its probabilities on the module (an attribute set), so it is
    # no function over its arguments written as a method: not read as an entry point
    code = TENSOR_METHOD.replace("        return scores @ v", "        self.last = scores\n        return scores @ v")
    assert "self.last = scores" in code
    assert found(code, "ADP010") == []


def test_the_method_over_its_tensors_renormalised_after_softmax_is_no_site():
    code = TENSOR_METHOD.replace(
        "scores = torch.softmax(scores, dim=-1).type_as(v)",
        "scores = torch.softmax(scores, dim=-1).type_as(v)\n"
        "        scores = scores / scores.sum(dim=-1, keepdim=True).clamp(min=1e-6)")
    assert "clamp(min=1e-6)" in code
    assert found(code, "ADP010") == []


SAMPLER = textwrap.dedent('''
    import torch
    from torch import nn


    class TinyLM(nn.Module):
        def __init__(self, vocab, dim):
            super().__init__()
            self.emb = nn.Embedding(vocab, dim)
            self.head = nn.Linear(dim, vocab)

        def forward(self, idx):
            return self.head(self.emb(idx))

        def sample(self, idx, steps, temperature=1.0):
            for _ in range(steps):
                logits = self(idx)[:, -1, :] / temperature
                probs = torch.softmax(logits, dim=-1)
                weights = probs @ self.emb.weight
                idx = torch.cat([idx, torch.multinomial(probs, 1)], dim=1)
            return idx, weights
''')


def test_a_method_that_calls_the_module_itself_is_not_read_as_a_root():
    # Near miss: probabilities of the model's own output times an embedding matrix, in a
    # sampling method (it calls ``self(idx)``): not read, no site
    assert found(SAMPLER, "ADP010") == []


def test_a_private_helper_that_forward_calls_is_one_site():
    code = TENSOR_METHOD.replace(
        "y = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)",
        "y = self._attend(q, k, v, None)").replace("def attend(", "def _attend(")
    assert "self._attend(q, k, v, None)" in code
    line = line_of(code, SOFTMAX)
    assert [f for f in found(code, "ADP010") if f.line <= line <= f.end_line] != []
    assert len(found(code, "ADP010")) == 1


# ----------------------------------------------------------------------------- ADP012
# - ADP012: a name the two branches of a function's ``if``/``else`` bind by imports, one of them
#   torch's optimizer (``if mup: from mup.optim import MuSGD as SGD`` / ``else: from torch.optim
#   import SGD``): ``SGD(params, lr=lr)`` constructs torch's SGD on one path, a site; the fix
#   passes ``fused=True`` only when the name is torch's class, spelled through the module's own
#   ``import torch``.  Near-misses: both branches another package's optimizers, the name bound
#   again after the ``if``, and a third import of the name elsewhere in the function.

BRANCH_IMPORTS = textwrap.dedent('''
    import torch


    def make_optimizers(model, lr, scaled):
        if scaled:
            from torch.optim import ASGD as SGD
        else:
            from torch.optim import SGD
        build = lambda m: SGD(m.parameters(), lr=lr)
        return build(model)
''')


def test_a_name_imported_on_two_paths_one_torchs_optimizer_is_a_site():
    assert len(found(BRANCH_IMPORTS, "ADP012")) == 1
    assert found(BRANCH_IMPORTS, "ADP012")[0].line == line_of(BRANCH_IMPORTS, "SGD(m.parameters()")


def test_the_fix_passes_fused_only_to_torchs_class():
    import torch
    from corpus_forms import rules

    from adopter.synth import fix_text

    fixed = fix_text(BRANCH_IMPORTS, "model.py", rules("ADP012")).text
    assert 'if SGD is torch.optim.SGD else {}' in fixed
    scope: dict = {}
    exec(compile(fixed, "fixed.py", "exec"), scope)  # noqa: S102 (our own fixture)
    model = torch.nn.Linear(3, 2)
    plain = scope["make_optimizers"](model, 0.1, scaled=False)
    assert type(plain) is torch.optim.SGD and plain.defaults["fused"] is True
    other = scope["make_optimizers"](model, 0.1, scaled=True)
    assert type(other) is torch.optim.ASGD and "fused" not in other.defaults


def test_both_branches_another_packages_optimizers_are_no_site():
    code = BRANCH_IMPORTS.replace("from torch.optim import SGD", "from lion_pytorch import Lion as SGD")
    assert "Lion as SGD" in code
    code = code.replace("from torch.optim import ASGD as SGD", "from torch_optimizer import Yogi as SGD")
    assert found(code, "ADP012") == []


def test_the_name_bound_again_after_the_if_is_no_site():
    code = BRANCH_IMPORTS.replace("    build = lambda", "    SGD = wrap(SGD)\n    build = lambda")
    assert "SGD = wrap(SGD)" in code
    assert found(code, "ADP012") == []


def test_a_third_import_of_the_name_in_the_function_is_no_site():
    code = BRANCH_IMPORTS.replace("    build = lambda", "    from lion_pytorch import Lion as SGD\n    build = lambda")
    assert "Lion as SGD" in code
    assert found(code, "ADP012") == []
