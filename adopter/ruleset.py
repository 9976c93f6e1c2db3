"""Load rule files (bundled ``rules/`` and user folders), validate them, select/ignore.

A rule is data, not code: one TOML file per kernel with its metadata, the forward and init
patterns in the DSL (see :mod:`adopter.dsl`), the target patterns synthesis renders, and
examples the test suite runs (valid = must not match, before/after = must be fixed into).
Errors point into the rule file (``rules/x.toml:12:7: expected ')'``) so that rule authors
never see a traceback.
"""

from __future__ import annotations

import ast
import hashlib
import keyword
import os
import pickle
import re
from .records import dataclass, field
from pathlib import Path

from .dsl import Pattern, PatternError, Var, flow_problems, parse_pattern

MEASURED_FILE = "measured.toml"  # adopter.measured.FILE_NAME, without importing it here
RULE_ID = re.compile(r"^[A-Z]{2,5}\d{3}$")
TARGETS = ("cpu", "cuda")


class RuleError(Exception):
    """A rule file that cannot be used; formats as ``path:line:col: message``."""

    def __init__(self, path: str, line: int, column: int, message: str):
        super().__init__(f"{path}:{line}:{column}: {message}")
        self.path, self.line, self.column, self.message = path, line, column, message


@dataclass(frozen=True)
class Kernel:
    provider: str
    package: str  # the requirement added to the analysed project's dependencies
    import_: str  # the dotted name the patched code imports
    min_version: str = ""
    # The package's own Python floor (PEP 440 specifier, '' = none): a project whose
    # requires-python admits an older Python does not get the patch (adopter.synth.deps).
    requires_python: str = ""

    @property
    def requirement(self) -> str:
        """The PEP 508 requirement that declares this kernel (``adopter-kernels>=0.1.0``)."""
        return f"{self.package}>={self.min_version}" if self.min_version else self.package


@dataclass(frozen=True)
class FunctionForm:
    """``[forward.function_form]``: the target's layer variable ``var`` bound to a literal call of
    one of ``functions`` (``F.silu(gate)``: no layer to pass, and a function passed as a value
    does not compile under TorchScript) is fixed with ``kernel``, called with the target's
    arguments but ``$var``, plus the call's ``keywords`` passed on by name."""
    var: str
    functions: tuple[str, ...]
    kernel: str
    keywords: tuple[str, ...] = ()


@dataclass(frozen=True)
class Example:
    name: str
    before: str
    after: str | None = None  # None: must not match (a VALID example in Fixit's terms)
    reported: bool = False  # must be reported, and fix leaves it as it is (report-only rules)


