"""The check path: source text -> findings.  No torch, no LibCST, no GitHub here.

Files are streamed one at a time (keeping every tree alive costs more in the garbage
collector than parsing: SPEC section 6), and a rule whose trigger words do not occur in a
file's text is never matched against it, so most files in a large tree are not even parsed.
"""

from __future__ import annotations

import ast
import gc
import re
import sys
import weakref
from functools import partial
from .records import dataclass, replace

from .match import Match, Matcher
from .ruleset import Rule
from .structure import module_structure
from .structure.names import collect_names
from .structure.graph import FlowTooLarge, Ref, blocks as _blocks, children
from .structure.treewalk import ast_walk
from .structure import library_layers
from .structure import key_cats
from .structure.siblings import base_class_texts, imported_table_words
from .structure.mask_tokens import any_replacement

# ``# adopter: ignore`` / ``# adopter: ignore[ADP005, softmax]`` and Ruff's ``# noqa`` /
# ``# noqa: ADP005, E501`` (a noqa naming only other tools' codes does not silence ours).
SUPPRESS = re.compile(r"#\s*adopter:\s*ignore(?:\[(?P<codes>[A-Za-z0-9_,\s-]+)\])?", re.I)
NOQA = re.compile(r"#\s*(?i:noqa)(?P<colon>:\s*(?P<codes>[A-Z]+[0-9]+(?:[,\s]+[A-Z]+[0-9]+)*)?)?")


@dataclass(frozen=True)
class Finding:
    rule: str
    name: str
    path: str
    line: int
    column: int  # 1-based, in characters
    end_line: int
    end_column: int
    message: str
    fixable: bool
    class_name: str = ""
    # In a notebook: the cell (counted from 1) that ``line``/``end_line`` are lines of.
    cell: int | None = None
    # Set when the rule does not help on the chosen target (``--target``): the finding is
    # shown for information, never fixed, and not counted in ``check``'s exit code.
    informational: str = ""
    # Set when the rule has a target but ``fix`` would not rewrite this finding: why not.
    not_fixable: str = ""

    def as_dict(self) -> dict:
        return {
            "rule": self.rule, "name": self.name, "path": self.path, "line": self.line, "column": self.column,
            "end_line": self.end_line, "end_column": self.end_column, "message": self.message,
            "fixable": self.fixable, "class": self.class_name,
            "severity": "info" if self.informational else "opportunity",
            "informational": self.informational or None,
            "not_fixable": self.not_fixable or None,
            **({"cell": self.cell} if self.cell else {}),
        }


class AnalysisError(Exception):
    """The file could not be analysed (syntax error, too deeply nested, ...)."""


@dataclass
class Analysis:
    findings: list[Finding]
    matches: list[tuple[Rule, Match]]
    tree: ast.Module | None
    # The 3.11 rendering of a file in newer syntax that was analysed in its place (same lines
    # and columns: :mod:`.newer_syntax`); None when ``ast`` read the text itself.
    rendered: str | None = None


#: id(rule) -> (a weak reference to the rule, its matchers).  A rule is immutable, so its
#: matchers are made once per rule object; loading the same rule file again in this process
#: gives the same object (ruleset.load_rule), so they are made once per rule file.  A rule
#: with the id and path of another (a rule file changed, a test's ``replace``) is another
#: object and gets its own.  (Tests that change the canonical table clear this.)
_MATCHERS: dict[int, tuple[weakref.ref, list[Matcher]]] = {}


def matchers_for(rule: Rule) -> list[Matcher]:
    """One matcher per forward alternative and per variant of one (adopter.equivalents),
    compiled once per rule object."""
    entry = _MATCHERS.get(id(rule))
    if entry is not None and entry[0]() is rule:
        return entry[1]
    matchers = [
        Matcher(rule.id, forward, rule.init, commutative=rule.commutative, alternative=i,
                live_intermediates=rule.live_intermediates, spellings=rule.spellings, anchor=rule.anchor,
                direct_layers=rule.layer_typing == "direct", same_source=rule.same_source, scope=rule.scope,
                variant=j, same_function=rule.same_function_of(i), helper_computes=rule.helper_computes,
                predicts_input=rule.predicts_input_of(i), setting_paths=rule.setting_paths,
                computed=rule.computed, module_weights=rule.module_weights,
                independent=rule.independent, given=rule.given, foldable=rule.foldable, outputs_meet=rule.outputs_meet,
                uncentred=rule.uncentred, projection=rule.projection, max_gap=rule.max_gap,
                same_extras=rule.same_extras)
        for j, (i, forward) in enumerate((*enumerate(rule.forwards), *rule.variants))
    ]
    _MATCHERS[id(rule)] = (weakref.ref(rule, partial(_forget, id(rule))), matchers)
    return matchers


def _forget(key: int, ref: weakref.ref) -> None:
    """A rule is gone: its entry goes too (its id may be given to a new object)."""
    entry = _MATCHERS.get(key)
    if entry is not None and entry[0] is ref:
        del _MATCHERS[key]


def match_rule(rule: Rule, structure) -> list[Match]:
    found: dict[tuple, Match] = {}
    # Matcher._candidates' per-file lists, by the matchers' word-key sets: a set whose list is
    # already known empty (an earlier matcher with the same keys listed it) leaves
    # match_module nothing to return, so the call is not made (most matchers of most files:
    # the matchers of a rule's alternatives and variants share a few key sets).
    listed = structure.candidates
    deferred = []
    for matcher in matchers_for(rule):
        if matcher.predicts_input == "masked":
            deferred.append(matcher)
            continue
        if matcher.predicts_input == "shift" and not _negative_stops(structure):
            # (a next-element target is a slice ``:-k`` of the logits' or the target's positions,
            # Matcher._shifted_target: a file that writes no negative slice stop has none)
            continue
        if matcher.predicts_input == "token" and not any_replacement(structure):
            # (masked modeling needs a same-file module replacing rows by a learned mask token:
            # a file without one, and the matcher would find nothing)
            continue
        known = listed.get(matcher.roots_key)
        if known is not None and not known:
            continue
        for match in matcher.match_module(structure):
            found.setdefault(match.key, match)
    if deferred and found:
        _add_masked_rows(deferred, structure, found)
    matches = list(found.values())
    if len(matches) > 1:
        # One site reached by a smaller and a larger pattern of the rule (the rotation of q
        # alone, and of q and k together) is the larger one.
        spans = [frozenset(n.span for n in m.nodes) for m in matches]
        matches = [m for m, own in zip(matches, spans) if not any(own < other for other in spans)]
    if isinstance(rule.same_function, tuple) and "helper" in rule.same_function and len(matches) > 1:
        # A one-tensor form ("helper": the rotation of one tensor in a helper applied to q and
        # to k) in a function where a form of the rule over two tensors already matched is a
        # third tensor rotated beside q and k (CLVP's helper also rotates v): not q or k, so not
        # a site of its own.
        whole = {n.func for m in matches if rule.same_function_of(m.alternative) is True for n in m.nodes}
        if whole:
            matches = [m for m in matches if rule.same_function_of(m.alternative) != "helper"
                       or not {n.func for n in m.nodes} <= whole]
    if isinstance(rule.same_function, tuple) and "helper" in rule.same_function:
        # A one-tensor form written in a root (no step inlined) is the forward of a one-tensor
        # module (its own forward rotates its input; the attention calls one instance on q and
        # one on k) only when it is the one match of the rule in that function: two there are
        # q and k rotated each with its own cos and sin (Falcon), not one RoPE of both.
        # (a step of the root not inlined: the steps are all in the root, or in a helper that
        # returns them to it as they are, Matcher._finish)
        roots = [m for m in matches if rule.same_function_of(m.alternative) == "helper"
                 and not all(n.inlined for n in m.nodes)]
        if roots:
            # sites per function, a site being the step a match ends at: one rotation read by
            # two alternatives (its rotate_half inlined as the canonical rotation, and called by
            # name) is one site, not q and k rotated apart
            count: dict = {}
            for m in matches:
                for func in {n.func for n in m.nodes}:
                    count.setdefault(func, set()).add(m.nodes[-1].span)
            lone = {id(m) for m in roots if all(len(count[n.func]) == 1 for n in m.nodes if not n.inlined)
                    and _returns_one(structure, m, rotated=True) and not _rotates_one_input(structure, m.class_name)}
            lone |= _rotated_with_one_pair(roots)
            matches = [m for m in matches if id(m) in lone or rule.same_function_of(m.alternative) != "helper"
                       or all(n.inlined for n in m.nodes)]
        matches = [m for m in matches if rule.same_function_of(m.alternative) != "helper"
                   or not all(n.inlined for n in m.nodes) or _helper_hands_back(structure, m)]
    if isinstance(rule.same_function, tuple) and "helper" in rule.same_function and len(matches) > 1:
        matches = _own_tables(rule, structure, matches)
        if len(matches) > 1:
            matches = _one_pair_of_tables(matches)
    return sorted(matches, key=lambda m: m.span)


