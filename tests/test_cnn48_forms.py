"""A form found missing in the blind batch cnn48 (hand-written classification backbones and
torchvision/timm-style CNNs of 17 packages new to the corpus; the miss is eclipse-pytorch's
FIERY-style bottleneck).  The fixtures are ours.

- An ``OrderedDict`` filled by ``.update({...})`` (also ``update(dict(k=v))`` and
  ``update(k=v, ...)``), then ``nn.Sequential(layers)``: keys not put in before go to the end in
  the literal's order, as ``layers["conv"] = ...`` item by item already did.
- Such a dict made and filled inside a branch of an ``if``, with other keys put in first under
  an inner ``if``/``elif`` (a pooling or an upsampling in front of the projection): a put in a
  branch the dict was not made in is there on some ways only, so nothing is read through it
  and no pair is read across that ``if``; the pair put in after it, in the dict's own
  straight-line code, is read as before.
Near-misses: a key put in before (the layer stays where it stands), a ``**`` spread, the
BatchNorm first; an activation or the BatchNorm itself put in under an ``if`` (no flag on by
default) between the conv and what follows; puts in a loop.

Probed beside the batch (training scripts write it; none of the batch's files does):
- An optimizer class looked up in a dict display written in place,
  ``{"sgd": torch.optim.SGD, "adam": torch.optim.Adam}[name]``, bound to a name or called at
  once: a callee chosen at run time among the dict's values, as an entry of a module-level
  table (``klass = OPTIMIZERS[name]``) already was; the fix passes ``fused=True`` behind the
  same guard.  So is an entry of such a module-level table called in place,
  ``OPTIMIZERS[name](params, lr=lr)``.
Near-misses: a dict of optimizers none of which has a fused step, the implementation already
chosen.  Not followed (no finding): a computed key, a value that is no imported class (a
lambda building another optimizer), a module-level table the file also changes.
"""

from __future__ import annotations

import textwrap

from corpus_forms import assert_bn_fold_matches, finding_at, found, rules

from adopter.synth import fix_text

UPDATE = textwrap.dedent("""\
    from collections import OrderedDict

    import torch.nn as nn


    class Block(nn.Module):
        def __init__(self, cin=3, cout=8, pool=False):
            super().__init__()
            layers = OrderedDict()
            BEFORE
            layers.update(ITEMS)  # pair
            AFTER
            self.body = nn.Sequential(layers)

        def forward(self, x):
            return self.body(x)
""")

DISPLAY = '{"conv": nn.Conv2d(cin, cout, 3, padding=1, bias=False), "bn": nn.BatchNorm2d(cout)}'
CALL = "dict(conv=nn.Conv2d(cin, cout, 3, padding=1, bias=False), bn=nn.BatchNorm2d(cout))"
KEYWORDS = "conv=nn.Conv2d(cin, cout, 3, padding=1, bias=False), bn=nn.BatchNorm2d(cout)"


def _update(items=DISPLAY, before="pass", after="pass"):
    return UPDATE.replace("ITEMS", items).replace("BEFORE", before).replace("AFTER", after)


def test_ordered_dict_filled_by_update():
    for items in (DISPLAY, CALL, KEYWORDS):
        code = _update(items)
        assert finding_at(code, "ADP007", "# pair") is not None, items
        fixed = fix_text(code, "model.py", rules("ADP007")).text
        assert "FoldingSequential(layers)" in fixed, items
        assert_bn_fold_matches(code, fixed, "Block", (), (2, 3, 8, 8))


