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
  Reported, not fixed (the container is a class with its own code).
Near-misses: a residual inside the loop (``x = x + block(x)``), the blocks run in reverse, each
block given the input (``y = block(x)``), a factory whose class derives from its own parameter.
"""

from __future__ import annotations

import textwrap

from corpus_forms import finding_at, found

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
