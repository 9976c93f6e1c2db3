"""Dev-corpus misses in forms research code writes elsewhere too (session 43, helper misses67).
The fixtures are ours.

- ADP013: the gate and up projections take further arguments besides the input (an adapter
  list, a LoRA scale, the same to both: ``self.gate_proj(x, scale=s)``, ``self.up_proj(x, scale=s)``; exllamav2's
  ``.forward(x, loras=loras)``, diffusers-style LoRA-compatible layers): the kernel fuses the
  SiLU and the product of the two outputs, whatever else the projections were given.  The fix
  declines with a reason rather than render a projection without its argument (and an in-place
  ``y *= up`` is declined as before); without further arguments the same module is fixed.
  Both projections must take the same further arguments (``[forward] same_extras``): a gate of
  x beside a module given x and a second tensor (an attention of both, mega-pytorch's reset
  gate) is no SwiGLU.  Near-misses: that form, the up projection of another input, a fixed ReLU
  gate.
- ADP012: an optimizer class picked from a class-body table and keywords spread from a dict
  attribute the same method builds (below).
"""

from __future__ import annotations

import textwrap

import torch
from corpus_forms import float64_pair, found, line_of, rules

from adopter.synth import fix_text

LORA_MLP = textwrap.dedent("""\
    import torch
    import torch.nn.functional as F
    from torch import nn


    class ScaledLinear(nn.Linear):
        def forward(self, x, scale=1.0):
            return super().forward(x) * scale


    class MLP(nn.Module):
        def __init__(self, d=8, h=16):
            super().__init__()
            self.gate_proj = ScaledLinear(d, h, bias=False)
            self.up_proj = ScaledLinear(d, h, bias=False)
            self.down_proj = nn.Linear(h, d, bias=False)

        def forward(self, x, y=None, scale=0.5):
            BODY
""")

NAMED = """gate = self.gate_proj(x, scale=scale)
        up = self.up_proj(x, scale=scale)
        h = ACT(gate) * up  # product
        return self.down_proj(h)"""
IN_PLACE = """h = ACT(self.gate_proj(x, scale=scale))
        h *= self.up_proj(x, scale=scale)  # product
        return self.down_proj(h)"""


def _mlp(body: str, act: str = "F.silu") -> str:
    return LORA_MLP.replace("BODY", body.replace("ACT", act))


def test_projections_with_extra_arguments_are_a_swiglu():
    for body in (NAMED, IN_PLACE):
        code = _mlp(body)
        hits = found(code, "ADP013")
        assert [f.line <= line_of(code, "# product") <= f.end_line for f in hits] == [True], body


def test_the_fix_declines_rather_than_drop_an_argument_of_a_projection():
    code = _mlp(NAMED)
    result = fix_text(code, "model.py", rules("ADP013"))
    assert not result.applied
    assert result.text == code
    assert [why for _, why in result.skipped] == ["the fused call would drop the argument `scale=scale`"]


def test_projections_without_further_arguments_are_still_fixed_and_compute_the_same():
    code = _mlp(NAMED.replace("(x, scale=scale)", "(x)"))
    result = fix_text(code, "model.py", rules("ADP013"))
    assert result.applied, result.skipped
    assert "liger_silu_mul(self.gate_proj(x), self.up_proj(x))" in result.text
    a, b = float64_pair(code, result.text, "MLP")
    x = torch.randn(3, 8, dtype=torch.float64, requires_grad=True)
    xb = x.detach().clone().requires_grad_(True)
    ya, yb = a(x), b(xb)
    # float64, the same operations on the CPU fallback: equal to rounding
    torch.testing.assert_close(yb, ya, rtol=1e-12, atol=1e-12)
    ya.sum().backward()
    yb.sum().backward()
    torch.testing.assert_close(xb.grad, x.grad, rtol=1e-12, atol=1e-12)


def test_an_in_place_product_is_reported_and_the_fix_declines_with_a_reason():
    code = _mlp(IN_PLACE)
    result = fix_text(code, "model.py", rules("ADP013"))
    assert not result.applied
    assert result.text == code
    assert [why for _, why in result.skipped] == ["the last fused operation is an augmented assignment"]


