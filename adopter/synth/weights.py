"""Attention that hands its probabilities (or raw scores) back on every call: a flag its
callers can use to decline them, as ``nn.MultiheadAttention(need_weights=...)`` does.

``return self.proj(x), attn`` (DINO, tab-transformer, ESM), Whisper's ``return ..., qk.detach()``
or a ``forward`` returning what a helper handed it: the fused call does not compute the
probabilities, so without a flag every call needs the original path.  In practice the callers
rarely use them (``x, _ = self.attn(x)``, ``self.attn(x)[0]``, DINO's ``if return_attention:
return attn``).  The rewrite:

* the function holding the attention gets a parameter (``need_weights: bool = True``, a name
  the module does not use; positional-or-keyword, last: TorchScript takes no keyword-only
  parameter with a default); the guard sends ``need_weights`` to the original path, so every
  caller that does not pass it sees exactly what it saw before;
* on the fused path the handed-back value is ``None`` (an element ``E`` other than the bare
  name becomes ``None if attn is None else E``); where the guard sends a call to the original
  path for another reason (a hook, say) the probabilities are computed and handed back;
* callers in the file pass ``False`` where they discard them (``x, _ = ...``, a name never
  read, ``...[0]``, a bare call statement), their own condition where they read them only
  under an ``if`` whose test reads parameters the caller never reassigns (DINO: ``need_weights
  =return_attention``), and their own new flag where they only hand them back in turn (a
  ``forward`` returning what its helper returned, a block returning what its attention did),
  up to :data:`MAX_DEPTH` levels; any other call is left as it is (the default keeps the
  original path).  A return annotation ``tuple[A, B]`` gets ``Optional[B]`` at that place.

Not rewritten, with the reason: probabilities stored in an attribute (``self.scores = scores``,
read by whoever holds the module: a visualization hook; no caller in the file can say they
are not wanted, and a stale or missing attribute there would be worse than the original), and
probabilities no caller in the file declines (the flag would never take the fused path: the
patch would buy nothing).

The unsafe fix (``--unsafe-fixes``, :attr:`.run.Run.unsafe_fixes`): a store no file of the run,
nor of the folder around its package, reads (:func:`unread_store`,
:meth:`Decline._unread_store`) declines them after all -- a caller's ``x, self.attn =
self.attention(...)`` passes ``False``, the attention's own ``self.scores = scores`` keeps its
statement and the fused path binds ``scores = None``.  Outside code reading the attribute then
gets None after a fused call: why it is unsafe, and why the safe decline only says it exists.
"""

from __future__ import annotations

import ast

from ..structure.treewalk import ast_walk
from .plan import Edits, KernelNames, Skip
from .run import current_run
from .text import SourceIndex, Span, span_of

FLAG_NAMES = ("need_weights", "need_attn_weights", "need_attention_weights")
NO_CALLER = "no caller in this file declines it"  # the skip a run of several files can take up (.run)
# in the decline of values stored for outside code: with --unsafe-fixes, ``fix`` asks again with the
# run (the files of the run say whether anything reads the attribute: unread_store)
STORED_FOR_OUTSIDE = "on every call, for code outside the call to read (a visualization hook)"
# the start of the decline note for a store only ``--unsafe-fixes`` may drop (fixable.UNSAFE's words)
UNSAFE_STORE = "unsafe fix: apply with --unsafe-fixes"
MAX_DEPTH = 4  # levels of callers that only hand the probabilities back in turn
TUPLE_TYPES = {"tuple", "Tuple", "typing.Tuple"}
STABLE_TEST = (ast.Name, ast.Constant, ast.UnaryOp, ast.BoolOp, ast.Compare, ast.Not, ast.And, ast.Or, ast.Load,
               ast.Is, ast.IsNot, ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE)


def parents_of(root: ast.AST) -> dict:
    return {child: node for node in ast_walk(root) for child in ast.iter_child_nodes(node)}


def returned_slot(node: ast.AST, parents: dict, func: ast.AST) -> tuple[ast.Return, int, ast.expr] | None:
    """Where ``node`` sits in a ``return a, b, ...`` of ``func``: the statement, the element's
    place and the element; None when it is not inside one element of a returned tuple."""
    child, parent = node, parents.get(node)
    while parent is not None and parent is not func and not isinstance(parent, ast.Return):
        if isinstance(parent, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.stmt)):
            return None
        child, parent = parent, parents.get(parent)
    if not isinstance(parent, ast.Return) or not isinstance(child, ast.Tuple) or parent.value is not child:
        return None
    if any(isinstance(e, ast.Starred) for e in child.elts):
        return None
    element = next((e for e in child.elts if any(n is node for n in ast_walk(e))), None)
    if element is None:
        return None
    return parent, child.elts.index(element), element


def condition_of(node: ast.AST, parents: dict, func: ast.AST) -> ast.expr | None:
    """The test of the innermost ``if`` (statement or expression) whose body holds ``node``."""
    child, parent = node, parents.get(node)
    while parent is not None and parent is not func:
        if isinstance(parent, ast.IfExp) and child is parent.body:
            return parent.test
        if isinstance(parent, ast.If) and child in parent.body:
            return parent.test
        child, parent = parent, parents.get(parent)
    return None


def _stored_in_attribute(node: ast.AST, parents: dict) -> ast.Attribute | None:
    """``self.scores = scores``: the attribute a statement stores the read value in."""
    parent = parents.get(node)
    while parent is not None and not isinstance(parent, ast.stmt):
        parent = parents.get(parent)
    if isinstance(parent, (ast.Assign, ast.AnnAssign)):
        targets = parent.targets if isinstance(parent, ast.Assign) else [parent.target]
        for target in targets:
            for inner in ast_walk(target):
                if isinstance(inner, (ast.Attribute, ast.Subscript)) and isinstance(inner.ctx, ast.Store):
                    return inner
    return None


def unread_store(read: ast.Name, parents: dict, func: ast.AST) -> ast.Attribute | None:
    """``self.scores = scores`` after the attention, where only ``--unsafe-fixes`` may drop
    what it stores: the statement stores exactly the read value in one attribute of a plain
    name, under no ``if`` (a flag there already says when it is wanted), ``try`` or ``with``
    of the function, and no file of the current run, nor of the folder around its package,
    reads that attribute (:meth:`.run.Run.reads_attribute`).  The attribute; None otherwise
    (and always without a run)."""
    stmt = parents.get(read)
    if not (isinstance(stmt, ast.Assign) and stmt.value is read and len(stmt.targets) == 1):
        return None
    target = stmt.targets[0]
    if not (isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name)):
        return None
    if not _unguarded(stmt, parents, func):
        return None
    run = current_run()
    return target if run is not None and not run.reads_attribute(target.attr) else None


def _unguarded(stmt: ast.stmt, parents: dict, func: ast.AST) -> bool:
    up = parents.get(stmt)
    while up is not None and up is not func:
        if isinstance(up, (ast.If, ast.Try, ast.With)) or type(up).__name__ in ("Match", "TryStar"):
            return False
        up = parents.get(up)
    return up is func


def _int_of(node: ast.AST) -> int | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, int) and not isinstance(node.value, bool):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        inner = _int_of(node.operand)
        return -inner if inner is not None else None
    return None


def _params(func: ast.FunctionDef) -> set[str]:
    a = func.args
    return {p.arg for p in [*a.posonlyargs, *a.args, *a.kwonlyargs, *filter(None, (a.vararg, a.kwarg))]}


