"""A form found missing in the blind batch cnn54 (torchvision/timm-style CNN files of 8 packages
new to the corpus; the miss is a trainer's optimizer factory).  The fixtures are ours.

- A local name bound to an optimizer class and bound again under an ``if``
  (``optimizer_fn = AdamW`` / ``if opt_type == "normal": optimizer_fn = Adam`` /
  ``return optimizer_fn(params, lr=lr)``), or bound once (``fn = AdamW; fn(params)``): the
  name is local all through the function, so the call calls the value of whichever assignment
  ran last, one of the classes it is ever assigned.  It is read as a callee chosen at run time
  among them (as ``klass = Adam if normal else AdamW`` already was), and the fix guards
  ``fused=True`` by the class the rule matched.
Near-misses (no finding): the name bound any other way as well (a parameter, a loop target, an
augmented assignment, a call's result, a nested function's own assignment), only optimizers
without a fused step among its values, a call that already chooses ``fused=``.
"""

from __future__ import annotations

import textwrap

import pytest
from corpus_forms import found, line_of, rules

from adopter.synth import fix_text

TRAINER = textwrap.dedent("""\
    from torch.optim import SGD, Adam, AdamW, RMSprop


    def build(params, opt_type="normal", lr=0.1):
        optimizer_fn = AdamW

        if opt_type == "normal":
            optimizer_fn = Adam

        return optimizer_fn(params, lr=lr)  # reassigned


    def build_once(params, lr=0.1):
        fn = SGD
        return fn(params, lr=lr, momentum=0.9)  # once
""")


def test_a_name_assigned_optimizer_classes_on_two_paths_calls_one_of_them():
    got = [f.line for f in found(TRAINER, "ADP012")]
    assert got == [line_of(TRAINER, "# reassigned"), line_of(TRAINER, "# once")]


def test_the_fixed_factory_builds_the_fused_class_and_the_other_as_it_was():
    import torch

    fixed = fix_text(TRAINER, "model.py", rules("ADP012")).text
    assert fixed != TRAINER
    space: dict = {}
    exec(compile(fixed, "model.py", "exec"), space)
    params = [torch.nn.Parameter(torch.zeros(3))]
    adamw = space["build"](params, opt_type="AdamW")
    assert type(adamw) is torch.optim.AdamW and adamw.defaults["fused"] is True
    # (the guard names the class the rule matched: Adam, the other value, is built as it was)
    adam = space["build"](params)
    assert type(adam) is torch.optim.Adam and adam.defaults["lr"] == 0.1
    sgd = space["build_once"](params)
    assert type(sgd) is torch.optim.SGD and sgd.defaults["fused"] is True and sgd.defaults["momentum"] == 0.9


ONCE = "    return fn(params, lr=lr, momentum=0.9)  # once"


def _once(extra: str) -> str:
    """TRAINER with ``extra`` (statements of build_once's body) before its call."""
    assert ONCE in TRAINER
    return TRAINER.replace(ONCE, extra + ONCE)


@pytest.mark.parametrize("before, after", [
    # the name is also a parameter
    ('lr=0.1):\n    optimizer_fn', 'lr=0.1, optimizer_fn=None):\n    optimizer_fn'),
    # bound by a loop as well
    ("    return optimizer_fn(params, lr=lr)  # reassigned",
     "    for optimizer_fn in (RMSprop,):\n        pass\n    return optimizer_fn(params, lr=lr)  # reassigned"),
    # bound to a call's result on one path
    ("        optimizer_fn = Adam\n", "        optimizer_fn = pick(opt_type)\n"),
    # only optimizers without a fused step among its values
    ("    optimizer_fn = AdamW\n", "    optimizer_fn = RMSprop\n"),
])
def test_a_name_bound_another_way_or_to_no_fusable_class_gives_no_finding(before, after):
    code = TRAINER.replace(before, after)
    assert code != TRAINER
    if "optimizer_fn = RMSprop" in code:
        code = code.replace("        optimizer_fn = Adam\n", "        optimizer_fn = RMSprop\n")
    got = [f.line for f in found(code, "ADP012")]
    assert line_of(code, "# reassigned") not in got
    assert line_of(code, "# once") in got  # (the other function is read as before)


def test_a_nested_function_assigning_the_name_for_itself_spoils_it():
    code = _once("    def inner():\n        fn = RMSprop\n        return fn\n")
    assert [f.line for f in found(code, "ADP012")] == [line_of(code, "# reassigned")]


def test_an_augmented_assignment_spoils_the_name():
    code = _once("    fn += 0\n")
    assert [f.line for f in found(code, "ADP012")] == [line_of(code, "# reassigned")]


def test_a_call_that_already_chooses_fused_gives_no_finding():
    code = TRAINER.replace("momentum=0.9)  # once", "fused=False)  # once")
    assert code != TRAINER
    assert [f.line for f in found(code, "ADP012")] == [line_of(code, "# reassigned")]