def test_near_misses_up_of_another_input_and_a_relu_gate():
    other = NAMED.replace("self.up_proj(x, scale=scale)", "self.up_proj(y, scale=scale)")
    assert found(_mlp(other), "ADP013") == []
    assert found(_mlp(NAMED, act="F.relu"), "ADP013") == []
    assert found(_mlp(IN_PLACE, act="torch.sigmoid"), "ADP013") == []


def test_a_gate_beside_a_module_of_the_input_and_another_tensor_stays_silent():
    attention = NAMED.replace("self.gate_proj(x, scale=scale)", "self.gate_proj(x)").replace(
        "self.up_proj(x, scale=scale)", "self.up_proj(x, y)")
    assert found(_mlp(attention), "ADP013") == []
    differing = NAMED.replace("self.up_proj(x, scale=scale)", "self.up_proj(x, scale=0.25)")
    assert found(_mlp(differing), "ADP013") == []


# ADP012: an optimizer class picked from a class-body table (``methods = {"adam":
# torch.optim.Adam, ...}`` in the class, ``self.methods[self.name](params, ...)``: optimizer
# factories in training code keep their registry on the class as often as in the module), and
# keywords spread from ``**self.optim_args``, a dict the same method builds with literal keys
# (nmtpytorch's Optimizer).  The fix adds ``fused=True`` only when the entry is Adam.
# Near-misses: a table another method adds an entry to, a keyword dict another method may
# give ``fused``, a table of optimizers the rule does not fuse.
OPTIMIZER = textwrap.dedent("""\
    import torch
    import torch.optim


    class Optimizer:
        methods = {
            "adagrad": torch.optim.Adagrad,
            "adam": ADAM,
        }

        def __init__(self, name, params, lr=0.0, momentum=0.0):
            self.name = name
            self.optim_args = {}
            if lr > 0:
                self.optim_args["lr"] = lr
            if name == "sgd":
                self.optim_args["momentum"] = momentum
            self.optim = self.methods[self.name](params, **self.optim_args)  # ctor
        EXTRA
""")


def _optimizer(extra: str = "", adam: str = "torch.optim.Adam") -> str:
    return OPTIMIZER.replace("EXTRA", extra).replace("ADAM", adam)


def test_an_optimizer_from_a_class_body_table_with_a_keyword_dict_of_the_method_is_found():
    code = _optimizer()
    hits = found(code, "ADP012")
    assert [(f.line, f.end_line) for f in hits] == [(line_of(code, "# ctor"),) * 2]


def test_the_fix_passes_fused_only_for_adam_and_builds_the_same_optimizers():
    code = _optimizer()
    result = fix_text(code, "train.py", rules("ADP012"))
    assert result.applied, result.skipped
    assert '**({"fused": True} if self.methods[self.name] is torch.optim.Adam else {})' in result.text
    ns: dict = {}
    exec(compile(result.text, "fixed.py", "exec"), ns)  # noqa: S102 (our own fixture)
    params = [torch.nn.Parameter(torch.randn(3, dtype=torch.float64))]
    adam = ns["Optimizer"]("adam", params, lr=0.01).optim
    assert isinstance(adam, torch.optim.Adam) and adam.defaults["fused"] is True and adam.defaults["lr"] == 0.01
    adagrad = ns["Optimizer"]("adagrad", params, lr=0.01).optim
    assert isinstance(adagrad, torch.optim.Adagrad) and adagrad.defaults.get("fused") in (None, False)


def test_near_misses_a_changed_table_a_keyword_dict_changed_elsewhere_no_fusable_entry():
    store = """
    def add(self, key, klass):
        self.methods[key] = klass"""
    assert found(_optimizer(store), "ADP012") == []
    other = """
    def enable_fused(self):
        self.optim_args["fused"] = True"""
    assert found(_optimizer(other), "ADP012") == []
    assert found(_optimizer(adam="torch.optim.RMSprop"), "ADP012") == []