def _escapes(func: ast.AST, name: str) -> bool:
    """Can code other than ``func``'s own reads of ``name`` see what it binds: a ``global`` or
    ``nonlocal`` declaration of it, or a call that reads the frame (``locals()``, ``eval``)?"""
    for node in ast_walk(func):
        if isinstance(node, (ast.Global, ast.Nonlocal)) and name in node.names:
            return True
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and \
                node.func.id in ("locals", "vars", "eval", "exec"):
            return True
    return False


def _stores(func: ast.AST) -> set[str]:
    return {n.id for n in ast_walk(func) if isinstance(n, ast.Name) and isinstance(n.ctx, (ast.Store, ast.Del))}


class Decline:
    """Plans the flag for one attention function (see the module's docstring)."""

    def __init__(self, index: SourceIndex, names: KernelNames, edits: Edits, regions: list[Span]):
        self.index = index
        self.names = names
        self.edits = edits
        self.regions = regions
        self.flag = next((n for n in FLAG_NAMES if n not in index.identifiers), None)
        self._parents: dict[int, dict] = {}
        self._sites: dict[int, list] | None = None
        self.home = True  # the attention's own file (False: a caller file of the run, planned from it)
        self.stored_by: list[str] = []  # callers that store what it hands back in an attribute
        self.unsafe_stores: list[str] = []  # of those, the ones only ``--unsafe-fixes`` may decline

    # ---------------------------------------------------------------- entry point
    def plan(self, func: ast.FunctionDef, reads: list[ast.Name], in_context: list[tuple[ast.Return, int, int, str]]
             ) -> tuple[str, list[str]]:
        """``reads``: the reads after the attention of names only the original path computes,
        none under a condition; ``in_context``: (return, place, arity, name) of the context statement
        itself when it returns them beside the product (Whisper).  Returns the flag and the
        statements the fused path ends with (``attn = None``); raises :class:`Skip` with the
        reason when the callers cannot decline them."""
        parents = self.parents(func)
        slots: set[tuple[int, int]] = {(place, arity) for _, place, arity, _ in in_context}
        first = min([(r.lineno, r.id) for r in reads] + [(ret.lineno, name) for ret, _, _, name in in_context])
        nones: list[str] = []
        rewrites: list[tuple[ast.expr, str]] = []
        for read in reads:
            stored = _stored_in_attribute(read, parents)
            if stored is not None:
                text = self.index.segment(span_of(stored))
                unsafe = (f"; {UNSAFE_STORE}: no file of the run reads `{text}`, and outside code reading it would "
                          "get None after a fused call") if unread_store(read, parents, func) is not None else ""
                raise Skip(f"`{read.id}` (computed by the attention) is stored in `{text}` "
                           f"at line {read.lineno} on every call, for code outside the call to read (a visualization "
                           "hook): only the module's user can say it is not wanted, so the fused path is left to a "
                           f"hand edit{unsafe}")
            found = returned_slot(read, parents, func)
            if found is None:
                through = _handed_through_local(read, parents, func, reads)
                if through is None:
                    raise Skip(f"`{read.id}` (computed by the attention) is read at line {read.lineno} "
                               "unconditionally")
                value, handed = through
                slots.update(handed)
                if read.id not in nones:
                    nones.append(read.id)
                rewrites.append((value, read.id))
                continue
            _, place, element = found
            slots.add((place, len(parents[element].elts)))
            if read.id not in nones:
                nones.append(read.id)
            if not (isinstance(element, ast.Name) and element.id == read.id):
                rewrites.append((element, read.id))
        if len(slots) != 1:
            raise Skip(f"`{first[1]}` (computed by the attention) is handed back in different places of the "
                       "function's returns")
        if self.flag is None:
            raise Skip("the module uses every name the flag for declining the probabilities could take")
        (place, arity), = slots
        # a returned value that holds several of them (rtdl's ``{'attention_logits': logits,
        # 'attention_probs': probs}``, a list ``[attn_prob, attn_score]``): on the fused path every
        # one of them is None, on the original path none is, so one test of the first says which
        # path ran: ``None if logits is None else {...}``
        rewrites = list({id(e): (e, name) for e, name in reversed(rewrites)}.values())[::-1]
        pending = self._callers(func, place, arity, 0, {id(func)})
        run = current_run()
        if not pending and run is not None:
            # callers in the other files of the run (``adopter fix pkg/``): each gets its own edits
            pending, outside = run.elsewhere(self, func, place, arity)
            if not pending and (outside or len(run.texts) > 1):
                who = f"`{func.name}`"
                where = (f"; callers that would decline it are in {', '.join(outside)}, outside this run: fix them "
                         "together (`adopter fix` on their package)") if outside else ""
                raise Skip(f"`{first[1]}` (computed by the attention) is read at line {first[0]} unconditionally: "
                           f"{who} hands it back on every call, and no caller in this file or the other files of "
                           f"the run declines it, so a flag to skip it would never take the fused path{where}"
                           f"{self._stored_note()}")
        if not pending:
            who = f"`{func.name}`"
            raise Skip(f"`{first[1]}` (computed by the attention) is read at line {first[0]} unconditionally: {who} "
                       f"hands it back on every call, and {NO_CALLER}, so a flag to skip it would never take the "
                       f"fused path{self._stored_note()}")
        self._extend(func, place, arity)
        for element, name in rewrites:
            self._rewrite(element, name)
        for edit in pending:
            edit()
        return self.flag, [f"{name} = None" for name in nones]

    def _stored_note(self) -> str:
        if not self.stored_by:
            return ""
        note = (f" (a caller stores them in {', '.join(dict.fromkeys(self.stored_by))} on every call, for code "
                "outside the call to read: only the module's user can say they are not wanted)")
        if self.unsafe_stores and len(set(self.unsafe_stores)) == len(set(self.stored_by)):
            note += (f"; {UNSAFE_STORE}: no file of the run reads "
                     f"{', '.join(dict.fromkeys(s.split(' (')[0] for s in self.unsafe_stores))}, and outside code "
                     "reading it would get None after a fused call")
        return note

    def _unread_store(self, stored: ast.Attribute, stmt: ast.Assign, caller: ast.FunctionDef) -> bool:
        """``x, self.attn = self.attention(...)`` where the stored attribute is the one thing that
        keeps the probabilities: an unconditional store (no ``if`` of the caller around it: a
        flag there already says when they are wanted) on a plain name's attribute, in a run
        none of whose files reads the attribute (:meth:`.run.Run.reads_attribute`: through any
        object, ``getattr`` or the name in any string).  With ``--unsafe-fixes`` such a caller
        declines them, and the attribute is None after a call that took the fused path: code
        outside the run that reads it gets None (why the fix is unsafe)."""
        run = current_run()
        if run is None or not isinstance(stored.value, ast.Name):
            return False
        return _unguarded(stmt, self.parents(caller), caller) and not run.reads_attribute(stored.attr)

    # ---------------------------------------------------------------- edits
    def _extend(self, func: ast.FunctionDef, place: int, arity: int) -> None:
        """The flag as the function's last parameter, and its return annotation widened."""
        key = (func.lineno, self.index.char_col(func.lineno, func.col_offset))
        self.edits.params[key] = f"{self.flag}: bool = True"
        self.regions.append((func.lineno, func.col_offset, func.lineno, func.col_offset + 3))
        note = func.returns
        if isinstance(note, ast.Subscript) and self.index.segment(span_of(note.value)) in TUPLE_TYPES and \
                isinstance(note.slice, ast.Tuple) and len(note.slice.elts) == arity:
            element = note.slice.elts[place]
            text = self.index.segment(span_of(element))
            if not (text.startswith(("Optional[", "typing.Optional[")) or "None" in text):
                local, request = self.names.local("typing.Optional")
                self.edits.imports.add(request)
                self.edits.expr[self.index.char_span(span_of(element))] = f"{local}[{text}]"

    def _rewrite(self, element: ast.expr, name: str) -> None:
        text = self.index.segment(span_of(element))
        wrapped = f"({text})" if isinstance(element, (ast.IfExp, ast.Lambda, ast.NamedExpr, ast.BoolOp)) else text
        self.edits.expr[self.index.char_span(span_of(element))] = f"None if {name} is None else {wrapped}"

    def _keyword(self, call: ast.Call, value: str):
        def edit():
            self.edits.keywords[self.index.char_span(span_of(call))] = f"{self.flag}={value}"
            self.regions.append(span_of(call))
        return edit

    # ---------------------------------------------------------------- callers
    def _callers(self, func: ast.FunctionDef, place: int, arity: int, depth: int, seen: set, sites=None) -> list:
        """The edits that make the calls of ``func`` in the file decline what it hands back at
        ``place`` (of ``arity`` returned values): empty when no call declines it.  ``sites``:
        the calls to consider instead of ``func``'s calls in this file (those of a class or
        function another file of the run defines, :mod:`.run`)."""
        pending: list = []
        declines = False
        extended: set[int] = set()
        for call, caller in (self._call_sites(func) if sites is None else sites):
            # (a starred argument is fine: the flag goes after every parameter the function had,
            # or among its keyword-only ones, so a call that ran before cannot fill it by place;
            # ``**kwargs`` could hold it)
            if any(k.arg is None or k.arg == self.flag for k in call.keywords):
                continue
            use = self._use(call, caller, place, arity)
            if use is None:
                continue
            if use[0] == "value":
                pending.append(self._keyword(call, use[1]))
                declines = True
                continue
            _, (new_place, new_arity, rewrites, *guards) = use
            if depth + 1 >= MAX_DEPTH or id(caller) in seen:
                continue
            inner = self._callers(caller, new_place, new_arity, depth + 1, seen | {id(caller)})
            if not inner and sites is None:
                inner = self._relay_elsewhere(caller, new_place, new_arity)
            if not inner:
                continue
            if any(n.arg == self.flag for n in ast_walk(caller) if isinstance(n, ast.arg)):
                continue
            pending.append(self._keyword(call, self.flag))
            if id(caller) not in extended:
                extended.add(id(caller))
                pending.append(lambda caller=caller, p=new_place, n=new_arity: self._extend(caller, p, n))
                pending.extend((lambda e=e, name=name: self._rewrite(e, name)) for e, name in rewrites)
                pending.extend((lambda g=g: self._guard(g.test)) for g in (guards[0] if guards else []))
            pending.extend(inner)
            declines = True
        return pending if declines else []

    def _relay_elsewhere(self, relay: ast.FunctionDef, place: int, arity: int) -> list:
        """A caller in this file that only hands the probabilities back in turn, and that no
        call in this file declines (a ``MultiHeadAttention.forward`` returning what its
        attention function returned, the blocks calling it in other files): the edits that make
        its calls in the other files of the run decline them (:meth:`.run.Run.elsewhere`, one
        hop, as for the attention's own function).  Empty without a run."""
        run = current_run()
        if run is None or not self.home:
            return []
        pending, _ = run.elsewhere(self, relay, place, arity)
        return pending

    def _use(self, call: ast.Call, caller: ast.FunctionDef, place: int, arity: int):
        """What ``caller`` does with the value ``call`` hands back at ``place``: ``("value",
        text)``, the flag to pass (``False``, or the caller's own condition); ``("pass",
        (place, arity, rewrites))`` where the caller returns it in turn; None: it uses it, or
        what it does cannot be told."""
        parents = self.parents(caller)
        parent = parents.get(call)
        if isinstance(parent, ast.Expr):
            return "value", "False"
        if isinstance(parent, ast.Subscript) and parent.value is call:
            if isinstance(parent.slice, ast.Slice):
                # ``attn(x)[:2]``: the places the slice keeps (Python's own slicing of the places)
                ends = [None if e is None else _int_of(e) for e in (parent.slice.lower, parent.slice.upper)]
                if parent.slice.step is not None or any(e is None and b is not None for e, b in
                                                        zip(ends, (parent.slice.lower, parent.slice.upper))):
                    return None
                return ("value", "False") if place not in range(arity)[ends[0]:ends[1]] else None
            index = _int_of(parent.slice)
            if index is None:
                return None
            return ("value", "False") if (index + arity if index < 0 else index) != place else None
        if isinstance(parent, ast.Return) and parent.value is call:
            return "pass", (place, arity, [])
        if not (isinstance(parent, ast.Assign) and parent.value is call and len(parent.targets) == 1):
            return None
        target = parent.targets[0]
        if isinstance(target, (ast.Tuple, ast.List)) and len(target.elts) == arity and \
                isinstance(target.elts[place], ast.Attribute):
            # ``x, self.attn = self.sdpa(...)`` (the annotated transformer): kept on the module for
            # code outside the call to read, as a stored attention map is (no flag can say more)
            stored = target.elts[place]
            text = f"`{self.index.segment(span_of(stored))}` (line {parent.lineno})"
            if self._unread_store(stored, parent, caller):
                if current_run().unsafe_fixes:
                    return "value", "False"  # unsafe: the attribute is None after a fused call
                self.unsafe_stores.append(text)
            self.stored_by.append(text)
            return None
        if not isinstance(target, (ast.Tuple, ast.List)) or len(target.elts) != arity or \
                not all(isinstance(e, ast.Name) for e in target.elts):
            return None
        name = target.elts[place].id
        reads = [n for n in ast_walk(caller) if isinstance(n, ast.Name) and n.id == name and isinstance(n.ctx, ast.Load)]
        if not reads and not _escapes(caller, name):
            # a name the caller never reads (``_`` bound again by ``_, n, _ = k.size()``
            # elsewhere, or ``_, _ = ...``): whatever it holds, nothing reads it
            return "value", "False"
        if [e.id for e in target.elts].count(name) > 1:
            return None
        stores = [n for n in ast_walk(caller) if isinstance(n, ast.Name) and n.id == name
                  and isinstance(n.ctx, (ast.Store, ast.Del))]
        if len(stores) != 1 or name in _params(caller):
            if not reads and name not in _params(caller) and not _escapes(caller, name):
                return "value", "False"  # ``out, _, _ = attn(x)``: bound more than once, never read
            # another value under the same name: its reads cannot be told apart -- unless every
            # read and every other binding of it lies under one ``if`` of a stable test
            return self._fallback(parent, caller, target.elts[place], reads, stores)
        if not reads:
            return "value", "False"
        tests: list[ast.expr] = []
        handed: set[tuple[int, int]] = set()
        rewrites: list[tuple[ast.expr, str]] = []
        for read in reads:
            kept = _kept_in_list(read, parents, caller)
            if kept is not None:
                if kept is False:
                    return None
                tests.extend(kept)
                continue
            test = condition_of(read, parents, caller)
            if test is not None:
                tests.append(test)
                continue
            found = returned_slot(read, parents, caller)
            if found is None:
                return self._fallback(parent, caller, target.elts[place], reads, stores)
            _, new_place, element = found
            handed.add((new_place, len(parents[element].elts)))
            if not (isinstance(element, ast.Name) and element.id == name):
                if any(r is not read and any(r is n for n in ast_walk(element)) for r in reads):
                    return None
                rewrites.append((element, name))
        if tests and handed:
            return None
        if not tests and not handed:
            return "value", "False"  # only appended to a list nothing reads
        if tests:
            stable = _params(caller) - _stores(caller)
            texts: list[str] = []
            for test in tests:
                if not _stable_test(test, stable):
                    return self._fallback(parent, caller, target.elts[place], reads, stores)
                text = self.index.segment(span_of(test))
                if len(tests) > 1 and isinstance(test, (ast.BoolOp, ast.IfExp)):
                    text = f"({text})"
                if text not in texts:
                    texts.append(text)
            return "value", " or ".join(texts)
        if len(handed) != 1:
            return None
        (new_place, new_arity), = handed
        return "pass", (new_place, new_arity, rewrites)

    def _fallback(self, stmt: ast.Assign, caller: ast.FunctionDef, bound: ast.Name, reads: list, stores: list):
        return self._used_under_one_if(stmt, caller, bound, reads, stores) or \
            self._collected(stmt, caller, bound) or \
            self._cleared_under_one_if(stmt, caller, bound, reads, stores)

    def _cleared_under_one_if(self, stmt: ast.Assign, caller: ast.FunctionDef, bound: ast.Name, reads: list,
                              stores: list):
        """``("value", negated test)`` where the caller drops the probabilities under an ``if``
        of a stable test before anything reads them (the Hugging Face form ``attn_output,
        attn_weights = attention(...)``, then ``if not output_attentions: attn_weights = None``,
        then ``return attn_output, attn_weights``): the ``if`` follows ``stmt`` in the same
        block, outside any loop, without ``else``, and its body binds the name once, to ``None``,
        and reads it nowhere; the name has no other binding and every read of it comes after the
        ``if``.  When the test holds the caller never sees them, so the flag is the test negated
        (``not output_attentions`` gives ``output_attentions``).  None otherwise."""
        if not reads or len(stores) != 2 or bound.id in _params(caller) or _escapes(caller, bound.id):
            return None
        parents = self.parents(caller)
        block = next((body for body in _blocks(parents.get(stmt)) if stmt in body), None)
        if block is None:
            return None
        up = parents.get(stmt)
        while up is not None and up is not caller:
            if isinstance(up, (ast.For, ast.AsyncFor, ast.While, ast.FunctionDef, ast.AsyncFunctionDef,
                               ast.Lambda, ast.ClassDef)):
                return None  # a later turn of a loop could read a binding of an earlier one
            up = parents.get(up)
        other = next(n for n in stores if n is not bound)
        at = block.index(stmt)
        found = next((node for node in block[at + 1:] if isinstance(node, ast.If) and not node.orelse and any(
            isinstance(s_, ast.Assign) and len(s_.targets) == 1 and s_.targets[0] is other for s_ in node.body)), None)
        if found is None or not isinstance(other.ctx, ast.Store):
            return None
        clear = next(s_ for s_ in found.body if isinstance(s_, ast.Assign) and s_.targets[0] is other)
        if not (isinstance(clear.value, ast.Constant) and clear.value.value is None):
            return None
        if not _stable_test(found.test, _params(caller) - _stores(caller)):
            return None
        end = (found.end_lineno, found.end_col_offset)
        between = {id(n) for node in block[at + 1:block.index(found)] for n in ast_walk(node)}
        if any(id(r) in between or (r.lineno, r.col_offset) < end for r in reads):
            return None  # read before the ``if`` or inside it
        test = found.test
        if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
            return "value", self.index.segment(span_of(test.operand))
        return "value", f"not ({self.index.segment(span_of(test))})"

    def _collected(self, stmt: ast.Assign, caller: ast.FunctionDef, bound: ast.Name):
        """``("pass", (place, arity, [], guards))`` where ``caller`` hands the probabilities back
        in turn, bare, at one place of its returns, and otherwise only works on them inside
        ``if``s of its own (a Swin stage: ``if not self.training: attns.append(attn.unsqueeze(0))``
        in its loop over the blocks, then ``if not self.training: attn = torch.cat(attns).mean(0)``,
        ``return x, attn``): each such ``if`` (no ``else``, a test that does not read them)
        holds only statements that bind or fill names holding nothing but values derived from
        them (a local list made ``[]``), from those names and names the function does not bind.
        The guards get ``and <flag>``: with the flag false their bodies are skipped, which
        changes nothing but the handed-back value the callers decline.  None otherwise."""
        parents = self.parents(caller)
        params = _params(caller)
        local = params | _stores(caller)
        tainted = {bound.id}
        lists: set[str] = set()
        for node in ast_walk(caller):  # local lists made ``[]`` once, never a parameter
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name) \
                    and isinstance(node.value, ast.List) and not node.value.elts:
                lists.add(node.targets[0].id)
        lists = {n for n in lists if n not in params and not _escapes(caller, n) and
                 sum(isinstance(x, ast.Name) and x.id == n and not isinstance(x.ctx, ast.Load)
                     for x in ast_walk(caller)) == 1}
        if bound.id in params or _escapes(caller, bound.id):
            return None
        modules = {(a.asname or a.name.split(".")[0]) for stmt_ in self.index.tree.body
                   if isinstance(stmt_, ast.Import) for a in stmt_.names} - local

        def derived(stmt_: ast.stmt) -> set[str] | None:
            """The names ``stmt_`` binds or fills from tainted values (None: it does something else)."""
            if isinstance(stmt_, ast.Assign) and len(stmt_.targets) == 1 and isinstance(stmt_.targets[0], ast.Name):
                value, out = stmt_.value, stmt_.targets[0].id
            elif isinstance(stmt_, ast.Expr) and isinstance(stmt_.value, ast.Call) and \
                    isinstance(stmt_.value.func, ast.Attribute) and stmt_.value.func.attr == "append" and \
                    isinstance(stmt_.value.func.value, ast.Name) and stmt_.value.func.value.id in lists and \
                    len(stmt_.value.args) == 1 and not stmt_.value.keywords:
                value, out = stmt_.value.args[0], stmt_.value.func.value.id
            else:
                return None
            names = {n.id for n in ast_walk(value) if isinstance(n, ast.Name)}
            if not names & tainted or not names <= tainted | (names - local):
                return None
            if any(isinstance(n, (ast.Lambda, ast.NamedExpr, ast.Yield, ast.YieldFrom, ast.Await,
                                  ast.comprehension)) for n in ast_walk(value)):
                return None
            for call in (n for n in ast_walk(value) if isinstance(n, ast.Call)):
                # a method of a derived value or a function of an imported module (``torch.cat``):
                # a call of anything else could do more than derive a value, and would be skipped
                root = call.func
                while isinstance(root, ast.Attribute):
                    root = root.value
                if call.func is root or not isinstance(root, ast.Name) or \
                        (root.id not in tainted and root.id not in modules):
                    return None
            return {out}

        guards: dict[int, ast.If] = {}
        changed = True
        while changed:  # grow the tainted names to a fixed point
            changed = False
            for node in ast_walk(caller):
                if not isinstance(node, ast.If) or node.orelse:
                    continue
                outs = [derived(b) for b in node.body]
                if all(o is not None for o in outs):
                    new = set().union(*outs) - tainted
                    if new:
                        tainted |= new
                        changed = True
                    guards[id(node)] = node
        guards = {k: g for k, g in guards.items()
                  if all(derived(b) is not None for b in g.body)
                  and not {n.id for n in ast_walk(g.test) if isinstance(n, ast.Name)} & tainted}
        inside = {id(n) for g in guards.values() for b in g.body for n in ast_walk(b)}
        handed: set[tuple[int, int]] = set()
        used: dict[int, ast.If] = {}
        for node in ast_walk(caller):
            if not (isinstance(node, ast.Name) and node.id in tainted):
                continue
            if isinstance(node.ctx, ast.Store) and node is bound:
                continue
            if id(node) in inside:
                g = next(g for g in guards.values() if any(n is node for b in g.body for n in ast_walk(b)))
                used[id(g)] = g
                continue
            if isinstance(node.ctx, ast.Store) and node.id in lists and isinstance(parents.get(node), ast.Assign):
                continue  # ``attns = []``
            if node.id != bound.id or not isinstance(node.ctx, ast.Load):
                return None
            found = returned_slot(node, parents, caller)
            if found is None or not (isinstance(found[2], ast.Name) and found[2] is node):
                return None
            handed.add((found[1], len(parents[node].elts)))
        if len(handed) != 1 or not used:
            return None
        (place, arity), = handed
        return "pass", (place, arity, [], sorted(used.values(), key=lambda g: (g.lineno, g.col_offset)))

    def _guard(self, test: ast.expr) -> None:
        text = self.index.segment(span_of(test))
        wrapped = f"({text})" if isinstance(test, (ast.IfExp, ast.Lambda, ast.NamedExpr, ast.BoolOp)) and not (
            isinstance(test, ast.BoolOp) and isinstance(test.op, ast.And)) else text
        self.edits.expr[self.index.char_span(span_of(test))] = f"{wrapped} and {self.flag}"

    def _used_under_one_if(self, stmt: ast.Assign, caller: ast.FunctionDef, bound: ast.Name, reads: list,
                           stores: list):
        """``("value", test)`` where every read of the name ``stmt`` binds at ``bound`` (its
        probabilities), and every other binding of that name, lies in the body of one ``if``
        after ``stmt`` whose test reads only parameters ``caller`` never rebinds (torchtext's
        ``if need_weights:`` averaging and squeezing them, then returning them): when the test
        is false nothing reads them, so the test is the flag's value; the outermost such ``if``.
        None otherwise."""
        parents = self.parents(caller)
        if not reads or any(isinstance(n.ctx, ast.Del) for n in stores) or bound.id in _params(caller) or \
                _escapes(caller, bound.id):
            return None
        others = [n for n in stores if n is not bound]
        stable = _params(caller) - _stores(caller)
        found = None
        node = reads[0]
        while node is not caller and node is not None:
            child, node = node, parents.get(node)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
                break
            if not (isinstance(node, ast.If) and child in node.body):
                continue
            if not _stable_test(node.test, stable):
                continue
            inside = {id(n) for stmt_ in node.body for n in ast_walk(stmt_)}
            if all(id(n) in inside for n in [*reads, *others]) and id(stmt) not in inside and \
                    (stmt.lineno, stmt.col_offset) < (node.lineno, node.col_offset):
                found = node  # (walking outwards: the last one found is the outermost)
        if found is None:
            return None
        loops = (ast.For, ast.AsyncFor, ast.While)
        up = parents.get(found)
        while up is not None and up is not caller:
            if isinstance(up, loops):
                return None  # a later turn of a loop could read a binding of an earlier one
            up = parents.get(up)
        return "value", self.index.segment(span_of(found.test))

    # ---------------------------------------------------------------- lookups
    def parents(self, func: ast.AST) -> dict:
        found = self._parents.get(id(func))
        if found is None:
            found = self._parents[id(func)] = parents_of(func)
        return found

    def _call_sites(self, func: ast.FunctionDef) -> list[tuple[ast.Call, ast.FunctionDef]]:
        """The calls of ``func`` in the file, each with the function (a module-level function
        or a method of a module-level class) it is made in: a ``forward`` through the
        attributes a class binds only to instances of its class (``self.attn =
        Attention(...)``, also ``... if cond else None``) and through ``Attention(...)(x)``;
        another method through ``self.<name>(...)`` in its class; a module-level function by
        its name."""
        tree = self.index.tree
        owner = next((c for c in tree.body if isinstance(c, ast.ClassDef) and func in c.body), None)
        if owner is None and func not in tree.body:
            return []
        return self.sites_of(func.name if owner is None else owner.name, func.name, owner)

    def sites_of(self, name: str, method: str, owner: ast.ClassDef | None) -> list[tuple[ast.Call, ast.FunctionDef]]:
        """The calls in this file of the function ``name`` (``owner`` None), or of the method
        ``method`` of the class ``name`` (``owner``: its definition, or a stand-in for a class
        another file defines, bound here to ``name`` by an import)."""
        tree = self.index.tree
        functions: list[tuple[ast.FunctionDef, ast.ClassDef | None]] = []
        for stmt in tree.body:
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
                functions.append((stmt, None))
            elif isinstance(stmt, ast.ClassDef):
                functions += [(m, stmt) for m in stmt.body if isinstance(m, (ast.FunctionDef, ast.AsyncFunctionDef))]
        classes = [c for c in tree.body if isinstance(c, ast.ClassDef)]
        bound: dict[int, set[str]] = {}
        lists: dict[int, set[str]] = {}
        rows: dict[int, dict[str, tuple[int, int]]] = {}
        dicts: dict[int, dict[str, str]] = {}
        if owner is not None and method == "forward":
            for cls in classes:
                found = _appended_rows(cls, name)
                if found and not any(_touches(sub, set(found)) for sub in _descendants(cls, classes)):
                    rows[id(cls)] = found
                found = _dict_rows(cls, name)
                if found and not any(_touches(sub, set(found)) for sub in _descendants(cls, classes)):
                    dicts[id(cls)] = found
                # (a subclass in the file that binds the attribute to something else would
                # receive the new argument too: the attribute must hold the class in all of them)
                attrs, _ = self._attributes_of(cls, name)
                held, _ = self._attributes_of(cls, name, listed=True)
                grown = _appended_members(cls, name)
                if grown and not any(_touches(sub, grown) for sub in _descendants(cls, classes)):
                    held = held | grown
                for sub in _descendants(cls, classes):
                    theirs, assigned = self._attributes_of(sub, name)
                    attrs = {a for a in attrs if a in theirs or a not in assigned}
                    theirs, assigned = self._attributes_of(sub, name, listed=True)
                    held = {a for a in held if a in theirs or a not in assigned}
                bound[id(cls)] = attrs
                lists[id(cls)] = held
        elif owner is not None and any(method in {m.name for m in c.body if isinstance(m, ast.FunctionDef)}
                                       for c in _descendants(owner, classes)):
            return []  # a subclass's own version of the helper would receive the new argument
        casts = _casts(tree) if dicts else set()
        out = []
        for caller, cls in functions:
            members = _loop_members(caller, lists.get(id(cls), ())) if cls is not None else set()
            if cls is not None and id(cls) in rows:
                members |= _row_members(caller, rows[id(cls)])
            entries = _dict_members(caller, dicts[id(cls)], casts) if cls is not None and id(cls) in dicts else {}
            for node in _calls(caller):
                callee = node.func
                if isinstance(callee, ast.Name) and callee.id in members:
                    out.append((node, caller))  # `for layer in self.layers: x, attn = layer(x)`
                    continue
                if entries and isinstance(callee, ast.Subscript) and isinstance(callee.value, ast.Name) and \
                        isinstance(callee.slice, ast.Constant) and entries.get(callee.value.id) == callee.slice.value:
                    out.append((node, caller))  # `for layer in self.blocks: x, _ = layer['attention'](x)`
                    continue
                if owner is None:
                    hit = isinstance(callee, ast.Name) and callee.id == name
                elif method == "forward":
                    hit = (isinstance(callee, ast.Attribute) and isinstance(callee.value, ast.Name)
                           and callee.value.id == "self" and cls is not None and callee.attr in bound.get(id(cls), ())) \
                        or (isinstance(callee, ast.Call) and isinstance(callee.func, ast.Name)
                            and callee.func.id == name)
                else:
                    hit = cls is owner and isinstance(callee, ast.Attribute) and isinstance(callee.value, ast.Name) \
                        and callee.value.id == "self" and callee.attr == method
                if hit:
                    out.append((node, caller))
        return out

    @staticmethod
    def _attributes_of(owner: ast.ClassDef, class_name: str, listed: bool = False) -> tuple[set[str], set[str]]:
        """The attributes ``owner`` assigns only instances of ``class_name`` (or None), and
        every attribute it assigns; with ``listed``, the attributes it assigns only
        ``nn.ModuleList``s of such instances (``nn.ModuleList([Layer(...) for _ in
        range(n)])``, or a list display of them)."""

        def one(value: ast.AST) -> bool:
            return isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id == class_name

        def instance(value: ast.AST) -> bool | None:  # True: one; None: None; False: anything else
            if listed:
                return _module_list_of(value, one)
            if one(value):
                return True
            if isinstance(value, ast.Constant) and value.value is None:
                return None
            if isinstance(value, ast.IfExp):
                sides = {instance(value.body), instance(value.orelse)}
                return False if False in sides else (True if True in sides else None)
            return False

        verdict: dict[str, set] = {}
        for node in ast_walk(owner):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
                node, (ast.AnnAssign, ast.AugAssign)) else []
            for target in targets:
                for inner in ast_walk(target):
                    if isinstance(inner, ast.Attribute) and isinstance(inner.ctx, ast.Store) and \
                            isinstance(inner.value, ast.Name) and inner.value.id == "self":
                        plain = target is inner and isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None
                        verdict.setdefault(inner.attr, set()).add(instance(node.value) if plain else False)
        return {attr for attr, kinds in verdict.items() if True in kinds and False not in kinds}, set(verdict)


