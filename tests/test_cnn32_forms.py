"""Forms found while checking the blind batch cnn32 (torchvision-style CNNs: torch-encoding's
ResNet/ResNeSt and aligned-Xception backbones, a pose-estimation MobileNet's conv factories, a
U-Net's string-chosen norm, a YOLO block with area attention, MTCNN face-detection nets, 3-D
ResNets).  The fixtures are ours.

- Three Linear heads of one feature vector returned together by a module's ``forward`` with one
  of them turned into probabilities first (MTCNN's ONet: ``a = self.cls(x); b = self.box(x);
  c = self.landmarks(x); a = F.softmax(a, dim=1); return c, b, a``) were reported as a fused
  QKV projection (ADP009): three projections of one input returned together count as a
  projection helper handing q, k and v to its caller.  A softmax applied to one projection
  alone makes it class probabilities, never a query, key or value an attention's caller would
  compare: no evidence of an attention, no finding.
Near-misses (still reported): the helper returning q, k, v as they are (also reshaped into
heads), and the same three heads meeting in a product inside the function (the scores'
softmax comes after the projections met).
"""

from __future__ import annotations

import textwrap

from corpus_forms import found

HEADS = textwrap.dedent("""\
    import torch.nn as nn
    import torch.nn.functional as F


    class FaceHeads(nn.Module):
        def __init__(self, dim):
            super().__init__()
            self.cls = nn.Linear(dim, 2)
            self.box = nn.Linear(dim, 4)
            self.marks = nn.Linear(dim, 10)

        def forward(self, x):
            a = self.cls(x)
            b = self.box(x)
            c = self.marks(x)
            NORMALIZE
            return c, b, a
""")


def _heads(normalize: str) -> str:
    return HEADS.replace("NORMALIZE", normalize)


def test_heads_returned_with_one_softmaxed_are_no_qkv():
    assert found(_heads("a = F.softmax(a, dim=1)"), "ADP009") == []
    assert found(_heads("a = a.softmax(-1)"), "ADP009") == []
    assert found(_heads("a = torch.softmax(a, dim=-1)").replace(
        "import torch.nn as nn", "import torch\nimport torch.nn as nn"), "ADP009") == []


PROJECT = textwrap.dedent("""\
    import torch.nn as nn


    class Project(nn.Module):
        def __init__(self, dim, heads):
            super().__init__()
            self.heads = heads
            self.q = nn.Linear(dim, dim)
            self.k = nn.Linear(dim, dim)
            self.v = nn.Linear(dim, dim)

        def forward(self, x):
            b, n, _ = x.shape
            q = self.q(x)
            k = self.k(x)
            v = self.v(x)
            SHAPE
            return q, k, v
""")


def test_projection_helper_returning_qkv_still_reported():
    # near-miss: the projections handed on as they are, or reshaped into heads
    assert len(found(PROJECT.replace("SHAPE", "pass"), "ADP009")) == 1
    shaped = PROJECT.replace("SHAPE", "q, k, v = (t.view(b, n, self.heads, -1).transpose(1, 2) for t in (q, k, v))")
    assert len(found(shaped, "ADP009")) == 1


def test_heads_meeting_in_a_product_still_reported():
    # near-miss: a softmax after two projections met (the scores) is attention, reported
    code = _heads("s = (a @ b.transpose(-1, -2)).softmax(-1)\n        c = s @ c")
    assert len(found(code, "ADP009")) == 1