def test_ordered_dict_update_near_misses():
    # a key put in before: the update replaces the conv where it stands (after the pooling)
    code = _update(before='layers["conv"] = nn.MaxPool2d(2)')
    assert found(code, "ADP007") == []
    # a ** spread may put any key anywhere; BatchNorm first
    spread = DISPLAY.replace('"bn": nn.BatchNorm2d(cout)', "**extra")
    code = _update(spread, after='layers["bn"] = nn.BatchNorm2d(cout)').replace("pool=False", "extra=None")
    assert found(code, "ADP007") == []
    first = '{"bn": nn.BatchNorm2d(cin), "conv": nn.Conv2d(cin, cout, 3, padding=1, bias=False)}'
    assert found(_update(first), "ADP007") == []
    # the update followed by another order: the conv moved to the end
    assert found(_update(after='layers.move_to_end("conv")'), "ADP007") == []


BRANCHES = textwrap.dedent("""\
    from collections import OrderedDict

    import torch.nn as nn


    class Projection(nn.Module):
        def __init__(self, cin=3, cout=8, down=False, up=False):
            super().__init__()
            if cin == cout and not down:
                self.proj = None
            else:
                proj = OrderedDict()
                if up:
                    proj.update({"resize": nn.Upsample(scale_factor=2)})
                elif down:
                    proj.update({"resize": nn.MaxPool2d(2)})
                proj.update({"conv": nn.Conv2d(cin, cout, 1, bias=False), "bn": nn.BatchNorm2d(cout)})  # pair
                MORE
                self.proj = nn.Sequential(proj)

        def forward(self, x):
            return x if self.proj is None else self.proj(x)
""")


def test_ordered_dict_with_keys_put_in_under_an_if_first():
    code = BRANCHES.replace("MORE", "pass")
    assert finding_at(code, "ADP007", "# pair") is not None
    fixed = fix_text(code, "model.py", rules("ADP007")).text
    assert "FoldingSequential(proj)" in fixed
    assert_bn_fold_matches(code, fixed, "Projection", (), (2, 3, 8, 8))
    # item by item, the inner if's key put in as an item
    items = code.replace('proj.update({"resize": nn.MaxPool2d(2)})', 'proj["resize"] = nn.MaxPool2d(2)')
    assert finding_at(items, "ADP007", "# pair") is not None


def test_ordered_dict_branch_near_misses():
    # the same key put in again after the if (it stays where one branch put it)
    again = BRANCHES.replace("MORE", 'proj.update({"resize": nn.Identity()})')
    assert found(again, "ADP007") == []
    # an activation put in under an if (no default decides it) between the conv and the
    # BatchNorm: on some ways it runs between them
    between = BRANCHES.replace("MORE", "pass").replace(
        'proj.update({"conv": nn.Conv2d(cin, cout, 1, bias=False), "bn": nn.BatchNorm2d(cout)})  # pair',
        'proj["conv"] = nn.Conv2d(cin, cout, 1, bias=False)\n'
        '            if cout > 4:\n'
        '                proj["act"] = nn.ReLU()\n'
        '            proj["bn"] = nn.BatchNorm2d(cout)')
    assert found(between, "ADP007") == []
    # the BatchNorm itself only under an if whose test no default decides
    only_if = BRANCHES.replace("MORE", "pass").replace(
        'proj.update({"conv": nn.Conv2d(cin, cout, 1, bias=False), "bn": nn.BatchNorm2d(cout)})  # pair',
        'proj["conv"] = nn.Conv2d(cin, cout, 1, bias=False)\n'
        '            if cout > 4:\n'
        '                proj["bn"] = nn.BatchNorm2d(cout)')
    assert found(only_if, "ADP007") == []
    # keys put in in a loop: a constant key put in again on the next turn
    loop = _update(before='for _ in range(2):\n            layers.update({"pool": nn.MaxPool2d(1)})')
    assert finding_at(loop, "ADP007", "# pair") is None


OPTIMIZER_TABLE = textwrap.dedent("""\
    import torch
    import torch.optim as optim


    def bound(model, name="sgd", lr=0.1):
        klass = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam}[name]
        return klass(model.parameters(), lr=lr)  # bound


    def in_place(model, name="sgd", lr=0.1):
        return {"sgd": optim.SGD, "rms": optim.RMSprop}[name](model.parameters(), lr=lr)  # in place
""")


