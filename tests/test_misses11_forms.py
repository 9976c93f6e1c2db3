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


# -- an activation built by a method of a same-file enum the constructor parameter holds ----------
# ``activation: Act = Act.silu`` then ``self.act_fn = activation.build()``: whatever member is
# passed, the layer is one of what ``build`` returns (F.silu, or a partial of F.gelu).

ENUM_FFN = textwrap.dedent('''
    import functools
    from enum import Enum

    import torch.nn.functional as F
    from torch import nn


    class Act(str, Enum):
        silu = "silu"
        gelu_tanh = "gelu_tanh"

        def build(self):
            if self == Act.silu:
                return F.silu
            elif self == Act.gelu_tanh:
                return functools.partial(F.gelu, approximate="tanh")
            raise NotImplementedError(self)


    class GatedFeedForward(nn.Module):
        def __init__(self, *, d_model, hidden, activation: Act = Act.silu):
            super().__init__()
            self.act_fn = activation.build()
            self.w1 = nn.Linear(d_model, hidden)
            self.w2 = nn.Linear(hidden, d_model)
            self.w3 = nn.Linear(d_model, hidden)

        def forward(self, x):
            return self.w2(self.act_fn(self.w1(x)) * self.w3(x))
''')
ENUM_SITE = "return self.w2(self.act_fn(self.w1(x)) * self.w3(x))"


def test_activation_built_by_an_enum_parameter_may_be_silu_or_gelu():
    assert _covered(ENUM_FFN, ENUM_SITE, "ADP013")  # SwiGLU when it is silu
    assert _covered(ENUM_FFN, ENUM_SITE, "ADP006")  # Linear -> GELU when it is gelu_tanh


def test_enum_activation_is_fixed_behind_a_torchscript_guard():
    # a function held as a value (F.silu, or a partial of F.gelu): passed to the kernel in eager
    # code, which fuses only a SiLU; the original under TorchScript (fixrate2, session 34)
    result = fix_text(ENUM_FFN, "model.py", select_rules(RULES, ["ADP013"]))
    assert [f.rule for f in result.applied] == ["ADP013"] and not result.skipped
    assert ("return self.w2((self.act_fn(self.w1(x)) * self.w3(x) if is_scripting() "
            "else liger_swiglu(self.w1(x), self.w3(x), self.act_fn)))") in result.text


def test_enum_building_neither_silu_nor_gelu_is_no_site():
    relu = ENUM_FFN.replace("return F.silu", "return F.relu").replace(
        'return functools.partial(F.gelu, approximate="tanh")', "return F.sigmoid")
    assert not _findings(relu, "ADP013")
    assert not _findings(relu, "ADP006")


def test_enum_default_of_another_class_than_the_annotation_is_not_typed():
    other = ENUM_FFN.replace("class GatedFeedForward", textwrap.dedent('''
        class Other(str, Enum):
            silu = "silu"

            def build(self):
                return F.silu


        class GatedFeedForward''').lstrip("\n")).replace("activation: Act = Act.silu", "activation: Act = Other.silu")
    assert "activation: Act = Other.silu" in other
    assert not _findings(other, "ADP013")


def test_partial_of_gelu_held_as_a_value_is_a_gelu():
    code = ENUM_FFN.replace("self.act_fn = activation.build()",
                            'self.act_fn = functools.partial(F.gelu, approximate="tanh")')
    assert _covered(code, ENUM_SITE, "ADP006")
    assert not _findings(code, "ADP013")  # a GeGLU: the gate is a fixed GELU


# -- nGPT: learned scales on both operands of the SwiGLU product -----------------------------------

SCALED_SWIGLU = textwrap.dedent('''
    import torch
    import torch.nn.functional as F
    from torch import nn


    class ScaledSwiGLU(nn.Module):
        def __init__(self, d_model, hidden):
            super().__init__()
            self.w1 = nn.Linear(d_model, hidden, bias=False)
            self.w2 = nn.Linear(hidden, d_model, bias=False)
            self.w3 = nn.Linear(d_model, hidden, bias=False)
            self.sw1 = nn.Parameter(torch.ones(hidden))
            self.sw3 = nn.Parameter(torch.ones(hidden))
            self.sqrt_d = d_model ** 0.5

        def forward(self, x):
            sw1 = self.sw1 * self.sqrt_d
            sw3 = self.sw3
            return self.w2(F.silu(sw1 * self.w1(x)) * (sw3 * self.w3(x)))
''')
SCALED_SITE = "return self.w2(F.silu(sw1 * self.w1(x)) * (sw3 * self.w3(x)))"


