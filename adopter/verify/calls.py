"""Verify a patch that changes how an optimizer is built, on the optimizer itself.

``optimizer = torch.optim.AdamW(model.parameters(), lr=3e-4)`` sits in a training script, a
``configure_optimizers`` method, a ``train()`` function: code verify cannot (and must not) run.
What the patch claims is narrower: the rewritten call (``torch.optim.AdamW(..., fused=True)``)
builds an optimizer that updates parameters exactly as the original one does.  So verify
evaluates the original callee and the patched callee - the file's import statements only, then
the callee expression, nothing else of the file runs - builds both with the call's arguments
known statically (literals, module constants; the others keep the optimizer's defaults) over the parameters of the
same small probe model on the verify device, and takes a few steps with the same gradients:
the parameters, the optimizer state and the hyperparameters must match (``torch.testing``
tolerances of the dtype, float64 rounding as elsewhere is not needed: the update rule is the
same code).  The patched optimizer is built with the patched call's arguments, so the fused
kernel the patch enables (``fused=True``: CPU and CUDA since PyTorch 2.4) is the one that runs;
implementation choices (``fused``, ``foreach``) are the only arguments it may add.
"""

from __future__ import annotations

import ast
import copy
import os
import sys
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from .build import run_quietly
from .callsites import UNKNOWN, static_value

STEPS = 3
# Keywords that choose how an optimizer computes its update, not what it computes.
IMPLEMENTATION = frozenset({"fused", "foreach"})


class NotACallPatch(Exception):
    """The patch is not a rewrite of an optimizer construction."""


def _imports_namespace(tree: ast.Module, package: str | None) -> dict:
    """A namespace with the file's top-level imports (and nothing else of it) executed."""
    namespace: dict = {"__name__": "__adopter_verify_imports__", "__package__": package}
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            try:
                exec(compile(ast.Module([node], []), "<imports>", "exec"), namespace)
            except Exception:
                continue
        elif isinstance(node, ast.Try):  # guarded imports
            imports = [n for n in node.body if isinstance(n, (ast.Import, ast.ImportFrom))]
            for item in imports:
                try:
                    exec(compile(ast.Module([item], []), "<imports>", "exec"), namespace)
                except Exception:
                    break
    return namespace


def _call_at(tree: ast.Module, lines: set[int], column: int | None = None) -> ast.Call | None:
    """The outermost call that starts on one of ``lines`` (at ``column`` when given)."""
    best: ast.Call | None = None
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.lineno in lines and (column is None or node.col_offset == column):
            if best is None or (node.end_lineno or 0, node.end_col_offset or 0) > (best.end_lineno or 0,
                                                                                     best.end_col_offset or 0):
                best = node
    return best


def _patched_call(tree: ast.Module, lines: set[int], original: ast.Call | None) -> ast.Call | None:
    """The call in the patched text that replaced ``original``: among the calls starting on the
    edited lines, the one passing the same arguments - apart from implementation keywords the
    patch may add (``fused=True``) - that is not the original itself (an edit may cover
    neighbouring calls)."""
    if original is None:
        return None

    def key(call: ast.Call, drop: frozenset = frozenset()) -> tuple:
        return ([ast.dump(a) for a in call.args], [ast.dump(k) for k in call.keywords if k.arg not in drop])

    wanted = key(original)
    candidates = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and n.lineno in lines]
    same = [n for n in candidates if key(n, IMPLEMENTATION) == wanted
            and (ast.dump(n.func) != ast.dump(original.func) or key(n) != wanted)]
    if same:
        return min(same, key=lambda n: abs(n.lineno - original.lineno))
    return _call_at(tree, lines)


def _arguments(tree: ast.Module, call: ast.Call) -> tuple[list[Any], dict[str, Any], list[str]]:
    """Positional arguments after the parameters and keywords whose values are known statically
    (literals, module constants such as ``learning_rate = 3e-4``); the rest are dropped."""
    args: list[Any] = []
    for node in call.args[1:]:
        value = static_value(tree, node, call.lineno)
        if value is UNKNOWN:
            break
        args.append(value)
    kwargs: dict[str, Any] = {}
    dropped: list[str] = []
    for keyword in call.keywords:
        if keyword.arg is None:
            dropped.append("**")
            continue
        value = static_value(tree, keyword.value, call.lineno)
        if value is UNKNOWN:
            dropped.append(keyword.arg)
        else:
            kwargs[keyword.arg] = value
    return args, kwargs, dropped


def _probe(device: torch.device) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 16), nn.LayerNorm(16), nn.GELU(), nn.Linear(16, 4)).to(device)


def _groups(optimizer: torch.optim.Optimizer) -> list[dict]:
    return [{k: v for k, v in group.items() if k != "params"} for group in optimizer.param_groups]


@contextmanager
def _importable(path: str, package: str | None):
    """The file's neighbours (or its package root) importable while its imports run."""
    folder = os.path.dirname(os.path.abspath(path))
    for _ in (package or "").split(".") if package else ():
        folder = os.path.dirname(folder)
    added = folder not in sys.path
    if added:
        sys.path.insert(0, folder)
    try:
        yield
    finally:
        if added:
            try:
                sys.path.remove(folder)
            except ValueError:
                pass


