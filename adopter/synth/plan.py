"""Turn one match into the edits that adopt the kernel (or a reason why it cannot be done).

Planning works on the ``ast`` tree and the match's nodes; it decides *what* changes, as
character spans of the current text, and :mod:`adopter.synth.apply` makes the changes with
LibCST.  Forward edits (SPEC section 4):

* the target assigns the last pattern node's output: the last matched expression is replaced
  by the target's right-hand side, so the code keeps its own left-hand side
  (``hidden_states = ...``, ``return ...``); the statements of the other matched nodes are
  deleted when each only computes its node;
* the target assigns several outputs (``$q, $k, $v = ...``): the last matched statement is
  replaced by the rendered assignment and the other matched statements are deleted;
* the matched nodes sit in an ``if`` and just before (or after) it: the statements before
  the ``if`` move into both branches (after it: to the end of both), after which the match
  is in one block on the matched path and the next round fuses it there.

Init edits replace the callee of the matched constructor call and keep its arguments.

Values come from the code at the place the pattern first reads them (the argument's own
source text), which is right in inlined helpers too, and are checked to still mean the same
thing where the fused call is evaluated.
"""

from __future__ import annotations

import ast
import re
from ..records import dataclass, field

from ..dsl import Temp, Var
from ..engine import Finding, matchers_for
from ..match import Match, commutes, node_view
from ..ruleset import Rule
from ..structure import Const, Ref, names_match
from ..structure.canon import TABLE
from ..structure.ops import SOFTMAX, TENSOR_METADATA
from ..structure.graph import Assumed
from ..structure.model import OWN_CALL
from .render import KEEP_ARGS, RenderError, parse_target, replace_names, substitute, template_vars
from .text import (
    SourceIndex, Span, StmtInfo, contains, read_names, span_of, stored_names, work_spans,
)
from ..structure.treewalk import ast_walk

MAX_MOVED_STATEMENTS = 8


class Skip(Exception):
    """The match is not rewritten; the message says why (shown by ``adopter fix``)."""


@dataclass(frozen=True)
class Straddle:
    if_start: tuple[int, int]  # character position of the ``if``
    moved: tuple[tuple[int, int], ...]  # character start positions of the moved statements
    mode: str  # "before": moved from before the if; "after": from after it
    branch: int  # the branch holding the rest of the match (0 body, 1 orelse)


@dataclass(frozen=True)
class Wrap:
    """Replace the statements ``first``..``last`` (character start positions; one block) by
    ``if guard: <those statements> else: <fast>``, or by ``fast`` alone when ``guard`` is
    None: a rewrite that keeps the original code for the cases it does not cover."""

    first: tuple[int, int]
    last: tuple[int, int]
    guard: str | None
    fast: str  # statements, unindented, one per line
    # With ``keep`` (and no guard): ``fast`` is put before the statements, which stay (with
    # their own edits) -- how a fused call is hoisted above the code that reads its results.
    keep: bool = False
    # Statements put first in the guarded branch, before the kept ones (unindented, one per
    # line): what the original statements need that the code before them no longer computes
    # (scores a caller hands over as their operands, :meth:`sdpa._Attention._handed_scores`).
    prelude: str = ""
    # Offsets (in the range) of statements put before the ``if``, out of the guarded branch
    # and ``fast`` alike: they compute what the guard reads and commute with the statements
    # before them (:meth:`sdpa._Attention._hoisted`).
    hoist: tuple = ()
    # Further guarded alternatives for the same statements, tried in order inside the guarded
    # branch, each ``(guard, fast)``: ``if guard: (if guard2: <statements> else: <fast2>) else:
    # <fast>``.  Two fixes of one caller whose guards pick among helpers a setting chooses
    # (core._nested: sssegmentation's non-local modes) each keep the other's case.
    inner: tuple = ()
    # Statements put after the ``if`` / ``else`` (unindented, one per line), run on both paths:
    # another computation's, interleaved with the guarded ones (:func:`interleaved.movable_tail`);
    # ``tail_offsets`` are the offsets (in the range) of the whole statements among them, out of
    # the guarded branch (the parts of an if among them are deleted from it by edits of their own).
    tail: str = ""
    tail_offsets: tuple = ()


@dataclass
class Edits:
    expr: dict[Span, str] = field(default_factory=dict)  # char span of an expression -> new text
    delete: set[Span] = field(default_factory=set)  # char spans of small statements to delete
    replace_stmt: dict[Span, str] = field(default_factory=dict)  # small statement -> new statement
    straddle: Straddle | None = None
    imports: set[tuple[str, str, str | None]] = field(default_factory=set)  # (module, name, alias)
    wrap: Wrap | None = None
    # A parameter appended to a function: (line, character column) of its ``def`` -> the
    # parameter's source; a keyword argument appended to a call: its character span -> ``name=value``
    params: dict[tuple[int, int], str] = field(default_factory=dict)
    keywords: dict[Span, str] = field(default_factory=dict)

    def key(self) -> tuple:
        return (
            tuple(sorted(self.expr.items())), tuple(sorted(self.delete)), tuple(sorted(self.replace_stmt.items())),
            self.straddle, self.wrap, tuple(sorted(self.params.items())), tuple(sorted(self.keywords.items())),
        )


@dataclass
class Plan:
    rule: Rule
    match: Match
    finding: Finding
    edits: Edits
    regions: list[Span]  # byte spans this plan touches (for conflicts between plans)
    signature: tuple


class KernelNames:
    """Local names for imported kernels: an existing import is reused; a name already bound
    to something else in the module gets a fresh alias."""

    def __init__(self, index: SourceIndex):
        self.index = index
        self.existing: dict[tuple[str, str], str] = {}
        for stmt in index.tree.body:
            if isinstance(stmt, ast.ImportFrom) and stmt.level == 0 and stmt.module:
                for alias in stmt.names:
                    self.existing.setdefault((stmt.module, alias.name), alias.asname or alias.name)
        self.chosen: dict[tuple[str, str], str] = {}

    def local(self, dotted: str) -> tuple[str, tuple[str, str, str | None]]:
        module, name = dotted.rsplit(".", 1)
        key = (module, name)
        if key in self.existing:
            local = self.existing[key]
            return local, (module, name, None if local == name else local)
        if key not in self.chosen:
            taken = self.index.identifiers | set(self.chosen.values())
            local = name
            if local in taken:
                local = f"adopter_{name}"
                counter = 2
                while local in taken:
                    local = f"adopter_{name}_{counter}"
                    counter += 1
            self.chosen[key] = local
        local = self.chosen[key]
        return local, (module, name, None if local == name else local)


def _chunk_text(bound: Ref) -> bool:
    """A chunk of a name bound to ``x.chunk(N, ...)`` and read as ``c[k]`` (graph: key ``c#k``,
    text ``c[k]``, in the function's own body)."""
    name, sep, index = bound.key.partition("#")
    return bool(sep) and name.isidentifier() and index.isdigit() and bound.text == f"{name}[{index}]"


def _kernel_module(rule: Rule) -> str:
    return rule.kernel.import_.rsplit(".", 1)[0] if "." in rule.kernel.import_ else rule.kernel.import_


