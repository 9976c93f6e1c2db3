"""Dev-corpus misses in forms research code writes elsewhere too (session 43, helper misses67).
The fixtures are ours.

- ADP012: an optimizer class picked from a class-body table and keywords spread from a dict
  attribute the same method builds (below).
"""

from __future__ import annotations

import textwrap

import torch
from corpus_forms import found, line_of, rules

from adopter.synth import fix_text

# ADP012: an optimizer class picked from a class-body table (``methods = {"adam":
# torch.optim.Adam, ...}`` in the class, ``self.methods[self.name](params, ...)``: optimizer
# factories in training code keep their registry on the class as often as in the module), and
# keywords spread from ``**self.optim_args``, a dict the same method builds with literal keys
# (nmtpytorch's Optimizer).  The fix adds ``fused=True`` only when the entry is Adam.
# Near-misses: a table another method adds an entry to, a keyword dict another method may
# give ``fused``, a table of optimizers the rule does not fuse.
OPTIMIZER = textwrap.dedent("""\
    import torch
    import torch.optim


    class Optimizer:
        methods = {
            "adagrad": torch.optim.Adagrad,
            "adam": ADAM,
        }

        def __init__(self, name, params, lr=0.0, momentum=0.0):
            self.name = name
            self.optim_args = {}
            if lr > 0:
                self.optim_args["lr"] = lr
            if name == "sgd":
                self.optim_args["momentum"] = momentum
            self.optim = self.methods[self.name](params, **self.optim_args)  # ctor
        EXTRA
""")


def _optimizer(extra: str = "", adam: str = "torch.optim.Adam") -> str:
    return OPTIMIZER.replace("EXTRA", extra).replace("ADAM", adam)


def test_an_optimizer_from_a_class_body_table_with_a_keyword_dict_of_the_method_is_found():
    code = _optimizer()
    hits = found(code, "ADP012")
    assert [(f.line, f.end_line) for f in hits] == [(line_of(code, "# ctor"),) * 2]


def test_the_fix_passes_fused_only_for_adam_and_builds_the_same_optimizers():
    code = _optimizer()
    result = fix_text(code, "train.py", rules("ADP012"))
    assert result.applied, result.skipped
    assert '**({"fused": True} if self.methods[self.name] is torch.optim.Adam else {})' in result.text
    ns: dict = {}
    exec(compile(result.text, "fixed.py", "exec"), ns)  # noqa: S102 (our own fixture)
    params = [torch.nn.Parameter(torch.randn(3, dtype=torch.float64))]
    adam = ns["Optimizer"]("adam", params, lr=0.01).optim
    assert isinstance(adam, torch.optim.Adam) and adam.defaults["fused"] is True and adam.defaults["lr"] == 0.01
    adagrad = ns["Optimizer"]("adagrad", params, lr=0.01).optim
    assert isinstance(adagrad, torch.optim.Adagrad) and adagrad.defaults.get("fused") in (None, False)


def test_near_misses_a_changed_table_a_keyword_dict_changed_elsewhere_no_fusable_entry():
    store = """
    def add(self, key, klass):
        self.methods[key] = klass"""
    assert found(_optimizer(store), "ADP012") == []
    other = """
    def enable_fused(self):
        self.optim_args["fused"] = True"""
    assert found(_optimizer(other), "ADP012") == []
    assert found(_optimizer(adam="torch.optim.RMSprop"), "ADP012") == []
