"""The equivalence checks: eval outputs, then training outputs, gradients and buffers.

Eval: both modules in ``eval()``, same inputs (fresh copies each time: a forward may write into
its inputs), under ``torch.no_grad()``; every tensor of the outputs (tuples, dicts, Hugging Face
``ModelOutput``s, dataclasses, nested) is compared with ``torch.testing.assert_close``.

Training: both modules in ``train()`` with every dropout probability set to 0 (dropout masks
are random, and a fused kernel draws them differently), float inputs requiring grad; the loss is
a fixed random projection of every differentiable output (so no gradient is trivially zero or
cancels out), and outputs, input gradients, parameter gradients (by state-dict name) and
buffers after the step (BatchNorm running statistics) are compared.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .build import Call, Pair, run_quietly, zero_dropout


@dataclass
class Outcome:
    ok: bool
    message: str = ""
    max_abs_diff: float = 0.0
    compared: int = -1  # tensors compared (eval); 0 means the check proved nothing
    # the original's floating outputs hold no finite number (inf/NaN compare equal on both sides:
    # the check proved nothing)
    not_finite: bool = False
    # train: the original alone cannot take a training step (its error); only train-mode outputs
    # were compared, and the patched module's own step ran through its backward
    forward_only: str = ""


class Tolerance:
    def __init__(self, rtol: float | None = None, atol: float | None = None):
        self.rtol = rtol
        self.atol = atol

    def kwargs(self) -> dict:
        if self.rtol is None and self.atol is None:
            return {}
        return {"rtol": self.rtol if self.rtol is not None else 1.3e-6,
                "atol": self.atol if self.atol is not None else 1e-5}


def flatten(value: Any, prefix: str = "output") -> list[tuple[str, torch.Tensor]]:
    out: list[tuple[str, torch.Tensor]] = []
    seen: set[int] = set()

    def walk(item: Any, name: str) -> None:
        if id(item) in seen and not isinstance(item, (int, float, str, bool)):
            return
        if isinstance(item, torch.Tensor):
            out.append((name, item))
            return
        if item is None or isinstance(item, (int, float, str, bool)):
            return
        seen.add(id(item))
        if isinstance(item, dict) or (hasattr(item, "items") and hasattr(item, "keys")):
            for key, sub in item.items():
                walk(sub, f"{name}[{key!r}]")
        elif isinstance(item, (tuple, list)):
            for index, sub in enumerate(item):
                walk(sub, f"{name}[{index}]")
        elif dataclasses.is_dataclass(item):
            for f in dataclasses.fields(item):
                walk(getattr(item, f.name), f"{name}.{f.name}")

    walk(value, prefix)
    return out


def _max_abs_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    if a.shape != b.shape or a.numel() == 0:
        return 0.0 if a.shape == b.shape else float("inf")
    if a.is_complex() or b.is_complex():  # rotary tables: compare real and imaginary parts
        a, b = torch.view_as_real(a.detach().resolve_conj()), torch.view_as_real(b.detach().resolve_conj())
    a64 = a.detach().to("cpu", torch.float64)
    b64 = b.detach().to("cpu", torch.float64)
    same = (a64 == b64) | (torch.isnan(a64) & torch.isnan(b64))
    diff = torch.where(same, torch.zeros_like(a64), (a64 - b64).abs())
    value = float(diff.max())
    return value if value == value else float("inf")


ROUNDING_FACTOR = 4.0
ROUNDING_FLOOR = 1e-6


def compare_named(original: list[tuple[str, torch.Tensor]], patched: list[tuple[str, torch.Tensor]],
                  what: str, tolerance: Tolerance, reference=None) -> Outcome:
    """``assert_close`` on every tensor; on a mismatch, a second opinion from a float64 run.

    Reordered float32 arithmetic (SDPA instead of matmul-softmax-matmul) is not bit-identical,
    and through a whole model its rounding accumulates past ``assert_close``'s default ``atol``
    in a few gradient entries.  So when ``reference`` (a callable giving the same tensors from
    the original module run in float64) is available, a mismatch is accepted when the patched
    result is as close to the float64 result as the original float32 result is:
    ``|patched - ref| <= 4 * |original - ref| + floor`` (maximum over each tensor), where the
    floor is 1e-6 or, when larger, 4 units of rounding of the tensor's largest exact entry
    (``4 * eps * max|ref|``): an entry computed as a sum of large terms that cancel (a gradient
    through a saturated softmax) carries the rounding of those terms, not of itself.  A kernel
    that computes something else is off by far more than float32 rounding.
    """
    if len(original) != len(patched):
        return Outcome(False, f"{what}: the original gives {len(original)} tensors, the patched {len(patched)}",
                       float("inf"))
    worst = 0.0
    failure: Outcome | None = None
    for (name, a), (pname, b) in zip(original, patched):
        if a.shape != b.shape:
            return Outcome(False, f"{what}: {name} has shape {list(a.shape)} originally, {list(b.shape)} patched",
                           float("inf"))
        if a.dtype != b.dtype:
            return Outcome(False, f"{what}: {name} has dtype {a.dtype} originally, {b.dtype} patched", float("inf"))
        diff = _max_abs_diff(a, b)
        worst = max(worst, diff)
        if failure is None:
            try:
                torch.testing.assert_close(b.detach(), a.detach(), equal_nan=True, **tolerance.kwargs())
            except AssertionError as exc:
                lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
                detail = "; ".join(lines[:3])
                failure = Outcome(False, f"{what}: {name} differs ({detail})", diff)
    if failure is None:
        return Outcome(True, "", worst)
    if reference is None:
        failure.max_abs_diff = worst
        return failure
    try:
        ref = reference()
    except Exception:
        ref = None
    if ref is None or len(ref) != len(original):
        failure.max_abs_diff = worst
        return failure
    ratio = 0.0
    for (name, a), (_, b), (_, r) in zip(original, patched, ref):
        if not a.is_floating_point():
            continue
        if r.shape != a.shape:
            failure.max_abs_diff = worst
            return failure
        err_original = _max_abs_diff(a.double(), r)
        err_patched = _max_abs_diff(b.double(), r)
        if err_patched > ROUNDING_FACTOR * err_original + _rounding_floor(a, r):
            failure.message += (f"; against a float64 run the patched error is {err_patched:.2g}, "
                                f"the original's {err_original:.2g}")
            failure.max_abs_diff = worst
            return failure
        if err_original > 0:
            ratio = max(ratio, err_patched / err_original)
    return Outcome(True, f"{what} within float32 rounding (error vs a float64 run at most {ratio:.1f}x the "
                         "original's)", worst)


def _rounding_floor(tensor: torch.Tensor, ref: torch.Tensor) -> float:
    """The error below which ``tensor`` cannot be told from ``ref`` rounded to its dtype:
    :data:`ROUNDING_FACTOR` units of rounding (``eps``) of the largest exact entry, at least
    :data:`ROUNDING_FLOOR`."""
    if ref.numel() == 0:
        return ROUNDING_FLOOR
    largest = float(ref.detach().abs().max())
    if not math.isfinite(largest):
        return ROUNDING_FLOOR
    return max(ROUNDING_FLOOR, ROUNDING_FACTOR * torch.finfo(tensor.dtype).eps * largest)


def _double(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.double() if value.is_floating_point() else value
    if isinstance(value, tuple):
        return tuple(_double(v) for v in value)
    if isinstance(value, list):
        return [_double(v) for v in value]
    if isinstance(value, dict):
        return {k: _double(v) for k, v in value.items()}
    return value


@contextlib.contextmanager
def kept_double():
    """While the float64 reference runs: a cast of a float64 tensor to float32 inside the module
    (``self.rel_pos.float()``, ``x.to(torch.float32)``) leaves it float64.  The reference is the
    original's own arithmetic carried out more exactly; without this such a module mixes float32
    with its float64 weights and the reference raises, or rounds to float32 midway and is no
    better than the runs it is to judge.  Only float64, integer and boolean tensors cast to
    float32 are touched (an integer padding mask made float is float64 there, as the float32 run
    makes it float32: VitsModel's ``attention_mask``); a float16 tensor's cast is left alone.

    For the same reason the default dtype is float64 while it runs: a tensor the module makes
    without naming a dtype (``torch.full((n, n), torch.finfo(x.dtype).min)``, a causal mask) is
    made as the float32 run makes it, in its inputs' precision.  Without this, Hugging Face's
    causal mask (the float64 minimum written into a float32 tensor) raised, and a whole model
    (OwlViT's text tower) had no float64 run at all."""
    float_, to = torch.Tensor.float, torch.Tensor.to
    default = torch.get_default_dtype()

    def exact(tensor: torch.Tensor) -> bool:
        # float64, or integers and booleans (a padding mask as ``attention_mask.float()``): in
        # the float32 run their cast gives the working precision, so in the reference float64
        return tensor.dtype == torch.float64 or not (tensor.is_floating_point() or tensor.is_complex())

    def keep_float(self, *args, **kwargs):
        if exact(self) and not args and not kwargs:
            return self if self.dtype == torch.float64 else self.double()
        return float_(self, *args, **kwargs)

    def keep_to(self, *args, **kwargs):
        if exact(self):
            if kwargs.get("dtype") is torch.float32:
                kwargs["dtype"] = torch.float64
            args = tuple(torch.float64 if a is torch.float32 else a for a in args)
        return to(self, *args, **kwargs)

    torch.Tensor.float, torch.Tensor.to = keep_float, keep_to
    torch.set_default_dtype(torch.float64)
    try:
        yield
    finally:
        torch.Tensor.float, torch.Tensor.to = float_, to
        torch.set_default_dtype(default)


def _reference_copy(module: nn.Module) -> nn.Module | None:
    try:
        return copy.deepcopy(module).double()
    except Exception:
        return None


def check_eval(pair: Pair, device: torch.device, tolerance: Tolerance,
               patched_context=None, original_context=None) -> Outcome:
    from contextlib import nullcontext

    pair.original.eval()
    pair.patched.eval()
    reference_module = _reference_copy(pair.original)
    torch.manual_seed(0)
    with torch.no_grad(), (original_context or nullcontext)():
        expected = run_quietly(lambda: pair.call.clone(device).run(pair.original))
    torch.manual_seed(0)
    try:
        with torch.no_grad(), (patched_context or nullcontext)():
            got = run_quietly(lambda: pair.call.clone(device).run(pair.patched))
    except Exception as exc:
        return Outcome(False, f"eval: the patched forward raised {type(exc).__name__}: {_first_line(exc)}", float("inf"))

    expected_tensors, got_tensors = flatten(expected), flatten(got)
    if pair.declined:
        # Told it need not hand some outputs back (the attention's probabilities), the patched
        # module returns None there: those are not compared, the rest must match.
        names = {name for name, _ in got_tensors}
        pair.dropped = {name for name, _ in expected_tensors if name not in names}
        expected_tensors = _kept(expected_tensors, pair.dropped)

    def reference():
        if reference_module is None:
            return None
        call = pair.call.clone(device)
        call = call.mapped(_double)
        torch.manual_seed(0)
        with torch.no_grad(), kept_double():
            return _kept(flatten(run_quietly(lambda: call.run(reference_module))), pair.dropped)

    outcome = compare_named(expected_tensors, got_tensors, "eval", tolerance, reference)
    outcome.compared = len(expected_tensors)
    floating = [t for _, t in expected_tensors if t.is_floating_point() and t.numel()]
    outcome.not_finite = bool(floating) and not any(bool(torch.isfinite(t).any()) for t in floating)
    return outcome


def _kept(outputs: list[tuple[str, torch.Tensor]], dropped: set) -> list[tuple[str, torch.Tensor]]:
    return [item for item in outputs if item[0] not in dropped] if dropped else outputs


def _loss(outputs: list[tuple[str, torch.Tensor]]) -> torch.Tensor | None:
    total = None
    generator = torch.Generator().manual_seed(4321)
    for _, tensor in outputs:
        if not (tensor.is_floating_point() and tensor.requires_grad):
            continue
        weight = torch.randn(tensor.shape, generator=generator, dtype=torch.float64).to(tensor.device, tensor.dtype)
        term = (tensor * weight).sum()
        total = term if total is None else total + term
    return total


def _train_step(module: nn.Module, call: Call, device: torch.device, double: bool = False, dropped: set = frozenset(),
                grad_inputs: bool = True):
    """One training step: forward in train mode, backward of a fixed random projection of the
    outputs. ``grad_inputs``: floating inputs require grad, so their gradients are compared too;
    off for a module that cannot train on such inputs (one that sets ``requires_grad`` on a tensor
    it computes from them, which torch allows only on a leaf)."""
    call = call.clone(device, grad=False)
    if double:
        call = call.mapped(_double)
    for tensor in call.leaves():
        if grad_inputs and tensor.is_floating_point():
            tensor.requires_grad_(True)
    module.train()
    module.zero_grad(set_to_none=True)
    torch.manual_seed(0)
    outputs = _kept(flatten(run_quietly(lambda: call.run(module))), dropped)
    loss = _loss(outputs)
    if loss is not None:
        loss.backward()
    inputs = [t for t in call.leaves() if t.is_floating_point() and t.requires_grad]
    return outputs, loss is not None, inputs


def _grads(module: nn.Module) -> list[tuple[str, torch.Tensor]]:
    out = []
    for name, param in module.named_parameters():
        grad = param.grad if param.grad is not None else torch.zeros_like(param)
        out.append((f"grad of {name}", grad))
    return out


def _input_grads(inputs: list[torch.Tensor]) -> list[tuple[str, torch.Tensor]]:
    return [(f"grad of input {i}", t.grad if t.grad is not None else torch.zeros_like(t)) for i, t in enumerate(inputs)]


def check_train(pair: Pair, device: torch.device, tolerance: Tolerance, patched_context=None,
                judge_failures=None) -> Outcome:
    """``patched_context`` wraps the patched module's training step (the line tracer: a patch
    under ``if self.training:`` runs only here).  ``judge_failures(original_error, patched_error)``
    says whether both failed their training step alike (``failures.compare_failures``)."""
    from contextlib import nullcontext

    from .hf import zero_dropout_config

    for module in (pair.original, pair.patched):
        zero_dropout(module)
    for config in pair.configs:
        zero_dropout_config(config)
    reference_module = _reference_copy(pair.original)
    cache: dict[str, list] = {}
    # The inputs require grad unless the original cannot take a training step that way and can
    # without (the only difference between the two tries): then input gradients are not compared.
    grad_inputs = True
    notes: list[str] = []
    try:
        expected, has_loss, inputs_o = _train_step(pair.original, pair.call, device, dropped=pair.dropped)
    except Exception as with_grad:
        try:
            expected, has_loss, inputs_o = _train_step(pair.original, pair.call, device, dropped=pair.dropped,
                                                       grad_inputs=False)
        except Exception:
            return _forward_only(pair, device, tolerance, with_grad, reference_module, patched_context,
                                 judge_failures)
        grad_inputs = False
        notes.append(f"input gradients not compared: with inputs that require grad the original's training "
                     f"step raised {type(with_grad).__name__}: {_first_line(with_grad)[:120]}")

    def reference(part: str):
        def get():
            if reference_module is None:
                return None
            if not cache:
                with kept_double():
                    outputs, _, inputs = _train_step(reference_module, pair.call, device, double=True,
                                                     dropped=pair.dropped, grad_inputs=grad_inputs)
                cache["outputs"] = outputs
                cache["inputs"] = _input_grads(inputs)
                cache["params"] = _grads(reference_module)
                cache["buffers"] = [(f"buffer {n}", t) for n, t in reference_module.named_buffers()]
            return cache[part]

        return get

    try:
        with (patched_context or nullcontext)():
            # (dropped on both sides: a guard may send a training step to the original path,
            # which computes the probabilities the fused path handed back as None in eval)
            got, _, inputs_p = _train_step(pair.patched, pair.call, device, dropped=pair.dropped,
                                           grad_inputs=grad_inputs)
    except Exception as exc:
        return Outcome(False, f"train: the patched forward/backward raised {type(exc).__name__}: {_first_line(exc)}",
                       float("inf"))
    outcome = compare_named(expected, got, "train outputs", tolerance, reference("outputs"))
    if not outcome.ok:
        return outcome
    notes.append(outcome.message)
    worst = outcome.max_abs_diff
    if has_loss:
        names_o = [n for n, _ in pair.original.named_parameters()]
        names_p = [n for n, _ in pair.patched.named_parameters()]
        if names_o != names_p:
            missing = sorted(set(names_o) - set(names_p))[:3]
            extra = sorted(set(names_p) - set(names_o))[:3]
            return Outcome(False, f"train: parameters differ (missing {missing}, extra {extra})", float("inf"))
        for what, a, b, part in (("input gradients", _input_grads(inputs_o), _input_grads(inputs_p), "inputs"),
                                 ("parameter gradients", _grads(pair.original), _grads(pair.patched), "params")):
            outcome = compare_named(a, b, f"train {what}", tolerance, reference(part))
            worst = max(worst, outcome.max_abs_diff)
            if not outcome.ok:
                return Outcome(False, outcome.message, worst)
            notes.append(outcome.message)
    buffers_o = [(f"buffer {n}", t) for n, t in pair.original.named_buffers()]
    buffers_p = [(f"buffer {n}", t) for n, t in pair.patched.named_buffers()]
    if [n for n, _ in buffers_o] == [n for n, _ in buffers_p]:
        outcome = compare_named(buffers_o, buffers_p, "train buffers", tolerance, reference("buffers"))
        worst = max(worst, outcome.max_abs_diff)
        if not outcome.ok:
            return Outcome(False, outcome.message, worst)
        notes.append(outcome.message)
    if not has_loss:
        notes.append("no differentiable output: gradients not compared")
    return Outcome(True, "; ".join(n for n in notes if n), worst)


class NeitherTrains(Exception):
    """The original cannot take a training step, and the patched module cannot either (pytext's
    ``q *= scaling`` on a ``chunk`` view is a line the patch leaves as it is): not the original's
    error alone, so no forward-only pass; training is not compared."""

    def __init__(self, original: Exception, patched: Exception):
        super().__init__(f"{type(original).__name__}: {_first_line(original)[:160]}")
        self.original = original
        self.patched = patched


def _forward_step(module: nn.Module, call: Call, device: torch.device, double: bool = False,
                  dropped: set = frozenset()) -> list[tuple[str, torch.Tensor]]:
    """A training-mode forward without autograd (dropout already zeroed, the seed fixed as in
    :func:`_train_step`): what an original that cannot take a training step computes in training."""
    call = call.clone(device, grad=False)
    if double:
        call = call.mapped(_double)
    module.train()
    torch.manual_seed(0)
    with torch.no_grad():
        return _kept(flatten(run_quietly(lambda: call.run(module))), dropped)


def _forward_only(pair: Pair, device: torch.device, tolerance: Tolerance, error: Exception,
                  reference_module: nn.Module | None, patched_context=None, judge_failures=None) -> Outcome:
    """The original raised in its training step with and without input gradients (pytext's
    ``q *= scaling`` on a ``chunk`` view, which autograd refuses): training cannot be compared.
    Where that error is the original's alone -- its training-mode forward runs without autograd,
    and the patched module takes a whole training step, backward included, on the same inputs --
    the train-mode outputs are compared and the outcome says it was forward only (lead ruling,
    session 37).  Where the patched module fails too, ``judge_failures`` decides (lead ruling,
    session 37): the same error type at the same line, one the patch left as it is, compares
    both training-mode forwards without autograd (forward only, "neither trains"); a failure at
    another line or of another type is the patch's (a failure); where the lines cannot be placed,
    training is not compared (``NeitherTrains``, a skip).  Anything else re-raises the original's
    error.  A wrong patch still differs in these outputs (and in eval, checked before)."""
    from contextlib import nullcontext

    try:
        expected = _forward_step(pair.original, pair.call, device, dropped=pair.dropped)
    except Exception:
        raise error from None
    why = f"{type(error).__name__}: {_first_line(error)[:160]}"
    has_loss = False  # (stays False where the patched module cannot train either)
    try:
        with (patched_context or nullcontext)():
            got, has_loss, _ = _train_step(pair.patched, pair.call, device, dropped=pair.dropped)
    except Exception as patched_error:
        judged = judge_failures(error, patched_error) if judge_failures is not None else None
        if judged is None:
            raise NeitherTrains(error, patched_error) from None
        if isinstance(judged, str):
            return Outcome(False, f"train: {judged}", float("inf"))
        why = judged.reason()
        with (patched_context or nullcontext)():
            got = _forward_step(pair.patched, pair.call, device, dropped=pair.dropped)
    if has_loss:  # (the patched module trained: every parameter the original's outputs use gets a gradient)
        unsound = _ungraded_parameters(pair, device, tolerance, expected)
        if unsound:
            return Outcome(False, f"train (forward only): {unsound}", float("inf"))

    def reference():
        if reference_module is None:
            return None
        with kept_double():
            return _forward_step(reference_module, pair.call, device, double=True, dropped=pair.dropped)

    outcome = compare_named(expected, [(n, t.detach()) for n, t in got], "train-mode outputs", tolerance, reference)
    if not outcome.ok:
        return outcome
    return Outcome(True, outcome.message, outcome.max_abs_diff, forward_only=why)


def _ungraded_parameters(pair: Pair, device: torch.device, tolerance: Tolerance, expected: list) -> str:
    """Why the patched module's backward does not train what the original's forward reaches
    ("" when it does): where gradients cannot be compared (:func:`_forward_only`), equal outputs
    alone would pass a patch that detaches a layer (same values, the layer never trains).  Every
    parameter the patched backward gives a gradient must get a finite one; one it gives none
    must be one the original's outputs do not depend on: all of those perturbed together in the
    original, its train-mode outputs stay as they were (one extra forward, only where some
    parameter got no gradient; restored after)."""
    ungraded = []
    for name, param in pair.patched.named_parameters():
        if not param.requires_grad:
            continue
        if param.grad is None:
            ungraded.append(name)
        elif param.grad.is_floating_point() and not bool(torch.isfinite(param.grad).all()):
            return f"the patched backward gives `{name}` a gradient that is not finite"
    originals = dict(pair.original.named_parameters())
    touched = [(name, originals[name]) for name in ungraded if name in originals]
    if not touched:
        return ""
    kept = [param.detach().clone() for _, param in touched]
    generator = torch.Generator(device="cpu").manual_seed(1)
    try:
        with torch.no_grad():
            for _, param in touched:
                noise = torch.randn(param.shape, generator=generator, dtype=torch.float64)
                param.add_((noise * (1.0 + param.detach().abs().double().cpu())).to(param.device, param.dtype))
        moved = _forward_step(pair.original, pair.call, device, dropped=pair.dropped)
    finally:
        with torch.no_grad():
            for (_, param), value in zip(touched, kept):
                param.copy_(value)
    if compare_named(expected, moved, "perturbed outputs", tolerance).ok:
        return ""
    names = ", ".join(f"`{name}`" for name, _ in touched[:3])
    return (f"the patched backward gives no gradient to {names}{' ...' if len(touched) > 3 else ''}, "
            f"on which the original's outputs depend")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else ""