def _imports_mapping(rule: Rule, names: KernelNames, edits: Edits):
    module = _kernel_module(rule)

    def mapping(name: str) -> str | None:
        if "." in name and (name == rule.kernel.import_ or name.startswith(module + ".")):
            local, request = names.local(name)
            edits.imports.add(request)
            return local
        return None

    return mapping


def _guards_functions(rule: Rule, match: Match) -> bool:
    """May the fix pass an activation held as a function (``self.act = F.gelu``) to the kernel,
    behind a TorchScript guard (:meth:`Planner._scripting_guard`)?  For a rule whose forward
    target is a kernel call that runs any callable it is given (its layers are called, never
    read for weights), outside containers; a synthesiser reads layers its own way."""
    return rule.synth is None and bool(rule.forward_target or rule.forward_targets) and not (
        rule.container_target is not None and match.in_container)


def _synth_hook(name: str):
    """The per-rule planning module ``adopter.synth.<name>`` (only there: a rule file must not
    be able to import arbitrary code)."""
    import importlib

    try:
        module = importlib.import_module(f"adopter.synth.{name}")
    except ImportError:
        raise Skip(f"the rule's synthesis module adopter.synth.{name} does not exist") from None
    if not callable(getattr(module, "plan", None)):
        raise Skip(f"adopter.synth.{name} has no plan() function")
    return module


# ----------------------------------------------------------------------------- entry point