@dataclass(frozen=True)
class Rule:
    id: str
    name: str
    title: str
    summary: str
    message: str
    why: str
    forward: Pattern  # the first alternative (shown by `adopter rules ID`)
    init: tuple[Pattern, ...]
    forward_target: str | None
    init_target: str | None
    kernel: Kernel
    helps: tuple[str, ...]
    fixable: bool
    fix_safety: str
    default: bool
    checkpoint_compatible: bool
    references: tuple[str, ...]
    examples: tuple[Example, ...]
    path: str
    triggers: frozenset[str] = field(default_factory=frozenset)
    forwards: tuple[Pattern, ...] = ()  # every alternative of the forward source pattern
    forward_targets: tuple[str | None, ...] = ()  # the target of each alternative (usually all the same)
    # Other shapes of the same computations (adopter.equivalents: x / sqrt(v) for x * rsqrt(v),
    # independent steps in another order): (index of the alternative, pattern), matched like
    # the alternative and fixed with its target.
    variants: tuple[tuple[int, Pattern], ...] = ()
    commutative: bool = True  # whether '+'/'*' in the forward pattern match either operand order
    only_on: tuple[str, ...] = ()  # the patched code runs only there (Liger: cuda); () = anywhere
    # ``[forward] live_intermediates = true``: the fix keeps the original code behind a guard,
    # so values the match computes may be read later (its synthesis checks where).
    live_intermediates: bool = False
    # ``[forward] synth = "sdpa"``: the module adopter.synth.<name> plans the rewrite instead
    # of the generic target renderer (for rewrites a target pattern cannot say).
    synth: str | None = None
    # Which plan wins where two rules' rewrites overlap in one round: the lower ``priority``,
    # then the lower id.
    priority: int = 0
    # ``[forward] not_in_fallback_of = "name"`` (or a list of names: the kernel's own call and
    # another package's spelling of the same kernel, Liger's ``liger_rms_norm`` beside
    # ``rms_norm``): a match in the body of an ``if`` whose else branch calls one of them is the
    # original path that code which adopted the kernel kept (its fallback), and is not reported.
    not_in_fallback_of: tuple[str, ...] = ()
    # ``[forward] spellings``: "canonical" (default) -- a step naming an operation of the
    # canonical table (structure/ops.py) matches every spelling of it; "exact" -- only the
    # spelling written (the paper benchmark counts F.softmax, not x.softmax or nn.Softmax).
    spellings: str = "canonical"
    # ``[forward] anchor = "$p0"``: the step whose node identifies one site (one finding per
    # node), for patterns that reach one site along several paths.
    anchor: str | None = None
    # ``[forward] layer_typing = "direct"``: layers are typed only by constructor calls assigned
    # to their attribute (the paper benchmark's rules); "follow" (the default) also follows
    # same-file factories, constructor parameters, conditional layers and Sequential members.
    layer_typing: str = "follow"
    # ``[forward] fix_one_block = true``: the rule's fix needs the matched operations in one
    # block; a match spread over an ``if`` is reported but not fixable.
    fix_one_block: bool = False
    # ``[forward] container_steps = ["$p0", "$p1"]``: the steps whose layers the rule's
    # synthesizer can fuse when they run as the members of one ``nn.Sequential`` called in the
    # forward (it checks the container holds exactly those members); a match with any other
    # step inside a container is reported but not fixable.
    container_steps: tuple[str, ...] = ()
    # ``[forward] container_target = "pkg.FoldingSequential"``: when every matched step is a
    # member of one ``nn.Sequential`` construction, the fix replaces the container's class there
    # (``nn.Sequential`` in the call, or the base of a same-file subclass) by this drop-in
    # subclass, which runs the rule's fusion on its members itself.  One edit per container,
    # however many matches it holds.
    container_target: str | None = None
    # ``[forward] helper_computes = { rotate_half = "canon.rotate_half" }``: a step that calls a
    # helper by name matches only where the helper is the file's own (inlined) and its body
    # computes that canonical operation of the call's first argument: a helper that shares the
    # name but computes something else (an interleaved rotation) is not the pattern's.
    helper_computes: tuple[tuple[str, str], ...] = ()
    # ``[forward] same_source = true``: arguments bound to one $variable must be spelled the same
    # in the code (one name), not merely hold the same value on the matched path.
    same_source: bool = False
    # ``[forward] trailing_dims = "$d"``: where a match binds ``$d``, its value must be the
    # trailing axes of a tensor in order (``(-2, -1)``, or an attribute the file only assigns
    # ``tuple(range(-n, 0))``): a reduction over them is one over the last ``len($d)`` axes.
    trailing_dims: str | None = None
    # ``[forward] setting_paths = true``: a step between two matched ones that only the other
    # branch of an ``if`` on the module's settings runs (match._setting_test) leaves a site on
    # the path the settings choose, reported but not fixed; otherwise (the default) a step on
    # any path between them means no site.
    setting_paths: bool = False
    # ``default = ["cuda"]``: off by default, but on when that target is chosen explicitly
    # (``--target cuda``): a rule that declares a gain there which no run has measured yet.
    default_targets: tuple[str, ...] = ()

    def default_on(self, target: str | None) -> bool:
        """Whether the rule runs without being named in ``select``, for code that runs on
        ``target`` (None: no target configured)."""
        return self.default or (target is not None and target in self.default_targets)
    # ``[forward] scope = "file"``: match in every function and method of the file (also those
    # no forward reaches, and __init__), not only in the model structure ("model", the default).
    scope: str = "model"
    # ``[forward] same_function = true``: every matched step is in one function (a helper that
    # computes the whole thing), not spread over a helper and its caller.  A list gives one
    # value per source alternative; ``"helper"``: in one function, and that function a helper
    # called from the root (a one-tensor RoPE helper applied to q and to k), or a root where
    # it is the rule's one match and which returns one value (the forward of a one-tensor
    # rotary module; engine.match_rule).
    same_function: bool | tuple = False
    # ``[forward.function_form]``: how the fix reads an activation that is a function called in
    # place rather than a layer (FunctionForm).
    function_form: FunctionForm | None = None
    # ``[forward] predicts_input = [false, true, ...]`` (one per source alternative): the loss
    # target ``$t`` is a selection (slice, masked fill, copy) of a forward argument that the
    # head's input ``$h`` is computed from -- the model predicts its own input tokens, so the
    # classes are the tokens (see match.Matcher._predicts_input).  ``"shift"``: the target is
    # the complementary shift of the logits' positions (``labels[:, 1:]`` beside
    # ``logits[:, :-1]``, see match.Matcher._shifted_target).  ``"masked"``: the head's logits
    # are of rows picked by a mask (match._masked_rows), and the head is one another match of
    # the rule in the same file scores as a vocabulary head (engine.match_rule).  ``"token"``:
    # the head's logits are of rows picked by a mask the function hands to a same-file module
    # that replaces those rows of its input by a learned token (match._mask_token_rows).
    predicts_input: tuple = ()
    # ``[forward] computed = ["q", "kt"]``: these variables hold values the function computes,
    # not a module's weight (an ``nn.Parameter`` attribute) read as it is or through layout
    # steps (see match.Matcher._computed): scores ``x @ self.w`` are a projection of one
    # tensor, attention pooling with learned queries, not a similarity of two.
    computed: tuple[str, ...] = ()
    # ``[forward] module_weights = ["wq", "wk", "wv"]``: where a match binds these variables, each
    # holds a tensor of the module read as it is (``self.key.weight``, ``self.w_q``), not one the
    # function computes (see match.Matcher._module_weights): ``F.linear(x, slices[i])`` over a
    # weight's shards in a loop is part of one projection, not a projection of its own.
    module_weights: tuple[str, ...] = ()
    # ``[forward] independent = ["v"]``: these variables are not computed from the match's own
    # steps (see match.Matcher._independent): a product of the probabilities with a "value"
    # built from those probabilities (Nystrom's iterative pseudo-inverse of a softmax kernel) is
    # no attention a fused call can take, which needs the value before the probabilities exist.
    independent: tuple[str, ...] = ()
    # ``[forward] given = ["bias", "mask"]``: these variables are not computed from the values of
    # the match's own steps by operations the flow reads (see match.Matcher._independent): a term
    # added to the scores after the scale that is a function of them (``s + s.sigmoid()``) is no
    # mask, which a fused call needs before the scores exist.  Unlike ``independent``, a value
    # handed to a module or built where the flow reads no step (a comprehension over groups of
    # the scores) is left to the fixer, which reads what that module's forward reads of it.
    given: tuple[str, ...] = ()
    # ``[forward] foldable = ["pre", "mul"]``: where a match binds these variables, each is a
    # factor on the scores a fused call can fold into q or k (see match.Matcher._foldable): a
    # number, what the caller passes, a per-head value -- not a module tensor of its own
    # (query, key) shape nor a value computed through a pairwise product.
    foldable: tuple[str, ...] = ()
    # ``[forward] uncentred = ["x"]``: where a match binds these variables, none holds a value
    # minus its own mean over the axes the match's mean reduces (see match.Matcher._uncentred):
    # the root mean square of ``x - x.mean(-1)`` is the standard deviation, a layer norm.
    uncentred: tuple[str, ...] = ()
    # ``[forward] projection = ["proj"]``: where a match binds these callee variables (one
    # callable called on the input with a weight per call), the callable computes a linear map
    # of its input (see match.Matcher._projection): not ``torch.mul`` nor a same-file function or
    # module whose result is no such map.  A callable the file cannot read (an extension's GEMM,
    # one the caller hands in) is taken as the call reads.
    projection: tuple[str, ...] = ()
    # ``[forward] outputs_meet = true``: two of the matched steps' outputs, each after steps of
    # its own (reshapes, rotary, norms), are the two operands of one product or handed together
    # to a call (SDPA, a helper, a module) (see match.Matcher._outputs_meet).  An attention's
    # query and key meet in its scores; eleven classifier heads returned in a tuple, or a
    # triangle update's gated projections, do not.
    outputs_meet: bool = False
    # ``[forward] same_extras = ["gate", "up"]``: calls of these layer variables that pass
    # arguments beyond the pattern's ``...`` pass the same ones (see match.Matcher._same_extras):
    # a gate and an up projection given one adapter list or scale, not a gate beside an
    # attention module of the same input and another tensor.
    same_extras: tuple[str, ...] = ()
    # ``[forward] max_gap = 20``: the operations a match may skip between two steps, where a
    # rule's steps lie further apart than match.MAX_GAP (0: that bound).  ADP009's projections
    # may be spread over an attention's preprocessing (Zaya's CCA: q and k projected, mixed by a
    # causal convolution, then v): the wider bound costs that rule's search alone.
    max_gap: int = 0

    def predicts_input_of(self, alternative: int) -> bool | str:
        return bool(self.predicts_input) and self.predicts_input[alternative]

    def same_function_of(self, alternative: int) -> bool | str:
        if isinstance(self.same_function, tuple):
            return self.same_function[alternative]
        return self.same_function

    @property
    def safe_fix(self) -> bool:
        """Whether ``fix`` applies this rule by default (``fix_safety = "unsafe: why"`` needs
        ``--unsafe-fixes``)."""
        return not self.fix_safety.startswith("unsafe")

    def helps_on(self, target: str | None) -> bool:
        """Whether the rule's patch is proposed for code that runs on ``target`` (None: no
        target configured).  A rule whose patched code runs only on some hardware
        (``only_on``) is proposed only when that target is chosen explicitly; elsewhere its
        findings are informational."""
        if self.only_on:
            return target in self.only_on and any(h.split(":")[0] == target for h in self.helps)
        return target is None or any(h.split(":")[0] == target for h in self.helps)

    def target_note(self, target: str | None) -> str:
        """Why a finding of this rule is informational for ``target`` ('' when it is not)."""
        if self.helps_on(target):
            return ""
        where = ", ".join(self.helps) or "no declared hardware"
        if self.only_on:
            return f"the patched code runs on {'/'.join(self.only_on)} only; helps on {where}; " + (
                "choose --target " + self.only_on[0] if target is None else f"target is {target}")
        return f"helps on {where}; target is {target}"


