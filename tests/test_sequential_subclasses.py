"""nn.Sequential subclasses recognised by what they do: a subclass is a Sequential when its
``__init__`` hands its layers to nn.Sequential's (or adds them with ``add_module`` in order)
and its forward, if it has one, applies each member in order (adopter/structure/layers.py,
``in_order_sequential``, ``runs_in_order``).  Packages written here in tmp_path."""

from __future__ import annotations

import importlib
import sys
import textwrap
from pathlib import Path

import pytest

from adopter.engine import analyze
from adopter.ruleset import load_rules, select_rules
from adopter.structure import package_of
from adopter.synth import fix_text

RULES = select_rules(load_rules(), ["ADP007"])

CHAINS = """\
import torch
from torch import nn


class HalfSafeChain(nn.Sequential):
    \"\"\"Runs its members in order; a flagged member runs in float32 for half inputs.\"\"\"

    def __init__(self, *layers):
        super().__init__(*layers)
        for module in self:
            module.keep_fp32 = isinstance(module, nn.BatchNorm2d)

    def forward(self, x):
        for module in self:
            if getattr(module, "keep_fp32", False) and x.dtype == torch.float16:
                x = module(x.float()).to(x.dtype)
            else:
                x = module(x)
        return x


class Plain(nn.Sequential):
    pass


class Summing(nn.Sequential):
    \"\"\"Every member sees the input: not a chain.\"\"\"

    def __init__(self, *layers):
        super().__init__(*layers)

    def forward(self, x):
        return sum(module(x) for module in self)


class Residual(nn.Sequential):
    def __init__(self, *layers):
        super().__init__(*layers)

    def forward(self, x):
        for module in self:
            x = x + module(x)
        return x


class WithHead(nn.Sequential):
    \"\"\"Adds a member of its own after the ones it is given.\"\"\"

    def __init__(self, *layers):
        super().__init__(*layers)
        self.head = nn.ReLU()
"""

NET = """\
from torch import nn

from ..layers.chains import HalfSafeChain, Plain, Residual, Summing, WithHead


class Net(nn.Module):
    def __init__(self, c=4):
        super().__init__()
        self.chain = HalfSafeChain(
            nn.Conv2d(c, c, 3, padding=1, bias=False),
            nn.BatchNorm2d(c, affine=False),
            nn.ReLU(),
            nn.Conv2d(c, c, 1),
            nn.BatchNorm2d(c),
        )
        self.plain = Plain(nn.Conv2d(c, c, 1), nn.BatchNorm2d(c))
        self.summing = Summing(nn.Conv2d(c, c, 1), nn.BatchNorm2d(c))
        self.residual = Residual(nn.Conv2d(c, c, 1), nn.BatchNorm2d(c))
        self.head = WithHead(nn.Conv2d(c, c, 1), nn.BatchNorm2d(c))

    def forward(self, x):
        x = self.chain(x)
        x = self.plain(x)
        x = self.summing(x)
        x = self.residual(x)
        return self.head(x)
"""


@pytest.fixture
def package(tmp_path):
    for name, text in {
        "vision/__init__.py": "",
        "vision/layers/__init__.py": "",
        "vision/layers/chains.py": CHAINS,
        "vision/models/__init__.py": "",
        "vision/models/net.py": NET,
    }.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def _line(text: str, needle: str, after: int = 0) -> int:
    return next(i for i, line in enumerate(text.split("\n"), 1) if needle in line and i > after)


def test_a_package_subclass_that_runs_its_members_in_order_is_a_sequence(package):
    net = package / "vision/models/net.py"
    text = net.read_text()
    findings = analyze(text, str(net), RULES, package_of(str(net))).findings
    chain = _line(text, "HalfSafeChain(")
    # the chain's two Conv2d -> BatchNorm2d pairs (dtype casts in its loop do not break the
    # chain), and Plain's (nn.Sequential's own forward); not the summing, residual or
    # extra-member subclasses
    assert sorted(f.line for f in findings) == [
        _line(text, "nn.Conv2d(c, c, 3", chain), _line(text, "nn.Conv2d(c, c, 1)", chain),
        _line(text, "self.plain = Plain("),
    ]
    # the container's class cannot become FoldingSequential: it would lose what the subclass adds
    result = fix_text(text, str(net), RULES, package_of(str(net)))
    assert result.error is None and not result.applied and len(result.skipped) == 3
    assert all("nn.Sequential subclass" in why for _, why in result.skipped)


