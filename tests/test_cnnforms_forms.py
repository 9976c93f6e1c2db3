"""Ways torchvision-style CNN code builds conv -> BatchNorm pairs that the layer typing did not
read (session 25, helper cnnforms; found by cnn31's probe, none in a blind file yet).  The
fixtures are ours.

- A same-file factory (or method) returning a ``(conv, bn)`` tuple unpacked into attributes:
  ``self.conv, self.bn = conv_bn(c, d)``: each attribute holds that element of the tuple, as
  ``conv, bn = conv_bn(...)`` into locals already did.
- Layer classes held as class attributes (``conv = nn.Conv2d`` in the class body, built as
  ``self.conv(...)``), also a same-file base's; not when a same-file subclass binds the name
  again (the code then runs with another class) or a method stores ``self.<name>``.
- ``OrderedDict({...})`` of a dict display with string-literal keys, or of ``dict(k=v, ...)``,
  handed to ``nn.Sequential`` inline or through a name: the members in the literal's order.
- ``layers["bn"] = nn.BatchNorm2d(c)`` in an OrderedDict filled item by item, under ``if bn:``
  whose flag is a parameter defaulting to ``True`` (the GUIDE reads a flag at its default).
- A module-level lambda factory, ``conv3x3 = lambda cin, cout, stride=1: nn.Conv2d(...)``
  bound once: a call of it is what its body builds with those arguments, as a function's.
- torch's ``nn.SyncBatchNorm`` after a Conv2d (built directly or from a ``norm_layer`` default):
  in eval a BatchNorm on its running statistics, so reported, not fixed, with its reason, as a
  package's own synchronised BatchNorm already was (lead ruling, session 25).
- ``setattr(self, f"conv{i}", ...)`` / ``setattr(self, "bn%d" % i, ...)`` in a loop, read back in
  forward as ``getattr(self, f"conv{i}")(x)``: the name family ``conv{}``, as ``add_module`` and
  ``self._modules[...]`` already were; a family read through ``getattr`` only when all its
  members are one kind.
Near-misses: the tuple unpacked the other way round (BatchNorm first), an activation between,
the attribute overridden by a subclass; a dict with a non-literal key, a key given twice, a
``**`` spread, a ``dict`` that is not the builtin; a flag off by default (or ``None``, or bound
again), a key put in again after the ``if``; a lambda building a Conv1d or a Sequential ending in
an activation, a lambda name bound twice; nn.SyncBatchNorm after a Conv1d, before the conv, or
with ``track_running_stats=False``; an activation between getattr calls, a GroupNorm family, one
family holding convs and norms, a family no setattr gave, a key with two computed parts.
"""

from __future__ import annotations

import textwrap

from corpus_forms import assert_bn_fold_matches, finding_at, found, rules

from adopter.synth import fix_text

PAIR_FACTORY = textwrap.dedent("""\
    import torch.nn as nn


    def conv_bn(cin, cout, stride=1):
        return nn.Conv2d(cin, cout, 3, stride, padding=1, bias=False), nn.BatchNorm2d(cout)


    class Block(nn.Module):
        def __init__(self, cin=3, cout=8):
            super().__init__()
            TARGETS = conv_bn(cin, cout)
            self.act = nn.ReLU()

        def forward(self, x):
            x = self.conv(x)
            BETWEEN
            return self.act(self.bn(x))  # pair
""")


def _pair_factory(targets="self.conv, self.bn", between="pass"):
    return PAIR_FACTORY.replace("TARGETS", targets).replace("BETWEEN", between)


def test_factory_pair_unpacked_into_attributes():
    code = _pair_factory()
    assert finding_at(code, "ADP007", "# pair") is not None
    fixed = fix_text(code, "model.py", rules("ADP007")).text
    assert "conv_bn(x, self.conv, self.bn)" in fixed.replace("adopter_kernels.", "")
    assert_bn_fold_matches(code, fixed, "Block", (), (2, 3, 8, 8))


