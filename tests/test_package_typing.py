"""Layer typing across the modules of one package (adopter/structure/siblings.py), and modules
whose forward returns a convolution's output, on small packages written here in tmp_path."""

from __future__ import annotations

import importlib
import os
import sys
import textwrap
from pathlib import Path

import pytest

from adopter.engine import analyze
from adopter.ruleset import load_rules, select_rules
from adopter.structure import package_of
from adopter.synth import fix_text

RULES = select_rules(load_rules(), ["ADP007", "ADP009"])

CONV = """\
from functools import partial

import torch.nn.functional as F
from torch import nn


def conv1x1(cin, cout, stride=1):
    return nn.Conv2d(cin, cout, 1, stride=stride, bias=False)


def conv_act(cin, cout):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU())


def relu_layer():
    return nn.ReLU()


def conv_or(cin, cout, layer=nn.Conv2d):
    return layer(cin, cout, 1)


class SameConv2d(nn.Conv2d):
    \"\"\"Pads its input, then convolves with its own weight and bias.\"\"\"

    def forward(self, x):
        x = F.pad(x, [1, 1, 1, 1])
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def get_conv(size=None):
    if size is None:
        return SameConv2d
    return partial(SameConv2d, padding_mode="zeros")
"""

NORM = """\
from torch import nn

Norm2d = nn.BatchNorm2d
"""

NET = """\
from torch import nn

from ..layers import conv1x1, conv_act, conv_or, get_conv, relu_layer
from ..layers import Norm2d
from vision.layers.conv import SameConv2d
from other.blocks import conv3x3


class Net(nn.Module):
    def __init__(self, c=8, size=None):
        super().__init__()
        self.conv1 = conv1x1(3, c)
        self.bn1 = nn.BatchNorm2d(c)
        Conv = get_conv(size)
        self.conv2 = Conv(c, c, 3)
        self.bn2 = nn.BatchNorm2d(c)
        self.conv3 = SameConv2d(c, c, 3)
        self.bn3 = Norm2d(c)
        self.block = conv_act(c, c)
        self.bn4 = nn.BatchNorm2d(c)
        self.act = relu_layer()
        self.bn5 = nn.BatchNorm2d(c)
        self.conv6 = conv3x3(c, c)
        self.bn6 = nn.BatchNorm2d(c)
        self.conv7 = conv_or(c, c, layer=nn.Linear)
        self.bn7 = nn.BatchNorm2d(c)
        self.conv8 = conv_or(c, c)
        self.bn8 = nn.BatchNorm2d(c)

    def forward(self, x):
        x = self.bn1(self.conv1(x))
        x = self.bn2(self.conv2(x))
        x = self.bn3(self.conv3(x))
        x = self.bn4(self.block(x))
        x = self.bn5(self.act(x))
        x = self.bn6(self.conv6(x))
        y = self.bn7(self.conv7(x.transpose(1, 3)))
        x = self.bn8(self.conv8(x))
        return x
"""

OTHER = """\
from torch import nn


def conv3x3(cin, cout):
    return nn.Conv2d(cin, cout, 3, padding=1, bias=False)
"""


def _write(root: Path, files: dict) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


@pytest.fixture
def package(tmp_path):
    _write(tmp_path, {
        "vision/__init__.py": "",
        "vision/layers/__init__.py": "from .conv import *\nfrom .norm import Norm2d\n",
        "vision/layers/conv.py": CONV,
        "vision/layers/norm.py": NORM,
        "vision/models/__init__.py": "",
        "vision/models/net.py": NET,
        "other/__init__.py": "",
        "other/blocks.py": OTHER,
    })
    return tmp_path


def _findings(path: Path):
    """(lines of the ADP007/ADP009 findings, the attributes whose findings fix leaves and why)
    in a file of a package on disk."""
    text = path.read_text()
    package = package_of(str(path))
    lines = {f.line for f in analyze(text, str(path), RULES, package).findings}
    result = fix_text(text, str(path), RULES, package)
    assert result.error is None
    assert len(result.applied) + len(result.skipped) == len(lines)
    return lines, {why.split("`")[1]: why for _, why in result.skipped}