def _handed_through_local(read: ast.Name, parents: dict, func: ast.AST, reads: list[ast.Name]
                          ) -> tuple[ast.expr, set[tuple[int, int]]] | None:
    """``top = attn.view(b, h, n, m)[:, 0].contiguous()`` then ``return out, top``: the
    probabilities read only in the value of a local that is bound once and handed back bare, at
    one place of the returns.  The value (a chain of attribute reads, subscripts and methods of
    the probabilities themselves, nothing else the original path alone computes) and the
    (place, arity) of each return of the local; None otherwise.  The value becomes ``None if
    attn is None else <value>``: on the fused path the local is None, as the probabilities are."""
    stmt = parents.get(read)
    while stmt is not None and not isinstance(stmt, ast.stmt):
        stmt = parents.get(stmt)
    if not (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name)):
        return None
    value, local = stmt.value, stmt.targets[0].id
    if isinstance(value, (ast.Tuple, ast.Starred)) or local == read.id or local in _params(func) or \
            _escapes(func, local):
        return None
    inside = {id(n) for n in ast_walk(value)}
    if any(id(r) in inside and r.id != read.id for r in reads):
        return None
    for node in ast_walk(value):
        if isinstance(node, (ast.Lambda, ast.NamedExpr, ast.Yield, ast.YieldFrom, ast.Await, ast.comprehension)):
            return None
        if isinstance(node, ast.Call):  # a method of the probabilities: ``attn.view(...)``
            root = node.func
            while isinstance(root, (ast.Attribute, ast.Subscript, ast.Call)):
                root = root.func if isinstance(root, ast.Call) else root.value
            if node.func is root or not (isinstance(root, ast.Name) and root.id == read.id):
                return None
    uses = [n for n in ast_walk(func) if isinstance(n, ast.Name) and n.id == local]
    if sum(not isinstance(n.ctx, ast.Load) for n in uses) != 1:
        return None
    handed: set[tuple[int, int]] = set()
    for use in uses:
        if not isinstance(use.ctx, ast.Load):
            continue
        found = returned_slot(use, parents, func)
        if found is None or found[2] is not use:
            return None
        handed.add((found[1], len(parents[use].elts)))
    if len(handed) != 1:
        return None
    return value, handed


