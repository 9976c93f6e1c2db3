"""Forms found while checking the blind batch cnn42 (hand-written CNNs of research-training
packages: NAS search spaces, semi-supervised learning, uncertainty baselines, federated
learning, data-subset selection, quantization examples).  The fixtures are ours.

- A block class chosen by a conditional expression bound to a local name and handed on from
  there (``block = _BasicBlock if arch in [18, 34] else _Bottleneck``, then
  ``_ResNet(block=block, ...)``, ``self._make_layer(block, ...)``, ``block(...,
  normalization_layer=normalization_layer)``; torch-uncertainty's ResNet).  The class was
  followed from call to parameter only when handed over by its own name, and a local alias
  counted only when bound to the bare name: a name bound to the class or to a choice that may
  be it (``A if c else B``, ``if``/``else`` statements, ``{18: A, 50: B}[depth]``) now holds
  it too, both where it is handed on (by keyword or position) and where it is called.
- Optimizer recipes that the file never calls but names as values
  (``procedure = optim_cifar10_resnet18`` in a lookup returned to a trainer, wrapped in
  ``partial``; torch-uncertainty's ``optim_recipes.py``).  Being named made a function no flow
  root, and no flow inlines a function that is not called, so its optimizer was read nowhere:
  a module function the file never calls by name is now read on its own by the file-scope rule.
Near-misses: a choice whose model passes a norm that is not a BatchNorm, a choice between two
other classes (also from a dict literal), a recipe that already asks for ``fused=True``, a recipe both called and named
(one finding, not two).
"""

from __future__ import annotations

from corpus_forms import assert_bn_fold_matches, finding_at, found, rules

from adopter.synth import fix_text

CHOSEN = """\
import torch.nn as nn


class Basic(nn.Module):
    def __init__(self, cin, cout, stride, norm_layer):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn = norm_layer(cout)

    def forward(self, x):
        return self.bn(self.conv(x)).relu()


class Bottle(nn.Module):
    def __init__(self, cin, cout, stride, norm_layer):
        super().__init__()
        self.reduce = nn.Conv2d(cin, cout, 1, stride, bias=False)
        self.norm = norm_layer(cout)

    def forward(self, x):
        return self.norm(self.reduce(x)).relu()


class Net(nn.Module):
    def __init__(self, block, widths=(4, 6), norm_layer=nn.BatchNorm2d):
        super().__init__()
        self.stage = self._make_stage(block, widths, norm_layer=norm_layer)

    def _make_stage(self, block, widths, norm_layer):
        layers, cin = [], 3
        for width in widths:
            layers.append(block(cin, width, 1, norm_layer=norm_layer))
            cin = width
        return nn.Sequential(*layers)

    def forward(self, x):
        return self.stage(x)


def build(arch):
    block = Basic if arch in (18, 34) else Bottle
    return Net(block=block)
"""

CALLED_CHOICE = """\
import torch.nn as nn


class Basic(nn.Module):
    def __init__(self, cin, cout, norm_layer):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, 1, 1, bias=False)
        self.bn = norm_layer(cout)

    def forward(self, x):
        return self.bn(self.conv(x)).relu()


class Plain(nn.Module):
    def __init__(self, cin, cout, norm_layer):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, 1, 1)

    def forward(self, x):
        return self.conv(x).relu()


class Net(nn.Module):
    def __init__(self, deep=True, norm_layer=nn.BatchNorm2d):
        super().__init__()
        block = Basic if deep else Plain
        self.body = nn.Sequential(block(3, 4, norm_layer), block(4, 4, norm_layer))

    def forward(self, x):
        return self.body(x)
"""

RECIPES = """\
from functools import partial

from torch import nn, optim


def recipe_small(model: nn.Module) -> dict:
    optimizer = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)
    return {"optimizer": optimizer}


def recipe_large(model: nn.Module) -> dict:
    optimizer = optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)
    return {"optimizer": optimizer}


def wrapped(model: nn.Module, recipe) -> dict:
    procedure = recipe(model)
    return procedure


def get_procedure(size: str, wrap: bool = False):
    if size == "small":
        procedure = recipe_small
    else:
        procedure = recipe_large
    if wrap:
        procedure = partial(wrapped, recipe=procedure)
    return procedure
"""


