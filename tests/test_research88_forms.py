"""Forms found while checking the blind batch research88 (self-supervised and representation
learning code: fastai-based SSL libraries, SSL projection heads, trainers).  The fixtures are
ours.

- ``nn`` supplied by a star import (``from fastai.vision.all import *``, ``from .layers import
  *``) and bound nowhere in the file: the file's classes subclass ``nn.Module``, so ``nn`` is
  torch's ``torch.nn`` and its layers are typed (CLIP's ResNet conv-BN pairs, a DINO head's
  Linear -> GELU were read as unknown calls).
- A base class whose loop unpacks each block tuple at the loop head (``for in_dim, out_dim,
  norm, act in blocks:``), as ``in_dim, ... = block`` in the body already was.
- A trainer's ``train`` method whose name another method only mentions in prose or as another
  object's namesake (``self.model.train(True)``, ``"Loss/train"``, a docstring) and whose
  class has a longer ``self.train_one_epoch``: it was taken for an own call and inlined
  nowhere, so the optimizers it builds were read by no rule.
Near-misses: a star-import file that binds ``nn`` itself; a LayerNorm block; a ``train`` the
class does call (reported once); an optimizer that already chooses ``fused=``.
"""

from __future__ import annotations

import sys

from corpus_forms import assert_bn_fold_matches, finding_at, found, rules

from adopter.synth import fix_text

STAR_STEM = """\
from mylayers import *
import torch


class Stem(nn.Module):
    def __init__(self, c=8):
        super().__init__()
        self.conv = nn.Conv2d(3, c, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(c)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.relu(self.bn(self.conv(x)))


class Head(nn.Module):
    def __init__(self, dim=16, hidden=32):
        super().__init__()
        layers = [nn.Linear(dim, hidden)]
        layers.append(nn.GELU())
        layers.append(nn.Linear(hidden, dim))
        self.mlp = nn.Sequential(*layers)

    def forward(self, x):
        return self.mlp(x)
"""


def test_star_imported_nn_is_torch_nn_when_the_classes_subclass_its_module(tmp_path, monkeypatch):
    assert finding_at(STAR_STEM, "ADP007", "self.relu(self.bn(") is not None
    assert finding_at(STAR_STEM, "ADP006", "layers.append(nn.GELU())") is not None
    # the fix computes what the original does (the star import supplies torch.nn at run time)
    (tmp_path / "mylayers.py").write_text("import torch.nn as nn\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    fixed = fix_text(STAR_STEM, "model.py", rules("ADP007")).text
    assert "conv_bn(x, self.conv, self.bn)" in fixed
    assert_bn_fold_matches(STAR_STEM, fixed, "Stem", (), (2, 3, 6, 6))
    sys.modules.pop("mylayers", None)


def test_star_imported_nn_of_a_file_without_torch_is_not_torch_nn():
    # (session 39, review42) flax, MXNet and others have an ``nn.Module`` too: with no torch in
    # the file (neither imported nor read), the star-imported ``nn`` is left unknown
    code = STAR_STEM.replace("import torch\n", "")
    assert "torch" not in code
    assert found(code, "ADP007") == []
    assert found(code, "ADP006") == []
    # torch read through the star import (not imported by the file) involves torch too
    reads = code.replace("return self.mlp(x)", "return torch.tanh(self.mlp(x))")
    assert finding_at(reads, "ADP006", "layers.append(nn.GELU())") is not None


def test_star_import_file_that_binds_the_name_itself_keeps_its_binding():
    # ``nn`` is the file's own object here: nothing is typed through it
    code = STAR_STEM.replace("from mylayers import *\n", "from mylayers import *\nnn = make_layers()\n")
    assert found(code, "ADP007") == []
    assert found(code, "ADP006") == []
    # and without any class on its ``Module`` the star-imported name is not read as torch.nn
    plain = STAR_STEM.replace("(nn.Module)", "(Base)")
    assert found(plain, "ADP007") == []


BLOCK_LOOP = """\
import torch.nn as nn


class ProjectionHead(nn.Module):
    def __init__(self, blocks):
        super().__init__()
        layers = []
        for in_dim, out_dim, norm, act in blocks:
            layers.append(nn.Linear(in_dim, out_dim, bias=not bool(norm)))
            if norm:
                layers.append(norm)
            if act:
                layers.append(act)
        self.layers = nn.Sequential(*layers)

    def forward(self, x):
        return self.layers(x)


class TwoLayerHead(ProjectionHead):
    def __init__(self, dim=64, hidden=128, out=32):
        super(TwoLayerHead, self).__init__(
            [
                (dim, hidden, nn.BatchNorm1d(hidden), nn.ReLU()),  # bn-block
                (hidden, hidden, nn.LayerNorm(hidden), nn.ReLU()),  # ln-block
                (hidden, out, None, None),
            ]
        )
"""


def test_block_tuples_unpacked_at_the_loop_head_become_the_base_sequential():
    assert finding_at(BLOCK_LOOP, "ADP008", "# bn-block") is not None
    # the LayerNorm block and the plain last block: no Linear -> BatchNorm1d
    assert finding_at(BLOCK_LOOP, "ADP008", "# ln-block") is None
    assert len(found(BLOCK_LOOP, "ADP008")) == 1


TRAINER = """\
import torch


class Trainer:
    def __init__(self, model):
        self.model = model

    def train_one_epoch(self, batches, optimizer):
        total = 0.0
        for x, y in batches:
            loss = torch.nn.functional.mse_loss(self.model(x), y)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            total += loss.item()
        return total

    def train(self, batches, epochs=1, optimizer="adam", lr=1e-3):
        if optimizer == "adam":
            optimizer = torch.optim.Adam(self.model.parameters(), lr=lr)
        else:
            optimizer = torch.optim.SGD(self.model.parameters(), lr=lr)
        self.model.train(True)
        for epoch in range(epochs):
            self.log("Loss/train", self.train_one_epoch(batches, optimizer))

    def evaluate(self, batches, head):
        \"\"\"Fit a linear head to evaluate; it does not train the backbone.\"\"\"
        optimizer = torch.optim.AdamW(head.parameters(), lr=1e-3)
        head.train(True)  # train the head only
        for x, y in batches:
            loss = torch.nn.functional.cross_entropy(head(self.model(x).detach()), y)
            loss.backward()
            optimizer.step()
        self.log("Eval/train", loss.item())

    def log(self, key, value):
        print(key, value)
"""


def test_train_method_named_only_in_prose_and_by_namesakes_is_read():
    assert finding_at(TRAINER, "ADP012", "torch.optim.Adam(") is not None
    assert finding_at(TRAINER, "ADP012", "torch.optim.SGD(") is not None
    assert finding_at(TRAINER, "ADP012", "torch.optim.AdamW(") is not None
    assert len(found(TRAINER, "ADP012")) == 3
    fixed = fix_text(TRAINER, "model.py", rules("ADP012")).text
    assert fixed.count("fused=True") == 3
    compile(fixed, "model.py", "exec")


def test_train_the_class_calls_is_reported_once_and_a_fused_one_not_at_all():
    called = TRAINER.replace("    def log(self, key, value):\n",
                             "    def fit(self, batches):\n        return self.train(batches)\n\n"
                             "    def log(self, key, value):\n")
    assert len(found(called, "ADP012")) == 3
    fused = TRAINER.replace("lr=lr)", "lr=lr, fused=True)")
    assert len(found(fused, "ADP012")) == 1  # (only evaluate's AdamW)
