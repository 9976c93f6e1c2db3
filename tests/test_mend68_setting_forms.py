"""mend68 (session 44): when a module's construction setting does NOT decide its activation.

research111 read a module whose ``__init__`` picks its activation member from a string
(``if act_type == "relu": self.act = ... elif act_type == "gelu": self.act = ...``, an ``else``
that raises; forward ``return self.act(x)``) as the activation the construction's string picks.
review54 found it reported GELU where the string or the member is not what the file decides:

1. the string: a parameter whose default is "gelu" but whose class the file builds with a
   run-time value, hands on as a value, subclasses with "relu", wraps in ``functools.partial``
   with "relu" or registers in a dict -- only the parameter's decided keys count (as for
   torch's ``_get_activation_fn``), never its default alone;
2. the member bound again after the chain at any depth (an ``if``, a loop), by ``setattr``, or
   by a second chain;
3. the string bound again before the chain (under a test that is no comparison, or plainly);
4. a value tested twice: the FIRST arm that matches is the one Python runs.

The fixtures are ours.  Sites that must still be found: the default every construction keeps,
a literal construction, the chain followed by bindings of OTHER attributes.
"""

from __future__ import annotations

import textwrap

import pytest
from corpus_forms import line_of, rules

from adopter.engine import analyze
from adopter.structure import package_of

PICKER = textwrap.dedent("""\
    import functools

    import torch
    from torch import nn


    class Picker(nn.Module):
        def __init__(self, kind, inplace=False, reset=False):
            super().__init__()
    BEFORE
            if kind == "relu":
                self.fn = nn.ReLU(inplace=inplace)
            elif kind == "gelu":
                self.fn = nn.GELU()
            else:
                raise ValueError(kind)
    AFTER

        def forward(self, h):
            return self.fn(h)


    class FeedForward(nn.Module):
        def __init__(self, width, inner, kind="gelu"):
            super().__init__()
            self.up = nn.Linear(width, inner)
            self.fn = Picker(kind=kind)
            self.down = nn.Linear(inner, width)

        def forward(self, h):
            h = self.up(h)
            h = self.fn(h)  # site
            return self.down(h)
    TAIL
""")


def _code(before: str = "", after: str = "", tail: str = "", chain: str | None = None) -> str:
    code = PICKER.replace("BEFORE\n", textwrap.indent(before, " " * 8)) \
        .replace("AFTER\n", textwrap.indent(after, " " * 8)).replace("TAIL\n", tail)
    if chain is not None:
        code = code.replace('elif kind == "gelu":', chain)
    return code


def _sites(code: str, path: str = "model.py", package=None) -> list:
    line = line_of(code, "# site")
    return [f for f in analyze(code, path, rules("ADP006"), package).findings
            if f.rule == "ADP006" and f.line <= line <= f.end_line]


# --- sites that stay found --------------------------------------------------------------------

def test_the_default_every_construction_keeps_is_a_site():
    assert len(_sites(_code())) == 1
    built = "\n\nclass Net(nn.Module):\n    def __init__(self):\n        super().__init__()\n" \
            "        self.ff = FeedForward(8, 32)\n"
    assert len(_sites(_code(tail=built))) == 1


def test_a_construction_passing_gelu_is_a_site():
    code = _code(tail='\n\ndef build():\n    return FeedForward(8, 32, kind="gelu"), FeedForward(4, 16)\n')
    assert len(_sites(code)) == 1
    # one construction passing "relu": the file's strings pick two activations
    assert not _sites(code.replace("FeedForward(4, 16)", 'FeedForward(4, 16, kind="relu")'))


def test_bindings_of_other_attributes_after_the_chain_keep_the_site():
    after = 'self.inplace = inplace\nsetattr(self, "reset_flag", reset)\nif reset:\n    self.other = nn.ReLU()\n'
    assert len(_sites(_code(after=after))) == 1


# --- 1. a string the file does not decide -----------------------------------------------------

RUNTIME = "\n\nclass Net(nn.Module):\n    def __init__(self, cfg):\n        super().__init__()\n" \
          "        self.ff = FeedForward(8, 32, kind=cfg.kind)\n"
HANDED = '\n\ndef make(block=FeedForward):\n    return block(8, 32, kind="relu")\n'
SUBCLASS = '\n\nclass Wide(FeedForward):\n    def __init__(self):\n        super().__init__(8, 64, kind="relu")\n'
PARTIAL = '\n\nReluFeedForward = functools.partial(FeedForward, kind="relu")\n'
REGISTRY = '\n\nBLOCKS = {"ff": FeedForward}\n'