def _line(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.split("\n"), 1) if needle in line)


def test_layers_built_in_other_modules_of_the_package(package):
    net = package / "vision/models/net.py"
    text = net.read_text()
    at = {name: _line(text, f"self.{name}(x") for name in ("conv1", "conv2", "conv3", "conv8")}
    lines, left = _findings(net)
    # conv1: conv1x1 (imported through a star re-export) returns an nn.Conv2d; conv2: a class
    # chosen by get_conv, a Conv2d subclass that pads first; conv3: the same class imported by
    # absolute name (its BatchNorm an alias there); conv8: the default layer class of the other
    # module's parameter.  Not: a Sequential ending in ReLU, a ReLU, another package's factory,
    # a Linear passed in.
    assert lines == set(at.values())
    assert set(left) == {"conv2", "conv3"}
    assert all("`SameConv2d` overrides forward" in why for why in left.values())


LAMBDAS = """\
from inspect import isfunction

from torch import nn


def lambda_batchnorm2d(eps=1e-5):
    return lambda num_features: nn.BatchNorm2d(num_features=num_features, eps=eps)


def lambda_groupnorm(groups=2):
    return lambda num_features: nn.GroupNorm(groups, num_features)


def create_normalization_layer(normalization, **kwargs):
    if isfunction(normalization):
        return normalization(**kwargs)
    return normalization
"""

BLOCK = """\
from torch import nn

from ..layers.lambdas import create_normalization_layer, lambda_batchnorm2d, lambda_groupnorm


class ConvBlock(nn.Module):
    def __init__(self, cin, cout, normalization=lambda_batchnorm2d()):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
        self.bn = create_normalization_layer(normalization=normalization, num_features=cout)

    def forward(self, x):
        return self.bn(self.conv(x))


class GroupBlock(nn.Module):
    def __init__(self, cin, cout, normalization=lambda_groupnorm()):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
        self.bn = create_normalization_layer(normalization=normalization, num_features=cout)

    def forward(self, x):
        return self.bn(self.conv(x))
"""


def test_a_lambda_returned_by_another_module_builds_its_layer(package):
    """pytorchcv's norm defaults: a function of another module returns ``lambda c:
    nn.BatchNorm2d(c, ...)``, and a third function calls it with keyword arguments."""
    _write(package, {"vision/layers/lambdas.py": LAMBDAS, "vision/models/block.py": BLOCK})
    block = package / "vision/models/block.py"
    lines, left = _findings(block)
    assert lines == {_line(BLOCK, "return self.bn(self.conv(x))")}  # ConvBlock's; not GroupBlock's
    assert left == {}


def test_a_module_outside_any_package_reads_no_other_file(package):
    loose = package / "loose.py"
    loose.write_text(NET.replace("..layers", "vision.layers"))
    text = loose.read_text()
    assert analyze(text, str(loose), RULES, package_of(str(loose))).findings == []


def test_a_changed_module_is_read_again(package):
    net = package / "vision/models/net.py"
    assert len(_findings(net)[0]) == 4
    conv = package / "vision/layers/conv.py"
    conv.write_text(CONV.replace("return nn.Conv2d(cin, cout, 1, stride=stride, bias=False)",
                                 "return nn.Identity()  # no longer a convolution"))
    os.utime(conv, ns=(conv.stat().st_atime_ns, conv.stat().st_mtime_ns + 10**9))
    assert len(_findings(net)[0]) == 3


def test_a_definition_is_parsed_alone(package):
    """A module whose other parts do not even parse still types the definitions that do."""
    conv = package / "vision/layers/conv.py"
    conv.write_text(CONV + "\n\ndef broken(:\n    pass\n")
    assert len(_findings(package / "vision/models/net.py")[0]) == 4