class Planner:
    def __init__(self, text: str, tree: ast.Module):
        self.index = SourceIndex(text, tree)
        self.names = KernelNames(self.index)

    def signature(self, rule: Rule, match: Match) -> tuple:
        return (
            rule.id, match.class_name, match.flow,
            tuple((n.kind, n.op, self.index.segment(n.span) if n.span else "") for n in match.nodes),
        )

    def plan(self, rule: Rule, match: Match, finding: Finding) -> Plan:
        if not rule.fixable:
            raise Skip("the rule only reports (it has no target)")
        if match.unfixable and not (match.settings and rule.synth is not None
                                    and getattr(_synth_hook(rule.synth), "GUARDS_SETTINGS", False)):
            raise Skip(match.unfixable)  # (a synthesizer that guards settings checks them itself)
        if rule.container_target is None and match.unfusable_container(rule.container_steps):
            raise Skip("the matched layers run inside a container (nn.Sequential); rewrite it by hand")
        for _, ctor in match.ctors:
            if ctor.unlike and not (ctor.function and _guards_functions(rule, match)):
                raise Skip(f"`{ctor.attr}`: {ctor.unlike}")
        for node in match.nodes:
            if node.kind == "call" and node.op == "torch.nn.functional":
                # getattr(F, name)(x): as `self.act = getattr(F, name)`, a function, no layer
                raise Skip("the activation `getattr(torch.nn.functional, ...)` is a function held as a value, "
                           "not a layer: the kernel takes a layer module (and TorchScript cannot pass a "
                           "function as a value)")
        for node in match.nodes:
            if node.kind == "layer" and node.span and node.func_span and node.func_span[:2] != node.span[:2]:
                # self.maybe_ckpt(self.w_1, x): the layer applied by another callable
                # (structure/bindings._appliers), which may checkpoint it; a fused call would
                # drop what that callable does besides applying it
                raise Skip(f"`{self.index.segment(node.func_span)}` runs through "
                           f"`{self.index.segment(node.span)}` (a callable applying it, which may checkpoint "
                           "it): rewrite it by hand")
        for node in match.nodes:  # a literal the code only has as a parameter's default
            view = node.view
            for _, value in (view.kwargs if view is not None else node.kwargs):
                if isinstance(value, Assumed):
                    raise Skip(value.why)
        edits = Edits()
        regions: list[Span] = []
        if rule.container_target is not None and match.in_container:
            self._container(rule, match, edits, regions)
            return Plan(rule, match, finding, edits, regions, self.signature(rule, match))
        if rule.synth is not None:
            hook = _synth_hook(rule.synth)
            hook.plan(self, rule, match, edits, regions)
        elif rule.forward_target:
            self._forward(rule, match, edits, regions)
        if rule.init_target:
            self._init(rule, match, edits, regions)
        return Plan(rule, match, finding, edits, regions, self.signature(rule, match))

    # ------------------------------------------------------------------------- containers
    def _container(self, rule: Rule, match: Match, edits: Edits, regions: list[Span]) -> None:
        """Every matched layer is a member of one ``nn.Sequential`` construction: the container's
        class becomes the rule's ``container_target`` (a drop-in subclass that fuses its members
        itself), in the call that builds it or as the base of a same-file subclass.  All matches
        in one container plan this same edit, so they are applied together."""
        if not match.members_only():
            raise Skip("some matched layers run inside a container (nn.Sequential) and others outside it; "
                       "rewrite it by hand")
        spans = {ctor.container for _, ctor in match.ctors}
        if len(match.ctors) < len(match.nodes) or None in spans or len(spans) != 1:
            raise Skip("the matched layers are not the members of one nn.Sequential construction; rewrite it by hand")
        span = spans.pop()
        expr = self.index.expr_at(span)
        if not isinstance(expr, (ast.Name, ast.Attribute)):
            raise Skip("the container's class is not named by a plain name; rewrite it by hand")
        owner = next((info.stmt for info in self.index.stmts.values()
                      if isinstance(info.stmt, ast.ClassDef) and any(span_of(b) == span for b in info.stmt.bases)),
                     None)
        if owner is not None:
            defined = {s.name for s in owner.body if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef))}
            if defined & OWN_CALL:
                raise Skip(f"`{owner.name}` (an nn.Sequential subclass) defines its own forward; rewrite it by hand")
        local, request = self.names.local(rule.container_target)
        edits.imports.add(request)
        edits.expr[self.index.char_span(span)] = local
        regions.append(span)

    # ------------------------------------------------------------------------- forward
    def _forward(self, rule: Rule, match: Match, edits: Edits, regions: list[Span]) -> None:
        nodes = match.nodes
        if any(n.span is None or n.stmt is None for n in nodes):
            raise Skip("the matched code could not be located")
        if len({n.func for n in nodes}) > 1:
            raise Skip("the match spans a helper method inlined into its caller; rewrite it by hand")
        for node in nodes:
            info = self.index.stmt(node.stmt)
            if info is not None and not contains(span_of(info.stmt), node.span):
                raise Skip("the matched layers run inside a container (nn.Sequential); rewrite it by hand")
        if len({n.scope for n in nodes}) > 1:
            self._straddle(rule, match, edits, regions)
            return
        # The match does not say which forward alternative it came from: take the first one
        # whose slots hold exactly the values the match bound.
        # The match records the alternative that matched; try it first.
        # The patterns as the matcher read them (canonical steps), so that arguments are read
        # in the form they were bound in.
        # Variants of an alternative (adopter.equivalents) render the alternative's target.
        matchers = matchers_for(rule)
        forwards = [matcher.forward for matcher in matchers] or [rule.forward]
        targets = rule.forward_targets or (rule.forward_target,)
        owners = [matcher.alternative for matcher in matchers] or [0]
        order = sorted(range(len(forwards)), key=lambda i: (i != match.variant, owners[i] != match.alternative))
        # Another pattern of as many steps renders the match only when the match bound every
        # variable it names: ``x * rsqrt(...).to(x.dtype)`` is no ``xu * rsqrt(...)`` with ``xu``
        # an upcast of x, although both are seven steps of the same operations.
        # (nor ``x * (1 / sqrt(...))``, the same count of steps with a division where the code
        # casts): each step of it must be the operation the matched node computes.
        bound = {name for name, _ in match.env}
        alternatives = [(forwards[i].nodes, targets[owners[i]]) for i in order
                        if len(forwards[i].nodes) == len(nodes)
                        and (i == match.variant or (_pattern_vars(forwards[i].nodes) <= bound
                                                    and _same_steps(forwards[i].nodes, nodes)))]
        error: Skip | None = None
        for pattern, target_text in alternatives:
            if target_text is None:
                error = error or Skip("this form is reported only (the rule has no automatic fix for it); "
                                      "rewrite it by hand")
                continue
            trial_edits, trial_regions = Edits(), []
            try:
                self._forward_with(rule, pattern, target_text, match, trial_edits, trial_regions)
            except Skip as exc:
                error = error or exc
                continue
            edits.expr.update(trial_edits.expr)
            edits.delete |= trial_edits.delete
            edits.replace_stmt.update(trial_edits.replace_stmt)
            edits.imports |= trial_edits.imports
            regions.extend(trial_regions)
            return
        raise error or Skip("no forward pattern of the rule fits the match")

    def _forward_with(self, rule: Rule, pattern, target_text: str, match: Match, edits: Edits,
                      regions: list[Span]) -> None:
        index = self.index
        nodes = match.nodes
        infos = [index.stmt(n.stmt) for n in nodes]
        if any(info is None for info in infos):
            raise Skip("a matched statement could not be located")
        block = infos[0].block
        if any(info.block is not block for info in infos):
            raise Skip("the matched operations are in different blocks")

        target = parse_target(target_text)
        outs = [o for o in target.outs if o != "_"]
        # The target replaces pattern nodes 0..k: up to the one producing its last output.
        # Later pattern nodes are context the code keeps (``self._split_heads(...)``).
        producers = [i for i, p in enumerate(pattern) if any(Var(o) in p.outs for o in outs)]
        if outs and not producers:
            raise Skip("the rule's target assigns values no pattern node produces")
        k = max(producers) if outs else len(pattern) - 1
        several = len(target.outs) > 1
        if not several and outs and [o.name for o in pattern[k].outs if isinstance(o, Var)] != outs:
            raise Skip("the rule's target does not assign the output of the node it replaces")
        fused, context = list(range(k + 1)), list(range(k + 1, len(nodes)))
        last, last_info = nodes[k], infos[k]
        # The replaced expression itself: what it computes beyond the match must not be lost.
        last_expr = index.find_expr(last_info.stmt, last.span, (ast.Call, ast.BinOp, ast.AugAssign))
        if last_expr is None:
            raise Skip(f"the operation at line {last.span[0]} could not be located")

        # A statement whose values the target reads by name stays as it is (``x1, x2 =
        # self.w12(x).chunk(2, dim=-1)`` before ``liger_swiglu(x1, x2, self.act)``), with the
        # matched operations inside it.
        reads = set(template_vars(target.rhs))
        kept = {infos[i].index for i in fused[:-1]
                if pattern[i].outs and all(isinstance(o, Var) and o.name in reads for o in pattern[i].outs)
                and not contains(last.span, nodes[i].span)}
        deleted: dict[int, StmtInfo] = {}
        for i in fused:
            info = infos[i]
            if contains(last.span, nodes[i].span) or info.index in kept:
                continue
            if info.index == last_info.index:
                raise Skip(f"the statement at line {info.stmt.lineno} computes more than the fused operations")
            if info.index > last_info.index:
                raise Skip("the matched operations are not in order in one block")
            deleted[info.index] = info
        self._check_unread_after(deleted, last_info, last_expr, edits, self._linear_sizes(match, nodes, infos, deleted))
        fused_nodes = [nodes[i] for i in fused]
        fused_infos = [infos[i] for i in fused]
        if several:
            self._check_simple(last_info, fused_nodes, fused_infos, allow_augmented=False)
        elif isinstance(last_expr, ast.AugAssign):
            raise Skip("the last fused operation is an augmented assignment")
        # work in a deleted statement besides the matched operations: allowed only where it
        # is a value the target passes on (checked once the values are known, below)
        moved: list[tuple[Span, StmtInfo]] = []
        for info in deleted.values():
            self._check_simple(info, fused_nodes, fused_infos, allow_augmented=True, moved=moved)
        # A deleted statement may only assign what the fused code consumes or re-assigns.
        # A node that defines nothing (the marker of an inlined helper call, ``rotate_half(q)``,
        # whose value the helper's body returns) loses nothing when it goes.
        for i in fused:
            if not nodes[i].defs and not pattern[i].outs:
                continue
            if infos[i].index in deleted and not self._consumed(pattern, i, k, set(outs)):
                raise Skip(f"deleting line {infos[i].stmt.lineno} would lose a value the fused code does not produce")
        for i in context:
            touched = infos[i].index in deleted or (several and infos[i].index == last_info.index)
            if touched or contains(last.span, nodes[i].span):
                raise Skip(f"`{index.segment(nodes[i].span)}` would be rewritten away")

        # Values the target reads, from the code where the pattern first reads them.
        values: dict[str, str] = {}
        value_spans: list[Span] = []
        twice: set[Span] = set()
        # An activation looked up and called in place (``ACT2FN[config.act](x)``) is a module
        # too: passing the lookup as a value is what a bound layer would be.
        called_as = {pattern[i].layer.name: "layer" if nodes[i].kind == "call" and nodes[i].maybe else nodes[i].kind
                     for i in fused if pattern[i].layer is not None}
        rhs = target.rhs
        form = rule.function_form
        if form is not None and called_as.get(form.var, "layer") != "layer":
            # ``F.silu(gate)`` called in place: no layer to pass, so the function form of the
            # kernel, which computes that function itself, with the call's keywords passed on.
            rhs, passed = self._function_form(form, rule, pattern, fused, nodes, rhs)
            for var, (text, span, holder) in passed.items():
                value_spans.append(span)
                self._check_available(text, span, infos[holder], last_info, deleted, nodes)
                values[var] = text
        for var in template_vars(rhs):
            if var in values:
                continue
            text, span, holder = self._value(rule, pattern, match, var, nodes)
            if holder > k:
                raise Skip(f"the target needs ${var}, which is only computed after the fused code")
            if called_as.get(var, "layer") != "layer":
                # A layer the target takes as an argument must be a module: a function passed
                # as a value (``bias_gelu(x, self.fc, F.gelu)``) is not valid TorchScript, so
                # the patch would break torch.jit.script where the original code worked.
                raise Skip(f"`{text}` is a function, not a layer: passing it as a value breaks torch.jit.script")
            if span is not None:
                value_spans.append(span)
                self._check_available(text, span, infos[holder], last_info, deleted, nodes)
                if moved and sum(1 for _ in re.finditer(rf"\${re.escape(var)}\b", rhs)) > 1:
                    twice.add(span)  # read twice by the target: not a place to move work to
            values[var] = text
        held = sorted({var for var, ctor in match.ctors if ctor.function} & set(template_vars(rhs)))
        # (kept statements stay as they are, so the expression reads their names as written)
        original = self._inlined(last.span, deleted) if held else None
        if held and original is None:
            # the original of the match cannot be written as one expression beside the kernel call
            ctor = next(ctor for var, ctor in match.ctors if var == held[0])
            raise Skip(f"`{ctor.attr}`: {ctor.unlike}")
        # (a kept statement stays as written, its extra arguments with it)
        rest = self._extra_args(pattern, [i for i in fused if infos[i].index not in kept], nodes, k,
                                "..." in target.rhs)
        value_spans += [span for span, _ in rest]
        for sub_span, info in moved:
            # ``x = self.fc1(x.reshape(-1, d)); x = self.bn1(x)``: the reshape is the Linear's
            # input, which the fused call takes at the last statement, so it moves there whole;
            # what it reads means the same there (_check_available), and with no statement kept
            # in between nothing else runs between its old and new place
            if not any(contains(v, sub_span) for v in value_spans if v not in twice):
                raise Skip(f"the statement at line {info.stmt.lineno} also computes `{index.segment(sub_span)}`")
            if any(k not in deleted for k in range(info.index + 1, last_info.index)):
                raise Skip(f"the statement at line {info.stmt.lineno} also computes `{index.segment(sub_span)}`, "
                           "and other statements run before the fused call would")

        # Nothing the replaced code computes may get lost.
        matched_spans = {n.span for n in fused_nodes}
        read_as_minus_one = _minus_one_spans(fused_nodes)
        replaced = last_info.stmt.value if several else last_expr
        for sub_span, sub in work_spans(replaced):
            if sub_span in matched_spans or any(contains(v, sub_span) for v in value_spans):
                continue
            if any(contains(v, sub_span) for v in read_as_minus_one):
                continue  # a size the flow reads as the -1 of a view to rows (graph._rows_view)
            raise Skip(f"the fused code would drop `{index.segment(sub_span)}`")

        kernel_mapping = _imports_mapping(rule, self.names, edits)
        # A callee the target names as the pattern does (``torch.optim.AdamW``) is written as
        # the code wrote it (``AdamW``, ``optim.AdamW``), as init targets do: no new import.
        callees = {
            pattern[i].op: index.segment(nodes[i].func_span) for i in fused
            if nodes[i].kind == "call" and nodes[i].func_span is not None and "." in pattern[i].op
        }

        def mapping(name: str) -> str | None:
            return callees.get(name) or kernel_mapping(name)

        chosen = [i for i in fused if nodes[i].kind == "call" and nodes[i].choices]
        try:
            if chosen:
                # klass = Lion if use_lion else Adam; klass(...): the keywords the target adds
                # are passed only when the class is the one the rule is about
                rhs = _guarded_call(rhs, nodes[chosen[-1]], pattern[chosen[-1]].op, index,
                                    lambda t: substitute(replace_names(t, mapping), values,
                                                         ", ".join(text for _, text in rest)))
            else:
                rhs = substitute(replace_names(rhs, mapping), values, ", ".join(text for _, text in rest))
        except RenderError as exc:
            raise Skip(str(exc)) from None

        if held:
            rhs = self._scripting_guard(original, rhs, edits)
        if several:
            names = [self._output_name(var, fused_nodes, fused_infos, pattern) for var in target.outs]
            edits.replace_stmt[index.char_span(span_of(last_info.stmt))] = f"{', '.join(names)} = {rhs}"
            regions.append(span_of(last_info.stmt))
        else:
            edits.expr[index.char_span(last.span)] = rhs
            regions.append(last.span)
        for info in deleted.values():
            edits.delete.add(index.char_span(span_of(info.stmt)))
            regions.append(span_of(info.stmt))

    def _inlined(self, span: Span, deleted: dict) -> str | None:
        """The expression at ``span`` with the values of the ``deleted`` statements written in
        where it reads them (``h = self.fc(x)`` then ``self.act(h)``: ``self.act((self.fc(x)))``),
        the one expression that computes what the matched statements did; None unless each
        deleted statement is ``name = <value>`` and the expression reads its name."""
        text = self.index.segment(span)
        for info in sorted(deleted.values(), key=lambda i: i.index, reverse=True):
            stmt = info.stmt
            if not (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name)):
                return None
            value = self.index.segment(span_of(stmt.value))
            if not isinstance(stmt.value, (ast.Call, ast.Name, ast.Attribute, ast.Subscript)):
                value = f"({value})"
            try:
                tree = ast.parse(f"({text})", mode="eval")
            except SyntaxError:
                return None
            reads = [n for n in ast_walk(tree) if isinstance(n, ast.Name) and n.id == stmt.targets[0].id]
            if not reads:
                return None
            lines = f"({text})".split("\n")
            for name in sorted(reads, key=lambda n: (n.lineno, n.col_offset), reverse=True):
                row = lines[name.lineno - 1].encode("utf-8")
                lines[name.lineno - 1] = (row[:name.col_offset].decode("utf-8") + value
                                          + row[name.end_col_offset:].decode("utf-8"))
            text = "\n".join(lines)[1:-1]
        return text

    def _scripting_guard(self, original: str, rhs: str, edits: Edits) -> str:
        """``(<the code as written> if torch.jit.is_scripting() else <the kernel call>)``: the
        kernel call passes an activation that the module holds as a function (``self.act =
        F.gelu``, a same-file ``gelu``, a table of functions keyed at run time), which eager
        code may pass as a value and the kernel runs (fused where it is a GELU, as written
        otherwise), but TorchScript may not.  TorchScript compiles only the first branch of a
        conditional on ``torch.jit.is_scripting()`` (a static if), so a module that scripted
        before the patch scripts the same after it."""
        scripting = _module_spelling("torch.jit.is_scripting", self.index.tree)  # (import torch: torch.jit...)
        if scripting is None:
            scripting, request = self.names.local("torch.jit.is_scripting")
            edits.imports.add(request)
        return f"({original} if {scripting}() else {rhs})"

    def _function_form(self, form, rule: Rule, pattern, fused, nodes, rhs: str):
        """The target for an activation that is a literal call of a function the rule's
        function-form kernel computes (``[forward.function_form]``): ``rhs`` with the kernel
        renamed, ``$var`` dropped and the call's keywords passed on by name, and the values of
        those keywords (placeholder -> (text, span, pattern index)).  Any other function, or
        an argument the kernel does not take (``inplace=True``, ``**kwargs``), is left to the
        caller's refusal."""
        i = next((i for i in fused if pattern[i].layer is not None and pattern[i].layer.name == form.var), None)
        if i is None:
            return rhs, {}
        node = nodes[i]
        # F.gelu itself, or a same-file function whose body is that function's formula (``def
        # gelu(x): return x * 0.5 * (1.0 + torch.erf(x / math.sqrt(2.0)))``, structure/formulas.py:
        # called by its bare name; its variant is read as a constant ``approximate=``)
        if node.op not in form.functions and not (node.canon in form.functions and node.op.isidentifier()):
            return rhs, {}
        view = node.view  # the call read as the function's signature (a formula's variant included)
        args, kwargs, kwarg_spans = (view.args, view.kwargs, view.kwarg_spans) if view is not None else (
            node.args, node.kwargs, node.kwarg_spans)
        call = self.index.segment(node.span)
        if len(args) != len(pattern[i].args):
            raise Skip(f"`{call}` passes arguments the function-form kernel does not take")
        passed: dict[str, tuple[str, Span, int]] = {}
        keywords = []
        for j, ((name, value), (value_span, _)) in enumerate(zip(kwargs, kwarg_spans)):
            if name not in form.keywords or (value_span is None and not isinstance(value, Const)):
                raise Skip(f"`{call}` passes `{name}`, which the function-form kernel does not take")
            if value_span is None:  # implied by the formula
                text = repr(value.value)
                keywords.append(f", {name}=" + (f'"{value.value}"' if isinstance(value.value, str) and text[0] == "'"
                                                and '"' not in text and "\\" not in text else text))
                continue
            passed[f"__kw{j}"] = (self.index.segment(value_span), value_span, i)
            keywords.append(f", {name}=$__kw{j}")
        var = re.escape(form.var)
        new, count = re.subn(rf",\s*\${var}\s*\)", "".join(keywords) + ")", rhs)
        if count != 1 or re.search(rf"\${var}\b", new):
            raise Skip(f"the target passes ${form.var} where its function form cannot leave it out")
        return new.replace(rule.kernel.import_ + "(", form.kernel + "("), passed

    @staticmethod
    def _consumed(pattern, i: int, k: int, target_outs: set[str]) -> bool:
        """Is every output of pattern node ``i`` read by a later fused node or re-assigned by
        the target (so that deleting the statement computing it loses nothing)?"""
        later = set()
        for pnode in pattern[i + 1:k + 1]:
            later.update(pnode.args)
            later.update(v for _, v in pnode.kwargs)
            if pnode.layer is not None:
                later.add(pnode.layer)
        outs = [o for o in pattern[i].outs if isinstance(o, Var)]
        if Temp(i) in later:
            return True
        return bool(outs) and all(o in later or o.name in target_outs for o in outs)

    def _extra_args(self, pattern, fused, nodes, k: int, passed_on: bool) -> list[tuple[Span, str]]:
        """Arguments the code passes beyond the pattern's ``...``: only the last fused node's
        can be passed on (where the target says ``...``); anywhere else they would be lost."""
        out: list[tuple[Span, str]] = []
        for i in fused:
            pnode, node = pattern[i], nodes[i]
            if not pnode.rest or node.kind not in ("call", "method", "layer"):
                continue
            named = {name for name, _ in pnode.kwargs}
            args, kwargs, arg_spans, kwarg_spans = node_view(pnode, node)
            # (arg spans start with a method's receiver, as pnode.args does)
            extras = [(sp, None) for sp in arg_spans[len(pnode.args):]]
            for (name, _), (value_span, whole) in zip(kwargs, kwarg_spans):
                if name in named:
                    continue
                if value_span is None and whole is None:
                    if node.kind == "call" and node.canon == SOFTMAX and TABLE.function(node.op) is None \
                            and TABLE.module(node.op) is None:
                        # a same-file function read as a softmax in float32 (fairseq's
                        # utils_softmax): its dtype is computed, not written at the call
                        raise Skip(f"the fused call would drop `{name}=`, which `{node.op}` computes in")
                    continue  # a module constructor's argument, not written at the call
                # a positional argument read as a keyword (value span == whole span) is passed by name
                extras.append((whole, name if whole == value_span and name != "**" else None))
            for extra, name in extras:
                if extra is None:
                    raise Skip("the fused call would drop an argument the code does not write at the call")
                text = self.index.segment(extra)
                if i != k or not passed_on:
                    raise Skip(f"the fused call would drop the argument `{text}`")
                out.append((extra, f"{name}={text}" if name else text))
        return out

    def _linear_sizes(self, match: Match, nodes, infos, deleted: dict) -> dict[str, tuple[str, str]]:
        """For each deleted statement ``h = <layer>(x)`` whose layer is built as exactly
        ``torch.nn.Linear`` and whose input is a plain name the function never assigns after
        it: ``h`` -> (``x``, ``<layer>``).  Such an ``h`` has the sizes ``(*x.shape[:-1],
        <layer>.out_features)`` (a Linear maps only the last axis), so a read of one of its sizes
        after the fused code can read them from what remains (speechbrain's shape-back
        ``w_bn.reshape(w.shape[0], w.shape[1], w.shape[2])`` after ``w = self.w(x)``)."""
        linear = {ctor.attr for _, ctor in match.ctors
                  if ctor.fqn == "torch.nn.Linear" and not ctor.via and not ctor.unlike and not ctor.table}
        out: dict[str, tuple[str, str]] = {}
        for node, info in zip(nodes, infos):
            stmt = info.stmt
            if info.index not in deleted or not isinstance(stmt, ast.Assign) or len(stmt.targets) != 1:
                continue
            target, value = stmt.targets[0], stmt.value
            if not (target.__class__ is ast.Name and value.__class__ is ast.Call and len(value.args) == 1
                    and not value.keywords and value.args[0].__class__ is ast.Name
                    and value.func.__class__ is ast.Attribute and value.func.value.__class__ is ast.Name
                    and value.func.value.id == "self" and value.func.attr in linear):
                continue
            x = value.args[0].id
            function = _enclosing_function(self.index.tree, span_of(stmt))
            if any(n.__class__ is ast.Name and n.id == x and n.ctx.__class__ is not ast.Load
                   and n.lineno >= stmt.lineno for n in ast_walk(function)):
                continue
            out[target.id] = (x, self.index.segment(span_of(value.func)))
        return out

    def _check_unread_after(self, deleted: dict, last_info: StmtInfo, last_expr: ast.AST,
                            edits: Edits, sizes: dict) -> None:
        """No code outside the replaced expression reads the metadata of a name a deleted
        statement assigns, unless the fused statement assigns that name anew before the read.  The matcher lets
        code after a match read an intermediate's metadata (``(act(gate.float()) *
        up.float()).to(gate.dtype)``): the kernel applies there, but deleting ``gate = ...``
        would leave that read undefined, so such a site is reported and left to the reader."""
        names = {t.id for info in deleted.values() for target in _targets(info.stmt)
                 for t in ast_walk(target) if isinstance(t, ast.Name)}
        if not names:
            return
        renewed = {t.id for target in _targets(last_info.stmt) for t in ast_walk(target) if isinstance(t, ast.Name)}
        first = min(info.stmt.lineno for info in deleted.values())
        stmt_spans = [span_of(info.stmt) for info in deleted.values()]
        replaced, last_end = span_of(last_expr), span_of(last_info.stmt)[2]
        # (values read again the matcher has ruled out: only a read of metadata remains)
        function = _enclosing_function(self.index.tree, stmt_spans[0])
        sized = _size_reads(function) if sizes else {}
        rewrites: dict = {}
        for read in ast_walk(function):
            node = read.value if read.__class__ is ast.Attribute and read.attr in TENSOR_METADATA \
                else _cast_template(read)
            if node.__class__ is ast.Name and node.id in names and node.lineno >= first:
                where = span_of(node)
                if contains(replaced, where) or any(contains(s, where) for s in stmt_spans) \
                        or (node.id in renewed and node.lineno > last_end):
                    continue
                rebound = _rebound_before(function, last_info, node, first) if node.id in sizes else None
                if rebound is True:
                    continue  # the name's new value: a statement after the fused one assigned it
                if rebound is False and id(read) in sized:
                    # one size of a deleted Linear's output: read from its input and the layer
                    x, layer = sizes[node.id]
                    outer, at = sized[id(read)]
                    rewrites[self.index.char_span(span_of(outer))] = \
                        f"(*{x}.shape[:-1], {layer}.out_features)[{self.index.segment(span_of(at))}]"
                    continue
                raise Skip(f"`{node.id}` is read again at line {node.lineno} after the fused code; "
                           "rewrite it by hand")
        edits.expr.update(rewrites)

    def _check_simple(self, info: StmtInfo, nodes, infos, allow_augmented: bool, moved: list | None = None) -> None:
        """A statement that is deleted (or replaced whole) must only compute matched nodes;
        with ``moved``, the other work of an assignment's value is collected there with the
        statement instead (the caller allows it where the fused call takes it as a value)."""
        stmt = info.stmt
        here = {n.span for n, i in zip(nodes, infos) if i is info or i.stmt is stmt}
        here.update(inner for n, i in zip(nodes, infos) if n.inner and (i is info or i.stmt is stmt) for inner in n.inner)
        line = stmt.lineno
        if isinstance(stmt, ast.Assign):
            # a plain name, or a tuple of them (``x1, x2 = h.chunk(2, dim=-1)``: each is checked
            # to be consumed by the fused code before the statement goes)
            if len(stmt.targets) != 1 or not (isinstance(stmt.targets[0], ast.Name) or (
                    isinstance(stmt.targets[0], (ast.Tuple, ast.List))
                    and all(isinstance(e, ast.Name) for e in stmt.targets[0].elts))):
                raise Skip(f"the statement at line {line} assigns more than a plain name")
            value = stmt.value
        elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None and isinstance(stmt.target, ast.Name):
            value = stmt.value
        elif isinstance(stmt, ast.Expr):
            value = stmt.value
        elif allow_augmented and isinstance(stmt, ast.AugAssign) and isinstance(stmt.target, ast.Name):
            if span_of(stmt) not in here:
                raise Skip(f"the statement at line {line} does other work")
            value = stmt.value
            for sub_span, _ in work_spans(value):
                if sub_span not in here:
                    raise Skip(f"the statement at line {line} also computes `{self.index.segment(sub_span)}`")
            return
        else:
            raise Skip(f"the statement at line {line} does other work")
        if span_of(value) not in here:
            raise Skip(f"the statement at line {line} does other work")
        for sub_span, _ in work_spans(value):
            if sub_span not in here:
                if moved is not None:
                    moved.append((sub_span, info))
                    continue
                raise Skip(f"the statement at line {line} also computes `{self.index.segment(sub_span)}`")

    def _value(self, rule: Rule, pattern, match: Match, var: str, nodes) -> tuple[str, Span | None, int]:
        """The text of ``$var`` at the first place the pattern reads it (and that place)."""
        env = dict(match.env)
        bound = env.get(var)
        for i, pnode in enumerate(pattern):
            node = nodes[i]
            if pnode.layer is not None and pnode.layer.name == var:
                if node.func_span is None or (node.layer if node.kind == "layer" else node.op) != bound:
                    raise Skip("the rule's pattern does not fit the match")
                return self.index.segment(node.func_span), node.func_span, i
            for j, pvalue in enumerate(pnode.args):
                if pvalue == Var(var):
                    sub = self._arg(rule, pnode, node, j, bound)
                    return self.index.segment(sub), sub, i
            for name, pvalue in pnode.kwargs:
                if pvalue == Var(var) and node.kind in ("call", "method", "layer"):
                    _, kwargs, _, kwarg_spans = node_view(pnode, node)
                    if dict(kwargs).get(name) != bound:
                        raise Skip("the rule's pattern does not fit the match")
                    for (key, _), (value_span, _) in zip(kwargs, kwarg_spans):
                        if key == name and value_span is not None:
                            return self.index.segment(value_span), value_span, i
                    raise Skip(f"keyword {name}= of ${var} could not be located")
            if any(o == Var(var) for o in pnode.outs):
                if isinstance(bound, Ref) and not bound.key.startswith("%") and all(isinstance(o, Var) for o in pnode.outs) \
                        and ((bound.text.isidentifier() and bound.key.partition("@")[0] == bound.text)
                             or _chunk_text(bound)):
                    # a name the code assigns (or a chunk of one, ``c[1]`` of ``c = h.chunk(2)``;
                    # ``gate@1``: the name in a helper's body inlined at a call, the body the
                    # rewrite edits): its statement stays (see ``kept``), the target reads it
                    return bound.text, None, i
                raise Skip(f"the target needs ${var}, an intermediate value the fused code no longer computes")
        if isinstance(bound, Const):
            return repr(bound.value), None, -1
        if isinstance(bound, Ref) and bound.text and bound.key.startswith("init:"):
            return bound.text, None, -1
        raise Skip(f"the target needs ${var}, which is not available where the fused code goes")

    def _arg(self, rule: Rule, pnode, node, j: int, bound) -> Span:
        """The span of the code argument that pattern argument ``j`` bound (operands of a
        commutative operator may have matched the other way round)."""
        args, _, arg_spans, _ = node_view(pnode, node)
        code_args = list(args)
        if j < len(code_args) and code_args[j] != bound:
            swap = commutes(pnode, rule.commutative) and len(code_args) == 2
            if not (swap and code_args[1 - j] == bound):
                raise Skip("the rule's pattern does not fit the match")
            j = 1 - j
        if j >= len(arg_spans) or j >= len(code_args) or arg_spans[j] is None:
            raise Skip("an argument could not be located")
        sub = arg_spans[j]
        if self.index.segment(sub).startswith("*"):
            raise Skip("a starred argument cannot be passed on")
        return sub

    def _check_available(self, text: str, span: Span, holder: StmtInfo, last: StmtInfo, deleted, nodes) -> None:
        """The names ``text`` reads must mean at the last statement what they meant where
        the code read them: no deleted statement before that place, and no statement kept
        between that place and the last statement, may assign them."""
        index = self.index
        if any(n.span != span and contains(span, n.span) for n in nodes):
            raise Skip(f"the target needs `{text}`, which contains an operation of the match")
        sub = index.expr_at(span)
        read = read_names(sub) if sub is not None else set()
        if not read:
            return
        block = last.block
        risky = [info.stmt for k, info in deleted.items() if k < holder.index]
        risky += [block[k] for k in range(holder.index + 1, last.index) if k not in deleted]
        for stmt in risky:
            clash = stored_names(stmt) & read
            if clash:
                raise Skip(f"`{sorted(clash)[0]}` is reassigned before the fused call, so `{text}` would change meaning")

    def _output_name(self, var: str, nodes, infos, pattern) -> str:  # nodes/infos: the fused ones
        if var == "_":
            return "_"
        for i, pnode in enumerate(pattern):
            if Var(var) in pnode.outs:
                stmt = infos[i].stmt
                if (
                    len(pnode.outs) == 1
                    and isinstance(stmt, ast.Assign)
                    and len(stmt.targets) == 1
                    and isinstance(stmt.targets[0], ast.Name)
                    and span_of(stmt.value) == nodes[i].span
                ):
                    return stmt.targets[0].id
                raise Skip(f"${var} is not assigned to a plain name at line {stmt.lineno}")
        raise Skip(f"the target assigns ${var}, which no pattern node produces")

    # ------------------------------------------------------------------------- if-straddling
    def _straddle(self, rule: Rule, match: Match, edits: Edits, regions: list[Span]) -> None:
        index = self.index
        nodes = match.nodes
        first, last = nodes[0], nodes[-1]
        fs, ls = first.scope, last.scope
        if len(ls) == len(fs) + 1 and ls[:len(fs)] == fs:
            mode, elem, outer = "before", ls[-1], first
        elif len(fs) == len(ls) + 1 and fs[:len(ls)] == ls:
            mode, elem, outer = "after", fs[-1], last
        else:
            raise Skip("the matched operations are in different blocks, not one if-statement apart")
        if any(n.scope not in (fs, ls) for n in nodes):
            raise Skip("the matched operations are in different blocks, not one if-statement apart")
        if_span, branch = elem
        if_info = index.stmt(if_span)
        outer_info = index.stmt(outer.stmt)
        if if_info is None and branch in (0, 1):
            # no statement there: the if the flow read off ``h = f(a) if test else g(b)``
            raise Skip("the first matched operation is one choice of a conditional expression "
                       "(x = a if test else b)")
        if if_info is None or not isinstance(if_info.stmt, ast.If) or branch not in (0, 1):
            raise Skip("the matched operations are split by a loop, with or try block")
        if outer_info is None or outer_info.block is not if_info.block:
            raise Skip("the matched operations are in different blocks")
        if_stmt: ast.If = if_info.stmt
        block = if_info.block
        if mode == "before":
            if outer_info.index > if_info.index:
                raise Skip("the matched operations are not in order")
            moved = block[outer_info.index:if_info.index]
            outside = [n for n in nodes if n.scope == fs]
        else:
            if outer_info.index < if_info.index:
                raise Skip("the matched operations are not in order")
            moved = block[if_info.index + 1:outer_info.index + 1]
            outside = [n for n in nodes if n.scope == ls]
        starts = {span_of(s)[:2] for s in moved}
        for node in outside:
            info = index.stmt(node.stmt)
            if info is None or info.block is not block or span_of(info.stmt)[:2] not in starts:
                raise Skip("the matched operations are in different blocks")
        if len(moved) > MAX_MOVED_STATEMENTS:
            raise Skip(f"fusing across the if would move {len(moved)} statements into its branches")
        lo, hi = block.index(moved[0]), block.index(moved[-1])
        if (lo > 0 and block[lo - 1].end_lineno == moved[0].lineno) or (
            hi + 1 < len(block) and block[hi + 1].lineno == moved[-1].end_lineno
        ):
            raise Skip("statements to move share a line with others")
        if mode == "before":
            if any(isinstance(n, (ast.NamedExpr, ast.Await, ast.Yield, ast.YieldFrom)) for n in ast_walk(if_stmt.test)):
                raise Skip("the if condition has side effects; statements cannot move past it")
            assigned = set().union(*(stored_names(s) for s in moved))
            clash = read_names(if_stmt.test) & assigned
            if clash:
                raise Skip(f"the if condition reads `{sorted(clash)[0]}`, computed before it")
        if branch == 1 and not if_stmt.orelse:
            raise Skip("the matched path could not be located")
        edits.straddle = Straddle(
            if_start=(if_stmt.lineno, index.char_col(if_stmt.lineno, if_stmt.col_offset)),
            moved=tuple((s.lineno, index.char_col(s.lineno, s.col_offset)) for s in moved),
            mode=mode,
            branch=branch,
        )
        spans = [span_of(if_stmt), *(span_of(s) for s in moved)]
        regions.append((min(s[:2] for s in spans) + max(s[2:] for s in spans)))

    # ------------------------------------------------------------------------- init
    def _init(self, rule: Rule, match: Match, edits: Edits, regions: list[Span]) -> None:
        index = self.index
        target = parse_target(rule.init_target)
        if len(target.outs) != 1:
            raise Skip("the rule's init target must assign one layer")
        var = target.outs[0]
        ctors = [ctor for name, ctor in match.ctors if name == var]
        if not ctors:
            raise Skip(f"the constructor of ${var} was not found")
        ctor = ctors[0]
        info = index.stmt(ctor.stmt)
        call = index.find_expr(info.stmt, ctor.call, (ast.Call,)) if info is not None else None
        if call is None:
            raise Skip("the layer is not built by a constructor call in the assignment")
        ops = [
            pnode.method if pnode.op == "table" else pnode.op
            for alternative in rule.init for pnode in alternative.nodes
            if Var(var) in pnode.outs and names_match(pnode.method if pnode.op == "table" else pnode.op, ctor.fqn)
        ]
        callee_text = index.segment(span_of(call.func))
        kernel_mapping = _imports_mapping(rule, self.names, edits)

        def mapping(name: str) -> str | None:
            if any(name == op or name == op.rsplit(".", 1)[-1] for op in ops):
                return callee_text
            return kernel_mapping(name)

        keep = KEEP_ARGS.match(target.rhs)
        env = dict(match.env)
        values = {}
        template = keep.group("callee") if keep else target.rhs
        for name in template_vars(template):
            value = env.get(name)
            if isinstance(value, Const):
                values[name] = repr(value.value)
            elif isinstance(value, Ref) and value.text:
                values[name] = value.text
            elif isinstance(value, str) and not value.endswith("[]"):
                values[name] = value
            else:
                raise Skip(f"the init target needs ${name}, which the match does not bind")
        try:
            rendered = substitute(replace_names(template, mapping), values)
        except RenderError as exc:
            raise Skip(str(exc)) from None
        if keep:
            edits.expr[index.char_span(span_of(call.func))] = rendered
        else:
            edits.expr[index.char_span(span_of(call))] = rendered
        regions.append(span_of(call))


