"""Forms found missing while checking the blind batch cnn30 (torchvision-style CNNs for
segmentation, detection, generation and restoration: HRNet, Xception, ASPP, ENet, PSP and
BiSeNet heads, U-Nets, a YOLOX neck, GAN trainers, SRResNet/SwinIR).  The fixtures are ours.

- A trainer class whose methods close a cycle of *words*: ``run`` calls ``self.evaluate()``,
  which calls ``self.evaluator.run(...)`` (another object's namesake), or ``train`` calls a
  ``_toggle`` helper that calls ``network.train()``.  Every method was "called", none was a
  root, and the optimizer built in them was read nowhere.  The methods no root reaches are read
  again with their own calls only (``self.name``, ``cls.name``, ``super().name``, a bare
  name); those none of them calls become roots.
- A constructor parameter without default filled by a caller in a method other than
  ``__init__`` with ``self.norm_layer``, an attribute the caller's ``__init__`` binds to its
  own parameter (HRNet's ``HighResolutionModule(..., self.norm_layer)`` in ``_make_stage``):
  the caller's method is read from the ``self.`` values its ``__init__`` leaves.
- Classes defined in a module-level ``if``/``try`` block (``if HAS_TORCH: class
  DoubleConv(nn.Module): ...``): their ``nn.Sequential`` constructions were not walked (the
  forward pairs were).

Near-misses: a fused or non-Adam optimizer in the same cycle, a cycle of own calls (the first
is a root, read once); the caller's ``__init__`` binding a GroupNorm or the method binding the
attribute again before the call; an activation between in the if-nested Sequential.
"""

from __future__ import annotations

import textwrap

from corpus_forms import finding_at, found, rules

from adopter.synth import fix_text

# ---------- optimizers in methods that mention each other only through namesakes

TRAINER = textwrap.dedent("""\
    import torch
    from torch import nn


    class Trainer:
        def __init__(self, model, evaluator, lr=1e-3):
            self.model = model
            self.evaluator = evaluator
            self.lr = lr
            self.optimizer = None

        def run(self, batches):
            self.load()
            for x, y in batches:
                loss = nn.functional.mse_loss(self.model(x), y)
                loss.backward()
                self.optimizer.step()
            return self.evaluate()

        def evaluate(self):
            return self.evaluator.run(self.model)

        def build_optimizer(self):
            return OPTIMIZER  # optimizer

        def load(self):
            self.optimizer = self.build_optimizer()
            state = torch.load("ckpt.pth")
            self.optimizer.load_state_dict(state)
""")


def _trainer(optimizer="torch.optim.Adam(self.model.parameters(), lr=self.lr)"):
    return TRAINER.replace("OPTIMIZER", optimizer)


def test_optimizer_in_a_cycle_of_namesakes():
    code = _trainer()
    assert finding_at(code, "ADP012", "# optimizer") is not None
    fixed = fix_text(code, "model.py", rules("ADP012")).text
    assert "torch.optim.Adam(self.model.parameters(), lr=self.lr, fused=True)" in fixed
    # the SGD and AdamW spellings too
    assert finding_at(_trainer("torch.optim.SGD(self.model.parameters(), lr=self.lr, momentum=0.9)"),
                      "ADP012", "# optimizer") is not None


TOGGLE = textwrap.dedent("""\
    import torch


    class GAN:
        def __init__(self, gen, dis):
            self.gen = gen
            self.dis = dis

        def _toggle(self, mode="train"):
            for network in (self.gen, self.dis):
                if mode == "train":
                    network.train()
                else:
                    network.eval()

        def step(self, batch):
            return self.dis(self.gen(batch)).mean()

        def train(self, batches, lr=2e-4):
            self._toggle("train")
            opt = torch.optim.Adam(params=self.gen.parameters(), lr=lr, betas=(0, 0.99))  # optimizer
            for batch in batches:
                self.step(batch).backward()
                opt.step()
""")


def test_optimizer_in_a_method_its_helper_names_through_another_object():
    assert finding_at(TOGGLE, "ADP012", "# optimizer") is not None


def test_cycle_near_misses():
    # already fused, or an optimizer with no fused kernel: nothing, as anywhere
    assert found(_trainer("torch.optim.Adam(self.model.parameters(), fused=True)"), "ADP012") == []
    assert found(_trainer("torch.optim.NAdam(self.model.parameters())"), "ADP012") == []