def test_scaled_swiglu_operands_are_found_and_fixed(module_from_file):
    torch = pytest.importorskip("torch")
    assert _covered(SCALED_SWIGLU, SCALED_SITE, "ADP013")
    result = fix_text(SCALED_SWIGLU, "model.py", select_rules(RULES, ["ADP013"]))
    assert [f.rule for f in result.applied] == ["ADP013"], result.skipped
    fixed = result.text
    assert "return self.w2(liger_silu_mul(sw1 * self.w1(x), sw3 * self.w3(x)))" in fixed
    assert fix_text(fixed, "model.py", select_rules(RULES, ["ADP013"])).text == fixed
    before = module_from_file(SCALED_SWIGLU, "scaled_before").ScaledSwiGLU(8, 16)
    after = module_from_file(fixed, "scaled_after").ScaledSwiGLU(8, 16)
    after.load_state_dict(before.state_dict())
    with torch.no_grad():
        before.sw1.uniform_(0.5, 1.5)
        after.sw1.copy_(before.sw1)
    x = torch.randn(3, 4, 8)
    # on CPU the kernel is exactly F.silu(gate) * up: the same operations in the same order
    torch.testing.assert_close(after(x), before(x), rtol=0, atol=0)


def test_scaled_up_projection_of_another_input_is_no_swiglu():
    other = SCALED_SWIGLU.replace("def forward(self, x):", "def forward(self, x, y):").replace(
        "(sw3 * self.w3(x))", "(sw3 * self.w3(y))")
    assert not _findings(other, "ADP013")


def test_scaled_sigmoid_gate_is_no_swiglu():
    glu = SCALED_SWIGLU.replace("F.silu(sw1", "torch.sigmoid(sw1")
    assert not _findings(glu, "ADP013")


# -- a subclass of a package's nn.Sequential subclass that runs its members in order --------------
# The package's base loops ``for i, m in enumerate(self)`` and hands each member the running value
# (unpacked, ``m(*x)``, when the chain starts from ``forward(self, *x)``; the first member also
# gets the keywords): a torch layer takes one tensor, so a pair of torch layers runs in order.

CHAIN_BASE = textwrap.dedent('''
    from torch import nn


    class Chain(nn.Sequential):
        def forward(self, *x, **kwargs):
            for i, module in enumerate(self):
                if type(x) == tuple:
                    if i == 0:
                        x = module(*x, **kwargs)
                    else:
                        x = module(*x)
                else:
                    x = module(x)
            return x
''')

CHAIN_MLP = textwrap.dedent('''
    from torch import nn

    from .utils import Chain


    class FeedForward(Chain):
        def __init__(self, dim, widening_factor):
            super().__init__(
                nn.LayerNorm(dim),
                nn.Linear(dim, widening_factor * dim),
                nn.GELU(),
                nn.Linear(widening_factor * dim, dim),
            )
''')


def _package_findings(tmp_path, base: str, model: str, rule: str):
    from adopter.engine import analyze
    from adopter.structure import package_of

    root = tmp_path / "chainpkg"
    root.mkdir()
    (root / "__init__.py").write_text("")
    (root / "utils.py").write_text(base)
    path = root / "modules.py"
    path.write_text(model)
    return analyze(model, str(path), select_rules(RULES, [rule]), package_of(str(path))).findings


def test_subclass_of_a_package_chain_builds_a_sequence(tmp_path):
    found = _package_findings(tmp_path, CHAIN_BASE, CHAIN_MLP, "ADP006")
    gelu = next(n for n, text in enumerate(CHAIN_MLP.splitlines(), 1) if "nn.GELU()" in text)
    assert [f.line <= gelu <= f.end_line for f in found] == [True]


