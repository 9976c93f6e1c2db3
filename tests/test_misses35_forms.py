"""Forms of the dev corpus's remaining misses (session 29, helper misses35), read by their
computation.  The fixtures are ours.

- An ``nn.Sequential`` written by hand (a-unet's ``Sequential``): an ``nn.Module`` whose
  ``__init__(self, *blocks)`` holds its layers as its one member, ``self.blocks =
  nn.ModuleList(blocks)``, and whose ``forward(self, x, *args)`` is one loop ``for block in
  self.blocks: x = block(x, *args)`` then ``return x``.  Calling it with layers runs them one
  after the other, as nn.Sequential's constructor would; it was read only for classes derived
  from nn.Sequential.  Also a function whose body only defines such a subclass and returns it
  (``def Skip(merge_fn): class Skip(Sequential): def forward(self, x, *args): return
  merge_fn(x, super().forward(x, *args)); return Skip``), called as ``Skip(torch.add)(a, b, c)``.
  The same class given one list (``__init__(self, layers)``, ``Stack([a, b, c])`` or a list
  filled before, ``Stack(layers)``) runs that list's members in order.
  Reported, not fixed (the container is a class with its own code).
Near-misses: a residual inside the loop (``x = x + block(x)``), the blocks run in reverse, each
block given the input (``y = block(x)``), a factory whose class derives from its own parameter,
a list chain whose loop skips its first member (``self.layers[1:]``), a ReLU between the pair.

- A layer class held by an attribute and built in ``forward`` under a test naming it
  (deepvision's encoder: ``self.activation = activation``, then ``if self.activation ==
  torch.nn.GELU: y = self.activation(approximate="tanh")(y)``): in that branch the attribute
  holds that class, so the call builds that layer and applies it, as ``nn.GELU(approximate=
  "tanh")(y)`` written out does (reported, not fixed, as that form is).  The ``else`` branch
  is not read as GELU.
Near-misses: the test negated (``!=``), the test naming another attribute.
"""

from __future__ import annotations

import textwrap

from corpus_forms import finding_at, found, rules

from adopter.synth import fix_text

CHAIN = textwrap.dedent('''
    import torch
    from torch import nn


    class Chain(nn.Module):
        """Runs its blocks in order."""

        def __init__(self, *blocks):
            super().__init__()
            self.blocks = nn.ModuleList(blocks)

        def forward(self, x, *args):
            for block in self.blocks:
                x = block(x, *args)
            return x
''')


def test_hand_written_sequential_runs_its_layers_in_order():
    code = CHAIN + textwrap.dedent('''

        def feed_forward(features, mult):
            return Chain(
                nn.Linear(features, features * mult),
                nn.GELU(),
                nn.Linear(features * mult, features),
            )
    ''')
    finding = finding_at(code, "ADP006", "nn.GELU()")
    assert finding is not None
    assert not finding.fixable


def test_factory_returning_a_subclass_of_the_hand_written_sequential():
    code = CHAIN + textwrap.dedent('''

        def Skip(merge_fn=torch.add):
            class Skip(Chain):
                def forward(self, x, *args):
                    return merge_fn(x, super().forward(x, *args))

            return Skip


        def feed_forward(features, mult):
            return Skip(torch.add)(
                nn.Linear(features, features * mult),
                nn.GELU(),
                nn.Linear(features * mult, features),
            )
    ''')
    assert finding_at(code, "ADP006", "nn.GELU()") is not None


def test_residual_inside_the_loop_is_no_chain():
    code = CHAIN.replace("x = block(x, *args)", "x = x + block(x, *args)") + textwrap.dedent('''

        def feed_forward(features):
            return Chain(nn.Linear(features, features), nn.GELU())
    ''')
    assert found(code, "ADP006") == []


def test_blocks_run_in_reverse_are_no_chain():
    code = CHAIN.replace("in self.blocks:", "in reversed(self.blocks):") + textwrap.dedent('''

        def feed_forward(features):
            return Chain(nn.Linear(features, features), nn.GELU())
    ''')
    assert found(code, "ADP006") == []


def test_each_block_given_the_input_is_no_chain():
    code = CHAIN.replace(
        "for block in self.blocks:\n            x = block(x, *args)\n        return x",
        "for block in self.blocks:\n            y = block(x, *args)\n        return y",
    ).replace("def forward(self, x, *args):", "def forward(self, x, *args):\n        y = x") + textwrap.dedent('''

        def feed_forward(features):
            return Chain(nn.Linear(features, features), nn.GELU())
    ''')
    assert "y = block(x, *args)" in code
    assert found(code, "ADP006") == []