def _kept_in_list(read: ast.Name, parents: dict, func: ast.AST) -> list[ast.expr] | bool | None:
    """``attns.append(attn)`` (a statement) where ``attns`` is a local list ``func`` makes
    empty (``attns = []``, its one binding; not a parameter, not seen by other frames): the
    tests of the ``if``s under which ``func`` reads the list otherwise (empty: it never does),
    False when it reads it elsewhere; None when ``read`` is not appended so."""
    call = parents.get(read)
    if not (isinstance(call, ast.Call) and len(call.args) == 1 and call.args[0] is read and not call.keywords
            and isinstance(call.func, ast.Attribute) and call.func.attr == "append"
            and isinstance(call.func.value, ast.Name) and isinstance(parents.get(call), ast.Expr)):
        return None
    name = call.func.value.id
    if name in _params(func) or _escapes(func, name):
        return False
    stores = [n for n in ast_walk(func) if isinstance(n, ast.Name) and n.id == name
              and isinstance(n.ctx, (ast.Store, ast.Del))]
    if len(stores) != 1:
        return False
    made = parents.get(stores[0])
    if not (isinstance(made, ast.Assign) and made.targets == [stores[0]] and isinstance(made.value, ast.List)
            and not made.value.elts):
        return False
    tests: list[ast.expr] = []
    for node in ast_walk(func):
        if not (isinstance(node, ast.Name) and node.id == name and isinstance(node.ctx, ast.Load)):
            continue
        receiver = parents.get(node)
        if isinstance(receiver, ast.Attribute) and receiver.attr == "append" and receiver.value is node:
            appended = parents.get(receiver)
            if isinstance(appended, ast.Call) and appended.func is receiver and \
                    isinstance(parents.get(appended), ast.Expr):
                continue  # another value appended: the list is only filled there
        test = condition_of(node, parents, func) or _past_early_return(node, parents, func)
        if test is None:
            return False
        tests.append(test)
    return tests