def test_method_factory_pair_unpacked_into_attributes():
    code = textwrap.dedent("""\
        import torch.nn as nn


        class Block(nn.Module):
            def __init__(self, cin=3, cout=8):
                super().__init__()
                self.conv, self.bn = self._conv_bn(cin, cout)

            def _conv_bn(self, cin, cout):
                return nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout)

            def forward(self, x):
                return self.bn(self.conv(x))  # pair
    """)
    assert finding_at(code, "ADP007", "# pair") is not None
    fixed = fix_text(code, "model.py", rules("ADP007")).text
    assert_bn_fold_matches(code, fixed, "Block", (), (2, 3, 8, 8))


def test_factory_pair_near_misses():
    # unpacked the other way round: self.bn holds the conv, self.conv the BatchNorm
    assert found(_pair_factory(targets="self.bn, self.conv"), "ADP007") == []
    # an activation between
    assert found(_pair_factory(between="x = self.act(x)"), "ADP007") == []
    # a factory whose tuple is not (layer, layer): nothing known of its elements
    other = _pair_factory().replace("nn.BatchNorm2d(cout)", "cout")
    assert found(other, "ADP007") == []


CLASS_ATTRS = textwrap.dedent("""\
    import torch.nn as nn


    class Base(nn.Module):
        conv = nn.Conv2d
        norm = nn.BatchNorm2d


    class Block(Base):
        def __init__(self, cin=3, cout=8):
            super().__init__()
            self.c = self.conv(cin, cout, 3, padding=1, bias=False)
            self.n = self.norm(cout)

        def forward(self, x):
            return self.n(self.c(x))  # pair
    MORE
""")


def _class_attrs(more=""):
    return CLASS_ATTRS.replace("MORE", more)


def test_layer_classes_held_as_class_attributes():
    code = _class_attrs()
    assert finding_at(code, "ADP007", "# pair") is not None
    fixed = fix_text(code, "model.py", rules("ADP007")).text
    assert "conv_bn(x, self.c, self.n)" in fixed.replace("adopter_kernels.", "")
    assert_bn_fold_matches(code, fixed, "Block", (), (2, 3, 8, 8))
    # a subclass that keeps the classes: still known
    keeps = _class_attrs("\n\nclass Wide(Block):\n    expansion = 2\n")
    assert finding_at(keeps, "ADP007", "# pair") is not None


def test_class_attribute_near_misses():
    # a subclass overriding the norm with another class: Block's code runs with either
    assert found(_class_attrs("\n\nclass GNBlock(Block):\n    norm = nn.GroupNorm\n"), "ADP007") == []
    # bound twice in the body, or bound on the instance by a method
    assert found(_class_attrs().replace("norm = nn.BatchNorm2d", "norm = nn.BatchNorm2d\n    norm = nn.GroupNorm"),
                 "ADP007") == []
    stored = _class_attrs("\n    def set_norm(self, cls):\n        self.norm = cls\n")
    assert found(stored, "ADP007") == []
    # the BatchNorm first
    assert found(_class_attrs().replace("self.n(self.c(x))", "self.c(self.n(x))").replace(
        "self.n = self.norm(cout)", "self.n = self.norm(cin)"), "ADP007") == []


ODICT_LITERAL = textwrap.dedent("""\
    from collections import OrderedDict

    import torch.nn as nn


    class Net(nn.Module):
        def __init__(self, cin=3, cout=8):
            super().__init__()
            self.inline = nn.Sequential(OrderedDict(FIRST))  # inline
            layers = OrderedDict(
                SECOND  # named
            )
            self.named = nn.Sequential(layers)

        def forward(self, x):
            return self.named(self.inline(x))
""")

DICT_DISPLAY = ('{"conv": nn.Conv2d(CIN, cout, 3, padding=1, bias=False), "bn": nn.BatchNorm2d(cout), '
                '"relu": nn.ReLU()}')
DICT_CALL = "dict(conv=nn.Conv2d(CIN, cout, 3, padding=1, bias=False), bn=nn.BatchNorm2d(cout), relu=nn.ReLU())"


