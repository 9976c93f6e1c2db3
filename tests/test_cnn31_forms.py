"""Forms found missing while checking the blind batch cnn31 (torchvision-style CNNs of nine
packages new to the corpus: speaker-verification ResNets/Res2Nets and PANNs, PointNet/DGCNN
point-cloud nets, a RepViT backbone, CRNN and MobileNet OCR backbones, an EEG inception net, a
time-series classification trainer).  The fixtures are ours.

- An optimizer class taken from a parameter whose default names it
  (``def __init__(self, model, optimizer=optim.Adam): self.optimizer = optimizer(params,
  lr=...)``): the call builds that optimizer unless the caller passes another class, so it is
  read as a callee chosen at run time, as ``klass = RMSprop if c else Adam`` already was, and
  the fix passes ``fused=True`` only when the parameter is the default.
Near-misses: a default naming another optimizer, a default of ``None`` filled in the body, the
parameter bound again, a default whose root is another parameter, an implementation already
chosen at the call.
"""

from __future__ import annotations

import textwrap

from corpus_forms import finding_at, found, rules

from adopter.synth import fix_text

TRAINER = textwrap.dedent("""\
    import torch
    import torch.nn as nn
    import torch.optim as optim


    class Classifier:
        def __init__(self, model, criterion=nn.CrossEntropyLoss(), optimizer=DEFAULT, lr=1e-3):
            self.model = model
            self.criterion = criterion
            AGAIN
            self.optimizer = optimizer(self.model.parameters(), lr=lr)  # built

        def step(self, x, y):
            loss = self.criterion(self.model(x), y)
            loss.backward()
            self.optimizer.step()
            self.optimizer.zero_grad()
            return loss
""")


def _trainer(default="optim.Adam", again="pass"):
    return TRAINER.replace("DEFAULT", default).replace("AGAIN", again)


def test_optimizer_class_from_a_parameter_default():
    code = _trainer()
    assert finding_at(code, "ADP012", "# built") is not None
    fixed = fix_text(code, "train.py", rules("ADP012")).text
    assert '**({"fused": True} if optimizer is optim.Adam else {})' in fixed
    compile(fixed, "train.py", "exec")


def test_optimizer_parameter_default_fix_runs():
    import torch

    fixed = fix_text(_trainer(), "train.py", rules("ADP012")).text
    scope: dict = {}
    exec(compile(fixed, "train.py", "exec"), scope)  # noqa: S102 (our own fixture, fixed)
    model = torch.nn.Linear(4, 2)
    default = scope["Classifier"](model)
    assert isinstance(default.optimizer, torch.optim.Adam)
    assert default.optimizer.defaults["fused"] is True
    other = scope["Classifier"](model, optimizer=torch.optim.RMSprop)  # no fused keyword passed
    assert isinstance(other.optimizer, torch.optim.RMSprop)


def test_optimizer_parameter_default_kw_only_and_in_a_function():
    code = textwrap.dedent("""\
        import torch


        def build(model, *, opt_cls=torch.optim.AdamW, lr=3e-4):
            return opt_cls(model.parameters(), lr=lr)  # built
    """)
    assert finding_at(code, "ADP012", "# built") is not None
    fixed = fix_text(code, "train.py", rules("ADP012")).text
    assert "if opt_cls is torch.optim.AdamW else {}" in fixed


def test_optimizer_parameter_default_near_misses():
    # another optimizer (no fused kernel)
    assert found(_trainer(default="optim.RMSprop"), "ADP012") == []
    # a default of None, filled in the body: the parameter is bound again
    assert found(_trainer(default="None", again="optimizer = optimizer or optim.Adagrad"), "ADP012") == []
    # the parameter bound again after its default
    assert found(_trainer(again="optimizer = make_optimizer(optimizer)"), "ADP012") == []
    # the default read off another parameter: not a name of the module
    code = _trainer().replace("def __init__(self, model,", "def __init__(self, model, optim=None,")
    assert found(code, "ADP012") == []
    # the implementation already chosen at the call
    chosen = _trainer().replace("lr=lr)  # built", "lr=lr, foreach=False)  # built")
    assert found(chosen, "ADP012") == []