def _past_early_return(node: ast.AST, parents: dict, func: ast.AST) -> ast.expr | None:
    """``X`` where ``node`` lies in a statement of ``func``'s own body after ``if not X:
    return ...`` (a body of one return, no else): it is reached only when ``X`` holds."""
    stmt = node
    while stmt is not None and parents.get(stmt) is not func:
        stmt = parents.get(stmt)
    body = getattr(func, "body", [])
    if stmt is None or stmt not in body:
        return None
    for earlier in body[:body.index(stmt)]:
        if isinstance(earlier, ast.If) and not earlier.orelse and len(earlier.body) == 1 and \
                isinstance(earlier.body[0], ast.Return) and isinstance(earlier.test, ast.UnaryOp) and \
                isinstance(earlier.test.op, ast.Not):
            return earlier.test.operand
    return None


def _module_list_of(value: ast.AST, one) -> bool:
    """``nn.ModuleList([...])`` (or ``ModuleList``) whose one argument is a list display or
    comprehension of which every element satisfies ``one``."""
    if not (isinstance(value, ast.Call) and len(value.args) == 1 and not value.keywords):
        return False
    callee = value.func
    if not ((isinstance(callee, ast.Attribute) and callee.attr == "ModuleList")
            or (isinstance(callee, ast.Name) and callee.id == "ModuleList")):
        return False
    items = value.args[0]
    if isinstance(items, ast.ListComp):
        return one(items.elt)
    return isinstance(items, ast.List) and bool(items.elts) and all(one(e) for e in items.elts)