def test_cycle_of_own_calls_read_once():
    # a cycle of the class's own calls: read from its first member, once (one finding)
    mutual = textwrap.dedent("""\
        import torch


        class Loop:
            def __init__(self, model):
                self.model = model

            def ping(self, n):
                return self.pong(n - 1) if n else torch.optim.SGD(self.model.parameters(), lr=0.1)  # optimizer

            def pong(self, n):
                return self.ping(n)
    """)
    assert len(found(mutual, "ADP012")) == 1
    assert finding_at(mutual, "ADP012", "# optimizer") is not None


# ---------- a norm class handed on as ``self.<attr>`` from a method other than __init__

HRNET = textwrap.dedent("""\
    import torch.nn as nn


    class Branch(nn.Module):
        def __init__(self, planes, norm_layer):
            super().__init__()
            self.norm_layer = norm_layer
            self.down = nn.Sequential(
                nn.Conv2d(planes, planes, 1, bias=False),
                self.norm_layer(planes, momentum=0.01),  # seq pair
            )
            self.conv = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
            self.bn = self.norm_layer(planes, momentum=0.01)

        def forward(self, x):
            return self.bn(self.conv(self.down(x)))  # pair


    class Net(nn.Module):
        def __init__(self, norm_layer):
            super().__init__()
            self.norm_layer = INIT_NORM
            self.stages = self._make_stage(64)

        def _make_stage(self, planes):
            REBIND
            return nn.ModuleList([Branch(planes, self.norm_layer) for _ in range(2)])

        def forward(self, x):
            for stage in self.stages:
                x = stage(x)
            return x


    def hrnet(norm_layer=nn.BatchNorm2d):
        return Net(norm_layer=norm_layer)
""")


def _hrnet(init_norm="norm_layer", rebind="pass"):
    return HRNET.replace("INIT_NORM", init_norm).replace("REBIND", rebind)


def test_norm_class_passed_as_self_attribute_from_a_method():
    code = _hrnet()
    assert finding_at(code, "ADP007", "# pair") is not None
    assert finding_at(code, "ADP007", "# seq pair") is not None
    # the attribute bound to the class itself in __init__
    assert finding_at(_hrnet(init_norm="nn.BatchNorm2d"), "ADP007", "# pair") is not None


def test_norm_class_passed_as_self_attribute_near_misses():
    # __init__ binds a GroupNorm-like class: no BatchNorm to fold
    assert found(_hrnet(init_norm="nn.InstanceNorm2d"), "ADP007") == []
    # the method binds the attribute again before it hands it on
    assert found(_hrnet(rebind="self.norm_layer = nn.InstanceNorm2d"), "ADP007") == []


# ---------- classes defined in a module-level if / try block

GUARDED = textwrap.dedent("""\
    try:
        import torch.nn as nn
        HAS_TORCH = True
    except ImportError:
        HAS_TORCH = False

    if HAS_TORCH:
        class DoubleConv(nn.Module):
            def __init__(self, cin, cout):
                super().__init__()
                self.double_conv = nn.Sequential(
                    nn.Conv2d(cin, cout, 3, padding=1, bias=False),
                    BETWEEN
                    nn.BatchNorm2d(cout),  # pair
                    nn.ReLU(inplace=True),
                )

            def forward(self, x):
                return self.double_conv(x)
    else:
        class DoubleConv:
            def __init__(self, *args):
                raise ImportError("torch is needed")
""")


def test_sequential_in_a_class_under_a_module_level_if():
    code = GUARDED.replace("BETWEEN\n", "")
    assert finding_at(code, "ADP007", "# pair") is not None
    # defined in a try block instead
    tried = textwrap.dedent("""\
        import torch.nn as nn

        try:
            import apex  # noqa: F401
        except ImportError:
            class ConvBN(nn.Module):
                def __init__(self, cin, cout):
                    super().__init__()
                    self.body = nn.Sequential(nn.Conv2d(cin, cout, 1, bias=False),
                                              nn.BatchNorm2d(cout))  # pair

                def forward(self, x):
                    return self.body(x)
    """)
    assert finding_at(tried, "ADP007", "# pair") is not None


def test_sequential_in_a_class_under_a_module_level_if_near_miss():
    # an activation between the conv and the BatchNorm
    assert found(GUARDED.replace("BETWEEN", "nn.ReLU(),"), "ADP007") == []