def test_subclass_of_a_package_chain_is_reported_not_fixed(tmp_path):
    # (ADP007 would swap the container's class; the base's own forward would be lost)
    conv = CHAIN_MLP.replace("nn.LayerNorm(dim)", "nn.Conv2d(dim, dim, 3)").replace(
        "nn.Linear(dim, widening_factor * dim)", "nn.BatchNorm2d(dim)")
    found = _package_findings(tmp_path, CHAIN_BASE, conv, "ADP007")
    assert len(found) == 1
    root = tmp_path / "chainpkg"
    from adopter.structure import package_of

    result = fix_text(conv, str(root / "modules.py"), select_rules(RULES, ["ADP007"]),
                      package_of(str(root / "modules.py")))
    assert not result.applied and "own code" in str(result.skipped)


def test_a_chain_that_hands_members_another_value_is_no_sequence(tmp_path):
    # every member gets the chain's input, not the running value: no member feeds the next
    fanned = CHAIN_BASE.replace("x = module(x)", "y = module(x)").replace(
        "            return x", "            return y")
    assert "y = module(x)" in fanned
    assert not _package_findings(tmp_path, fanned, CHAIN_MLP, "ADP006")


def test_a_chain_passing_the_counter_is_no_sequence(tmp_path):
    # module(x, i): the member is given more than the running value
    counted = CHAIN_BASE.replace("                x = module(x)\n", "                x = module(x, i)\n")
    assert "module(x, i)" in counted
    assert not _package_findings(tmp_path, counted, CHAIN_MLP, "ADP006")


def test_same_file_enumerating_chain_builds_a_sequence():
    code = CHAIN_BASE + CHAIN_MLP.replace("from torch import nn\n\nfrom .utils import Chain\n", "")
    gelu = next(n for n, text in enumerate(code.splitlines(), 1) if "nn.GELU()" in text)
    assert any(f.line <= gelu <= f.end_line for f in _findings(code, "ADP006"))


# -- RMSNorm over several trailing axes: the mean over an attribute holding tuple(range(-n, 0)) -----

TRAILING_RMS = textwrap.dedent('''
    import torch
    from torch import nn


    class MultiAxisRMSNorm(nn.Module):
        def __init__(self, normalized_shape, eps=1e-5):
            super().__init__()
            if isinstance(normalized_shape, int):
                normalized_shape = (normalized_shape,)
            self.eps = eps
            self.mean_dim = tuple(range(-len(normalized_shape), 0))
            self.weight = nn.Parameter(torch.ones(normalized_shape))

        def forward(self, x):
            out = x * torch.rsqrt(x.pow(2).mean(dim=self.mean_dim, keepdim=True) + self.eps)
            return out * self.weight
''')
TRAILING_SITE = "out = x * torch.rsqrt(x.pow(2).mean(dim=self.mean_dim, keepdim=True) + self.eps)"


def test_rms_over_trailing_axes_is_found_and_fixed(module_from_file):
    torch = pytest.importorskip("torch")
    assert _covered(TRAILING_RMS, TRAILING_SITE, "ADP011")
    fixed = _fix(TRAILING_RMS, "ADP011", 1)
    assert "out = rms_norm(x, x.shape[-len(self.mean_dim):], eps=self.eps)" in fixed
    before = module_from_file(TRAILING_RMS, "trailing_before")
    after = module_from_file(fixed, "trailing_after")
    torch.manual_seed(0)
    for shape in (8, (4, 8)):
        original, patched = before.MultiAxisRMSNorm(shape), after.MultiAxisRMSNorm(shape)
        x = torch.randn(2, 3, 4, 8, dtype=torch.float64)
        # float64: rms_norm and the written-out formula agree to rounding over at most 32 values
        torch.testing.assert_close(patched.double()(x), original.double()(x), rtol=1e-12, atol=1e-12)


def test_rms_over_leading_axes_is_not_found():
    leading = TRAILING_RMS.replace("tuple(range(-len(normalized_shape), 0))",
                                   "tuple(range(0, len(normalized_shape)))")
    assert not _findings(leading, "ADP011")


