"""Dev-corpus misses of session 13 (helper misses11): forms research code writes that the engine
did not read, each test with the semantic fact it now reads and a near-miss it must still leave
alone.  The fixtures are ours, written in the styles seen (diffusers-style attention processors,
OLMo-/nGPT-style feed-forwards, uni2ts-style norms, Sequential subclasses)."""

from __future__ import annotations

import textwrap

import pytest
from corpus_forms import covered as _covered
from corpus_forms import findings as _findings

from adopter.ruleset import load_rules, select_rules
from adopter.synth import fix_text

RULES = load_rules()


def _fix(code: str, rule: str, count: int) -> str:
    result = fix_text(code, "model.py", select_rules(RULES, [rule]))
    assert result.error is None
    assert [f.rule for f in result.applied] == [rule] * count, result.skipped
    again = fix_text(result.text, "model.py", select_rules(RULES, [rule]))
    assert again.text == result.text  # a second run changes nothing
    assert "import adopter\n" not in result.text and "from adopter " not in result.text
    return result.text


# -- q/k/v through an attention processor's annotated parameter -----------------------------------
# The module hands itself to a processor object (``self.processor(self, x)``), whose ``__call__``
# projects with the module's layers: ``attn.to_q(x)``, ``attn`` annotated with the module class.

PROCESSOR = textwrap.dedent('''
    import torch
    import torch.nn.functional as F
    from torch import nn


    class Attention(nn.Module):
        def __init__(self, processor, dim, heads=4, context_dim=None):
            super().__init__()
            self.processor = processor
            self.heads = heads
            self.to_q = nn.Linear(dim, dim)
            self.to_k = nn.Linear(dim, dim)
            self.to_v = nn.Linear(dim, dim)
            if context_dim is not None:
                self.add_q = nn.Linear(context_dim, dim)
                self.add_k = nn.Linear(context_dim, dim)
                self.add_v = nn.Linear(context_dim, dim)
            self.to_out = nn.Linear(dim, dim)

        def forward(self, x, c=None):
            return self.processor(self, x, c)


    def _heads(t, b, heads):
        return t.view(b, -1, heads, t.shape[-1] // heads).transpose(1, 2)


    class SelfAttnProcessor:
        def __init__(self, causal=False):
            self.causal = causal

        def __call__(self, attn: Attention, x, c=None):
            b = x.shape[0]
            query = attn.to_q(x)
            key = attn.to_k(x)
            value = attn.to_v(x)
            query, key, value = (_heads(t, b, attn.heads) for t in (query, key, value))
            out = F.scaled_dot_product_attention(query, key, value, is_causal=self.causal)
            return attn.to_out(out.transpose(1, 2).reshape(b, -1, query.shape[1] * query.shape[-1]))


    class JointAttnProcessor:
        def __call__(self, attn: "Attention", x, c=None):
            b = x.shape[0]
            q = attn.to_q(x)
            k = attn.to_k(x)
            v = attn.to_v(x)
            c_q = attn.add_q(c)
            c_k = attn.add_k(c)
            c_v = attn.add_v(c)
            q, k, v = torch.cat([q, c_q], 1), torch.cat([k, c_k], 1), torch.cat([v, c_v], 1)
            q, k, v = (_heads(t, b, attn.heads) for t in (q, k, v))
            out = F.scaled_dot_product_attention(q, k, v)
            return attn.to_out(out.transpose(1, 2).reshape(b, -1, q.shape[1] * q.shape[-1]))
''')


def test_processor_projections_through_an_annotated_parameter_are_found():
    assert _covered(PROCESSOR, "query = attn.to_q(x)", "ADP009")
    assert _covered(PROCESSOR, "q = attn.to_q(x)", "ADP009")
    assert _covered(PROCESSOR, "c_q = attn.add_q(c)", "ADP009")
    assert len(_findings(PROCESSOR, "ADP009")) == 3


def test_processor_projections_are_fused_and_compute_the_same(module_from_file):
    torch = pytest.importorskip("torch")
    fixed = _fix(PROCESSOR, "ADP009", 3)
    assert "query, key, value = fused_qkv(x, attn.to_q, attn.to_k, attn.to_v)" in fixed
    assert "c_q, c_k, c_v = fused_qkv(c, attn.add_q, attn.add_k, attn.add_v)" in fixed
    before = module_from_file(PROCESSOR, "processor_before")
    after = module_from_file(fixed, "processor_after")
    torch.manual_seed(0)
    x, c = torch.randn(2, 5, 16), torch.randn(2, 3, 8)
    for name, args in (("SelfAttnProcessor", (x,)), ("JointAttnProcessor", (x, c))):
        original = before.Attention(getattr(before, name)(), 16, context_dim=8)
        patched = after.Attention(getattr(after, name)(), 16, context_dim=8)
        patched.load_state_dict(original.state_dict())  # the same parameters: checkpoints load
        expected, got = original(*args), patched(*args)
        # float32, projections over 16 (and 8) inputs: one matmul in place of three, same sums
        torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-6)
        expected.sum().backward()
        got.sum().backward()
        torch.testing.assert_close(patched.to_k.weight.grad, original.to_k.weight.grad, rtol=1e-5, atol=1e-5)


def test_processor_key_and_value_of_another_tensor_are_not_one_input():
    cross = PROCESSOR.replace("key = attn.to_k(x)", "key = attn.to_k(c)").replace(
        "value = attn.to_v(x)", "value = attn.to_v(c)")
    assert not _covered(cross, "query = attn.to_q(x)", "ADP009")


def test_an_unannotated_processor_parameter_is_not_typed():
    plain = PROCESSOR.replace("def __call__(self, attn: Attention, x, c=None):",
                              "def __call__(self, attn, x, c=None):")
    assert not _covered(plain, "query = attn.to_q(x)", "ADP009")


def test_a_processor_parameter_the_method_rebinds_is_not_typed():
    rebound = PROCESSOR.replace("        b = x.shape[0]\n        query = attn.to_q(x)",
                                "        b = x.shape[0]\n        attn = attn.inner\n        query = attn.to_q(x)")
    assert "attn = attn.inner" in rebound
    assert not _covered(rebound, "query = attn.to_q(x)", "ADP009")


def test_a_processor_no_module_hands_itself_to_is_not_model_structure():
    # the module never passes itself to a call: nothing runs the processor with its layers
    unused = PROCESSOR.replace("return self.processor(self, x, c)", "return self.to_out(x)")
    assert not _findings(unused, "ADP009")


def test_a_layer_a_subclass_of_the_annotated_class_rebinds_is_not_typed():
    # the parameter may hold the subclass at run time, whose to_k is no Linear
    sub = PROCESSOR + textwrap.dedent('''

        class ConvAttention(Attention):
            def __init__(self, processor, dim, heads=4, context_dim=None):
                super().__init__(processor, dim, heads, context_dim)
                self.to_k = nn.Conv1d(dim, dim, 1)
    ''')
    assert not _covered(sub, "query = attn.to_q(x)", "ADP009")
    assert not _covered(sub, "q = attn.to_q(x)", "ADP009")
    assert _covered(sub, "c_q = attn.add_q(c)", "ADP009")  # the subclass keeps those Linears
