"""One rule through the benchmark: its fixtures, patched by ``fix``, checked equal, then timed.

For each fixture that declares the rule, each of its cases and each mode the rule claims on the
device (its ``helps`` list; ``all_modes`` adds the unclaimed ones, marked so):

1. the original and the patched module are built from the two imported files, the patched one
   loads the original's state dict with ``strict=True`` (the same weights; a patch that
   renames parameters fails here);
2. they must compute the same thing, compared in float64 (``torch.testing.assert_close`` with
   float64's default tolerances): eval-mode outputs, and the gradients of a fixed random
   projection of the outputs with respect to every parameter and the activation inputs;
   train mode too unless the fixture has dropout (``RANDOM_IN_TRAINING``).  A benchmark of two
   different computations says nothing, so a mismatch is an error row, never a ratio;
3. the two are timed in interleaved pairs (:mod:`.stats`) in the timing dtype: *inference* is
   ``eval()`` under ``torch.no_grad()``, *training* is ``train()`` with forward and backward
   (gradients reset between calls), or, for an optimizer fixture, one ``optimizer.step()``;
   then peak memory of one call (:mod:`.timing`), and in training the bytes saved for backward.

A rule whose patched code runs only elsewhere (``only_on``), or whose claims are all for other
hardware, gets a row saying "not measured on its hardware" and no ratio, whatever the options.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from adopter.measured import declared

from . import stats, timing
from .fixtures import Fixture, FixtureError, ModulePair, patched_source

MODES = ("inference", "training")


@dataclass
class Settings:
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    dtype: torch.dtype = torch.float32
    threads: int = 1
    min_run_time: float = 0.2
    min_pairs: int = 7
    max_pairs: int = 21
    wide: float = 0.10  # take more pairs while the relative IQR of the ratios exceeds this
    drift_limit: float = 0.10
    quick: bool = False
    all_modes: bool = False
    memory: bool = True
    cpu_time: bool = False  # CPU: time.thread_time instead of the wall clock (needs threads == 1)


@dataclass
class Row:
    rule: str
    status: str  # "measured", or why there is no ratio
    fixture: str = ""
    case: str = ""
    mode: str = ""
    claimed: bool = True
    shapes: str = ""
    result: stats.PairResult | None = None
    peak_bytes: tuple[int | None, int | None] = (None, None)
    saved_bytes: tuple[int | None, int | None] = (None, None)
    applied: int = 0  # findings fix rewrote in the fixture
    checked_in: str = ""  # the dtype outputs and gradients were compared in

    @property
    def memory_ratio(self) -> float | None:
        a, b = self.peak_bytes
        return a / b if a and b else None

    def as_dict(self) -> dict:
        out = {k: v for k, v in dataclasses.asdict(self).items() if k != "result"}
        out["result"] = self.result.as_dict() if self.result else None
        out["memory_ratio"] = self.memory_ratio
        return out


class Mismatch(Exception):
    """The patched module does not compute what the original does."""


# ------------------------------------------------------------------------------ tensors


def flatten(value) -> list[torch.Tensor]:
    """Floating tensors of a forward's result (tensor, tuple/list/dict of them, ModelOutput)."""
    if isinstance(value, torch.Tensor):
        return [value] if value.is_floating_point() else []
    if isinstance(value, dict):
        return [t for v in value.values() for t in flatten(v)]
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in flatten(v)]
    return []


def cast(values, device: torch.device, dtype: torch.dtype) -> tuple:
    return tuple(v.to(device=device, dtype=dtype) if isinstance(v, torch.Tensor) and v.is_floating_point()
                 else (v.to(device) if isinstance(v, torch.Tensor) else v) for v in values)


def grad_inputs(module, values: tuple) -> tuple[int, ...]:
    chosen = getattr(module, "GRAD_INPUTS", None)
    if chosen is not None:
        return tuple(i for i in chosen if i < len(values) and isinstance(values[i], torch.Tensor)
                     and values[i].is_floating_point())
    first = next((i for i, v in enumerate(values) if isinstance(v, torch.Tensor) and v.is_floating_point()), None)
    return () if first is None else (first,)


def with_grad(values: tuple, indices: tuple[int, ...]) -> tuple:
    return tuple(v.detach().clone().requires_grad_() if i in indices else v for i, v in enumerate(values))


