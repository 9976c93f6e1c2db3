"""A Linear called on either branch of an ``if`` before one BatchNorm1d is one ADP008 place
(research93's blind batch: sslsv's ResNet34 speaker encoder applies ``self.fc`` to the pooled
vector on one branch and to the transposed frames on the other, then ``self.last_bn``).  The
GUIDE anchors ADP008 at the BatchNorm1d call, as ADP007, which already names its anchor; ADP008
named none, so two matches that start on two branches' lines were two findings at one norm (the
second charged as a false positive).  ADP008 now names ``$y`` (the norm's output, or the one
step after it in the reshaping forms) as its anchor.  The fix still folds both branches.
The other side of the same anchor: one Linear whose output goes to the norm on either branch
(two norm calls) is two places, as for ADP007; keyed by the first step, main reported them as
one finding.  Near-miss: an activation between on one branch (that branch is no pair).  The
fixtures are ours.
"""

from __future__ import annotations

import textwrap

from corpus_forms import found, rules

from adopter.synth import fix_text

HEAD = textwrap.dedent("""\
    import torch
    from torch import nn


    class Head(nn.Module):
        def __init__(self, c, d, pooled=True):
            super().__init__()
            self.pooled = pooled
            self.fc = nn.Linear(c, d)
            self.bn = nn.BatchNorm1d(d)

        def forward(self, z):
            if self.pooled:
                z = POOLED  # pooled branch
            else:
                z = FRAME  # frame branch
            return self.bn(z)  # norm
""")
POOLED = "self.fc(z.mean(dim=1))"
FRAME = "self.fc(z[:, 0])"


def _head(pooled=POOLED, frame=FRAME):
    return HEAD.replace("POOLED", pooled).replace("FRAME", frame)


def _spans(code):
    """Per finding, the comments of the marked lines its span covers."""
    lines = code.splitlines()
    marks = {n: text.split("# ")[-1] for n, text in enumerate(lines, 1) if "# " in text}
    return sorted(tuple(m for n, m in marks.items() if f.line <= n <= f.end_line) for f in found(code, "ADP008"))


def test_linear_on_either_branch_before_one_norm_is_one_place():
    code = _head()
    assert _spans(code) == [("pooled branch", "frame branch", "norm")]


def test_linear_on_either_branch_fix_folds_both():
    import torch

    code = _head()
    fixed = fix_text(code, "model.py", rules("ADP008")).text
    assert fixed.count("linear_bn(") == 2
    assert "self.bn(z)" not in fixed
    scopes = []
    for text, name in ((code, "orig.py"), (fixed, "fixed.py")):
        scope: dict = {}
        exec(compile(text, name, "exec"), scope)  # noqa: S102 (our own fixture, and its fix)
        scopes.append(scope)
    for pooled in (True, False):
        torch.manual_seed(0)
        a = scopes[0]["Head"](6, 4, pooled).double()
        b = scopes[1]["Head"](6, 4, pooled).double()
        with torch.no_grad():
            a.bn.running_mean.uniform_(-1, 1)
            a.bn.running_var.uniform_(0.5, 2)
        b.load_state_dict(a.state_dict(), strict=True)
        a.eval()
        b.eval()
        x = torch.randn(3, 5, 6, dtype=torch.float64)
        with torch.no_grad():
            # float64, six-term dot products: folding reorders a few roundings only
            torch.testing.assert_close(b(x), a(x), rtol=0, atol=1e-12)


def test_norm_on_either_branch_is_two_places():
    code = textwrap.dedent("""\
        import torch
        from torch import nn


        class Head(nn.Module):
            def __init__(self, c, d, pooled=True):
                super().__init__()
                self.pooled = pooled
                self.fc = nn.Linear(c, d)
                self.bn = nn.BatchNorm1d(d)

            def forward(self, z):
                h = self.fc(z)  # linear
                if self.pooled:
                    return self.bn(h)  # first norm
                return self.bn(h) * 2  # second norm
    """)
    assert _spans(code) == [("linear", "first norm"), ("linear", "first norm", "second norm")]


def test_activation_between_on_one_branch_leaves_the_other():
    code = _head(frame="torch.relu(self.fc(z[:, 0]))")
    # the frame branch's Linear meets the norm through a ReLU: no pair there
    assert _spans(code) == [("pooled branch", "frame branch", "norm")]
    assert len(found(code, "ADP008")) == 1
    code = _head(pooled="torch.relu(self.fc(z.mean(dim=1)))", frame="torch.relu(self.fc(z[:, 0]))")
    assert found(code, "ADP008") == []
