"""Forms found while checking the blind batch cnn34 (CNNs other than classification backbones:
a crowd counter, medical U-Nets and HoVer-Net, point-cloud nets (DGCNN, PointConv, CurveNet),
audio CNNs (PANNs-style, piano transcription, DeepFilterNet), an OCR backbone and neck, seismic
denoisers).  The fixtures are ours.

- Optimizers built by the lambdas of a table keyed by a configuration string (DeepFilterNet's
  ``supported = {"adam": lambda p: optim.Adam(p, ...), "sgd": lambda p: optim.SGD(p, ...)}``,
  then ``supported[name](params)``) were not read: the flow builder skipped every lambda
  nested in an expression, while a lambda bound to a name had its body read.  A lambda that is
  an element of a dict, list or tuple display is a table entry, run when the entry is called;
  its calls are now read where the table is written, as a bound lambda's are.
Near-misses: a table of RMSprop factories, entries that already choose ``fused=``.

- A Linear's output put on BatchNorm1d's channel axis and left there (PointConv's set
  abstraction: ``x = self.linear(x); x = self.bn_linear(x.permute(0, 2, 1)); x = F.relu(x)``):
  the norm of the Linear's output features, as with SuperGlue's transpose there and back
  (hf29), but the normalised features stay channel-first.  Read for ``transpose(1, 2)``,
  ``transpose(-1, -2)`` and ``permute(0, 2, 1)`` (the graph reads a permutation swapping the
  last two axes as that transpose); the rewrite puts the kernel's rows back on the channel
  axis (``linear_bn(x.flatten(0, 1), ...).unflatten(0, x.shape[:2]).transpose(-1, -2)``).  A
  transpose of the BatchNorm's output along other axes (hf29's near-miss) is then a step after
  the pair, which the rewrite leaves in place: those two fixtures are sites now (checked below).
Near-misses: the batch and sequence axes swapped (the norm's channels are the positions), an
activation before the move, the moved value read again.

- A convolution into a same-file module whose forward puts its one input through a BatchNorm
  first (HoVer-Net's ``_BatchNormRelu``: ``return self.relu(self.batch_norm(inputs))``, called as
  ``out = self.bnrelu1(self.conv1(x))``): the conv's output runs into the BatchNorm, as into a
  BatchNorm subclass that adds an activation.  Such a module is typed as its BatchNorm (reported,
  not fixed: the kernel would take over the member, which it does not reach through the
  module's own forward).
Near-misses: the module reads its input again (a residual), its first step is the activation
(BatchNorm after ReLU), its norm is an InstanceNorm2d, its BatchNorm is an ``nn.Identity`` under
a flag, a Conv1d before it.
"""

from __future__ import annotations

import textwrap

from corpus_forms import finding_at, found, rules
from test_hf29_forms import linear_bn as superglue_linear_bn

from adopter.engine import analyze
from adopter.synth import fix_text

# ---------- ADP012: optimizers built by the entries of a table of lambdas

TABLE = textwrap.dedent("""\
    from torch import optim


    def load_opt(model, name, lr, decay):
        params = model.parameters()
        supported = OPEN
            "adam": lambda p: optim.Adam(p, lr=lr, weight_decay=decay, amsgrad=True)KW,
            "adamw": lambda p: optim.AdamW(p, lr=lr, weight_decay=decay)KW,
            "sgd": lambda p: optim.SGD(p, lr=lr, momentum=0.9, nesterov=True)KW,
        CLOSE
        return supported[name](params)
""")


def _table(kw: str = "", brackets: str = "{}") -> str:
    code = TABLE.replace("KW", kw).replace("OPEN", brackets[0]).replace("CLOSE", brackets[1])
    if brackets != "{}":
        code = code.replace('"adam": ', "").replace('"adamw": ', "").replace('"sgd": ', "")
        code = code.replace("supported[name]", "supported[0]")
    return code


def test_optimizers_in_a_table_of_lambdas_are_found():
    for brackets in ("{}", "[]", "()"):
        code = _table(brackets=brackets)
        for needle in ("optim.Adam(", "optim.AdamW(", "optim.SGD("):
            assert finding_at(code, "ADP012", needle) is not None, (brackets, needle)
        assert len(found(code, "ADP012")) == 3, brackets


