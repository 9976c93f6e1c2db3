"""Research misses left after misses59, read by what the code computes (session 40, helper
misses60).  The fixtures are ours.

- A same-file Linear wrapper (``forward`` returns ``self.linear(x)``) feeding a same-file norm
  module whose construction setting picks ``nn.BatchNorm1d`` (``if self.norm_type ==
  "batch_norm": self.norm = nn.BatchNorm1d(c)`` in ``__init__``, the same test around
  ``self.norm(x)`` in forward, which also takes graph arguments that arm never reads): at the
  setting's default, or at the value the file passes, the pair is ADP008's, reported and not
  fixed (both layers sit behind their modules' forwards).  Near-misses: the setting picks
  LayerNorm at its default or where it is built; the module's forward reads its other inputs
  on that arm; the wrapper adds an activation after the Linear.
- A module running torch's BatchNorm1d over ``(N, C)`` rows put on the channel axis by
  ``x.unsqueeze(2).transpose(0, 2)`` and back (deltaconv's fast BatchNorm1d, in a sibling module
  whose class shadows torch's name): a 3-D input makes that 4-D, where BatchNorm1d raises, so the
  rank is not run rather than unreadable; the 2-D rank is the norm of the Linear's features.
  Read in the sibling module as in the file itself.  Near-miss: a move that normalises another
  axis (``transpose(0, 1)``).
"""

from __future__ import annotations

import textwrap

import torch
from adopter.engine import analyze
from adopter.structure.names import package_of
from corpus_forms import assert_reported_not_fixed, finding_at, found, line_of, rules
from torch import nn

NORM_WRAPPERS = textwrap.dedent("""\
    import torch


    class Dense(torch.nn.Module):
        def __init__(self, cin, cout, bias=False):
            super().__init__()
            self.linear = torch.nn.Linear(cin, cout, bias)

        def forward(self, x):
            return LINEAR_OUT


    class PickedNorm(torch.nn.Module):
        def __init__(self, channels, kind: str = "DEFAULT"):
            super().__init__()
            self.kind = kind
            if self.kind == "batch":
                self.norm = torch.nn.BatchNorm1d(channels)
            elif self.kind == "layer":
                self.norm = torch.nn.LayerNorm(channels)
            else:
                raise ValueError(kind)

        def forward(self, x, graph, depth):
            if self.kind == "batch":
                out = BATCH_ARM
            elif self.kind == "layer":
                out = self.norm(x)
            else:
                raise ValueError
            return out


    class DenseNorm(torch.nn.Module):
        def __init__(self, cin, cout, kind: str = "DEFAULT"):
            super().__init__()
            self.dense = Dense(cin, cout)
            self.norm = PickedNorm(cout, PASSED)

        def forward(self, x, graph, depth):
            h = self.dense(x)
            return self.norm(h, graph, depth)  # pair
""")


def norm_wrappers(default="batch", passed="kind", linear_out="self.linear(x)", batch_arm="self.norm(x)"):
    return (NORM_WRAPPERS.replace("DEFAULT", default).replace("PASSED", passed)
            .replace("LINEAR_OUT", linear_out).replace("BATCH_ARM", batch_arm))


def test_linear_wrapper_into_setting_picked_batchnorm_is_found_not_fixed():
    assert_reported_not_fixed(norm_wrappers(), "ADP008", "# pair", "`Dense`'s output is its `linear` Linear's")


def test_plain_linear_into_setting_picked_batchnorm_is_reported_for_the_norm_module():
    code = norm_wrappers().replace("self.dense = Dense(cin, cout)", "self.dense = torch.nn.Linear(cin, cout)")
    assert_reported_not_fixed(code, "ADP008", "# pair", "`PickedNorm` is a module of the package running its BatchNorm1d")


def test_value_passed_by_the_file_decides_over_the_default():
    """The construction passes ``"batch"`` itself; the parameter's default (``"layer"``) never
    reaches it."""
    assert finding_at(norm_wrappers(default="layer", passed='"batch"'), "ADP008", "# pair") is not None


def test_setting_picking_layernorm_is_no_pair():
    """At its default the module runs LayerNorm: no BatchNorm1d after the Linear."""
    assert found(norm_wrappers(default="layer"), "ADP008") == []
    assert found(norm_wrappers(passed='"layer"'), "ADP008") == []


def test_arm_reading_its_other_inputs_is_no_norm():
    """On the batch arm the module adds a graph term: not the norm of its input alone."""
    assert found(norm_wrappers(batch_arm="self.norm(x) + graph[depth]"), "ADP008") == []