def _blocks(node: ast.AST | None):
    """The statement lists directly under ``node`` (a function's or a compound statement's)."""
    for field in ("body", "orelse", "finalbody"):
        body = getattr(node, field, None)
        if isinstance(body, list):
            yield body
    for handler in getattr(node, "handlers", ()):
        yield handler.body


def _stable_test(test: ast.expr, stable: set[str]) -> bool:
    """Is ``test`` a comparison or boolean of names in ``stable`` (parameters the caller never
    rebinds) and constants: the same on every read within one call?"""
    return all(isinstance(n, STABLE_TEST) for n in ast_walk(test)) and \
        {n.id for n in ast_walk(test) if isinstance(n, ast.Name)} <= stable

def _loops(func: ast.AST):
    """The (target, iterable) of each ``for`` in ``func``, ``enumerate(xs)`` read as ``xs`` with
    its item target (``for i, layer in enumerate(self.layers)``: ``layer``, ``self.layers``)."""
    for node in ast_walk(func):
        if not isinstance(node, ast.For):
            continue
        target, source = node.target, node.iter
        if (isinstance(source, ast.Call) and isinstance(source.func, ast.Name) and source.func.id == "enumerate"
                and len(source.args) == 1 and not source.keywords and isinstance(target, ast.Tuple)
                and len(target.elts) == 2):
            target, source = target.elts[1], source.args[0]
        yield target, source


