"""Forms found missing while checking the blind batch corpus17b (transformers 4.45 vision and
multimodal files, torchvision-style CNNs and diffusion/ViT code of ten packages new to the
corpus).  Two forms, each with near-misses; the fixtures are ours.

- A factory that builds an empty ``nn.Sequential()`` in a local name and fills it with
  ``name.add_module(key, layer)`` before returning it (RepVGG's ``conv_bn``): the members come
  in the order the code adds them, as for ``self.features.add_module``.  Near-misses: a layer
  added between the conv and the norm, the name bound to another container before the norm is
  added, an ``nn.ModuleDict`` filled the same way (not run in order).
- A same-file ``nn.Linear`` subclass whose ``forward`` computes ``F.linear(x, self.weight,
  self.bias)`` into a name, then, under an ``if`` without ``else``, appends more columns to it
  (transformers' Idefics decoupled LM head: extra vocabulary rows only when configured), then
  returns the name: on the way where the test fails it is the Linear, so an LM head built from
  it is a head (ADP015, report-only).  Near-misses: an ``else`` that replaces the output, an
  unconditional step after the Linear, a member changed under the ``if``.
"""

from __future__ import annotations

import textwrap

from corpus_forms import assert_bn_fold_matches, finding_at, found, rules

from adopter.synth import fix_text

ADD_MODULE = textwrap.dedent("""\
    import torch.nn as nn


    def conv_norm(cin, cout, kernel, stride, padding):
        seq = nn.Sequential()
        seq.add_module("conv", nn.Conv2d(cin, cout, kernel, stride, padding, bias=False))
        seq.add_module("norm", nn.BatchNorm2d(cout))  # pair
        return seq


    class TwoBranch(nn.Module):
        def __init__(self, cin, cout):
            super().__init__()
            self.wide = conv_norm(cin, cout, 3, 1, 1)
            self.narrow = conv_norm(cin, cout, 1, 1, 0)
            self.act = nn.ReLU()

        def forward(self, x):
            return self.act(self.wide(x) + self.narrow(x))
    """)


def test_add_module_filled_local_sequential_is_a_pair():
    assert finding_at(ADD_MODULE, "ADP007", "# pair") is not None


def test_add_module_filled_local_sequential_fixed_and_equal_in_eval():
    fixed = fix_text(ADD_MODULE, "model.py", rules("ADP007"))
    assert fixed.error is None
    assert "seq = FoldingSequential()" in fixed.text
    # float64, random running statistics: the folded branches give what the plain ones do
    assert_bn_fold_matches(ADD_MODULE, fixed.text, "TwoBranch", (3, 4), (2, 3, 8, 8))


def test_near_miss_a_layer_added_between():
    code = ADD_MODULE.replace(
        '    seq.add_module("norm"',
        '    seq.add_module("act", nn.ReLU())\n    seq.add_module("norm"',
    )
    assert code != ADD_MODULE
    assert found(code, "ADP007") == []


def test_near_miss_the_name_bound_to_another_container_before_the_norm():
    # the norm goes into the outer container, after a dropout: no conv right before it
    code = ADD_MODULE.replace(
        '    seq.add_module("norm"',
        '    seq = nn.Sequential(seq, nn.Dropout(0.1))\n    seq.add_module("norm"',
    )
    assert code != ADD_MODULE
    assert found(code, "ADP007") == []


def test_near_miss_a_module_dict_filled_the_same_way():
    code = ADD_MODULE.replace("seq = nn.Sequential()", "seq = nn.ModuleDict()")
    assert code != ADD_MODULE
    assert found(code, "ADP007") == []


DECOUPLED_HEAD = textwrap.dedent("""\
    import torch
    import torch.nn as nn
    import torch.nn.functional as F


    class SplitVocabLinear(nn.Linear):
        def __init__(self, d_in, d_out, extra=0, bias=True):
            super().__init__(d_in, d_out, bias)
            self.extra = extra
            if extra > 0:
                self.extra_fc = nn.Linear(d_in, extra, bias=bias)

        def forward(self, input):
            out = F.linear(input, self.weight, self.bias)
            if self.extra > 0:
                more = self.extra_fc(input)
                out = torch.cat((out, more), -1)
            return out


    class TinyLM(nn.Module):
        def __init__(self, vocab, dim, extra_vocab=0):
            super().__init__()
            self.tokens = nn.Embedding(vocab, dim)
            self.body = nn.Linear(dim, dim)
            self.head = SplitVocabLinear(dim, vocab, extra_vocab, bias=False)

        def forward(self, ids, labels=None):
            h = torch.tanh(self.body(self.tokens(ids)))
            logits = self.head(h)  # head
            loss = None
            if labels is not None:
                rows = logits[..., :-1, :].contiguous()
                targets = labels[..., 1:].contiguous()
                loss = F.cross_entropy(rows.view(-1, rows.size(-1)), targets.view(-1))
            return loss, logits
    """)


def test_linear_subclass_with_columns_added_under_an_if_is_an_lm_head():
    assert finding_at(DECOUPLED_HEAD, "ADP015", "# head") is not None


def test_near_miss_an_else_replaces_the_output():
    code = DECOUPLED_HEAD.replace(
        "        return out\n",
        "        else:\n            out = out.flip(-1)\n        return out\n",
        1,
    )
    assert code != DECOUPLED_HEAD
    assert found(code, "ADP015") == []


def test_near_miss_an_unconditional_step_after_the_linear():
    code = DECOUPLED_HEAD.replace(
        "        return out\n", "        out = out * 0.5\n        return out\n", 1
    )
    assert code != DECOUPLED_HEAD
    assert found(code, "ADP015") == []


def test_near_miss_a_member_changed_under_the_if():
    code = DECOUPLED_HEAD.replace(
        "            out = torch.cat((out, more), -1)\n",
        "            out = torch.cat((out, more), -1)\n            self.last = out\n",
        1,
    )
    assert code != DECOUPLED_HEAD
    assert found(code, "ADP015") == []


GELU_AFTER = textwrap.dedent("""\
    import torch
    import torch.nn as nn
    import torch.nn.functional as F


    class SplitLinear(nn.Linear):
        def __init__(self, d_in, d_out, extra=0):
            super().__init__(d_in, d_out)
            self.extra = extra
            if extra > 0:
                self.extra_fc = nn.Linear(d_in, extra)

        def forward(self, input):
            out = F.linear(input, self.weight, self.bias)
            if self.extra > 0:
                out = torch.cat((out, self.extra_fc(input)), -1)
            return out


    class Mlp(nn.Module):
        def __init__(self, dim):
            super().__init__()
            self.up = SplitLinear(dim, 4 * dim)
            self.act = nn.GELU()

        def forward(self, x):
            return self.act(self.up(x))  # gelu
    """)


def test_the_subclass_before_a_gelu_is_reported_not_rewritten():
    # the same reading serves every rule that reads a Linear; the kernel would not run the
    # subclass's own forward, so the fixer leaves the file as it is
    assert finding_at(GELU_AFTER, "ADP006", "# gelu") is not None
    fixed = fix_text(GELU_AFTER, "model.py", rules("ADP006"))
    assert fixed.error is None
    assert fixed.text == GELU_AFTER
