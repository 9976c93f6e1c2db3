"""Forms found missing while checking the blind batch cnn29 (torchvision-style CNNs of
fourteen packages new to the corpus: MobileOne and MobileNet blocks, a YAMNet audio CNN, 3-D
video ResNets, a CRNN OCR backbone, pose ResNets, BiSeNet face parsing, darknet layer
wrappers).  The fixtures are ours.

- An ``nn.ModuleList([conv, bn, act])`` display whose members forward calls by literal index
  (``x = self.layers[0](x)``, ``x = self.layers[1](x)``): the member at that position, as a
  Sequential's member is.  Reported, not fixed: the members are no Sequential's.
Near-misses: the BatchNorm first in the list, an activation between (called out of list
order), a member moved by ``insert`` or replaced by item assignment, the attribute bound again,
a run-time index, and an ``nn.Sequential`` called by index (unchanged: any member).
"""

from __future__ import annotations

import textwrap

from corpus_forms import finding_at, found, rules

from adopter.synth import fix_text

MODULE_LIST = textwrap.dedent("""\
    import torch
    from torch import nn


    class ConvNorm(nn.Module):
        def __init__(self, cin, cout, k=3, conv=nn.Conv2d, momentum=0.1):
            super().__init__()
            self.layers = CONTAINER([
                conv(cin, cout, k, 1, k // 2, bias=False),
                nn.BatchNorm2d(cout, momentum=momentum),
                nn.ReLU(inplace=True),
            ])
            AFTER

        def forward(self, x):
            x = self.layers[FIRST](x)
            x = self.layers[SECOND](x)  # pair
            x = self.layers[THIRD](x)
            return x
""")


def _code(container="nn.ModuleList", after="pass", first="0", second="1", third="2"):
    return (MODULE_LIST.replace("CONTAINER", container).replace("AFTER", after).replace("FIRST", first)
            .replace("SECOND", second).replace("THIRD", third))


def test_module_list_members_called_by_index():
    code = _code()
    assert finding_at(code, "ADP007", "# pair") is not None
    # reported, not fixed: the members are picked by index from a ModuleList
    assert fix_text(code, "model.py", rules("ADP007")).text == code
    # members appended after the display keep every position
    appended = _code(after="self.layers.append(nn.Dropout(0.1))")
    assert finding_at(appended, "ADP007", "# pair") is not None
    # a tuple display and a plain Conv2d
    tupled = _code().replace("self.layers = nn.ModuleList([", "self.layers = nn.ModuleList((").replace(
        "        ])\n", "        ))\n", 1).replace("conv(cin, cout", "nn.Conv2d(cin, cout")
    assert finding_at(tupled, "ADP007", "# pair") is not None


def test_module_list_by_index_near_misses():
    # the BatchNorm first: the list called in reverse order is BN -> conv
    assert found(_code(first="1", second="0"), "ADP007") == []
    # an activation between: conv, then the ReLU, then the BatchNorm
    assert found(_code(second="2", third="1"), "ADP007") == []
    # a member inserted in front: position 0 is no longer the conv
    assert found(_code(after="self.layers.insert(0, nn.Identity())"), "ADP007") == []
    # the BatchNorm replaced by item assignment
    assert found(_code(after="self.layers[1] = nn.Identity()"), "ADP007") == []
    # the attribute bound again (another list)
    rebound = _code(after="self.layers = nn.ModuleList([nn.ReLU(), nn.Identity(), nn.ReLU()])")
    assert found(rebound, "ADP007") == []


def test_module_list_run_time_index_and_indexed_sequential_unchanged():
    # a run-time index: any member (mixed kinds, no pair), as before
    code = _code().replace("x = self.layers[0](x)", "i = int(x.shape[0] > 0) - 1\n        x = self.layers[i + 1](x)")
    assert found(code, "ADP007") == []
    # an nn.Sequential called member by member: forward's calls are not read by position (the
    # Sequential's own pair is its construction's, reported there as before)
    indexed = _code(container="nn.Sequential", after="pass").replace("nn.Sequential([", "nn.Sequential(*[")
    assert finding_at(indexed, "ADP007", "# pair") is None
