"""Forms found while checking the blind batch research35 (vision, detection, CLIP, graph and
diffusion-transformer reimplementations and their training scripts).  The fixtures are ours.

- A training function that imports torch in its own body (``def train(...): import torch``; the
  file imports nothing at module level, so importing the package stays cheap): the optimizer it
  builds, ``torch.optim.AdamW(...)``, resolved to nothing, since only module-level imports were
  read (ADP012).  A function-local import now binds its name for the file when no module-level
  statement binds that name and every local import of it in the file says the same thing.
  Near-misses: an optimizer that chooses ``fused=``; a local ``import`` whose name the module
  also binds to something else (a module-level ``torch = FakeTorch()``), and two functions
  binding the same name to different modules (``import torch as T`` / ``import tensorflow as
  T``): neither reading is the file's.
"""

from __future__ import annotations

from corpus_forms import finding_at, found

# --------------------------------------------------------------------------- ADP012

LOCAL_IMPORT_TRAINER = """\
from __future__ import annotations

import math
from pathlib import Path


def build(size):
    from .nets import Net
    return Net(size)


def train(out: str | Path, *, epochs: int = 20, lr: float = 1e-4, weight_decay: float = 0.01):
    import copy

    import torch

    net = build("s")
    params = [p for p in net.parameters()]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay OPTIONS)
    for epoch in range(epochs):
        loss = net(torch.randn(2, 3)).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return copy.deepcopy(net), math.pi
"""


def test_optimizer_of_a_function_local_torch_import_is_read():
    code = LOCAL_IMPORT_TRAINER.replace(" OPTIONS", "")
    assert finding_at(code, "ADP012", "opt = torch.optim.AdamW(") is not None


def test_optimizer_of_a_function_local_from_import_is_read():
    code = LOCAL_IMPORT_TRAINER.replace(" OPTIONS", "").replace(
        "    import torch\n", "    import torch\n    from torch.optim import AdamW\n").replace(
        "opt = torch.optim.AdamW(", "opt = AdamW(")
    assert finding_at(code, "ADP012", "opt = AdamW(") is not None


def test_local_import_inside_a_method_under_try_is_read():
    code = """\
class Trainer:
    def __init__(self, net, lr=1e-3):
        try:
            import torch.optim as optim
        except ImportError:
            raise SystemExit("torch is needed")
        self.opt = optim.SGD(net.parameters(), lr=lr, momentum=0.9)
"""
    assert finding_at(code, "ADP012", "self.opt = optim.SGD(") is not None


def test_local_import_with_fused_chosen_is_not_reported():
    code = LOCAL_IMPORT_TRAINER.replace(" OPTIONS", ", fused=True")
    assert found(code, "ADP012") == []


def test_local_import_of_a_name_the_module_binds_otherwise_is_not_read():
    # the module-level ``torch`` is the file's own object: a local import elsewhere does not
    # say what the name means in ``train``, which has no import of its own
    code = """\
class FakeTorch:
    pass


torch = FakeTorch()


def helper():
    import torch
    return torch.zeros(1)


def train(net, lr=1e-3):
    opt = torch.optim.AdamW(net.parameters(), lr=lr)
    return opt
"""
    assert found(code, "ADP012") == []


def test_local_imports_binding_one_name_to_different_modules_are_not_read():
    code = """\
def train_tf(net, lr=1e-3):
    import tensorflow as T
    return T.optim.AdamW(net.parameters(), lr=lr)


def train_torch(net, lr=1e-3):
    import torch as T
    return T.optim.AdamW(net.parameters(), lr=lr)
"""
    assert found(code, "ADP012") == []