def _loop_members(func: ast.AST, attrs) -> set[str]:
    """The loop names of ``func`` that walk one of ``attrs`` (``for layer in self.layers``,
    ``for i, layer in enumerate(self.layers)``) and are assigned nowhere else in it: a call of
    such a name is a call of a member of the list."""
    if not attrs:
        return set()
    found: set[str] = set()
    for target, source in _loops(func):
        if (isinstance(target, ast.Name) and isinstance(source, ast.Attribute) and isinstance(source.value, ast.Name)
                and source.value.id == "self" and source.attr in attrs):
            found.add(target.id)
    stores = [n.id for n in ast_walk(func) if isinstance(n, ast.Name) and isinstance(n.ctx, (ast.Store, ast.Del))]
    return {name for name in found if stores.count(name) == 1}


def _is_module_list(node: ast.AST) -> bool:
    callee = node.func if isinstance(node, ast.Call) else None
    return (isinstance(callee, ast.Attribute) and callee.attr == "ModuleList") or \
        (isinstance(callee, ast.Name) and callee.id == "ModuleList")


def _self_attribute(node: ast.AST) -> str | None:
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self":
        return node.attr
    return None


def _appended_rows(cls: ast.ClassDef, class_name: str) -> dict[str, tuple[int, int]]:
    """The attributes of ``cls`` made empty (``self.layers = nn.ModuleList([])``, their one
    binding) and only ever grown by ``self.layers.append(nn.ModuleList([A(...), B(...)]))``
    rows that hold an instance of ``class_name`` at one place: attribute -> (that place, the
    rows' length)."""
    parents = parents_of(cls)
    made: dict[str, int] = {}
    places: dict[str, set] = {}
    spoilt: set[str] = set()
    for node in ast_walk(cls):
        attr = _self_attribute(node)
        if attr is None:
            continue
        parent = parents.get(node)
        if isinstance(node.ctx, ast.Store):
            if isinstance(parent, ast.Assign) and parent.targets == [node] and _is_module_list(parent.value) and \
                    not parent.value.keywords and (not parent.value.args or (
                        len(parent.value.args) == 1 and isinstance(parent.value.args[0], ast.List)
                        and not parent.value.args[0].elts)):
                made[attr] = made.get(attr, 0) + 1
            else:
                spoilt.add(attr)
            continue
        if isinstance(node.ctx, ast.Del):
            spoilt.add(attr)
            continue
        if isinstance(parent, ast.Attribute) and parent.value is node:
            call = parents.get(parent)
            if parent.attr != "append":
                if parent.attr in ("extend", "insert", "__setitem__", "pop", "remove", "clear"):
                    spoilt.add(attr)
                continue
            row = call.args[0] if isinstance(call, ast.Call) and call.func is parent and len(call.args) == 1 \
                and not call.keywords else None
            items = row.args[0] if row is not None and _is_module_list(row) and len(row.args) == 1 and \
                not row.keywords and isinstance(row.args[0], ast.List) else None
            at = [i for i, e in enumerate(items.elts) if isinstance(e, ast.Call) and isinstance(e.func, ast.Name)
                  and e.func.id == class_name] if items is not None else []
            if len(at) != 1:
                spoilt.add(attr)
                continue
            places.setdefault(attr, set()).add((at[0], len(items.elts)))
        elif isinstance(parent, ast.Subscript) and parent.value is node and not isinstance(parent.ctx, ast.Load):
            spoilt.add(attr)
    return {attr: next(iter(found)) for attr, found in places.items()
            if made.get(attr) == 1 and attr not in spoilt and len(found) == 1}


def _appended_members(cls: ast.ClassDef, class_name: str) -> set[str]:
    """The attributes of ``cls`` made an empty ``nn.ModuleList()`` (their one binding) and only
    ever grown by ``self.layers.append(layer)``, each appended value an instance of
    ``class_name``: ``Layer(...)`` itself, or a local name whose one binding in its function is
    ``Layer(...)`` (``layer = Layer(...)``, then ``self.layers.append(layer)``)."""
    parents = parents_of(cls)

    def instance(value: ast.AST, func: ast.AST | None) -> bool:
        if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id == class_name:
            return True
        if not isinstance(value, ast.Name) or func is None or value.id in _params(func) or _escapes(func, value.id):
            return False
        stores = [n for n in ast_walk(func) if isinstance(n, ast.Name) and n.id == value.id
                  and isinstance(n.ctx, (ast.Store, ast.Del))]
        bound = parents.get(stores[0]) if len(stores) == 1 else None
        return isinstance(bound, ast.Assign) and bound.targets == [stores[0]] and instance(bound.value, None)

    grown = _grown_lists(cls, parents, lambda value, func: True if instance(value, func) else None)
    return set(grown)


def _grown_lists(cls: ast.ClassDef, parents: dict, value_of, empty_display: bool = False) -> dict[str, object]:
    """The attributes of ``cls`` made an empty ``nn.ModuleList()`` (``nn.ModuleList([])`` too
    with ``empty_display``) by their one binding and only ever grown by
    ``self.<attr>.append(one)`` inside a function, every appended value giving the same
    ``value_of(value, function)`` (None: the attribute is not read): attribute -> that value.
    Any other write, call or subscript store on the attribute leaves it out
    (:func:`_appended_members`, :func:`_dict_rows`)."""
    made: dict[str, int] = {}
    found: dict[str, set] = {}
    spoilt: set[str] = set()
    for node in ast_walk(cls):
        attr = _self_attribute(node)
        if attr is None:
            continue
        parent = parents.get(node)
        if not isinstance(node.ctx, ast.Load):
            if isinstance(parent, ast.Assign) and parent.targets == [node] and _is_module_list(parent.value) and \
                    not parent.value.keywords and (not parent.value.args or (
                        empty_display and len(parent.value.args) == 1 and isinstance(parent.value.args[0], ast.List)
                        and not parent.value.args[0].elts)):
                made[attr] = made.get(attr, 0) + 1
            else:
                spoilt.add(attr)
            continue
        if isinstance(parent, ast.Attribute) and parent.value is node:
            call = parents.get(parent)
            if parent.attr != "append":
                if parent.attr in ("extend", "insert", "__setitem__", "pop", "remove", "clear", "__iadd__"):
                    spoilt.add(attr)
                continue
            func = parents.get(call)
            while func is not None and not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
                func = parents.get(func)
            value = value_of(call.args[0], func) if isinstance(call, ast.Call) and call.func is parent and \
                len(call.args) == 1 and not call.keywords else None
            if value is None:
                spoilt.add(attr)
            else:
                found.setdefault(attr, set()).add(value)
        elif isinstance(parent, ast.Subscript) and parent.value is node and not isinstance(parent.ctx, ast.Load):
            spoilt.add(attr)
    return {attr: next(iter(values)) for attr, values in found.items()
            if made.get(attr) == 1 and attr not in spoilt and len(values) == 1}