def test_without_the_package_on_disk_nothing_is_assumed(package):
    loose = package / "loose.py"
    loose.write_text(NET.replace("..layers.chains", "vision.layers.chains"))
    assert analyze(loose.read_text(), str(loose), RULES, package_of(str(loose))).findings == []


SAME_FILE = """\
import torch
from torch import nn


class DoubleConv(nn.Sequential):
    def __init__(self, cin, cout, act=True):
        super().__init__()
        self.add_module("conv1", nn.Conv2d(cin, cout, 3, padding=1))
        self.add_module("bn1", nn.BatchNorm2d(cout))
        self.add_module("relu1", nn.ReLU())
        self.add_module("conv2", nn.Conv2d(cout, cout, 3, padding=1))
        self.add_module("bn2", nn.BatchNorm2d(cout))
        if act:
            self.add_module("relu2", nn.ReLU())


class Pair(nn.Sequential):
    \"\"\"Its forward adds the members' outputs: conv and bn never run in a row.\"\"\"

    def __init__(self, c):
        super().__init__(nn.Conv2d(c, c, 1), nn.BatchNorm2d(c))

    def forward(self, x):
        return self[0](x) + self[1](x)


class Net(nn.Module):
    def __init__(self, c=4):
        super().__init__()
        self.block = DoubleConv(c, c)
        self.pair = Pair(c)

    def forward(self, x):
        return self.pair(self.block(x))
"""


def test_members_added_with_add_module_run_in_the_order_they_are_added():
    findings = analyze(SAME_FILE, "net.py", RULES).findings
    assert sorted(f.line for f in findings) == [_line(SAME_FILE, '"conv1"'), _line(SAME_FILE, '"conv2"')]


def test_the_folded_add_module_subclass_computes_what_the_original_does(tmp_path):
    torch = pytest.importorskip("torch")
    result = fix_text(SAME_FILE, "net.py", RULES)
    assert result.error is None and len(result.applied) == 2
    assert "class DoubleConv(FoldingSequential):" in result.text
    assert "import adopter" not in result.text.replace("import adopter_kernels", "").replace(
        "from adopter_kernels", "")
    (tmp_path / "seq_original.py").write_text(SAME_FILE)
    (tmp_path / "seq_fixed.py").write_text(result.text)
    sys.path.insert(0, str(tmp_path))
    try:
        original = importlib.import_module("seq_original").Net().double()
        fixed = importlib.import_module("seq_fixed").Net().double()
    finally:
        sys.path.remove(str(tmp_path))
    torch.manual_seed(0)
    for module in original.modules():  # running statistics that are not the identity
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-1, 1)
            module.running_var.uniform_(0.5, 2)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-1, 1)
    fixed.load_state_dict(original.state_dict(), strict=True)
    original.eval()
    fixed.eval()
    x = torch.randn(2, 4, 8, 8, dtype=torch.float64)
    with torch.no_grad():
        want, got = original(x), fixed(x)
    # float64, a 3x3x4 reduction per output: folding reorders a few roundings of ~1e-16
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    assert not torch.equal(want, x)


GELU_RULES = select_rules(load_rules(), ["ADP006"])

CHAINED_LIST = """\
import torch
from torch import nn
from transformers.activations import ACT2CLS, ACT2FN


class ValueHead(nn.Module):
    def __init__(self, dim, act):
        super().__init__()
        self.blocks = nn.ModuleList([
            nn.Linear(dim, dim // 2),
            ACT2FN[act],
            nn.Linear(dim // 2, 1),
        ])

    def forward(self, x, t):
        x = torch.cat((x, t), dim=-1)
        for block in self.blocks:
            x = block(x)
        return x


class ResidualList(nn.Module):
    \"\"\"Each member adds to the running value: the Linear's output is not the activation's input.\"\"\"

    def __init__(self, dim, act):
        super().__init__()
        self.blocks = nn.ModuleList([nn.Linear(dim, dim), ACT2FN[act]])

    def forward(self, x):
        for block in self.blocks:
            x = x + block(x)
        return x


class Feed(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.ff = nn.Sequential(
            nn.Linear(config.d_model, config.ffn_dim),
            ACT2CLS[config.activation_function](),
            nn.Linear(config.ffn_dim, config.d_model),
        )

    def forward(self, x):
        return self.ff(x)
"""