def _odict_literal(items):
    return ODICT_LITERAL.replace("FIRST", items.replace("CIN", "cin")).replace("SECOND", items.replace("CIN", "cout"))


def test_ordered_dict_of_a_dict_literal():
    for items in (DICT_DISPLAY, DICT_CALL):
        code = _odict_literal(items)
        assert finding_at(code, "ADP007", "# inline") is not None, items
        assert finding_at(code, "ADP007", "# named") is not None, items
        fixed = fix_text(code, "model.py", rules("ADP007")).text
        assert fixed.count("FoldingSequential(") == 2
        assert_bn_fold_matches(code, fixed, "Net", (), (2, 3, 8, 8))


def test_ordered_dict_of_a_dict_literal_near_misses():
    # BatchNorm first, an activation between
    first = DICT_DISPLAY.replace('"bn": nn.BatchNorm2d(cout), ', "")
    first = first.replace('{"conv"', '{"bn": nn.BatchNorm2d(cout), "conv"')
    assert found(_odict_literal(first), "ADP007") == []
    between = DICT_DISPLAY.replace('"bn": nn.BatchNorm2d(cout), "relu": nn.ReLU()',
                                   '"relu": nn.ReLU(), "bn": nn.BatchNorm2d(cout)')
    assert found(_odict_literal(between), "ADP007") == []
    # a key that is no literal (it may repeat an earlier one: then the order is another), a
    # key given twice, a ** spread
    for items in (DICT_DISPLAY.replace('"bn"', "name"), DICT_DISPLAY.replace('"relu"', '"conv"'),
                  DICT_DISPLAY.replace('"relu": nn.ReLU()', "**extra"),
                  DICT_CALL.replace("relu=nn.ReLU()", "**extra")):
        code = _odict_literal(items).replace("cout=8):", "cout=8, name='bn', extra=None):")
        assert found(code, "ADP007") == [], items
    # a dict() that is not the builtin
    shadowed = _odict_literal(DICT_CALL).replace("import torch.nn as nn\n", "import torch.nn as nn\nfrom mylib import dict\n")
    assert found(shadowed, "ADP007") == []


ODICT_FLAG = textwrap.dedent("""\
    from collections import OrderedDict

    import torch.nn as nn


    class ConvBlock(nn.Module):
        def __init__(self, cin=3, cout=8, SIGNATURE):
            super().__init__()
            layers = OrderedDict()
            layers["conv"] = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
            if FLAG:
                layers["bn"] = nn.BatchNorm2d(cout)  # pair
            AFTER
            layers["relu"] = nn.ReLU()
            self.body = nn.Sequential(layers)

        def forward(self, x):
            return self.body(x)
""")


def _odict_flag(signature="bn=True", flag="bn", after="pass"):
    return ODICT_FLAG.replace("SIGNATURE", signature).replace("FLAG", flag).replace("AFTER", after)


def test_ordered_dict_item_under_a_flag_on_by_default():
    code = _odict_flag()
    assert finding_at(code, "ADP007", "# pair") is not None
    fixed = fix_text(code, "model.py", rules("ADP007")).text
    assert "FoldingSequential(layers)" in fixed
    assert_bn_fold_matches(code, fixed, "ConvBlock", (), (2, 3, 8, 8))
    assert finding_at(_odict_flag(signature="*, bn=True"), "ADP007", "# pair") is not None


def test_ordered_dict_flag_near_misses():
    # a flag off by default: the pair forms only when a caller sets it (skip, not reported)
    assert found(_odict_flag(signature="bn=False"), "ADP007") == []
    # no default, a default that is no literal True, the flag bound again in the body
    assert found(_odict_flag(signature="bn=None"), "ADP007") == []
    assert found(_odict_flag(signature="bn=1 > 2"), "ADP007") == []
    assert found(_odict_flag(after="bn = not bn"), "ADP007") == []
    # the same key put in again after the if: replaced where it may stand
    assert found(_odict_flag(after='layers["bn"] = nn.Identity()'), "ADP007") == []
    # an activation put in under the flag before the BatchNorm
    act = _odict_flag().replace('layers["bn"] =', 'layers["act"] = nn.ReLU()\n            layers["bn"] =')
    assert found(act, "ADP007") == []