def test_the_table_entries_are_fixed_in_place():
    code = _table()
    fixed = fix_text(code, "train.py", rules("ADP012")).text
    assert fixed.count("fused=True") == 3
    assert "optim.Adam(p, lr=lr, weight_decay=decay, amsgrad=True, fused=True)" in fixed
    assert "supported[name](params)" in fixed
    compile(fixed, "train.py", "exec")


def test_table_near_misses():
    # entries that already choose their implementation
    chosen = _table().replace("amsgrad=True)", "amsgrad=True, foreach=False)").replace(
        "decay)", "decay, fused=True)").replace("nesterov=True)", "nesterov=True, fused=False)")
    assert found(chosen, "ADP012") == []
    # other optimizers
    other = _table().replace("optim.Adam(", "optim.RMSprop(").replace("optim.AdamW(", "optim.Adagrad(").replace(
        "optim.SGD(", "optim.LBFGS(")
    assert found(other, "ADP012") == []


# ---------- ADP008: a Linear's features normalised on the channel axis and left there

POINTCONV = textwrap.dedent("""\
    import torch
    import torch.nn as nn
    import torch.nn.functional as F


    class SetAbstraction(nn.Module):
        def __init__(self, cin=6, cout=5):
            super().__init__()
            self.linear = nn.Linear(cin, cout)
            self.bn_linear = nn.BatchNorm1d(cout)

        def forward(self, new_points):
            new_points = self.linear(new_points)
            new_points = self.bn_linear(MOVE)
            new_points = F.relu(new_points)
            return new_points
""")

MOVES = ("new_points.permute(0, 2, 1)", "new_points.transpose(1, 2)", "new_points.transpose(-1, -2)")


def _pointconv(move: str) -> str:
    return POINTCONV.replace("MOVE", move)


def _assert_same_in_eval_and_training(code: str, fixed: str, cls: str, shape: tuple) -> None:
    import torch

    original, patched = {}, {}
    exec(compile(code, "orig.py", "exec"), original)  # noqa: S102 (our own fixture)
    exec(compile(fixed, "fixed.py", "exec"), patched)  # noqa: S102
    torch.manual_seed(0)
    a, b = original[cls]().double(), patched[cls]().double()
    norm = next(m for m in a.modules() if isinstance(m, torch.nn.BatchNorm1d))
    with torch.no_grad():
        norm.running_mean.uniform_(-1, 1)
        norm.running_var.uniform_(0.5, 2)
    b.load_state_dict(a.state_dict(), strict=True)
    x = torch.randn(*shape, dtype=torch.float64)
    for train in (False, True):
        a.train(train)
        b.train(train)
        torch.testing.assert_close(b(x), a(x), rtol=0, atol=1e-12)


def test_linear_then_batchnorm1d_on_the_moved_features_is_found_and_folds():
    for move in MOVES:
        code = _pointconv(move)
        assert finding_at(code, "ADP008", "self.bn_linear(") is not None, move
        fixed = fix_text(code, "model.py", rules("ADP008")).text
        assert "linear_bn(" in fixed and "self.bn_linear(new_points" not in fixed, move
        _assert_same_in_eval_and_training(code, fixed, "SetAbstraction", (3, 7, 6))


def test_one_statement_form():
    code = POINTCONV.replace("        new_points = self.linear(new_points)\n", "").replace(
        "MOVE", "self.linear(new_points).permute(0, 2, 1)")
    assert finding_at(code, "ADP008", "self.bn_linear(") is not None
    fixed = fix_text(code, "model.py", rules("ADP008")).text
    _assert_same_in_eval_and_training(code, fixed, "SetAbstraction", (2, 4, 6))


def test_a_move_after_the_norm_is_a_step_after_the_pair():
    # hf29's transposes that do not bring the features back: the norm still normalises the
    # Linear's features; the rewrite keeps the later transpose as it is
    for args in (("-1", "-2", "0", "1"), ("1", "2", "0", "2")):
        code = superglue_linear_bn(*args)
        assert finding_at(code, "ADP008", "self.batch_norm(hidden_state)") is not None, args
        fixed = fix_text(code, "model.py", rules("ADP008")).text
        assert "linear_bn(" in fixed, args
        _assert_same_in_eval_and_training(code, fixed, "MLP", (3, 7, 6))