__all__ = ["Edits", "KernelNames", "Plan", "Planner", "Skip", "Straddle", "Wrap"]


def _targets(stmt: ast.stmt) -> list:
    """The assignment targets of ``stmt`` (none for a statement that assigns nothing)."""
    if isinstance(stmt, ast.Assign):
        return list(stmt.targets)
    if isinstance(stmt, (ast.AnnAssign, ast.AugAssign)):
        return [stmt.target]
    return []


def _rebound_before(function: ast.AST, last_info: StmtInfo, read: ast.Name, first: int) -> bool | None:
    """Which value of ``read``'s name does the read see?  False: no statement after line
    ``first`` assigns the name before the read, which lies in the fused code's block (the
    deleted value's).  True: the first statement that does follows the fused one in its block
    (it runs on every path through the fused code, so every later read sees its value).
    None: anything else (not rewritten)."""
    stores = [stmt for stmt in ast_walk(function) if isinstance(stmt, ast.stmt) and stmt.lineno > first
              and span_of(stmt)[2] < read.lineno and any(
                  n.__class__ is ast.Name and n.id == read.id and n.ctx.__class__ is not ast.Load
                  for target in _targets(stmt) for n in ast_walk(target))]
    assigned = {id(n) for stmt in ast_walk(function) if isinstance(stmt, ast.stmt)
                for target in _targets(stmt) for n in ast_walk(target)}
    if any(n.__class__ is ast.Name and n.id == read.id and n.ctx.__class__ is not ast.Load and n.lineno > first
           and id(n) not in assigned for n in ast_walk(function)):
        return None  # a loop's, a with's or a walrus's store: not followed here
    if stores:
        earliest = min(stores, key=lambda stmt: stmt.lineno)
        block = last_info.block
        return True if any(stmt is earliest for stmt in block[last_info.index + 1:]) else None
    return False if span_of(last_info.block[-1])[2] >= read.lineno else None


