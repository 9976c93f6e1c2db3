"""Activation keys handed to another module's activation function (keys93; lbster's
ModernBERT MLPs, research129).  The fixtures are ours.

- An activation module of the package holds ``FNS = Instantier(TABLE)``: ``Instantier`` derives
  from ``OrderedDict`` and its one method ``__getitem__`` reads the stored entry and returns it
  called (a ``(class, kwargs)`` pair's class with the kwargs), so ``FNS[key]`` is
  ``TABLE[key]()``.  ``get_act(config)`` there returns ``FNS[config]`` for a string, else
  ``FNS[config.hidden_act]``.  Called from another module with a run-time key
  (``get_act(config.hidden_act)``), the layer is any of the table's activations, GELU among
  them: a Linear before it is a bias-GELU site (ADP006, fixed with ``bias_gelu``, which fuses
  only when the module it is handed at run time is a GELU), and a SiLU gate of a chunked
  projection is a SwiGLU site (ADP013).  The same holds for the table in the checked file.
- Look-alikes stay silent: a table whose "gelu" maps to another class; a class the file builds
  with its "silu" default only (the key never reaches GELU: yet-another-retnet's ruling); a
  dict subclass whose ``__getitem__`` does not build the entry, or that has a second method;
  a table the package changes in place.
"""

from __future__ import annotations

import textwrap

import pytest
from corpus_forms import edit, float64_pair, line_of, rules

from adopter.engine import analyze
from adopter.structure import package_of
from adopter.synth import fix_text

ACTS = textwrap.dedent("""\
    from collections import OrderedDict

    import torch.nn as nn


    class Instantier(OrderedDict):
        def __getitem__(self, key):
            content = super().__getitem__(key)
            cls, kwargs = content if isinstance(content, tuple) else (content, {})
            return cls(**kwargs)


    TABLE = {
        "gelu": nn.GELU,
        "gelu_tanh": (nn.GELU, {"approximate": "tanh"}),
        "relu": nn.ReLU,
        "silu": nn.SiLU,
    }
    FNS = Instantier(TABLE)


    def get_act(config):
        if isinstance(config, str):
            return FNS[config]
        return FNS[config.hidden_act]
""")

MLP = textwrap.dedent("""\
    import torch.nn as nn

    from .acts import get_act


    class FeedForward(nn.Module):
        def __init__(self, config):
            super().__init__()
            self.wi = nn.Linear(config.hidden_size, config.intermediate_size)
            self.act = get_act(config.hidden_act)
            self.wo = nn.Linear(config.intermediate_size, config.hidden_size)

        def forward(self, x):
            return self.wo(self.act(self.wi(x)))  # site


    class Gated(nn.Module):
        def __init__(self, config):
            super().__init__()
            self.wi = nn.Linear(config.hidden_size, config.intermediate_size * 2)
            self.act = get_act(config.hidden_act)
            self.wo = nn.Linear(config.intermediate_size, config.hidden_size)

        def forward(self, x):
            a, g = self.wi(x).chunk(2, dim=-1)
            return self.wo(self.act(a) * g)  # gated
""")


def _package(tmp_path, acts: str, mlp: str, init: str = ""):
    """The two modules in a fresh package folder (a module of the package is read once per
    path, size and modification time: each variant gets its own folder)."""
    top = tmp_path / f"v{len(list(tmp_path.iterdir()))}" / "actpkg"
    (top / "layers").mkdir(parents=True)
    (top / "__init__.py").write_text(init)
    (top / "layers" / "__init__.py").touch()
    (top / "layers" / "acts.py").write_text(acts)
    path = top / "layers" / "mlp.py"
    path.write_text(mlp)
    return str(path)


def _at(code: str, path: str, rule: str, needle: str) -> list:
    line = line_of(code, needle)
    return [f for f in analyze(code, path, rules(rule), package_of(path)).findings
            if f.rule == rule and f.line <= line <= f.end_line]


def test_a_run_time_key_into_another_modules_instantiating_table_is_a_site(tmp_path):
    path = _package(tmp_path, ACTS, MLP)
    assert len(_at(MLP, path, "ADP006", "# site")) == 1
    assert len(_at(MLP, path, "ADP013", "# gated")) == 1
    # the table imported and read in place is the same reading
    direct = edit(MLP, "from .acts import get_act", "from .acts import FNS")
    direct = direct.replace("get_act(config.hidden_act)", "FNS[config.hidden_act]")
    path = _package(tmp_path, ACTS, direct)
    assert len(_at(direct, path, "ADP006", "# site")) == 1


def test_the_fix_hands_the_run_time_module_to_the_guarded_kernel(tmp_path):
    path = _package(tmp_path, ACTS, MLP)
    fixed = fix_text(MLP, path, rules("ADP006"), package=package_of(path)).text
    assert "bias_gelu(x, self.wi, self.act)" in fixed


