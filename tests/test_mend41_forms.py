"""review41's counter-examples to session 38's merged fixes (mend41): our own fixtures.

- an RMSNorm helper whose ``dim`` defaults to the last axis is fixed (its text rewritten for
  every use) only where every use of its name is a direct call leaving ``dim`` at that default:
  a positional override, a method helper called with ``dim=1``, a call at the module's top
  level, the helper stored on ``self`` or wrapped in a lambda passing another axis all decline
  (the finding is still reported).
"""

from __future__ import annotations

import textwrap

import pytest
from corpus_forms import rules

from adopter.engine import analyze
from adopter.synth.fixable import plan_findings

HEADER = "import torch\nimport torch.nn as nn\n\n\n"

HELPER = textwrap.dedent("""\
    def rms_norm(x, weight, dim=-1, eps=1e-6):
        var = x.pow(2).mean(dim=dim, keepdim=True)
        return x * torch.rsqrt(var + eps) * weight


    class Block(nn.Module):
        def __init__(self, d):
            super().__init__()
            self.weight = nn.Parameter(torch.ones(d))

        def forward(self, x):
            return rms_norm(x, self.weight)
    """)


def _other(init: str, call: str) -> str:
    return textwrap.dedent(f"""\


        class Other(nn.Module):
            def __init__(self, d):
                super().__init__()
                self.weight = nn.Parameter(torch.ones(d)){init}

            def forward(self, x):
                return {call}
        """)


METHOD_HELPER = HEADER + textwrap.dedent("""\
    class Block(nn.Module):
        def __init__(self, d):
            super().__init__()
            self.weight = nn.Parameter(torch.ones(d))

        def _norm(self, x, dim=-1, eps=1e-6):
            var = x.pow(2).mean(dim=dim, keepdim=True)
            return x * torch.rsqrt(var + eps)

        def forward(self, x):
            return self._norm(x) * self.weight{extra}
    """)

OVERRIDES = {
    "lambda-at-module-level": HEADER + HELPER + "\n\nnorm0 = lambda x, w: rms_norm(x, w, dim=0)\n",
    "positional-axis": HEADER + HELPER.replace("mean(dim=dim,", "mean(dim,") + _other("", "rms_norm(x, self.weight, 1)"),
    "stored-on-self": HEADER + HELPER + _other("\n                self.norm = rms_norm", "self.norm(x, self.weight, dim=1)"),
    "method-helper": METHOD_HELPER.format(extra=" + self._norm(x, dim=1)"),
    "main-block": HEADER + HELPER + '\n\nif __name__ == "__main__":\n    print(rms_norm(torch.randn(4, 3), torch.ones(4), dim=0))\n',
}

DEFAULTS_ONLY = {
    "module-helper": HEADER + HELPER + _other("", "rms_norm(x, self.weight, -1)"),
    "positional-axis": HEADER + HELPER.replace("mean(dim=dim,", "mean(dim,") + _other("", "rms_norm(x, self.weight, dim=-1)"),
    "method-helper": METHOD_HELPER.format(extra=" + self._norm(x, -1)"),
}


def _planned(code: str, rule: str = "ADP011"):
    analysis = analyze(code, "model.py", rules(rule))
    return [f for f in plan_findings(analysis, code, "model.py") if f.rule == rule]


@pytest.mark.parametrize("form", sorted(OVERRIDES))
def test_a_helper_some_use_may_pass_another_axis_is_reported_not_fixed(form):
    planned = _planned(OVERRIDES[form])
    assert planned, form
    assert all(f.fixable is False and "by default" in f.not_fixable for f in planned), form


@pytest.mark.parametrize("form", sorted(DEFAULTS_ONLY))
def test_a_helper_every_use_leaves_at_the_last_axis_is_still_fixable(form):
    planned = _planned(DEFAULTS_ONLY[form])
    assert planned and all(f.fixable for f in planned), form


# ---------------------------------------- a temperature tensor folded into q only when 0-d
# (ADP010: ``scores * t`` equals ``(q * t) @ k^T`` only where t is the same for every key)


def _window(init: str, scale: str) -> str:
    return HEADER + textwrap.dedent(f"""\
        class WindowAttention(nn.Module):
            def __init__(self, dim, heads, key_temps):
                super().__init__()
                self.heads = heads
                self.qkv = nn.Linear(dim, dim * 3)
                self.proj = nn.Linear(dim, dim)
                {init}

            def forward(self, x):
                b, n, c = x.shape
                qkv = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
                q, k, v = qkv[0], qkv[1], qkv[2]
                attn = (q @ k.transpose(-2, -1)) * {scale}
                attn = attn.softmax(dim=-1)
                out = (attn @ v).transpose(1, 2).reshape(b, n, c)
                return self.proj(out)
        """)


def _with_signature(code: str, params: str) -> str:
    old = "def __init__(self, dim, heads, key_temps):"
    assert old in code
    return code.replace(old, f"def __init__(self, dim, heads, key_temps, {params}):")


PER_KEY = {
    # one temperature per key of a fixed window, made a tensor in __init__ or in forward
    "parameter-of-a-setting": _window("self.temp = nn.Parameter(torch.tensor(key_temps))", "self.temp"),
    "tensor-of-a-list-attribute": _window("self.key_temps = list(key_temps)",
                                          "torch.tensor(self.key_temps, device=x.device)"),
    # a tuple default is one temperature per key; a number default the constructor rebinds
    "tuple-default": _with_signature(_window("self.temps = temps", "torch.tensor(self.temps, device=x.device)"),
                                     "temps=(1.0, 0.5, 2.0, 1.0)"),
    "number-default-rebound": _with_signature(_window("temp = list(key_temps); self.temps = temp",
                                                      "torch.tensor(self.temps, device=x.device)"), "temp=1.0"),
}

ZERO_D = {
    # a number computed from a setting: a 0-d tensor
    "power-of-a-setting": _window("self.temp = nn.Parameter(torch.tensor(dim ** -0.5))", "self.temp"),
    "setting-over-a-literal": _window("self.temp = nn.Parameter(torch.tensor(dim / 8.0))", "self.temp"),
    "tensor-of-a-number-attribute": _window("self.scale = dim ** -0.5",
                                            "torch.tensor(self.scale, device=x.device)"),
    # a setting the constructor declares a number (linformer's ``torch.tensor(self.dim)`` with
    # ``dim=8``: tests/test_rafix38_forms.py) by its default or its annotation
    "number-default": _with_signature(_window("self.temp_dim = temp_dim",
                                              "torch.tensor(self.temp_dim, device=x.device)"), "temp_dim=8"),
    "float-annotation": _with_signature(_window("self.temp_dim = temp_dim",
                                                "torch.tensor(self.temp_dim, device=x.device)"), "temp_dim: float"),
}


@pytest.mark.parametrize("form", sorted(PER_KEY))
def test_a_temperature_per_key_is_not_folded_into_q(form):
    planned = _planned(PER_KEY[form], "ADP010")
    assert planned, form
    assert all(f.fixable is False and "differs between keys" in f.not_fixable for f in planned), form


@pytest.mark.parametrize("form", sorted(ZERO_D))
def test_a_temperature_computed_from_a_setting_is_still_folded(form):
    planned = _planned(ZERO_D[form], "ADP010")
    assert planned and all(f.fixable for f in planned), (form, [f.not_fixable for f in planned])