@pytest.mark.parametrize("tail", [RUNTIME, HANDED, SUBCLASS, PARTIAL, REGISTRY],
                         ids=["runtime", "handed", "subclass", "partial", "registry"])
def test_a_default_the_file_does_not_decide_stays_silent(tail):
    assert not _sites(_code(tail=tail))


def test_a_sibling_module_built_with_a_runtime_string_stays_silent(tmp_path):
    top = tmp_path / "netpkg"
    (top / "layers").mkdir(parents=True)
    (top / "__init__.py").touch()
    (top / "layers" / "__init__.py").touch()
    code = _code()
    (top / "layers" / "pick.py").write_text(code[:code.index("class FeedForward")])
    head = "import torch\nfrom torch import nn\n\nfrom .pick import Picker\n\n\n"
    ff = code[code.index("class FeedForward"):]
    for tail, expected in (("", 1), ('\n\nclass Net(nn.Module):\n    def __init__(self, cfg):\n'
                                     '        super().__init__()\n        self.ff = FeedForward(8, 32, kind=cfg["k"])\n', 0)):
        path = top / "layers" / "mlp.py"
        path.write_text(head + ff + tail)
        text = path.read_text()
        assert len(_sites(text, str(path), package_of(str(path)))) == expected, tail


# --- 2. the member bound again after the chain ----------------------------------------------

@pytest.mark.parametrize("after", [
    "if reset:\n    self.fn = nn.Identity()\n",
    "for _ in range(1):\n    self.fn = nn.ReLU()\n",
    "with torch.no_grad():\n    self.fn, self.extra = nn.ReLU(), None\n",
    'if kind == "gelu":\n    self.fn = nn.ReLU()\n',
    'setattr(self, "fn", nn.ReLU())\n',
    "name = 'f' + 'n'\nsetattr(self, name, nn.ReLU())\n",
    "del self.fn\nself.fn = nn.ReLU()\n",
], ids=["nested-if", "loop", "tuple-in-with", "second-chain", "setattr", "setattr-runtime-name", "del"])
def test_the_member_bound_again_after_the_chain_stays_silent(after):
    assert not _sites(_code(after=after))


# --- 3. the string bound again before (or after) the chain -------------------------------------

@pytest.mark.parametrize("before, after", [
    ('if reset:\n    kind = "relu"\n', ""),
    ('kind = "relu"\n', ""),
    ('for kind in ("relu",):\n    pass\n', ""),
    ("", 'kind = "relu"\nif kind == "relu":\n    self.fn = nn.ReLU()\n'),
    ("", "kind = kind.lower()\n"),
], ids=["under-a-flag", "plain", "loop-target", "second-chain-on-a-new-string", "lowered-after"])
def test_the_string_bound_again_stays_silent(before, after):
    assert not _sites(_code(before=before, after=after))


def test_the_string_bound_again_under_a_flag_the_construction_sets_stays_silent():
    code = _code(before='if reset:\n    kind = "relu"\n').replace("Picker(kind=kind)", "Picker(kind=kind, reset=True)")
    assert not _sites(code)


# --- 4. a value tested twice: the first matching arm runs ------------------------------------

FIRST_WINS = 'elif kind == "gelu" or kind == "relu":'


def test_a_value_tested_twice_reads_its_first_arm():
    # "relu" is tested again in the GELU arm: the first (ReLU) arm runs, so a "relu" setting is
    # no site; "gelu" reaches the second arm
    code = _code(chain=FIRST_WINS)
    assert len(_sites(code)) == 1
    assert not _sites(code.replace('kind="gelu"):', 'kind="relu"):'))
    first_relu = code.replace('if kind == "relu":', 'if kind == "relu" or kind == "gelu":')
    assert not _sites(first_relu)


def test_python_runs_the_first_matching_arm():
    """The reading's premise on real torch modules: with "gelu" tested in both arms the module is
    the first arm's ReLU, not F.gelu; with the chain as written it is exactly F.gelu."""
    torch = pytest.importorskip("torch")
    x = torch.randn(64, 16, dtype=torch.float64)
    for code, is_gelu in ((_code(), True),
                          (_code().replace('if kind == "relu":', 'if kind == "relu" or kind == "gelu":'), False)):
        scope: dict = {}
        exec(compile(code, "picker.py", "exec"), scope)  # noqa: S102
        out = scope["Picker"]("gelu")(x)
        assert torch.equal(out, torch.nn.functional.gelu(x)) is is_gelu
        assert torch.equal(out, torch.relu(x)) is not is_gelu