_VOCABULARY_TYPES = frozenset(("adopter.lm_head", "adopter.lm_head_first"))


def _head_of(structure, match: Match) -> tuple | None:
    """Which head a match's first step calls: the same-file module class it is an instance of,
    or else the attribute of its class (a Linear held as ``self.lm_head``); None for no layer."""
    head = match.nodes[0]
    if head.kind != "layer":
        return None
    local = sorted(t for t in head.types if t in structure.classes)
    return ("class", local[0]) if local else ("attribute", match.class_name, head.layer)


def _called_again(structure, heads: set) -> bool:
    """Is one of these heads called twice or more in the file's text (``self.<attr>(`` in the
    classes holding it)?  A head called once is used only where the rule found it: the deferred
    matchers have no other use to read (most causal LMs), and are not run."""
    lines = structure.lines
    if lines is None:
        return True
    attributes = {(h[1], h[2].partition(".")[2]) for h in heads if h[0] == "attribute"}
    classes = {h[1] for h in heads if h[0] == "class"}
    calls = 0
    for cls in structure.classes.values():
        node = cls.info.node if cls.info is not None else None
        if node is None:
            continue
        for attr, ctors in cls.bindings.items():
            if (cls.name, attr) in attributes or (classes and ctors and ctors[0].fqn in classes):
                text = "\n".join(lines[node.lineno - 1:node.end_lineno])
                calls += text.count(f"self.{attr}(")
                if calls >= 2:
                    return True
    return False


_NEGATIVE_STOP = re.compile(r":\s*-\s*\d")


def _negative_stops(structure) -> bool:
    """Does the file's text write a slice stop ``:-k`` (spaces allowed, ``: -1``), which a
    complementary shift of positions (match._complementary) needs on one side?  Once per file."""
    found = structure.__dict__.get("_negative_stops")
    if found is None:
        text = structure.text if structure.text is not None else "\n".join(structure.lines or ())
        found = structure.__dict__["_negative_stops"] = _NEGATIVE_STOP.search(text) is not None
    return found


def _add_masked_rows(deferred: list, structure, found: dict) -> None:
    """The deferred alternatives (``predicts_input = "masked"``: a head's logits over rows a
    mask picks, into a cross-entropy) where their head is one the rule's other matches in this
    file already score as a vocabulary head (a next-element loss, a view to the vocabulary): a
    vocabulary head is one at every use in the file (lead ruling, session 39), and the fused
    kernel takes any rows.  Run only in files where the rule found something: elsewhere there
    is no such head, and the matchers cost nothing."""
    # (a head typed as a vocabulary head by the file's data flow, adopter.lm_head, is read at
    # every use by the rule's own alternatives already: only the heads found otherwise count)
    heads = {h for h in (_head_of(structure, m) for m in found.values()
                         if not m.nodes[0].types & _VOCABULARY_TYPES) if h is not None}
    if not heads or not _called_again(structure, heads):
        return
    for matcher in deferred:
        for match in matcher.match_module(structure):
            if _head_of(structure, match) in heads:
                found.setdefault(match.key, match)


def _tables_of(m: Match) -> tuple:
    """The tables a one-tensor form's match multiplies by (cos, sin, the xpos scale), by value."""
    env = dict(m.env)
    return tuple(v.key if isinstance(v, Ref) else repr(v) for v in (env.get(k) for k in ("cos", "sin", "scale")))


def _rotated_with_one_pair(roots: list[Match]) -> set[int]:
    """The one-tensor forms written in a root (no step inlined) that rotate two or more
    different tensors there, all with one pair of tables: q and k rotated each on its own lines
    with the same cos and sin (unsloth's in-place rotation of q, then of k) are one RoPE of
    both (``_one_pair_of_tables`` keeps the first).  Tables told apart (Falcon's own cos and
    sin per tensor) or one tensor rotated twice leave them out, as before."""
    groups: dict = {}
    for m in roots:
        if any(n.inlined for n in m.nodes) or "x" not in dict(m.env):
            continue
        groups.setdefault((m.class_name, m.flow, m.nodes[-1].func), []).append(m)
    kept: set[int] = set()
    for group in groups.values():
        rotated = {dict(m.env)["x"] for m in group}
        if len(group) >= 2 and len(rotated) >= 2 and len({_tables_of(m) for m in group}) == 1:
            kept.update(id(m) for m in group)
    return kept


def _one_pair_of_tables(matches: list[Match]) -> list[Match]:
    """One site per function for the one-tensor forms (a match binding ``x``) written in that
    function itself (no step inlined) with one pair of tables: q and k rotated each on its own
    line with the same cos and sin are one RoPE of both, anchored at the first (eole's 2-D
    per-chunk rotation in a loop, where the two-tensor form does not match across the loop's
    ``list.append``s).  Tables told apart keep both (Falcon's own cos and sin per tensor).
    The same holds in a helper (every step inlined) that rotates two different tensors on its
    own lines with one pair of tables: q's halves and k's halves each concatenated first, then
    ``q * cos + q_rot * sin, k * cos + k_rot * sin`` (s3tokenizer's apply_rotary_emb, research126;
    the two-tensor form is written in the other order of steps).  A one-tensor helper applied
    to q and to k by two calls has one rotation, not two tensors on lines of its own."""
    first: dict = {}
    in_helper: dict = {}  # (class, flow, helper, tables) -> (the tensor rotated, first step's span)
    drop: set = set()
    for m in sorted(matches, key=lambda m: m.span):
        env = dict(m.env)
        if "x" not in env or "k" in env:
            continue
        nodes = m.nodes
        inlined = [n.inlined for n in nodes]
        if True in inlined:
            # (plain loops: this runs for every one-tensor match of a helper; the helper's
            # steps alone, all in that one helper)
            func = nodes[0].func
            if False in inlined or [n for n in nodes if n.func != func]:
                continue
            cos, sin, scale = env.get("cos"), env.get("sin"), env.get("scale")
            key = (m.class_name, m.flow, func,
                   cos.key if isinstance(cos, Ref) else repr(cos), sin.key if isinstance(sin, Ref) else repr(sin),
                   scale.key if isinstance(scale, Ref) else repr(scale))
            kept = in_helper.get(key)
            if kept is None:
                in_helper[key] = (env["x"], nodes[0].span)
            elif kept[0] != env["x"] and kept[1] != nodes[0].span:
                drop.add(id(m))
            continue
        key = (m.class_name, m.flow, m.nodes[-1].func, _tables_of(m))
        if key in first:
            drop.add(id(m))
        else:
            first[key] = m
    return [m for m in matches if id(m) not in drop] if drop else matches