LAMBDA_FACTORY = textwrap.dedent("""\
    import torch.nn as nn

    conv3x3 = lambda cin, cout, stride=1: BODY
    MORE


    class Block(nn.Module):
        def __init__(self, cin=3, cout=8):
            super().__init__()
            self.conv = conv3x3(cin, cout)
            self.bn = nn.BatchNorm2d(cout)
            self.stem = nn.Sequential(conv3x3(cout, cout), nn.BatchNorm2d(cout), nn.ReLU())  # stem

        def forward(self, x):
            return self.stem(self.bn(self.conv(x)))  # pair
""")


def _lambda(body="nn.Conv2d(cin, cout, 3, stride, 1, bias=False)", more=""):
    return LAMBDA_FACTORY.replace("BODY", body).replace("MORE", more)


def test_module_level_lambda_factory():
    code = _lambda()
    assert finding_at(code, "ADP007", "# pair") is not None
    assert finding_at(code, "ADP007", "# stem") is not None
    fixed = fix_text(code, "model.py", rules("ADP007")).text
    assert "conv_bn(x, self.conv, self.bn)" in fixed.replace("adopter_kernels.", "")
    assert_bn_fold_matches(code, fixed, "Block", (), (2, 3, 8, 8))


def test_module_level_lambda_near_misses():
    # the lambda builds another layer (a Conv1d), or a conv then a ReLU in a Sequential
    assert found(_lambda(body="nn.Conv1d(cin, cout, 3, stride, 1)"), "ADP007") == []
    seq = _lambda(body="nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1), nn.ReLU())")
    assert finding_at(seq, "ADP007", "# pair") is None
    # the name bound again at module level: which lambda runs is not one
    again = _lambda(more="conv3x3 = lambda cin, cout, stride=1: nn.Identity()")
    assert found(again, "ADP007") == []


SYNC_BN = textwrap.dedent("""\
    import torch.nn as nn


    class Block(nn.Module):
        def __init__(self, cin=3, cout=8, norm_layer=nn.SyncBatchNorm):
            super().__init__()
            self.conv = CONV
            self.bn = NORM
            self.head = nn.Sequential(nn.Conv2d(cout, cout, 1, bias=False), nn.SyncBatchNorm(cout), nn.ReLU())

        def forward(self, x):
            return self.head(self.bn(self.conv(x)))  # pair
""")


def _sync(conv="nn.Conv2d(cin, cout, 3, padding=1, bias=False)", norm="nn.SyncBatchNorm(cout)"):
    return SYNC_BN.replace("CONV", conv).replace("NORM", norm)


def test_torch_sync_batchnorm_after_a_conv_is_reported_not_fixed():
    for norm in ("nn.SyncBatchNorm(cout)", "norm_layer(cout)"):
        code = _sync(norm=norm)
        assert finding_at(code, "ADP007", "# pair") is not None, norm
        assert finding_at(code, "ADP007", "nn.Sequential(nn.Conv2d(cout") is not None, norm
        result = fix_text(code, "model.py", rules("ADP007"))
        assert result.text == code
        reasons = " ".join(str(s) for s in result.skipped)
        assert reasons.count("nn.SyncBatchNorm is a BatchNorm on its running statistics in eval mode") == 2


def test_torch_sync_batchnorm_near_misses():
    # after a Conv1d (a Conv1d -> BatchNorm pair is no ADP007 site), before the conv, without
    # running statistics
    assert finding_at(_sync(conv="nn.Conv1d(cin, cout, 3, padding=1, bias=False)"), "ADP007", "# pair") is None
    before = _sync(norm="nn.SyncBatchNorm(cin)").replace("self.bn(self.conv(x))", "self.conv(self.bn(x))")
    assert finding_at(before, "ADP007", "# pair") is None
    assert finding_at(_sync(norm="nn.SyncBatchNorm(cout, track_running_stats=False)"), "ADP007", "# pair") is None


