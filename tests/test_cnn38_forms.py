"""Forms probed around the blind batch cnn38 (torchvision-style reimplementations and small
model zoos: ShuffleNetV2/MobileNetV2 copies, RepLKNet/RepMLP blocks, SqueezeNet, PointNet,
StackGAN, WPOD-Net, a playground of ResNet/GAN/attention components).  The batch itself had
no miss the engine can read (its two misses are another file's Conv2dBNActivation, a lead
ruling); these are variants of its constructions that the engine did not read.  The fixtures
are ours.

- A container filled member by member and run in order by forward's loop: ``self.layers =
  nn.ModuleList()``, then ``self.layers.append(nn.Conv2d(...))``, ``self.layers.append(
  nn.BatchNorm2d(c))`` (or ``.extend([...])``), and ``for layer in self.layers: x =
  layer(x)``.  Only a ModuleList built from a list at once was read as a sequence; an empty
  one now starts an empty sequence that the appends fill, as an empty ``nn.Sequential()``
  does.  Reported, not fixed (the members run in forward's loop, not in a Sequential).
Near-misses: a ReLU appended between the conv and the norm, a loop that collects each
member's output on the same input (no chain).

- An ``nn.ModuleDict`` run in its order: ``self.layers = nn.ModuleDict({"conv": ..., "bn":
  ...})`` (or from an ``OrderedDict([...])``) and ``for layer in self.layers.values(): x =
  layer(x)`` / ``for _, layer in self.layers.items(): x = layer(x)``.  A ModuleDict keeps its
  members in the order the mapping gives them, so the loop runs them as a Sequential would.
  Reported, not fixed.
Near-misses: a ReLU between in the dict, a loop that reads the key (``if name == "bn":
continue``: not every member runs), a loop that stores each output under its key.

- A conditional list spread into a Sequential: ``nn.Sequential(nn.Conv2d(...),
  *([nn.BatchNorm2d(c)] if use_bn else []), nn.ReLU())`` (and ``nn.Linear`` into
  ``BatchNorm1d`` the same way).  The spread was a member of unknown kind; it is now the
  members of one list or the other, both joined to what comes before and after (one side only
  when known keys decide the test).  Fixed by the container's class (``FoldingSequential``),
  fold exact.
Near-misses: a ReLU in the list before the norm on both sides, a Conv1d into a BatchNorm1d.

- ADP012: an optimizer's keywords spread from a dict the builtin ``dict(...)`` builds
  (``opt_kwargs = dict(lr=1e-3, betas=(0.9, 0.99))``, module level, as the batch's training
  scripts write a dict literal; or in a function, ``kw = dict(lr=args.lr, betas=(0.9,
  0.999))``).  Only a ``{...}`` display was read at module level, and in a function a dict
  whose values were not all constants or dotted names was a ``**`` that may choose ``fused``.
  The keys are what matters: both now pass their keys (the values as a dict literal's are).
Near-misses: the dict choosing ``fused``/``foreach`` (literally, or by an item set under an
``if``), a name bound twice.
"""

from __future__ import annotations

import textwrap

from corpus_forms import assert_bn_fold_matches, finding_at, found, rules

from adopter.synth import fix_text

# ---------- ADP007: an empty nn.ModuleList filled by appends, run by forward's loop

APPENDED = textwrap.dedent("""\
    import torch
    from torch import nn


    class Body(nn.Module):
        def __init__(self, c, depth=2):
            super().__init__()
            self.layers = nn.ModuleList()
            for _ in range(depth):
                self.layers.append(nn.Conv2d(c, c, 3, padding=1, bias=False))
                MIDDLE
                self.layers.append(nn.BatchNorm2d(c))
                self.layers.append(nn.ReLU(inplace=True))

        def forward(self, x):
            LOOP
            return x
    """)

CHAIN = "for layer in self.layers:\n            x = layer(x)"