def test_a_module_list_applied_in_order_and_a_class_table_entry_built_inline():
    findings = analyze(CHAINED_LIST, "heads.py", GELU_RULES).findings
    # ValueHead's Linear -> ACT2FN[act] (members run one after the other by forward's loop) and
    # Feed's Linear -> ACT2CLS[...]() (the class the config names, built in the Sequential);
    # not ResidualList's, whose loop adds each member's output to its input
    assert sorted((f.line, f.end_line) for f in findings) == [
        (_line(CHAINED_LIST, "nn.Linear(dim, dim // 2)"), _line(CHAINED_LIST, "ACT2FN[act],")),
        (_line(CHAINED_LIST, "nn.Linear(config.d_model"), _line(CHAINED_LIST, "ACT2CLS[config"))]
    result = fix_text(CHAINED_LIST, "heads.py", GELU_RULES)
    # Feed's nn.Sequential becomes FoldingSequential (fixrate1: it runs the Linear -> activation
    # pair as bias_gelu does, the activation as written when it is no GELU); ValueHead's
    # ModuleList, applied by a loop, is still declined
    assert result.error is None
    assert [f.line for f in result.applied] == [_line(CHAINED_LIST, "nn.Linear(config.d_model")]
    assert "self.ff = FoldingSequential(" in result.text
    assert [f.line for f, _ in result.skipped] == [_line(result.text, "nn.Linear(dim, dim // 2)")]


NORM_RULES = select_rules(load_rules(), ["ADP005"])

POST_NORM = """\
import torch.nn.functional as F
from torch import nn


class FeedForward(nn.Module):
    def __init__(self, dim, hidden, p):
        super().__init__()
        self.inner = nn.Linear(dim, hidden)
        self.outer = nn.Linear(hidden, dim)
        self.output_dropout = nn.Dropout(p)

    def forward(self, x):
        x = F.gelu(self.inner(x))
        x = self.outer(x)
        x = self.output_dropout(x)
        return x


class Residual(nn.Module):
    \"\"\"Its forward ends with a residual add, not with its dropout.\"\"\"

    def __init__(self, dim, p):
        super().__init__()
        self.proj = nn.Linear(dim, dim)
        self.drop = nn.Dropout(p)

    def forward(self, x):
        return x + self.drop(self.proj(x))


class Layer(nn.Module):
    def __init__(self, dim, feed_forward):
        super().__init__()
        self.feed_forward = feed_forward
        self.final_layer_norm = nn.LayerNorm(dim)

    def forward(self, x):
        return self.final_layer_norm(x + self.feed_forward(x))


class Mixed(nn.Module):
    def __init__(self, dim, block):
        super().__init__()
        self.block = block
        self.norm = nn.LayerNorm(dim)

    def forward(self, x):
        return self.norm(x + self.block(x))


def build(dim=8, depth=2):
    layers = []
    for _ in range(depth):
        ff = FeedForward(dim, 4 * dim, 0.1)
        layers.append(Layer(dim, feed_forward=ff))
    return nn.ModuleList(layers)


def build_mixed(dim=8):
    return [Mixed(dim, FeedForward(dim, dim, 0.1)), Mixed(dim, Residual(dim, 0.1))]
"""


def test_a_parameter_typed_by_what_every_caller_passes_ending_in_dropout():
    findings = analyze(POST_NORM, "layers.py", NORM_RULES).findings
    # Layer: every call passes a FeedForward, whose output is its output dropout's.  Not Mixed:
    # one call passes a FeedForward, another a module ending in a residual add.
    assert [f.line for f in findings] == [_line(POST_NORM, "self.final_layer_norm(x + self.feed_forward(x))")]
    result = fix_text(POST_NORM, "layers.py", NORM_RULES)
    assert result.error is None and not result.applied
    assert [why for _, why in result.skipped] == [
        "`feed_forward`: `FeedForward`'s output is its `output_dropout` Dropout's: the kernel would take over that "
        "member, which it does not reach through a module with its own forward"]