def _own_tables(rule: Rule, structure, matches: list[Match]) -> list[Match]:
    """Less the one-tensor forms ("helper") of which one helper holds two or more, each with
    other tables (cos, sin, and the xpos scale): q and k rotated in one function each with its
    own cos and sin (local-attention's xpos: q with its sliced table and scale, k with the whole
    table and 1/scale), not one RoPE of both -- as two in a root are (match_rule).  Tables the
    flow computes again by the same steps (``freqs.cos()`` on each line) are the same."""
    groups: dict = {}
    for m in matches:
        if rule.same_function_of(m.alternative) == "helper" and all(n.inlined for n in m.nodes):
            groups.setdefault((m.class_name, m.flow, frozenset(n.func for n in m.nodes)), []).append(m)
    drop: set = set()
    for (class_name, flow_name, _), group in groups.items():
        if len(group) < 2:
            continue
        cls = structure.classes.get(class_name)
        root = _root_of(flow_name, class_name)
        repeats = (cls.flow(root).repeats if cls is not None and root in cls.functions else None) or {}

        def tables(m: Match, repeats=repeats) -> tuple:
            env = dict(m.env)
            return tuple(repeats.get(v.key, v.key) if isinstance(v, Ref) else repr(v)
                         for v in (env.get(name) for name in ("cos", "sin", "scale")))

        if len({tables(m) for m in group}) > 1:
            drop.update(id(m) for m in group)
    return [m for m in matches if id(m) not in drop] if drop else matches


def _root_of(flow_name: str, class_name: str) -> str:
    """The root function of a flow named ``<class>.<root>`` (the class's name may be dotted: a
    class defined in another's body, ``MLP.Block``)."""
    if class_name and flow_name.startswith(class_name + "."):
        return flow_name[len(class_name) + 1:]
    return flow_name.split(".", 1)[-1]


def _own_returns(func) -> list:
    """The return statements of ``func`` itself (not of functions, classes or lambdas inside it)."""
    returns, pending = [], list(func.body)
    while pending:
        node = pending.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            continue
        if isinstance(node, ast.Return):
            returns.append(node)
        pending.extend(ast.iter_child_nodes(node))
    return returns


def _returns_one(structure, match: Match, rotated: bool = False) -> bool:
    """Does the root function of ``match`` return one value wherever it returns (not a tuple:
    the forward of a module that rotates its one input returns that tensor rotated)?  With
    ``rotated``, also: does some return hand back the match's result (the return holds its
    last step, or reads a name that step binds)?  A tensor rotated and then consumed in the
    function (kvpress-style scoring that rotates the window's queries and multiplies them by
    keys rotated elsewhere, returning the attention weights) is no one-tensor helper's
    rotation, and q alone is not the rule's site."""
    cls = structure.classes.get(match.class_name)
    func = cls.functions.get(_root_of(match.flow, match.class_name)) if cls is not None else None
    if func is None:
        return False
    returns = _own_returns(func)
    if not returns or not all(r.value is not None and not isinstance(r.value, (ast.Tuple, ast.List))
                              for r in returns):
        return False
    return not rotated or _hands_back(returns, match.nodes[-1], func)


def _hands_back(returns: list, last, func=None) -> bool:
    """Does one of ``returns`` (a function's return statements) hand back the value the step
    ``last`` computes: the return holds that step, or reads a name the step's statement binds
    (``x_embed = ...; return x_embed``, ``t_rot = (...).to(t.dtype); return torch.cat((t_rot,
    t_pass), -1)``)?  A step inside a lambda of ``func`` is handed back by the lambda (its body is
    what it returns: ``map(lambda t: t * cos + rotate_half(t) * sin, (q, k))``)."""
    names = {out.text for out in last.outs if isinstance(out, Ref)}
    line = last.span[0] if last.span else None
    if line is not None and func is not None:
        for node in ast_walk(func):
            if node.__class__ is ast.Lambda and node.lineno <= line <= (node.end_lineno or node.lineno):
                return True
            if node.__class__ is ast.Assign and node.lineno <= line <= (node.end_lineno or node.lineno):
                names.update(t.id for t in node.targets if t.__class__ is ast.Name)
    for r in returns:
        if line is not None and r.lineno <= line <= (r.end_lineno or r.lineno):
            return True
        if names and r.value is not None \
                and any(n.__class__ is ast.Name and n.id in names for n in ast_walk(r.value)):
            return True
    return False


_STACKS = frozenset({"cat", "concat", "concatenate", "stack"})


def _rotates_one_input(structure, class_name: str) -> bool:
    """Is the one-tensor rotary module ``class_name`` built in this file (an attribute bound to
    it in a class's ``__init__``) and applied in it to one tensor alone: the file reads that
    attribute exactly once, as the callee of a call that is no part of a loop, comprehension or
    lambda, whose input is not a concatenation (q and k stacked)?  That module rotates one
    tensor per call (AnyUp's rotation of the image encoding, which query and key encoders then
    read), not q and k.  A module the file never builds, passes on, or calls twice keeps its
    site (other modules, or its two calls, apply it to q and to k)."""
    holders = [(cls, attr) for cls in structure.classes.values() for attr, built in cls.bindings.items()
               if any(c.fqn == class_name for c in built)]
    if not holders:
        return False
    sites = []
    for cls, attr in holders:
        for func in cls.functions.values():
            parents = None
            for node in ast_walk(func):
                if not (node.__class__ is ast.Attribute and node.attr == attr and node.value.__class__ is ast.Name
                        and node.value.id == "self" and node.ctx.__class__ is ast.Load):
                    continue
                if parents is None:
                    parents = {child: parent for parent in ast_walk(func) for child in ast.iter_child_nodes(parent)}
                sites.append((node, parents, func))
                if len(sites) > 1:
                    return False
    if len(sites) != 1:
        return False
    node, parents, func = sites[0]
    call = parents.get(node)
    if not (isinstance(call, ast.Call) and call.func is node and call.args) or isinstance(call.args[0], ast.Starred):
        return False
    up = parents.get(call)
    while up is not None and up is not func:
        if isinstance(up, (ast.For, ast.AsyncFor, ast.While, ast.Lambda, ast.ListComp, ast.SetComp,
                           ast.DictComp, ast.GeneratorExp)):
            return False
        up = parents.get(up)
    if _helper_called_again(func, holders):
        return False
    first = call.args[0]
    stacked = [first]
    if isinstance(first, ast.Name):
        stacked += [n.value for n in ast_walk(func) if isinstance(n, ast.Assign)
                    and any(isinstance(t, ast.Name) and t.id == first.id for t in n.targets)]
    for value in stacked:
        if isinstance(value, ast.Subscript) and isinstance(value.slice, ast.Slice):
            return False  # several entries of a stacked tensor (``qkv[:2]``: q and k, review63)
        for inner in ast_walk(value):
            if isinstance(inner, ast.Call):
                name = inner.func.attr if isinstance(inner.func, ast.Attribute) else \
                    inner.func.id if isinstance(inner.func, ast.Name) else ""
                if name in _STACKS:
                    return False
    return True


def _helper_called_again(func, holders) -> bool:
    """Is ``func`` (the method applying a one-tensor rotary module) a helper its class calls
    more than once, or in a loop (``self._rot(q)``, ``self._rot(k)``: q and k rotated through
    it, review63)?"""
    name = func.name
    calls = 0
    for cls, _ in holders:
        for other in cls.functions.values():
            for node in ast_walk(other):
                if (node.__class__ is ast.Call and node.func.__class__ is ast.Attribute and node.func.attr == name
                        and node.func.value.__class__ is ast.Name and node.func.value.id == "self"):
                    calls += 1
                elif node.__class__ in (ast.For, ast.AsyncFor, ast.While, ast.ListComp, ast.GeneratorExp) and any(
                        n.__class__ is ast.Call and n.func.__class__ is ast.Attribute and n.func.attr == name
                        for n in ast_walk(node)):
                    return True
                if calls > 1:
                    return True
    return False