def test_the_fixed_package_computes_what_the_original_does(package):
    torch = pytest.importorskip("torch")
    net = package / "vision/models/net.py"
    text = net.read_text()
    result = fix_text(text, str(net), RULES, package_of(str(net)))
    assert result.error is None and len(result.applied) == 2
    assert "import adopter" not in result.text.replace("import adopter_kernels", "")
    (package / "vision/models/fixed.py").write_text(result.text)
    sys.path.insert(0, str(package))
    try:
        original = importlib.import_module("vision.models.net").Net()
        fixed = importlib.import_module("vision.models.fixed").Net()
    finally:
        sys.path.remove(str(package))
        for name in [n for n in sys.modules if n == "vision" or n.startswith(("vision.", "other"))]:
            del sys.modules[name]
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for module in original.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5, generator=generator)
                module.running_var.uniform_(0.5, 2.0, generator=generator)
                module.weight.uniform_(0.5, 1.5, generator=generator)
    original = original.double().eval()
    fixed.load_state_dict(original.state_dict(), strict=True)
    fixed = fixed.double().eval()
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64, generator=generator)
    with torch.no_grad():
        torch.testing.assert_close(fixed(x), original(x))


COMPOSITE = """
import torch.nn.functional as F
from torch import nn


class SeparableConv2d(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.depthwise = nn.Conv2d(cin, cin, 3, padding=1, groups=cin, bias=False)
        self.pointwise = nn.Conv2d(cin, cout, 1, bias=False)

    def forward(self, x):
        x = self.depthwise(x)
        x = self.pointwise(x)
        return x


class Residual(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 1)

    def forward(self, x):
        return self.conv(x) + x


class EarlyExit(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 1)

    def forward(self, x, skip=False):
        if skip:
            return x
        return self.conv(x)


class Changed(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 1)

    def forward(self, x):
        y = self.conv(x)
        y.relu_()
        return y


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.sep = SeparableConv2d(c, c)
        self.bn1 = nn.BatchNorm2d(c)
        self.res = Residual(c)
        self.bn2 = nn.BatchNorm2d(c)
        self.early = EarlyExit(c)
        self.bn3 = nn.BatchNorm2d(c)
        self.changed = Changed(c)
        self.bn4 = nn.BatchNorm2d(c)
        self.seq = nn.Sequential(SeparableConv2d(c, c), nn.BatchNorm2d(c), nn.ReLU())

    def forward(self, x):
        x = self.bn1(self.sep(x))
        x = self.bn2(self.res(x))
        x = self.bn3(self.early(x))
        x = self.bn4(self.changed(x))
        return self.seq(x)
"""


def test_a_module_returning_a_convolutions_output_is_reported_not_fixed():
    result = analyze(COMPOSITE, "model.py", RULES)
    assert {f.line for f in result.findings} == {_line(COMPOSITE, "self.bn1(self.sep(x))"),
                                                 _line(COMPOSITE, "nn.Sequential(SeparableConv2d")}
    fixed = fix_text(COMPOSITE, "model.py", RULES)
    assert fixed.text == COMPOSITE and len(fixed.skipped) == 2
    assert all("SeparableConv2d" in why and "own forward" in why for _, why in fixed.skipped)


def test_a_function_choosing_a_layer_class(findings):
    """mistral-inference's maybe_lora: a same-file function returns nn.Linear or a partial of
    another class; the layers its result builds are typed by it."""
    src = """
    from functools import partial
    from torch import nn


    class LoRALinear(nn.Module):
        def __init__(self, cin, cout, bias=False, rank=4):
            super().__init__()
            self.a = nn.Linear(cin, rank, bias=False)
            self.b = nn.Linear(rank, cout, bias=bias)

        def forward(self, x):
            return self.b(self.a(x))


    def maybe_lora(rank):
        if rank is None:
            return nn.Linear
        return partial(LoRALinear, rank=rank)


    class Attention(nn.Module):
        def __init__(self, dim, rank=None):
            super().__init__()
            Linear = maybe_lora(rank)
            self.wq = Linear(dim, dim, bias=False)
            self.wk = Linear(dim, dim, bias=False)
            self.wv = Linear(dim, dim, bias=False)

        def forward(self, x):
            q, k, v = self.wq(x), self.wk(x), self.wv(x)
            return q, k, v
    """
    assert findings(src, "ADP009") == [("ADP009", 31)]