def projection(sample, seed: int = 1234) -> Callable[[object], torch.Tensor]:
    """A fixed random linear functional of the outputs: a loss whose gradient is not the
    trivial all-ones (softmax rows sum to 1, so ``out.sum()`` has zero gradient)."""
    generator = torch.Generator().manual_seed(seed)
    weights = [torch.randn(t.shape, generator=generator).to(t.device, t.dtype) for t in flatten(sample)]

    def loss(out) -> torch.Tensor:
        return sum((t * w).sum() for t, w in zip(flatten(out), weights))

    return loss


def shapes_of(case: dict, values: tuple) -> str:
    dims = " ".join("(" + ",".join(map(str, v.shape)) + ")" for v in values if isinstance(v, torch.Tensor))
    return f"inputs {dims}" if dims else ""


# ------------------------------------------------------------------------------ equality


def _build_pair(pair: ModulePair, case: dict) -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(0)
    original = pair.original.build(case)
    torch.manual_seed(0)
    patched = pair.patched.build(case)
    try:
        patched.load_state_dict(original.state_dict(), strict=True)
    except RuntimeError as exc:
        raise Mismatch(f"the patched module does not load the original's state dict strictly: {exc}") from None
    return original, patched


# torch.testing.assert_close's default (rtol, atol) per dtype
TOLERANCES = {torch.float64: (1e-7, 1e-7), torch.float32: (1.3e-6, 1e-5), torch.float16: (1e-3, 1e-5),
              torch.bfloat16: (1.6e-2, 1e-5)}


def _close(label: str, a, b, tolerance: torch.dtype = torch.float64, rows: int = 1) -> None:
    """``assert_close`` with ``tolerance``'s default (rtol, atol).  When that dtype is not
    float64 (the original rounds through float32 by design, or a kernel has no float64), an
    element may also differ by the rounding of a sum over ``rows`` terms of the tensor's own
    scale: unit roundoff x sqrt(rows) x max|expected| (weight gradients sum over every token;
    two summation orders of float32 terms differ by about that much)."""
    ta, tb = flatten(a), flatten(b)
    if len(ta) != len(tb):
        raise Mismatch(f"{label}: {len(ta)} tensors vs {len(tb)}")
    rtol, atol = TOLERANCES[tolerance]
    for index, (x, y) in enumerate(zip(ta, tb)):
        bound = atol
        if tolerance != torch.float64 and x.numel():
            bound = max(atol, torch.finfo(tolerance).eps / 2 * rows ** 0.5 * float(x.detach().abs().max()))
        try:
            torch.testing.assert_close(y, x, rtol=rtol, atol=bound)
        except AssertionError as exc:
            raise Mismatch(f"{label} #{index}: {str(exc).splitlines()[0]}") from None


def _forward_backward(model: nn.Module, values: tuple, indices, loss) -> tuple:
    leaves = with_grad(values, indices)
    model.zero_grad(set_to_none=True)
    out = model(*leaves)
    loss(out).backward()
    grads = [p.grad for _, p in sorted(model.named_parameters()) if p.grad is not None]
    return out, grads + [leaves[i].grad for i in indices]


