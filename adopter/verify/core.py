"""``verify_file``: prove every synthesized patch of one file on the real module, then time it.

For a file: analyse it, synthesize the patch of each rule alone (one rule at a time, so every
patch is verified on its own) and of all rules together, import the original module and each
patched text side by side (``loader.py``), and for every class a finding belongs to build the
original and the patched class with the same arguments (``build.py``), load the original's
state dict into the patched one with ``strict=True``, compare eval outputs and training outputs,
gradients and buffers (``compare.py``), check that the edited lines actually ran
(``trace.py``), and time both (``bench.py``).  A finding whose edited lines do not run with the
default build is retried with one flag flipped at a time (a config boolean the class reads, a
boolean argument of ``__init__`` or ``forward``), e.g. GPT-2's ``reorder_and_upcast_attn``.

The patches of all rules together are verified on the model as a whole: for a Hugging Face
file the base model class (``BertModel`` for ``BertPreTrainedModel``), otherwise the outermost
classes of the file that contain a patched class.
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import inspect
import sys
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import torch

from ..config import Config
from ..engine import AnalysisError, analyze
from ..match import Match
from ..ruleset import Rule
from ..source import SourceError, read_source
from ..structure import package_of
from ..structure.model import SEQUENTIAL_OWNER
from . import branches, hf, memory
from .bench import measure
from .inputs import SHARED_BIAS, met_inputs, shared_bias, shrunk_inputs
from .build import (
    Broken,
    Builder,
    Pair,
    Skip,
    Variant,
    blind_rows,
    draw_constants,
    filled_empty,
    flipped_masks,
    has_full_rows,
    has_two_valued,
    mixed_rows,
    run_quietly,
)
from .calls import NotACallPatch, check_optimizer_patch
from .compare import NeitherTrains, Tolerance, check_eval, check_train
from .failures import compare_failures
from .loader import LoadError, ModuleLoader
from .parallel import Groups
from .result import FAIL, PASS, SKIP, VerifyResult
from .sizes import BENCHMARK, VERIFY, Sizes
from .stubs import left_out_used
from .trace import CallRecorder, LineTracer

FixFn = Callable[..., Any]


class VerifyError(Exception):
    """The file cannot be verified at all (unreadable, unparsable, bad configuration)."""


# ----------------------------------------------------------------------------- options


@dataclass
class Options:
    device: torch.device
    tolerance: Tolerance
    benchmark: bool = True
    min_run_time: float = 0.2
    memory: bool = True
    sizes: Sizes = VERIFY
    bench_sizes: Sizes = BENCHMARK
    factories: dict[str, str] = field(default_factory=dict)
    root: str | None = None
    combined: bool = True
    threads: int | None = None
    memory_limit: int | None = None  # the memory ceiling in force while verify runs (memory.py)


def _device(value: Any) -> torch.device:
    name = str(value or "auto").lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise VerifyError(f"[tool.adopter.verify] device {value!r} is not a torch device") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise VerifyError("[tool.adopter.verify] device is cuda but CUDA is not available")
    return device


def options_for(config: Config | None, benchmark: bool = True, device: str | None = None) -> Options:
    section = dict(getattr(config, "verify", None) or {})
    known = {"device", "rtol", "atol", "min-run-time", "memory", "sizes", "benchmark-sizes", "factories",
             "combined", "benchmark", "threads"}
    unknown = sorted(set(section) - known)
    if unknown:
        raise VerifyError(f"[tool.adopter.verify]: unknown key(s) {', '.join(unknown)}")
    try:
        sizes = VERIFY.with_overrides(dict(section.get("sizes", {})))
        bench_sizes = BENCHMARK.with_overrides(dict(section.get("benchmark-sizes", {})))
    except (TypeError, ValueError) as exc:
        raise VerifyError(f"[tool.adopter.verify] sizes: {exc}") from None
    factories = section.get("factories", {})
    if not isinstance(factories, dict) or not all(isinstance(v, str) for v in factories.values()):
        raise VerifyError('[tool.adopter.verify] factories must map "module.Class" to "module:function"')
    for key in ("rtol", "atol", "min-run-time"):
        if key in section and not isinstance(section[key], (int, float)):
            raise VerifyError(f"[tool.adopter.verify] {key} must be a number")
    root = str(config.root) if config is not None and config.root is not None else None
    return Options(
        device=_device(device or section.get("device")),
        tolerance=Tolerance(section.get("rtol"), section.get("atol")),
        benchmark=benchmark and bool(section.get("benchmark", True)),
        min_run_time=float(section.get("min-run-time", 0.2)),
        memory=bool(section.get("memory", True)),
        sizes=sizes,
        bench_sizes=bench_sizes,
        factories=dict(factories),
        root=root,
        combined=bool(section.get("combined", True)),
        threads=_threads(section.get("threads")),
    )


def _threads(value: Any) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise VerifyError("[tool.adopter.verify] threads must be a positive integer")
    return value


# ----------------------------------------------------------------------------- sites


@dataclass(eq=False)
class Site:
    """One finding to verify: where it is, and which lines its patch edited."""

    rule: Rule
    match: Match
    line: int
    class_name: str
    anchors: set[int]
    edited: set[int] = field(default_factory=set)
    owner: str | None = ""  # what is built: the class, "function:<name>", or None (top-level script code)

    def __post_init__(self) -> None:
        if self.owner == "":
            self.owner = self.class_name


def _lines_of(span) -> set[int]:
    if not span:
        return set()
    return set(range(span[0], max(span[0], span[2]) + 1))


def _anchors(match: Match) -> set[int]:
    lines: set[int] = set()
    for node in match.nodes:
        lines |= _lines_of(node.stmt) | _lines_of(node.span)
    for _, ctor in match.ctors:
        # and the container the layers sit in when it is written apart from them: an
        # ``nn.Sequential`` subclass whose ``__init__`` passes them to ``super().__init__(conv,
        # bn, act)`` is fixed by rebasing the class, a line no layer constructor is on
        lines |= _lines_of(ctor.stmt) | _lines_of(ctor.container)
    return lines


def map_edits(original: str, patched: str, sites: list[Site]) -> None:
    """Give each site the lines of ``patched`` (1-based) that replace its anchor lines."""
    a = original.splitlines()
    b = patched.splitlines()
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        old = set(range(i1 + 1, i2 + 1)) or {i1, i1 + 1}
        new = set(range(j1 + 1, j2 + 1)) or {j1, j1 + 1}
        for site in sites:
            if site.anchors & old:
                site.edited |= new


def _result(site_or_rule, path: str, line: int, class_name: str, verdict: str, reason: str, device: str,
            **extra) -> VerifyResult:
    rule = site_or_rule.rule.id if isinstance(site_or_rule, Site) else str(site_or_rule)
    combined = not isinstance(site_or_rule, Site)
    return VerifyResult(rule=rule, path=path, line=line, class_name=class_name, verdict=verdict, reason=reason,
                        device=device, combined=combined, **extra)


def _span_text(lines: Iterable[int]) -> str:
    ordered = sorted(lines)
    if not ordered:
        return "?"
    return str(ordered[0]) if ordered[0] == ordered[-1] else f"{ordered[0]}-{ordered[-1]}"


# ----------------------------------------------------------------------------- one subject


@dataclass
class Verdict:
    verdict: str
    reason: str
    max_abs_diff: float | None = None
    timing: Any = None
    details: dict = field(default_factory=dict)
    variant: Variant | None = None  # the build variant that reached the patch (for the combined check)


def _loads_after_a_run(pair, device, exc: Exception) -> bool:
    """The original's state_dict did not load into the patched module for a size mismatch only,
    and the original already ran (the input search runs it): a forward that stores a buffer of
    another shape (FasterViT's position bias caches ``self.relative_bias = self.pos_emb``, sized
    by the tokens it was handed) leaves the original's state shaped by that run.  Run the
    patched module once on the same inputs, as the original was, and load again (strict);
    False when it still does not load (or the run raises)."""
    if "size mismatch" not in str(exc) or "Missing key" in str(exc) or "Unexpected key" in str(exc):
        return False
    try:
        with torch.no_grad():
            run_quietly(lambda: pair.call.clone(device).run(pair.patched))
        pair.patched.load_state_dict(pair.original.state_dict(), strict=True)
    except Exception:
        return False
    return True


def _copy_unsaved_buffers(original, patched) -> None:
    """Give the patched module the original's non-persistent buffers too (``register_buffer(...,
    persistent=False)``: no state dict carries them).  The input search runs the original alone,
    and a forward that writes into such a buffer (a KV cache, ``self.kv_cache[:bsz, :end] = kv``
    in DeepSeek-style MLA) leaves rows there that the patched module, built fresh, lacks: the two
    would then differ in the buffers a training step compares, whatever the patch computes.  Only
    a buffer of the same name, shape and dtype on both sides is copied."""
    saved = original.state_dict(keep_vars=True)
    mine = dict(patched.named_buffers())
    with torch.no_grad():
        for name, buffer in original.named_buffers():
            if name in saved or buffer is None:
                continue
            other = mine.get(name)
            if other is not None and other.shape == buffer.shape and other.dtype == buffer.dtype:
                other.copy_(buffer)
    _copy_tensor_attributes(original, patched)


def _copy_tensor_attributes(original, patched) -> None:
    """The same for tensors held in plain attributes, neither parameter nor buffer (pero-ocr-style
    ``self.linear_cache = torch.empty(...)``, made by the first forward the input search ran on
    the original): where the patched module's attribute of that name is None, missing or a tensor
    of the same shape and dtype, it gets a copy of the original's, so the two start from the same
    state."""
    theirs = dict(patched.named_modules())
    for name, module in original.named_modules():
        other = theirs.get(name)
        if other is None or type(other).__name__ != type(module).__name__:
            continue
        for attr, value in list(vars(module).items()):
            if attr.startswith("_") or not isinstance(value, torch.Tensor) or isinstance(value, torch.nn.Parameter):
                continue
            held = vars(other)
            mine = held.get(attr)
            if mine is None:
                # The patched module, built fresh, holds none: the original's is what a run left
                # (a cache or mask its forward builds when it finds none).  Copying it would let
                # the patched forward skip its own (patched) builder, so the original goes back
                # to the fresh state instead and both build theirs on the compared run.
                if attr in held:
                    setattr(module, attr, None)
                else:
                    delattr(module, attr)
            elif isinstance(mine, torch.Tensor) and not isinstance(mine, torch.nn.Parameter) \
                    and mine.shape == value.shape and mine.dtype == value.dtype:
                with torch.no_grad():
                    setattr(other, attr, value.detach().clone())


def _compares_two_names(test: ast.expr) -> bool:
    """Is ``test`` a comparison of two different names or attribute chains (``kv_heads <
    n_heads``, ``self.kv_heads < self.heads``, ``1 < kv < n``), or an ``and`` / ``or`` of
    comparisons of names, attribute chains and numbers of which one compares two different names
    (``kv > 1 and kv < n``)?  Such an ``if`` picks its branch by configuration numbers the inputs
    tried may fix to one value (mend70's grouped heads)."""

    def operand(node) -> str | None:
        chain = node
        while isinstance(chain, ast.Attribute):
            chain = chain.value
        return ast.unparse(node) if isinstance(chain, ast.Name) else None

    def number(node) -> bool:
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            node = node.operand
        return isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) \
            and not isinstance(node.value, bool)

    def names(node) -> set[str] | None:
        """The names a comparison of names and numbers compares, or None for any other test."""
        if not isinstance(node, ast.Compare):
            return None
        out = set()
        for side in (node.left, *node.comparators):
            name = operand(side)
            if name is not None:
                out.add(name)
            elif not number(side):
                return None
        return out

    if isinstance(test, ast.BoolOp):
        terms = [names(value) for value in test.values]
        return all(t is not None for t in terms) and any(len(t) >= 2 for t in terms)
    found = names(test)
    return found is not None and len(found) >= 2