def test_rms_over_an_attribute_assigned_another_value_too_is_not_found():
    # a method that sets other axes: the attribute is not the trailing axes on every call
    other = TRAILING_RMS + textwrap.dedent('''

        class ChannelRMSNorm(MultiAxisRMSNorm):
            def __init__(self, channels, eps=1e-5):
                super().__init__(channels, eps)
                self.mean_dim = (1,)
    ''')
    assert not _findings(other, "ADP011")


def test_rms_over_literal_axes_other_than_the_last_is_not_found():
    literal = TRAILING_RMS.replace("mean(dim=self.mean_dim,", "mean(dim=(-3, -1),")
    assert not _findings(literal, "ADP011")


# -- a step under an `if` on the module's settings between the gate projection and its activation --

SPARSE_GLU = textwrap.dedent('''
    import torch
    import torch.nn.functional as F
    from torch import nn


    class GLUFeedForward(nn.Module):
        def __init__(self, dim, inner, gate_activation=None, sparsity=0.0):
            super().__init__()
            self.sparsity = sparsity
            self.gate_proj = nn.Linear(dim, inner)
            self.gate_activation = gate_activation if gate_activation is not None else nn.SiLU()
            self.inner_proj = nn.Linear(dim, inner)
            self.output_proj = nn.Linear(inner, dim)

        def _sparsify(self, x):
            cutoff = x.mean(dim=-1, keepdim=True) + x.std(dim=-1, keepdim=True)
            return F.relu(x - cutoff)

        def forward(self, seqs):
            gate = self.gate_proj(seqs)
            if self.sparsity > 0.0:
                gate = self._sparsify(gate)
            gate = self.gate_activation(gate)
            seqs = self.inner_proj(seqs)
            seqs = seqs * gate
            return self.output_proj(seqs)
''')
SPARSE_SITE = "seqs = seqs * gate"


def test_swiglu_with_a_step_a_setting_turns_on_is_reported_not_fixed():
    assert _covered(SPARSE_GLU, SPARSE_SITE, "ADP013")
    result = fix_text(SPARSE_GLU, "model.py", select_rules(RULES, ["ADP013"]))
    assert not result.applied and result.text == SPARSE_GLU
    assert "self.sparsity > 0.0" in str(result.skipped)


def test_a_step_under_the_training_mode_is_no_swiglu():
    # train() / eval() switch it per call: in training the gate is always sparsified
    mode = SPARSE_GLU.replace("if self.sparsity > 0.0:", "if self.training:")
    assert not _covered(mode, SPARSE_SITE, "ADP013")


def test_a_step_under_an_argument_of_the_call_is_no_swiglu():
    argument = SPARSE_GLU.replace("def forward(self, seqs):", "def forward(self, seqs, sparse=False):").replace(
        "if self.sparsity > 0.0:", "if sparse:")
    assert not _covered(argument, SPARSE_SITE, "ADP013")


def test_a_step_under_a_setting_another_method_changes_is_no_swiglu():
    changed = SPARSE_GLU.replace("    def _sparsify(self, x):",
                                 "    def set_sparsity(self, value):\n        self.sparsity = value\n\n"
                                 "    def _sparsify(self, x):")
    assert "self.sparsity = value" in changed
    assert not _covered(changed, SPARSE_SITE, "ADP013")


def test_a_step_under_a_setting_between_conv_and_batchnorm_is_still_no_site():
    # only rules that say so (ADP013's setting_paths) read the other path as a site
    conv_bn = textwrap.dedent('''
        from torch import nn


        class Block(nn.Module):
            def __init__(self, c, zero_pad=False):
                super().__init__()
                self.zero_pad = zero_pad
                self.conv = nn.Conv2d(c, c, 3, padding=1)
                self.bn = nn.BatchNorm2d(c)

            def forward(self, x):
                x = self.conv(x)
                if self.zero_pad:
                    x = x[:, :, 1:, 1:]
                return self.bn(x)
    ''')
    assert not _findings(conv_bn, "ADP007")
    assert _findings(conv_bn.replace("        if self.zero_pad:\n            x = x[:, :, 1:, 1:]\n", ""), "ADP007")
