"""Research-code forms found by computation (session 37, misses52).

- ADP015: an LM head built through a same-file helper that returns the layers it is handed run
  in order (``nn.Sequential(*layers)``, the one layer, or ``nn.Identity()``), the ``None``
  entries dropped first (``RMSNorm(d) if norm else None``): the helper's call is an
  nn.Sequential of the kept layers, its last one the vocabulary Linear.
"""

from __future__ import annotations

import textwrap

from corpus_forms import finding_at, found

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