def test_look_alikes_stay_silent(tmp_path):
    no_gelu = edit(ACTS, '"gelu": nn.GELU,', '"gelu": nn.ReLU,')
    no_gelu = edit(no_gelu, '"gelu_tanh": (nn.GELU, {"approximate": "tanh"}),', "")
    path = _package(tmp_path, no_gelu, MLP)
    assert _at(MLP, path, "ADP006", "# site") == []
    # the entry read but not built: the item is no layer
    unbuilt = edit(ACTS, "return cls(**kwargs)", "return nn.Identity()")
    path = _package(tmp_path, unbuilt, MLP)
    assert _at(MLP, path, "ADP006", "# site") == []
    assert _at(MLP, path, "ADP013", "# gated") == []
    # a second method may change what an item read gives: not read as a table
    second = edit(ACTS, "    def __getitem__(self, key):",
                  "    def __missing__(self, key):\n        return nn.Identity\n\n    def __getitem__(self, key):")
    path = _package(tmp_path, second, MLP)
    assert _at(MLP, path, "ADP006", "# site") == []
    # the package changes the table in place: its literal is not what a read finds
    direct = edit(MLP, "from .acts import get_act", "from .acts import FNS")
    direct = direct.replace("get_act(config.hidden_act)", "FNS[config.hidden_act]")
    path = _package(tmp_path, ACTS, direct,
                    init="import torch.nn as nn\nfrom .layers.acts import FNS\nFNS['gelu'] = nn.ReLU\n")
    assert _at(direct, path, "ADP006", "# site") == []


def test_a_silu_key_the_file_always_builds_with_stays_silent(tmp_path):
    """The key never reaches GELU: the feed-forward's own "silu" default is the only one the
    file builds it with (yet-another-retnet's ruling)."""
    built = textwrap.dedent("""\
        import torch.nn as nn

        from .acts import get_act


        class FeedForward(nn.Module):
            def __init__(self, d, act="silu"):
                super().__init__()
                self.wi = nn.Linear(d, 4 * d)
                self.act = get_act(act)
                self.wo = nn.Linear(4 * d, d)

            def forward(self, x):
                return self.wo(self.act(self.wi(x)))  # site


        class Block(nn.Module):
            def __init__(self, d):
                super().__init__()
                self.ff = FeedForward(d)

            def forward(self, x):
                return x + self.ff(x)
    """)
    path = _package(tmp_path, ACTS, built)
    assert _at(built, path, "ADP006", "# site") == []
    gelu = edit(built, "self.ff = FeedForward(d)", 'self.ff = FeedForward(d, act="gelu")')
    path = _package(tmp_path, ACTS, gelu)
    assert len(_at(gelu, path, "ADP006", "# site")) == 1


SAME_FILE = ACTS + textwrap.dedent("""\


    class FeedForward(nn.Module):
        def __init__(self, d=8, inner=16, act="gelu"):
            super().__init__()
            self.wi = nn.Linear(d, inner)
            self.act = FNS[act]
            self.wo = nn.Linear(inner, d)

        def forward(self, x):
            return self.wo(self.act(self.wi(x)))  # site
""")


def test_the_same_file_table_and_its_look_alikes():
    assert len(_at(SAME_FILE, "model.py", "ADP006", "# site")) == 1
    written = edit(SAME_FILE, "FNS = Instantier(TABLE)\n", "FNS = Instantier(TABLE)\nFNS['gelu'] = nn.ReLU\n")
    assert _at(written, "model.py", "ADP006", "# site") == []
    # a written-out key: its one entry (a run-time key into a same-file table is a site
    # whatever the parameter's default, as for a plain dict: the fix's kernel guards it)
    relu = edit(SAME_FILE, "self.act = FNS[act]", 'self.act = FNS["relu"]')
    assert _at(relu, "model.py", "ADP006", "# site") == []
    tanh = edit(SAME_FILE, "self.act = FNS[act]", 'self.act = FNS["gelu_tanh"]')
    assert len(_at(tanh, "model.py", "ADP006", "# site")) == 1


def test_the_fixed_feed_forward_computes_what_it_did():
    """Every key of the table, on real torch modules: the fixed feed-forward's outputs and
    gradients are the original's (float64; the guarded kernel runs the module as written
    where it is no GELU)."""
    torch = pytest.importorskip("torch")
    fixed = fix_text(SAME_FILE, "model.py", rules("ADP006")).text
    assert "bias_gelu(" in fixed
    for key in ("gelu", "gelu_tanh", "relu", "silu"):
        a, b = float64_pair(SAME_FILE, fixed, "FeedForward", act=key)
        x = torch.randn(4, 5, 8, dtype=torch.float64, requires_grad=True)
        y = x.detach().clone().requires_grad_(True)
        out_a, out_b = a(x), b(y)
        torch.testing.assert_close(out_b, out_a, rtol=1e-12, atol=1e-12)
        out_a.sum().backward()
        out_b.sum().backward()
        torch.testing.assert_close(y.grad, x.grad, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(b.wi.weight.grad, a.wi.weight.grad, rtol=1e-12, atol=1e-12)