def _position(raw: str, text: str, key: str) -> tuple[int, int]:
    """Where ``text`` (a string value of ``key``) starts in the raw TOML file."""
    index = raw.find(text) if text else -1
    if index < 0:
        match = re.search(rf"^\s*{re.escape(key)}\s*=", raw, re.M)
        index = match.start() if match else 0
    line = raw.count("\n", 0, index) + 1
    column = index - (raw.rfind("\n", 0, index) + 1) + 1
    return line, column


def _pattern(raw: str, path: str, key: str, text: object) -> Pattern:
    if not isinstance(text, str):
        line, column = _position(raw, "", key)
        raise RuleError(path, line, column, f"{key} must be a string of pattern text")
    try:
        pattern = parse_pattern(text)
    except (RecursionError, MemoryError):
        line, column = _position(raw, text, key)
        raise RuleError(path, line, column, f"{key}: the pattern is nested too deeply") from None
    except PatternError as exc:
        line, column = _position(raw, text, key)
        if exc.line > 1:
            line, column = line + exc.line - 1, exc.column
        else:
            column = column + exc.column - 1
        raise RuleError(path, line, column, exc.message) from None
    if not pattern.nodes:
        line, column = _position(raw, text, key)
        raise RuleError(path, line, column, f"{key} is an empty pattern")
    return pattern


_TARGET_VAR = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")


def _target(raw: str, path: str, text: object, sources: list[Pattern]) -> None:
    """Check a target: one Python statement (an assignment to ``$vars`` or an expression)
    with ``$vars`` the source patterns bind.

    A target is only ever rendered, never matched, so it may use any Python expression the
    patched code needs (``$x.shape[-1:]``, ``torch.promote_types($x.dtype, torch.float32)``,
    tuples, subscripts); Python's own parser checks it, with each ``$var`` read as a name.
    """
    if not isinstance(text, str):
        line, column = _position(raw, "", "target")
        raise RuleError(path, line, column, "target must be a string of Python code with $variables")
    line, column = _position(raw, text, "target")
    placeholder = "__adopter_var_"
    code = _TARGET_VAR.sub(lambda m: placeholder + m.group(1), text.strip())
    # '...' in an argument list stands for the code's extra arguments, also after keywords.
    code = re.sub(r"(?<![.\w])\.\.\.(?![.\w])", "*__adopter_rest", code)
    try:
        tree = ast.parse(code)
        # compiled too, as patched code will be: `await` or `yield` parse, but do not compile here
        compile(tree, "<target>", "exec", dont_inherit=True)
    except SyntaxError as exc:
        # Columns of the rewritten code do not map back to the rule file: point at the target.
        raise RuleError(path, line + (exc.lineno or 1) - 1, column if (exc.lineno or 1) == 1 else 1,
                        f"target is not valid Python: {exc.msg}") from None
    except (RecursionError, MemoryError, ValueError):
        raise RuleError(path, line, column, "target is nested too deeply to be Python code") from None
    if len(tree.body) != 1 or not isinstance(tree.body[0], (ast.Assign, ast.Expr)):
        raise RuleError(path, line, column, "target must be one assignment or one expression")
    stmt = tree.body[0]
    if isinstance(stmt, ast.Assign):
        outs = stmt.targets[0].elts if isinstance(stmt.targets[0], ast.Tuple) else [stmt.targets[0]]
        if len(stmt.targets) != 1 or not all(
            isinstance(o, ast.Name) and (o.id == "_" or o.id.startswith(placeholder)) for o in outs
        ):
            raise RuleError(path, line, column, "a target assigns $variables (or _) only")
    known = set().union(*(p.variables for p in sources)) if sources else set()
    for found in _TARGET_VAR.finditer(text):
        if found.group(1) not in known:
            raise RuleError(path, line, column, f"target uses ${found.group(1)}, which no source pattern binds")


def _flow(raw: str, path: str, pattern: Pattern, targets: list[str]) -> None:
    """Refuse a forward pattern whose variables do not link its steps (see
    :func:`adopter.dsl.flow_problems`): a misspelt variable binds anything, silently."""
    read = {m.group(1) for text in targets for m in _TARGET_VAR.finditer(text)}
    problems = flow_problems(pattern, read)
    if problems:
        node, message = problems[0]
        line, column = _position(raw, pattern.text, "source")
        if node.line > 1:
            line, column = line + node.line - 1, node.column
        else:
            column += node.column - 1
        raise RuleError(path, line, column, message)


def _init_layers(raw: str, path: str, forwards: tuple[Pattern, ...], init: tuple[Pattern, ...]) -> None:
    """Every layer an init pattern binds must be called by the forward pattern: the init
    match looks the constructor up through the layer the forward match called."""
    called = {node.layer.name for pattern in forwards for node in pattern.nodes if node.layer is not None}
    for pattern in init:
        for node in pattern.nodes:
            for out in node.outs:
                if isinstance(out, Var) and out.name not in called:
                    line, column = _position(raw, pattern.text, "source")
                    raise RuleError(path, line + node.line - 1, node.column,
                                    f"init binds ${out.name}, but no forward step calls ${out.name}(...)")