def check_equal(pair: ModulePair, case: dict, device: torch.device) -> str:
    """Raise :class:`Mismatch` unless the patched module computes what the original does;
    return the dtype the comparison ran in.

    Both run in float64 and are compared with float64's tolerances, unless the case says the
    original itself rounds through a narrower dtype (``"rounds_through": "float32"``: T5 casts
    its scores to float32 for the softmax whatever the model's dtype); then that dtype's
    tolerances apply, since that is all the original computes to.  Where a kernel has no
    float64 implementation (some GPU kernels), the comparison runs in float32 with float32's
    tolerances instead, and the row says so.
    """
    tol = getattr(torch, case.get("rounds_through", "float64"))
    try:
        _check_in(pair, case, device, torch.float64, tol)
        return "float64"
    except Mismatch:
        raise
    except (RuntimeError, NotImplementedError, TypeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    wider = tol if TOLERANCES[tol] > TOLERANCES[torch.float32] else torch.float32
    _check_in(pair, case, device, torch.float32, wider)
    return f"float32 (float64 raised: {first[:80]})"


def _check_in(pair: ModulePair, case: dict, device: torch.device, dtype: torch.dtype, tol: torch.dtype) -> None:
    if hasattr(pair.original, "build_optimizer"):
        return _check_optimizer(pair, case, device, dtype, tol)
    original, patched = _build_pair(pair, case)
    torch.manual_seed(1)
    values = cast(pair.original.inputs(case), device, dtype)
    original.to(device=device, dtype=dtype)
    patched.to(device=device, dtype=dtype)
    indices = grad_inputs(pair.original, values)
    first = next((v for v in values if isinstance(v, torch.Tensor)), None)
    rows = max(1, first[..., 0].numel()) if first is not None and first.dim() else 1  # tokens
    original.eval()
    patched.eval()
    with torch.no_grad():
        expected = original(*values)
        _close("eval output", expected, patched(*values), tol, rows)
    loss = projection(expected)
    _close("eval gradient", _forward_backward(original, values, indices, loss)[1],
           _forward_backward(patched, values, indices, loss)[1], tol, rows)
    if not getattr(pair.original, "RANDOM_IN_TRAINING", False):
        original.train()
        patched.train()
        torch.manual_seed(2)
        out_a, grads_a = _forward_backward(original, values, indices, loss)
        torch.manual_seed(2)
        out_b, grads_b = _forward_backward(patched, values, indices, loss)
        _close("train output", out_a, out_b, tol, rows)
        _close("train gradient", grads_a, grads_b, tol, rows)


def _optimizer_models(pair: ModulePair, case: dict, device: torch.device, dtype: torch.dtype):
    """Two copies of the fixture's model with the same gradients, and each file's optimizer over one."""
    torch.manual_seed(0)
    model_a = pair.original.build(case).to(device=device, dtype=dtype)
    model_b = copy.deepcopy(model_a)
    torch.manual_seed(1)
    values = cast(pair.original.inputs(case), device, dtype)
    for model in (model_a, model_b):
        out = model(*values)
        projection(out)(out).backward()
    return model_a, model_b, pair.original.build_optimizer(model_a, case), pair.patched.build_optimizer(model_b, case)


def _check_optimizer(pair: ModulePair, case: dict, device: torch.device, dtype: torch.dtype,
                     tol: torch.dtype) -> None:
    model_a, model_b, opt_a, opt_b = _optimizer_models(pair, case, device, dtype)
    for _ in range(3):
        opt_a.step()
        opt_b.step()
    _close("parameters after 3 steps", [p for p in model_a.parameters()], [p for p in model_b.parameters()], tol)


# ------------------------------------------------------------------------------ timing


def _timed_functions(pair: ModulePair, case: dict, mode: str, settings: Settings):
    """(original fn, patched fn, shapes) for one mode, with everything built and warmed."""
    device, dtype = settings.device, settings.dtype
    if hasattr(pair.original, "build_optimizer"):
        if mode != "training":
            return None
        model_a, _, opt_a, opt_b = _optimizer_models(pair, case, device, dtype)
        count = sum(p.numel() for p in model_a.parameters())
        return opt_a.step, opt_b.step, f"{count / 1e6:.1f}M parameters, step() with gradients in place"
    original, patched = _build_pair(pair, case)
    original.to(device=device, dtype=dtype)
    patched.to(device=device, dtype=dtype)
    torch.manual_seed(1)
    values = cast(pair.original.inputs(case), device, dtype)
    shapes = shapes_of(case, values)
    if mode == "inference":
        original.eval()
        patched.eval()

        def infer(model):
            def run():
                with torch.no_grad():
                    return model(*values)
            return run

        return infer(original), infer(patched), shapes
    original.train()
    patched.train()
    indices = grad_inputs(pair.original, values)
    with torch.no_grad():
        loss = projection(original(*values))

    def step(model):
        leaves = with_grad(values, indices)
        grads = [leaves[i] for i in indices]

        def run():
            model.zero_grad(set_to_none=True)
            for leaf in grads:
                leaf.grad = None
            loss(model(*leaves)).backward()
        return run

    return step(original), step(patched), shapes


def modes_for(rule, device_type: str, all_modes: bool) -> tuple[list[tuple[str, bool]], str]:
    """[(mode, claimed)] to measure for ``rule`` on ``device_type``, or why none."""
    if rule.only_on and device_type not in rule.only_on:
        return [], f"not measured on its hardware (patched code runs on {'/'.join(rule.only_on)} only)"
    claims = declared(rule.helps).get(device_type, ())
    if rule.helps and not claims:  # every claim is for other hardware: no ratio here, ever
        return [], f"not measured on its hardware (claims {', '.join(rule.helps)})"
    if all_modes:  # the unclaimed modes too (marked; they never count), also for a rule claiming nothing
        return [(m, m in claims) for m in MODES], ""
    if not claims:
        return [], "claims no target: nothing to measure (--all-modes times it anyway)"
    return [(m, True) for m in MODES if m in claims], ""


class Harness:
    """Runs rules through fixtures; ``clock`` (``measure(fn) -> seconds``) is the timing boundary."""

    def __init__(self, settings: Settings, clock: Callable[[Callable[[], object]], float] | None = None,
                 progress: Callable[[str], None] | None = None):
        self.settings = settings
        if clock is None:
            if settings.device.type == "cuda":
                clock = timing.cuda_clock(settings.min_run_time, settings.device)
            else:
                clock = timing.cpu_clock(settings.min_run_time, settings.threads, settings.cpu_time)
        self.clock = clock
        self.progress = progress or (lambda message: None)

    def run_rule(self, rule, fixtures: list[Fixture]) -> list[Row]:
        modes, reason = modes_for(rule, self.settings.device.type, self.settings.all_modes)
        if not modes:
            return [Row(rule.id, reason)]
        if not rule.fixable:
            return [Row(rule.id, "report only: no patch to time")]
        mine = [f for f in fixtures if rule.id in f.rules]
        if not mine:
            return [Row(rule.id, "no fixture declares this rule")]
        rows: list[Row] = []
        for fixture in mine:
            rows += self._run_fixture(rule, fixture, modes)
        return rows

    def _run_fixture(self, rule, fixture: Fixture, modes) -> list[Row]:
        name = fixture.path.name
        try:
            text, applied, skipped = patched_source(fixture, rule)
        except FixtureError as exc:
            return [Row(rule.id, f"error: {exc}", name)]
        if not applied:
            why = "; ".join(f"line {f.line}: {reason}" for f, reason in skipped) or "no finding"
            return [Row(rule.id, f"error: fix did not apply the rule to the fixture ({why})", name)]
        rows: list[Row] = []
        try:
            pair = ModulePair(fixture, text)
        except FixtureError as exc:
            return [Row(rule.id, f"error: {exc}", name, applied=len(applied))]
        with pair:
            cases = [c for c in pair.original.cases(self.settings.quick) if c.get("rule", rule.id) == rule.id]
            for case in cases:
                try:
                    checked = check_equal(pair, case, self.settings.device)
                except Mismatch as exc:
                    rows.append(Row(rule.id, f"error: not equal: {exc}", name, case["name"], applied=len(applied)))
                    continue
                except Exception as exc:  # the fixture or the patched code raised: a row, not a crash
                    rows.append(Row(rule.id, f"error: equality check raised {type(exc).__name__}: {exc}", name,
                                    case["name"], applied=len(applied)))
                    continue
                for mode, claimed in modes:
                    if mode == "inference" and hasattr(pair.original, "build_optimizer"):
                        continue  # an optimizer step has no inference mode
                    self.progress(f"{rule.id} {case['name']} {mode}")
                    try:
                        rows.append(self._measure(rule, pair, case, mode, claimed, name, len(applied)))
                        rows[-1].checked_in = checked
                    except Exception as exc:
                        rows.append(Row(rule.id, f"error: timing raised {type(exc).__name__}: {exc}", name,
                                        case["name"], mode, claimed, applied=len(applied)))
        return rows

    def _measure(self, rule, pair: ModulePair, case: dict, mode: str, claimed: bool, name: str, applied: int) -> Row:
        s = self.settings
        built = _timed_functions(pair, case, mode, s)
        if built is None:
            return Row(rule.id, f"an optimizer fixture has no {mode} mode", name, case["name"], mode, claimed)
        fn_a, fn_b, shapes = built
        for fn in (fn_a, fn_b, fn_a, fn_b):  # warm-up: lazy initialisation, allocator, caches
            fn()
        timing.synchronize(s.device)
        result = stats.run_pairs(self.clock, fn_a, fn_b, s.min_pairs, s.max_pairs, s.wide, s.drift_limit)
        row = Row(rule.id, "measured", name, case["name"], mode, claimed, shapes, result, applied=applied)
        if s.memory:
            row.peak_bytes = (timing.peak_memory(fn_a, s.device), timing.peak_memory(fn_b, s.device))
            if mode == "training" and not hasattr(pair.original, "build_optimizer"):
                row.saved_bytes = (timing.saved_tensor_bytes(fn_a), timing.saved_tensor_bytes(fn_b))
        return row

