"""Forms found while checking the blind batch cnn45 (hand-written CNNs that are not
classifiers: detection and segmentation heads, saliency decoders, GAN discriminators, denoisers,
change-detection nets, a seismic U-Net, 3-D pose MLPs, and their training setups).  The
fixtures are ours.

- An optimizer class held by an attribute that ``__init__`` sets from a parameter whose default
  is the class (``def __init__(self, ..., opt=torch.optim.Adam): self.opt = opt``), called in
  another method (``configure_optimizers``: ``return self.opt(self.parameters(), lr=self.lr)``;
  torch-rs' Lightning modules).  A parameter called in its own function was read as a callee
  chosen at run time with its default as the one known choice; through the attribute the call
  was an unknown layer's.  Now, when ``__init__``'s top level binds the attribute to the
  parameter, never assigns the parameter, and nothing else in the file sets the attribute, the
  call is read the same way: the fix passes ``fused=True`` only when the attribute *is* the
  default (``**({"fused": True} if self.opt is torch.optim.Adam else {})``).
Near-misses: the call passes ``**kwargs`` that may choose ``fused``; the attribute is assigned
again in another method; the default is another optimizer; ``__init__`` rebinds the parameter;
a subclass sets the attribute itself; the call already chooses ``fused=False``.
- A same-file factory returning the torch.nn class a formatted key names from its parameter
  (``def get_nd_conv(dim): return getattr(nn, "Conv%dd" % dim)``, or ``f"Conv{dim}d"``), called
  with a constant or with the caller's parameter at its constant default (``Conv =
  get_nd_conv(nd)``, ``nd=2``; celldetection's spelling, there in another module of the
  package).  ``getattr(nn, f"Conv{nd}d")`` written in place was read at the parameter's
  default; in a factory the key's parameter held nothing the call passed, and a ``%`` format
  was no key at all.  Now a factory's parameter that its call fixes to an int or str constant
  (a literal, or the caller's parameter with such a default) holds it, and ``"..." % operands``
  of known constants is a key like an f-string.
Near-misses: the default makes it a Conv1d, the dimension is computed at run time, the format
names a transposed convolution, the factory rebinds its parameter.
"""

from __future__ import annotations

import torch
from corpus_forms import assert_bn_fold_matches, finding_at, found, rules

from adopter.synth import fix_text

HELD = """\
import torch
import torch.nn as nn


class Module(nn.Module):
    def __init__(self, width=4, opt=torch.optim.Adam, lr=3e-4):
        super().__init__()
        self.net = nn.Linear(width, width)
        self.opt = opt
        self.lr = lr

    def forward(self, x):
        return self.net(x)

    def configure_optimizers(self):
        return self.opt(self.parameters(), lr=self.lr)
"""

KW_ONLY = """\
from torch import nn, optim


class Trainer:
    def __init__(self, model: nn.Module, *, optimizer_cls=optim.SGD):
        self.model = model
        self.optimizer_cls = optimizer_cls

    def setup(self):
        self.optimizer = self.optimizer_cls(self.model.parameters(), lr=0.1, momentum=0.9)
"""


def _run(code: str, name: str = "Module", **kwargs):
    namespace: dict = {}
    exec(compile(code, "<fixture>", "exec"), namespace)  # noqa: S102 (our own fixture)
    module = namespace[name](**kwargs)
    return module.configure_optimizers()


def test_optimizer_class_held_by_an_attribute_from_a_parameter_default_is_reported():
    assert finding_at(HELD, "ADP012", "self.opt(self.parameters()") is not None


def test_optimizer_class_held_by_an_attribute_fix_guards_the_default():
    fixed = fix_text(HELD, "model.py", rules("ADP012")).text
    assert fixed != HELD
    assert "if self.opt is torch.optim.Adam else {}" in fixed
    # the default is built fused, another class passed in is built as written (RMSprop has no
    # ``fused`` keyword: an unguarded keyword would raise TypeError there)
    assert _run(fixed).defaults["fused"] is True
    assert _run(HELD).defaults["fused"] is None
    other = _run(fixed, opt=torch.optim.RMSprop)
    assert isinstance(other, torch.optim.RMSprop)


def test_keyword_only_optimizer_class_held_by_an_attribute_is_reported():
    assert finding_at(KW_ONLY, "ADP012", "self.optimizer_cls(") is not None
    fixed = fix_text(KW_ONLY, "model.py", rules("ADP012")).text
    assert "if self.optimizer_cls is optim.SGD else {}" in fixed
    namespace: dict = {}
    exec(compile(fixed, "<fixture>", "exec"), namespace)  # noqa: S102 (our own fixture)
    trainer = namespace["Trainer"](torch.nn.Linear(2, 2))
    trainer.setup()
    assert trainer.optimizer.defaults["fused"] is True