class _Checker:
    """Verifies classes of one patched module against the original module."""

    def __init__(self, path: str, original, patched, patched_file: str, builder: Builder,
                 bench_builder: Builder, options: Options, patched_text: str = "", original_text: str = ""):
        self.path = path
        self.patched_text = patched_text
        self.original_text = original_text
        self._patched_tree: ast.Module | None = None  # parsed once, for _header_lines
        self.ran: set[int] = set()  # lines of the patched file the last check executed
        self.given: set[str] = set()  # the forward arguments the last check passed (not None)
        self.full_rows = False  # whether a boolean mask the last check passed hides a whole row
        self.two_valued = False  # whether the last check passed a floating 0/1 mask (flipped_masks)
        self.configs: list = []  # the config objects the last check's build was handed
        self.original = original
        self.patched = patched
        self.patched_file = patched_file
        self.builder = builder
        self.bench_builder = bench_builder
        self.options = options

    @property
    def limit(self) -> int | None:
        """The memory ceiling builds run under (None: none set)."""
        return self.options.memory_limit

    def check(self, class_name: str, sites: list[Site], variant: Variant) -> tuple[dict[Site, Verdict], str | None]:
        """Verdicts for the sites reached in this variant; the second value is a skip reason for all."""
        self.ran = set()
        self.full_rows = False
        self.two_valued = False
        self.configs = []
        with self.builder.flags(variant, self.patched):
            try:
                verdicts, reason = self._check(class_name, sites, variant)
            except Exception as exc:  # a build or run refused by the memory ceiling: a skip, said so
                if not memory.out_of_memory(exc):
                    raise
                memory.take_refusals()
                return {}, memory.skip_reason(self.limit)
        if reason is not None and memory.ENV not in reason:
            refused = memory.take_refusals()
            if refused:  # the build loops went on past a refused try and then gave up
                reason += refused_note(self.limit, len(refused))
        return verdicts, reason

    def _check(self, class_name: str, sites: list[Site], variant: Variant) -> tuple[dict[Site, Verdict], str | None]:
        options = self.options
        device = options.device
        ctor_lines = LineTracer(self.patched_file)
        try:
            pair = self.builder.build(class_name, self.patched, variant, patched_context=lambda: ctor_lines)
        except Skip as exc:
            return {}, str(exc)
        except Broken as exc:
            return {site: Verdict(FAIL, str(exc)) for site in sites}, None
        ctor_lines.lines |= self._header_lines(class_name)
        self.configs = list(pair.configs)
        if variant.mixed_rows:
            pair.call = dataclasses.replace(pair.call, args=mixed_rows(pair.call.args),
                                            kwargs=mixed_rows(pair.call.kwargs))
        if variant.blind_rows:
            args, kwargs = blind_rows(pair.call.args), blind_rows(pair.call.kwargs)
            if not has_full_rows((args, kwargs)):
                return {}, "no boolean mask to hide a row of"
            pair.call = dataclasses.replace(pair.call, args=args, kwargs=kwargs)
        if variant.flipped_masks:
            pair.call = dataclasses.replace(pair.call, args=flipped_masks(pair.call.args),
                                            kwargs=flipped_masks(pair.call.kwargs))
        self.full_rows = has_full_rows((pair.call.args, pair.call.kwargs))
        self.two_valued = has_two_valued((pair.call.args, pair.call.kwargs))
        pair.original.to(device)
        pair.patched.to(device)
        draw_constants(pair.original)  # a zero gate or fresh batch-norm statistics would hide a wrong patch
        try:
            missing = pair.patched.load_state_dict(pair.original.state_dict(), strict=True)
            del missing
        except Exception as exc:
            reason = "the original's state_dict does not load into the patched class with strict=True: " + \
                     " ".join(str(exc).split())[:300]
            if not _loads_after_a_run(pair, device, exc):
                return {site: Verdict(FAIL, reason) for site in sites}, None
        _copy_unsaved_buffers(pair.original, pair.patched)
        forward_lines = LineTracer(self.patched_file)
        calls_patched = CallRecorder()
        calls_original = CallRecorder()
        edited = (self.patched_file, set().union(*(site.edited for site in sites)))

        @contextmanager
        def patched_context():
            with forward_lines, calls_patched:
                yield

        try:
            with _deterministic(device, edited):
                eval_outcome = check_eval(pair, device, options.tolerance, patched_context=patched_context,
                                          original_context=lambda: calls_original)
        except Exception as exc:  # the original failing here means our inputs are wrong
            return {}, f"the original {class_name} failed on the chosen inputs: {type(exc).__name__}: {exc}"
        verdicts: dict[Site, Verdict] = {}
        self.given = _given_names(pair.original, pair.call)
        inputs = pair.call.describe()
        details = {"built": pair.how, "inputs": inputs}
        if variant.label():
            details["variant"] = variant.label()
        if not eval_outcome.ok:
            self.ran = forward_lines.lines | ctor_lines.lines
            reached, _ = self._reached(sites, forward_lines, ctor_lines, calls_original, calls_patched)
            for site in reached or sites:
                verdicts[site] = Verdict(FAIL, eval_outcome.message, eval_outcome.max_abs_diff, details=details)
            return verdicts, None
        if eval_outcome.not_finite:
            return {site: Verdict(SKIP, f"the original {_owner_label(class_name)}'s outputs are not finite (inf or "
                                        f"NaN) for these inputs, so matching them proves nothing; name a factory in "
                                        f"[tool.adopter.verify] factories for {_owner_label(class_name)} that builds it "
                                        f"with its weights set", details=details) for site in sites}, None
        if eval_outcome.compared == 0:  # e.g. a method that returns an optimizer or None
            return {site: Verdict(SKIP, f"{pair.call.method}() of {_owner_label(class_name)} returns no tensor to "
                                        f"compare; name a factory in [tool.adopter.verify] factories for "
                                        f"{_owner_label(class_name)} whose call returns the patched computation",
                                  details=details) for site in sites}, None
        # Training runs too, traced: a patch under ``if self.training:`` runs only there.
        train_lines = LineTracer(self.patched_file)
        calls_train = CallRecorder()

        @contextmanager
        def train_context():
            with train_lines, calls_train:
                yield

        train_error: Exception | None = None
        train_outcome = None
        try:
            with _deterministic(device, edited):
                train_outcome = check_train(pair, device, options.tolerance, patched_context=train_context,
                                            judge_failures=self._judge_failures)
        except Exception as exc:  # raised by the original: training cannot be compared with these inputs
            train_error = exc
        forward_lines.lines |= train_lines.lines
        self.ran = forward_lines.lines | ctor_lines.lines
        reached, not_fast = self._reached(sites, forward_lines, ctor_lines, calls_original, calls_patched,
                                          calls_train)
        if not reached:
            for site in not_fast:
                why = (ORIGINAL_PATH if site.rule.synth is not None else
                       "the patched class ran its original forward for these inputs (no new torch calls)")
                verdicts[site] = Verdict(SKIP, why, details=details)
            return verdicts, None
        if isinstance(train_error, NeitherTrains):
            reason = (f"eval outputs match, but neither the original nor the patched module can take a training step "
                      f"(both raised {train_error}); training not compared (a forward-only pass needs the patched "
                      f"module to train); name a factory in [tool.adopter.verify] factories for {class_name} with "
                      f"inputs it trains on")
            return {site: Verdict(SKIP, reason, eval_outcome.max_abs_diff, details=details) for site in reached}, None
        if train_error is not None or train_outcome is None:
            reason = (f"eval outputs match, but the original's training step raised {type(train_error).__name__}: "
                      f"{str(train_error)[:160]}; training not compared; name a factory in "
                      f"[tool.adopter.verify] factories for {class_name} with inputs it trains on")
            return {site: Verdict(SKIP, reason, eval_outcome.max_abs_diff, details=details) for site in reached}, None
        worst = max(eval_outcome.max_abs_diff, train_outcome.max_abs_diff)
        if not train_outcome.ok:
            for site in reached:
                verdicts[site] = Verdict(FAIL, train_outcome.message, worst, details=details)
            return verdicts, None
        new_calls = sorted(_public(calls_patched.counts) - _public(calls_original.counts))
        timing = None
        bench_note = ""
        if options.benchmark:
            timing, bench_note = self._benchmark(class_name, variant)
        for site in reached:
            reason = f"eval and train outputs and gradients match (max abs diff {worst:.2g})"
            if train_outcome.forward_only:
                reason = forward_only_reason(train_outcome.forward_only, worst)
            notes = [m for m in (eval_outcome.message, train_outcome.message) if m]
            if notes:
                reason += "; " + "; ".join(notes)
            if variant.label():
                reason += f"; reached with {variant.label()}"
            if pair.note:
                reason += f"; {pair.note}"
            if shared_bias(pair.call.args) or shared_bias(pair.call.kwargs):
                reason += f"; {SHARED_BIAS}"
            for said in (met_inputs([*pair.call.args, *pair.call.kwargs.values()]),
                         shrunk_inputs([*pair.call.args, *pair.call.kwargs.values()])):
                if said:
                    reason += f"; {said}"
            if bench_note:
                reason += f"; {bench_note}"
            elif timing is not None and timing.note:
                reason += f"; {timing.note}"
            if timing is not None and timing.forward_ratio is not None and timing.train_ratio is not None:
                beyond_noise = min(0.95, 1.0 / (1.0 + timing.spread))
                if timing.forward_ratio < beyond_noise and timing.train_ratio < beyond_noise:
                    reason += "; slower here"
            site_details = dict(details)
            if new_calls:
                site_details["new_torch_calls"] = new_calls[:8]
            site_details["edited_lines"] = _span_text(site.edited)
            if train_outcome.forward_only:
                site_details["forward_only"] = train_outcome.forward_only
            if timing is not None:
                site_details.update(timing.as_dict())
                site_details["benchmark_sizes"] = _sizes_text(self.bench_builder.sizes)
            unrun = self._unrun_compared_branch(site)
            if unrun is not None:
                verdicts[site] = Verdict(SKIP, unrun, worst, details=site_details, variant=variant)
                continue
            verdicts[site] = Verdict(PASS, reason, worst, timing, site_details, variant)
        return verdicts, None

    def _unrun_compared_branch(self, site: Site) -> str | None:
        """Why a pass does not exercise the patch: an edited statement sits in the branch of an
        ``if`` that compares two names (``if kv_heads < n_heads:``, the grouped-heads lines that
        run only when the two counts differ), the ``if`` ran and that branch never did (the
        inputs tried gave the names the values that skip it).  None when there is none."""
        if self._patched_tree is None:
            try:
                self._patched_tree = ast.parse(self.patched_text) if self.patched_text else ast.Module([], [])
            except SyntaxError:
                self._patched_tree = ast.Module([], [])
        for node in ast.walk(self._patched_tree):
            if not isinstance(node, ast.If) or node.lineno not in self.ran:
                continue
            test = node.test
            if not _compares_two_names(test):
                continue
            for branch in (node.body, node.orelse):
                if not branch or any(s.lineno in self.ran for s in branch):
                    continue
                edited = sorted(s.lineno for s in branch if s.lineno in site.edited)
                if edited:
                    return (f"the edited lines {_span_text(set(edited))} never ran: the branch of "
                            f"`{ast.unparse(test)}` (line {node.lineno}) that holds them was not taken with "
                            f"the inputs tried, so the pass does not check them")
        return None

    def _judge_failures(self, original_error: Exception, patched_error: Exception):
        """Whether the original and the patched module failed their training step alike, at a line
        the patch left as it is (``failures.compare_failures``; the lead's ruling, session 37)."""
        original_file = getattr(self.original, "__file__", None) or self.path
        return compare_failures(original_error, patched_error, original_file, self.patched_file,
                                self.original_text, self.patched_text)

    def _header_lines(self, class_name: str) -> set[int]:
        """The lines of the built class's own ``class`` statement up to its body: a patch that
        rebases it (``class ConvBNReLU(FoldingSequential)``, an ``nn.Sequential`` subclass whose
        layers its ``__init__`` passes up) takes effect when an instance is built, as a
        constructor line's does."""
        if self._patched_tree is None:
            try:
                self._patched_tree = ast.parse(self.patched_text) if self.patched_text else ast.Module([], [])
            except SyntaxError:
                self._patched_tree = ast.Module([], [])
        if class_name.startswith("function:"):
            return set()
        for node in self._patched_tree.body:
            if isinstance(node, ast.ClassDef) and node.name == class_name and node.body:
                return set(range(node.lineno, node.body[0].lineno))
        return set()

    @staticmethod
    def _reached(sites: list[Site], forward_lines: LineTracer, ctor_lines: LineTracer, calls_original: CallRecorder,
                 calls_patched: CallRecorder, calls_train: CallRecorder | None = None
                 ) -> tuple[list[Site], list[Site]]:
        """The sites whose patch ran (and, for guarded and constructor-only patches, changed what
        torch computes), and those whose edited lines ran on the original path only."""
        reached: list[Site] = []
        not_fast: list[Site] = []
        for site in sites:
            if site.edited & forward_lines.lines:
                # A guarded rewrite (ADP010) runs its edited lines on the original path too:
                # it counts as reached only if the kernel itself was called.
                kernel = site.rule.kernel.import_.rsplit(".", 1)[-1]
                ran = calls_patched.counts.get(kernel) or forward_lines.called.get(kernel) or (
                    calls_train is not None and calls_train.counts.get(kernel))
                if site.rule.synth is not None and not ran:
                    not_fast.append(site)
                else:
                    reached.append(site)
            elif site.edited & ctor_lines.lines:
                # A container's class changed (FoldingSequential): reached when torch computes
                # something else, or when the rule's kernel path ran inside it (ADP006's pair on
                # CPU calls the same torch functions as the two layers, through bias_gelu's path)
                kernel = site.rule.kernel.import_.rsplit(".", 1)[-1]
                ran = forward_lines.called.get(kernel) or forward_lines.called.get("_" + kernel)
                if not ran and _public(calls_original.counts) == _public(calls_patched.counts):
                    not_fast.append(site)
                else:
                    reached.append(site)
        return reached, not_fast

    def _benchmark(self, class_name: str, variant: Variant):
        try:
            with self.bench_builder.flags(variant, self.patched):
                return self._measure(class_name, variant)
        except (Skip, Broken) as exc:
            return None, f"not timed: at benchmark size {exc}"
        except Exception as exc:
            return None, f"not timed: {type(exc).__name__}: {str(exc)[:120]}"

    def _measure(self, class_name: str, variant: Variant):
        options = self.options
        pair: Pair = self.bench_builder.build(class_name, self.patched, variant)
        pair.patched.load_state_dict(pair.original.state_dict(), strict=True)
        timing = measure(pair.original, pair.patched, pair.call, options.device, options.min_run_time,
                         options.memory, options.threads)
        return timing, ""