SETATTR_LOOP = textwrap.dedent("""\
    import torch.nn as nn


    class Stack(nn.Module):
        def __init__(self, width=8, depth=3):
            super().__init__()
            self.stem = nn.Conv2d(3, width, 1)
            for i in range(depth):
                setattr(self, CONV_KEY, nn.Conv2d(width, width, 3, padding=1, bias=False))
                setattr(self, BN_KEY, NORM)
            self.act = nn.ReLU()

        def forward(self, x):
            x = self.stem(x)
            for i in range(3):
                x = getattr(self, CONV_KEY)(x)
                BETWEEN
                x = getattr(self, BN_KEY)(x)  # pair
            return x
""")


def _setattr(conv='f"conv{i}"', bn='f"bn{i}"', norm="nn.BatchNorm2d(width)", between=""):
    return (SETATTR_LOOP.replace("CONV_KEY", conv).replace("BN_KEY", bn).replace("NORM", norm)
            .replace("BETWEEN", between))


def test_setattr_getattr_name_families_in_loops():
    for conv, bn in (('f"conv{i}"', 'f"bn{i}"'), ('"conv%d" % i', '"bn%d" % i'), ('"conv" + str(i)', '"bn" + str(i)')):
        code = _setattr(conv, bn)
        assert finding_at(code, "ADP007", "# pair") is not None, conv
        fixed = fix_text(code, "model.py", rules("ADP007")).text
        assert f"conv_bn(x, getattr(self, {conv}), getattr(self, {bn}))" in fixed.replace("adopter_kernels.", "")
        assert_bn_fold_matches(code, fixed, "Stack", (), (2, 3, 8, 8))


def test_setattr_getattr_near_misses():
    # an activation between, a GroupNorm family
    assert found(_setattr(between="x = self.act(x)"), "ADP007") == []
    assert found(_setattr(norm="nn.GroupNorm(2, width)"), "ADP007") == []
    # one family holding both the convs and the norms: which one a name reads is not known
    # (here forward runs each BatchNorm before its conv)
    mixed = _setattr(conv='f"layer{2 * i + 1}"', bn='f"layer{2 * i}"')
    conv_call, bn_call = 'getattr(self, f"layer{2 * i + 1}")(x)', 'getattr(self, f"layer{2 * i}")(x)'
    mixed = mixed.replace(conv_call, "CONV_CALL").replace(bn_call, conv_call).replace("CONV_CALL", bn_call)
    assert found(mixed, "ADP007") == []
    # a name family no setattr gave, a key with two computed parts
    assert found(_setattr().replace('getattr(self, f"bn{i}")', 'getattr(self, f"norm{i}")'), "ADP007") == []
    assert found(_setattr(bn='f"bn{i}_{i}"'), "ADP007") == []


def test_module_lookup_of_a_mixed_family_is_no_pair():
    # the same families read through ``self._modules[...]`` instead of getattr: two families of
    # one kind each still pair; one family holding both the convs and the norms (forward runs
    # each BatchNorm before its conv) is of no one kind, so neither lookup is typed
    def lookups(code: str) -> str:
        return code.replace('getattr(self, f"', 'self._modules[f"').replace('}")(x)', '}"](x)')

    plain = lookups(_setattr())
    assert 'self._modules[f"bn{i}"](x)' in plain
    assert finding_at(plain, "ADP007", "# pair") is not None
    mixed = _setattr(conv='f"layer{2 * i + 1}"', bn='f"layer{2 * i}"')
    conv_call, bn_call = 'getattr(self, f"layer{2 * i + 1}")(x)', 'getattr(self, f"layer{2 * i}")(x)'
    mixed = lookups(mixed.replace(conv_call, "CONV_CALL").replace(bn_call, conv_call).replace("CONV_CALL", bn_call))
    assert 'self._modules[f"layer{2 * i}"](x)' in mixed
    assert found(mixed, "ADP007") == []