def test_block_chosen_by_a_conditional_alias_handed_to_the_model_is_a_pair():
    assert finding_at(CHOSEN, "ADP007", "return self.bn(self.conv(x))") is not None
    assert finding_at(CHOSEN, "ADP007", "return self.norm(self.reduce(x))") is not None


def test_block_chosen_by_a_conditional_alias_fix_folds_exactly():
    fixed = fix_text(CHOSEN, "model.py", rules("ADP007")).text
    assert fixed != CHOSEN
    assert_bn_fold_matches(CHOSEN, fixed, "build", (18,), (2, 3, 7, 7))
    assert_bn_fold_matches(CHOSEN, fixed, "build", (50,), (2, 3, 7, 7))


def test_choice_whose_model_passes_another_norm_is_not_a_pair():
    code = CHOSEN.replace("norm_layer=nn.BatchNorm2d", "norm_layer=nn.InstanceNorm2d")
    assert found(code, "ADP007") == []


def test_choice_between_two_other_classes_is_not_a_call_of_the_block():
    code = CHOSEN.replace("block = Basic if arch in (18, 34) else Bottle",
                          "block = Plain if arch in (18, 34) else Other") + """

class Plain(nn.Module):
    pass


class Other(nn.Module):
    pass
"""
    assert found(code, "ADP007") == []


def test_block_called_through_a_conditional_alias_is_a_pair():
    assert finding_at(CALLED_CHOICE, "ADP007", "return self.bn(self.conv(x))") is not None
    assert len(found(CALLED_CHOICE, "ADP007")) == 1
    fixed = fix_text(CALLED_CHOICE, "model.py", rules("ADP007")).text
    assert fixed != CALLED_CHOICE
    assert_bn_fold_matches(CALLED_CHOICE, fixed, "Net", (), (2, 3, 7, 7))


def test_recipes_named_as_values_are_read():
    assert finding_at(RECIPES, "ADP012", "optim.SGD(") is not None
    assert finding_at(RECIPES, "ADP012", "optim.AdamW(") is not None
    fixed = fix_text(RECIPES, "model.py", rules("ADP012")).text
    assert "nesterov=True, fused=True)" in fixed
    assert "weight_decay=0.05, fused=True)" in fixed


def test_recipe_already_fused_named_as_a_value_is_not_reported():
    code = RECIPES.replace("nesterov=True)", "nesterov=True, fused=True)").replace(
        "weight_decay=0.05)", "weight_decay=0.05, foreach=False)")
    assert found(code, "ADP012") == []


def test_recipe_both_called_and_named_is_reported_once():
    code = RECIPES + """

def train(model):
    return recipe_small(model)["optimizer"]
"""
    assert len([f for f in found(code, "ADP012") if "SGD" in code.splitlines()[f.line - 1]]) == 1
    assert len(found(code, "ADP012")) == 2


def test_block_chosen_by_if_statements_handed_on_by_position_is_a_pair():
    code = CHOSEN.replace(
        "    block = Basic if arch in (18, 34) else Bottle\n    return Net(block=block)",
        "    if arch in (18, 34):\n        block = Basic\n    else:\n        block = Bottle\n    return Net(block)")
    assert finding_at(code, "ADP007", "return self.bn(self.conv(x))") is not None
    assert finding_at(code, "ADP007", "return self.norm(self.reduce(x))") is not None


def test_block_chosen_from_a_dict_literal_is_a_pair():
    code = CHOSEN.replace("block = Basic if arch in (18, 34) else Bottle",
                          "block = {18: Basic, 50: Bottle}[arch]")
    assert finding_at(code, "ADP007", "return self.bn(self.conv(x))") is not None
    assert finding_at(code, "ADP007", "return self.norm(self.reduce(x))") is not None
    fixed = fix_text(code, "model.py", rules("ADP007")).text
    assert_bn_fold_matches(code, fixed, "build", (50,), (2, 3, 7, 7))


def test_dict_literal_of_other_classes_is_not_a_call_of_the_block():
    code = CHOSEN.replace("block = Basic if arch in (18, 34) else Bottle",
                          "block = {18: nn.Identity, 50: nn.ReLU}[arch]")
    assert found(code, "ADP007") == []