def _public(counts) -> set[str]:
    """Names of the torch functions called, without dunders (property reads such as ``__get__``)."""
    return {name for name in counts if not name.startswith("__")}


def _sizes_text(sizes: Sizes) -> str:
    return f"batch {sizes.batch}, seq {sizes.seq}, hidden {sizes.hidden}, ffn {sizes.ffn}, image {sizes.image}"


@contextmanager
def _deterministic(device: torch.device, poisoned: tuple[str, set[int]] | None = None):
    """No TF32 on CUDA while comparing (it changes float32 matmuls by ~1e-3), and no raw memory
    (``filled_empty``; NaN for the patch's own allocations on its edited lines, ``poisoned``)."""
    with filled_empty(poisoned):
        if device.type != "cuda":
            yield
            return
        matmul, cudnn = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        try:
            yield
        finally:
            torch.backends.cuda.matmul.allow_tf32 = matmul
            torch.backends.cudnn.allow_tf32 = cudnn


MAX_VARIANTS = 12
ORIGINAL_PATH = "the patched code took its original (guarded) path for these inputs"
FORWARD_ONLY = "forward only: the original cannot train"


def forward_only_reason(error: str, worst: float) -> str:
    """A pass whose training step the original alone could not take (the patched module's did,
    backward included): said first and plainly, since gradients were not compared.  Where
    neither could, alike at a line the patch left (``failures.SameFailure``), it says so."""
    if error.startswith("neither trains: "):
        return (f"forward only: {error}; eval and train-mode outputs match (max abs diff {worst:.2g}); "
                f"gradients not compared")
    return (f"{FORWARD_ONLY} ({error}); eval and train-mode outputs match (max abs diff {worst:.2g}) and the "
            f"patched module trains; gradients not compared")