def test_attribute_called_with_kwargs_that_may_choose_fused_is_not_reported():
    code = HELD.replace("lr=3e-4):", "lr=3e-4, opt_kwargs=None):").replace(
        "        self.lr = lr\n", "        self.lr = lr\n        self.opt_kwargs = opt_kwargs or {}\n").replace(
        "lr=self.lr)", "lr=self.lr, **self.opt_kwargs)")
    assert "**self.opt_kwargs" in code
    assert found(code, "ADP012") == []


def test_attribute_assigned_again_in_another_method_is_not_reported():
    code = HELD + """
    def use_rmsprop(self):
        self.opt = torch.optim.RMSprop
"""
    assert found(code, "ADP012") == []


def test_attribute_defaulting_to_another_optimizer_is_not_reported():
    code = HELD.replace("opt=torch.optim.Adam", "opt=torch.optim.RMSprop")
    assert found(code, "ADP012") == []


def test_parameter_rebound_in_init_is_not_read_as_its_default():
    code = HELD.replace("        self.opt = opt\n", "        opt = opt if lr > 0 else torch.optim.RMSprop\n"
                                                   "        self.opt = opt\n")
    assert found(code, "ADP012") == []


def test_subclass_setting_the_attribute_is_not_reported():
    code = HELD + """

class Other(Module):
    def __init__(self):
        super().__init__()
        self.opt = torch.optim.RMSprop
"""
    assert found(code, "ADP012") == []


def test_call_already_choosing_fused_is_not_reported():
    code = HELD.replace("lr=self.lr)", "lr=self.lr, fused=False)")
    assert found(code, "ADP012") == []


ND_FACTORY = """\
import torch.nn as nn


def get_nd_conv(dim):
    assert dim in (1, 2, 3)
    return getattr(nn, "Conv%dd" % dim)


def get_nd_conv_f(dim):
    return getattr(nn, f"Conv{dim}d")


class ConvNorm(nn.Sequential):
    def __init__(self, cin, cout, kernel_size=3, nd=2):
        Conv = get_nd_conv(nd)
        super().__init__(Conv(cin, cout, kernel_size, padding=1, bias=False), nn.BatchNorm2d(cout))


class Head(nn.Module):
    def __init__(self, cin, cout, nd=2):
        super().__init__()
        self.conv = get_nd_conv_f(nd)(cin, cout, 1)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        return self.bn(self.conv(x)).relu()


class Fixed(nn.Sequential):
    def __init__(self, cin, cout):
        super().__init__(get_nd_conv(2)(cin, cout, 3, padding=1), nn.BatchNorm2d(cout))
"""


def test_factory_returning_a_formatted_getattr_class_is_a_conv():
    for needle in ("bias=False), nn.BatchNorm2d", "self.bn(self.conv(x))", "get_nd_conv(2)(cin"):
        assert finding_at(ND_FACTORY, "ADP007", needle) is not None, needle


def test_factory_returning_a_formatted_getattr_class_fix_folds_exactly():
    fixed = fix_text(ND_FACTORY, "model.py", rules("ADP007")).text
    assert fixed != ND_FACTORY
    assert_bn_fold_matches(ND_FACTORY, fixed, "ConvNorm", (3, 4), (2, 3, 6, 6))
    assert_bn_fold_matches(ND_FACTORY, fixed, "Head", (3, 4), (2, 3, 6, 6))
    assert_bn_fold_matches(ND_FACTORY, fixed, "Fixed", (3, 4), (2, 3, 6, 6))


def test_factory_at_a_one_dimensional_default_is_no_conv2d_pair():
    code = ND_FACTORY.replace("kernel_size=3, nd=2", "kernel_size=3, nd=1").replace(
        "cout, nd=2", "cout, nd=1").replace("get_nd_conv(2)(cin", "get_nd_conv(1)(cin")
    assert found(code, "ADP007") == []


def test_factory_given_a_dimension_computed_at_run_time_is_not_read():
    code = ND_FACTORY.replace("Conv = get_nd_conv(nd)", "Conv = get_nd_conv(len(str(cin)) + 1)")
    assert finding_at(code, "ADP007", "bias=False), nn.BatchNorm2d") is None


def test_factory_formatting_a_transposed_convolution_is_not_a_pair():
    code = ND_FACTORY.replace('"Conv%dd" % dim', '"ConvTranspose%dd" % dim')
    assert finding_at(code, "ADP007", "bias=False), nn.BatchNorm2d") is None
    assert finding_at(code, "ADP007", "get_nd_conv(2)(cin") is None


def test_factory_rebinding_its_parameter_is_not_read_at_the_passed_value():
    code = ND_FACTORY.replace("    assert dim in (1, 2, 3)\n", "    dim = dim + 1\n")
    assert finding_at(code, "ADP007", "bias=False), nn.BatchNorm2d") is None