def _helper_hands_back(structure, match: Match) -> bool:
    """For a one-tensor form whose steps all sit in a helper the root calls: does that helper
    return the rotated tensor (:func:`_hands_back`)?  A helper that rotates a tensor and then
    consumes it (kvpress-style scoring: the window's queries rotated, multiplied by keys rotated
    elsewhere, the attention weights returned) is no rotation applied to q and to k.  True where
    the helper is not found (nothing read, nothing dropped)."""
    last = match.nodes[-1]
    qual = last.func
    func = structure.names.functions.get(qual)
    if func is None and "." in qual:
        owner, _, name = qual.rpartition(".")
        cls = structure.classes.get(owner)
        func = cls.functions.get(name) if cls is not None else None
    if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return True
    returns = _own_returns(func)
    return _hands_back(returns, last, func)


def parse(text: str, path: str) -> ast.Module:
    return parse_text(text, path)[0]


def parse_text(text: str, path: str) -> tuple[ast.Module, str]:
    """(the ``ast`` tree, the text it is the tree of): ``text``, or where ``ast`` rejects it
    and LibCST reads it (Python 3.12 syntax), its rendering at the same lines and columns."""
    try:
        return ast.parse(text, filename=path), text
    except SyntaxError as exc:
        from .newer_syntax import parse_rendered  # (only after a SyntaxError)

        try:
            return parse_rendered(text, path, exc)
        except SyntaxError:
            pass
        except (RecursionError, MemoryError):
            raise AnalysisError("expression nesting too deep to analyse") from None
        where = f"{exc.lineno}:{(exc.offset or 1)}" if exc.lineno else "1:1"
        raise AnalysisError(f"syntax error at {where}: {exc.msg}") from None
    except (RecursionError, MemoryError):
        raise AnalysisError("expression nesting too deep to analyse") from None
    except ValueError as exc:  # e.g. source code string cannot contain null bytes
        raise AnalysisError(str(exc)) from None


# A rule's trigger words in the order they are tried (per trigger set): the word found in the
# last file first.  Which rules apply does not depend on the order; the time does: an absent word
# is a scan of the whole text, and most files that mention a rule's words mention the one the
# previous file did (an order of the frozenset's hashes scanned for absent words first).  Each
# order is a tuple, replaced whole (one dict store): analyses in threads read a whole order.
_TRIGGER_ORDER: dict[frozenset, tuple[str, ...]] = {}


def relevant_rules(text: str, rules: list[Rule]) -> list[Rule]:
    """The rules without trigger words, and those with one of theirs in ``text``, in order."""
    found = []
    for rule in rules:
        triggers = rule.triggers
        if not triggers:
            found.append(rule)
            continue
        order = _TRIGGER_ORDER.get(triggers)
        if order is None:
            order = _TRIGGER_ORDER[triggers] = tuple(sorted(triggers))
        for index, word in enumerate(order):
            if word in text:
                if index:  # (move to front: tried first next time)
                    _TRIGGER_ORDER[triggers] = (word, *order[:index], *order[index + 1:])
                found.append(rule)
                break
    return found


def _with_imported_tables(text: str, tree: ast.Module, rules: list[Rule], kept: list[Rule], package: str,
                          path: str) -> list[Rule]:
    """``kept`` and the rules it left out one of whose words names a callable that a table
    imported from another module of the package holds (siblings.imported_table_words:
    ``_valid_optimizers[name](params)`` calls ``torch.optim.AdamW`` among others, a word the
    file never writes), in ``rules``' order."""
    words = imported_table_words(tree, text, package, path)
    if not words:
        return kept
    kept_ids = {id(rule) for rule in kept}
    return [rule for rule in rules if id(rule) in kept_ids or not rule.triggers.isdisjoint(words)]


def _with_library_layers(text: str, rules: list[Rule], kept: list[Rule]) -> list[Rule]:
    """``kept`` and the rules it left out one of whose words a described library module writes
    (structure.library_layers: ``torchvision.models.resnet50()`` builds the ``nn.BatchNorm2d``
    this file never names), for the libraries the file names, in ``rules``' order."""
    texts = library_layers.mentioned(text)
    if not texts:
        return kept
    kept_ids = {id(rule) for rule in kept}
    return [rule for rule in rules if id(rule) in kept_ids
            or any(word in lib for word in rule.triggers for lib in texts)]


def _with_base_modules(tree: ast.Module, rules: list[Rule], kept: list[Rule], package: str,
                       path: str) -> list[Rule]:
    """``kept`` and the rules it left out one of whose words the constructor of a package base
    class of this file writes (siblings.base_class_texts: ``class NoPEGQA(GQA)`` inherits the
    ``nn.Linear`` projections ``GQA.__init__`` builds in another module of the package, a word
    this file never writes), in ``rules``' order."""
    texts = base_class_texts(tree, package, path)
    if not texts:
        return kept
    kept_ids = {id(rule) for rule in kept}
    return [rule for rule in rules if id(rule) in kept_ids
            or any(word in text for word in rule.triggers for text in texts)]


def analyze(text: str, path: str, rules: list[Rule], package: str | None = None,
            tree: ast.Module | None = None) -> Analysis:
    """Findings (and matches) of ``rules`` in ``text``; ``tree``: its ``ast`` when the caller
    already parsed it (the fixer validates each rewrite by parsing it, then analyses it)."""
    # The cyclic garbage collector is paused from the parse to the return: the syntax tree and
    # the analysis make no reference cycles (the one between a module structure and its
    # classes is cut in _analyze; tests/test_engine_gc.py checks), so everything they allocate
    # is freed by reference counting, and the collections their allocations would trigger
    # only walk the live syntax tree and graphs again and again (a fifth of the time ast.parse
    # takes, a fifth of the analysis over a corpus).  One window, not one for the parse and
    # one for the analysis: the first allocation after the collector is switched back on
    # collects every object allocated while it was off that is still alive (the whole tree,
    # right after the parse); at the return that is only what the caller keeps, and nothing
    # once the caller has dropped the result.  The collector's previous state is restored.
    collecting = gc.isenabled()
    if collecting:
        gc.disable()
    try:
        return _analyze(text, path, rules, package, tree)
    finally:
        if collecting:
            gc.enable()