def test_a_line_in_a_string_that_looks_like_an_alias_does_not_stop_the_reading():
    from adopter.structure.siblings import _lazy_names

    text = 'import torch.nn as nn\n\nDOC = """\nvalue = yield\n"""\nNorm2d = nn.BatchNorm2d\n'
    names = _lazy_names(text, "pkg")
    assert names.resolve(names.constants["Norm2d"]) == "torch.nn.BatchNorm2d"
    assert "value" not in names.constants


REGISTRY = """\
from torch import nn

NORMS = dict(
    batch=nn.BatchNorm2d,
    instance=nn.InstanceNorm2d,
    group=nn.GroupNorm,
)


def norm_class(kind, **overrides):
    if kind is None:
        return nn.Identity
    if not isinstance(kind, str):
        return kind
    name = kind.strip().lower().split(":")[0]
    return NORMS[name]
"""

KEYED = """\
from torch import nn

from ..layers.registry import norm_class


class Keyed(nn.Module):
    def __init__(self, c=8):
        super().__init__()
        norm = norm_class(" Batch:eval")
        self.conv = nn.Conv2d(3, c, 3, bias=False)
        self.norm = norm(c)

    def forward(self, x):
        return self.norm(self.conv(x))


class Instance(nn.Module):
    def __init__(self, c=8):
        super().__init__()
        self.conv = nn.Conv2d(3, c, 3, bias=False)
        self.norm = norm_class("instance")(c)

    def forward(self, x):
        return self.norm(self.conv(x))


class ByDefault(nn.Module):
    def __init__(self, c=8, norm_kind: str = "batch"):
        super().__init__()
        norm = norm_class(norm_kind)
        self.conv = nn.Conv2d(3, c, 3, bias=False)
        self.norm = norm(c)

    def forward(self, x):
        return self.norm(self.conv(x))
"""


def test_a_layer_class_chosen_by_a_string_key_in_another_module(package):
    """A factory of another module maps a string to a class: what it does with the key is read
    from its code (string methods computed, ``if``s the key decides taken one way, a
    ``dict(...)`` table over several lines looked up): " Batch:eval" names the BatchNorm2d,
    "instance" an InstanceNorm2d (no finding), a parameter's default "batch" the BatchNorm2d."""
    _write(package, {"vision/layers/registry.py": REGISTRY, "vision/models/keyed.py": KEYED})
    path = package / "vision/models/keyed.py"
    lines, left = _findings(path)
    returns = [i for i, line in enumerate(KEYED.split("\n"), 1) if "return self.norm(self.conv(x))" in line]
    assert lines == {returns[0], returns[2]}


def test_a_key_the_table_lacks_types_nothing(package):
    """The same factory given a key its table lacks (the call would fail) types nothing."""
    _write(package, {"vision/layers/registry.py": REGISTRY, "vision/models/keyed.py": KEYED.replace(
        '" Batch:eval"', '"layer"')})
    path = package / "vision/models/keyed.py"
    lines, _ = _findings(path)
    text = path.read_text()
    returns = [i for i, line in enumerate(text.split("\n"), 1) if "return self.norm(self.conv(x))" in line]
    assert lines == {returns[2]}


