"""Forms found while checking the blind batch of cnn50 (CTR and tabular MLPs, point-cloud and
graph networks, anomaly-detection trainers: a GELU reported where the file never builds one,
and an optimizer class taken from a defaulted parameter missed).  The fixtures are ours.

- An optimizer class held by a helper's defaulted parameter (``def train_loop(self, loader,
  opt_cls=torch.optim.Adam)``) that its caller leaves out (``self.train_loop(loader)``): the
  helper is inlined there, and the parameter holds its default exactly as in a function read
  on its own (the choice the fix guards: ``fused=True`` only when it *is* Adam).  Was read only
  for root functions.  Near-misses: the caller passes another class, the default is no fused
  optimizer, the body binds the parameter again, the call spreads ``**options``, the call
  already chooses ``fused=``.
- ``get_activation(output_activation)`` of another file's function, the parameter defaulting to
  ``None`` and no construction in the file passing a string: the file never runs the table
  with a key (GUIDE: a string key handed to another file's function, every construction in the
  file leaving a non-GELU default), as for a callable default already.  Look-alikes that stay
  reported: a same-file construction passing ``"gelu"``, and a ``"gelu"`` default.
- ``getattr(torch.optim, name)(params, lr=lr)`` (fuxictr's ``get_optimizer``), also through a
  local ``klass = getattr(torch.optim, name)``: a class of torch.optim chosen by a run-time
  name, read as a callee chosen at run time whose choice is any class of that module; reported,
  not fixed (no text in the file names the class a guard would test).  Near-misses: a literal
  name, another module's lookup, ``**kw`` spread, ``foreach=`` chosen, the name bound again.
  A file whose text names no optimizer class at all (``getattr(torch.optim, cfg.optimizer)``,
  the class in a config file) is read too: ``optim`` is one of ADP012's trigger words (session 35).
"""

from __future__ import annotations

from corpus_forms import found, line_of, rules

from adopter.synth import fix_text

OPT = """\
import torch
from torch import optim


class Detector:
    def fit(self, loader):
        self.net = torch.nn.Linear(4, 1)
        self.train_loop(loader)

    def train_loop(self, loader, opt_cls=torch.optim.Adam):
        opt = opt_cls(self.net.parameters(), lr=1e-3)
        return opt


def run(model, opt_fn=optim.SGD, lr=0.1):
    return opt_fn(model.parameters(), lr=lr, momentum=0.9)


def main(model):
    return run(model)
"""
NEAR_OPT = """\
import torch


class Passed:
    def fit(self, loader):
        self.train_loop(loader, torch.optim.RMSprop)

    def train_loop(self, loader, opt_cls=torch.optim.Adam):
        return opt_cls(self.net.parameters(), lr=1e-3)


class OtherDefault:
    def fit(self, loader):
        self.train_loop(loader)

    def train_loop(self, loader, opt_cls=torch.optim.RMSprop):
        return opt_cls(self.net.parameters(), lr=1e-3)


class Rebound:
    def fit(self, loader, name):
        self.train_loop(loader, name)

    def train_loop(self, loader, name, opt_cls=torch.optim.Adam):
        if name == "rms":
            opt_cls = torch.optim.RMSprop
        return opt_cls(self.net.parameters(), lr=1e-3)


class Spread:
    def fit(self, loader, **options):
        self.train_loop(loader, **options)

    def train_loop(self, loader, opt_cls=torch.optim.Adam):
        return opt_cls(self.net.parameters(), lr=1e-3)


class Chooses:
    def fit(self, loader):
        self.train_loop(loader)

    def train_loop(self, loader, opt_cls=torch.optim.Adam):
        return opt_cls(self.net.parameters(), lr=1e-3, fused=False)
"""
ACT = """\
from torch import nn
from mylib.utils import get_activation


class Block(nn.Module):
    def __init__(self, d_in, d_out, output_activation=None):
        super().__init__()
        layers = [nn.Linear(d_in, d_out)]
        if output_activation is not None:
            layers.append(get_activation(output_activation))
        self.mlp = nn.Sequential(*layers)

    def forward(self, x):
        return self.mlp(x)
"""
ACT_GELU = ACT + """

def build():
    return Block(4, 4, output_activation="gelu")
"""
ACT_DEFAULT = ACT.replace("output_activation=None", 'output_activation="gelu"')