MAX_COMBINED = 6  # build changes combined with forward-argument changes, tried after the others


def _methods_with(text: str, class_name: str, lines: set[int]) -> list[str]:
    """Methods of ``class_name`` (other than forward and __init__) that contain any of ``lines``."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return []
    out: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == class_name:
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and item.name not in (
                        "forward", "__init__") and not item.name.startswith("__") and \
                        lines & set(range(item.lineno, (item.end_lineno or item.lineno) + 1)):
                    out.append(item.name)
    return out


def _callers(text: str, class_name: str, helpers: list[str]) -> list[str]:
    """The class's other methods (neither forward nor a dunder) that call a helper holding the
    edit (``infer(query, seq_len, key, value)`` calling ``self.cached_forward(query, seq_len, key,
    value, self.embed_dim, self.num_heads, self.in_proj_weight, ...)``): tried before the helper
    itself, since they hand it the module's own sizes and weights where a direct call of the
    helper would have to guess them."""
    out: list[str] = []
    for helper in helpers:
        lines = branches.call_lines(text, class_name, helper)
        for name in _methods_with(text, class_name, lines) if lines else []:
            if name not in helpers and name not in out:
                out.append(name)
    return out


def _owner_label(class_name: str) -> str:
    return class_name.split(":", 1)[1] if class_name.startswith("function:") else class_name


def _unreached_reason(checker: _Checker, class_name: str, site: Site, ran: set[int], tried: list[str],
                      refused: list[tuple[str, str]] = ()) -> str:
    """Why the edited lines never ran, naming the branch that stayed unexercised."""
    owner = _owner_label(class_name)
    span = _span_text(site.edited)
    shown = "; ".join(tried[:3]) + (f"; +{len(tried) - 3} more" if len(tried) > 3 else "")
    what = f"tried {len(tried)} build variant(s): {shown}" if tried else "no build variant ran"
    guard = branches.unexercised(branches.guards(checker.patched_text, site.edited), ran)
    broken = _original_raises(refused)
    if guard is not None and broken is not None:
        # the variant that takes the branch builds, but the original code raises there for every
        # input: the branch cannot run as written, and the user must know that, not guess a factory
        label, error = broken
        return (f"the edited lines {span} never ran: the branch {guard.describe()} (line {guard.line}) stayed "
                f"unexercised ({what}); the build {label} raised in the original {owner} for every input tried "
                f"({error}): the original code must run on that branch before its patch can be verified")
    if guard is not None:
        return (f"the edited lines {span} never ran: the branch {guard.describe()} (line {guard.line}) stayed "
                f"unexercised ({what}); name a factory in [tool.adopter.verify] factories for {owner} whose "
                "inputs take that branch")
    methods = _methods_with(checker.patched_text, owner, site.edited)
    if methods:
        return (f"the edited lines {span} never ran: they are in {owner}.{methods[0]}(), which neither forward nor "
                f"a direct call with guessed inputs reached ({what}); name a factory in [tool.adopter.verify] "
                f"factories for {owner} whose inputs reach them")
    return (f"the edited lines {span} never ran ({what}); name a factory in [tool.adopter.verify] factories for "
            f"{owner} whose inputs reach them")


def _helper_may_run(skip_reason: str, entries: list[str]) -> bool:
    """Whether a forward the module was built for but no guessed input runs (xuance's TarMAC
    takes dicts of per-agent tensors) still leaves a direct call of the method that holds the
    edit (``attention_block(q, k, v)``, which forward calls) to check the patched lines with."""
    return len(entries) > 1 and "no inputs it accepts: " in skip_reason


def _original_raises(refused) -> tuple[str, str] | None:
    """The first build variant that built the original but found no inputs it runs on."""
    marker = "no inputs it accepts: "
    for label, reason in refused:
        if marker in reason:
            detail = reason.split(marker, 1)[1]
            error = detail.split(" raised ", 1)[1] if " raised " in detail else detail
            return label, error[:160]
    return None


def _verify_class(checker: _Checker, class_name: str, sites: list[Site]) -> dict[Site, Verdict]:
    out: dict[Site, Verdict] = {}
    pending = [s for s in sites if s.edited]
    for site in sites:
        if not site.edited:
            out[site] = Verdict(SKIP, "the synthesized patch changes no line of this finding")
    if not pending:
        return out
    edited = set().union(*(s.edited for s in pending))
    found_guards = branches.guards(checker.patched_text, edited)
    entries = ["forward"]
    if not class_name.startswith("function:"):
        helpers = _methods_with(checker.patched_text, class_name, edited)
        entries += _callers(checker.patched_text, class_name, helpers)
        entries += helpers
        for helper in helpers:  # `if x_prev is None: ... else: self._forward_cross_attn(x, x_prev)`
            found_guards += branches.guards(checker.patched_text,
                                            branches.call_lines(checker.patched_text, class_name, helper))
    helper_conditions = [] if class_name.startswith("function:") else \
        branches.helper_conditions(checker.patched_text, class_name, edited)
    tried: list[str] = []
    refused: list[tuple[str, str]] = []  # variants that could not be built or run, and why
    blocked: str | None = None  # the default build stopped at a name left out at import (loader.py)
    given: dict[Site, set[str]] = {}  # the forward arguments each verdict's check passed
    configs: dict[Site, list] = {}  # the config objects each verdict's build was handed
    soft: dict[Site, Verdict] = {}
    ran: set[int] = set()
    for entry in entries:
        try:
            variants = checker.builder.variants(class_name, found_guards, entry, helper_conditions)
        except Skip as exc:
            if entry == "forward":
                for site in pending:
                    out[site] = Verdict(SKIP, str(exc))
                return out
            continue
        declining = _declining(checker, class_name, entry)
        if declining is not None:  # right after the default build (which keeps the original path)
            variants = [variants[0], declining, *(dataclasses.replace(v, decline=declining.decline)
                                                  for v in variants[1:])]
        queue = variants[:MAX_VARIANTS + sum(v in checker.builder.joined for v in variants)]
        combined = False
        defaulted = False
        for index, variant in enumerate(queue):  # grows once, by _with_forward_changes
            verdicts, skip_reason = checker.check(class_name, pending, variant)
            if skip_reason is not None:
                if index == 0 and entry == "forward" and not _helper_may_run(skip_reason, entries) \
                        and not left_out_used(skip_reason):
                    for site in pending:
                        out[site] = Verdict(SKIP, skip_reason)
                    return out
                if index == 0 and entry == "forward" and left_out_used(skip_reason):
                    # the default build's path uses a name a statement left out at import binds
                    # (``TriangularCausalMask`` under ``if self.mask_flag:``): the other variants
                    # may take a path without it; said as it is when none does
                    blocked = blocked or skip_reason
                refused.append((variant.label() or "the default build", skip_reason))
                continue
            ran |= checker.ran
            tried.append(variant.label() or "the default build")
            if not verdicts and not defaulted and checker.given:
                # the module ran without reaching the edit at all (not even a guarded patch's
                # test: masr's fused branch sits under ``mask.size(2) > 0`` inside the helper the
                # forward hands the scores to): the arguments it was given left at their defaults
                # too, as after a guarded patch's original path (once; the combinations a guarded
                # patch's original path asks for stay its own)
                defaulted = True
                queue += _with_defaults(checker, class_name, variant)
            for site, verdict in verdicts.items():
                if verdict.verdict == SKIP:
                    soft.setdefault(site, verdict)
                    if verdict.reason == ORIGINAL_PATH and checker.full_rows and not variant.mixed_rows \
                            and not any(v.mixed_rows for v in queue[index + 1:]):
                        # a mask of these inputs hides a whole row, which a guarded patch sends to
                        # its original path (where it was just checked): the same inputs again with
                        # no such row, to check the fused path too
                        queue.insert(index + 1, dataclasses.replace(variant, mixed_rows=True))
                    elif verdict.reason == ORIGINAL_PATH and checker.two_valued and not variant.flipped_masks \
                            and not any(v.flipped_masks for v in queue[index + 1:]):
                        # a 0/1 float mask read the other way round than the inputs give it
                        # (1 hides) hides every position but the padding: the same inputs with
                        # it flipped, to check the fused path too
                        queue.insert(index + 1, dataclasses.replace(variant, flipped_masks=True))
                    if verdict.reason == ORIGINAL_PATH and not combined:
                        combined = True
                        queue += _with_forward_changes(variant, variants)
                        queue += _with_defaults(checker, class_name, variant)
                    continue
                out[site] = verdict
                given[site] = set(checker.given)
                configs[site] = list(checker.configs)
            pending = [s for s in pending if s not in out]
            if not pending:
                break
        if not pending:
            break
    refusals = memory.take_refusals()
    for site in pending:
        if site in soft:
            out[site] = soft[site]
        elif blocked is not None and not tried:
            out[site] = Verdict(SKIP, blocked)
        else:
            out[site] = Verdict(SKIP, _unreached_reason(checker, class_name, site, ran, tried, refused))
    if refusals:
        _say_refused(out, pending, checker.limit, len(refusals))
    _check_other_sides(checker, class_name, out, given)
    _check_blind_rows(checker, class_name, out)
    _check_compared_values(checker, class_name, out, configs)
    return out


MAX_VALUE_CHECKS = 4  # builds with another compared string tried per passing site


def _check_compared_values(checker: _Checker, class_name: str, out: dict, configs: dict) -> None:
    """A pass built with a config whose required ``str`` field verify valued by a string the class
    compares it with (``config.pos_type != "none"``: ``construct.compared_choices``) is checked
    again with each other value tried for it (the other compared strings, then one equal to none
    of them), in order: a build the other value takes the class's other code path with (a
    parameter made only when ``pos_type`` is not "none", added to the scores).  A difference is a
    ``fail``; otherwise the pass says which values it also passed with, which did not build (the
    class raises for them) and which were not checked, and why."""
    passing = [s for s, v in out.items() if v.verdict == PASS and v.variant is not None]
    if not passing:
        return
    choices = checker.builder.compared_choices(class_name)
    if not choices:
        return
    for site in passing:
        verdict = out[site]
        base = verdict.variant
        notes: list[str] = []
        tries = 0
        failed = False
        for name, values in choices:
            if any(k == name for k, _ in base.config):
                continue
            used = next((getattr(c, name) for c in configs.get(site, []) if hasattr(c, name)), None)
            if used not in values:
                continue  # a value verify did not choose (a call site gave it)
            said = [f"config.{name}={used!r} built"]
            for value in values:
                if value == used or tries >= MAX_VALUE_CHECKS:
                    continue
                tries += 1
                other = dataclasses.replace(base, config=(*base.config, (name, value)))
                side = f"config.{name}={value!r}"
                again, skip_reason = _check_again(checker, class_name, site, other)
                if again is not None and again.verdict == FAIL:
                    out[site] = Verdict(FAIL, f"with {side}: {again.reason}", again.max_abs_diff,
                                        details=again.details, variant=other)
                    failed = True
                    break
                if again is not None and again.verdict == PASS:
                    said.append(f"also passes with {side} (max abs diff {again.max_abs_diff:.2g})")
                elif skip_reason is not None and " raised " in skip_reason and "factory" in skip_reason:
                    said.append(f"{side} does not build ({skip_reason.split(' raised ', 1)[1][:120]})")
                else:
                    why = skip_reason or (again.reason if again is not None else "the patched lines did not run")
                    said.append(f"not checked with {side}: {why[:140]}")
            if failed:
                break
            if len(said) > 1:
                notes.append(", ".join(said))
        if not failed and notes:
            out[site] = dataclasses.replace(verdict, reason=f"{verdict.reason}; {'; '.join(notes)}")


def _check_again(checker, class_name: str, site, variant):
    """``site`` checked once more on another ``variant`` of its class (a config value, an
    argument given), untimed: the site was timed once, on the first side.  (Its verdict or
    None, and the skip reason.)"""
    options = checker.options
    checker.options = dataclasses.replace(options, benchmark=False)
    try:
        verdicts, skip_reason = checker.check(class_name, [site], variant)
    finally:
        checker.options = options
    return verdicts.get(site), skip_reason


def refused_note(limit: int | None, count: int) -> str:
    """What a skip adds when verify's memory ceiling refused builds or inputs on the way: the tries
    it cut are part of why nothing else was checked."""
    plural = "s" if count > 1 else ""
    return (f"; verify's memory ceiling ({memory.describe(limit)}, {memory.ENV}) refused {count} oversized "
            f"build{plural} or input{plural} on the way")


def _say_refused(out: dict, pending: list[Site], limit: int | None, count: int) -> None:
    """Skips left after the ceiling refused tries of passing variants say so (refused_note)."""
    note = refused_note(limit, count)
    for site in pending:
        verdict = out[site]
        if verdict.verdict == SKIP and memory.ENV not in verdict.reason:
            out[site] = dataclasses.replace(verdict, reason=verdict.reason + note)


ROWS_GUARD = ".all(-1).any()"  # the fixer's test for a mask hiding a whole row (synth/sdpa.py)


def _check_blind_rows(checker: _Checker, class_name: str, out: dict) -> None:
    """A passing guarded patch (its guard tests a mask for rows it hides entirely) is checked
    again with the passing inputs' boolean masks hiding a whole row: the guard must send those
    inputs to the original path, or the fused call must match there.  A difference is a
    ``fail``; otherwise the pass says so.  Only where the patched code holds that guard."""
    if ROWS_GUARD not in (checker.patched_text or ""):
        return
    by_variant: dict = {}
    for site, verdict in out.items():
        if verdict.verdict == PASS and verdict.variant is not None and not verdict.variant.mixed_rows:
            by_variant.setdefault(verdict.variant, []).append(site)
    for variant, sites in by_variant.items():
        verdicts, skip_reason = checker.check(class_name, sites, dataclasses.replace(variant, blind_rows=True))
        if skip_reason is not None:
            continue
        for site in sites:
            again = verdicts.get(site)
            if again is None:
                continue
            if again.verdict == FAIL:
                out[site] = dataclasses.replace(again, reason="with a mask hiding a whole row: " + again.reason)
            elif again.verdict == PASS or again.reason == ORIGINAL_PATH:
                how = ("the original path ran, eval outputs match" if again.verdict == SKIP else
                       "the fused path ran, outputs and gradients match")
                old = out[site]
                out[site] = dataclasses.replace(old, reason=f"{old.reason}; also with a mask hiding a whole row "
                                                            f"({how})")


def _with_forward_changes(variant: Variant, variants: list[Variant]) -> list[Variant]:
    """``variant`` (a build change that reached a guarded patch's original path: fair-esm's
    manual attention runs only with ``self.onnx_trace=True``) combined with each variant that
    only changes the forward's arguments (its fused path also wants ``need_weights=False``):
    the guard's two sides are steered by different things, one change at a time reaches neither.
    Nothing when ``variant`` changes no build (the forward-only variants are tried on their own)."""
    if not (variant.attrs or variant.flags or variant.ctor or variant.config):
        return []
    out = []
    for other in variants:
        if other.forward and other.method == variant.method and not (
                other.attrs or other.flags or other.ctor or other.config or other.decline):
            names = {k for k, _ in other.forward}
            out.append(dataclasses.replace(
                variant, forward=tuple((k, v) for k, v in variant.forward if k not in names) + other.forward,
                give=tuple(dict.fromkeys(variant.give + other.give))))
    return out[:MAX_COMBINED]


def _with_defaults(checker: _Checker, class_name: str, variant: Variant) -> list[Variant]:
    """``variant`` with an argument it gave (a guessed mask) left at its default instead, each
    such argument on its own: a guarded patch whose fused path wants the default (chatterbox's
    ``mask=torch.ones((0, 0, 0))``, a fake mask of size 0, tested as ``mask.size(2) > 0``) is
    reached only without the guess.  A required argument the code tests for None (SenseVoice's
    ``mask``, None from its chunked caller) gets None.  Optional arguments whose default is None
    are the other sides :func:`_check_other_sides` already takes."""
    if class_name.startswith("function:"):
        return []
    try:
        params = inspect.signature(getattr(checker.builder.class_of(checker.original, class_name),
                                           variant.method)).parameters
        tested = _none_tested(ast.parse(checker.patched_text))
    except (Skip, TypeError, ValueError, AttributeError, SyntaxError):
        return []
    out = []
    for name in sorted(checker.given):
        param = params.get(name)
        if param is None or param.default is None or any(k == name for k, _ in variant.forward):
            continue
        if param.default is not inspect.Parameter.empty:
            value = param.default
        elif name in tested and param.kind is not inspect.Parameter.KEYWORD_ONLY:
            value = None
        else:
            continue
        out.append(dataclasses.replace(variant, forward=(*variant.forward, (name, value)),
                                       give=tuple(g for g in variant.give if g != name)))
    return out[:MAX_COMBINED]


def _none_tested(tree: ast.AST) -> set[str]:
    """Names the module compares with None (``mask is not None``)."""
    return {node.left.id for node in ast.walk(tree)
            if isinstance(node, ast.Compare) and isinstance(node.left, ast.Name) and len(node.ops) == 1
            and isinstance(node.ops[0], (ast.Is, ast.IsNot)) and isinstance(node.comparators[0], ast.Constant)
            and node.comparators[0].value is None}


def _declining(checker: _Checker, class_name: str, method: str) -> Variant | None:
    """The variant that passes False to the boolean parameters (default True) the patch
    added to ``method``: an attention that hands its probabilities back takes the fused path
    only when its caller declines them (``need_weights``, :mod:`adopter.synth.weights`); for
    ``function:<name>``, the parameters the patch added to that module-level function.
    None when the patch added none."""
    try:
        if class_name.startswith("function:"):
            # a module-level function the patch gave the parameter (minerva's
            # ``dot_product_attention(..., need_weights=True)``, whose only callers in the package
            # keep the probabilities): verified on its own, it is called with it False
            name = class_name.split(":", 1)[1]
            before = inspect.signature(getattr(checker.original, name)).parameters
            after = inspect.signature(getattr(checker.patched, name)).parameters
        else:
            before = inspect.signature(getattr(checker.builder.class_of(checker.original, class_name), method)).parameters
            after = inspect.signature(getattr(checker.builder.class_of(checker.patched, class_name), method)).parameters
    except (Skip, TypeError, ValueError, AttributeError):
        return None
    added = tuple(name for name, p in after.items() if name not in before and p.default is True)
    return Variant(decline=added, method=method) if added else None


def _given_names(module, call) -> set[str]:
    """The parameters of the called method that the call passes a value other than None."""
    try:
        bound = inspect.signature(getattr(module, call.method)).bind_partial(*call.args, **call.kwargs)
    except (TypeError, ValueError, AttributeError):
        return set(call.kwargs)
    return {name for name, value in bound.arguments.items() if value is not None}


def _optional_tests(text: str, lines: set[int], optional: set[str]) -> set[str]:
    """Optional forward arguments that the edited code tests for None (``mask if mask is not None
    else bias``, ``if mask is not None:`` around an edited line): a patch must compute the same on
    both sides of such a test."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return set()
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.IfExp, ast.If)):
            # a test the patch wrote (an ``if`` around lines it left alone decides only which
            # finding runs, and each finding is reached on its own side)
            inside = node.test.lineno in lines
        else:
            continue
        test = node.test
        if inside and isinstance(test, ast.Compare) and len(test.ops) == 1 and \
                isinstance(test.ops[0], (ast.Is, ast.IsNot)) and isinstance(test.left, ast.Name) and \
                isinstance(test.comparators[0], ast.Constant) and test.comparators[0].value is None and \
                test.left.id in optional:
            found.add(test.left.id)
    return found