FACTORY_MEMBERS = '''
import torch.nn.functional as F
from torch import nn


class PaddedConv2d(nn.Conv2d):
    def forward(self, x):
        x = F.pad(x, [1, 1, 1, 1])
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def make_conv(cin, cout, k, same=False):
    if same:
        return PaddedConv2d(cin, cout, k)
    return nn.Conv2d(cin, cout, k, padding=k // 2)


def maybe_conv(cin, cout, k, use=True):
    if use:
        return nn.Conv2d(cin, cout, k, padding=k // 2)
    return nn.Identity()


class Separable(nn.Module):
    def __init__(self, cin, cout, same=False):
        super().__init__()
        self.depthwise = make_conv(cin, cin, 3, same)
        self.pointwise = make_conv(cin, cout, 1)

    def forward(self, x):
        return self.pointwise(self.depthwise(x))


class MaybeProjected(nn.Module):
    def __init__(self, cin, cout, use=True):
        super().__init__()
        self.act = nn.ReLU()
        self.proj = maybe_conv(cin, cout, 1, use)

    def forward(self, x):
        return self.proj(self.act(x))


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.sep = Separable(c, c)
        self.bn1 = nn.BatchNorm2d(c)
        self.maybe = MaybeProjected(c, c)
        self.bn2 = nn.BatchNorm2d(c)

    def forward(self, x):
        x = self.bn1(self.sep(x))
        return self.bn2(self.maybe(x))
'''


def test_a_module_ending_in_a_factory_built_convolution(tmp_path):
    """A separable convolution whose last member comes from a factory that builds one of several
    convolutions (nn.Conv2d, or a Conv2d subclass that pads first; timm's create_conv2d) still
    ends in a convolution; one whose last member may be an nn.Identity does not (its output may
    be the ReLU's)."""
    result = analyze(FACTORY_MEMBERS, "model.py", RULES)
    assert {f.line for f in result.findings} == {_line(FACTORY_MEMBERS, "self.bn1(self.sep(x))")}
    # the same factory in another module of the package, imported by the model's module
    layers_src, model_src = FACTORY_MEMBERS.split("class Separable", 1)
    _write(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/layers.py": layers_src,
        "pkg/model.py": "from torch import nn\n\nfrom .layers import make_conv, maybe_conv\n\n\nclass Separable"
                        + model_src,
    })
    path = tmp_path / "pkg/model.py"
    text = path.read_text()
    lines, left = _findings(path)
    assert lines == {_line(text, "self.bn1(self.sep(x))")}
    assert "Separable" in left["sep"] and "own forward" in left["sep"]


def test_names_bound_by_a_star_import_of_a_package_module(tmp_path):
    """tsai's models start with ``from ..imports import *`` (where ``import torch.nn as nn``
    is): ``nn.Linear``, ``nn.BatchNorm2d``, ``F.softmax`` resolve as they do there, and so do the
    classes that module defines.  A module whose ``__all__`` leaves ``nn`` out binds no ``nn``."""
    _write(tmp_path, {
        "ts/__init__.py": "",
        "ts/imports.py": "import torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n",
        "ts/models/__init__.py": "",
        "ts/models/layers.py": "from torch import nn\n\n__all__ = ['conv_layer']\n\n\n"
                               "def conv_layer(cin, cout):\n    return nn.Conv2d(cin, cout, 3, padding=1)\n",
        "ts/models/net.py": textwrap.dedent("""\
            from ..imports import *
            from .layers import *


            class Net(nn.Module):
                def __init__(self, c):
                    super().__init__()
                    self.conv = conv_layer(c, c)
                    self.bn = nn.BatchNorm2d(c)
                    self.q = nn.Linear(c, c)
                    self.k = nn.Linear(c, c)
                    self.v = nn.Linear(c, c)

                def forward(self, x):
                    x = self.bn(self.conv(x))
                    t = x.flatten(2).transpose(1, 2)
                    q, k, v = self.q(t), self.k(t), self.v(t)
                    return x + F.scaled_dot_product_attention(q, k, v).mean()
            """),
        "ts/models/hidden.py": textwrap.dedent("""\
            from .layers import *


            class Net(nn.Module):
                def __init__(self, c):
                    super().__init__()
                    self.conv = nn.Conv2d(c, c, 3)
                    self.bn = nn.BatchNorm2d(c)

                def forward(self, x):
                    return self.bn(self.conv(x))
            """),
    })
    net = tmp_path / "ts/models/net.py"
    text = net.read_text()
    lines, _ = _findings(net)
    assert lines == {_line(text, "self.bn(self.conv(x))"), _line(text, "q, k, v = ")}
    hidden, _ = _findings(tmp_path / "ts/models/hidden.py")
    assert hidden == set()  # layers.py's __all__ does not export its `nn`