def _anchor(raw: str, path: str, value: object, forwards: tuple[Pattern, ...]) -> str | None:
    if value is None:
        return None
    outs = {o.name for p in forwards for n in p.nodes for o in n.outs if isinstance(o, Var)}
    if not (isinstance(value, str) and value.startswith("$") and value[1:] in outs):
        line, column = _position(raw, "", "anchor")
        raise RuleError(path, line, column, "forward.anchor must name a $variable a step of the pattern assigns")
    return value[1:]


def _trailing_dims(raw: str, path: str, value: object, forwards: tuple[Pattern, ...]) -> str | None:
    if value is None:
        return None
    read = {a.name for p in forwards for n in p.nodes for a in (*n.args, *(v for _, v in n.kwargs))
            if isinstance(a, Var)}
    if not (isinstance(value, str) and value.startswith("$") and value[1:] in read):
        line, column = _position(raw, "", "trailing_dims")
        raise RuleError(path, line, column, "forward.trailing_dims must name a $variable a step of the pattern reads")
    return value[1:]


def _container_steps(raw: str, path: str, values: tuple[str, ...], forwards: tuple[Pattern, ...],
                     synth: str | None) -> tuple[str, ...]:
    if not values:
        return ()
    line, column = _position(raw, "", "container_steps")
    if synth is None:
        # Only a synthesizer can replace the container's call: a target pattern edits the
        # operations it matched, and the members' code is in the container's constructor.
        raise RuleError(path, line, column, "forward.container_steps needs forward.synth")
    outs = {o.name for p in forwards for n in p.nodes for o in n.outs if isinstance(o, Var)}
    for value in values:
        if not (value.startswith("$") and value[1:] in outs):
            raise RuleError(path, line, column, "forward.container_steps must name $variables steps of the pattern assign")
    return tuple(v[1:] for v in values)


def _function_form(reader, value: dict, kernel, targets) -> FunctionForm | None:
    if not value:
        return None
    var = reader.get(value, "var", str, "forward.function_form")
    functions = reader.strings(value, "functions", "forward.function_form")
    name = reader.get(value, "kernel", str, "forward.function_form")
    keywords = reader.strings(value, "keywords", "forward.function_form")
    module = kernel.import_.rsplit(".", 1)[0]
    if not _DOTTED.fullmatch(name) or not name.startswith(module + "."):
        raise reader.fail("forward.function_form.kernel", f"must be a dotted name in the kernel's module {module}",
                          name)
    if not functions or not all(_DOTTED.fullmatch(f) for f in functions):
        raise reader.fail("forward.function_form.functions", "must list the dotted names of the functions")
    if not all(k.isidentifier() for k in keywords):
        raise reader.fail("forward.function_form.keywords", "must list keyword argument names")
    for text in targets:
        if text is not None and f"${var}" not in text:
            raise reader.fail("forward.function_form.var", f"every target must pass ${var}", var)
    return FunctionForm(var, functions, name, keywords)


def _container_target(reader, value: str | None, kernel, synth: str | None) -> str | None:
    if value is None:
        return None
    if synth is not None:
        raise reader.fail("forward.container_target", "a rule with its own synthesizer fuses containers there "
                                                      "(forward.container_steps)", value)
    module = kernel.import_.rsplit(".", 1)[0]
    if not _DOTTED.fullmatch(value) or not value.startswith(module + "."):
        raise reader.fail("forward.container_target", f"must be a dotted name in the kernel's module {module}", value)
    return value


def _triggers(patterns: list[Pattern], canonical: bool = True) -> frozenset[str]:
    """Words one of which must appear in a file for the rule to possibly match it.

    With canonical spellings a step naming a table operation contributes the words of every
    spelling (``softmax``, ``Softmax``); one spelled only by an operator (``@``) none."""
    from .structure.canon import TABLE

    def spelled(name: str) -> set[str]:
        op = TABLE.canonical(name) if canonical else None
        if op is None:
            return {name.rsplit(".", 1)[-1]}
        return set(TABLE.words(op.name))

    words: set[str] = set()
    for pattern in patterns[:1]:
        for node in pattern.nodes:
            if node.op not in ("layer", "method", "table", "call") and ("." in node.op or node.op.isidentifier()):
                words |= spelled(node.op)
            elif node.op == "method" and canonical and (TABLE.method(node.method) or TABLE.inplace(node.method)):
                words |= spelled((TABLE.method(node.method) or TABLE.inplace(node.method)).name)
    for pattern in patterns[1:]:
        for node in pattern.nodes:
            name = node.method if node.op == "table" else node.op
            words |= spelled(name) if node.op != "table" else {name.rsplit(".", 1)[-1]}
    # a class with a dimension suffix may be looked up by an f-string (getattr(nn, f"Conv{ndim}d")):
    # its stem and the brace, which no other spelling holds
    words |= {w[:-2] + "{" for w in words if _DIMENSIONED.fullmatch(w)}
    # a class the rule constructs by a call may be picked at run time among its module's
    # members (``inspect.getmembers(torch.optim)``, graph.FlowBuilder._members_choices), where
    # the file's text names none of them
    if any(node.op not in ("layer", "method", "table", "call") and "." in node.op
           and node.op.rsplit(".", 1)[-1][:1].isupper() for pattern in patterns[:1] for node in pattern.nodes):
        words.add("getmembers")
    # a torch.optim class may be looked up by a run-time string (``getattr(torch.optim, name)``,
    # graph.FlowBuilder._lookup_choices, which reads that module alone), where the file's text
    # names no optimizer class: the module's own word is then the only trace
    if any(node.op.startswith("torch.optim.") and node.op.count(".") == 2
           for pattern in patterns[:1] for node in pattern.nodes):
        words.add("optim")
    return frozenset(w for w in words if w)


_DIMENSIONED = re.compile(r"[A-Z][A-Za-z]*[123]d")


def _cache_dir() -> Path | None:
    if os.environ.get("ADOPTER_NO_CACHE"):
        return None
    base = os.environ.get("ADOPTER_CACHE_DIR")
    if not base:
        base = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "adopter")
    return Path(base) / "rules"


_CODE_KEY: bytes | None = None