FACTORIES = """\
from torch import nn


class MixedConv(nn.ModuleDict):
    def forward(self, x):
        return sum(m(x) for m in self.values())


def make_pad_conv(cin, cout, k, **kwargs):
    padding = kwargs.pop("padding", "")
    kwargs.setdefault("bias", False)
    return nn.Conv2d(cin, cout, k, padding=padding or k // 2, **kwargs)


def make_conv(cin, cout, k, **kwargs):
    if isinstance(k, list):
        kwargs["split"] = True
        return MixedConv()
    groups = kwargs.pop("groups", 1)
    return make_pad_conv(cin, cout, k, groups=groups, **kwargs)


def make_layer(cin, cout, layer=nn.Conv2d, **kwargs):
    return layer(cin, cout, 1, **kwargs)
"""

BLOCKS = """\
from torch import nn

from ..layers.factories import make_conv, make_layer


class Block(nn.Module):
    def __init__(self, cin, cout, conv_kwargs=None, device=None, dtype=None):
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        conv_kwargs = conv_kwargs or {}
        self.conv1 = make_conv(cin, cout, 3, groups=1, **dd)
        self.bn1 = nn.BatchNorm2d(cout, **dd)
        self.conv2 = make_conv(cout, cout, 1, **conv_kwargs, **dd)
        self.bn2 = nn.BatchNorm2d(cout, **dd)
        self.conv3 = make_layer(cout, cout, **conv_kwargs)
        self.bn3 = nn.BatchNorm2d(cout)

    def forward(self, x):
        x = self.bn1(self.conv1(x))
        x = self.bn2(self.conv2(x))
        return self.bn3(self.conv3(x))
"""


def test_factories_of_the_package_called_with_spread_keywords(package):
    for name, text in {"vision/layers/factories.py": FACTORIES, "vision/models/blocks.py": BLOCKS}.items():
        (package / name).write_text(text)
    path = package / "vision/models/blocks.py"
    findings = analyze(BLOCKS, str(path), RULES, package_of(str(path))).findings
    # conv1: **dd has known keys (device, dtype), which reach make_conv's **kwargs; conv2: the
    # keys of **conv_kwargs are unknown, but make_conv's named parameters are all passed, so
    # they can only reach its **kwargs (and make_pad_conv's, by the same rule).  Not conv3:
    # unknown keywords may set make_layer's `layer` parameter.
    assert sorted(f.line for f in findings) == [_line(BLOCKS, "x = self.bn1("), _line(BLOCKS, "x = self.bn2(")]


NORM_ACT = """\
import torch.nn.functional as F
from torch import nn


class BatchNormAct(nn.BatchNorm2d):
    \"\"\"BatchNorm, then an activation, in one module (timm-style).\"\"\"

    def __init__(self, num_features, act_layer=nn.ReLU):
        super().__init__(num_features)
        self.act = act_layer()

    def forward(self, x):
        assert x.ndim == 4, f"expected 4D input, got {x.ndim}D"
        x = F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                         self.training, self.momentum, self.eps)
        return self.act(x)


class ResidualNorm(nn.BatchNorm2d):
    \"\"\"Adds its input back: its input is read after the norm.\"\"\"

    def forward(self, x):
        y = super().forward(x)
        return y + x


_NORM_ACT = dict(batchnorm=BatchNormAct)


def get_norm_act(norm_layer):
    if isinstance(norm_layer, str):
        layer = _NORM_ACT[norm_layer]
    else:
        layer = norm_layer
    return layer


class Net(nn.Module):
    def __init__(self, c=4, norm_layer=nn.BatchNorm2d):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1)
        self.bn1 = BatchNormAct(c)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1)
        self.bn2 = ResidualNorm(c)
        self.conv3 = nn.Conv2d(c, c, 1)
        norm_act = get_norm_act(norm_layer)
        self.bn3 = norm_act(c)
        self.conv4 = nn.Conv2d(c, c, 1)
        self.add_module("bn4", nn.BatchNorm2d(c)),

    def forward(self, x):
        x = self.bn1(self.conv1(x))
        x = self.bn2(self.conv2(x))
        x = self.bn3(self.conv3(x))
        return self.bn4(self.conv4(x))
"""