def _is_module_dict(node: ast.AST) -> bool:
    callee = node.func if isinstance(node, ast.Call) else None
    return (isinstance(callee, ast.Attribute) and callee.attr == "ModuleDict") or \
        (isinstance(callee, ast.Name) and callee.id == "ModuleDict")


def _dict_rows(cls: ast.ClassDef, class_name: str) -> dict[str, str]:
    """The attributes of ``cls`` made an empty ``nn.ModuleList()`` / ``nn.ModuleList([])`` (their
    one binding) and only ever grown by ``self.blocks.append(layer)``, ``layer`` a local whose
    one binding in its function is ``nn.ModuleDict({'attention': Attention(...), ...})`` (string
    keys, one entry an instance of ``class_name`` under the same key in every row) and whose
    every other read stores an entry under another string key (``layer['norm'] = ...``):
    attribute -> that key."""
    parents = parents_of(cls)

    def key_of(local: ast.AST, func: ast.AST | None) -> str | None:
        if not isinstance(local, ast.Name) or func is None or local.id in _params(func) or _escapes(func, local.id):
            return None
        stores = [n for n in ast_walk(func) if isinstance(n, ast.Name) and n.id == local.id
                  and isinstance(n.ctx, (ast.Store, ast.Del))]
        bound = parents.get(stores[0]) if len(stores) == 1 else None
        if not (isinstance(bound, ast.Assign) and bound.targets == [stores[0]] and _is_module_dict(bound.value)
                and len(bound.value.args) == 1 and not bound.value.keywords
                and isinstance(bound.value.args[0], ast.Dict)):
            return None
        display = bound.value.args[0]
        if not all(isinstance(k, ast.Constant) and isinstance(k.value, str) for k in display.keys):
            return None
        at = [k.value for k, v in zip(display.keys, display.values) if isinstance(v, ast.Call)
              and isinstance(v.func, ast.Name) and v.func.id == class_name]
        if len(at) != 1:
            return None
        for read in ast_walk(func):
            if not (isinstance(read, ast.Name) and read.id == local.id and isinstance(read.ctx, ast.Load)) \
                    or read is local:
                continue
            up = parents.get(read)
            if not (isinstance(up, ast.Subscript) and up.value is read and isinstance(up.ctx, ast.Store)
                    and isinstance(up.slice, ast.Constant) and isinstance(up.slice.value, str)
                    and up.slice.value != at[0]):
                return None  # read or changed otherwise: the entry could be replaced
        return at[0]

    return _grown_lists(cls, parents, key_of, empty_display=True)


def _dict_members(func: ast.AST, rows: dict[str, str], casts: set[str]) -> dict[str, str]:
    """The loop names of ``func`` that walk one of ``rows`` (``for layer in self.blocks``, also
    under ``enumerate``), assigned nowhere else in it but by ``layer = cast(T, layer)``
    (``casts``: the names of ``typing.cast``, which returns its second argument): name -> the
    key of the entry that holds the class."""
    if not rows:
        return {}
    found: dict[str, str] = {}
    for target, source in _loops(func):
        attr = _self_attribute(source)
        if attr in rows and isinstance(target, ast.Name):
            found[target.id] = rows[attr]
    if not found:
        return {}
    parents = parents_of(func)
    casts = casts - {n.id for n in ast_walk(func) if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load)} \
        - {a.arg for a in ast_walk(func) if isinstance(a, ast.arg)}  # (a local ``cast`` is another function)
    stores: dict[str, int] = {}
    for n in ast_walk(func):
        if not (isinstance(n, ast.Name) and n.id in found and isinstance(n.ctx, (ast.Store, ast.Del))):
            continue
        up = parents.get(n)
        if isinstance(up, ast.Assign) and up.targets == [n] and isinstance(up.value, ast.Call) and \
                _cast_name(up.value.func) in casts and len(up.value.args) == 2 and not up.value.keywords and \
                isinstance(up.value.args[1], ast.Name) and up.value.args[1].id == n.id:
            continue  # ``layer = cast(nn.ModuleDict, layer)``: the same object
        stores[n.id] = stores.get(n.id, 0) + 1
    return {name: key for name, key in found.items() if stores.get(name) == 1}


def _cast_name(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.attr == "cast":
        return f"{node.value.id}.cast"
    return None


def _casts(tree: ast.Module) -> set[str]:
    """The module-level names of ``typing.cast`` (``from typing import cast``, ``import typing``)."""
    out: set[str] = set()
    other: set[str] = set()  # names the module binds to anything else
    for stmt in tree.body:
        if isinstance(stmt, ast.ImportFrom) and stmt.module == "typing" and not stmt.level:
            out.update(a.asname or a.name for a in stmt.names if a.name == "cast")
            other.update(a.asname or a.name for a in stmt.names if a.name != "cast")
        elif isinstance(stmt, ast.Import):
            out.update(f"{a.asname or a.name}.cast" for a in stmt.names if a.name == "typing")
            other.update(f"{a.asname or a.name}.cast" for a in stmt.names if a.name != "typing")
        elif isinstance(stmt, ast.ImportFrom):
            other.update(a.asname or a.name for a in stmt.names)
        elif isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            other.add(stmt.name)
        else:
            other.update(n.id for n in ast_walk(stmt) if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load))
    return out - other


def _touches(cls: ast.ClassDef, attrs: set[str]) -> bool:
    """Does ``cls`` bind or grow any of ``attrs`` (``self.<attr>`` stored, or a method of it called)?"""
    parents = parents_of(cls)
    for node in ast_walk(cls):
        attr = _self_attribute(node)
        if attr in attrs and (not isinstance(node.ctx, ast.Load) or isinstance(parents.get(node), ast.Attribute)):
            return True
    return False


def _row_members(func: ast.AST, rows: dict[str, tuple[int, int]]) -> set[str]:
    """The loop names of ``func`` bound to the ``place`` of each row of one of ``rows``
    (``for attn, ff in self.layers``, also under ``enumerate``), assigned nowhere else in it."""
    found: set[str] = set()
    for target, source in _loops(func):
        attr = _self_attribute(source)
        if attr not in rows or not isinstance(target, (ast.Tuple, ast.List)):
            continue
        place, length = rows[attr]
        if len(target.elts) == length and isinstance(target.elts[place], ast.Name) and \
                not any(isinstance(e, ast.Starred) for e in target.elts):
            found.add(target.elts[place].id)
    stores = [n.id for n in ast_walk(func) if isinstance(n, ast.Name) and isinstance(n.ctx, (ast.Store, ast.Del))]
    return {name for name in found if stores.count(name) == 1}


def _descendants(cls: ast.ClassDef, classes: list[ast.ClassDef]) -> list[ast.ClassDef]:
    """The classes of the file that derive from ``cls``, directly or not (by base name)."""
    out: list[ast.ClassDef] = []
    names = {cls.name}
    changed = True
    while changed:
        changed = False
        for other in classes:
            if other not in out and other is not cls and any(
                    (b.id if isinstance(b, ast.Name) else b.attr if isinstance(b, ast.Attribute) else None) in names
                    for b in other.bases):
                out.append(other)
                names.add(other.name)
                changed = True
    return out


def _calls(func: ast.AST):
    """The calls in ``func``'s own body (not in nested functions or lambdas)."""
    stack = list(ast.iter_child_nodes(func))
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            continue
        if isinstance(node, ast.Call):
            yield node
        stack.extend(ast.iter_child_nodes(node))