def _analyze(text: str, path: str, rules: list[Rule], package: str | None, tree: ast.Module | None) -> Analysis:
    rendered = None
    if tree is None:
        # always: a broken file is an error even when no rule could apply
        tree, analysed = parse_text(text, path)
        if analysed is not text:  # newer syntax: its rendering is what is analysed
            text = rendered = analysed
    kept = relevant_rules(text, rules)
    if kept != rules:
        kept = _with_library_layers(text, rules, kept)
    if package is not None and path and kept != rules:
        kept = _with_imported_tables(text, tree, rules, kept, package, path)
        if kept != rules:
            kept = _with_base_modules(tree, rules, kept, package, path)
    rules = kept
    if not rules:
        return Analysis([], [], tree, rendered)
    limit = sys.getrecursionlimit()
    structure = None
    try:
        sys.setrecursionlimit(max(limit, 10000))
        structure = module_structure(tree, package, text, path)
        lines = structure.lines  # text.split("\n"), split once for the structure and the findings
        findings: list[Finding] = []
        matches: list[tuple[Rule, Match]] = []
        ifs: dict = {}  # filled on first use: span -> ast.If with an else branch
        scripting = None  # (does the file write `is_scripting() else`: tested at the first match)
        for rule in rules:
            # One finding per place: two matches of a rule that start at the same operation
            # (the same dropout and add before a LayerNorm on either branch of an if, a query
            # projection before the branches that project key and value) are one opportunity;
            # the fixable one is kept.
            at: dict[tuple, int] = {}
            # (first line, last step): two matches that end at one operation and start on one
            # line are one place too (rules that name no anchor) -- the two choices of
            # ``h = conv_a(x) if t else conv_b(x)``
            # before one BatchNorm (a statement ``if``'s branches start on lines of their own)
            ends: dict[tuple, int] = {}
            # (a kernel whose name the file never writes has no fallback here: a substring test
            # first, once per rule, before any walk of the tree -- at the rule's first match: most
            # rules match nothing in a file, and each test is a scan of the whole text)
            kernels = None
            for match in match_rule(rule, structure):
                if kernels is None:
                    kernels = [name for name in rule.not_in_fallback_of if name in text]
                    if scripting is None:
                        scripting = "is_scripting" in text and SCRIPTING_ELSE.search(text) is not None
                if kernels and any(_in_fallback(match, tree, lines, name, ifs) for name in kernels) \
                        and not key_cats.not_the_kernels_fallback(match, tree, kernels):
                    continue
                if scripting and _only_when_scripting(match, tree, structure.names):
                    continue
                if rule.trailing_dims and not _trailing(match, rule.trailing_dims, tree):
                    continue
                if match.ctors and all(c.sibling for _, c in match.ctors) and match.members_only():
                    # pairs inside a container that a base class in another module of the
                    # package builds (wan's DiTBlock ffn, inherited by a subclass here) run in
                    # that container's forward: the site is that module's, reported there
                    continue
                finding = _finding(rule, match, path, lines)
                if match.nodes[-1].inlined:
                    finding = _to_call_site(structure, match, finding, lines)
                if _suppressed(lines, finding):
                    continue
                # A place is a position in the file: subclasses that run one inherited helper
                # (espnet's RelPositionMultiHeadedAttention classes and their base's
                # forward_attention) share its anchor, one opportunity and one edit.
                nodes = match.nodes
                place = nodes[0].span
                if nodes[0].inlined and nodes[0].kind != "layer" and not nodes[-1].inlined and rule.anchor is None:
                    # a helper's computation (no layer call: a tied-embedding head helper, ``h @
                    # emb.weight.t()``) the root runs through two calls of the helper, each ending
                    # a match of its own (its logits into a cross-entropy at two call sites): the
                    # helper's call is where that computation runs, one place per call.  A layer
                    # called inside the helper stays one place, its call (tortoise's heads).
                    copy, copies = _inlined_copy(structure, match)
                    place = (place, copy)
                    if copies > 1:  # split per call: each finding starts at its own call
                        finding = _from_call_site(structure, match, finding, lines)
                end = None
                if rule.anchor is not None and rule.anchor in match.roles:  # the rule says what one place is
                    place = nodes[match.roles.index(rule.anchor)].span
                elif match.members_only():
                    # members of one container list, the first layer appended on either branch
                    # of an if (ResNeSt's downsample: a pool and a conv, or a strided conv, then
                    # the norm): one place per last member, and one edit (the container's class)
                    place = nodes[-1].span
                    if finding.line > place[2] and _calls_of_containers(match) is not None:
                        # several containers reported where they are called: one place per
                        # call (the same projections run on x, then on y: two places, review63)
                        place = (place, nodes[-1].stmt)
                else:
                    end = (_first_line(nodes, finding), nodes[-1].span)
                if place in at or end in ends:
                    index = at[place] if place in at else ends[end]
                    kept = findings[index]
                    if finding.fixable and not kept.fixable:
                        findings[index], matches[index] = finding, (rule, match)
                        kept, finding = finding, kept
                    if finding.end_line > kept.end_line:
                        # the one place reaches each of its ends (the LayerNorm of either
                        # branch): the finding spans them all, whichever match it keeps
                        findings[index] = replace(kept, end_line=finding.end_line, end_column=finding.end_column)
                    continue
                at[place] = len(findings)
                if end is not None:
                    ends[end] = len(findings)
                findings.append(finding)
                matches.append((rule, match))
    except RecursionError:
        raise AnalysisError("code nesting too deep to analyse") from None
    except FlowTooLarge as exc:
        raise AnalysisError(str(exc)) from None
    finally:
        sys.setrecursionlimit(limit)
        if structure is not None:
            # Each class structure points back at its module (a reference cycle), which would
            # keep the file's syntax tree and graphs alive until a full garbage collection:
            # with the cycle cut here, they are freed as soon as the analysis returns.  The
            # full collections that cyclic garbage triggered cost a third of the analysis time
            # over a corpus (matches keep only the nodes they need, never the structure).
            structure.classes.clear()
    findings.sort(key=lambda f: (f.line, f.column, f.rule))
    return Analysis(findings, matches, tree, rendered)


def _trailing(match: Match, var: str, tree: ast.Module) -> bool:
    """Is what the match bound to a rule's ``trailing_dims`` variable (nothing: True) the
    trailing axes in order: ``self.<attr>`` where every assignment the file makes to an
    attribute of that name is ``tuple(range(-n, 0))`` (also ``list(...)`` or the range itself),
    the last ``n`` axes whatever ``n`` is at run time?  (A literal ``(-2, -1)`` would be too, but
    the fix would then read ``x.shape[-len((-2, -1)):]``, which no one writes: not taken.)"""
    value = dict(match.env).get(var)
    if value is None:
        return True
    text = getattr(value, "text", "")
    if not text.startswith("self.") or not text[5:].isidentifier():
        return False
    attr = text[5:]
    found = False
    for node in ast_walk(tree):
        if isinstance(node, (ast.AugAssign, ast.AnnAssign, ast.Assign, ast.Delete)):
            targets = node.targets if isinstance(node, (ast.Assign, ast.Delete)) else [node.target]
            for target in targets:
                for item in ast_walk(target):
                    if isinstance(item, ast.Attribute) and item.attr == attr:
                        if not (isinstance(node, ast.Assign) and target is item and _trailing_range(node.value)):
                            return False
                        found = True
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("setattr", "delattr"):
            return False
    return found


def _trailing_range(expr: ast.expr) -> bool:
    """``tuple(range(-n, 0))``, ``list(range(-n, 0))`` or ``range(-n, 0)``."""
    if (isinstance(expr, ast.Call) and isinstance(expr.func, ast.Name) and expr.func.id in ("tuple", "list")
            and len(expr.args) == 1 and not expr.keywords):
        expr = expr.args[0]
    return (isinstance(expr, ast.Call) and isinstance(expr.func, ast.Name) and expr.func.id == "range"
            and len(expr.args) == 2 and not expr.keywords
            and isinstance(expr.args[0], ast.UnaryOp) and isinstance(expr.args[0].op, ast.USub)
            and isinstance(expr.args[1], ast.Constant) and expr.args[1].value == 0
            and type(expr.args[1].value) is int)


def _in_fallback(match: Match, tree: ast.Module, lines: list[str], name: str, ifs: dict) -> bool:
    """Is the match in one branch of an ``if`` whose other branch calls ``name`` (code that
    already adopted it, keeping the original as a fallback: ``if self.fused_attn: ... else:``)?"""
    wanted = {elem[:2] for node in match.nodes for elem in node.scope if elem[1] >= 0}
    for span, branch in wanted:
        if span not in ifs:
            ifs[span] = _statement_at(tree, span)
        node = ifs[span]
        if isinstance(node, ast.If):
            other = node.orelse if branch == 0 else node.body if branch == 1 else None
            if branch == 1 and _outside_training(node.test):
                other = None  # (the kernel's branch runs only outside training)
        elif isinstance(node, ast.Try) and 1 <= branch <= len(node.handlers):
            # a handler of a ``try`` whose body calls it (``try: out = F.scaled_dot_product_attention(
            # ...) except AttributeError: <manual attention>``): the match runs only when the
            # fused call failed -- its fallback, as the other branch of an if is
            other = node.body
        else:
            other = None
        if not other:
            continue
        chain = _path_to(tree, span)
        cls = next((n for n in reversed(chain) if isinstance(n, ast.ClassDef)), None)
        # the enclosing functions, outermost first: a plain name the try body calls may be a
        # closure defined in one of their bodies (``def _sdpa(q, k, v): return
        # F.scaled_dot_product_attention(...)``), resolved to the innermost scope binding it
        local = [f for f in chain if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))]
        # the call in a statement of the other branch itself (not in a loop nested there, nor in
        # an if that may skip it: then that branch is not simply the fused version of this one),
        # or in a helper that statement calls (chronos-2's ``self._sdpa_attention(...)``)
        if any(_always_calls(stmt, name, lines, (tree, cls, local)) for stmt in other):
            return True
    return _after_early_return(match, tree, lines, name) or _called_only_as_fallback(match, tree, lines, name, ifs)


