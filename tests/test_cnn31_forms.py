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

Probed beside the batch (its files hold none; a torchvision-style way to build a Sequential):
- ``layers = OrderedDict()``, then ``layers["conv"] = nn.Conv2d(...)``, ``layers["bn"] =
  nn.BatchNorm2d(...)`` statement by statement, then ``nn.Sequential(layers)``: each new string
  key goes to the end, so the pairs are members in that order, as ``OrderedDict([...])``'s
  are.  Fixed as the container (FoldingSequential).
Near-misses: BatchNorm put in first, an activation between, a key put in again (replaced where
it stands), the BatchNorm moved to the front by ``move_to_end``, the name bound again.  Not
followed (the order is forgotten, no finding): a key that is no string literal, an item put in
under an ``if`` or in a loop.
"""

from __future__ import annotations

import textwrap

from corpus_forms import assert_bn_fold_matches, finding_at, found, rules

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


ODICT_FACTORY = textwrap.dedent("""\
    from collections import OrderedDict

    import torch.nn as nn


    def make(cin, cout):
        layers = OrderedDict()
        FIRST
        SECOND  # pair
        layers["relu"] = nn.ReLU(inplace=True)
        AFTER
        return nn.Sequential(layers)


    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = make(3, 8)

        def forward(self, x):
            return self.stem(x)
""")

CONV = 'layers["conv"] = nn.Conv2d(cin, cout, 3, padding=1, bias=False)'
NORM = 'layers["bn"] = nn.BatchNorm2d(cout)'


def _odict(first=CONV, second=NORM, after="pass"):
    return ODICT_FACTORY.replace("FIRST", first).replace("SECOND", second).replace("AFTER", after)


def test_ordered_dict_filled_by_item_assignment():
    code = _odict()
    assert finding_at(code, "ADP007", "# pair") is not None
    fixed = fix_text(code, "model.py", rules("ADP007")).text
    assert "FoldingSequential(layers)" in fixed
    assert_bn_fold_matches(code, fixed, "Net", (), (2, 3, 8, 8))


def test_ordered_dict_item_assignment_near_misses():
    # BatchNorm first
    assert found(_odict(first=NORM.replace("cout", "cin"), second=CONV), "ADP007") == []
    # an activation between
    between = 'layers["act"] = nn.ReLU()\n    ' + NORM
    assert found(_odict(second=between), "ADP007") == []
    # a key put in again: the conv replaced where it stands
    assert found(_odict(after='layers["conv"] = nn.Identity()'), "ADP007") == []
    # the BatchNorm moved to the front, the name bound again before the Sequential is built
    assert found(_odict(after='layers.move_to_end("bn", last=False)'), "ADP007") == []
    assert found(_odict(after="layers = OrderedDict(relu=nn.ReLU())"), "ADP007") == []