def _check_other_sides(checker: _Checker, class_name: str, out: dict, given: dict) -> None:
    """A passing patch whose edited code tests an optional argument for None is checked again
    with that argument on its other side (a mask given when it passed without one, and the
    reverse): a difference there is a ``fail``; a side no input reaches is said in the reason."""
    if class_name.startswith("function:"):
        return
    try:
        cls = checker.builder.class_of(checker.original, class_name)
        params = list(inspect.signature(cls.forward).parameters.values())[1:]
    except (Skip, TypeError, ValueError, AttributeError):
        return
    optional = {p.name for p in params if p.default is None}
    for site, verdict in list(out.items()):
        if verdict.verdict != PASS or verdict.variant is None or verdict.variant.method != "forward":
            continue
        for name in sorted(_optional_tests(checker.patched_text, site.edited, optional)):
            base = verdict.variant
            was_given = name in given.get(site, set())
            if was_given:
                other = dataclasses.replace(base, give=tuple(g for g in base.give if g != name),
                                            forward=tuple(f for f in base.forward if f[0] != name) + ((name, None),))
                side = f"{name}=None"
            else:
                other = dataclasses.replace(base, give=tuple(dict.fromkeys((*base.give, name))),
                                            forward=tuple(f for f in base.forward if f[0] != name))
                side = f"{name} given"
            again, skip_reason = _check_again(checker, class_name, site, other)
            if again is not None and again.verdict == FAIL:
                out[site] = Verdict(FAIL, f"with {side}: {again.reason}", again.max_abs_diff,
                                    details=again.details, variant=other)
                break
            if again is not None and again.verdict == PASS:
                note = f"also with {side} (max abs diff {again.max_abs_diff:.2g})"
            else:
                why = skip_reason or (again.reason if again is not None else "the patched lines did not run")
                note = f"not checked with {side}: {why[:140]}"
            verdict = dataclasses.replace(verdict, reason=f"{verdict.reason}; {note}")
            out[site] = verdict