def test_factory_class_derived_from_its_own_parameter_is_not_read():
    code = CHAIN + textwrap.dedent('''

        def Skip(base):
            class Skip(base):
                def forward(self, x):
                    return x + super().forward(x)

            return Skip


        def feed_forward(features):
            return Skip(Chain)(nn.Linear(features, features), nn.GELU())
    ''')
    assert found(code, "ADP006") == []


LIST_CHAIN = textwrap.dedent('''
    import torch
    from torch import nn


    class Stack(nn.Module):
        def __init__(self, layers):
            super().__init__()
            self.layers = nn.ModuleList(layers)

        def forward(self, x):
            for layer in self.layers:
                x = layer(x)
            return x


    class Net(nn.Module):
        def __init__(self, cin, cout):
            super().__init__()
            layers = []
            layers.append(nn.Conv2d(cin, cout, 3, padding=1, bias=False))
            layers.append(nn.BatchNorm2d(cout))
            layers.append(nn.ReLU())
            self.body = Stack(layers)

        def forward(self, x):
            return self.body(x)
''')


def test_hand_written_sequential_given_one_list_runs_its_members_in_order():
    assert finding_at(LIST_CHAIN, "ADP007", "layers.append(nn.Conv2d(") is not None
    # reported, not fixed: the layers run in the class's own loop
    assert fix_text(LIST_CHAIN, "model.py", rules("ADP007")).text == LIST_CHAIN


def test_hand_written_sequential_given_a_list_literal():
    code = CHAIN.replace("def __init__(self, *blocks):", "def __init__(self, blocks):") + textwrap.dedent('''

        def feed_forward(features):
            return Chain([nn.Linear(features, 4 * features), nn.GELU(), nn.Linear(4 * features, features)])
    ''')
    assert finding_at(code, "ADP006", "nn.GELU()") is not None


def test_list_chain_whose_loop_skips_members_is_not_read():
    code = LIST_CHAIN.replace(
        "for layer in self.layers:\n            x = layer(x)",
        "for layer in self.layers[1:]:\n            x = layer(x)",
    )
    assert "self.layers[1:]" in code
    assert found(code, "ADP007") == []


def test_list_chain_with_an_activation_between_is_no_pair():
    code = LIST_CHAIN.replace(
        "layers.append(nn.BatchNorm2d(cout))\n        layers.append(nn.ReLU())",
        "layers.append(nn.ReLU())\n        layers.append(nn.BatchNorm2d(cout))",
    )
    assert code.index("nn.ReLU()") < code.index("nn.BatchNorm2d(cout)")
    assert found(code, "ADP007") == []


HELD_CLASS = textwrap.dedent('''
    import torch
    from torch import nn


    class Block(nn.Module):
        def __init__(self, d, activation=nn.GELU):
            super().__init__()
            self.activation = activation
            self.linear1 = nn.Linear(d, 4 * d)
            self.linear2 = nn.Linear(4 * d, d)

        def forward(self, x):
            y = self.linear1(x)
            if self.activation == torch.nn.GELU:
                y = self.activation(approximate="tanh")(y)
            else:
                y = self.activation()(y)
            return self.linear2(y)
''')


def test_class_held_by_an_attribute_built_under_a_test_naming_it():
    assert finding_at(HELD_CLASS, "ADP006", 'approximate="tanh"') is not None
    # the other branch builds whatever other class the attribute holds: no GELU there
    assert finding_at(HELD_CLASS, "ADP006", "self.activation()(y)") is None
    # reported, not fixed: a layer built in forward is no layer the kernel can be given
    assert fix_text(HELD_CLASS, "model.py", rules("ADP006")).text == HELD_CLASS


def test_class_test_negated_says_nothing_of_the_branch():
    code = HELD_CLASS.replace("if self.activation == torch.nn.GELU:", "if self.activation != torch.nn.GELU:")
    assert found(code, "ADP006") == []


def test_class_test_of_another_attribute_says_nothing_of_this_one():
    code = HELD_CLASS.replace("if self.activation == torch.nn.GELU:", "if self.kind == torch.nn.GELU:").replace(
        "self.activation = activation", "self.activation = activation\n        self.kind = nn.GELU")
    assert found(code, "ADP006") == []