def _cast_template(node: ast.AST) -> ast.expr | None:
    """The tensor a cast takes its dtype and device from (``w.to(var)``, ``w.type_as(var)``,
    ``w.to(tensor=var)``): a read of ``var``'s metadata alone, which the matcher lets code after
    a match make (match._template_read), so deleting ``var = ...`` would leave it undefined."""
    if node.__class__ is not ast.Call or node.func.__class__ is not ast.Attribute \
            or node.func.attr not in ("to", "type_as"):
        return None
    if len(node.args) == 1 and not node.keywords:
        return node.args[0]
    if not node.args and len(node.keywords) == 1 \
            and node.keywords[0].arg == ("tensor" if node.func.attr == "to" else "other"):
        return node.keywords[0].value
    return None


def _size_reads(function: ast.AST) -> dict[int, tuple[ast.expr, ast.expr]]:
    """The reads of one size in ``function``: ``t.shape[i]`` and ``t.size(i)`` with ``i`` an
    index, not a slice, keyed by the ``t.shape`` / ``t.size`` attribute -> (the whole read, ``i``)."""
    out = {}
    for node in ast_walk(function):
        if node.__class__ is ast.Subscript and node.value.__class__ is ast.Attribute \
                and node.value.attr == "shape" and node.slice.__class__ is not ast.Slice \
                and node.slice.__class__ is not ast.Tuple:
            out[id(node.value)] = (node, node.slice)
        elif node.__class__ is ast.Call and node.func.__class__ is ast.Attribute and node.func.attr == "size" \
                and len(node.args) == 1 and not node.keywords and node.args[0].__class__ is not ast.Starred:
            out[id(node.func)] = (node, node.args[0])
    return out