def test_moved_features_near_misses():
    # the batch and position axes swapped: the norm's channels are the positions
    assert found(_pointconv("new_points.transpose(0, 1)"), "ADP008") == []
    # an activation before the move
    assert found(_pointconv("F.relu(new_points).permute(0, 2, 1)"), "ADP008") == []
    # the moved value read again
    again = _pointconv("moved").replace(
        "        new_points = self.bn_linear(moved)",
        "        moved = new_points.permute(0, 2, 1)\n        new_points = self.bn_linear(moved) + moved")
    assert found(again, "ADP008") == []


# ---------- ADP007: a convolution into a module that normalises its input first

HOVER = textwrap.dedent("""\
    import torch
    import torch.nn as nn


    class BatchNormRelu(nn.Module):
        def __init__(self, n_channels):
            super().__init__()
            self.batch_norm = NORM
            self.relu = nn.ReLU()

        def forward(self, inputs):
            return BODY


    class ResidualUnit(nn.Module):
        def __init__(self, cin, cout):
            super().__init__()
            self.conv1 = nn.CONV(cin, cout // 4, kernel_size=1, bias=False)
            self.bnrelu1 = BatchNormRelu(cout // 4)
            self.conv2 = nn.CONV(cout // 4, cout, kernel_size=3, padding=1, bias=False)

        def forward(self, inputs):
            out = self.conv1(inputs)
            out = self.bnrelu1(out)
            out = self.conv2(out)
            return out
""")


def _hover(norm="nn.BatchNorm2d(n_channels)", body="self.relu(self.batch_norm(inputs))", conv="Conv2d") -> str:
    return HOVER.replace("NORM", norm).replace("BODY", body).replace("CONV", conv)


def test_conv_into_a_batchnorm_relu_module_is_reported_not_fixed():
    code = _hover()
    finding = finding_at(code, "ADP007", "out = self.bnrelu1(out)")
    assert finding is not None
    assert fix_text(code, "model.py", rules("ADP007")).text == code
    # the step written over two statements, and with the norm's output named
    two = _hover(body="self.relu(out)").replace(
        "        return self.relu(out)", "        out = self.batch_norm(inputs)\n        return self.relu(out)")
    assert finding_at(two, "ADP007", "out = self.bnrelu1(out)") is not None
    # a BatchNorm1d module after a Linear: ADP008's pair, the same reading
    linear = _hover(norm="nn.BatchNorm1d(n_channels)").replace(
        "nn.Conv2d(cin, cout // 4, kernel_size=1, bias=False)", "nn.Linear(cin, cout // 4)")
    assert finding_at(linear, "ADP008", "out = self.bnrelu1(out)") is not None


def test_batchnorm_first_module_near_misses():
    # the input read again (a residual around the norm)
    assert found(_hover(body="self.relu(self.batch_norm(inputs)) + inputs"), "ADP007") == []
    # the activation first, then the norm
    assert found(_hover(body="self.batch_norm(self.relu(inputs))"), "ADP007") == []
    # another norm
    assert found(_hover(norm="nn.InstanceNorm2d(n_channels)"), "ADP007") == []
    # a BatchNorm only under a flag (an nn.Identity otherwise)
    flagged = _hover(norm="nn.BatchNorm2d(n_channels) if n_channels > 8 else nn.Identity()")
    assert found(flagged, "ADP007") == []
    # a Conv1d before it (ADP007 folds Conv2d -> BatchNorm2d)
    assert found(_hover(conv="Conv1d"), "ADP007") == []


def test_batchnorm_first_module_keeps_other_rules_quiet():
    # typing the wrapper as its BatchNorm adds no finding of another rule to the fixture
    others = [f.rule for f in analyze(_hover(), "model.py", rules("ADP005", "ADP006", "ADP008", "ADP010")).findings]
    assert others == []