# ----------------------------------------------------------------------------- combined targets


def _local_classes(tree: ast.Module) -> dict[str, ast.ClassDef]:
    return {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}


def _uses(classes: dict[str, ast.ClassDef]) -> dict[str, set[str]]:
    uses: dict[str, set[str]] = {}
    for name, node in classes.items():
        found: set[str] = set()
        for sub in ast.walk(node):
            if isinstance(sub, ast.Name) and sub.id in classes and sub.id != name:
                found.add(sub.id)
        uses[name] = found
    return uses


def _class_graph(text: str) -> dict[str, set[str]]:
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return {}
    return _uses(_local_classes(tree))


def classes_inside(uses: dict[str, set[str]], root: str) -> set[str]:
    """``root`` and every local class it uses, transitively."""
    found = {root}
    frontier = [root]
    while frontier:
        for used in uses.get(frontier.pop(), set()):
            if used not in found:
                found.add(used)
                frontier.append(used)
    return found


def combined_targets(module, text: str, sites: list[Site]) -> list[str]:
    """Classes on which all patches of the file are verified together.

    For a Hugging Face file the base model (``BertModel``); otherwise the outermost classes of
    the file that contain patched classes of more than one rule (with a single rule inside, the
    per-rule checks already covered exactly that code).
    """
    for name, value in vars(module).items():
        if hf.is_pretrained_model_class(value) and getattr(value, "__module__", None) == module.__name__ \
                and name.endswith("PreTrainedModel"):
            base = name[: -len("PreTrainedModel")] + "Model"
            if base in vars(module):
                return [base]
    uses = _class_graph(text)
    users: dict[str, set[str]] = {name: set() for name in uses}
    for name, used in uses.items():
        for other in used:
            users.setdefault(other, set()).add(name)
    roots: list[str] = []
    site_classes = {s.class_name for s in sites}
    for start in sorted(site_classes):
        seen = {start}
        frontier = [start]
        while frontier:
            current = frontier.pop()
            parents = users.get(current, set()) - seen
            if not users.get(current) and current not in roots:  # nothing of the file uses it: outermost
                roots.append(current)
            for parent in parents:
                seen.add(parent)
                frontier.append(parent)
    chosen = []
    for root in roots:
        members = classes_inside(uses, root)
        if len({s.rule.id for s in sites if s.class_name in members}) > 1:
            chosen.append(root)
    return chosen[:3]


# ----------------------------------------------------------------------------- the file


def _default_fix() -> FixFn:
    try:
        from ..synth import fix_text
    except ImportError as exc:
        raise VerifyError(f"synthesis is not available: {exc}") from None
    return fix_text


def _fix(fix: FixFn, text: str, path: str, rules: list[Rule], package: str | None):
    result = fix(text, path, rules, package)
    error = getattr(result, "error", None)
    skipped: list[tuple[str, str, int, str]] = []  # (rule, class, line, why)
    for item in getattr(result, "skipped", None) or []:
        try:
            finding, why = item
        except (TypeError, ValueError):
            finding, why = getattr(item, "finding", item), getattr(item, "reason", "")
        skipped.append((str(getattr(finding, "rule", "")), str(getattr(finding, "class_name", "")),
                        int(getattr(finding, "line", 0) or 0), str(why)))
    return result.text, skipped, error


def _skip_reason(skipped: list[tuple[str, str, int, str]], site: Site) -> str | None:
    """Why the synthesizer left this finding alone: same rule (and class), nearest line (the
    synthesizer reports the line of the statement it declined, which may be a constructor)."""
    best = None
    for rule, class_name, line, why in skipped:
        if rule != site.rule.id or (class_name and class_name not in (site.class_name, site.match.class_name)):
            continue
        distance = 0 if line in site.anchors else abs(line - site.line)
        if best is None or distance < best[0]:
            best = (distance, why)
    return best[1] if best is not None else None