def _code_key() -> bytes:
    """The code that gives a rule file its meaning: a cached rule is stale when it changes."""
    global _CODE_KEY
    if _CODE_KEY is None:
        digest = hashlib.sha256()
        here = Path(__file__).parent
        for name in ("ruleset.py", "dsl.py", "dsl_parser.py", "structure/ops.py", "structure/canon.py",
                     "equivalents.py", "match.py"):
            try:
                digest.update((here / name).read_bytes())
            except OSError:
                digest.update(name.encode())
        _CODE_KEY = digest.digest()
    return _CODE_KEY


def load_rule(path: Path) -> Rule:
    """Load one rule file, from the parse cache when this exact file was parsed before.

    Parsing the patterns needs Lark and its LALR tables (about 0.1 s, a fifth of a
    pre-commit run), so parsed rules are pickled under ``~/.cache/adopter/rules`` (or
    ``$ADOPTER_CACHE_DIR``; ``ADOPTER_NO_CACHE=1`` turns it off), keyed by the file's path and
    bytes and by the loader's own code.  A cache that cannot be read or written is ignored.
    """
    from .source import SourceError, read_regular

    spath = str(path)
    try:  # never blocks: a FIFO (or a device) named like a rule file is refused
        raw_bytes = read_regular(spath, 4 * 1024 * 1024, what="rule file")
        raw = raw_bytes.decode("utf-8")
    except (SourceError, UnicodeDecodeError) as exc:
        raise RuleError(spath, 1, 1, f"cannot read rule file: {exc}") from None
    folder = _cache_dir()
    entry = digest = None
    if folder is not None:
        digest = hashlib.sha256(_code_key() + spath.encode("utf-8", "surrogateescape") + b"\0" + raw_bytes).hexdigest()
        loaded = _LOADED.get((folder, digest))
        if loaded is not None:
            return loaded
        entry = folder / f"{digest}.pickle"
        try:
            rule = pickle.loads(read_regular(str(entry), 64 * 1024 * 1024))
            if isinstance(rule, Rule) and rule.path == spath:
                _LOADED[(folder, digest)] = rule
                return rule
        except Exception:  # missing, truncated or from an incompatible build: parse again
            pass
    rule = _parse_rule(raw, spath)
    if entry is not None:
        _store(entry, rule)
        _LOADED[(folder, digest)] = rule
    return rule


#: (the cache folder, the cache key of a rule file: its path, its bytes, the loader's code) ->
#: the rule loaded from it in this process.  Loading the same file again gives the same
#: (immutable) object, and so the matchers compiled for it (engine.matchers_for).  Only while
#: the parse cache is on: ``ADOPTER_NO_CACHE=1`` parses every time, as before.
_LOADED: dict[tuple[Path, str], Rule] = {}


