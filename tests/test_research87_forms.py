"""Forms found while checking the blind batch research87 (from-scratch LLM code and small
training / distillation libraries).  The fixtures are ours.

- Training methods a trainer dispatches through a table of bound methods
  (``{"kd": self._distill_kd, "gkd": self._distill_gkd}[method](data, **kwargs)``): the
  methods are named, never called by name, so no flow inlined them and being named made them no
  root either -- the optimizers they build were read nowhere.  A method the file never calls by
  name is now read on its own by the file-scope rule, as module functions named as values
  already were (cnn42's recipes).
Near-misses: a dispatched method whose optimizer already chooses ``fused=`` or takes
``**kwargs`` that may; a method both dispatched and called by name (one finding, not two).
"""

from __future__ import annotations

from corpus_forms import finding_at, found, rules

from adopter.synth import fix_text

DISPATCH = """\
import torch


class Distiller:
    def __init__(self, student, method="kd", lr=1e-4):
        self.student = student
        self.method = method
        self.lr = lr

    def distill(self, batches, **kwargs):
        table = {
            "kd": self._distill_kd,
            "gkd": self._distill_gkd,
        }
        run = table.get(self.method)
        if run is None:
            raise ValueError(self.method)
        return run(batches, **kwargs)

    def _distill_kd(self, batches, **kwargs):
        optimizer = torch.optim.AdamW(self.student.parameters(), lr=self.lr)
        for x, y in batches:
            loss = torch.nn.functional.mse_loss(self.student(x), y)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
        return optimizer

    def _distill_gkd(self, batches, **kwargs):
        optimizer = torch.optim.SGD(self.student.parameters(), lr=self.lr, momentum=0.9)
        for x, y in batches:
            loss = (self.student(x) - y).abs().mean()
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
        return optimizer
"""


def test_methods_dispatched_through_a_table_are_read():
    assert finding_at(DISPATCH, "ADP012", "torch.optim.AdamW(") is not None
    assert finding_at(DISPATCH, "ADP012", "torch.optim.SGD(") is not None
    fixed = fix_text(DISPATCH, "model.py", rules("ADP012")).text
    assert "lr=self.lr, fused=True)" in fixed
    assert fixed.count("fused=True") == 2  # (the longer SGD call is wrapped over lines)
    compile(fixed, "model.py", "exec")


def test_dispatched_method_already_fused_or_spreading_kwargs_is_not_reported():
    code = DISPATCH.replace("lr=self.lr)", "lr=self.lr, fused=True)").replace(
        "momentum=0.9)", "momentum=0.9, **kwargs)")
    assert found(code, "ADP012") == []


def test_method_both_dispatched_and_called_is_reported_once():
    code = DISPATCH.replace(
        "        run = table.get(self.method)\n",
        "        if self.method == \"kd\":\n            return self._distill_kd(batches)\n"
        "        run = table.get(self.method)\n")
    assert "self._distill_kd(batches)" in code
    adamw = [f for f in found(code, "ADP012") if "AdamW" in code.splitlines()[f.line - 1]]
    assert len(adamw) == 1
    assert len(found(code, "ADP012")) == 2