def verify_file(path: str, rules: list[Rule], config: Config | None = None, benchmark: bool = True, *,
                fix: FixFn | None = None, device: str | None = None, options: Options | None = None
                ) -> list[VerifyResult]:
    """Verify (and, unless ``benchmark`` is false, time) every fixable finding of ``path``.

    Returns one :class:`VerifyResult` per finding, plus one per combined target (all of the
    file's patches together) when there is anything to combine.  Raises :class:`VerifyError`
    when the file cannot be analysed or the configuration is wrong.
    """
    options = options or options_for(config, benchmark, device)
    if not benchmark:
        options.benchmark = False
    fix = fix or _default_fix()
    try:
        text = read_source(path).text
    except SourceError as exc:
        raise VerifyError(str(exc)) from None
    package = package_of(path)
    try:
        analysis = analyze(text, path, [r for r in rules if r.fixable], package)
    except AnalysisError as exc:
        raise VerifyError(str(exc)) from None
    sites = []
    for rule, match in analysis.matches:
        owner = _owner(analysis.tree, match)
        shown = owner if match.class_name == SEQUENTIAL_OWNER and owner and ":" not in owner else match.class_name
        sites.append(Site(rule, match, match.span[0], shown, _anchors(match), owner=owner))
    if not sites:
        return []
    device_name = str(options.device)
    if analysis.rendered is not None:
        # found in the file's 3.11 rendering (engine.parse_text): the file itself cannot be
        # imported by this Python, so nothing can be run; said plainly, once per site
        reason = (f"the file is written in newer Python syntax than this Python "
                  f"({sys.version_info[0]}.{sys.version_info[1]}) can import (type parameters, `type` statements or "
                  f"f-strings with nested quotes); run verify under the Python the file is written for")
        return sorted((_result(s, path, s.line, s.class_name, SKIP, reason, device_name) for s in sites),
                      key=lambda r: (r.line, r.combined, r.rule))
    results: list[VerifyResult] = []
    stubbed: list[str] = []
    init_skipped: list[str] = []
    unregistered: list[str] = []
    unavailable: list[str] = []
    call_sites = [s for s in sites if _builds_optimizer(s)]
    sites = [s for s in sites if s not in call_sites]
    if call_sites:
        results.extend(_verify_calls(text, path, package, call_sites, fix, options))
    if not sites:
        return sorted(results, key=lambda r: (r.line, r.combined, r.rule))
    script = _script_line(analysis.tree)
    if script is not None:
        reason = (f"the file runs a script when imported (line {script}), which verify does not do; move "
                  f"{', '.join(sorted({s.class_name for s in sites}))} into a module the script imports")
        results.extend(_result(s, path, s.line, s.class_name, SKIP, reason, device_name) for s in sites)
        return sorted(results, key=lambda r: (r.line, r.combined, r.rule))
    with ModuleLoader(path) as loader, ExitStack() as stack:
        # builds and inputs held under a memory ceiling on the CPU, so a guess never takes the
        # machine down (memory.py)
        options.memory_limit = stack.enter_context(memory.ceiling(options.device.type == "cpu"))
        memory.take_refusals()
        try:
            original = run_quietly(loader.original)
        except LoadError as exc:
            reason = str(exc) if exc.missing else (f"the original module does not import here: {exc}; make it "
                                                    "importable where verify runs")
            results.extend(_result(s, path, s.line, s.class_name, SKIP, reason, device_name) for s in sites)
            return sorted(results, key=lambda r: (r.line, r.combined, r.rule))
        stubbed = loader.stubbed
        init_skipped = loader.init_skipped
        unavailable = loader.unavailable
        module_name = original.__name__
        parallel = Groups()  # a single-process group, when model-parallel layers ask for one; undone below
        stack.callback(parallel.close)
        builder = Builder(original, text, options.sizes, options.factories, options.root, module_name, path, package,
                          parallel)
        bench_builder = Builder(original, text, options.bench_sizes, options.factories, options.root, module_name,
                                path, package, parallel)
        groups: dict[str, list[Site]] = {}
        for site in sorted(sites, key=lambda s: (s.line, s.rule.id)):
            groups.setdefault(site.rule.id, []).append(site)
        applied_rules: list[Rule] = []
        reached: list[Variant] = []
        for rule_id, group in groups.items():
            rule = group[0].rule
            results.extend(_verify_group(loader, original, text, path, package, [rule], group, fix, builder,
                                         bench_builder, options, rule_id, reached))
            if any(s.edited for s in group):
                applied_rules.append(rule)
        if options.combined and applied_rules:
            results.extend(_verify_combined(loader, original, text, path, package, applied_rules, sites, fix,
                                            builder, bench_builder, options, _model_wide(reached)))
        unregistered = loader.unregistered
    if unavailable:
        # a pass with names left out at import: they stood as placeholders that raise when used,
        # and the path checked did not use them (said in the verdict, not only in the details)
        note = ("; names a statement binds that raised at import stood as placeholders that raise if used, "
                "and the path checked did not use them (" + "; ".join(unavailable) + ")")
        results = [dataclasses.replace(r, reason=r.reason + note) if r.verdict == PASS else r for r in results]
    # what the loading did to the file's world, said on every row it concerns
    for key, value in (("not_installed", stubbed), ("init_skipped", init_skipped),
                       ("registration_skipped", unregistered), ("left_out_at_import", unavailable)):
        if value:
            for result in results:
                result.details.setdefault(key, value)
    return sorted(results, key=lambda r: (r.line, r.combined, r.rule))


def _verify_group(loader: ModuleLoader, original, text: str, path: str, package: str | None, rules: list[Rule],
                  group: list[Site], fix: FixFn, builder: Builder, bench_builder: Builder, options: Options,
                  tag: str, reached: list[Variant] | None = None) -> list[VerifyResult]:
    device_name = str(options.device)
    try:
        patched_text, skipped, error = _fix(fix, text, path, rules, package)
    except Exception as exc:
        return [_result(s, path, s.line, s.class_name, SKIP, f"synthesis raised {type(exc).__name__}: {exc}",
                        device_name) for s in group]
    if error:
        return [_result(s, path, s.line, s.class_name, SKIP, f"synthesis failed: {error}", device_name)
                for s in group]
    map_edits(text, patched_text, group)
    try:
        patched = run_quietly(lambda: loader.patched(patched_text, tag))
    except LoadError as exc:
        if exc.missing and exc.missing in {r.kernel.import_.split(".")[0] for r in rules}:
            # the rule's own kernel package is not installed here: nothing to compare against
            return [_result(s, path, s.line, s.class_name, SKIP, str(exc), device_name) for s in group]
        return [_result(s, path, s.line, s.class_name, FAIL, f"the patched module does not import: {exc}",
                        device_name) for s in group]
    checker = _Checker(path, original, patched, patched.__file__, builder, bench_builder, options, patched_text,
                       text)
    by_owner: dict[str | None, list[Site]] = {}
    for site in group:
        by_owner.setdefault(site.owner, []).append(site)
    out: list[VerifyResult] = []
    for owner, sites in by_owner.items():
        if owner is None:
            verdicts = {site: Verdict(SKIP, _SCRIPT_CODE) for site in sites}
        else:
            verdicts = _verify_class(checker, owner, sites)
            if not owner.startswith("function:"):
                _retry_on_function(checker, owner, sites, verdicts)
        for site in sites:
            class_name = site.class_name
            verdict = verdicts[site]
            if verdict.variant is not None and reached is not None:
                reached.append(verdict.variant)
            if not site.edited:
                why = _skip_reason(skipped, site)
                if why:
                    verdict = Verdict(SKIP, f"not patched: {why}")
            out.append(_from_verdict(site.rule.id, path, site.line, class_name, verdict, device_name))
    return out


