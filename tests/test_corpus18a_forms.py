"""Forms found missing while checking the blind batch corpus18a (language, speech, graphs, RL,
molecules and tabular research code from eleven packages new to the corpus).  The fixtures are
ours.

- ADP006: a layer taken from an object with a default, ``getattr(config, "activation",
  nn.GELU())``: the object's attribute if it has one, else the default -- read as a parameter's
  default is (what the object holds is not in the file), so a Linear before it in an
  ``nn.Sequential`` is a bias-GELU site.  The fix passes the module itself to the kernel, which
  runs whatever activation it is at run time.
"""

from __future__ import annotations

import textwrap

from corpus_forms import covered, findings, rules

from adopter.synth import fix_text

# ---------------------------------------------------------------- ADP006: getattr with a default

GETATTR_DEFAULT = textwrap.dedent("""\
    import torch
    from torch import nn


    class Mixer(nn.Module):
        def __init__(self, config, dim):
            super().__init__()
            activation = getattr(config, "activation", nn.GELU())
            gate = getattr(config, "gate", nn.SiLU())
            self.ff = nn.Sequential(nn.LayerNorm(dim), nn.Sequential(nn.Linear(dim, 4 * dim), activation,
                                    nn.Linear(4 * dim, dim)))
            self.gated = nn.Sequential(nn.Linear(dim, dim), gate)
            self.fc = nn.Linear(dim, 2 * dim)
            self.act = getattr(config, "act", nn.GELU())

        def forward(self, x):
            return self.ff(x) + self.gated(x) + self.act(self.fc(x)).mean()  # act
""")


def test_getattr_default_gelu_in_a_sequential_and_an_attribute():
    assert covered(GETATTR_DEFAULT, "nn.Linear(dim, 4 * dim), activation", "ADP006")
    assert covered(GETATTR_DEFAULT, "# act", "ADP006")


def test_getattr_default_near_misses():
    # a SiLU default is no GELU; nor is an attribute name computed at run time, nor an object
    # without a default (what it holds is not in the file)
    assert not covered(GETATTR_DEFAULT, "self.gated = nn.Sequential(nn.Linear(dim, dim), gate)", "ADP006")
    assert len(findings(GETATTR_DEFAULT, "ADP006")) == 2
    computed = GETATTR_DEFAULT.replace('getattr(config, "activation", nn.GELU())',
                                       'getattr(config, config.name, nn.GELU())')
    assert not covered(computed, "nn.Linear(dim, 4 * dim), activation", "ADP006")
    bare = GETATTR_DEFAULT.replace('getattr(config, "activation", nn.GELU())', 'getattr(config, "activation")')
    assert not covered(bare, "nn.Linear(dim, 4 * dim), activation", "ADP006")


def test_getattr_default_fix_runs_what_the_object_holds():
    import torch

    fixed = fix_text(GETATTR_DEFAULT, "model.py", rules("ADP006"))
    assert fixed.error is None and "bias_gelu" in fixed.text

    class Config:
        pass

    relu = Config()
    relu.act = torch.nn.ReLU()  # the object's own activation, not the default
    for config in (Config(), relu):
        original, patched = {}, {}
        exec(compile(GETATTR_DEFAULT, "orig.py", "exec"), original)  # noqa: S102 (our own fixture)
        exec(compile(fixed.text, "fixed.py", "exec"), patched)  # noqa: S102
        torch.manual_seed(0)
        a = original["Mixer"](config, 16).double()
        torch.manual_seed(0)
        b = patched["Mixer"](config, 16).double()
        b.load_state_dict(a.state_dict(), strict=True)
        x = torch.randn(3, 5, 16, dtype=torch.float64)
        # float64, reductions over 16-64 features: eager and fused agree to rounding
        torch.testing.assert_close(b(x), a(x), rtol=1e-12, atol=1e-12)