# ``is_scripting() else``: a conditional expression on it, whose first branch only TorchScript runs
SCRIPTING_ELSE = re.compile(r"is_scripting\s*\(\s*\)\s*else\b")


def _only_when_scripting(match: Match, tree: ast.Module, names) -> bool:
    """Is every step of the match in the first branch of a conditional expression on
    ``torch.jit.is_scripting()`` (``(act(fc(x)) if torch.jit.is_scripting() else bias_gelu(x, fc,
    act))``, the kept original of plan.Planner._scripting_guard)?  That code runs only under
    TorchScript, where the kernels run their operations as written: no speed-up there to report."""
    found = False
    for node in match.nodes:
        if node.span is None:
            return False
        chain = _path_to(tree, node.span)
        if not any(isinstance(cond, ast.IfExp) and inner is cond.body and isinstance(cond.test, ast.Call)
                   and not cond.test.args and names.resolve(cond.test.func) == "torch.jit.is_scripting"
                   for cond, inner in zip(chain, chain[1:])):
            return False
        found = True
    return found


def _called_only_as_fallback(match: Match, tree: ast.Module, lines: list[str], name: str, ifs: dict) -> bool:
    """Is the function the match is written in (a module function, or a method called as
    ``self.<m>(...)``) called in the file, and every call of it a fallback of ``name`` -- after
    an ``if`` that returns a call of it, in the other branch of an ``if`` whose branch calls it,
    or in a handler of a ``try`` whose body calls it (a dispatcher's ``if backend == "sdpa":
    return _sdpa_attention(...)`` then ``return _naive_attention(...)``)?  Then the match runs
    only where the kernel is not taken, as in :func:`_in_fallback`."""
    written = match.nodes[0].func.rsplit(".", 1)[-1]
    if written in ("forward", "__call__"):
        return False  # (a module's forward: called as the module, never by its name)
    text = ifs.get(None)
    if text is None:
        text = ifs[None] = "\n".join(lines)  # (once per file: ``ifs`` is the file's cache)
    if text.count(written + "(") < 2 or name not in text:
        return False  # (no call beside the definition, or no kernel call to fall back from)
    stmt = next((n.stmt for n in match.nodes if n.stmt is not None), None)
    if stmt is None:
        return False
    chain = _path_to(tree, stmt)
    at = next((i for i in range(len(chain) - 1, 0, -1)
               if isinstance(chain[i], (ast.FunctionDef, ast.AsyncFunctionDef))), None)
    if at is None or not isinstance(chain[at - 1], (ast.Module, ast.ClassDef)):
        return False
    func, owner = chain[at], chain[at - 1]
    prefix = r"\bself\." if isinstance(owner, ast.ClassDef) else r"(?<![\w.])"
    sites = []
    for found in re.finditer(prefix + re.escape(func.name) + r"\s*\(", text):
        at = found.start()
        line = text.count("\n", 0, at) + 1
        if not func.lineno <= line <= func.end_lineno:  # (a call in the function itself: recursion)
            first = text.rfind("\n", 0, at) + 1
            sites.append((line, len(text[first:at].encode("utf-8"))))
    if not sites:
        return False
    for line, col in sites:
        site = _path_to(tree, (line, col, line, col))
        cls = next((n for n in reversed(site) if isinstance(n, ast.ClassDef)), None)
        if not _fallback_site(site, tree, lines, name, cls):
            return False
    return True


def _fallback_site(chain: list, tree: ast.Module, lines: list[str], name: str, cls) -> bool:
    """Is the innermost statement of ``chain`` (the nodes from the module down to a call) a
    fallback of ``name``: in one branch of an ``if`` whose other branch always calls it, in a
    handler of a ``try`` whose body does, or after an ``if`` (with no else) that returns a call
    of it?"""
    for at, child in enumerate(chain[1:], start=1):
        parent = chain[at - 1]
        if isinstance(parent, ast.If):
            other = parent.orelse if child in parent.body else parent.body if child in parent.orelse else None
            if other is parent.body and _outside_training(parent.test):
                other = None  # (the kernel's branch runs only outside training)
            if other and any(_always_calls(s, name, lines, (tree, cls)) for s in other):
                return True
        elif isinstance(parent, ast.ExceptHandler) and at >= 2 and isinstance(chain[at - 2], ast.Try) \
                and any(_always_calls(s, name, lines, (tree, cls)) for s in chain[at - 2].body):
            return True
        if _returns_call_before(parent, child, name, lines, tree, cls):
            return True
    return False


def _returns_call_before(parent: ast.AST, child: ast.AST, name: str, lines: list[str], tree: ast.Module,
                         cls) -> bool:
    """Is ``child`` (a statement of ``parent``) after an ``if`` with no else, in its block, that
    returns and calls ``name``: so ``child`` runs only when that path is not taken?"""
    if isinstance(parent, (ast.ClassDef, ast.Module)):
        return False
    for block in _blocks(parent):
        if child not in block:
            continue
        for stmt in block[:block.index(child)]:
            if isinstance(stmt, ast.If) and not stmt.orelse and stmt.body \
                    and isinstance(stmt.body[-1], ast.Return) and not _outside_training(stmt.test) \
                    and any(_calls(s, name, lines, tree, cls) for s in stmt.body):
                return True
    return False


def _outside_training(test: ast.expr) -> bool:
    """Does ``test`` hold only outside training: a conjunct that is ``not self.training``, or
    an ``or`` of that with frozen-parameter tests (``not self.weight.requires_grad``)?  toto's
    RMSNorm takes its fused kernel only ``if (not self.training or <weight frozen>) and
    <kernel available>``: training a module with trainable weights always runs the hand-written
    code after it, so that code is the training path, not a fallback of an adopted kernel."""
    conjuncts = test.values if isinstance(test, ast.BoolOp) and isinstance(test.op, ast.And) else [test]
    for conjunct in conjuncts:
        terms = conjunct.values if isinstance(conjunct, ast.BoolOp) and isinstance(conjunct.op, ast.Or) \
            else [conjunct]
        if any(map(_not_training, terms)) and all(_not_training(t) or _reads_requires_grad(t) for t in terms):
            return True
    return False


def _not_training(term: ast.expr) -> bool:
    """``not self.training``."""
    return (isinstance(term, ast.UnaryOp) and isinstance(term.op, ast.Not)
            and isinstance(term.operand, ast.Attribute) and term.operand.attr == "training"
            and isinstance(term.operand.value, ast.Name) and term.operand.value.id == "self")


def _reads_requires_grad(term: ast.expr) -> bool:
    """A test of whether a tensor is trained (it reads ``.requires_grad``)."""
    return any(isinstance(n, ast.Attribute) and n.attr == "requires_grad" for n in ast_walk(term))


