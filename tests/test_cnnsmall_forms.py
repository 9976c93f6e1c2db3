"""Two conv-BatchNorm forms cnn32 left (torch-encoding's ACF attention head and a same-file
synchronised BatchNorm passed as a ``norm_layer`` default).  The fixtures are ours.

- One conv whose output goes to the BatchNorm on either branch of an ``if``, one branch handing
  the norm's output to ``torch.cat((self.norm(out), residual), 1)``: the tuple argument was read
  as an opaque value naming ``out`` (the name inside the call), so the conv output had another
  use on that branch and only the other branch's pair was found.  A tuple or list holding a call
  now reads its elements' values wherever it is (as a returned or assigned one already did), and
  ADP007 names its anchor (the BatchNorm call, as the GUIDE does): one finding per norm call,
  two matches that end at one norm (two convs on either branch) still one.  The fix folds both
  branches.
Near-misses: the conv output also concatenated itself (another use), an activation between on
one branch (that branch only is no pair).

- A same-file ``_BatchNorm`` (or ``nn.BatchNorm2d``) subclass passed as the default of a
  ``norm_layer`` parameter was not typed as the BatchNorm it computes, although it was when
  built by name: the parameter path typed only ``nn.Module``-only classes.  Any same-file class
  now goes through the same typing (``LayerTyper._kind_of``).
Near-misses: a same-file class that is not a BatchNorm (a GroupNorm subclass, a module of its
own), a ``_BatchNorm`` subclass whose forward computes something else in eval.
"""

from __future__ import annotations

import textwrap

from corpus_forms import NORM_SUBCLASSES, found, rules

from adopter.synth import fix_text

HEAD = textwrap.dedent("""\
    import torch
    from torch import nn


    class Head(nn.Module):
        def __init__(self, c, concat=False):
            super().__init__()
            self.concat = concat
            self.conv = nn.Conv2d(c, c, 1, bias=False)
            self.norm = nn.BatchNorm2d(c)

        def forward(self, x):
            residual = x
            out = self.conv(x)
            if self.concat:
                out = CONCAT  # concat branch
            else:
                out = OTHER  # default branch
            return out
""")
CONCAT = "torch.cat((self.norm(out), residual), 1)"
OTHER = "self.norm(out) + residual"


def _head(concat=CONCAT, other=OTHER):
    return HEAD.replace("CONCAT", concat).replace("OTHER", other)


def _anchors(code):
    """Per finding, the comments of the labelled lines (the two branches) its span covers."""
    lines = code.splitlines()
    marks = {n: text.split("# ")[-1] for n, text in enumerate(lines, 1) if "branch" in text}
    return sorted(tuple(m for n, m in marks.items() if f.line <= n <= f.end_line) for f in found(code, "ADP007"))


def test_norm_on_both_branches_one_finding_each():
    code = _head()
    findings = found(code, "ADP007")
    assert len(findings) == 2
    # one reaches the concat branch's norm, the other the default branch's
    assert _anchors(code) == [("concat branch",), ("concat branch", "default branch")]


def test_norm_in_a_list_argument_also_read():
    assert len(found(_head(concat="torch.cat([self.norm(out), residual], 1)"), "ADP007")) == 2


def test_norm_on_both_branches_fix_folds_each():
    import torch

    code = _head()
    fixed = fix_text(code, "model.py", rules("ADP007")).text
    assert fixed.count("conv_bn(x, self.conv, self.norm)") == 2
    assert "self.conv(x)" not in fixed
    scopes = []
    for text, name in ((code, "orig.py"), (fixed, "fixed.py")):
        scope: dict = {}
        exec(compile(text, name, "exec"), scope)  # noqa: S102 (our own fixture, and its fix)
        scopes.append(scope)
    for concat in (False, True):
        torch.manual_seed(0)
        a = scopes[0]["Head"](4, concat).double()
        b = scopes[1]["Head"](4, concat).double()
        with torch.no_grad():
            a.norm.running_mean.uniform_(-1, 1)
            a.norm.running_var.uniform_(0.5, 2)
        b.load_state_dict(a.state_dict(), strict=True)
        a.eval()
        b.eval()
        x = torch.randn(2, 4, 8, 8, dtype=torch.float64)
        with torch.no_grad():
            torch.testing.assert_close(b(x), a(x), rtol=0, atol=1e-10)


def test_norm_on_both_branches_near_misses():
    # the conv output concatenated beside the norm's: another use on that branch, whose pair
    # is gone; the default branch's stays
    code = _head(concat="torch.cat((self.norm(out), out), 1)")
    assert _anchors(code) == [("concat branch", "default branch")]
    # an activation between on the concat branch: that branch is no pair
    code = _head(concat="torch.cat((self.norm(torch.relu(out)), residual), 1)")
    assert _anchors(code) == [("concat branch", "default branch")]
    # two convs, one per branch, before one norm: still one finding
    two = textwrap.dedent("""\
        import torch
        from torch import nn


        class Stem(nn.Module):
            def __init__(self, c, wide=False):
                super().__init__()
                self.wide = wide
                self.a = nn.Conv2d(c, c, 3, padding=1, bias=False)
                self.b = nn.Conv2d(c, c, 1, bias=False)
                self.norm = nn.BatchNorm2d(c)

            def forward(self, x):
                h = self.a(x) if self.wide else self.b(x)
                return self.norm(h)
    """)
    assert len(found(two, "ADP007")) == 1




def _norms(norm, forward="pass"):
    return NORM_SUBCLASSES.replace("NORM_OF", "norm_layer").replace("NORM", norm).replace("FORWARD", forward)


def test_same_file_norm_layer_default_near_misses():
    # a same-file class that is no BatchNorm: a GroupNorm subclass, a module of its own
    assert found(_norms("ChannelNorm"), "ADP007") == []
    assert found(_norms("OwnNorm"), "ADP007") == []
    # a _BatchNorm subclass whose forward computes something else in eval
    forward = ("def forward(self, x):\n"
               "            if not self.training:\n"
               "                return super().forward(x) * 2\n"
               "            return super().forward(x)")
    assert found(_norms("SyncBN", forward), "ADP007") == []
    forward = "def forward(self, x):\n            return x - x.mean()"
    assert found(_norms("SyncBN", forward), "ADP007") == []
