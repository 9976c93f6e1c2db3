"""What users do with modules keeps working after a patch: torch.fx.symbolic_trace,
torch.jit.script, torch.jit.trace and torch.export.

For every rule with a fix, every ``before``/``after`` example is imported as a real module
(TorchScript reads source files), each of its ``nn.Module`` classes is built with small
arguments (the table below; a class missing from it fails the test), the patched module gets
the original's state dict (strict), and each tool is tried on both in eval mode.  Wherever
the original works with a tool, the patched module must work with it too and compute the same
outputs - unless the rule's fix is marked unsafe (``fix_safety = "unsafe: ..."``), which
``adopter fix`` does not apply by default.
"""

from __future__ import annotations

import ast
import importlib.util
import itertools
import sys
import types
import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

from adopter.ruleset import load_rules

pytest.importorskip("transformers")  # ACT2FN in the ADP006 / ADP013 examples


def _cfg(**kw):
    return types.SimpleNamespace(**kw)


def _r(*shape):
    return torch.randn(*shape)


# (rule, class), or (rule, example index, class) where one rule's examples reuse a class name
# with another signature -> (constructor arguments, inputs of forward)
BUILD = {
    ("ADP004", 2, "Attention"): ((), lambda: (_r(2, 3, 4, 4), _r(2, 3, 4, 4))),
    ("ADP006", 3, "Block"): ((_cfg(activation="gelu"), 8), lambda: (_r(3, 8),)),
    ("ADP006", 5, "Block"): ((8,), lambda: (_r(3, 8),)),
    ("ADP006", 7, "Block"): ((_cfg(gelu_approximate="tanh"), 8), lambda: (_r(3, 8),)),
    ("ADP001", "BertSelfAttention"): ((8,), lambda: (_r(2, 5, 8),)),
    ("ADP001", "Wrapper"): ((8,), lambda: (_r(2, 5, 8),)),
    ("ADP002", "T5Attention"): ((8,), lambda: (_r(2, 5, 8),)),
    ("ADP002", "Wrapper"): ((8,), lambda: (_r(2, 5, 8),)),
    ("ADP003", "GPT2Attention"): ((8,), lambda: (_r(2, 5, 8),)),
    ("ADP003", "Wrapper"): ((8,), lambda: (_r(2, 5, 8),)),
    ("ADP004", "Attention"): ((), lambda: (_r(2, 3, 4, 4),)),
    ("ADP005", "SelfOutput"): ((8,), lambda: (_r(2, 5, 8), _r(2, 5, 8))),
    ("ADP005", "EncoderLayer"): ((8, 0.1), lambda: (_r(2, 5, 8),)),
    ("ADP005", "Block"): ((8,), lambda: (_r(2, 5, 8),)),
    ("ADP005", "PostNormBlock"): ((8,), lambda: (_r(2, 5, 8),)),
    ("ADP006", "Block"): ((_cfg(hidden_act="gelu"), 8), lambda: (_r(3, 8),)),
    ("ADP006", "Mlp"): ((8,), lambda: (_r(3, 8),)),
    ("ADP006", "TracedLinear"): ((8, 8), lambda: (_r(3, 8),)),
    ("ADP006", "MLP"): ((8,), lambda: (_r(3, 8),)),
    ("ADP006", "NewGELU"): ((), lambda: (_r(3, 8),)),
    ("ADP006", "GELU"): ((), lambda: (_r(3, 8),)),
    ("ADP006", "FeedForward"): ((8,), lambda: (_r(3, 8),)),
    ("ADP006", "LMHead"): ((8,), lambda: (_r(3, 8),)),
    ("ADP006", "ClassificationHead"): ((_cfg(hidden_act="gelu"), 8), lambda: (_r(3, 5, 8),)),
    ("ADP007", "Block"): ((4,), lambda: (_r(2, 4, 6, 6),)),
    ("ADP007", "BasicBlock"): ((4, 4), lambda: (_r(2, 4, 6, 6),)),
    ("ADP007", "ConvNorm"): ((4,), lambda: (_r(2, 4, 6, 6),)),
    ("ADP007", "Scales"): ((4, 3), lambda: (_r(2, 4, 6, 6),)),
    ("ADP008", "Block"): ((4,), lambda: (_r(3, 4),)),
    ("ADP008", "Head"): ((4, 3), lambda: (_r(3, 4),)),
    ("ADP008", "MLPLayerWithBN"): ((4,), lambda: (_r(2, 3, 4),)),
    # ADP007's resolver examples import timm (not a dev dependency), so they cannot be imported here
    ("ADP007", "Net"): None,
    ("ADP007", "Stem"): None,
    ("ADP007", "Stage"): ((4, 4, 1), lambda: (_r(2, 4, 8, 8),)),
    ("ADP007", "ConvBNReLU"): ((3, 4), lambda: (_r(2, 3, 8, 8),)),
    ("ADP007", 5, "Net"): ((8,), lambda: (_r(2, 3, 16, 16),)),
    ("ADP008", "Projector"): ((4,), lambda: (_r(3, 4),)),
    ("ADP007", "SeparableConv2d"): ((4, 6), lambda: (_r(2, 4, 8, 8),)),
    ("ADP007", "Decoder"): ((4, 6), lambda: (_r(2, 4, 8, 8),)),
    # ADP009's example splits only the query into heads, so its forward cannot run at all
    ("ADP009", "Attention"): None,
    ("ADP009", "SelfAttention"): ((8, 2), lambda: (_r(2, 5, 8),)),
    ("ADP009", "GatedAttention"): ((8,), lambda: (_r(2, 5, 8),)),
    ("ADP010", "SelfAttention"): ((8, 2), lambda: (_r(2, 2, 5, 4), _r(2, 2, 5, 4), _r(2, 2, 5, 4))),
    ("ADP010", "NeoSelfAttention"): ((8,), lambda: (_r(2, 2, 5, 4), _r(2, 2, 5, 4), _r(2, 2, 5, 4))),
    ("ADP010", "ListEinsumAttention"): ((4,), lambda: (_r(2, 2, 5, 4), _r(2, 2, 5, 4), _r(2, 2, 5, 4))),
    ("ADP010", "UpcastFillAttention"): ((), lambda: (_r(2, 2, 5, 4), _r(2, 2, 5, 4), _r(2, 2, 5, 4),
                                                    torch.tensor([0, 0, 0, 1, 1, 0, 1, 1, 1, 1]).view(2, 1, 1, 5))),
    ("ADP010", "Attention"): ((8,), lambda: (_r(2, 5, 8), _r(2, 5, 8), _r(2, 5, 8))),
    ("ADP010", 19, "Attention"): ((8,), lambda: (_r(2, 2, 5, 4), _r(2, 2, 5, 4), _r(2, 2, 5, 4))),
    ("ADP010", "LatentAttention"): ((8, 3), lambda: (_r(2, 5, 8),)),
    ("ADP010", "FoldedHeadsAttention"): ((8, 2), lambda: (_r(5, 2, 8),)),
    ("ADP011", "RMSNorm"): ((8,), lambda: (_r(2, 5, 8),)),
    ("ADP011", "T5LayerNorm"): ((8,), lambda: (_r(2, 5, 8),)),
    ("ADP011", "ScaleNorm"): ((8,), lambda: (_r(2, 5, 8),)),
    ("ADP011", "MultiAxisRMSNorm"): (((4, 8),), lambda: (_r(2, 5, 4, 8),)),
    ("ADP012", "Classifier"): ((4, 2), lambda: (_r(3, 4),)),
    ("ADP012", "Net"): ((), lambda: (_r(3, 8),)),
    ("ADP013", "MLP"): ((_cfg(hidden_size=8, intermediate_size=16, hidden_act="silu"),), lambda: (_r(2, 5, 8),)),
    ("ADP013", 2, "MLP"): ((8, 16), lambda: (_r(2, 5, 8),)),
    ("ADP013", "SwiGLU"): ((8, 16), lambda: (_r(2, 5, 8),)),
    ("ADP013", "PackedSwiGLU"): ((8, 16), lambda: (_r(2, 5, 8),)),
    ("ADP013", "FeedForward"): ((torch.nn.Linear(8, 16), torch.nn.Linear(16, 8), torch.nn.Linear(8, 16)),
                                lambda: (_r(2, 5, 8),)),
    ("ADP013", 10, "SwiGLU"): ((), lambda: (_r(2, 5, 16),)),
    ("ADP013", 10, "FeedForward"): ((8, 16), lambda: (_r(2, 5, 8),)),
    ("ADP013", "FunctionalSwiGLU"): ((8, 16), lambda: (_r(2, 5, 8),)),
    ("ADP013", "ExpertSwiGLU"): ((3, 8, 16), lambda: (_r(3, 5, 8),)),
    ("ADP013", "NormalizedMLP"): ((8, 16), lambda: (_r(2, 5, 8),)),
    ("ADP014", "Attention"): ((), lambda: (_r(1, 2, 5, 4), _r(1, 2, 5, 4), _r(1, 1, 5, 4), _r(1, 1, 5, 4))),
}