def _always_calls(stmt: ast.stmt, name: str, lines: list[str], where: tuple | None = None,
                  tree: ast.Module | None = None) -> bool:
    """Does ``stmt`` call ``name`` whenever it runs: written in the statement itself, in the body
    of a ``with`` (``with sdpa_kernel(backends): out = F.scaled_dot_product_attention(...)``),
    or in both branches of an ``if`` that has an else (nemo's choice of SDPA backends)?  Given
    ``where`` (the module and the enclosing class), a plain statement also counts when it calls a
    method of that class (``self._fused(...)``) or a module function whose body, one level deep,
    always calls ``name`` the same way.  (``tree``, the module, when ``where`` is not given: a
    dotted name's call is resolved through its imports, :func:`_writes_call`.)"""
    tree = where[0] if where is not None else tree
    if isinstance(stmt, ast.If):
        return bool(stmt.orelse) and any(_always_calls(s, name, lines, where, tree) for s in stmt.body) \
            and any(_always_calls(s, name, lines, where, tree) for s in stmt.orelse)
    if isinstance(stmt, (ast.With, ast.AsyncWith)):
        return any(_always_calls(s, name, lines, where, tree) for s in stmt.body)
    if isinstance(stmt, (ast.For, ast.AsyncFor, ast.While, ast.Try, ast.Match)):
        return False
    if _writes_call(stmt, name, lines, tree):
        return True
    return where is not None and any(
        any(_always_calls(s, name, lines, tree=tree) for s in helper.body) for helper in _helpers_called(stmt, *where))


def _helpers_called(stmt: ast.stmt, tree: ast.Module, cls: ast.ClassDef | None, local: list = ()) -> list:
    """The definitions of the same-class methods (``self.m(...)``) and module functions
    (``f(...)``) that ``stmt`` calls; given ``local`` (the functions enclosing ``stmt``, outermost
    first), a plain name resolves to the innermost of them that binds it: its one binding there a
    ``def`` in its body, that closure; bound otherwise too (a parameter, an assignment, a second
    def), none.  A name no enclosing function binds is the module's."""
    found = []
    for call in ast_walk(stmt):
        if not isinstance(call, ast.Call):
            continue
        func = call.func
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "self":
            scope, wanted = (cls.body if cls is not None else ()), func.attr
        elif isinstance(func, ast.Name):
            scope, wanted = tree.body, func.id
            for f in reversed(local):
                binds = _scope_binds(f, wanted)
                if binds:
                    scope = binds if len(binds) == 1 and binds[0] in f.body else ()
                    break
        else:
            continue
        found += [d for d in scope if isinstance(d, (ast.FunctionDef, ast.AsyncFunctionDef)) and d.name == wanted]
    return found


def _scope_binds(func: ast.FunctionDef | ast.AsyncFunctionDef, name: str) -> list:
    """The nodes of ``func``'s own scope that bind ``name``: a parameter, a ``def`` / ``class``,
    an assignment, loop, ``with`` or ``except`` target, an import, a walrus, ``global`` /
    ``nonlocal``.  Nested functions, lambdas and classes are their own scopes (their names
    only)."""
    a = func.args
    found = [p for p in (*a.posonlyargs, *a.args, *a.kwonlyargs, a.vararg, a.kwarg) if p is not None and p.arg == name]
    todo = list(func.body)
    while todo:
        node = todo.pop()
        kind = node.__class__
        if kind in (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef):
            if node.name == name:
                found.append(node)
            todo += node.decorator_list
            continue
        if kind is ast.Lambda:
            continue
        if kind is ast.Name:
            if node.id == name and node.ctx.__class__ is not ast.Load:
                found.append(node)
        elif kind in (ast.Import, ast.ImportFrom):
            if any((al.asname or al.name.split(".")[0]) == name for al in node.names):
                found.append(node)
        elif kind in (ast.Global, ast.Nonlocal) or kind is ast.ExceptHandler and node.name == name:
            if kind is ast.ExceptHandler or name in node.names:
                found.append(node)
        todo += ast.iter_child_nodes(node)
    return found


def _after_early_return(match: Match, tree: ast.Module, lines: list[str], name: str) -> bool:
    """Is the match after an ``if`` that returns a call of ``name`` -- written there, or in a
    method of the same class or a function of the module that the ``if`` calls -- so that the
    match runs only when that path is not taken (``if self.flash: return self.flash_attn(q, k,
    v)`` then the manual attention: the kernel is already adopted, the match is its fallback)?"""
    seen = set()
    for node in match.nodes:
        if node.stmt is None or node.func in seen:
            continue
        seen.add(node.func)
        chain = _path_to(tree, node.stmt)
        cls = next((n for n in reversed(chain) if isinstance(n, ast.ClassDef)), None)
        if any(_returns_call_before(parent, child, name, lines, tree, cls)
               for parent, child in zip(chain, chain[1:])):
            return True
    return False


def _calls(stmt: ast.stmt, name: str, lines: list[str], tree: ast.Module, cls: ast.ClassDef | None) -> bool:
    """Does ``stmt`` call ``name``, itself or through a same-class method or module function
    (one level: ``self.flash_attn(...)`` whose body calls it)?"""
    if isinstance(stmt, (ast.If, ast.For, ast.While, ast.With, ast.Try)):
        return False
    return _writes_call(stmt, name, lines, tree) or any(_writes_call(d, name, lines, tree)
                                                       for d in _helpers_called(stmt, tree, cls))


def _writes_call(node: ast.AST, name: str, lines: list[str], tree: ast.Module | None) -> bool:
    """Do the lines of ``node`` call ``name``?  A text search first (most statements name no
    kernel); a dotted name is a path under torch (``nn.RMSNorm``: ``torch.nn.RMSNorm``), and a
    hit is then confirmed by resolving a call of the node through the file's imports: a file whose
    ``nn`` is a project's own layers module (``from mypkg import layers as nn``) does not call
    torch's module when it writes ``nn.RMSNorm(...)``."""
    if re.search(rf"\b{re.escape(name)}\s*\(", "\n".join(lines[node.lineno - 1:node.end_lineno])) is None:
        return False
    if "." not in name:
        return True
    if tree is None:
        return False
    names, wanted = _file_names(tree), "torch." + name
    return any(isinstance(call, ast.Call) and names.resolve(call.func) == wanted
                                     for call in ast_walk(node))


_NAMES_OF: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # tree -> its ModuleNames


def _file_names(tree: ast.Module):
    """The module-level names of ``tree``, read once per tree on first use (only files that
    write a dotted kernel's call in a fallback's other branch get here)."""
    names = _NAMES_OF.get(tree)
    if names is None:
        names = _NAMES_OF[tree] = collect_names(tree)
    return names


def _path_to(tree: ast.Module, span: tuple) -> list:
    """The nodes from the module down to the statement with this span, found by descending
    through the nodes that contain it (a walk of the whole tree per file cost as much as
    parsing it); it ends at the deepest container when no node has exactly this span."""
    start, end = span[:2], span[2:]
    chain: list = [tree]
    node: ast.AST = tree
    while True:
        for child in children(node):
            first = (getattr(child, "lineno", None), getattr(child, "col_offset", None))
            if first[0] is None or first > start:
                continue
            last = (child.end_lineno, child.end_col_offset)
            if last < end:
                continue
            chain.append(child)
            if first == start and last == end:
                return chain
            node = child
            break
        else:
            return chain


def _statement_at(tree: ast.Module, span: tuple) -> ast.AST | None:
    """The node with exactly this span (the end of :func:`_path_to`'s chain), or None."""
    node = _path_to(tree, span)[-1]
    if node is tree or (node.lineno, node.col_offset, node.end_lineno, node.end_col_offset) != tuple(span):
        return None
    return node


def _char_col(lines: list[str], line: int, byte_col: int) -> int:
    if 1 <= line <= len(lines):
        return len(lines[line - 1].encode("utf-8")[:byte_col].decode("utf-8", "replace")) + 1
    return byte_col + 1