def _store(entry: Path, rule: Rule) -> None:
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        temp = entry.with_name(f".{entry.name}.{os.getpid()}.tmp")
        with open(temp, "wb") as handle:
            pickle.dump(rule, handle, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(temp, entry)
    except OSError:
        pass


_MISSING = object()
_KINDS = {str: "a string", bool: "true or false", int: "an integer", dict: "a table", list: "a list"}
HELPS = re.compile(r"(cpu|cuda)(:(training|inference))?")
_DOTTED = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+")


class _Reader:
    """Typed access to a rule file's values: every wrong type is a :class:`RuleError` that names
    the file, the place and the key (``rules/x.toml:7:1: helps: must be a list of strings``),
    never a ``TypeError`` from deep inside the loader.

    The reader also remembers which keys of which table the loader asked for: a key it never
    asked for is a typo (``comutative``) or a key of another version, which would otherwise be
    ignored without a word; :meth:`unknown` reports it, with the nearest known key.  The keys
    the loader reads are the schema, so a new key needs no second list."""

    def __init__(self, raw: str, path: str):
        self.raw, self.path = raw, path
        self.asked: dict[int, set[str]] = {}  # id(table) -> the keys the loader looked up in it

    def _ask(self, table: dict, key: str) -> None:
        self.asked.setdefault(id(table), set()).add(key)

    def unknown(self, data: dict) -> None:
        """Raise for the first key, in file order, that the loader never asked for."""
        for where, table, key, known in self._walk(data, ""):
            if key not in known:
                import difflib  # only for a suggestion: not on the start-up path
                close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.6)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                name = f"{where}.{key}" if where else key
                raise self._at(where, key, RuleError(self.path, 1, 1, f"{name}: unknown key {key!r}{hint}"))

    def typo(self, table: dict, wanted: tuple[str, ...], where: str) -> RuleError | None:
        """A required key is missing: the error for a key of ``table`` that looks like a
        misspelling of one of ``wanted`` (``sorce`` for ``source``), or None."""
        for key in table:
            if isinstance(key, str) and key not in wanted:
                import difflib  # only for a suggestion: not on the start-up path
                close = difflib.get_close_matches(key, wanted, n=1, cutoff=0.6)
                if close:
                    return self._at(where, key, RuleError(
                        self.path, 1, 1, f"{where + '.' if where else ''}{key}: unknown key {key!r} "
                                         f"(did you mean {close[0]!r}?)"))
        return None

    def _walk(self, table: dict, where: str):
        known = self.asked.get(id(table), set())
        for key, value in table.items():
            yield where, table, key, known
            if key not in known:
                continue
            inner = f"{where}.{key}" if where else key
            if isinstance(value, dict):
                yield from self._walk(value, inner)
            elif isinstance(value, list):
                for index, item in enumerate(value):
                    if isinstance(item, dict):
                        yield from self._walk(item, f"{inner}[{index}]")

    def _at(self, where: str, key: str, error: RuleError) -> RuleError:
        """``error`` placed at ``key``'s line in the table ``where`` (``examples[1]`` is the
        second ``[[examples]]``); where it cannot be found, at its first ``key =`` line."""
        name = re.escape(key)
        assign = re.compile(rf"""^[ \t]*(?:[\w"'.-]+\.)?["']?{name}["']?[ \t]*=""")
        header = re.compile(r"^[ \t]*(\[\[?)[ \t]*([^\]]+?)[ \t]*\]\]?")
        section, seen, offset = "", {}, 0
        for text in re.findall(r"[^\n]*\n|[^\n]+\Z", self.raw):  # lines end at \n only, as TOML's do
            head = header.match(text)
            if head:
                title = head.group(2).replace('"', "").replace("'", "").replace(" ", "")
                if head.group(1) == "[[":
                    seen[title] = seen.get(title, -1) + 1
                    title = f"{title}[{seen[title]}]"
                section = title
                parent, _, last = title.rpartition(".")
                if parent == where and last.split("[")[0] == key:
                    found = offset + head.start(2)
                    break
            elif section == where and assign.match(text):
                found = offset + len(text) - len(text.lstrip())
                break
            offset += len(text)
        else:
            found = -1
        if found < 0:
            match = re.search(assign.pattern, self.raw, re.M)
            if match is None:
                return error
            found = match.start() + len(match.group(0)) - len(match.group(0).lstrip())
        line = self.raw.count("\n", 0, found) + 1
        column = found - (self.raw.rfind("\n", 0, found) + 1) + 1
        return RuleError(self.path, line, column, error.message)

    def fail(self, key: str, message: str, text: str = "") -> RuleError:
        """The error at ``key``'s line (at ``text`` within it when given)."""
        found = re.search(rf"^[ \t]*{re.escape(key.rsplit('.', 1)[-1])}[ \t]*=", self.raw, re.M)
        if found is None:
            line, column = _position(self.raw, text, key.rsplit(".", 1)[-1])
        else:
            start = found.start()
            end = self.raw.find("\n", start)
            at = self.raw.find(text, start, end if end >= 0 else None) if text else -1
            index = at if at >= 0 else start + len(found.group(0)) - len(found.group(0).lstrip())
            line = self.raw.count("\n", 0, index) + 1
            column = index - (self.raw.rfind("\n", 0, index) + 1) + 1
        return RuleError(self.path, line, column, f"{key}: {message}")

    def get(self, table: dict, key: str, kind, where: str = "", default=_MISSING):
        name = f"{where}.{key}" if where else key
        self._ask(table, key)
        if key not in table:
            if default is _MISSING:
                raise self.typo(table, (key,), where) or self.fail(where or key, f"missing required key {name}")
            return default
        value = table[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            raise self.fail(name, "must be " + " or ".join(_KINDS[k] for k in kinds))
        return value

    def strings(self, table: dict, key: str, where: str = "", single: bool = True) -> tuple[str, ...]:
        """A list of strings (or, where ``single``, one string standing for a list of one)."""
        name = f"{where}.{key}" if where else key
        self._ask(table, key)
        value = table.get(key, [])
        if single and isinstance(value, str):
            return (value,)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(name, "must be a list of strings" + (" (or one string)" if single else ""))
        return tuple(value)


def _kernel(reader: _Reader, data: dict) -> Kernel:
    """``[kernel]``: the package must be a requirement name (the version goes in min_version),
    so that nothing but one requirement line can reach a project's dependency files; the import
    must be a dotted name."""
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.version import InvalidVersion, Version

    table = reader.get(data, "kernel", dict)
    package = reader.get(table, "package", str, "kernel")
    try:
        requirement = Requirement(package)
    except InvalidRequirement:
        raise reader.fail("kernel.package", f"{package!r} is not a valid requirement name", package) from None
    if requirement.specifier or requirement.marker or requirement.url or package != package.strip():
        raise reader.fail("kernel.package", "must be a package name only; put the version in kernel.min_version",
                          package)
    min_version = reader.get(table, "min_version", str, "kernel", "")
    if min_version:
        try:
            Version(min_version)
        except InvalidVersion:
            raise reader.fail("kernel.min_version", f"{min_version!r} is not a version", min_version) from None
    import_ = reader.get(table, "import", str, "kernel")
    if not _DOTTED.fullmatch(import_) or any(keyword.iskeyword(p) for p in import_.split(".")):
        raise reader.fail("kernel.import", f"{import_!r} must be a dotted name such as package.module.function",
                          import_)
    requires_python = reader.get(table, "requires_python", str, "kernel", "")
    if requires_python:
        from packaging.specifiers import InvalidSpecifier, SpecifierSet

        try:
            SpecifierSet(requires_python)
        except InvalidSpecifier:
            raise reader.fail("kernel.requires_python", f"{requires_python!r} is not a version specifier",
                              requires_python) from None
    return Kernel(provider=reader.get(table, "provider", str, "kernel", ""), package=package, import_=import_,
                  min_version=min_version, requires_python=requires_python)


def _uses_dotted(target: str, dotted: str) -> bool:
    """Whether a (valid) target refers to ``dotted`` as a name."""
    code = _TARGET_VAR.sub(lambda m: "__adopter_var_" + m.group(1), target.strip())
    code = re.sub(r"(?<![.\w])\.\.\.(?![.\w])", "*__adopter_rest", code)
    for node in ast.walk(ast.parse(code)):
        parts = []
        while isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        if isinstance(node, ast.Name) and ".".join([node.id, *reversed(parts)]) == dotted:
            return True
    return False


def _parse_rule(raw: str, spath: str) -> Rule:
    import tomllib  # here: a run whose rules come from the pickled cache never needs it

    try:
        data = tomllib.loads(raw)
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"\(at line (\d+), column (\d+)\)", str(exc))
        line, column = (int(found.group(1)), int(found.group(2))) if found else (1, 1)
        raise RuleError(spath, line, column, str(exc).split(" (at line")[0]) from None
    reader = _Reader(raw, spath)
    need = reader.get

    rule_id = need(data, "id", str)
    if not RULE_ID.match(rule_id):
        line, column = _position(raw, rule_id, "id")
        raise RuleError(spath, line, column, f"rule id {rule_id!r} must look like ADP001")
    name = need(data, "name", str)
    summary = need(data, "summary", str)
    forward = need(data, "forward", dict)
    if "source" not in forward:
        need(forward, "source", (str, list), "forward")  # says which key is missing, or which is a typo of it
    sources = reader.strings(forward, "source", "forward")
    forwards = tuple(_pattern(raw, spath, "source", text) for text in sources)
    if not forwards:
        line, column = _position(raw, "", "source")
        raise RuleError(spath, line, column, "forward.source needs at least one pattern")
    forward_source = forwards[0]
    for pattern in forwards:
        nodes = pattern.nodes
        if nodes[-1].optional or (nodes[0].optional and (len(nodes) < 2 or nodes[1].optional)):
            line, column = _position(raw, pattern.text, "source")
            raise RuleError(spath, line, column,
                            "the last step of a pattern, and the second when the first is optional, cannot be optional")
    spellings = need(forward, "spellings", str, "forward", "canonical")
    if spellings not in ("canonical", "exact"):
        line, column = _position(raw, "", "spellings")
        raise RuleError(spath, line, column, 'forward.spellings must be "canonical" or "exact"')
    scope = need(forward, "scope", str, "forward", "model")
    if scope not in ("model", "file"):
        raise reader.fail("forward.scope", 'must be "model" or "file"', scope)
    synth = need(forward, "synth", str, "forward", None)
    if synth is not None and not synth.isidentifier():
        raise reader.fail("forward.synth", "must name a module of adopter.synth", synth)
    priority = need(data, "priority", int, "", 0)
    init_table = need(data, "init", dict, "", {})
    init_sources = reader.strings(init_table, "source", "init")
    init = tuple(_pattern(raw, spath, "source", text) for text in init_sources)
    forward_target = need(forward, "target", (str, list), "forward", None)
    if isinstance(forward_target, list):  # one target per source alternative
        if not all(isinstance(t, str) for t in forward_target):
            raise reader.fail("forward.target", "must be a string or a list of strings")
        if len(forward_target) != len(forwards):
            line, column = _position(raw, "", "target")
            raise RuleError(spath, line, column,
                            f"forward.target lists {len(forward_target)} targets for {len(forwards)} source patterns")
        # "" : this alternative is reported only (no automatic fix for that form)
        forward_targets = tuple(t or None for t in forward_target)
    else:
        forward_targets = (forward_target,) * len(forwards)
    init_target = need(init_table, "target", str, "init", None)
    for pattern, text in zip(forwards, forward_targets):
        # Each alternative must bind every variable of the target it is rendered with.
        for target_text in (text, init_target):
            if target_text is not None:
                _target(raw, spath, target_text, [pattern, *init])
        _flow(raw, spath, pattern, [t for t in (text, init_target) if isinstance(t, str)])
    _init_layers(raw, spath, forwards, init)
    variants: tuple[tuple[int, Pattern], ...] = ()
    if spellings == "canonical" and synth is None:
        # A rule with its own synthesizer reads the pattern's steps by position: only the
        # generic target renderer takes a variant's steps as they come.
        from .equivalents import variants as equivalent_variants
        from .synth.render import parse_target, template_vars

        found = []
        for index, (pattern, text) in enumerate(zip(forwards, forward_targets)):
            keep = frozenset(template_vars(parse_target(text).rhs)) if text else frozenset()
            found += [(index, variant) for variant in equivalent_variants(pattern, keep)]
        variants = tuple(found)
    forward_target = forward_targets[0]
    kernel = _kernel(reader, data)
    targets = [t for t in (*forward_targets, init_target) if t is not None]
    if targets and synth is None and not any(_uses_dotted(t, kernel.import_) for t in targets):
        raise reader.fail("kernel.import", f"no target calls {kernel.import_}: the patched code would not import "
                                           "what it calls (write the target with the full dotted name)",
                          kernel.import_)
    helps = reader.strings(data, "helps", single=False)
    for item in helps:
        if not HELPS.fullmatch(item):
            line, column = _position(raw, item, "helps")
            raise RuleError(spath, line, column,
                            f"helps: entry {item!r} must be cpu or cuda, optionally with :training or :inference")
    only_on = reader.strings(data, "only_on", single=False)
    if any(item not in TARGETS for item in only_on):
        raise reader.fail("only_on", "must be a list of cpu / cuda")
    examples = []
    raw_examples = need(data, "examples", list, "", [])
    for index, ex in enumerate(raw_examples):
        if not isinstance(ex, dict):
            raise reader.fail("examples", "must be a list of tables ([[examples]])")
        example_name = need(ex, "name", str, "examples", f"example {index + 1}")
        for key in ("valid", "reported", "before", "after"):
            need(ex, key, str, "examples", None)
        if "valid" in ex:
            examples.append(Example(example_name, ex["valid"], None))
        elif "reported" in ex:
            examples.append(Example(example_name, ex["reported"], None, reported=True))
        elif "before" in ex:
            examples.append(Example(example_name, ex["before"], ex.get("after")))
        else:
            line, column = _position(raw, example_name, "examples")
            raise reader.typo(ex, ("valid", "before", "reported"), f"examples[{index}]") or RuleError(
                spath, line, column, "examples: an example needs 'valid', 'before' or 'reported'")
    layer_typing = need(forward, "layer_typing", str, "forward", "follow")
    if layer_typing not in ("follow", "direct"):
        line, column = _position(raw, "", "layer_typing")
        raise RuleError(spath, line, column, 'forward.layer_typing must be "follow" or "direct"')
    has_fix = forward_target is not None or init_target is not None or synth is not None
    fixable = need(data, "fixable", bool, "", has_fix)
    reader._ask(data, "default")
    default = data.get("default", True)
    if not (isinstance(default, bool) or (isinstance(default, list) and default
                                          and all(isinstance(t, str) and t in TARGETS for t in default))):
        raise reader.fail("default", 'must be true, false or a list of the targets ("cpu", "cuda") it is on for '
                                     "when chosen with --target")
    rule = Rule(
        id=rule_id,
        name=name,
        title=need(data, "title", str, "", name),
        summary=summary,
        message=need(data, "message", str, "", summary),
        why=need(data, "why", str, "", ""),
        forward=forward_source,
        init=init,
        forward_target=forward_target,
        init_target=init_target,
        kernel=kernel,
        helps=helps,
        fixable=fixable and has_fix,
        fix_safety=need(data, "fix_safety", str, "", "safe"),
        default=default is True,
        checkpoint_compatible=need(data, "checkpoint_compatible", bool, "", True),
        references=reader.strings(data, "references", single=False),
        examples=tuple(examples),
        path=spath,
        triggers=frozenset().union(*(_triggers([f, *init], spellings == "canonical")
                                     for f in (*forwards, *(v for _, v in variants)))),
        variants=variants,
        forwards=forwards,
        forward_targets=forward_targets,
        commutative=need(forward, "commutative", bool, "forward", True),
        only_on=only_on,
        live_intermediates=need(forward, "live_intermediates", bool, "forward", False),
        synth=synth,
        priority=priority,
        not_in_fallback_of=reader.strings(forward, "not_in_fallback_of", "forward"),
        spellings=spellings,
        anchor=_anchor(raw, spath, need(forward, "anchor", str, "forward", None), forwards),
        layer_typing=layer_typing,
        fix_one_block=need(forward, "fix_one_block", bool, "forward", False),
        container_steps=_container_steps(raw, spath, reader.strings(forward, "container_steps", "forward"),
                                         forwards, synth),
        container_target=_container_target(reader, need(forward, "container_target", str, "forward", None),
                                           kernel, synth),
        same_source=need(forward, "same_source", bool, "forward", False),
        setting_paths=need(forward, "setting_paths", bool, "forward", False),
        trailing_dims=_trailing_dims(raw, spath, need(forward, "trailing_dims", str, "forward", None), forwards),
        helper_computes=_helper_computes(reader, need(forward, "helper_computes", dict, "forward", {})),
        default_targets=tuple(default) if isinstance(default, list) else (),
        scope=scope,
        same_function=_same_function(reader, need(forward, "same_function", (bool, list), "forward", False),
                                     len(forwards)),
        function_form=_function_form(reader, need(forward, "function_form", dict, "forward", {}), kernel,
                                     forward_targets),
        predicts_input=_predicts_input(reader, need(forward, "predicts_input", list, "forward", []), len(forwards)),
        computed=reader.strings(forward, "computed", "forward"),
        module_weights=reader.strings(forward, "module_weights", "forward"),
        independent=reader.strings(forward, "independent", "forward"),
        given=reader.strings(forward, "given", "forward"),
        foldable=reader.strings(forward, "foldable", "forward"),
        uncentred=reader.strings(forward, "uncentred", "forward"),
        projection=reader.strings(forward, "projection", "forward"),
        outputs_meet=need(forward, "outputs_meet", bool, "forward", False),
        same_extras=reader.strings(forward, "same_extras", "forward"),
        max_gap=need(forward, "max_gap", int, "forward", 0),
    )
    reader.unknown(data)  # every key was read above: any other is a typo or from another version
    return rule