def test_wrapper_with_activation_after_the_linear_is_no_pair():
    assert found(norm_wrappers(linear_out="torch.relu(self.linear(x))"), "ADP008") == []


def test_the_pair_folds_on_torch():
    """The premise on torch itself: in eval, BatchNorm1d after the wrapped Linear is one Linear
    with folded weights (torch.nn.utils.fusion), as for the plain pair."""
    torch.manual_seed(0)
    lin, bn = nn.Linear(6, 4, bias=False).double(), nn.BatchNorm1d(4).double()
    with torch.no_grad():
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
    lin.eval()
    bn.eval()
    fused = torch.nn.utils.fusion.fuse_linear_bn_eval(lin, bn)
    x = torch.randn(5, 6, dtype=torch.float64)
    torch.testing.assert_close(fused(x), bn(lin(x)), rtol=1e-12, atol=1e-12)


def test_anchor_is_the_norm_call():
    code = norm_wrappers()
    finding = finding_at(code, "ADP008", "# pair")
    assert finding.line <= line_of(code, "# pair") <= finding.end_line


FAST_NORM = textwrap.dedent("""\
    import torch


    class BatchNorm1d(torch.nn.Module):
        def __init__(self, channels, eps=1e-5):
            super().__init__()
            self.bn = torch.nn.BatchNorm1d(channels, eps)

        def forward(self, x):
            x = x.unsqueeze(2).transpose(0, 2)
            x = self.bn(x)
            return x.transpose(0, 2).squeeze(2).contiguous()
""")

MLP = textwrap.dedent("""\
    from torch.nn import Sequential as Seq, Linear as Lin, BatchNorm1d, LeakyReLU

    IMPORT


    def mlp(channels):
        return Seq(*[
            Seq(Lin(channels[i - 1], channels[i], bias=False), BatchNorm1d(channels[i]), LeakyReLU())  # pair
            for i in range(1, len(channels))
        ])
""")


def _fast_norm(move="transpose(0, 2)"):
    return FAST_NORM.replace("transpose(0, 2)", move)


def test_rows_moved_to_the_channel_axis_in_the_same_file_are_batchnorm1d():
    code = _fast_norm() + "\n\n" + MLP.replace("IMPORT", "")
    code = code.replace("from torch.nn import Sequential as Seq, Linear as Lin, BatchNorm1d, LeakyReLU",
                        "from torch.nn import Sequential as Seq, Linear as Lin, LeakyReLU")
    assert finding_at(code, "ADP008", "# pair") is not None


def test_moved_rows_norm_equals_batchnorm1d_on_torch():
    """The premise: the moved form computes BatchNorm1d over the rows, in training and in eval."""
    torch.manual_seed(0)
    bn = nn.BatchNorm1d(4).double()
    x = torch.randn(7, 4, dtype=torch.float64)
    moved = bn(x.unsqueeze(2).transpose(0, 2)).transpose(0, 2).squeeze(2)
    bn2 = nn.BatchNorm1d(4).double()
    torch.testing.assert_close(moved, bn2(x), rtol=1e-12, atol=1e-12)
    bn.eval(), bn2.eval()
    torch.testing.assert_close(bn(x.unsqueeze(2).transpose(0, 2)).transpose(0, 2).squeeze(2), bn2(x))


def _sibling_package(tmp_path, norm: str):
    root = tmp_path / "meshy" / "nn"
    root.mkdir(parents=True)
    (tmp_path / "meshy" / "__init__.py").write_text("")
    (root / "__init__.py").write_text("")
    (root / "nonlin.py").write_text(norm)
    code = MLP.replace("IMPORT", "from .nonlin import BatchNorm1d")
    path = root / "mlp.py"
    path.write_text(code)
    return path, code


def _pair_found(path, code) -> bool:
    line = line_of(code, "# pair")
    return any(f.rule == "ADP008" and f.line <= line <= f.end_line
               for f in analyze(code, str(path), rules("ADP008"), package=package_of(str(path))).findings)


def test_sibling_module_rows_norm_is_read_as_the_file_reads_it(tmp_path):
    assert _pair_found(*_sibling_package(tmp_path, _fast_norm()))


def test_sibling_module_norm_of_another_axis_is_no_pair(tmp_path):
    """``transpose(0, 1)`` puts the unit axis on the channel position: not the rows' features."""
    assert not _pair_found(*_sibling_package(tmp_path, _fast_norm("transpose(0, 1)")))