REGISTRY_FACTORIES = '''\
from torch import nn


class LayerStore:
    """Classes registered under upper-case keys, looked up by any case."""

    def __init__(self, title):
        self.title = title
        self.entries = {}

    def put(self, key, cls):
        self.entries[key.upper()] = cls

    def __getitem__(self, key):
        return self.entries[key.upper()]


Act = LayerStore("activations")
Act.put("relu", nn.ReLU)
Act.put(
    "{key}",
    {cls},
)
Act.put("silu", nn.modules.SiLU)
'''

REGISTRY_UTILS = '''\
from .factories import Act


def split(spec):
    return (spec, {{}}) if isinstance(spec, str) else spec


def make_act(spec):
    name, kwargs = split(spec)
    kind = Act[name]
    return kind(**kwargs)
'''

REGISTRY_MLP = '''\
from torch import nn

from ..layers.utils import make_act


class Mlp(nn.Module):
    def __init__(self, d=8, act="GELU"):
        super().__init__()
        self.fc = nn.Linear(d, 4 * d)
        self.act = make_act(act)

    def forward(self, x):
        return self.act(self.fc(x))
'''


@pytest.mark.parametrize("registered, found", [("nn.GELU", True), ("nn.modules.activation.GELU", True),
                                               ("nn.Tanh", False)])
def test_a_layer_class_looked_up_in_a_registry_object_of_another_module(tmp_path, registered, found):
    """monai's ``Act[name]``: a module-level object of another module, filled at its top level
    by calls of its methods with a key and a class, indexed by a key chosen at run time: any
    class registered there may be built (``nn.modules.activation.GELU`` is ``nn.GELU``).  So a
    Linear before it may feed a GELU (reported), which one is not known (not rewritten); with no
    GELU registered there is nothing to report."""
    _write(tmp_path, {
        "med/__init__.py": "",
        "med/layers/__init__.py": "",
        "med/layers/factories.py": REGISTRY_FACTORIES.replace("{key}", "gelu").replace("{cls}", registered),
        "med/layers/utils.py": REGISTRY_UTILS.format(),
        "med/blocks/__init__.py": "",
        "med/blocks/mlp.py": REGISTRY_MLP,
    })
    path = tmp_path / "med/blocks/mlp.py"
    text = path.read_text()
    rules = select_rules(load_rules(), ["ADP006"])
    package = package_of(str(path))
    lines = {f.line for f in analyze(text, str(path), rules, package).findings}
    assert lines == ({_line(text, "return self.act(self.fc(x))")} if found else set())
    result = fix_text(text, str(path), rules, package)
    assert result.error is None and not result.applied
    if found:
        assert "registry `med.layers.factories.Act`" in result.skipped[0][1]


def test_an_object_not_filled_by_key_and_class_is_no_registry(tmp_path):
    """The same lookup where the object's top-level method calls do not pair a key with a class
    (or the name is a class, not an object built by a call) types nothing."""
    factories = REGISTRY_FACTORIES.replace("{key}", "gelu").replace("{cls}", "nn.GELU")
    for changed in (factories.replace('Act.put("relu", nn.ReLU)', "").replace(
                        'Act.put(\n    "gelu",\n    nn.GELU,\n)', 'Act.put(nn.GELU)'),
                    factories.replace('Act = LayerStore("activations")', "class Act(LayerStore):\n    pass")):
        _write(tmp_path, {
            "med/__init__.py": "",
            "med/layers/__init__.py": "",
            "med/layers/factories.py": changed.replace('Act.put("silu", nn.modules.SiLU)', ""),
            "med/layers/utils.py": REGISTRY_UTILS.format(),
            "med/blocks/__init__.py": "",
            "med/blocks/mlp.py": REGISTRY_MLP,
        })
        path = tmp_path / "med/blocks/mlp.py"
        rules = select_rules(load_rules(), ["ADP006"])
        assert analyze(path.read_text(), str(path), rules, package_of(str(path))).findings == []