def _helper_computes(reader, value: dict) -> tuple[tuple[str, str], ...]:
    from .structure.ops import OPS

    for name, op in value.items():
        reader._ask(value, name)  # a free-form table: every key is a helper's name
        if not isinstance(op, str) or op not in OPS:
            raise reader.fail("forward.helper_computes",
                              f"{name!r} must name a canonical operation (a key of adopter/structure/ops.py OPS)")
    return tuple(sorted(value.items()))


def _same_function(reader, value, alternatives: int) -> bool | tuple:
    if isinstance(value, bool):
        return value
    if len(value) != alternatives or not all(v in (True, False, "helper") for v in value):
        raise reader.fail("forward.same_function",
                          f'must be true, false, or a list of {alternatives} of them and "helper" (one per source pattern)')
    return tuple(value)


def _predicts_input(reader, value: list, alternatives: int) -> tuple:
    if value and (len(value) != alternatives or not all(v in (True, False, "shift", "masked", "token") for v in value)):
        raise reader.fail("forward.predicts_input",
                          f'must be a list of {alternatives} booleans, "shift", "masked" or "token" (one per source pattern)')
    return tuple(value)


def bundled_rules_dir() -> Path:
    """The folder of the bundled rule files: the rules of the ``adopter`` package that is
    running, never another copy's.

    A wheel installs them as ``adopter/rules`` beside this module; a source checkout keeps them
    in ``rules/`` beside ``adopter/`` (``package-dir`` in pyproject.toml).  Both are looked for
    next to this file first.  Asking the import system for ``adopter.rules`` alone is not enough:
    an editable install's finder maps ``adopter.rules`` to *its* checkout's folder, so a second
    checkout run with the same interpreter (``cd other && python -m ...``, ``PYTHONPATH``,
    benchmarks/devcorpus/score.py run from a detached worktree) got its own engine with the
    installed checkout's rules, and its findings depended on which checkout was installed
    (research27's "main finds the RMSNorm" was b8d2050's engine with research27's ADP011).
    The spec is the fallback for other layouts; :mod:`importlib.resources` is not used, its
    import (``tempfile``, ``shutil``, ...) was a tenth of a one-file check's start-up."""
    import importlib.util

    here = Path(os.path.abspath(__file__)).parent
    installed = here / "rules"
    if (installed / "__init__.py").is_file():
        return installed
    checkout = here.parent / "rules"
    if (checkout / "__init__.py").is_file() and (here.parent / "pyproject.toml").is_file():
        return checkout
    spec = importlib.util.find_spec("adopter.rules")
    if spec is None or not spec.submodule_search_locations:
        raise RuleError("adopter.rules", 1, 1, "the bundled rules are not installed")
    return Path(list(spec.submodule_search_locations)[0])