def test_norm_modules_that_start_with_a_batch_norm_and_factories_that_may_choose_another():
    findings = analyze(NORM_ACT, "norms.py", RULES).findings
    # bn1: a BatchNorm2d subclass whose forward is the batch norm of its input, then an
    # activation; bn3: a factory that returns the class it is given on one way and one it looks
    # up by a computed key on the other; bn4: added by add_module in a one-element tuple
    # statement.  Not bn2: its forward reads its input again after the norm.
    assert sorted(f.line for f in findings) == [_line(NORM_ACT, "x = self.bn1("), _line(NORM_ACT, "x = self.bn3("),
                                                _line(NORM_ACT, "return self.bn4(")]
    result = fix_text(NORM_ACT, "norms.py", RULES)
    # bn3: the table is read (its one entry, BatchNormAct, or the class given): the layer is
    # one of two known classes, as one bound under if/else is, and the kernel runs any class
    # but a plain BatchNorm2d as written
    assert result.error is None and len(result.applied) == 2  # bn3's and bn4's pairs
    left = sorted(why for _, why in result.skipped)
    assert left == [
        "`bn1`: `BatchNormAct` overrides forward with the BatchNorm2d computation on its input first, then more "
        "steps on its output (an activation): the kernel would not run it as written"]
    # a class the factory computes in a way not read here (getattr by a name): may be another
    unread = NORM_ACT.replace("layer = _NORM_ACT[norm_layer]", "layer = getattr(nn, norm_layer)")
    assert sorted(f.line for f in analyze(unread, "norms.py", RULES).findings) == sorted(
        f.line for f in findings)
    result = fix_text(unread, "norms.py", RULES)
    assert result.error is None and len(result.applied) == 1  # bn4's pair
    assert sorted(why for _, why in result.skipped)[1] == (
        "`bn3`: `get_norm_act` may return another class than `torch.nn.BatchNorm2d` (one it computes at run time)")


# research131 (session 47): an nn.Sequential subclass whose forward runs nn.Sequential's own
# forward and then calls a child its __init__ binds (a change-detection fuse block:
# ``out = super(Fuse, self).forward(x)``, then ``self.relu(out + residual)``) still runs its
# members in order; a child bound between the members, or rebound in forward, is not skipped.
OWN_CHILDREN = textwrap.dedent('''
    from torch import nn


    class Fuse(nn.Sequential):
        def __init__(self, cin, cout):
            super(Fuse, self).__init__(
                nn.Conv2d(cin, cout, kernel_size=1),
                nn.BatchNorm2d(cout),
            )
            self.relu = nn.ReLU(True)

        def forward(self, x):
            out = super(Fuse, self).forward(x)
            residual = out
            out = out * 2
            out += residual
            return self.relu(out)


    class Between(nn.Sequential):
        def __init__(self, cin, cout):
            super().__init__(nn.Conv2d(cin, cout, 1))
            self.act = nn.ReLU()
            self.bn = nn.BatchNorm2d(cout)

        def forward(self, x):
            return self.act(super().forward(x))


    class Rebound(nn.Sequential):
        def __init__(self, c):
            super().__init__(nn.Conv2d(c, c, 1), nn.BatchNorm2d(c))
            self.act = nn.ReLU()

        def forward(self, x):
            self.act = nn.Identity()
            return self.act(super().forward(x))
''')


def test_a_forward_calling_its_own_children_around_the_chain_keeps_the_sequence():
    findings = [f for f in analyze(OWN_CHILDREN, "fuse.py", RULES).findings if f.rule == "ADP007"]
    assert [(f.line, f.end_line) for f in findings] == [(_line(OWN_CHILDREN, "nn.Conv2d(cin, cout, kernel_size=1)"),
                                                        _line(OWN_CHILDREN, "nn.BatchNorm2d(cout),"))]


def test_children_bound_after_the_members_run_inside_the_chain():
    # what makes ``Between`` silent: nn.Sequential's forward runs every registered child in
    # order, the ReLU bound in __init__ included, between the convolution and the norm
    torch = pytest.importorskip("torch")
    nn = torch.nn
    namespace: dict = {}
    exec(compile(OWN_CHILDREN, "fuse.py", "exec"), namespace)
    torch.manual_seed(0)
    block = namespace["Between"](3, 4).eval()
    with torch.no_grad():  # (fresh statistics make the norm an identity that commutes with ReLU)
        block.bn.running_mean.uniform_(0.5, 1.0)
        block.bn.running_var.uniform_(0.5, 2.0)
        block.bn.bias.uniform_(-1.0, -0.5)
    x = torch.randn(2, 3, 5, 5)
    chain = nn.Sequential.forward(block, x)
    expected = block.bn(torch.relu(block[0](x)))
    assert torch.allclose(chain, expected, atol=1e-6)
    assert not torch.allclose(chain, torch.relu(block.bn(block[0](x))), atol=1e-3)