TOOLS = ("fx.symbolic_trace", "jit.script", "jit.trace", "export")

# Known breakages, by (rule, example name): each must still break (strict), so that the mark is
# removed when the fix lands.  ADP010's hook guard (`self.attend._forward_hooks or ...`) does
# not compile under torch.jit.script; the other examples' originals do not script either, so
# only this one, whose original scripts, shows it (the same holds for a plain nn.Softmax
# attribute).  A fix: test the hooks under a statement-level `if not torch.jit.is_scripting():`,
# which TorchScript skips.
# (rule, example name) -> why the patched module breaks a transformation the original takes
# (a strict xfail: it fails loudly once fixed). None today.
KNOWN_BREAKS: dict[tuple[str, str], str] = {}


def _cases():
    for rule in load_rules():
        if not rule.fixable:
            continue
        for index, example in enumerate(rule.examples):
            if example.after is None:
                continue
            tree = ast.parse(example.before)
            for node in tree.body:
                if isinstance(node, ast.ClassDef):
                    known = KNOWN_BREAKS.get((rule.id, example.name))
                    marks = [pytest.mark.xfail(strict=True, raises=AssertionError, reason=known)] if known else []
                    yield pytest.param(rule, index, node.name, id=f"{rule.id}-{index}-{node.name}", marks=marks)