def _function_around(text: str, lines: set[int]) -> str | None:
    """The module-level function of ``text`` that holds every one of ``lines``; None if none does."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return None
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and lines and \
                all(node.lineno <= line <= (node.end_lineno or node.lineno) for line in lines):
            return node.name
    return None


def _retry_on_function(checker: _Checker, owner: str, sites: list[Site], verdicts: dict[Site, Verdict]) -> None:
    """A patch inside a module-level function that the class calls (fairseq2's ``NaiveSDPA``
    hands its q, k, v to ``naive_scaled_dot_product_attention``), where the class could not be
    built or fed here (its forward takes the package's own layout objects): the function
    itself is verified, called with inputs inferred from its signature; the reason says so.
    Likewise where the class was built and fed but never reached the patched lines, or reached
    only the original side of the patch's guard (ring-attention's ``default_attention(q, k, v,
    causal=...)``, called only when the class is built with one flag and its fused side needs
    another): the function's own parameters steer it there.  And where the class needs a package
    that is not installed here (bitnet's ``BitMGQA`` builds layers of zeta; the GQA function it
    calls needs none): the function alone, which needs only what it calls."""
    for site in sites:
        verdict = verdicts.get(site)
        if verdict is None or verdict.verdict != SKIP or not site.edited or \
                not verdict.reason.startswith(("name a factory", ORIGINAL_PATH, "the edited lines")) and \
                not (verdict.reason.startswith("needs ") and ", which is not installed here" in verdict.reason):
            continue
        name = _function_around(checker.patched_text, site.edited)
        if name is None:
            continue
        retried = _verify_class(checker, f"function:{name}", [site]).get(site)
        if retried is None or retried.verdict == SKIP:
            continue
        why = "could not be fed here" if verdict.reason.startswith("name a factory") else \
            "could not be built here" if verdict.reason.startswith("needs ") else "did not reach it here"
        verdicts[site] = dataclasses.replace(
            retried, reason=f"{retried.reason}; on {name}() alone, called with inputs from its signature "
                            f"({owner} {why}: {verdict.reason[:160]})")


def _builds_optimizer(site: Site) -> bool:
    """A finding that is one call constructing a torch optimizer (verified on the optimizer)."""
    nodes = site.match.nodes
    if len(nodes) != 1 or nodes[0].kind != "call" or not str(nodes[0].op).startswith("torch.optim."):
        return False
    import importlib

    module_name, _, name = str(nodes[0].op).rpartition(".")
    try:
        value = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError):
        return False
    return isinstance(value, type) and issubclass(value, torch.optim.Optimizer)


_RUNS_WORK = ("backward", "step", "fit", "train", "run", "main", "evaluate", "generate")


def _script_line(tree: ast.Module | None) -> int | None:
    """The first top-level statement that does work when the file is imported (a training loop,
    ``main()``), or None for a module of definitions."""
    for node in getattr(tree, "body", []):
        if isinstance(node, ast.For) and _tags_only(node):
            continue
        if isinstance(node, (ast.For, ast.AsyncFor, ast.While, ast.With, ast.AsyncWith)):
            return node.lineno
        value = node.value if isinstance(node, (ast.Expr, ast.Assign)) else None
        if isinstance(value, ast.Call):
            func = value.func
            name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
            if name in _RUNS_WORK:
                return node.lineno
    return None


def _tags_only(loop: ast.For) -> bool:
    """A loop over a written tuple or list that only sets attributes of each item from values
    that call nothing (``for o in F.relu, nn.ReLU: o.__default_init__ = kaiming_uniform_``):
    it labels objects while the module is defined, and runs no work."""
    if loop.orelse or not isinstance(loop.target, ast.Name) or not isinstance(loop.iter, (ast.Tuple, ast.List)):
        return False
    for statement in loop.body:
        if not (isinstance(statement, ast.Assign) and all(
                isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id == loop.target.id
                for t in statement.targets)):
            return False
        if any(isinstance(n, (ast.Call, ast.Await, ast.Yield, ast.YieldFrom, ast.NamedExpr, ast.Lambda))
               for n in ast.walk(statement.value)):
            return False
    return bool(loop.body)


def _verify_calls(text: str, path: str, package: str | None, sites: list[Site], fix: FixFn,
                  options: Options) -> list[VerifyResult]:
    """Optimizer-construction patches, checked on the optimizers they build (``calls.py``)."""
    device_name = str(options.device)
    out: list[VerifyResult] = []
    groups: dict[str, list[Site]] = {}
    for site in sites:
        groups.setdefault(site.rule.id, []).append(site)
    for group in groups.values():
        try:
            patched_text, skipped, error = _fix(fix, text, path, [group[0].rule], package)
        except Exception as exc:
            error, patched_text, skipped = f"{type(exc).__name__}: {exc}", text, []
        if error:
            out.extend(_result(s, path, s.line, s.class_name, SKIP, f"synthesis failed: {error}", device_name)
                       for s in group)
            continue
        map_edits(text, patched_text, group)
        for site in group:
            if not site.edited:
                why = _skip_reason(skipped, site)
                reason = f"not patched: {why}" if why else "the synthesized patch changes no line of this finding"
                out.append(_result(site, path, site.line, site.class_name, SKIP, reason, device_name))
                continue
            try:
                with _deterministic(options.device):
                    ok, reason, worst, details = check_optimizer_patch(path, text, patched_text, site.match.span,
                                                                       site.edited, package, options.device)
            except NotACallPatch as exc:
                out.append(_result(site, path, site.line, site.class_name, SKIP,
                                   f"{exc}; name a factory in [tool.adopter.verify] factories for "
                                   f"{site.class_name} to verify it", device_name))
                continue
            details["edited_lines"] = _span_text(site.edited)
            out.append(_result(site, path, site.line, site.class_name, PASS if ok else FAIL, reason, device_name,
                               max_abs_diff=None if worst == float("inf") else float(f"{worst:.3g}"),
                               details=details))
    return out


_SCRIPT_CODE = ("the patch is in top-level script code, which verify cannot run on its own; move that code "
                "into a function (verify then calls it with guessed inputs) to have it verified")


def _owner(tree: ast.Module | None, match: Match) -> str | None:
    """What to build for a match: its class, or for code outside classes the top-level function
    around it ("function:<name>"), or None for top-level script code."""
    if match.class_name not in ("<module>", SEQUENTIAL_OWNER):
        return match.class_name
    line = match.span[0]
    for node in getattr(tree, "body", []):
        if not node.lineno <= line <= (node.end_lineno or node.lineno):
            continue
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            return f"function:{node.name}"
        if isinstance(node, ast.ClassDef) and match.class_name == SEQUENTIAL_OWNER:
            # the members of an nn.Sequential the class builds (or the Sequential subclass itself)
            return node.name
    return None


def _from_verdict(rule: str, path: str, line: int, class_name: str, verdict: Verdict, device: str,
                  combined: bool = False) -> VerifyResult:
    timing = verdict.timing
    return VerifyResult(combined=combined,
        rule=rule, path=path, line=line, class_name=class_name, verdict=verdict.verdict, reason=verdict.reason,
        max_abs_diff=None if verdict.max_abs_diff is None else float(f"{verdict.max_abs_diff:.3g}"),
        forward_ratio=timing.forward_ratio if timing else None,
        forward_backward_ratio=timing.train_ratio if timing else None,
        memory_ratio=timing.memory_ratio if timing else None,
        device=device, details=verdict.details,
    )


def _model_wide(variants: list[Variant]) -> Variant:
    """The model-wide parts (layer flags, module flags, config fields) of the variants that
    reached single patches, merged for the check of all patches together (a key set to two
    different values is left out)."""
    merged: dict[str, dict[str, Any]] = {"attrs": {}, "flags": {}, "config": {}}
    clash: set[tuple[str, str]] = set()
    for variant in variants:
        for part in merged:
            for key, value in getattr(variant, part):
                if key in merged[part] and merged[part][key] != value:
                    clash.add((part, key))
                merged[part][key] = value
    items = {part: tuple((k, v) for k, v in values.items() if (part, k) not in clash) for part, values in merged.items()}
    return Variant(attrs=items["attrs"], flags=items["flags"], config=items["config"])


def _verify_combined(loader: ModuleLoader, original, text: str, path: str, package: str | None, rules: list[Rule],
                     sites: list[Site], fix: FixFn, builder: Builder, bench_builder: Builder,
                     options: Options, wide: Variant | None = None) -> list[VerifyResult]:
    device_name = str(options.device)
    label = "+".join(sorted(r.id for r in rules))
    copies = [Site(s.rule, s.match, s.line, s.class_name, set(s.anchors)) for s in sites]
    targets = combined_targets(original, text, []) or ["<module>"]  # for reports before the edit is known
    try:
        patched_text, _, error = _fix(fix, text, path, rules, package)
    except Exception as exc:
        return [_result(label, path, min(s.line for s in sites), targets[0], SKIP,
                        f"synthesis of all rules together raised {type(exc).__name__}: {exc}", device_name)]
    if error:
        return [_result(label, path, min(s.line for s in sites), targets[0], SKIP,
                        f"synthesis of all rules together failed: {error}", device_name)]
    map_edits(text, patched_text, copies)
    edited = [s for s in copies if s.edited]
    if not edited:
        return []
    targets = combined_targets(original, text, edited)
    if not targets:
        return []
    uses = _class_graph(text)
    try:
        patched = run_quietly(lambda: loader.patched(patched_text, "all"))
    except LoadError as exc:
        return [_result(label, path, min(s.line for s in sites), targets[0], FAIL,
                        f"the module with all patches does not import: {exc}", device_name)]
    checker = _Checker(path, original, patched, patched.__file__, builder, bench_builder, options, patched_text,
                       text)
    out: list[VerifyResult] = []
    for target in targets:
        members = classes_inside(uses, target)
        inside = [s for s in edited if s.class_name in members] or edited
        label = "+".join(sorted({s.rule.id for s in inside}))
        probe = Site(rules[0], inside[0].match, min(s.line for s in inside), target, set(),
                     set().union(*(s.edited for s in inside)))
        variant = Variant()
        verdicts, skip_reason = {}, None
        if wide is not None and wide != Variant():  # the flags single patches needed, for the whole model
            variant = wide
            verdicts, skip_reason = checker.check(target, [probe], variant)
            if skip_reason is not None or not verdicts:
                variant = Variant()
        if variant == Variant():
            verdicts, skip_reason = checker.check(target, [probe], variant)
        if skip_reason is None and probe in verdicts:
            _check_compared_values(checker, target, verdicts, {probe: list(checker.configs)})
        if skip_reason is not None:
            verdict = Verdict(SKIP, f"all {len(inside)} patches together: {skip_reason}")
        else:
            verdict = verdicts.get(probe) or Verdict(SKIP, "no edited line ran in this class")
            what = f"all {len(inside)} patches together" if len(inside) > 1 else "the file's one patch"
            if verdict.verdict != FAIL:
                ran = _count_ran(checker, target, inside)
                verdict.reason = f"{what} ({ran}): {verdict.reason}"
                if variant.label() and variant.label() not in verdict.reason:
                    verdict.reason += f"; with {variant.label()}"
            else:
                verdict.reason = f"{what}: {verdict.reason}"
        out.append(_from_verdict(label, path, probe.line, target, verdict, device_name, combined=True))
    return out


def _count_ran(checker: _Checker, target: str, sites: list[Site]) -> str:
    """How many of the patches ran in the combined check (the lines its last check traced)."""
    ran = sum(1 for s in sites if s.edited & checker.ran)
    if len(sites) == 1:
        return f"it ran in {target}" if ran else f"it did not run in {target}"
    return f"{ran} of them ran in {target}"
