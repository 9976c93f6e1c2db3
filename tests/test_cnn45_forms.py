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
"""

from __future__ import annotations

import torch
from corpus_forms import finding_at, found, rules

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
    exec(compile(code, "<fixture>", "exec"), namespace)
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
    exec(compile(fixed, "<fixture>", "exec"), namespace)
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