def load_rules(extra_dirs: list[Path] | None = None, bundled: bool = True) -> list[Rule]:
    """Bundled rules first, then each extra folder's.

    A rule file whose id is already loaded **replaces** the earlier rule as a whole (a later
    folder wins over an earlier one, any user folder over the bundled rules): there is no
    merging of keys, so an override states the whole rule.  With ``bundled=False`` only the
    extra folders are read (``adopter check --no-bundled-rules --rules-dir DIR``; the paper
    benchmark runs its own copies of ADP001-ADP009 this way).
    """
    by_id: dict[str, Rule] = {}
    for folder in [*([bundled_rules_dir()] if bundled else []), *(extra_dirs or [])]:
        if not folder.is_dir():
            raise RuleError(str(folder), 1, 1, "rule folder does not exist")
        for path in sorted(folder.glob("*.toml")):
            if path.name == MEASURED_FILE:  # the benchmark's figures (adopter.measured), not a rule
                continue
            rule = load_rule(path)
            by_id[rule.id] = rule
    return sorted(by_id.values(), key=lambda r: r.id)


def selected_by(rule: Rule, selectors: list[str]) -> bool:
    """Whether one of ``selectors`` (an id, an id prefix, a name, or ``ALL``) names ``rule``."""
    return any(s == "ALL" or rule.id.startswith(s) or s == rule.name for s in selectors)


def select_rules(
    rules: list[Rule], select: list[str] | None = None, ignore: list[str] | None = None,
    target: str | None = None,
) -> list[Rule]:
    """``select`` names rules (id, prefix like ``ADP00``, name, or ``ALL``); off-by-default
    rules run only when named explicitly, or, for a rule whose ``default`` lists targets
    (``default = ["cuda"]``), when ``target`` is one of them or ``ALL`` is selected."""
    known = {r.id for r in rules} | {r.name for r in rules}
    hits = selected_by

    for selector in [*(select or []), *(ignore or [])]:
        if selector != "ALL" and not any(r.id.startswith(selector) or r.name == selector for r in rules):
            raise ValueError(f"unknown rule {selector!r} (known: {', '.join(sorted(known))})")
    chosen = []
    for rule in rules:
        if select:
            # ALL takes every rule that is on by default for some target; a rule off everywhere
            # (ADP004, kept for the paper benchmark) only by its name
            explicit = any(s in (rule.id, rule.name) or (s == "ALL" and rule.default_targets) for s in select)
            if not hits(rule, select) or (not rule.default_on(target) and not explicit):
                continue
        elif not rule.default_on(target):
            continue
        if ignore and hits(rule, ignore):
            continue
        chosen.append(rule)
    return chosen