def _first_line(nodes, finding: Finding) -> int:
    """The line where a match starts, for telling places apart: its first step's line, or,
    when that step was inlined from a helper the root calls, the finding's own first line
    (the statement in the root).  A helper that returns its dropout on two paths
    (``return self.dropout1(x)`` and ``return self.dropout1(x), weights``, called by the two
    branches of ``if need_weights``) gives two matches that end at one add and LayerNorm of
    the root: one place, not one per return line of the helper."""
    first = nodes[0]
    if first.inlined:
        return finding.line
    return first.span[0]


def _finding(rule: Rule, match: Match, path: str, lines: list[str]) -> Finding:
    line, col, end_line, end_col = match.span
    if match.nodes[0].kind == "layer" and match.members_only():
        span = _calls_of_containers(match)
        if span is not None:
            line, col, end_line, end_col = span
    line, col = statement_start(match, line, col)
    return Finding(
        rule=rule.id, name=rule.name, path=path, line=line, column=_char_col(lines, line, col),
        end_line=end_line, end_column=_char_col(lines, end_line, end_col), message=rule.message,
        fixable=fixable(rule, match), class_name=match.class_name,
    )


def _calls_of_containers(match: Match) -> tuple[int, int, int, int] | None:
    """Where a match whose every step is a member of an ``nn.Sequential`` runs, when its members
    belong to more than one container: the statements that call the containers.  Members of one
    container are one place inside it (the constructors: the corpus anchors a pair inside one
    ``nn.Sequential`` at its second layer's line), but members of several containers meet only
    where those are called: three ``nn.Sequential(nn.Linear(...), nn.ReLU())`` projections of
    one input run at the three calls in the forward, the place a reader names, not at the three
    constructors in ``__init__`` (None: one container, or a statement not known).  Only members
    that all run on one input (projections side by side): a chain through the containers
    (``self.fc`` ending in a Linear, then ``self.act`` starting with its GELU, review63) reads in
    the constructors' order, and keeps the anchor at the activation's constructor."""
    first = match.nodes[0].layer
    owner = first[:first.rindex("[")]
    if all(n.layer[:n.layer.rindex("[")] == owner for n in match.nodes):
        return None
    inputs = {n.args[0].key if n.args else None for n in match.nodes}
    if len(inputs) != 1 or None in inputs:
        return None
    stmts = [n.stmt for n in match.nodes]
    if None in stmts:
        return None
    start = min(stmts, key=lambda s: (s[0], s[1]))
    end = max(stmts, key=lambda s: (s[2], s[3]))
    return (start[0], start[1], end[2], end[3])


def _to_call_site(structure, match: Match, finding: Finding, lines: list[str]) -> Finding:
    """``finding`` reaching the statement that calls the helper its last step was inlined from,
    when that statement comes after every step matched in the root function itself:
    ``y = self.linear_y(x)`` then ``y = gelu(y)`` with a same-file ``gelu`` -- the activation
    is applied where the helper is called (the line a reader names), not only in its body."""
    root = [n.span for n in match.nodes if not n.inlined and n.span is not None]
    cls = structure.classes.get(match.class_name)
    if not root or cls is None:
        return finding
    try:
        nodes = cls.flow(_root_of(match.flow, match.class_name)).nodes
    except KeyError:
        return finding
    last = match.nodes[-1]
    if last.id >= len(nodes) or nodes[last.id] is not last:
        return finding
    # the helper's call: the nearest step before the inlined one that the root itself runs
    site = next((n.stmt for n in reversed(nodes[:last.id]) if not n.inlined), None)
    if site is None or site[0] <= max(s[2] for s in root) or site[2] <= finding.end_line:
        return finding
    return replace(finding, end_line=site[2], end_column=_char_col(lines, site[2], site[3]))


def _from_call_site(structure, match: Match, finding: Finding, lines: list[str]) -> Finding:
    """``finding`` starting at the call of the helper its first step was inlined from: the
    root's flow marks each call of a helper with a step of its own (the call's span) just before
    the helper's inlined steps.  A match split per call of the helper is one place per call, so
    each starts at its call: two calls on one line are two places at two columns, not two
    findings at the helper's line."""
    cls = structure.classes.get(match.class_name)
    if cls is None:
        return finding
    try:
        nodes = cls.flow(_root_of(match.flow, match.class_name)).nodes
    except KeyError:
        return finding
    first = match.nodes[0]
    if first.id >= len(nodes) or nodes[first.id] is not first:
        return finding
    call = next((n for n in reversed(nodes[:first.id]) if not n.inlined), None)
    if call is None or call.kind != "call" or call.defs or call.span is None:
        return finding
    line, col = call.span[0], call.span[1]
    if line > finding.end_line:
        return finding
    return replace(finding, line=line, column=_char_col(lines, line, col))


def _inlined_copy(structure, match: Match) -> tuple[int, int]:
    """Which call of its helper the match's first step was inlined at, and at how many calls
    the root runs it: the number of earlier copies of that step (the same span, inlined) in
    the root's flow, and of all its copies there.  The first call's is 0, as a step inlined
    once is in every root, so only a second call of the helper in one root makes a place of
    its own (and only then is the call, not the helper's line, where each place starts)."""
    first = match.nodes[0]
    cls = structure.classes.get(match.class_name)
    if cls is None:
        return 0, 1
    try:
        nodes = cls.flow(_root_of(match.flow, match.class_name)).nodes
    except KeyError:
        return 0, 1
    if first.id >= len(nodes) or nodes[first.id] is not first:
        return 0, 1
    span = first.span
    copies = [n.id for n in nodes if n.inlined and n.span == span]
    return sum(1 for i in copies if i < first.id), len(copies)


def statement_start(match: Match, line: int, col: int) -> tuple[int, int]:
    """Where the finding starts: the first line of the statement holding the step it starts
    at, when that statement opens on an earlier line (``q = (`` above ``self.q_proj(x)...``), so
    that the finding covers the statement as a reader names it (the corpus labels a multi-line
    statement by its first line); the step's own position otherwise."""
    for node in match.nodes:
        stmt = node.stmt
        if node.span is not None and node.span[0] == line and node.span[1] == col:
            if stmt is not None and stmt[0] < line <= stmt[2]:
                return stmt[0], stmt[1]
            break
    return line, col


def fixable(rule: Rule, match: Match) -> bool:
    """Whether ``adopter fix`` can rewrite this match, so that ``check``'s fixable count is what
    ``fix`` does: not for layers that run inside an ``nn.Sequential``, nor (for target-pattern
    rewrites) for a match spread over a method and a helper inlined into it.  (A rule whose
    synthesizer fuses the container's call names those steps in ``container_steps``; one with
    a ``container_target`` fixes a match whose every step is a container member.)"""
    if not rule.fixable:
        return False
    if rule.container_target is not None and match.in_container:
        # a member built by code the fixer will not rebase (an nn.Sequential subclass with its
        # own code, a helper's container) is declined by the plan: not fixable here either
        return match.members_only() and not any(ctor.unlike for _, ctor in match.ctors)
    if match.unfusable_container(rule.container_steps):
        return False
    if rule.synth is None and rule.forward_target and len({n.func for n in match.nodes}) > 1:
        return False
    if rule.fix_one_block and len({n.scope for n in match.nodes}) > 1:
        return False
    return True


def _suppressed(lines: list[str], finding: Finding) -> bool:
    """A suppression comment on any line of the finding's span silences it."""
    first, last = max(finding.line, 1), min(finding.end_line, len(lines))
    for number in range(first, last + 1):
        line = lines[number - 1]
        if "#" not in line:
            continue
        for pattern in (SUPPRESS, NOQA):
            found = pattern.search(line)
            if not found:
                continue
            codes = found.group("codes")
            if codes is None:
                if pattern is NOQA and found.group("colon"):
                    continue  # '# noqa:' followed by no code: not a suppression
                return True
            wanted = {c.upper() for c in re.split(r"[,\s]+", codes) if c}
            if finding.rule in wanted or finding.name.upper() in wanted:
                return True
    return False