def test_module_list_filled_by_appends_is_a_sequence():
    code = APPENDED.replace("            MIDDLE\n", "").replace("LOOP", CHAIN)
    finding = finding_at(code, "ADP007", "self.layers.append(nn.BatchNorm2d(c))")
    assert finding is not None
    fixed = fix_text(code, "model.py", rules("ADP007"))
    assert fixed.text == code  # reported, not fixed: the loop, not a Sequential, runs them


def test_module_list_filled_by_extend_is_a_sequence():
    code = textwrap.dedent("""\
        from torch import nn


        class Stem(nn.Module):
            def __init__(self, c):
                super().__init__()
                self.layers = nn.ModuleList()
                self.layers.extend([nn.Conv2d(3, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)])

            def forward(self, x):
                for layer in self.layers:
                    x = layer(x)
                return x
        """)
    assert finding_at(code, "ADP007", "self.layers.extend(") is not None


def test_module_list_filled_by_appends_near_misses():
    # a ReLU appended between the conv and the norm
    code = APPENDED.replace("MIDDLE", "self.layers.append(nn.ReLU())").replace("LOOP", CHAIN)
    assert found(code, "ADP007") == []
    # each member run on the same input, its output collected: no chain
    code = APPENDED.replace("            MIDDLE\n", "").replace(
        "LOOP", "outs = [layer(x) for layer in self.layers]\n        x = outs")
    assert found(code, "ADP007") == []


# ---------- ADP007: an nn.ModuleDict run in its order

DICT = textwrap.dedent("""\
    from collections import OrderedDict

    from torch import nn


    class Block(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.layers = nn.ModuleDict(MEMBERS)

        def forward(self, x):
            LOOP
            return x
    """)

LITERAL = ('{"conv": nn.Conv2d(c, c, 3, padding=1, bias=False),\n'
           '                                     MIDDLE"bn": nn.BatchNorm2d(c), "act": nn.ReLU()}')
PAIRS = ('OrderedDict([("conv", nn.Conv2d(c, c, 3, padding=1, bias=False)),\n'
         '                                                 ("bn", nn.BatchNorm2d(c))])')
VALUES = "for layer in self.layers.values():\n            x = layer(x)"
ITEMS = "for _, layer in self.layers.items():\n            x = layer(x)"


def test_module_dict_values_loop_is_a_sequence():
    code = DICT.replace("MEMBERS", LITERAL.replace("MIDDLE", "")).replace("LOOP", VALUES)
    assert finding_at(code, "ADP007", '"bn": nn.BatchNorm2d(c)') is not None
    assert fix_text(code, "model.py", rules("ADP007")).text == code  # reported, not fixed


def test_module_dict_items_loop_over_an_ordered_dict_is_a_sequence():
    code = DICT.replace("MEMBERS", PAIRS).replace("LOOP", ITEMS)
    assert finding_at(code, "ADP007", '("bn", nn.BatchNorm2d(c))') is not None


def test_module_dict_near_misses():
    # a ReLU between the conv and the norm
    code = DICT.replace("MEMBERS", LITERAL.replace("MIDDLE", '"pre": nn.ReLU(), ')).replace("LOOP", VALUES)
    assert found(code, "ADP007") == []
    # the loop reads the key: not every member runs
    code = DICT.replace("MEMBERS", PAIRS).replace(
        "LOOP", 'for name, layer in self.layers.items():\n            if name == "bn":\n'
                '                continue\n            x = layer(x)')
    assert found(code, "ADP007") == []
    # each output stored under its key: the members do not run one after the other
    code = DICT.replace("MEMBERS", PAIRS).replace(
        "LOOP", "outs = {}\n        for name, layer in self.layers.items():\n"
                "            outs[name] = layer(x)\n        x = outs")
    assert found(code, "ADP007") == []


# ---------- ADP007 / ADP008: a conditional list spread into a Sequential