CASES = list(_cases())
_counter = itertools.count()


def _import(text: str, folder: Path):
    name = f"adopter_example_{next(_counter)}"
    path = folder / f"{name}.py"
    path.write_text(text)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # TorchScript and pickling look modules up by name
    spec.loader.exec_module(module)
    return module


def _apply(tool: str, module: nn.Module, inputs: tuple):
    if tool == "fx.symbolic_trace":
        return torch.fx.symbolic_trace(module)
    if tool == "jit.script":
        return torch.jit.script(module)
    if tool == "jit.trace":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            return torch.jit.trace(module, inputs)
    return torch.export.export(module, inputs).module()


def _flat(out):
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, (tuple, list)):
        return [t for o in out for t in _flat(o)]
    return []


def _transformed(tool, module, inputs):
    try:
        program = _apply(tool, module, inputs)
        with torch.no_grad():
            return _flat(program(*inputs)), None
    except Exception as exc:  # noqa: BLE001 - which tools accept which module is the question
        return None, f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"


def test_every_class_of_an_example_has_build_arguments():
    missing = [c.id for c in CASES if (c.values[0].id, c.values[2]) not in BUILD]
    assert not missing, f"add these classes to BUILD: {missing}"


@pytest.mark.parametrize("rule, index, class_name", CASES)
def test_patched_module_works_wherever_the_original_does(rule, index, class_name, tmp_path):
    key = (rule.id, index, class_name) if (rule.id, index, class_name) in BUILD else (rule.id, class_name)
    if key not in BUILD:
        pytest.fail(f"no build arguments for {rule.id} {class_name}")
    if BUILD[key] is None:
        pytest.skip(f"the {rule.id} example's {class_name}.forward cannot run (see BUILD)")
    args, make_inputs = BUILD[key]
    example = rule.examples[index]
    original_module = _import(example.before, tmp_path)
    patched_module = _import(example.after, tmp_path)
    torch.manual_seed(0)
    original = getattr(original_module, class_name)(*args).eval()
    patched = getattr(patched_module, class_name)(*args).eval()
    with torch.no_grad():  # non-trivial running statistics, so a fold is visible
        for m in original.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2.0)
    patched.load_state_dict(original.state_dict(), strict=True)
    torch.manual_seed(1)
    inputs = make_inputs()
    with torch.no_grad():
        eager = _flat(original(*inputs))
    unsafe = rule.fix_safety.startswith("unsafe")
    broken = []
    for tool in TOOLS:
        before, _ = _transformed(tool, original, inputs)
        if before is None:
            continue
        after, error = _transformed(tool, patched, inputs)
        if after is None:
            broken.append(f"{tool}: {error}")
            continue
        assert len(after) == len(eager), tool
        for a, b in zip(eager, after):
            torch.testing.assert_close(b, a, msg=lambda m: f"{tool}: {m}")
    if unsafe:
        return
    assert not broken, f"{rule.id} ({rule.fix_safety}) breaks: {broken}"