def _enclosing_function(tree: ast.AST, span) -> ast.AST:
    """The innermost function whose lines hold ``span`` (the module when none does)."""
    best = tree
    for node in ast_walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and contains(span_of(node), span) \
                and (best is tree or contains(span_of(best), span_of(node))):
            best = node
    return best


def _pattern_vars(pnodes) -> set:
    """The names of the ``$variables`` a pattern's steps assign or read."""
    names = set()
    for pnode in pnodes:
        for value in (*pnode.outs, *pnode.args, *(v for _, v in pnode.kwargs), pnode.layer):
            if isinstance(value, Var):
                names.add(value.name)
    return names


def _same_steps(pnodes, nodes) -> bool:
    """Does each canonical step of a pattern name the operation its matched node computes
    (steps through layers and tables, and nodes without a canonical operation, not compared)?"""
    for pnode, node in zip(pnodes, nodes):
        if pnode.op in ("layer", "table"):
            continue
        if not node.canon:
            # a call through a layer is no named function's step, although it computes no
            # canonical operation (``self.linear(x, w, ...)`` is no ``F.linear(x, w)``)
            if node.kind == "layer":
                return False
            continue
        if pnode.canonical and pnode.op != node.canon:
            return False
    return True


def _module_spelling(fqn: str, tree: ast.Module) -> str | None:
    """``fqn`` (``torch.optim.SGD``) written through a module-level import of the file (``import
    torch``: ``torch.optim.SGD``; ``from torch import optim``: ``optim.SGD``), for a callee
    choice no expression of the code names apart (graph.FlowBuilder._import_choices); None
    when no module-level import reaches it."""
    for stmt in tree.body:
        bound: list[tuple[str, str]] = []
        if stmt.__class__ is ast.Import:
            bound = [(a.asname, a.name) if a.asname else (a.name.split(".")[0],) * 2 for a in stmt.names]
        elif stmt.__class__ is ast.ImportFrom and stmt.level == 0 and stmt.module:
            bound = [(a.asname or a.name, f"{stmt.module}.{a.name}") for a in stmt.names if a.name != "*"]
        for local, dotted in bound:
            if fqn == dotted or fqn.startswith(dotted + "."):
                return local + fqn[len(dotted):]
    return None