STARRED = textwrap.dedent("""\
    from torch import nn


    class ConvBlock(nn.Module):
        def __init__(self, c, use_bn=True):
            super().__init__()
            self.block = nn.Sequential(
                CONV,
                *(NORMS if use_bn else OTHERS),
                nn.ReLU(),
            )

        def forward(self, x):
            return self.block(x)
    """)


def _starred(conv="nn.Conv2d(c, c, 3, padding=1, bias=not use_bn)", norms="[nn.BatchNorm2d(c)]", others="[]"):
    return STARRED.replace("CONV", conv).replace("NORMS", norms).replace("OTHERS", others)


def test_conditional_list_spread_into_a_sequential_is_read():
    code = _starred()
    assert finding_at(code, "ADP007", "*([nn.BatchNorm2d(c)] if use_bn else [])") is not None
    fixed = fix_text(code, "model.py", rules("ADP007")).text
    assert "FoldingSequential(" in fixed
    assert_bn_fold_matches(code, fixed, "ConvBlock", (4,), (2, 4, 6, 6))


def test_conditional_list_spread_linear_batchnorm1d():
    code = _starred(conv="nn.Linear(c, c)", norms="(nn.BatchNorm1d(c),)", others="()")
    assert finding_at(code, "ADP008", "*((nn.BatchNorm1d(c),) if use_bn else ())") is not None


def test_conditional_list_spread_near_misses():
    # a ReLU before the norm on both sides
    code = _starred(norms="[nn.ReLU(), nn.BatchNorm2d(c)]", others="[nn.ReLU()]")
    assert found(code, "ADP007") == []
    # a Conv1d into a BatchNorm1d
    code = _starred(conv="nn.Conv1d(c, c, 3, padding=1)", norms="[nn.BatchNorm1d(c)]")
    assert found(code, "ADP007") == []


# ---------- ADP012: keywords spread from a dict(...) call

MODULE_DICT_CALL = textwrap.dedent("""\
    import torch
    from torch import nn

    model = nn.Linear(4, 2)
    opt_kwargs = dict(lr=1e-3, betas=(0.9, 0.99)KEYS)
    optimizer = torch.optim.AdamW(model.parameters(), **opt_kwargs)
    """)

FUNCTION_DICT_CALL = textwrap.dedent("""\
    from torch import optim


    def build(model, args):
        kw = dict(lr=args.lr, betas=(0.9, 0.999))
        CHANGE
        return optim.Adam(model.parameters(), **kw)
    """)


def test_module_level_dict_call_spread_into_an_optimizer():
    code = MODULE_DICT_CALL.replace("KEYS", "")
    assert finding_at(code, "ADP012", "torch.optim.AdamW(") is not None
    fixed = fix_text(code, "model.py", rules("ADP012")).text
    assert "**opt_kwargs, fused=True)" in fixed


def test_function_dict_call_with_computed_values_spread_into_an_optimizer():
    code = FUNCTION_DICT_CALL.replace("    CHANGE\n", "")
    assert finding_at(code, "ADP012", "optim.Adam(") is not None
    assert "**kw, fused=True)" in fix_text(code, "model.py", rules("ADP012")).text


def test_dict_call_spread_near_misses():
    # the dict chooses the implementation
    assert found(MODULE_DICT_CALL.replace("KEYS", ", fused=False"), "ADP012") == []
    assert found(MODULE_DICT_CALL.replace("KEYS", ", foreach=True"), "ADP012") == []
    # an item set under an if may choose it
    code = FUNCTION_DICT_CALL.replace("CHANGE", 'if args.fast:\n        kw["foreach"] = True')
    assert found(code, "ADP012") == []
    # the name bound twice: which dict the call gets is not certain
    code = MODULE_DICT_CALL.replace("KEYS", "").replace(
        "optimizer =", "opt_kwargs = dict(fused=True)\noptimizer =")
    assert found(code, "ADP012") == []