def check_optimizer_patch(path: str, original_text: str, patched_text: str,
                          original_span: tuple[int, int, int, int], edited: set[int], package: str | None,
                          device: torch.device) -> tuple[bool, str, float, dict]:
    """(ok, reason, max abs diff, details) for an optimizer-construction patch; raises
    :class:`NotACallPatch` when the finding is not one."""
    with _importable(path, package):
        return _check(original_text, patched_text, original_span, edited, package, device)


def _check(original_text: str, patched_text: str, original_span: tuple[int, int, int, int], edited: set[int],
           package: str | None, device: torch.device) -> tuple[bool, str, float, dict]:
    original_tree = ast.parse(original_text)
    patched_tree = ast.parse(patched_text)
    original_call = _call_at(original_tree, {original_span[0]}, original_span[1])
    patched_call = _patched_call(patched_tree, edited, original_call)
    if original_call is None or patched_call is None:
        raise NotACallPatch("the rewritten call was not found")
    original_callee = eval(compile(ast.Expression(original_call.func), "<callee>", "eval"),
                           _imports_namespace(original_tree, package))
    if not (isinstance(original_callee, type) and issubclass(original_callee, torch.optim.Optimizer)):
        raise NotACallPatch("the call does not build an optimizer")
    try:
        patched_callee = eval(compile(ast.Expression(patched_call.func), "<callee>", "eval"),
                              _imports_namespace(patched_tree, package))
    except Exception as exc:
        return False, f"the patched call's callee does not evaluate: {type(exc).__name__}: {exc}", float("inf"), {}
    args, kwargs, dropped = _arguments(original_tree, original_call)
    patched_args, patched_kwargs, _ = _arguments(patched_tree, patched_call)
    chosen = {k: v for k, v in patched_kwargs.items() if k in IMPLEMENTATION and k not in kwargs}
    if (patched_args, {k: v for k, v in patched_kwargs.items() if k not in chosen}) != (args, kwargs):
        return False, "the patched call passes other arguments than the original", float("inf"), {}
    original_model = _probe(device)
    patched_model = copy.deepcopy(original_model)
    details = {"built": f"{original_callee.__name__}(<probe parameters>"
                        + "".join(f", {a!r}" for a in args) + "".join(f", {k}={v!r}" for k, v in kwargs.items())
                        + ")", "inputs": f"{STEPS} steps with the same gradients on a probe model"}
    if dropped:
        details["defaults_for"] = dropped
    try:
        original_opt = run_quietly(lambda: original_callee(original_model.parameters(), *args, **kwargs))
    except Exception as exc:
        raise NotACallPatch(f"the original optimizer does not build with the literal arguments: {exc}") from None
    try:
        patched_opt = run_quietly(lambda: patched_callee(patched_model.parameters(), *args, **kwargs, **chosen))
    except Exception as exc:
        return False, f"the patched call raised {type(exc).__name__}: {exc}", float("inf"), details
    if type(patched_opt) is not type(original_opt):
        return False, (f"the patched call builds a {type(patched_opt).__name__}, the original a "
                       f"{type(original_opt).__name__}"), float("inf"), details
    implementation = IMPLEMENTATION
    groups_o = [{k: v for k, v in g.items() if k not in implementation} for g in _groups(original_opt)]
    groups_p = [{k: v for k, v in g.items() if k not in implementation} for g in _groups(patched_opt)]
    if groups_o != groups_p:
        return False, f"the optimizers' hyperparameters differ: {groups_o} vs {groups_p}", float("inf"), details
    details["implementation"] = {k: patched_opt.param_groups[0].get(k) for k in sorted(implementation)
                                 if k in patched_opt.param_groups[0]}
    generator = torch.Generator().manual_seed(7)
    worst = 0.0
    for step in range(STEPS):
        for p_o, p_p in zip(original_model.parameters(), patched_model.parameters()):
            grad = torch.randn(p_o.shape, generator=generator).to(device)
            p_o.grad = grad.clone()
            p_p.grad = grad.clone()
        original_opt.step()
        patched_opt.step()
        for (name, p_o), p_p in zip(original_model.named_parameters(), patched_model.parameters()):
            worst = max(worst, float((p_o.detach() - p_p.detach()).abs().max()))
            try:
                torch.testing.assert_close(p_p.detach(), p_o.detach())
            except AssertionError as exc:
                first = " ".join(str(exc).split())[:200]
                return False, f"after step {step + 1} parameter {name} differs: {first}", worst, details
    state_o = original_opt.state_dict()["state"]
    state_p = patched_opt.state_dict()["state"]
    for key, entry in state_o.items():
        for field, value in entry.items():
            other = state_p.get(key, {}).get(field)
            if isinstance(value, torch.Tensor):
                if not isinstance(other, torch.Tensor):
                    return False, f"optimizer state {field} is missing in the patched optimizer", worst, details
                try:
                    torch.testing.assert_close(other.to(value.dtype), value, check_device=False)
                except AssertionError:
                    return False, f"optimizer state {field} differs after {STEPS} steps", worst, details
    reason = (f"builds the same {original_callee.__name__}: {STEPS} steps on a probe model give the same parameters "
              f"and optimizer state (max abs diff {worst:.2g})")
    if dropped:
        reason += f"; {', '.join(dropped)} not literal here, the optimizer's defaults were used"
    return True, reason, worst, details