def test_optimizer_class_from_a_dict_written_in_place():
    import torch

    code = OPTIMIZER_TABLE
    assert finding_at(code, "ADP012", "# bound") is not None
    assert finding_at(code, "ADP012", "# in place") is not None
    fixed = fix_text(code, "train.py", rules("ADP012")).text
    scope: dict = {}
    exec(compile(fixed, "train.py", "exec"), scope)  # noqa: S102 (our own fixture, fixed)
    model = torch.nn.Linear(4, 2)
    adam = scope["bound"](model, "adam")
    assert isinstance(adam, torch.optim.Adam) and adam.defaults["fused"] is True
    sgd = scope["in_place"](model, "sgd")
    assert isinstance(sgd, torch.optim.SGD) and sgd.defaults["fused"] is True
    rms = scope["in_place"](model, "rms")  # no fused keyword passed to RMSprop
    assert isinstance(rms, torch.optim.RMSprop)


def test_optimizer_dict_in_place_near_misses():
    # no optimizer of the dict has a fused step
    none = OPTIMIZER_TABLE.replace('"sgd": optim.SGD', '"ada": optim.Adagrad').replace(
        '"sgd": torch.optim.SGD, "adam": torch.optim.Adam', '"rms": torch.optim.RMSprop')
    assert found(none, "ADP012") == []
    # the implementation already chosen
    chosen = OPTIMIZER_TABLE.replace("lr=lr)", "lr=lr, foreach=False)")
    assert found(chosen, "ADP012") == []
    # not followed: a computed key, a value that is no imported class
    computed = OPTIMIZER_TABLE.replace('{"sgd": torch.optim.SGD', '{name.lower(): torch.optim.SGD').replace(
        '{"sgd": optim.SGD', '{name.lower(): optim.SGD')
    assert found(computed, "ADP012") == []
    wrapped = OPTIMIZER_TABLE.replace('"sgd": torch.optim.SGD', '"sgd": lambda p, lr: torch.optim.RMSprop(p, lr)')
    wrapped = wrapped.replace('"sgd": optim.SGD', '"sgd": lambda p, lr: optim.RMSprop(p, lr)')
    assert finding_at(wrapped, "ADP012", "# bound") is None
    assert finding_at(wrapped, "ADP012", "# in place") is None


MODULE_TABLE = textwrap.dedent("""\
    import torch.optim as optim

    OPTIMIZERS = {"sgd": optim.SGD, "adam": optim.Adam}
    MORE


    def build(model, name="adam", lr=0.1):
        return OPTIMIZERS[name](model.parameters(), lr=lr)  # called


    def build_bound(model, name="adam", lr=0.1):
        opt = OPTIMIZERS[name](model.parameters(), lr=lr)  # bound
        return opt
""")


def test_module_table_entry_called_in_place():
    import torch

    code = MODULE_TABLE.replace("MORE", "")
    assert finding_at(code, "ADP012", "# called") is not None
    assert finding_at(code, "ADP012", "# bound") is not None
    fixed = fix_text(code, "train.py", rules("ADP012")).text
    scope: dict = {}
    exec(compile(fixed, "train.py", "exec"), scope)  # noqa: S102 (our own fixture, fixed)
    opt = scope["build"](torch.nn.Linear(4, 2))
    assert isinstance(opt, torch.optim.Adam) and opt.defaults["fused"] is True


def test_module_table_near_misses():
    # the file puts another entry in: its entries are not known
    assert found(MODULE_TABLE.replace("MORE", 'OPTIMIZERS["rms"] = optim.RMSprop'), "ADP012") == []
    # a table of optimizers without a fused step
    none = MODULE_TABLE.replace("MORE", "").replace('{"sgd": optim.SGD, "adam": optim.Adam}',
                                                     '{"rms": optim.RMSprop, "ada": optim.Adagrad}')
    assert found(none, "ADP012") == []