def test_an_optimizer_class_defaulted_in_an_inlined_helper_is_found():
    lines = {f.line for f in found(OPT, "ADP012")}
    assert lines == {line_of(OPT, "opt = opt_cls("), line_of(OPT, "return opt_fn(")}


def test_optimizer_near_misses_are_not_found():
    assert found(NEAR_OPT, "ADP012") == []


def test_the_fix_fuses_only_the_default_class():
    import torch

    fixed = fix_text(OPT, "model.py", rules("ADP012")).text
    assert fixed.count("fused") == 2
    space: dict = {}
    exec(compile(fixed, "fixed.py", "exec"), space)  # noqa: S102 (our own fixture)
    detector = space["Detector"]()
    detector.net = torch.nn.Linear(4, 1)
    assert detector.train_loop(None).defaults["fused"] is True
    assert detector.train_loop(None, torch.optim.RMSprop).defaults.get("fused") is None
    model = torch.nn.Linear(4, 1)
    assert space["main"](model).defaults["fused"] is True
    assert space["run"](model, torch.optim.RMSprop).defaults.get("fused") is None


def test_another_files_activation_of_a_none_default_is_no_gelu():
    assert found(ACT, "ADP006") == []


def test_a_gelu_key_passed_or_defaulted_in_the_file_stays_a_site():
    for code in (ACT_GELU, ACT_DEFAULT):
        assert [f.line for f in found(code, "ADP006")] == [line_of(code, "layers = [nn.Linear")]


LOOKUP = '''\
import torch


def get_optimizer(name, params, lr):
    if name.lower() == "adam":
        name = "Adam"
    return getattr(torch.optim, name)(params, lr=lr)


def build(params, name):
    klass = getattr(torch.optim, name)
    return klass(params, lr=0.1)
'''

NEAR_LOOKUP = '''\
import torch
import mylib.optimizers as extra


# none of these builds Adam, AdamW or SGD without a choice of its own
def literal(params):
    return getattr(torch.optim, "RMSprop")(params, lr=0.1)


def other_module(params, name):
    return getattr(extra, name)(params, lr=0.1)


def spread(params, name, **kw):
    return getattr(torch.optim, name)(params, **kw)


def chooses(params, name):
    klass = getattr(torch.optim, name)
    return klass(params, lr=0.1, foreach=False)


def rebound(params, name):
    klass = getattr(torch.optim, name)
    klass = extra.Lion
    return klass(params, lr=0.1)
'''


def test_an_optimizer_looked_up_in_torch_optim_by_name_is_reported_not_fixed():
    lines = {f.line for f in found(LOOKUP, "ADP012")}
    assert lines == {line_of(LOOKUP, "return getattr(torch.optim"), line_of(LOOKUP, "return klass(")}
    # no text of the file names the class to guard fused=True by: the source stays as it is
    assert fix_text(LOOKUP, "model.py", rules("ADP012")).text == LOOKUP


def test_lookup_near_misses_are_not_found():
    assert found(NEAR_LOOKUP, "ADP012") == []


CONFIGURED = """\
import torch


class Trainer:
    def __init__(self, model, cfg):
        self.opt = getattr(torch.optim, cfg.optimizer)(model.parameters(), lr=cfg.lr)
"""


def test_a_lookup_in_a_file_naming_no_optimizer_class_is_reported():
    # the class lives in the run's config: no word of the file names Adam, AdamW or SGD
    assert not {"Adam", "AdamW", "SGD"} & set(CONFIGURED.replace("(", " ").replace(".", " ").split())
    assert [f.line for f in found(CONFIGURED, "ADP012")] == [line_of(CONFIGURED, "self.opt = getattr")]
    assert fix_text(CONFIGURED, "train.py", rules("ADP012")).text == CONFIGURED


def test_a_file_naming_optim_without_a_lookup_is_not_reported():
    code = CONFIGURED.replace("getattr(torch.optim, cfg.optimizer)", "cfg.optim_factory")
    assert found(code, "ADP012") == []