def _guarded_call(template: str, node, op: str, index, render) -> str:
    """The target call ``klass(..., fused=True)`` for a callee chosen at run time
    (``klass = Lion if use_lion else Adam``): the call without the keywords the target adds,
    then those keywords spread only when the callee is one of the alternatives the rule's
    ``op`` names (``**({"fused": True} if klass is Adam else {})``)."""
    try:
        call = ast.parse(template.strip(), mode="eval").body
    except SyntaxError:
        raise RenderError("the rule's target is not a valid expression") from None
    added = [k for k in getattr(call, "keywords", ()) if k.arg is not None]
    if not isinstance(call, ast.Call) or not added:
        raise RenderError("the callee is chosen at run time and the target adds no keyword to guard")
    bare = template.strip()
    for keyword in added:
        text = ast.get_source_segment(template.strip(), keyword)
        at = bare.rfind(text)
        before = bare[:at].rstrip()
        if not before.endswith(","):
            raise RenderError("the rule's target keyword could not be separated")
        bare = before[:-1] + bare[at + len(text):]
    rendered = render(bare).rstrip()
    if not rendered.endswith(")"):
        raise RenderError("the rendered target is not a call")
    head = rendered[:-1].rstrip()
    if head.endswith(","):
        head = head[:-1]
    callee = index.segment(node.func_span)
    if any(at is None and fqn.endswith(".*") for fqn, at in node.choices):
        # getattr(torch.optim, name): the class is a run-time lookup, no text here names it
        raise RenderError("the class is looked up by a run-time name: no text in the file to guard the fix by")
    # a choice without a span is a name imported on two paths (misses43): its module's spelling
    options = [index.segment(at) if at is not None else _module_spelling(fqn, index.tree)
               for fqn, at in node.choices if names_match(op, fqn)]
    if not options:
        raise RenderError("no alternative of the callee is the rule's")
    if None in options:
        raise RenderError("the callee is imported under one name on two paths, and no module-level "
                          "import names the rule's class to test it against")
    test = f"{callee} is {options[0]}" if len(options) == 1 else f"{callee} in ({', '.join(options)})"
    items = ", ".join('"%s": %s' % (k.arg, ast.get_source_segment(template.strip(), k.value)) for k in added)
    comma = "" if head.endswith("(") else ", "
    return f"{head}{comma}**({{{items}}} if {test} else {{}}))"


def _minus_one_spans(nodes) -> list:
    """The spans of the arguments a matched node holds as the literal ``-1`` where the code
    writes something else: the leading size of a view the flow proved to be rows of the last
    axis (``h.view(N * M, -1)``, ``x.view(B * T, C)`` read ``h.view(-1, h.size(-1))``; the
    graph only reads so a size of names, attributes and arithmetic, which computes nothing a
    patch must keep).  A ``-1`` the code writes is no work, so nothing else is excused."""
    spans = []
    for node in nodes:
        for arg, sp in zip(node.args, node.arg_spans):
            if sp is not None and arg.__class__ is Const and arg.value == -1:
                spans.append(sp)
    return spans
