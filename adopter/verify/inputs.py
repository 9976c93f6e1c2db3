"""Example inputs for a built module: from its forward signature, its first layers, and its sizes.

The module's *entry layer* (the first leaf layer it registered: an ``Embedding``, a ``Conv2d``, a
``Linear``...) says what its main input looks like:

- an ``Embedding`` first: token ids ``[batch, seq]`` below its ``num_embeddings`` (``idx``,
  ``input_ids``, ``tokens``, ``x``), ``seq`` within every position table and causal buffer;
- a ``Conv2d`` first (or an image size among the constructor arguments): images
  ``[batch, in_channels, H, W]`` with ``H`` the model's own image size when it has one (so patch
  embeddings divide it); ``Conv1d``: ``[batch, C, L]``; ``Conv3d``: a short clip;
- otherwise hidden states ``[batch, seq, width]`` with the width tried among the module's own
  (first Linear's ``in_features``, LayerNorm width, the config's hidden size, ...).

Targets (``targets``, ``labels``, ``y``) are token ids of the output vocabulary (or class ids of
a classifier), masks come in the formats a level suggests (a model takes a ``[batch, seq]`` 0/1
mask, a layer Hugging Face's extended additive mask or a boolean one), time steps are ``[batch]``.
Candidates are yielded richest first; the builder keeps the first one the *original* module runs.
"""

from __future__ import annotations

import ast
import functools
import inspect
import itertools
import math
import re
import textwrap
from collections import ChainMap, defaultdict
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Mapping

import torch
from torch import nn

from .shrink import is_int
from .sizes import Sizes

if TYPE_CHECKING:
    from .build import Call

MAX_UNMASKED_TRIES = 24  # tries with the required masks None (the optional ones left out), after the others:
# the first input's first two guesses or so, each with its later inputs' guesses (tardis' pair-bias
# attention: its sequence-first guess, second, with the pairs of its later input's first guess)
MAX_LATE_TRIES = 8  # tries with a later input as the convolution it is handed to takes it, after all others
MAX_INPUT_TRIES = 48

# A model's main inputs: given even when optional (they are alternatives to inputs_embeds).
_PRIMARY = ("input_ids", "decoder_input_ids", "pixel_values")
_MODEL_LEVEL = ("input_ids", "pixel_values", "inputs_embeds", "decoder_input_ids", "input_values", "input_features")
_ID_NAMES = {"idx", "input_ids", "ids", "tokens", "token_ids", "input_tokens", "src", "tgt", "text", "seq", "x",
             "input", "inputs", "token", "src_tokens", "tgt_tokens", "sequence", "input_seq", "toks", "tok"}
_IMAGE_NAMES = {"img", "image", "images", "imgs", "pixel_values", "pixels", "video", "x", "input", "inputs", "inp"}
_TARGET_NAMES = {"targets", "target", "labels", "label", "y", "tgt_ids", "target_ids"}
_TIME_NAMES = {"t", "timesteps", "timestep", "time", "times", "noise_level", "sigma", "sigmas", "noise_labels"}
_POSITION_INT_NAMES = {"start_pos", "pos", "offset", "position", "start", "past_length", "cache_position",
                       "step", "seqlen_offset"}
_NONE_NAMES = {"kv_cache", "cache", "past", "past_key_value", "past_key_values", "layer_past", "state", "hidden",
               "memory_state", "inference_params"}


class _Omit:
    def __repr__(self) -> str:
        return "<omitted>"


OMIT = _Omit()


class _LikeFirst:
    """A later input drawn at the shape of the call's first input (``elementwise_partners``)."""

    def __repr__(self) -> str:
        return "<like the first input>"


LIKE_FIRST = _LikeFirst()


def hints_of(config: Any, extra: dict | None = None) -> dict[str, Any]:
    """Size hints: the attributes of a config object (one level of nesting), then ``extra``."""
    out: dict[str, Any] = {}
    if config is not None:
        try:
            items = dict(config).items() if isinstance(config, dict) else vars(config).items()
        except TypeError:
            items = []
        for key, value in list(items):
            if key.startswith("_"):
                continue
            out.setdefault(key, value)
    for key, value in (extra or {}).items():
        if isinstance(value, dict) or hasattr(value, "__dict__") and not isinstance(value, (type, nn.Module)):
            for inner_key, inner in hints_of(value).items():
                out.setdefault(inner_key, inner)
        else:
            out[key] = value
    return out


def _int_hint(hints: dict, *names: str) -> int | None:
    for name in names:
        value = hints.get(name)
        if is_int(value) and value > 0:
            return value
        if isinstance(value, (tuple, list)) and value and is_int(value[0]) and value[0] > 0:
            return value[0]
    return None


def entry_layer(module: nn.Module) -> nn.Module | None:
    """The first leaf layer the module registered that fixes the shape of its input."""
    kinds = (nn.Embedding, nn.EmbeddingBag, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear, nn.LayerNorm,
             nn.BatchNorm1d, nn.BatchNorm2d, nn.GroupNorm)
    for sub in module.modules():
        if isinstance(sub, kinds):
            return sub
    return None


def _widths(module: nn.Module, hints: dict, sizes: Sizes) -> list[int]:
    """Feature widths the module may accept, most likely first."""
    first: list[int] = []
    rest: list[int] = []
    for sub in module.modules():
        if isinstance(sub, nn.Linear):
            (first if not first else rest).append(sub.in_features)
        elif isinstance(sub, nn.LayerNorm) and sub.normalized_shape:
            rest.append(int(sub.normalized_shape[-1]))
        elif isinstance(sub, nn.Embedding):
            rest.append(sub.embedding_dim)
        elif isinstance(sub, nn.BatchNorm1d):
            rest.append(sub.num_features)
    hinted = _int_hint(hints, "hidden_size", "d_model", "n_embd", "dim", "embedding_size", "embed_dim", "n_state",
                       "hidden_dim", "width")
    if hinted:
        rest.append(hinted)
    rest.append(sizes.hidden)
    for sub in module.modules():
        if isinstance(sub, nn.Linear):
            rest.append(sub.out_features)
    out: list[int] = []
    for width in first + rest:
        if width not in out:
            out.append(width)
    return out[:5]


def _max_seq(module: nn.Module, hints: dict, sizes: Sizes) -> int:
    """The longest sequence the module takes: position tables and square causal buffers bound it."""
    bound = sizes.seq
    entry = entry_layer(module)
    for name, sub in module.named_modules():
        # a position table (wpe, pos_emb, position_embeddings), not a token-type or label table
        last = name.rsplit(".", 1)[-1].lower()
        if isinstance(sub, nn.Embedding) and sub is not entry and sub.num_embeddings >= 2 and \
                ("pos" in last or last in ("wpe", "pe")):
            bound = min(bound, sub.num_embeddings)
    for _, buffer in module.named_buffers():
        if buffer.dim() >= 2 and buffer.shape[-1] == buffer.shape[-2] and buffer.shape[-1] >= 2:
            bound = min(bound, int(buffer.shape[-1]))
    hinted = _int_hint(hints, "block_size", "n_ctx", "max_seq_len", "max_len", "context_length", "seq_len",
                       "max_position_embeddings", "n_positions", "max_length")
    if hinted:
        bound = min(bound, hinted)
    return max(2, bound)


def _out_classes(module: nn.Module) -> int:
    last = None
    for sub in module.modules():
        if isinstance(sub, nn.Linear):
            last = sub
    return max(2, last.out_features) if last is not None else 2


def mask_values(kind: str, batch: int, seq: int, dtype=torch.float32) -> torch.Tensor:
    """A mask of the given format that hides the last positions of the last sequence (never all of
    them: a fully masked row is a degenerate case no model is used with)."""
    b, s = batch, seq
    low = torch.finfo(dtype).min
    hidden = min(2, s - 1)
    if kind == "binary":
        mask = torch.ones(b, s, dtype=torch.long)
        if hidden:
            mask[-1, -hidden:] = 0
        return mask
    if kind == "bool":
        mask = torch.ones(b, s, dtype=torch.bool)
        if hidden:
            mask[-1, -hidden:] = False
        return mask
    if kind == "bool_padding":  # the same padding for code that fills where it is True
        mask = torch.zeros(b, s, dtype=torch.bool)
        if hidden:
            mask[-1, -hidden:] = True
        return mask
    if kind == "bool_square":
        return torch.ones(s, s, dtype=torch.bool).tril()[None, None].expand(b, 1, s, s).contiguous()
    if kind == "bool_future":  # the same causal mask for code that fills where it is True
        return torch.ones(s, s, dtype=torch.bool).triu(1)[None, None].expand(b, 1, s, s).contiguous()
    if kind == "additive4":
        mask = torch.zeros(b, 1, 1, s, dtype=dtype)
        if hidden:
            mask[-1, ..., -hidden:] = low
        return mask
    if kind == "additive_square":
        mask = torch.zeros(b, 1, s, s, dtype=dtype)
        if hidden:
            mask[-1, ..., -hidden:] = low
        return mask
    if kind == "additive3":  # one [seq, seq] mask per window or group ([groups, seq, seq], Swin's shift mask)
        mask = torch.zeros(b, s, s, dtype=dtype)
        if hidden:
            mask[-1, :, -hidden:] = low
        return mask
    if kind == "causal":
        mask = torch.full((s, s), low, dtype=dtype).triu(1)
        return mask[None, None].expand(b, 1, s, s).contiguous()
    raise ValueError(kind)


def broadcast_bool_masks(batch: int, seq: int) -> list[torch.Tensor]:
    """Boolean masks that broadcast over [batch, heads, queries, keys] scores (a later input
    the code uses as booleans beside four-axis inputs, ``scores.masked_fill(~keep, -1e9)``): the
    padding of ``mask_values`` as [batch, 1, 1, keys], True where kept, then True where hidden,
    then the causal squares of both senses.  Never a fully masked row."""
    keep = mask_values("bool", batch, seq)[:, None, None, :]
    hide = mask_values("bool_padding", batch, seq)[:, None, None, :]
    return [keep.contiguous(), hide.contiguous(), mask_values("bool_square", batch, seq),
            mask_values("bool_future", batch, seq)]


_BUILTIN_ANNOTATIONS = {"int": int, "bool": bool, "float": float, "str": str}


def signature_of(func: Callable) -> list[inspect.Parameter]:
    """The parameters of ``func``; an annotation a postponed-evaluation module keeps as text
    (``from __future__ import annotations``: ``q_offset: int`` is ``"int"``) is the builtin type
    it names, as written without that import."""
    try:
        params = list(inspect.signature(func).parameters.values())
    except (TypeError, ValueError):
        return []
    if any(p.annotation.__class__ is str and p.annotation in _BUILTIN_ANNOTATIONS for p in params):
        params = [p.replace(annotation=_BUILTIN_ANNOTATIONS[p.annotation])
                  if p.annotation.__class__ is str and p.annotation in _BUILTIN_ANNOTATIONS else p for p in params]
    return params


def _einops_rank(pattern: str) -> int | None:
    """Axes on the input side of an einops pattern (``'b p n (h d) -> ...'`` -> 4), None with ``...``."""
    left = pattern.split("->", 1)[0].strip()
    if not left or "..." in left or "," in left:
        return None
    count, depth = 0, 0
    token = False
    for char in left:
        if char == "(":
            if depth == 0:
                count += 1
            depth += 1
        elif char == ")":
            depth -= 1
        elif char.isspace():
            token = False
            continue
        elif depth == 0 and not token:
            count += 1
            token = True
            continue
        token = token if depth == 0 else False
    return count or None


def _function_def(func: Callable) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
    """The parsed definition of ``func``, a function or a bound method (cached by its plain
    function, so no module instance is held); None when its source cannot be read."""
    return _parsed_def(getattr(func, "__func__", func))


@functools.lru_cache(maxsize=256)
def _param_names(node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> set[str]:
    """The names a function binds from its call's arguments (``*args`` and ``**kwargs`` excepted),
    the set every reading below checks an expression's names against."""
    return {a.arg for a in [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]}


def _parsed_def(func: Callable) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
    """One parse per function: ``input_rank`` and every parameter's ``unpacked_sizes`` read it."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(func)))
    except (OSError, TypeError, SyntaxError, IndentationError):
        return None
    node = tree.body[0] if tree.body else None
    return node if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) else None


# einops functions whose pattern's input side names the axes of the tensor handed to them
_EINOPS_READERS = ("rearrange", "repeat", "reduce")
# and einops_exts' ``*_many`` forms, which apply one pattern to each tensor they are handed
_EINOPS_PATTERNED = (*_EINOPS_READERS, "rearrange_many", "repeat_many", "reduce_many")
# tensor methods whose result has the rank of the tensor they are called on (a cast, a copy, a
# scan or an elementwise function along the axes), so a pattern read of the result states it
_RANK_KEEPING = frozenset({"float", "double", "half", "bfloat16", "to", "type", "type_as", "contiguous", "clone",
                           "detach", "cumsum", "cumprod", "exp", "log", "sigmoid", "neg", "abs", "softmax",
                           "log_softmax", "logsigmoid"})


def _rank_kept_of(value: ast.expr, params: set[str]) -> str | None:
    """The parameter ``value`` is a chain of rank-keeping method calls on (``g.float().cumsum(1)``:
    ``g``), else None."""
    while isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute) and value.func.attr in _RANK_KEEPING:
        value = value.func.value
    return value.id if isinstance(value, ast.Name) and value.id in params else None


def _einops_callee(expr: ast.expr, scope: dict) -> bool:
    """Is ``expr`` (``rearrange``, ``einops.repeat``) einops' function in the function's module,
    as the running module binds it (its globals), not another ``reduce``/``repeat`` (functools',
    a local helper) that shares the name (review37)?"""
    found, value = _resolved(expr, scope)
    if not found:
        return False
    if _of_einops(value):
        return True
    return inspect.isfunction(value) and _hands_pattern_to_einops(value)


def _resolved(expr: ast.expr, scope: dict) -> tuple[bool, object]:
    """(True, the object) that the dotted ``expr`` names in ``scope`` (a module's globals, each
    attribute looked up in turn, None where one is missing); (False, None) when its first
    name is not bound there."""
    parts = []
    while isinstance(expr, ast.Attribute):
        parts.append(expr.attr)
        expr = expr.value
    if not isinstance(expr, ast.Name) or expr.id not in scope:
        return False, None
    value = scope[expr.id]
    for attr in reversed(parts):
        value = getattr(value, attr, None)
    return True, value


def _of_einops(value) -> bool:
    """Is ``value`` defined in einops (or einops_exts)?"""
    return (getattr(value, "__module__", None) or "").split(".")[0] in _EINOPS_MODULES


@functools.lru_cache(maxsize=256)
def _hands_pattern_to_einops(func: Callable) -> bool:
    """Whether ``func`` (a module's own helper: ``def rearrange_many(tensors, pattern, **axes):
    return [rearrange(t, pattern, **axes) for t in tensors]``) hands its second parameter on as
    the pattern of one of einops' own functions (resolved through its globals): its pattern then
    names the axes of what it is handed, as einops' does."""
    node = _function_def(func)
    if node is None:
        return False
    params = [a.arg for a in [*node.args.posonlyargs, *node.args.args]]
    if len(params) < 2:
        return False
    scope = getattr(func, "__globals__", {})
    for sub in ast.walk(node):
        if isinstance(sub, ast.Call) and _last_name(sub.func) in _EINOPS_PATTERNED and len(sub.args) >= 2 \
                and isinstance(sub.args[1], ast.Name) and sub.args[1].id == params[1]:
            found, value = _resolved(sub.func, scope)
            if found and _of_einops(value):
                return True
    return False


# einops and einops_exts (whose ``rearrange_many`` applies einops' pattern to each tensor handed)
_EINOPS_MODULES = ("einops", "einops_exts")


def _scope_of(func: Callable) -> Mapping:
    """Where ``func``'s calls' names are bound: the names its own body imports (``from einops
    import rearrange`` inside ``forward``), then the globals its module runs with."""
    node = _function_def(func)
    local: dict[str, Any] = {}
    for sub in ast.walk(node) if node is not None else ():
        if isinstance(sub, ast.ImportFrom) and sub.module and not sub.level:
            for alias in sub.names:
                local[alias.asname or alias.name] = _ImportedName(sub.module)
        elif isinstance(sub, ast.Import):
            for alias in sub.names:
                local[alias.asname or alias.name.split(".")[0]] = _ImportedName(
                    alias.name if alias.asname else alias.name.split(".")[0])
    return ChainMap(local, _closure_names(func), getattr(inspect.unwrap(func), "__globals__", None) or {})


def _closure_names(func: Callable) -> Mapping:
    """The names ``func`` reads from the functions around it (a class defined in a function
    that imports ``rearrange`` itself): bound there, not in the module's globals."""
    try:
        return inspect.getclosurevars(inspect.unwrap(func)).nonlocals
    except (TypeError, ValueError):
        return {}


class _ImportedName:
    """A name a function's own ``import`` binds, read without importing: its module, and the
    same module for any attribute of it (``einops.rearrange`` after ``import einops``)."""

    def __init__(self, module: str):
        self.__module__ = module

    def __getattr__(self, name: str) -> _ImportedName:
        return self


def _einops_call(call: ast.Call, names: Iterable[str], scope: dict) -> bool:
    """Is ``call`` one of einops' functions ``names`` with a constant pattern after the tensor
    (``rearrange(x, "b n (h d) -> b h n d")``), its callee resolved through the running module's
    globals (``scope``) rather than by the name alone: a module's own ``rearrange`` or functools'
    ``reduce`` is not einops'."""
    return _last_name(call.func) in names and len(call.args) >= 2 and isinstance(call.args[1], ast.Constant) \
        and isinstance(call.args[1].value, str) and _einops_callee(call.func, scope)


def rearranged_ranks(func: Callable) -> dict[str, int]:
    """Parameters the function hands to einops' ``rearrange`` (or ``repeat``/``reduce``, whose
    pattern's input side names the axes just the same) with a pattern (``query =
    rearrange(query, "b n h d -> b h n d")``), as they are, or through a local name bound once to
    rank-keeping method calls on them (fla's ``gc = g.float().cumsum(1)`` then
    ``rearrange(gc, "b t h -> b h t 1")``): the rank the pattern's input side names, when every
    such use of the parameter names the same (no ellipsis)."""
    node = _function_def(func)
    if node is None:
        return {}
    params = _param_names(node)
    stores: dict[str, int] = {}
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
            stores[sub.id] = stores.get(sub.id, 0) + 1
    # a local bound once (and not a parameter) to rank-keeping calls on a parameter reads as it
    alias: dict[str, str] = {}
    for sub in ast.walk(node):
        if isinstance(sub, ast.Assign) and len(sub.targets) == 1 and isinstance(sub.targets[0], ast.Name) \
                and sub.targets[0].id not in params and stores.get(sub.targets[0].id) == 1 \
                and isinstance(sub.value, ast.Call):
            origin = _rank_kept_of(sub.value, params)
            if origin is not None:
                alias[sub.targets[0].id] = origin
    found: dict[str, set] = {}
    scope = _scope_of(func)
    for sub in ast.walk(node):
        if isinstance(sub, ast.Call) and _last_name(sub.func) in _EINOPS_READERS and len(sub.args) >= 2 \
                and _einops_callee(sub.func, scope) \
                and isinstance(sub.args[0], ast.Name) and (sub.args[0].id in params or sub.args[0].id in alias) \
                and isinstance(sub.args[1], ast.Constant) and isinstance(sub.args[1].value, str):
            name = alias.get(sub.args[0].id, sub.args[0].id)
            found.setdefault(name, set()).add(_einops_rank(sub.args[1].value))
    return {name: ranks.pop() for name, ranks in found.items() if len(ranks) == 1 and None not in ranks}


def einsum_ranks(func: Callable, kept: bool = True) -> dict[str, int]:
    """Parameters the function hands to torch's einsum by name, each with the count of its
    subscripts there (``einsum('b i h d, b j h d -> b h i j', q, k)``: q and k, 4), when every use
    says the same count (no ellipsis) and (``kept``) the function never rebinds the parameter but
    scaled (``q = q * scale``); without ``kept``, a likely rank only (``k, v = map(repeat_heads,
    (k, v))`` first)."""
    node = _function_def(func)
    if node is None:
        return {}
    params = _param_names(node)
    found: dict[str, set[int]] = {}
    rebound: set[str] = set()
    reshaped: set[str] = set()
    for sub in ast.walk(node):
        if isinstance(sub, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
            targets = sub.targets if isinstance(sub, ast.Assign) else [sub.target]
            for target in targets:
                for n in ast.walk(target):
                    if not (isinstance(n, ast.Name) and n.id in params):
                        continue
                    value = sub.value
                    scaled = isinstance(target, ast.Name) and (
                        (isinstance(sub, ast.AugAssign) and isinstance(sub.op, (ast.Mult, ast.Div))) or
                        (isinstance(sub, ast.Assign) and isinstance(value, ast.BinOp) and
                         isinstance(value.op, (ast.Mult, ast.Div)) and
                         any(isinstance(side, ast.Name) and side.id == n.id for side in (value.left, value.right))))
                    if not scaled and not (isinstance(target, ast.Name) and _same_rank_of(value, n.id)):
                        rebound.add(n.id)
                    if isinstance(target, ast.Name) and isinstance(value, ast.Call) and \
                            isinstance(value.func, ast.Attribute) and value.func.attr in ("reshape", "view") and \
                            isinstance(value.func.value, ast.Name) and value.func.value.id == n.id and \
                            len(value.args) >= 2:
                        # ``keys = keys.reshape(N, key_len, heads, head_dim)``: the axes einsum
                        # reads are the view's, not the input's
                        reshaped.add(n.id)
        elif isinstance(sub, (ast.For, ast.AsyncFor, ast.With, ast.AsyncWith, ast.NamedExpr, ast.comprehension)):
            rebound.update(n.id for n in ast.walk(sub) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
                           and n.id in params and not isinstance(sub, (ast.With, ast.AsyncWith)))
            if isinstance(sub, (ast.With, ast.AsyncWith)):
                rebound.update(n.id for item in sub.items if item.optional_vars is not None
                               for n in ast.walk(item.optional_vars) if isinstance(n, ast.Name))
        if not (isinstance(sub, ast.Call) and sub.args and isinstance(sub.args[0], ast.Constant)
                and isinstance(sub.args[0].value, str) and "->" in sub.args[0].value):
            continue
        called = sub.func.attr if isinstance(sub.func, ast.Attribute) else getattr(sub.func, "id", "")
        if called != "einsum":
            continue
        operands = list(sub.args[1:])
        if len(operands) == 1 and isinstance(operands[0], (ast.List, ast.Tuple)):
            operands = list(operands[0].elts)
        terms = sub.args[0].value.split("->", 1)[0].split(",")
        if len(terms) != len(operands):
            continue
        for term, operand in zip(terms, operands):
            letters = term.replace(" ", "")
            operand = _scaled_operand(operand, params)
            if isinstance(operand, ast.Name) and operand.id in params and letters.isalpha():
                found.setdefault(operand.id, set()).add(len(letters))
    return {name: next(iter(ranks)) for name, ranks in found.items()
            if len(ranks) == 1 and (not kept or name not in rebound) and name not in reshaped}


# methods that hand back a tensor of the same rank (their axes maybe swapped or copied)
_SAME_RANK = frozenset({"transpose", "swapaxes", "swapdims", "permute", "contiguous", "float", "half",
                        "double", "to", "type_as", "clone", "detach"})


def _same_rank_of(value: ast.expr, name: str) -> bool:
    """Is ``value`` ``name`` through a chain of same-rank methods only (``q.transpose(0,
    1).contiguous()``): a rebinding that keeps the input's rank."""
    seen = False
    while isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute) and value.func.attr in _SAME_RANK:
        value, seen = value.func.value, True
    return seen and isinstance(value, ast.Name) and value.id == name


def _scaled_operand(operand: ast.expr, params: set) -> ast.expr:
    """``k * scale`` (or ``scale * k``, ``k / scale``) handed to einsum: the parameter ``k``, where
    the other side is a number, an attribute or a local name (no other parameter, which could be
    a tensor of another rank); the operand itself otherwise."""
    if not (isinstance(operand, ast.BinOp) and isinstance(operand.op, (ast.Mult, ast.Div))):
        return operand
    sides = (operand.left, operand.right) if isinstance(operand.op, ast.Mult) else (operand.left,)
    for side in sides:
        other = operand.right if side is operand.left else operand.left
        if isinstance(side, ast.Name) and side.id in params and (
                isinstance(other, (ast.Constant, ast.Attribute)) or
                (isinstance(other, ast.Name) and other.id not in params)):
            return side
    return operand


def transposed_rank(node: ast.FunctionDef | ast.AsyncFunctionDef, name: str) -> int | None:
    """The least rank input ``name`` has by the axes the code swaps on it, where the function
    never rebinds it: ``k.transpose(2, 3)`` (or ``swapaxes``) names axis 3, so four axes at
    least; negative axes (``transpose(-2, -1)``) count from the end and state nothing; swaps
    that disagree on the least rank take the highest."""
    least = 0
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name) and sub.id == name and isinstance(sub.ctx, (ast.Store, ast.Del)):
            return None  # rebound: a swap may be of another tensor under the same name
        if not (isinstance(sub, ast.Call) and isinstance(sub.func, ast.Attribute)
                and sub.func.attr in ("transpose", "swapaxes", "swapdims")
                and isinstance(sub.func.value, ast.Name) and sub.func.value.id == name
                and len(sub.args) == 2 and not sub.keywords):
            continue
        axes = [a.value for a in sub.args if isinstance(a, ast.Constant) and type(a.value) is int]
        if len(axes) == 2 and min(axes) >= 0:
            least = max(least, max(axes) + 1)
    return least or None


def _matmul_operands(sub: ast.AST) -> tuple[ast.expr, ast.expr] | None:
    """The two operands of a batched matrix product (``a @ b``, ``torch.matmul(a, b)``,
    ``a.matmul(b)``), whose batch axes torch lines up; None for anything else."""
    if isinstance(sub, ast.BinOp) and isinstance(sub.op, ast.MatMult):
        return sub.left, sub.right
    if isinstance(sub, ast.Call) and isinstance(sub.func, ast.Attribute) and sub.func.attr == "matmul" \
            and not sub.keywords:
        if len(sub.args) == 2:
            return sub.args[0], sub.args[1]
        if len(sub.args) == 1:
            return sub.func.value, sub.args[0]
    return None


def _peer_rank(func: Callable, name: str) -> int | None:
    """The rank ``matmul_peer_ranks`` reads for ``name``, when it is more than the three axes of
    the usual [batch, seq, width] guess (which every input gets anyway)."""
    rank = matmul_peer_ranks(func).get(name)
    return rank if rank is not None and rank > 3 else None


def _helper_ranks(func: Callable) -> dict[str, int]:
    """The ranks a helper method's own code states of its later inputs, for a direct call: the
    einsum subscripts it hands them to (TarMAC's ``attention_block(q, k, v)``: ``'bikd,bjkd->bikj'``,
    four each) and the rank their batched products share with a swapped input."""
    return {**matmul_peers(func), **einsum_ranks(func, kept=False)}


def matmul_peers(func: Callable) -> dict[str, int]:
    """``matmul_peer_ranks`` of the function's parameters, those of more than three axes (a
    later input's four-axis guesses go first where it is 4)."""
    return {p: r for p, r in matmul_peer_ranks(func).items() if r > 3}


def matmul_peer_ranks(func: Callable) -> dict[str, int]:
    """Parameters of the function's batched matrix products given the rank another operand's
    own code states (``torch.matmul(q / s, k.transpose(2, 3))`` then ``torch.matmul(attn, v)``
    with ``attn`` computed from that product: ``k`` has four axes at least, so q and v, which
    meet it in the products, four too).  The parameters whose values (through local names
    computed from them) meet as the operands of one product form a group; a group whose stated
    ranks (``transposed_rank``) agree gives that rank to each member that states none.  A
    product's operands can broadcast to lower ranks, so this is a likely reading: a wrong one
    costs a try, never a verdict."""
    node = _function_def(func)
    if node is None:
        return {}
    params = [a.arg for a in [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]]
    params = [p for p in params if p not in ("self", "cls")]
    origins: dict[str, set[str]] = {p: {p} for p in params}

    def sources(expr: ast.expr) -> set[str]:
        return {p for n in ast.walk(expr) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)
                for p in origins.get(n.id, ())}

    assigns = [sub for sub in ast.walk(node) if isinstance(sub, (ast.Assign, ast.AugAssign))]
    for _ in range(2):  # local names computed from names computed from the parameters
        for sub in assigns:
            targets = sub.targets if isinstance(sub, ast.Assign) else [sub.target]
            found = sources(sub.value)
            for target in targets:
                if isinstance(target, ast.Name) and target.id not in params:
                    origins.setdefault(target.id, set()).update(found)
    group = {p: p for p in params}

    def root(p: str) -> str:
        while group[p] != p:
            p = group[p]
        return p

    for sub in ast.walk(node):
        operands = _matmul_operands(sub)
        if operands is None:
            continue
        members = sorted(sources(operands[0]) | sources(operands[1]))
        for other in members[1:]:
            group[root(other)] = root(members[0])
    stated = {p: r for p in params if (r := transposed_rank(node, p))}
    by_group: dict[str, set[int]] = {}
    for p, r in stated.items():
        by_group.setdefault(root(p), set()).add(r)
    out: dict[str, int] = {}
    for p in params:
        ranks = by_group.get(root(p), set())
        if len(ranks) == 1 and any(root(q) == root(p) and q != p for q in params):
            out[p] = stated.get(p) or next(iter(ranks))
    return out


def score_terms(func: Callable) -> set[str]:
    """Parameters the function adds to scores it then hands to a softmax (texar's T5 attention:
    ``logits += position_bias`` then ``torch.softmax(logits, dim=-1)``): an additive bias over the
    scores, [batch, heads, queries, keys], which an additive mask's shapes broadcast to.  Read
    from the code: an add (``+=`` or ``+``) of the parameter onto a name whose value a later
    ``softmax`` call (a function or a method) takes."""
    node = _function_def(func)
    if node is None:
        return set()
    params = _param_names(node)
    softmaxed: set[str] = set()
    added: dict[str, set[str]] = {}  # scores name -> parameters added onto it
    for sub in ast.walk(node):
        if isinstance(sub, ast.Call):
            callee = sub.func
            called = callee.attr if isinstance(callee, ast.Attribute) else getattr(callee, "id", "")
            if called == "softmax":
                # the function form's first argument (``torch.softmax(logits, -1)``), else the
                # method form's tensor (``logits.softmax(-1)``)
                operand = sub.args[0] if sub.args and isinstance(sub.args[0], ast.Name) else \
                    (callee.value if isinstance(callee, ast.Attribute) else None)
                if isinstance(operand, ast.Name):
                    softmaxed.add(operand.id)
        elif isinstance(sub, ast.AugAssign) and isinstance(sub.op, ast.Add) and isinstance(sub.target, ast.Name) \
                and isinstance(sub.value, ast.Name) and sub.value.id in params:
            added.setdefault(sub.target.id, set()).add(sub.value.id)
        elif isinstance(sub, ast.Assign) and len(sub.targets) == 1 and isinstance(sub.targets[0], ast.Name) \
                and isinstance(sub.value, ast.BinOp) and isinstance(sub.value.op, ast.Add):
            target = sub.targets[0].id
            sides = [sub.value.left, sub.value.right]
            names = [x.id for x in sides if isinstance(x, ast.Name)]
            if target in names:
                added.setdefault(target, set()).update(n for n in names if n in params and n != target)
    return {p for scores, ps in added.items() if scores in softmaxed for p in ps}


def pair_params(func: Callable) -> set[str]:
    """Parameters the function reads as a pairwise representation, [batch, i, j, width]: moved
    to [batch, width, i, j] by ``.permute(0, 3, 1, 2)``, as they are or through one call of a
    module attribute (unimol's ``self.linear_bias(pair).permute(0, 3, 1, 2)``: a bias per head
    for every pair of tokens, added to the scores)."""
    node = _function_def(func)
    if node is None:
        return set()
    params = _param_names(node)
    assigned: dict[str, list[tuple[int, ast.expr | None]]] = defaultdict(list)  # (line, value) per name
    for sub in ast.walk(node):
        if isinstance(sub, ast.Assign) and len(sub.targets) == 1 and isinstance(sub.targets[0], ast.Name):
            assigned[sub.targets[0].id].append((sub.lineno, sub.value))
        elif isinstance(sub, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.For, ast.With, ast.NamedExpr)):
            for target in (sub.targets if isinstance(sub, ast.Assign) else
                           [sub.target] if not isinstance(sub, ast.With) else
                           [i.optional_vars for i in sub.items if i.optional_vars is not None]):
                for name in ast.walk(target):
                    if isinstance(name, ast.Name):
                        assigned[name.id].append((sub.lineno, None))  # bound some other way: not followed
    found = set()
    for sub in ast.walk(node):
        if not (isinstance(sub, ast.Call) and isinstance(sub.func, ast.Attribute) and sub.func.attr == "permute"
                and not sub.keywords and [getattr(a, "value", None) for a in sub.args] == [0, 3, 1, 2]):
            continue
        source = _pair_source(sub.func.value, sub.lineno, params, assigned)
        if source is not None:
            found.add(source)
    return found


_SIZE_READS = ("shape", "size", "dim", "ndim", "numel", "dtype", "device")


def _flow_sources(expr: ast.AST, deps: dict[str, frozenset]) -> frozenset:
    """The parameters whose values ``expr`` reads (through the locals in ``deps``); a size, dtype
    or device read (``x.shape``, ``x.size(1)``) carries no values."""
    if isinstance(expr, ast.Attribute) and expr.attr in _SIZE_READS:
        return frozenset()
    if isinstance(expr, ast.Name):
        return deps.get(expr.id, frozenset())
    out: frozenset = frozenset()
    for child in ast.iter_child_nodes(expr):
        out |= _flow_sources(child, deps)
    return out


def elementwise_partners(func: Callable) -> set[str]:
    """Later parameters whose values the function multiplies elementwise with values of its first
    input and of nothing else (MST's ``v = v * mask_attn``: ``v`` a projection of ``x_in``,
    ``mask_attn`` read from ``mask`` alone): the two operands meet position by position, so the
    later input is maybe shaped as the first is (``LIKE_FIRST``, tried last).  Values flow
    through plain and augmented assignments in line order; a tuple bound from a call over a
    tuple of as many items (``q, k, v, m = map(f, (q, k, v, m))``) pairs them item by item; sizes
    (``x.shape``) carry no values.  A guess of input shapes only: a wrong one costs a try."""
    found = _first_input(func)
    if found is None:
        return set()
    node, first = found
    params = [a.arg for a in [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]
              if a.arg not in ("self", "cls")]
    deps: dict[str, frozenset] = {name: frozenset((name,)) for name in params}
    out: set[str] = set()

    def meet(left: ast.expr, right: ast.expr) -> None:
        a, b = _flow_sources(left, deps), _flow_sources(right, deps)
        for one, other in ((a, b), (b, a)):
            if len(one) == 1 and first not in one and other == {first}:
                out.update(one)

    def bind(target: ast.expr, flow: frozenset) -> None:
        for name in ast.walk(target):
            if isinstance(name, ast.Name):
                deps[name.id] = flow

    compound = (ast.If, ast.For, ast.AsyncFor, ast.While, ast.With, ast.AsyncWith, ast.Try,
                ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    steps = sorted((n for n in ast.walk(node) if isinstance(n, ast.stmt) and not isinstance(n, compound)),
                   key=lambda n: (n.lineno, n.col_offset))
    for step in steps:
        # the products of the statement first, with the values as they were before it binds
        for sub in ast.walk(step):
            if isinstance(sub, ast.BinOp) and isinstance(sub.op, ast.Mult):
                meet(sub.left, sub.right)
        if isinstance(step, ast.AugAssign):
            if isinstance(step.op, ast.Mult):
                meet(step.target, step.value)
            bind(step.target, _flow_sources(step.target, deps) | _flow_sources(step.value, deps))
            continue
        if not isinstance(step, ast.Assign):
            continue
        value = step.value
        for target in step.targets:
            items = value.args[-1] if isinstance(value, ast.Call) and value.args else None
            if isinstance(target, (ast.Tuple, ast.List)) and isinstance(items, (ast.Tuple, ast.List)) \
                    and len(items.elts) == len(target.elts) and not value.keywords:
                shared = frozenset().union(*(_flow_sources(a, deps) for a in [value.func, *value.args[:-1]]))
                flows = [shared | _flow_sources(item, deps) for item in items.elts]
                for sub, flow in zip(target.elts, flows):
                    bind(sub, flow)
            else:
                bind(target, _flow_sources(value, deps))
    return out


def _module_call_arg(value: ast.expr) -> ast.expr | None:
    """The one argument of a call of a module attribute (``self.linear_bias(pair)``), else None."""
    if isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute) \
            and isinstance(value.func.value, ast.Name) and value.func.value.id == "self" \
            and len(value.args) == 1 and not value.keywords:
        return value.args[0]
    return None


def _pair_source(value: ast.expr, at: int, params: set[str], assigned: dict, depth: int = 0) -> str | None:
    """The parameter ``value`` is, through module-attribute calls of one argument and names bound
    once to such a call (tardis' ``pairs = self.norm_pairs(pairs)``, ``w = self.pairs_proj(pairs)``,
    ``w = w.permute(0, 3, 1, 2)``): a parameter counts as itself however rebound (as one read
    directly always did); a local is followed to its last binding on a line before ``at`` (the
    line read), when that is a plain ``=`` to the one name.  A guess of input shapes only: a wrong
    one costs a try, never a verdict."""
    if depth > 4:
        return None
    inner = _module_call_arg(value)
    if inner is not None:
        return _pair_source(inner, at, params, assigned, depth + 1)
    if not isinstance(value, ast.Name):
        return None
    if value.id in params:
        return value.id
    before = [(line, bound) for line, bound in assigned.get(value.id, []) if line < at]
    if not before:
        return None
    line, bound = max(before, key=lambda pair: pair[0])
    return None if bound is None else _pair_source(bound, line, params, assigned, depth + 1)


def input_rank(func: Callable) -> tuple[int | None, bool]:
    """The rank of the first input as the function's own code states it, and whether the code
    states it of that input itself: the names its shape is unpacked into (``b, c, h, w =
    x.shape``; ``b, n, _, y, h = *x.shape, self.heads``: certain), failing that the lowest rank an
    einops pattern of the function takes (``rearrange(t, 'b p n (h d) -> ...')``: likely, since
    the pattern may apply to a tensor computed from it).  (None, False) when the code says nothing."""
    found = _first_input(func)
    if found is None:
        return None, False
    node, first = found
    shapes = {f"{first}.shape"}
    scope = _scope_of(func)

    def is_shape(value: ast.expr) -> bool:
        if isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute) and value.func.attr == "size" \
                and not value.args:
            value = value.func
        return (isinstance(value, ast.Attribute) and ast.unparse(value) in shapes) or (
            isinstance(value, ast.Name) and value.id in shapes)

    unpacked: int | None = None
    patterns: list[int] = []
    own_pattern: int | None = None
    for sub in ast.walk(node):
        if isinstance(sub, ast.Assign) and len(sub.targets) == 1:
            target, value = sub.targets[0], sub.value
            if isinstance(target, ast.Name) and is_shape(value):
                shapes.add(target.id)
            elif isinstance(target, (ast.Tuple, ast.List)) and unpacked is None and \
                    not any(isinstance(e, ast.Starred) for e in target.elts):
                if is_shape(value):
                    unpacked = len(target.elts)
                elif isinstance(value, ast.Tuple) and value.elts and isinstance(value.elts[0], ast.Starred) and \
                        is_shape(value.elts[0].value):
                    unpacked = len(target.elts) - (len(value.elts) - 1)
        elif isinstance(sub, ast.Call) and _einops_call(sub, _EINOPS_PATTERNED, scope) and "->" in sub.args[1].value:
            rank = _einops_rank(sub.args[1].value)
            if rank and isinstance(sub.args[0], ast.Name) and sub.args[0].id == first and own_pattern is None:
                own_pattern = rank  # a pattern applied to the input's own name (first in the walk)
            if rank:
                patterns.append(rank)
    if unpacked:
        return unpacked, True
    own = einsum_ranks(func).get(first)
    if own:
        # the input's own subscripts in torch's einsum (``einsum('b i h d, b j h d -> b h i j', q,
        # k)``), the input not rebound but scaled: stated of the input itself
        return own, True
    own = annotated_ranks(func).get(first)
    if own:
        return own, True  # the axes its annotation names (``Float[Tensor, "*batch heads q_len dim"]``)
    if own_pattern is not None:
        # the input's own name rearranged (``rearrange(x, 'b (w1 p1) (w2 p2) c -> ...')``), maybe
        # rebound first (``x = torch.roll(x, ...)``): likely its rank, before the lowest of the
        # patterns, which may be of a table the function builds (``'h p q -> h 1 1 p q'``)
        return own_pattern, False
    if patterns:
        return min(patterns), False
    rank, certain = indexed_rank(node, first)
    if rank is None:
        rank = _peer_rank(func, first)
        certain = rank is not None
    return rank, certain


def indexed_rank(node: ast.FunctionDef | ast.AsyncFunctionDef, name: str,
                 bound: frozenset[int] = frozenset()) -> tuple[int | None, bool]:
    """The rank of input ``name`` as the code's indexing of it states it, where the function
    never rebinds it: a tuple index with one item per axis, its last a plain ``:`` (``inp[:, :,
    0, :]``: four axes, certain -- a trailing ``:`` is only written to spell every axis out);
    with an ``...`` the items other than it and ``None`` give a least rank, likely, stated only
    above the usual three (``x[..., 0, :, :]``).  Two indexings that disagree state nothing.
    ``bound`` holds the ``ast.Name`` targets (by ``id``) that bind the input itself (a local read
    off a dict argument)."""
    exact: set[int] = set()
    least: set[int] = set()
    kept = {id(sub.targets[0]) for sub in ast.walk(node) if isinstance(sub, ast.Assign) and len(sub.targets) == 1
            and isinstance(sub.targets[0], ast.Name) and sub.targets[0].id == name
            and _rank_kept_of(_sliced_of(sub.value), {name}) == name} | bound
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name) and sub.id == name and isinstance(sub.ctx, (ast.Store, ast.Del)) \
                and id(sub) not in kept:
            # rebound: an index may be of another tensor under the same name (not when it is
            # rebound to itself through rank-keeping methods: ``ids = ids.to(x.device)``)
            return None, False
        if not (isinstance(sub, ast.Subscript) and isinstance(sub.value, ast.Name) and sub.value.id == name
                and isinstance(sub.slice, ast.Tuple) and sub.slice.elts):
            continue
        items = sub.slice.elts
        if any(isinstance(i, ast.Starred) for i in items):
            continue
        axes = [i for i in items if not (isinstance(i, ast.Constant) and i.value is None)]
        dots = [i for i in axes if isinstance(i, ast.Constant) and i.value is Ellipsis]
        if dots:
            least.add(len(axes) - len(dots))
        elif _is_full_slice(items[-1]):
            exact.add(len(axes))
    if len(exact) == 1:
        rank = exact.pop()
        return (rank, True) if not least or max(least) <= rank else (None, False)
    if not exact and least and max(least) > 3:
        return max(least), False
    return None, False


def labels_compared(func: Callable, name: str) -> bool:
    """Whether input ``name`` is a vector of labels: the code's indexing states one axis and it
    compares an indexing of it for equality (``groups[:, None] == groups[None, :]``)."""
    node = _parsed_def(func)
    if node is None or indexed_rank(node, name) != (1, True):
        return False
    for sub in ast.walk(node):
        if isinstance(sub, ast.Compare) and any(isinstance(op, (ast.Eq, ast.NotEq)) for op in sub.ops):
            sides = [sub.left, *sub.comparators]
            if any(isinstance(x, ast.Subscript) and isinstance(x.value, ast.Name) and x.value.id == name
                   for x in sides):
                return True
    return False


def _sliced_of(value: ast.expr) -> ast.expr:
    """What ``value`` slices when it only slices (``x[:, :n, :]``, ``x[1:]``: every axis kept),
    else ``value``."""
    if isinstance(value, ast.Subscript):
        items = value.slice.elts if isinstance(value.slice, ast.Tuple) else [value.slice]
        if items and all(isinstance(i, ast.Slice) for i in items):
            return value.value
    return value


def subscript_keys(func: Callable, name: str, module: nn.Module) -> dict[str, str] | None:
    """The keys the code reads argument ``name`` by, each with the local it binds (``query =
    inputs["query"]``, or a key the module holds as a string: ``inputs[self._query_name]``), when
    every use of ``name`` is such a read (a dict of named tensors); else None."""
    node = _parsed_def(func)
    if node is None:
        return None
    out: dict[str, str] = {}
    reads: set[int] = set()
    for sub in ast.walk(node):
        if not (isinstance(sub, ast.Assign) and len(sub.targets) == 1 and isinstance(sub.targets[0], ast.Name)
                and isinstance(sub.value, ast.Subscript) and isinstance(sub.value.value, ast.Name)
                and sub.value.value.id == name):
            continue
        key = sub.value.slice
        if isinstance(key, ast.Constant) and isinstance(key.value, str):
            value = key.value
        elif isinstance(key, ast.Attribute) and isinstance(key.value, ast.Name) and key.value.id == "self" \
                and isinstance(getattr(module, key.attr, None), str):
            value = getattr(module, key.attr)
        else:
            return None
        out[value] = sub.targets[0].id
        reads.add(id(sub.value.value))
    uses = [sub for sub in ast.walk(node) if isinstance(sub, ast.Name) and sub.id == name]
    if not out or any(id(u) not in reads for u in uses):
        return None
    return out


def keyed_dicts(func: Callable, keyed: dict[str, str], b: int, s: int, widths: list[int],
                randn: Callable) -> list[dict[str, torch.Tensor]]:
    """Dicts for :func:`subscript_keys`' keys: a local named for lengths gets lengths per sample
    (the full length and shorter ones, below it), one named for a mask a padding mask, one whose
    indexing states its rank a tensor of that rank, any other one [batch, tokens, width] or
    [batch, width]; a local the code unsqueezes to meet one of stated rank in a batched product one
    axis less than that; one dict per width, then the unknown ranks the other way round."""
    node = _parsed_def(func)
    lengths = torch.clamp(s - 2 * torch.arange(b), min=1)
    ranks: dict[str, int] = {}
    bound = frozenset(id(sub.targets[0]) for sub in ast.walk(node) if isinstance(sub, ast.Assign)
                      and len(sub.targets) == 1 and isinstance(sub.targets[0], ast.Name)
                      and isinstance(sub.value, ast.Subscript)) if node is not None else frozenset()
    for local in keyed.values():
        rank, certain = indexed_rank(node, local, bound) if node is not None else (None, False)
        if certain and rank is not None and 2 <= rank <= 4:
            ranks[local] = rank
    for sub in ast.walk(node) if node is not None else ():
        # a local made one axis deeper to meet a local of stated rank in a batched product
        # (``torch.matmul(seq, query.unsqueeze(2))``): one axis less than that local
        pair = _matmul_operands(sub)
        for one, other in (pair, pair[::-1]) if pair else ():
            if isinstance(one, ast.Call) and isinstance(one.func, ast.Attribute) and one.func.attr == "unsqueeze" \
                    and isinstance(one.func.value, ast.Name) and one.func.value.id in keyed.values() \
                    and one.func.value.id not in ranks and isinstance(other, ast.Name) \
                    and (other.id in keyed.values() or other.id in ranks) and ranks.get(other.id, 3) >= 3:
                # (a peer of no stated rank itself: the usual [batch, tokens, width] for it)
                ranks.setdefault(other.id, 3)
                ranks[one.func.value.id] = ranks[other.id] - 1
    out = []
    unknown = any(local not in ranks for local in keyed.values())
    for flip in (False, True) if unknown else (False,):
        for width in widths[:2]:
            made: dict[str, torch.Tensor] = {}
            for key, local in keyed.items():
                lowered = local.lower()
                if "length" in lowered or lowered.endswith(("len", "lens")):
                    made[key] = lengths.clone()
                    continue
                if "mask" in lowered:
                    made[key] = mask_values("bool_padding", b, s)
                    continue
                rank = ranks.get(local)
                if rank is not None:
                    made[key] = randn(b, *([s] * (rank - 2)), width)
                else:
                    made[key] = randn(b, width) if flip else randn(b, s, width)
            out.append(made)
    return out


def _is_full_slice(item: ast.expr) -> bool:
    """``:`` (``::``): every position of an axis."""
    return isinstance(item, ast.Slice) and item.lower is None and item.upper is None and item.step is None


def shape_ranks(func: Callable) -> dict[str, int]:
    """Parameters whose shape the function's own code unpacks into names, each with the count
    of those names (``batch, chunks, neighbors, length, width = e.shape``, or ``.size()``): the
    rank the code states of that input itself, whichever argument it is; a parameter unpacked
    twice with different counts (or through a starred name) states none."""
    node = _function_def(func)
    if node is None:
        return {}
    found: dict[str, set[int]] = {}
    for owner, elts in _shape_unpackings(node):
        count = -1 if any(isinstance(e, ast.Starred) for e in elts) else len(elts)
        found.setdefault(owner, set()).add(count)
    return {name: counts.pop() for name, counts in found.items() if len(counts) == 1 and -1 not in counts}


def _shape_unpackings(node: ast.FunctionDef | ast.AsyncFunctionDef):
    """(parameter, target elements) of each ``a, b, c = x.size()`` (or ``= x.shape``) in the
    function whose ``x`` is one of its parameters: what shape_ranks and _unpacked_shapes read."""
    params = _param_names(node)
    for sub in ast.walk(node):
        if not (isinstance(sub, ast.Assign) and len(sub.targets) == 1
                and isinstance(sub.targets[0], (ast.Tuple, ast.List))):
            continue
        value = sub.value
        if isinstance(value, ast.Call) and not value.args and not value.keywords \
                and isinstance(value.func, ast.Attribute) and value.func.attr == "size":
            value = value.func
        elif not (isinstance(value, ast.Attribute) and value.attr == "shape"):
            continue
        owner = value.value
        if isinstance(owner, ast.Name) and owner.id in params:
            yield owner.id, sub.targets[0].elts


_SHAPE_WORD = re.compile(r"(\.\.\.|[#*_]*[A-Za-z0-9_]+(=[A-Za-z0-9_+\-*/ ]+)?)")


def annotated_ranks(func: Callable) -> dict[str, int]:
    """Parameters annotated with the axes they hold, as array-typing annotations write them
    (``query: Float[torch.Tensor, "*batch group hpg q_len dim"]``: a subscript whose last item is
    a string of axis names), each with the count of its named axes -- the rank with any
    variadic axes (``*batch``, ``...``) taken as none; a name that is not an axis makes no rank."""
    node = _function_def(func)
    if node is None:
        return {}
    out: dict[str, int] = {}
    for arg in [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]:
        annotation = arg.annotation
        if not isinstance(annotation, ast.Subscript) or not isinstance(annotation.slice, ast.Tuple) \
                or len(annotation.slice.elts) < 2:
            continue
        last = annotation.slice.elts[-1]
        if not (isinstance(last, ast.Constant) and isinstance(last.value, str)):
            continue
        words = last.value.split()
        if not words or not all(_SHAPE_WORD.fullmatch(w) for w in words):
            continue
        fixed = [w for w in words if w != "..." and not w.lstrip("#_").startswith("*")]
        if fixed:
            out[arg.arg] = len(fixed)
    return out


def _einops_axes(pattern: str) -> list[list[str]] | None:
    """The input side of an einops pattern as one list of names per axis (``'b c (h p1) w'`` ->
    ``[['b'], ['c'], ['h', 'p1'], ['w']]``); None with ``...``, several inputs or a bad pattern."""
    left = pattern.split("->", 1)[0].strip()
    if not left or "..." in left or "," in left:
        return None
    axes: list[list[str]] = []
    group: list[str] | None = None
    for token in re.findall(r"\(|\)|[^\s()]+", left):
        if token == "(":
            if group is not None:
                return None
            group = []
        elif token == ")":
            if group is None:
                return None
            axes.append(group)
            group = None
        elif group is not None:
            group.append(token)
        else:
            axes.append([token])
    return axes if group is None else None


def _size_value(node: ast.expr, module: nn.Module, env: dict[str, ast.expr], depth: int = 0) -> int | None:
    """The positive integer ``node`` holds, read from the module itself: a literal, ``self.attr``
    (``self.resolution[0]``), a name bound to one of those in the function (``block =
    self.block_size``, or beside the shape in ``b, c, h, w, block = *x.shape, self.block_size``),
    and ``+ - * // **`` of those; None for anything else."""
    if depth > 8:
        return None
    value: Any = None
    if isinstance(node, ast.Constant) and is_int(node.value):
        value = node.value
    elif isinstance(node, ast.Name) and node.id in env:
        return _size_value(env[node.id], module, env, depth + 1)
    elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self":
        value = getattr(module, node.attr, None)
    elif isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant) and is_int(node.slice.value) \
            and isinstance(node.value, ast.Attribute) and isinstance(node.value.value, ast.Name) \
            and node.value.value.id == "self":
        held = getattr(module, node.value.attr, None)
        if isinstance(held, (tuple, list)) and -len(held) <= node.slice.value < len(held):
            value = held[node.slice.value]
    elif isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub, ast.Mult, ast.FloorDiv, ast.Pow)):
        left, right = _size_value(node.left, module, env, depth + 1), _size_value(node.right, module, env, depth + 1)
        if left is None or right is None or (isinstance(node.op, ast.FloorDiv) and right == 0) \
                or (isinstance(node.op, ast.Pow) and right > 4):
            return None
        value = {ast.Add: left + right, ast.Sub: left - right, ast.Mult: left * right}.get(type(node.op)) \
            if not isinstance(node.op, (ast.FloorDiv, ast.Pow)) else \
            (left // right if isinstance(node.op, ast.FloorDiv) else left ** right)
    return value if is_int(value) and 0 < value <= 1 << 16 else None


def none_tested(func: Callable) -> set[str]:
    """The parameters the function's code tests for None: ``memory is not None``, or through a
    function of its module that is that test and nothing else (``exists(memory)`` with ``def
    exists(val): return val is not None``).  A required one may be None when its caller has
    nothing to hand (a memory before the first segment)."""
    node = _function_def(func)
    if node is None:
        return set()
    params = _param_names(node)
    out: set[str] = set()
    namespace = getattr(func, "__globals__", {})
    for inner in ast.walk(node):
        if isinstance(inner, ast.Compare) and isinstance(inner.left, ast.Name) and len(inner.ops) == 1 \
                and isinstance(inner.ops[0], (ast.Is, ast.IsNot)) and isinstance(inner.comparators[0], ast.Constant) \
                and inner.comparators[0].value is None and inner.left.id in params:
            out.add(inner.left.id)
        elif isinstance(inner, ast.Call) and isinstance(inner.func, ast.Name) and len(inner.args) == 1 \
                and not inner.keywords and isinstance(inner.args[0], ast.Name) and inner.args[0].id in params \
                and _is_none_test(namespace.get(inner.func.id)):
            out.add(inner.args[0].id)
    return out


def asserted_given(func: Callable) -> set[str]:
    """The optional parameters the function's own body asserts are given on the way to its end
    (``assert pos_emb is not None, "... needs the relative pos_emb"`` as a statement of the body
    itself, not under a branch): the function cannot finish without them, so they are inputs to
    guess like the required ones."""
    node = _function_def(func)
    if node is None:
        return set()
    params = _param_names(node)
    out: set[str] = set()
    for stmt in node.body:
        if isinstance(stmt, ast.Assert):
            out.update(asserted_not_none(stmt, params))
    return out


def asserted_not_none(stmt: ast.Assert, names) -> list[str]:
    """The names of ``names`` that ``stmt`` states are not None (``assert p is not None``, or a
    clause of ``assert p is not None and q is not None and ...``), in the order written: the
    one reading :func:`asserted_given` and :func:`asserted_at` share."""
    test = stmt.test
    tests = test.values if isinstance(test, ast.BoolOp) and isinstance(test.op, ast.And) else [test]
    out: list[str] = []
    for one in tests:
        if isinstance(one, ast.Compare) and isinstance(one.left, ast.Name) and one.left.id in names \
                and len(one.ops) == 1 and isinstance(one.ops[0], ast.IsNot) \
                and isinstance(one.comparators[0], ast.Constant) and one.comparators[0].value is None \
                and one.left.id not in out:
            out.append(one.left.id)
    return out


def _is_none_test(helper: Any) -> bool:
    """Is ``helper`` a function of one parameter whose body is ``return p is not None`` (or
    ``is None``)?"""
    if not inspect.isfunction(helper):
        return False
    node = _function_def(helper)
    if node is None or len(node.body) != 1 or not isinstance(node.body[0], ast.Return):
        return False
    args = node.args
    if len(args.args) != 1 or args.posonlyargs or args.kwonlyargs or args.vararg or args.kwarg:
        return False
    value = node.body[0].value
    return isinstance(value, ast.Compare) and isinstance(value.left, ast.Name) and value.left.id == args.args[0].arg \
        and len(value.ops) == 1 and isinstance(value.ops[0], (ast.Is, ast.IsNot)) \
        and isinstance(value.comparators[0], ast.Constant) and value.comparators[0].value is None


def _first_input(func: Callable) -> tuple[ast.FunctionDef | ast.AsyncFunctionDef, str] | None:
    """The function's definition and the name of its first input (after ``self`` / ``cls``);
    None when its source is not found or it takes no input."""
    node = _function_def(func)
    if node is None:
        return None
    params = [a.arg for a in [*node.args.posonlyargs, *node.args.args]]
    if params and params[0] in ("self", "cls"):
        params = params[1:]
    return (node, params[0]) if params else None


def channels_first(func: Callable) -> bool:
    """The function's own code rearranges its first input from a channel-first map, moving the
    second axis last (``x = rearrange(x, 'b c h w -> b h w c')``, metnet3's cross-covariance
    attention): the input is [batch, channels, height, width], its channels the model's width."""
    found = _first_input(func)
    if found is None:
        return False
    node, first = found
    scope = _scope_of(func)
    for sub in ast.walk(node):
        if isinstance(sub, ast.Call) and _einops_call(sub, ("rearrange",), scope) \
                and isinstance(sub.args[0], ast.Name) and sub.args[0].id == first:
            left, _, right = sub.args[1].value.partition("->")
            axes, out = left.split(), right.replace("(", " ").replace(")", " ").split()
            return len(axes) == 4 and all(a.isidentifier() for a in axes) and bool(out) and out[-1] == axes[1]
    return False


def _unpacked_shapes(node: ast.FunctionDef | ast.AsyncFunctionDef) -> dict[str, list[str]]:
    """Each parameter whose shape the code unpacks into plain names (``t, b, c = x.size()``, or
    ``x.shape``), with those names, the first unpacking of each."""
    found: dict[str, list[str]] = {}
    for owner, elts in _shape_unpackings(node):
        if all(isinstance(e, ast.Name) for e in elts):
            found.setdefault(owner, [e.id for e in elts])
    return found


def batch_second(func: Callable) -> bool:
    """The function's own code states its first input sequence-first, [seq, batch, width]: it
    unpacks that input's shape into three names and compares the second of them for equality
    with the first size it unpacks of a later input (fairseq-style attention's
    ``t, b, c = query.size()``, ``mask_b, s = key_padding_mask.size()``, ``assert b == mask_b``):
    the axis the two inputs share is the batch, so a batch-first guess cannot fit."""
    found = _first_input(func)
    if found is None:
        return False
    node, first = found
    shapes = _unpacked_shapes(node)
    own = shapes.get(first)
    if own is None or len(own) != 3:
        return False
    leads = {names[0] for name, names in shapes.items() if name != first}
    later = _param_names(node) - {first, "self", "cls"}
    firsts: set = set()  # later inputs whose first size is compared with the first input's second
    seconds: set = set()  # ... whose second size is (a square mask: ``size(0) == n == size(1)``)
    for sub in ast.walk(node):
        if isinstance(sub, ast.Compare) and len(sub.ops) == 1 and isinstance(sub.ops[0], ast.Eq):
            sides = {getattr(sub.left, "id", None), getattr(sub.comparators[0], "id", None)}
            if own[1] not in sides:
                continue
            if sides & leads:
                return True
            for side in (sub.left, sub.comparators[0]):
                firsts.add(_first_size_of(side))
                seconds.add(_size_of(side, 1))
    # (a batch-first input's square [n, n] mask compares both its sizes with the length n:
    # no batch axis is stated by it)
    return bool((firsts - seconds) & later)


def _first_size_of(expr: ast.expr) -> str | None:
    """The parameter whose first size ``expr`` reads (``mask.size(0)``, ``mask.shape[0]``), else
    None: fairseq-style attention's ``assert key_padding_mask.size(0) == bsz`` states the axis a
    later input shares with the first as plainly as an unpacking does."""
    return _size_of(expr, 0)


def _size_of(expr: ast.expr, axis: int) -> str | None:
    """The parameter whose size at ``axis`` ``expr`` reads (``mask.size(axis)``,
    ``mask.shape[axis]``), else None."""
    if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute) and expr.func.attr == "size" \
            and len(expr.args) == 1 and not expr.keywords and isinstance(expr.args[0], ast.Constant) \
            and expr.args[0].value == axis and isinstance(expr.func.value, ast.Name):
        return expr.func.value.id
    if isinstance(expr, ast.Subscript) and isinstance(expr.value, ast.Attribute) and expr.value.attr == "shape" \
            and isinstance(expr.slice, ast.Constant) and expr.slice.value == axis \
            and isinstance(expr.value.value, ast.Name):
        return expr.value.value.id
    return None


def _differenced(node: ast.AST, name: str) -> bool:
    """Whether the code takes the differences of consecutive items of ``name``
    (``name[1:] - name[:-1]``): boundaries of packed sequences, cumulative lengths."""
    def sliced(expr: ast.expr, lower: int | None, upper: int | None) -> bool:
        if not (isinstance(expr, ast.Subscript) and isinstance(expr.value, ast.Name) and expr.value.id == name
                and isinstance(expr.slice, ast.Slice) and expr.slice.step is None):
            return False
        ends = []
        for end in (expr.slice.lower, expr.slice.upper):
            if end is None:
                ends.append(None)
                continue
            value = ast.literal_eval(end) if isinstance(end, (ast.Constant, ast.UnaryOp)) else "?"
            ends.append(value)
        return ends == [lower, upper]

    return any(isinstance(sub, ast.BinOp) and isinstance(sub.op, ast.Sub) and sliced(sub.left, 1, None)
               and sliced(sub.right, None, -1) for sub in ast.walk(node))


def offsets_params(func: Callable, module: nn.Module) -> set[str]:
    """Parameters the function (or a method of the module's own it hands them to as they are)
    reads as cumulative boundaries of sequences packed along the first input's first axis
    (``seqlens = cu_seqlens[1:] - cu_seqlens[:-1]``, varlen attention): such an input, even one
    that defaults to None, is offsets ``[0, ..., rows]``, never a tensor of hidden states."""
    node = _function_def(func)
    if node is None:
        return set()
    params = _param_names(node)
    found = {name for name in params if _differenced(node, name)}
    for sub in ast.walk(node):
        if not (isinstance(sub, ast.Call) and isinstance(sub.func, ast.Attribute)
                and isinstance(sub.func.value, ast.Name) and sub.func.value.id == "self"):
            continue
        method = getattr(type(module), sub.func.attr, None)
        inner_node = _function_def(method) if inspect.isfunction(method) else None
        if inner_node is None:
            continue
        inner = [a.arg for a in [*inner_node.args.posonlyargs, *inner_node.args.args]]
        if inner and inner[0] == "self":
            inner = inner[1:]
        handed = [(inner[i], a) for i, a in enumerate(sub.args) if i < len(inner)]
        handed += [(k.arg, k.value) for k in sub.keywords if k.arg]
        for inner_name, arg in handed:
            if isinstance(arg, ast.Name) and arg.id in params and _differenced(inner_node, inner_name):
                found.add(arg.id)
    return found


def packed_offsets(rows: int) -> torch.Tensor:
    """Cumulative boundaries of two sequences of unequal lengths packed into ``rows`` rows
    (int32, as varlen kernels take them)."""
    cut = max(1, rows // 2 - 1)
    return torch.tensor([0, cut, rows], dtype=torch.int32)


def linear_operands(func: Callable) -> dict[str, tuple[str, int]]:
    """Parameters the function hands to a linear function (``F.linear(x, w, b)``,
    ``torch._C._nn.linear``; not a layer of its own) as its weight or its bias, each with the
    count of chunks the result is split into along its last axis (``.chunk(3, dim=-1)``: a packed
    q/k/v projection), 1 when it is not: raw weights handed in with the input."""
    node = _function_def(func)
    if node is None:
        return {}
    params = _param_names(node)

    def is_linear(call: ast.AST) -> bool:
        if not isinstance(call, ast.Call) or _last_name(call.func) != "linear" or call.keywords:
            return False
        root = call.func
        while isinstance(root, ast.Attribute):
            root = root.value
        return not (isinstance(root, ast.Name) and root.id == "self") and isinstance(call.func, ast.Attribute)

    chunks: dict[int, int] = {}
    for sub in ast.walk(node):
        if isinstance(sub, ast.Call) and isinstance(sub.func, ast.Attribute) and sub.func.attr == "chunk" \
                and is_linear(sub.func.value) and sub.args and isinstance(sub.args[0], ast.Constant) \
                and type(sub.args[0].value) is int:
            chunks[id(sub.func.value)] = sub.args[0].value
    out: dict[str, tuple[str, int]] = {}
    for sub in ast.walk(node):
        if is_linear(sub):
            for role, arg in zip(("weight", "bias"), sub.args[1:3]):
                if isinstance(arg, ast.Name) and arg.id in params:
                    out[arg.id] = (role, chunks.get(id(sub), 1))
    return out


def divisor_params(func: Callable) -> set[str]:
    """Parameters the code divides by with a floor division (``C // n_head``) and never reads as
    a tensor or an object (no attribute, index or call of theirs): a count."""
    node = _function_def(func)
    if node is None:
        return set()
    params = _param_names(node)
    divisors: set[int] = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.BinOp) and isinstance(sub.op, ast.FloorDiv) and isinstance(sub.right, ast.Name) \
                and sub.right.id in params:
            divisors.add(id(sub.right))
    return _read_as_numbers(node, divisors)


def _read_as_numbers(node: ast.AST, taken: set[int]) -> set[str]:
    """The names of the ``ast.Name`` nodes whose ids are ``taken`` (a parameter in a place that
    only takes a number) that ``node`` never reads as a tensor or an object (no attribute, index
    or call of theirs) and never rebinds."""
    found = {sub.id for sub in ast.walk(node) if isinstance(sub, ast.Name) and id(sub) in taken}
    for sub in ast.walk(node):
        held = sub.value if isinstance(sub, (ast.Attribute, ast.Subscript)) else \
            sub.func if isinstance(sub, ast.Call) else None
        if isinstance(held, ast.Name):
            found.discard(held.id)
        elif isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
            found.discard(sub.id)
    return found


def math_params(func: Callable) -> set[str]:
    """Parameters the code hands to a function of Python's ``math`` module (``math.sqrt(d_k)``
    in ``scores = q @ k.T / math.sqrt(d_k)``) and never reads as a tensor or an object (no
    attribute, index or call of theirs, never reassigned): a number, since ``math`` takes no
    tensor of more than one element.  Only a name that resolves to the ``math`` module itself
    counts (a module's own ``math`` object is not read so)."""
    node = _function_def(func)
    if node is None:
        return set()
    params = {a.arg for a in [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]}
    taken: set[int] = set()
    scope = None
    for sub in ast.walk(node):
        if isinstance(sub, ast.Call) and isinstance(sub.func, ast.Attribute) \
                and isinstance(sub.func.value, ast.Name) and len(sub.args) == 1 and not sub.keywords \
                and isinstance(sub.args[0], ast.Name) and sub.args[0].id in params:
            if scope is None:
                scope = _scope_of(func)
            bound = scope.get(sub.func.value.id)
            if bound is math or (isinstance(bound, _ImportedName) and bound.__module__ == "math"):
                taken.add(id(sub.args[0]))
    return _read_as_numbers(node, taken) if taken else set()


def divided_params(func: Callable) -> dict[str, str]:
    """For a divisor (``divisor_params``) whose floor division's dividend is another parameter
    of the function (``n_heads // kv_n_heads``, the query heads over the key/value heads that each
    group shares): that parameter's name.  Such a count may equal its dividend (a quotient of 1:
    every query head its own key/value head), the form in which inputs of one width fit both (a
    key split into ``kv_n_heads`` heads of the query's head width is narrower than the query
    otherwise, which guessed inputs of one width are not)."""
    node = _function_def(func)
    if node is None:
        return {}
    params = _param_names(node)
    out: dict[str, str] = {}
    for sub in ast.walk(node):
        if isinstance(sub, ast.BinOp) and isinstance(sub.op, ast.FloorDiv) and isinstance(sub.right, ast.Name) \
                and sub.right.id in params and isinstance(sub.left, ast.Name) and sub.left.id in params \
                and sub.left.id != sub.right.id:
            out.setdefault(sub.right.id, sub.left.id)
    return out


def applied_params(func: Callable) -> set[str]:
    """Parameters the function only ever calls, each time on one tensor and nothing else
    (``query_repr = model(img_query)``: a backbone handed in): an identity stands in for them (the
    original and the patched module get the same one), so the inputs reach the module's own
    layers as they are.  A parameter read any other way (an attribute, handed on, called with
    more) is not one."""
    node = _function_def(func)
    if node is None:
        return set()
    params = _param_names(node)
    called: set[str] = set()
    as_callee: set[int] = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Call) and isinstance(sub.func, ast.Name) and sub.func.id in params \
                and len(sub.args) == 1 and not sub.keywords and not isinstance(sub.args[0], ast.Starred):
            called.add(sub.func.id)
            as_callee.add(id(sub.func))
    if not called:
        return set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name) and sub.id in called and id(sub) not in as_callee:
            called.discard(sub.id)  # read (or rebound) another way too
    return called


def handed_method(func: Callable, module: nn.Module) -> Callable | None:
    """The module's own method the function hands its first input to as it is, when that is all
    the function states of it (``def forward(self, x): q, k, v = self.forward_conv(x)``): the
    input's shape is then what that method demands.  The first input must not be rebound before
    the call (``x = self.attn(x)`` is fine: the call sees the input), nor inside a loop; the first
    such call is taken."""
    found = _first_input(func)
    if found is None:
        return None
    node, first = found
    rebound = [sub for sub in ast.walk(node)
               if isinstance(sub, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.NamedExpr, ast.For, ast.With))
               and any(isinstance(n, ast.Name) and n.id == first and isinstance(n.ctx, ast.Store)
                       for n in ast.walk(sub))]
    calls = sorted((sub for sub in ast.walk(node) if isinstance(sub, ast.Call)),
                   key=lambda c: (c.lineno, c.col_offset))
    if any(isinstance(n, (ast.For, ast.AsyncFor, ast.While)) for n in ast.walk(node)):
        return None  # a loop may rebind it on the way round
    for call in calls:
        if any(stmt.lineno <= call.lineno and not any(n is call for n in ast.walk(stmt)) for stmt in rebound):
            return None  # rebound before the call: the method sees another tensor
        if isinstance(call.func, ast.Attribute) and isinstance(call.func.value, ast.Name) \
                and call.func.value.id == "self" and call.args and isinstance(call.args[0], ast.Name) \
                and call.args[0].id == first:
            held = getattr(type(module), call.func.attr, None)
            if inspect.isfunction(held) and held is not getattr(func, "__func__", func):
                return getattr(module, call.func.attr)
    return None


def shape_constraints(func: Callable, module: nn.Module,
                      depth: int = 0) -> tuple[int, dict[int, tuple[str, int]]] | None:
    """What the function's own code demands of its first input's axes, read against the built
    module: (rank, {axis: ("eq", n) or ("div", n)}).  The axes are named where the code unpacks
    the shape (``b, c, h, w, block = *x.shape, self.block_size``); the demands come from an
    ``assert`` or an ``if ...: raise`` on those names (``h % block == 0``, ``c == self.dim``)
    and from an einops pattern applied to the input itself (``rearrange(x, 'b c (h p1) (w p2)
    -> ...', p1=block)``: axis 2 a multiple of the block; ``'b n (h d)', h=heads``: the last a
    multiple of the heads).  None when the code states none."""
    found = _first_input(func)
    if found is None:
        return None
    node, first = found
    env: dict[str, ast.expr] = {}
    axes: dict[str, int] = {}
    rank: int | None = None
    calls: list[ast.Call] = []
    tests: list[ast.expr] = []

    def is_shape(value: ast.expr) -> bool:
        if isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute) and value.func.attr == "size" \
                and not value.args:
            value = value.func
        return isinstance(value, ast.Attribute) and value.attr == "shape" and isinstance(value.value, ast.Name) \
            and value.value.id == first

    for sub in ast.walk(node):
        if isinstance(sub, ast.Assign) and len(sub.targets) == 1:
            target, value = sub.targets[0], sub.value
            if isinstance(target, ast.Name):
                env.setdefault(target.id, value)
            elif isinstance(target, (ast.Tuple, ast.List)) and rank is None and \
                    not any(isinstance(e, ast.Starred) for e in target.elts):
                names = [e.id if isinstance(e, ast.Name) else "" for e in target.elts]
                extra: list[ast.expr] = []
                if is_shape(value):
                    count = len(names)
                elif isinstance(value, ast.Tuple) and value.elts and isinstance(value.elts[0], ast.Starred) \
                        and is_shape(value.elts[0].value) \
                        and not any(isinstance(e, ast.Starred) for e in value.elts[1:]):
                    extra = value.elts[1:]
                    count = len(names) - len(extra)
                else:
                    continue
                if count < 1:
                    continue
                rank = count
                axes = {n: i for i, n in enumerate(names[:count]) if n and n != "_"}
                for n, expr in zip(names[count:], extra):
                    if n:
                        env.setdefault(n, expr)
        elif isinstance(sub, ast.Assert):
            tests.append(sub.test)
        elif isinstance(sub, ast.If) and len(sub.body) == 1 and isinstance(sub.body[0], ast.Raise):
            tests.append(ast.UnaryOp(ast.Not(), sub.test))
        elif isinstance(sub, ast.Call) and len(sub.args) >= 2 and isinstance(sub.args[0], ast.Name) \
                and sub.args[0].id == first and isinstance(sub.args[1], ast.Constant) \
                and isinstance(sub.args[1].value, str) and "->" in sub.args[1].value:
            calls.append(sub)
    out: dict[int, tuple[str, int]] = {}

    def demand(axis: int, kind: str, value: int) -> None:
        held = out.get(axis)
        if held is None or held == (kind, value):
            out[axis] = (kind, value)
        elif held[0] == "div" and kind == "div":
            out[axis] = ("div", held[1] * value // math.gcd(held[1], value))
        elif kind == "eq":
            out[axis] = (kind, value)

    def holds(test: ast.expr, negated: bool) -> Iterator[ast.Compare]:
        """The comparisons that hold when the code goes on (``assert a and b``; ``if a or b: raise``)."""
        if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
            yield from holds(test.operand, not negated)
        elif isinstance(test, ast.BoolOp) and isinstance(test.op, ast.Or if negated else ast.And):
            for value in test.values:
                yield from holds(value, negated)
        elif isinstance(test, ast.Compare) and len(test.ops) == 1:
            op = test.ops[0]
            if isinstance(op, ast.NotEq if negated else ast.Eq):
                yield test

    for test in tests:
        for compare in holds(test, False):
            left, right = compare.left, compare.comparators[0]
            for a, b in ((left, right), (right, left)):
                if isinstance(a, ast.Name) and a.id in axes:
                    value = _size_value(b, module, env)
                    if value is not None:
                        demand(axes[a.id], "eq", value)
                elif isinstance(a, ast.BinOp) and isinstance(a.op, ast.Mod) and isinstance(a.left, ast.Name) \
                        and a.left.id in axes and isinstance(b, ast.Constant) and b.value == 0:
                    value = _size_value(a.right, module, env)
                    if value is not None:
                        demand(axes[a.left.id], "div", value)
    scope = _scope_of(func)
    for call in calls:
        if not _einops_call(call, _EINOPS_READERS, scope):
            continue
        pattern = _einops_axes(call.args[1].value)
        if pattern is None or (rank is not None and len(pattern) != rank):
            continue
        rank = len(pattern)
        given = {k.arg: k.value for k in call.keywords if k.arg}
        for axis, group in enumerate(pattern):
            sizes = [_size_value(given[n], module, env) if n in given else None for n in group]
            known = [s for s in sizes if s is not None]
            if not known:
                continue
            product = math.prod(known)
            demand(axis, "eq" if len(known) == len(group) else "div", product)
    if not out and depth < 2:
        handed = handed_method(func, module)
        if handed is not None:
            return shape_constraints(handed, module, depth + 1)
    return (rank, out) if rank and out else None


def constrained(t: torch.Tensor, constraints: dict[int, tuple[str, int]]) -> torch.Tensor | None:
    """``t`` with its axes resized as ``constraints`` demand (``eq``: that size; ``div``: the
    nearest multiple at or above its size), or None when it already meets them or would grow
    past ``MAX_REPAIR_ELEMENTS``."""
    shape = list(t.shape)
    for axis, (kind, value) in constraints.items():
        if not 0 <= axis < len(shape):
            return None
        shape[axis] = value if kind == "eq" else value * max(1, -(-shape[axis] // value))
    if shape == list(t.shape) or math.prod(shape) > MAX_REPAIR_ELEMENTS:
        return None
    generator = torch.Generator().manual_seed(4321)
    if t.is_floating_point():
        return torch.randn(shape, generator=generator, dtype=t.dtype)
    return torch.zeros(shape, dtype=t.dtype)


def _last_name(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return ""


def _sequence_node(node: ast.expr) -> tuple[str, int | None] | None:
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):  # ``list[int] | None``
        sides = [n for n in (node.left, node.right) if not (isinstance(n, ast.Constant) and n.value is None)]
        return _sequence_node(sides[0]) if len(sides) == 1 else None
    if not isinstance(node, ast.Subscript):
        return None
    outer = _last_name(node.value)
    if outer == "Optional":
        return _sequence_node(node.slice)
    if outer.lower() not in ("list", "tuple", "sequence", "mutablesequence"):
        return None
    elements = list(node.slice.elts) if isinstance(node.slice, ast.Tuple) else [node.slice]
    arity: int | None = None
    if outer.lower() == "tuple" and not (len(elements) == 2 and isinstance(elements[1], ast.Constant)
                                         and elements[1].value is Ellipsis):
        arity = len(elements)
    else:
        elements = elements[:1]
    kinds = {_last_name(e) for e in elements}
    if kinds == {"int"}:
        return "int", arity
    if kinds == {"Tensor"}:
        return "tensor", arity
    return None


def may_be_none(annotation: Any) -> bool:
    """Does a parameter's annotation say it may be None: ``Optional[X]``, ``X | None``,
    ``Union[X, None]`` (written or as a string under ``from __future__ import annotations``)?"""
    if annotation is inspect.Parameter.empty or annotation is None:
        return False
    text = annotation if isinstance(annotation, str) else inspect.formatannotation(annotation)
    try:
        node = ast.parse(text, mode="eval").body
        if isinstance(node, ast.Constant) and isinstance(node.value, str):  # a quoted one
            node = ast.parse(node.value, mode="eval").body
    except SyntaxError:
        return False
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        sides = [node.left, node.right]
    elif isinstance(node, ast.Subscript) and _last_name(node.value) == "Optional":
        return True
    elif isinstance(node, ast.Subscript) and _last_name(node.value) == "Union":
        sides = list(node.slice.elts) if isinstance(node.slice, ast.Tuple) else [node.slice]
    else:
        return False
    return any(isinstance(n, ast.Constant) and n.value is None for n in sides)


def sequence_of(annotation: Any) -> tuple[str, int | None] | None:
    """What a parameter's annotation says it holds when it is a sequence of ints or of tensors:
    ``("int", 3)`` for ``tuple[int, int, int]``, ``("int", None)`` for ``list[int]`` or
    ``tuple[int, ...]``, ``("tensor", None)`` for ``list[torch.Tensor]`` (written or as a string
    under ``from __future__ import annotations``); None for anything else."""
    if annotation is inspect.Parameter.empty or annotation is None:
        return None
    text = annotation if isinstance(annotation, str) else inspect.formatannotation(annotation)
    try:
        node = ast.parse(text, mode="eval").body
    except SyntaxError:
        return None
    return _sequence_node(node)


def grids(count: int, axes: int) -> list[tuple[int, ...]]:
    """Grid shapes of ``axes`` sides for ``count`` tokens, and for ``count - 1`` (a class token
    ahead of the grid): the sides as equal as the count allows."""
    out: list[tuple[int, ...]] = []
    for n in (count, count - 1):
        if n < 1:
            continue
        sides: list[int] = []
        left = n
        for axis in range(axes, 0, -1):
            side = max(d for d in range(1, left + 1) if left % d == 0 and d <= round(left ** (1 / axis)) + 1e-9) \
                if axis > 1 else left
            sides.append(side)
            left //= side
        shape = tuple(sorted(sides))
        if shape not in out:
            out.append(shape)
    return out


def zipped_layers(func: Callable, name: str, module: nn.Module) -> list[nn.Module]:
    """The layers each entry of the sequence argument ``name`` goes through, when the function
    zips it with a list of layers of the module (``for t, proj in zip(x, self.projections)``)."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(func)))
    except (OSError, TypeError, SyntaxError, IndentationError):
        return []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "zip"):
            continue
        if not any(isinstance(a, ast.Name) and a.id == name for a in node.args):
            continue
        for arg in node.args:
            if isinstance(arg, ast.Attribute) and isinstance(arg.value, ast.Name) and arg.value.id == "self":
                layers = getattr(module, arg.attr, None)
                if isinstance(layers, (nn.ModuleList, nn.Sequential)) and len(layers):
                    return list(layers)
    return []


def _sequence_first(module: nn.Module) -> bool:
    """Whether ``module`` is torch's ``nn.MultiheadAttention`` (or a subclass) built with
    ``batch_first=False``, or one of torch's transformer layers whose self-attention is, whose
    inputs torch documents as [seq, batch, width]."""
    if isinstance(module, (nn.TransformerEncoderLayer, nn.TransformerDecoderLayer)):
        module = getattr(module, "self_attn", None)
    return isinstance(module, nn.MultiheadAttention) and getattr(module, "batch_first", True) is False


def _window_lengths(module: nn.Module) -> list[int]:
    """Token counts a windowed attention module fixes: the sides of its square buffers (a
    relative-position index over ``window_size ** 2`` tokens, built from a constructor argument
    the module does not keep), so that its windows hold exactly that many tokens."""
    out: list[int] = []
    for _, buffer in module.named_buffers():
        side = int(buffer.shape[-1]) if buffer.dim() >= 2 else 0
        if buffer.dim() >= 2 and buffer.shape[-2] == side and 2 <= side <= 256 and side not in out:
            out.append(side)
    return out


def _grid_sides(module: nn.Module) -> list[tuple[int, int]]:
    """Pairs of sizes the module keeps as its own attributes (a list or tuple of two positive
    ints up to 256: the sides of the feature map it was built for), in the order it set them."""
    out: list[tuple[int, int]] = []
    for key, value in vars(module).items():
        if key.startswith("_") or not isinstance(value, (tuple, list)) or len(value) != 2:
            continue
        if all(is_int(v) and 2 <= v <= 256 for v in value) and tuple(value) not in out:
            out.append(tuple(value))
    return out[:2]


def _deep_tokens(randn: Callable, batch: int, rank: int, lengths: list[int], widths: list[int]) -> list:
    """Hidden states of rank ``rank`` >= 5 (``b x y w1 w2 d``: windows of tokens, the grid of
    windows before them): each token count as two equal axes when it is a square, and as one
    axis after a grid of 2 x 1 ..., for each width."""
    out = []
    for length in dict.fromkeys(lengths):
        side = math.isqrt(length)
        for width in widths:
            if side > 1 and side * side == length:
                out.append(randn(batch, *[1] * (rank - 4), side, side, width))
            out.append(randn(batch, 2, *[1] * (rank - 4), length, width))
    return out


def head_widths(module: nn.Module, width: int) -> list[int]:
    """Per-head widths of a module of ``width`` features: its own integer attributes that divide
    the width (``self.head_dim``), then the width over those (``dim // self.heads``)."""
    own = [v for k, v in vars(module).items() if not k.startswith("_") and is_int(v) and 2 <= v < width
           and width % v == 0]
    out: list[int] = []
    for value in own + [width // v for v in own]:
        if 2 <= value < width and value not in out:
            out.append(value)
    return out


_SHAPED = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear, nn.Embedding)


def _layer_input(randn: Callable, layer: nn.Module, batch: int, seq: int, image: int) -> torch.Tensor:
    """An input ``layer`` takes: images for a Conv2d, clips for a Conv3d, tokens for a Linear."""
    if isinstance(layer, nn.Conv2d):
        return randn(batch, layer.in_channels, image, image)
    if isinstance(layer, nn.Conv3d):
        return randn(batch, layer.in_channels, 4, image, image)
    if isinstance(layer, nn.Conv1d):
        return randn(batch, layer.in_channels, seq * 4)
    if isinstance(layer, nn.Embedding):
        return torch.randint(0, layer.num_embeddings, (batch, seq))
    return randn(batch, seq, layer.in_features)


_READ_LAYERS = (nn.LayerNorm, nn.GroupNorm, nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.BatchNorm1d, nn.BatchNorm2d)


_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)


def _submodule(module: nn.Module, chain: ast.expr) -> nn.Module | None:
    """The layer ``chain`` names off ``self`` (``self.audio.conv1``: a layer of a block held by the
    module), or None where it is not one (``self`` alone is not: the module itself)."""
    if not isinstance(chain, ast.Attribute):
        return None
    found, layer = _resolved(chain, {"self": module})
    return layer if found and isinstance(layer, nn.Module) else None


def _axis_order(expr: ast.expr, name: str) -> tuple[str, list[int]] | None:
    """``name`` as ``expr`` hands it on: (name, the order its axes are moved to) for the name
    itself, ``name.transpose(i, j)`` and ``name.permute(...)`` (constant axes, none negative)."""
    if isinstance(expr, ast.Name) and expr.id == name:
        return name, []
    if not (isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute) and
            isinstance(expr.func.value, ast.Name) and expr.func.value.id == name and not expr.keywords):
        return None
    axes = [a.value for a in expr.args if isinstance(a, ast.Constant) and type(a.value) is int]
    if len(axes) != len(expr.args) or any(a < 0 for a in axes):
        return None
    if expr.func.attr == "transpose" and len(axes) == 2:
        order = list(range(max(axes) + 1))
        order[axes[0]], order[axes[1]] = order[axes[1]], order[axes[0]]
        return name, order
    if expr.func.attr == "permute" and sorted(axes) == list(range(len(axes))):
        return name, axes
    return None


def met_layer(func: Callable, name: str, module: nn.Module,
              later: bool = False) -> tuple[nn.Module, list[int]] | None:
    """The layer the parameter ``name`` first meets: handed through a transpose or permute
    (``self.conv1(mel.transpose(1, 2))``: features last, a Conv1d taking them first), to a layer of
    a block the module holds (``self.audio.conv1(...)``), or, for a ``later`` input (not the
    first), to a layer of the module as it is (``self.text_projection(text)``; the first input's
    plain case is left to the guesses that read the module's first layers).
    Returns the layer (a Linear, a convolution or transposed one, an Embedding) and the order the
    code moves the axes to (empty: as they are).  Three inputs of different widths, each met by
    its own layer, are each read from it."""
    node = _function_def(func)
    if node is None:
        return None
    for sub in ast.walk(node):
        if not (isinstance(sub, ast.Call) and isinstance(sub.func, ast.Attribute) and sub.args):
            continue
        moved = _axis_order(sub.args[0], name)
        if moved is None:
            continue
        direct = isinstance(sub.func.value, ast.Name) and sub.func.value.id == "self"
        if direct and not moved[1] and not later:
            continue
        layer = functional_layer(_submodule(module, sub.func))
        while isinstance(layer, nn.Sequential) and len(layer):
            layer = layer[0]
        if isinstance(layer, (nn.Linear, nn.Embedding, *_CONVS)):
            return layer, moved[1]
    return None


def met_layer_input(randn: Callable, func: Callable, name: str, module: nn.Module, batch: int, seq: int,
                    image: int, later: bool = False) -> torch.Tensor | None:
    """An input for the parameter ``name`` read off the layer it meets (:func:`met_layer`): that
    layer's input (a Linear's ``in_features`` last, a convolution's channels on axis 1 with its
    sides, an Embedding's indices below its rows), its axes moved back where the code moves them."""
    met = met_layer(func, name, module, later)
    if met is None:
        return None
    layer, order = met
    if isinstance(layer, _CONVS):
        sides = {1: (seq * 4,), 2: (image, image), 3: (4, image, image)}.get(len(layer.kernel_size))
        if sides is None:
            return None
        value = randn(batch, layer.in_channels, *sides)
    elif isinstance(layer, nn.Embedding):
        value = torch.randint(0, layer.num_embeddings, (batch, seq))
    else:
        value = randn(batch, seq, layer.in_features)
    if order:
        if len(order) > value.dim():
            return None
        order = order + list(range(len(order), value.dim()))
        inverse = sorted(range(len(order)), key=order.__getitem__)
        value = value.permute(*inverse).contiguous()
    moved = f", laid out so that the code's permute({', '.join(map(str, order))}) gives it" if order else ""
    value._adopter_met = f"{name}: {type(layer).__name__}'s input{moved}"
    return value


def met_inputs(inputs) -> str:
    """What a verdict says of inputs read off the layers they meet (:func:`met_layer_input`; ""
    when none was)."""
    values = inputs.values() if isinstance(inputs, dict) else inputs
    shown = "; ".join(m for m in (getattr(v, "_adopter_met", None) for v in values) if m)
    return f"inputs read off the layers they meet ({shown})" if shown else ""
_FUNCTIONAL_KINDS = {"conv1d": 3, "conv2d": 4, "conv3d": 5, "group_norm": 1, "layer_norm": 1, "linear": 2}


@functools.lru_cache(maxsize=256)
def _functional_use(cls: type) -> tuple[str, bool] | None:
    """The torch function ``cls.forward`` computes its layer with, read from its code: one of
    ``_FUNCTIONAL_KINDS`` called by name (``torch.nn.functional.conv2d(x, w, ...)``), or
    ``"matmul"`` for ``x @ <weight>`` (with whether the weight is transposed there: ``.t()``,
    ``.T``, ``.mT``); None when the forward names none of them or more than one kind."""
    try:
        node = ast.parse(textwrap.dedent(inspect.getsource(cls.forward))).body[0]
    except (OSError, TypeError, SyntaxError, IndentationError, AttributeError, IndexError):
        return None
    kinds: set[str] = set()
    transposed = False
    for sub in ast.walk(node):
        if isinstance(sub, ast.Call) and _last_name(sub.func) in _FUNCTIONAL_KINDS:
            kinds.add(_last_name(sub.func))
        elif isinstance(sub, ast.BinOp) and isinstance(sub.op, ast.MatMult):
            kinds.add("matmul")
            right = sub.right
            transposed = (isinstance(right, ast.Call) and _last_name(right.func) == "t") or \
                (isinstance(right, ast.Attribute) and right.attr in ("T", "mT"))
    return (kinds.pop(), transposed) if len(kinds) == 1 else None


def functional_layer(layer: Any) -> Any:
    """``layer``, or for a layer class of the code's own (no torch class, no submodules) whose
    forward computes one torch layer's function with its own ``weight`` (EDM's ``Conv2d`` calling
    ``torch.nn.functional.conv2d(x, self.weight...)``, its ``GroupNorm`` calling ``group_norm``, its
    ``Linear`` computing ``x @ self.weight.t()``): that torch layer, of the sizes the weight fixes,
    built on the meta device (only its kind and sizes are read: what input the layer takes).  A
    wrong reading costs a try of the inputs, never a verdict (every guess runs on the original)."""
    if not isinstance(layer, nn.Module) or type(layer).__module__.startswith("torch.") or \
            isinstance(layer, _READ_LAYERS) or next(layer.children(), None) is not None:
        return layer  # a torch layer (or a subclass of one: already what it is), or a container
    weight = getattr(layer, "weight", None)
    use = _functional_use(type(layer)) if isinstance(weight, torch.Tensor) else None
    if use is None:
        return layer
    kind, transposed = use
    shape = tuple(weight.shape)
    if _FUNCTIONAL_KINDS.get(kind, 2) != len(shape) or min(shape) < 1:
        return layer
    if kind in ("conv1d", "conv2d", "conv3d"):
        conv = {"conv1d": nn.Conv1d, "conv2d": nn.Conv2d, "conv3d": nn.Conv3d}[kind]
        return conv(shape[1], shape[0], shape[2:], device="meta")
    if kind == "group_norm":
        return nn.GroupNorm(1, shape[0], device="meta")
    if kind == "layer_norm":
        return nn.LayerNorm(shape[0], device="meta")
    if kind == "linear" or transposed:  # F.linear(x, w) and x @ w.t(): w is [out, in]
        return nn.Linear(shape[1], shape[0], device="meta")
    return nn.Linear(shape[0], shape[1], device="meta")


def fed_layer(func: Callable, name: str, module: nn.Module, copies: bool = False) -> nn.Module | None:
    """The layer of the module the function hands the parameter ``name`` to as is
    (``self.ln_3(y)``), when that layer takes real-valued features (a norm, a Linear, a
    convolution): the parameter is then an input of that layer, whatever its name says
    (``y`` beside ``x`` in a cross-attention is no label).  With ``copies``, also through a
    name the body's opening statements bind to the parameter as it is (``h_ = x; h_ =
    self.norm(h_)``, the VQ-GAN AttnBlock: ``_copies_of``)."""
    node = _function_def(func)
    if node is None:
        return None
    held = _copies_of(node, name) if copies else {name}
    for sub in ast.walk(node):
        if isinstance(sub, ast.Call) and isinstance(sub.func, ast.Attribute) and \
                isinstance(sub.func.value, ast.Name) and sub.func.value.id == "self" and \
                any(isinstance(a, ast.Name) and a.id in held for a in sub.args[:1]):
            layer = getattr(module, sub.func.attr, None)
            while isinstance(layer, nn.Sequential) and len(layer):
                layer = layer[0]  # a Sequential hands its input to its first layer as it is
            layer = functional_layer(layer)
            if isinstance(layer, _READ_LAYERS):
                return layer
    return None


def _copies_of(node: ast.FunctionDef | ast.AsyncFunctionDef, name: str) -> set[str]:
    """``name`` and the names that hold its value as is up to their first other use: bound by a
    plain ``a = name`` among the body's opening assignments (straight-line code, before any
    branch or loop) and, where bound again, first bound again from a call of themselves (``a =
    self.norm(a)``: that call reads the parameter's value)."""
    held = {name}
    for stmt in node.body:
        if not isinstance(stmt, ast.Assign) or len(stmt.targets) != 1 or not isinstance(stmt.targets[0], ast.Name):
            if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
                continue  # the docstring
            break
        target, value = stmt.targets[0].id, stmt.value
        if isinstance(value, ast.Name) and value.id in held:
            held.add(target)
            continue
        break
    return held


def fed_output_rank(func: Callable, name: str, module: nn.Module) -> int | None:
    """The rank of the parameter ``name`` when the function hands it to a layer of its own as it
    is (``q = self.to_q(x_global)``), a layer that keeps the rank (a Linear, a Sequential of them
    and activations: the caller checks), and then rearranges that result by an einops pattern
    (``rearrange(q, 'b (h d) -> b h d')``): the pattern's input rank; None otherwise."""
    node = _function_def(func)
    if node is None:
        return None
    results: set[str] = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Assign) and len(sub.targets) == 1 and isinstance(sub.targets[0], ast.Name) \
                and isinstance(sub.value, ast.Call) and isinstance(sub.value.func, ast.Attribute) \
                and isinstance(sub.value.func.value, ast.Name) and sub.value.func.value.id == "self" \
                and len(sub.value.args) == 1 and not sub.value.keywords \
                and isinstance(sub.value.args[0], ast.Name) and sub.value.args[0].id == name \
                and _kept_rank(getattr(module, sub.value.func.attr, None)):
            results.add(sub.targets[0].id)
    ranks: set[int] = set()
    scope = _scope_of(func)
    for sub in ast.walk(node):
        if isinstance(sub, ast.Call) and _einops_call(sub, ("rearrange",), scope) \
                and isinstance(sub.args[0], ast.Name) and sub.args[0].id in results:
            rank = _einops_rank(sub.args[1].value)
            if rank is None:
                return None
            ranks.add(rank)
    return ranks.pop() if len(ranks) == 1 else None


def _kept_rank(layer: nn.Module) -> bool:
    """Whether ``layer`` maps [..., in] to [..., out] keeping the leading axes (a Linear, or a
    Sequential of Linears, norms over the last axis, activations and dropouts)."""
    if isinstance(layer, nn.Sequential):
        return all(_kept_rank(sub) for sub in layer)
    return isinstance(layer, (nn.Linear, nn.LayerNorm, nn.Dropout, nn.Identity, nn.GELU, nn.ReLU, nn.SiLU,
                              nn.Tanh, nn.Sigmoid, nn.Softplus, nn.LeakyReLU, nn.ELU, nn.Mish))


_BOOL_METHODS = {"unsqueeze", "view", "reshape", "expand", "transpose", "permute", "flatten", "contiguous",
                 "to", "squeeze", "repeat", "expand_as"}


def bool_used(func: Callable, name: str, module: nn.Module | None = None, depth: int = 0) -> bool:
    """Whether the function uses the parameter ``name`` as booleans: it, or a reshaped view of it
    (``is_target.unsqueeze(2)``), is an operand of ``&``, ``|``, ``^`` or ``~``, the condition of
    ``torch.where`` or the mask of ``masked_fill``; also when the function hands it as is to a
    method of the module's own (``self._build_mask(is_target, ...)``) that does so with it."""
    node = _function_def(func)
    if node is None or depth > 2:
        return False
    def is_alias(expr: ast.expr) -> bool:
        """A name of ``aliases``, or a view or slice of one (``m.unsqueeze(1)[:, None]``)."""
        while isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute) and expr.func.attr in _BOOL_METHODS:
            expr = expr.func.value
        while isinstance(expr, ast.Subscript):
            expr = expr.value
        return isinstance(expr, ast.Name) and expr.id in aliases

    aliases = {name}
    for _ in range(3):  # names bound to views of it, in any order
        for sub in ast.walk(node):
            if isinstance(sub, ast.Assign) and len(sub.targets) == 1 and isinstance(sub.targets[0], ast.Name) \
                    and is_alias(sub.value):
                aliases.add(sub.targets[0].id)

    for sub in ast.walk(node):
        if isinstance(sub, ast.BinOp) and isinstance(sub.op, (ast.BitAnd, ast.BitOr, ast.BitXor)) \
                and (is_alias(sub.left) or is_alias(sub.right)):
            return True
        if isinstance(sub, ast.UnaryOp) and isinstance(sub.op, ast.Invert) and is_alias(sub.operand):
            return True
        if isinstance(sub, ast.Call):
            called = _last_name(sub.func)
            if called == "where" and sub.args and is_alias(sub.args[0]):
                return True
            if called in ("masked_fill", "masked_fill_") and len(sub.args) >= 1 and is_alias(sub.args[0]):
                return True
            if module is not None and isinstance(sub.func, ast.Attribute) and isinstance(sub.func.value, ast.Name) \
                    and sub.func.value.id == "self":
                method = getattr(type(module), sub.func.attr, None)
                if inspect.isfunction(method):
                    inner = [p.name for p in signature_of(method)]
                    if inner and inner[0] == "self":
                        inner = inner[1:]
                    for index, arg in enumerate(sub.args):
                        if isinstance(arg, ast.Name) and arg.id == name and index < len(inner) \
                                and bool_used(method, inner[index], module, depth + 1):
                            return True
    return False


_INT_CASTS = {"long", "int", "short"}
_INT_DTYPES = {"long", "int64", "int32", "int", "int16"}
_COUNTERS = {"cumsum", "sum", "count_nonzero"}


def _handed_callee(call: ast.Call, func: Callable, module: nn.Module | None) -> Callable | None:
    """The function a call runs when the code can tell: a method of the module's own
    (``self._mask(pos)``) or a plain function of the defining file (``_apply_rope(q, pos)``)."""
    if module is not None and isinstance(call.func, ast.Attribute) and isinstance(call.func.value, ast.Name) \
            and call.func.value.id == "self":
        method = getattr(type(module), call.func.attr, None)
        return method if inspect.isfunction(method) else None
    if isinstance(call.func, ast.Name):
        target = getattr(getattr(func, "__func__", func), "__globals__", {}).get(call.func.id)
        return target if inspect.isfunction(target) else None
    return None


def integer_positions(func: Callable, name: str, module: nn.Module | None = None, depth: int = 0) -> bool:
    """Whether the code reads the parameter ``name`` as integer positions, by what it does with it:
    casts it to an integer dtype (``pos.long()``, ``.to(torch.int64)``), indexes a tensor with it
    (``table[pos]``), counts where it equals a whole number (``torch.cumsum(pos == 0, -1)``:
    segment starts), or compares it with an ``arange`` (``pos >= torch.arange(T)``); also when it
    hands it as is to a function of the file's own or a method of the module that does so (two
    calls deep). A float mask compared with 0 for ``masked_fill`` is no such reading: its
    comparison is not counted."""
    node = _function_def(func)
    if node is None or depth > 2:
        return False
    params = [a.arg for a in (*node.args.posonlyargs, *node.args.args)]
    if params and params[0] == "self":
        params = params[1:]
    aranged = {sub.targets[0].id for sub in ast.walk(node)
               if isinstance(sub, ast.Assign) and len(sub.targets) == 1 and isinstance(sub.targets[0], ast.Name)
               and isinstance(sub.value, ast.Call) and _last_name(sub.value.func) == "arange"}

    def is_it(expr: ast.expr) -> bool:
        return isinstance(expr, ast.Name) and expr.id == name

    def is_whole(expr: ast.expr) -> bool:
        return isinstance(expr, ast.Constant) and type(expr.value) is int

    def is_arange(expr: ast.expr) -> bool:
        while isinstance(expr, ast.Subscript):
            expr = expr.value
        return (isinstance(expr, ast.Call) and _last_name(expr.func) == "arange") \
            or (isinstance(expr, ast.Name) and expr.id in aranged)

    for sub in ast.walk(node):
        if isinstance(sub, ast.Subscript) and is_it(sub.slice):
            return True
        if not isinstance(sub, ast.Call):
            continue
        called = _last_name(sub.func)
        if isinstance(sub.func, ast.Attribute) and is_it(sub.func.value):
            if called in _INT_CASTS and not sub.args:
                return True
            if called in ("to", "type") and any(_last_name(a) in _INT_DTYPES for a in sub.args):
                return True
        if called in _COUNTERS and sub.args and isinstance(sub.args[0], ast.Compare):
            test = sub.args[0]
            sides = [test.left, *test.comparators]
            if any(is_it(s) for s in sides) and any(is_whole(s) or is_arange(s) for s in sides):
                return True
        callee = _handed_callee(sub, func, module)
        if callee is not None:
            inner = [p.name for p in signature_of(callee)]
            if inner and inner[0] == "self":
                inner = inner[1:]
            for index, arg in enumerate(sub.args):
                if is_it(arg) and index < len(inner) and integer_positions(callee, inner[index], module, depth + 1):
                    return True
    for sub in ast.walk(node):
        if isinstance(sub, ast.Compare) and len(sub.comparators) == 1 \
                and isinstance(sub.ops[0], (ast.Lt, ast.LtE, ast.Gt, ast.GtE)):
            sides = (sub.left, sub.comparators[0])
            if any(is_it(s) for s in sides) and any(is_arange(s) for s in sides):
                return True
    return False


_SIZE_TAKERS = {"view", "reshape", "expand", "new_zeros", "new_ones", "new_empty", "zeros", "ones", "empty", "randn",
                "rand", "arange", "range", "interpolate", "unflatten"}


def unpacked_sizes(func: Callable, name: str) -> int | None:
    """How many sizes the parameter ``name`` holds when the function's own code unpacks it into
    names it uses as sizes (``h, w = hw_shape`` then ``x.view(b, h, w, c)``, ``w % window``):
    the count of those names; None otherwise (``q, k, v = qkv`` used as tensors is no sizes)."""
    node = _function_def(func)
    if node is None:
        return None
    unpacked: list[str] = []
    for sub in ast.walk(node):
        if isinstance(sub, ast.Assign) and len(sub.targets) == 1 and isinstance(sub.value, ast.Name) \
                and sub.value.id == name and isinstance(sub.targets[0], (ast.Tuple, ast.List)) \
                and all(isinstance(e, ast.Name) for e in sub.targets[0].elts):
            unpacked = [e.id for e in sub.targets[0].elts]
            break
    if len(unpacked) < 2:
        return None
    for sub in ast.walk(node):
        if isinstance(sub, ast.Call):
            called = sub.func.attr if isinstance(sub.func, ast.Attribute) else getattr(sub.func, "id", "")
            if called in _SIZE_TAKERS and any(isinstance(a, ast.Name) and a.id in unpacked for a in sub.args):
                return len(unpacked)
        elif isinstance(sub, ast.BinOp) and isinstance(sub.op, (ast.Mod, ast.FloorDiv)) and any(
                isinstance(side, ast.Name) and side.id in unpacked for side in (sub.left, sub.right)):
            return len(unpacked)
    return None


def grid_axes(func: Callable) -> dict[str, tuple[int, int]]:
    """Parameters the function's own code passes together as sizes, and only so (PVT's and
    SegFormer's ``forward(self, x, H, W)`` with ``x.permute(0, 2, 1).reshape(B, C, H, W)``): each
    name -> (its place among them, how many): the sides of a grid of the sequence's tokens."""
    node = _function_def(func)
    if node is None:
        return {}
    params = [a.arg for a in (*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs)][1:]
    if len(params) < 3:
        return {}
    candidates = set(params[1:])  # not the first (the tensor)
    group: list[str] = []
    for sub in ast.walk(node):
        if isinstance(sub, (ast.Attribute, ast.Subscript)) and isinstance(sub.value, ast.Name):
            candidates.discard(sub.value.id)  # H.shape, hw[0]: not a plain size
        elif isinstance(sub, ast.Call) and isinstance(sub.func, ast.Name):
            candidates.discard(sub.func.id)
        elif isinstance(sub, ast.Assign):
            for target in sub.targets:
                for name in ast.walk(target):
                    if isinstance(name, ast.Name):
                        candidates.discard(name.id)  # reassigned: not the caller's size
    for sub in ast.walk(node):
        if isinstance(sub, ast.Call):
            called = sub.func.attr if isinstance(sub.func, ast.Attribute) else getattr(sub.func, "id", "")
            if called in _SIZE_TAKERS:
                passed = [a.id for a in sub.args if isinstance(a, ast.Name) and a.id in candidates]
                if len(passed) >= 2 and len(set(passed)) == len(passed) and len(passed) > len(group):
                    group = passed
    return {name: (index, len(group)) for index, name in enumerate(group)}


def input_options(module: nn.Module, hints: dict, sizes: Sizes, forward_overrides: dict,
                  method: str = "forward", give_optional: tuple[str, ...] = (),
                  signature: Callable | None = None) -> Iterator["Call"]:
    """Candidate calls of ``module``'s ``method``, richest first.

    ``give_optional`` names optional parameters to pass anyway (a branch variant: targets given,
    a mask present); ``signature`` is the function whose parameters to fill (a module-level
    function wrapped as a module) when not the method itself."""
    from .build import Call

    func = signature or getattr(module, method, None)
    if func is None:
        return
    params = signature_of(func)
    if not params and method != "forward":
        yield Call((), {})
        return
    names = {p.name for p in params}
    model_level = bool(names & set(_MODEL_LEVEL))
    b = sizes.batch
    entry = entry_layer(module)
    s = _max_seq(module, hints, sizes)
    vocab = _int_hint(hints, "vocab_size", "n_vocab", "num_tokens", "ntoken")
    if isinstance(entry, (nn.Embedding, nn.EmbeddingBag)):
        vocab = min(vocab or entry.num_embeddings, entry.num_embeddings)
    if not vocab or vocab < 2:
        vocab = sizes.vocab
    widths = _widths(module, hints, sizes)
    conv = entry if isinstance(entry, (nn.Conv1d, nn.Conv2d, nn.Conv3d)) else None
    channels = None
    for sub in module.modules():
        if isinstance(sub, nn.Conv2d):
            channels = sub.in_channels
            break
        if isinstance(sub, nn.BatchNorm2d):
            channels = sub.num_features
            break
    image = _int_hint(hints, "image_size", "img_size", "resolution", "input_size") or sizes.image
    patch = _int_hint(hints, "patch_size")
    if patch and image % patch:
        image = patch * max(1, image // patch)
    hinted_channels = _int_hint(hints, "num_channels", "in_chans", "in_channels", "channels", "n_channels")
    per_param: list[tuple[str, bool, list[Any]]] = []  # (name, positional, candidates)
    late: dict[str, Any] = {}  # a later input handed to a convolution of its own: its input, tried last
    generator = torch.Generator().manual_seed(1234)

    def randn(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=generator)

    def ids(*shape: int, high: int = vocab) -> torch.Tensor:
        return torch.randint(0, max(2, high), shape, generator=generator)

    def images() -> list[torch.Tensor]:
        if isinstance(conv, nn.Conv1d):
            lengths = [s * 4]
            for key in ("n_audio_ctx", "n_ctx", "max_len", "seq_len"):
                value = _int_hint(hints, key)
                if value and value <= 4096:
                    lengths += [value * 2, value]
            return [randn(b, conv.in_channels, n) for n in dict.fromkeys(lengths)]
        if isinstance(conv, nn.Conv3d):
            return [randn(b, conv.in_channels, 4, image, image)]
        # the first convolution's input width, or (a patch embedding that is a Linear over
        # rearranged pixels, with convolutions only deeper inside) the model's own channel count
        widths_ = list(dict.fromkeys(c for c in (channels, hinted_channels, 3) if c))
        out = [randn(b, c, image, image) for c in widths_]
        # then the sides of a feature map the module was built for (a pair of sizes it keeps:
        # ``self.fmap_size = (8, 16)`` read as tokens = height * width), its first width only
        for sides in _grid_sides(module):
            if sides != (image, image) and widths_:
                out.append(randn(b, widths_[0], *sides))
        return out

    # the rank the method's own code states of its first input: forward's, and a helper method's
    # that verify calls directly (Leddam's ``auto_attention(inp)`` reads ``inp[:, :, 0, :]``)
    rank, certain = input_rank(func)
    operand_ranks = {**matmul_peers(func), **rearranged_ranks(func), **annotated_ranks(func),
                     **einsum_ranks(func, kept=False)} if method == "forward" else _helper_ranks(func)
    pairs = pair_params(func) if method == "forward" else set()
    score_biases = score_terms(func) if method == "forward" and give_optional else set()
    stated = shape_ranks(func) if method == "forward" else {}
    applied = applied_params(func) if method == "forward" else set()
    linear_roles = linear_operands(func) if method == "forward" else {}
    divisors = divisor_params(func) | math_params(func) if method == "forward" else set()
    divided = divided_params(func) if divisors else {}
    stand_ins: list[tuple[int, tuple[str, bool, list[Any]]]] = []  # (position among the inputs, entry)
    demands = shape_constraints(func, module) if method == "forward" else None
    axes = grid_axes(func)
    partners = elementwise_partners(func) if method == "forward" else set()
    guessed: set[int] = set()  # ids of the candidates that are shape guesses only
    masks: set[int] = set()  # ids of the mask candidates
    unmasked: set[str] = set()  # required masks, tried as None once every guess failed
    left_out: set[str] = set()  # optional masks, left out together once every guess failed
    tested = none_tested(func)
    offsets = offsets_params(func, module) if method == "forward" else set()
    asserted = asserted_given(func)
    gap = False  # once a parameter is left out, later ones must be passed by keyword
    met_seen = False  # an earlier input was read off the layer it meets (met_layer_input)
    for param in params:
        name = param.name
        lowered = name.lower()
        if param.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            gap = True
            continue
        positional = not gap and param.kind in (inspect.Parameter.POSITIONAL_ONLY,
                                                inspect.Parameter.POSITIONAL_OR_KEYWORD)
        optional = param.default is not inspect.Parameter.empty
        required = not optional or name in _PRIMARY or name in give_optional or name in asserted
        if not optional and per_param and (name in tested or may_be_none(param.annotation)):
            # a later required input the code tests for None (feedback-transformer's ``memory``,
            # unpacked as a pair only ``if exists(memory)``), or one its annotation says may be
            # None (``value_compression: Optional[nn.Linear]``, tested only through its partner):
            # None once every guess failed
            unmasked.add(name)
        if name in forward_overrides:
            per_param.append((name, False, [forward_overrides[name]]))
            continue
        keyed = subscript_keys(func, name, module) if method == "forward" else None
        if keyed:
            # a dict of named tensors the code reads by key (``seq = features[self._seq_name]``):
            # each key with a tensor of what its own name and indexing say it is
            per_param.append((name, positional, keyed_dicts(func, keyed, b, s, widths, randn)))
            continue
        if per_param and name in linear_roles and not optional and widths:
            # a raw weight (or bias) the code hands to a linear function with the input: of the
            # input's width, as many outputs as the result is split into (drawn at a Linear's
            # scale, so the scores it leads to are no saturated softmax)
            role, count = linear_roles[name]
            width = widths[0]
            drawn = randn(count * width, width) if role == "weight" else randn(count * width)
            per_param.append((name, positional, [drawn / math.sqrt(width)]))
            continue
        if per_param and name in divisors and not optional:
            # only the divisor of a floor division (``C // n_head``), or a number handed to
            # ``math`` (``math.sqrt(d_k)``): a small count; one that
            # divides an earlier count (``n_heads // kv_n_heads``) may also equal it (the value
            # chosen for that count, after the small ones)
            values: list[Any] = [4, 2]
            dividend = divided.get(name)
            chosen = next((entry[2] for entry in per_param if entry[0] == dividend), None)
            if chosen and len(chosen) == 1 and type(chosen[0]) is int and chosen[0] not in values:
                values.append(chosen[0])
            per_param.append((name, positional, values))
            continue
        if name in applied and not optional:
            # a callable the forward applies to one tensor (a backbone handed in): an identity,
            # placed among the inputs once they are chosen (the next input is still the first)
            stand_ins.append((len(per_param), (name, positional, [nn.Identity()])))
            continue
        if "mask" in lowered:
            if "head" in lowered or ("encoder" in lowered and not required):
                if not optional:
                    per_param.append((name, positional, [None]))
                else:
                    gap = True
                continue
            if "causal" in lowered:
                candidates = [mask_values("causal", b, s), mask_values("bool_square", b, s)]
            elif model_level:
                candidates = [mask_values("binary", b, s)]
            else:
                candidates = [mask_values("additive4", b, s), mask_values("additive_square", b, s)]
                if required:
                    candidates += [mask_values("binary", b, s).float(), mask_values("bool", b, s),
                                   mask_values("bool_square", b, s), mask_values("additive3", b, s),
                                   mask_values("bool_future", b, s), mask_values("bool_padding", b, s)]
            if optional and name not in give_optional:
                candidates.append(OMIT)
                left_out.add(name)
            elif not optional:
                # a mask the code must be handed but may be None (``if mask is not None:``, SANM's
                # attention, whose unmasked path a chunked caller takes): tried when no mask runs
                unmasked.add(name)
            masks.update(id(c) for c in candidates if isinstance(c, torch.Tensor))
            per_param.append((name, positional, candidates))
            continue
        if per_param and optional and name in give_optional and name in score_biases:
            # an optional bias the code adds onto the scores it softmaxes, given because the code
            # needs it (``raising_params``): an additive mask's shapes, which broadcast to
            # [batch, heads, queries, keys]
            candidates = [mask_values("additive4", b, s), mask_values("additive_square", b, s)]
            masks.update(id(c) for c in candidates)
            per_param.append((name, positional, candidates))
            continue
        fed = fed_layer(func, name, module) if lowered in _TARGET_NAMES else None
        if lowered in _TARGET_NAMES and (not optional or name in give_optional) and fed is None:
            classes = _int_hint(hints, "num_classes", "n_classes", "num_labels")
            if isinstance(entry, nn.Embedding):
                candidates = [ids(b, s, high=_out_classes(module))]
            else:
                candidates = [ids(b, high=_out_classes(module)), ids(b, s, high=_out_classes(module))]
            if classes:  # class labels of a conditional model (an embedding of num_classes rows)
                candidates.insert(0, ids(b, high=classes))
            per_param.append((name, positional, candidates))
            continue
        if optional and name not in give_optional and isinstance(param.default, torch.Tensor) \
                and param.default.numel() == 0 and per_param:
            # an optional tensor that defaults to an empty one (``pos_emb: Tensor =
            # torch.empty(0)``, which the code hands to a layer of its own that an empty tensor
            # does not fit): that layer's input, else left out, as before
            fed_here = fed_layer(func, name, module)
            if isinstance(fed_here, nn.Linear):
                per_param.append((name, False, [randn(b, s, fed_here.in_features),
                                                randn(1, s, fed_here.in_features), OMIT]))
                continue
        if per_param and name in offsets and name not in tested:
            # boundaries of sequences packed along the first input's first axis, read without a
            # None test even when the parameter defaults to None: offsets over that axis's rows
            # (the first input's 2-D guesses have b * 4 rows, its token guesses b or s)
            rows = dict.fromkeys((b * 4, s, b * s))
            per_param.append((name, positional, [packed_offsets(n) for n in rows]))
            continue
        if not required:
            gap = True
            continue
        if lowered in _NONE_NAMES and optional:
            gap = True
            continue
        if per_param and labels_compared(func, name):
            # labels the code indexes as one axis and compares with each other (``g[:, None] ==
            # g[None, :]``: a group per sample): one per sample, in groups of two, so that the
            # pairs it compares both match and differ
            per_param.append((name, positional, [torch.arange(b) // 2]))
            continue
        if lowered.endswith("ids") or (lowered in _ID_NAMES and isinstance(entry, (nn.Embedding, nn.EmbeddingBag))):
            if "position" in lowered:
                candidates = [torch.arange(s).expand(b, s).contiguous()]
            elif "type" in lowered or "segment" in lowered:
                candidates = [torch.zeros(b, s, dtype=torch.long)]
            else:
                candidates = [ids(b, s)]
                if not lowered.endswith(("ids", "idx")) and "token" not in lowered:
                    # ``x`` in a block whose first layer is a relative-position table: maybe hidden states
                    candidates += [randn(b, s, width) for width in widths[:3]]
            per_param.append((name, positional, candidates))
            continue
        if param.annotation is bool:
            per_param.append((name, positional, [False]))
            continue
        if per_param and bool_used(func, name, module):
            # a later tensor the code combines with ``&``/``|``/``~`` (or hands to a method of its
            # own that does): booleans per position, a few True, then all True
            candidates = [mask_values("bool_padding", b, s), mask_values("bool", b, s)]
            if rank == 4 and certain:
                # beside four-axis inputs: the masks that broadcast over their [batch, heads,
                # queries, keys] scores first
                candidates = broadcast_bool_masks(b, s) + candidates
            per_param.append((name, positional, candidates))
            continue
        held = sequence_of(param.annotation)
        if held is not None and held[0] == "int":
            # sizes per axis (``thw: tuple[int, int, int]``): a grid of the sequence's tokens
            per_param.append((name, positional, list(grids(s, held[1] or 2))))
            continue
        if held is not None and held[0] == "tensor":
            # a list of tensors: one per layer it is zipped with, each that layer's input
            firsts = [sub if isinstance(sub, _SHAPED) else entry_layer(sub)
                      for sub in zipped_layers(func, name, module)]
            if firsts and all(isinstance(f, _SHAPED) for f in firsts):
                candidates = [[_layer_input(randn, f, b, s, image) for f in firsts]]
            else:
                count = held[1] or 1
                candidates = [[randn(b, s, width) for _ in range(count)] for width in widths[:2]]
            per_param.append((name, positional, candidates))
            continue
        axis = axes.get(name) if per_param else None
        if axis is not None:
            # sides of a grid the code reshapes the tokens into (``reshape(B, C, H, W)``)
            per_param.append((name, positional, [grid[axis[0]] for grid in grids(s, axis[1])]))
            continue
        arity = unpacked_sizes(func, name) if per_param else None
        if arity:
            # sizes the code unpacks (``h, w = hw_shape``): a grid of the sequence's tokens
            per_param.append((name, positional, list(grids(s, arity))))
            continue
        if lowered in _POSITION_INT_NAMES:
            per_param.append((name, positional, [0]))
            continue
        if param.annotation is int or lowered in ("query_length", "seq_len", "length", "max_new_tokens",
                                                  "num_tokens", "steps", "n", "num_samples"):
            per_param.append((name, positional, [2 if lowered in ("max_new_tokens", "steps", "num_samples", "n")
                                                 else s]))
            continue
        if param.annotation is float or lowered in ("temperature", "scale", "alpha", "beta"):
            per_param.append((name, positional, [1.0]))
            continue
        if lowered in _TIME_NAMES and not (not per_param and certain and rank is not None and rank > 1):
            # (a first input whose code states more than one axis -- ``t[:, :, 0, :]`` -- is no
            # timestep vector, whatever it is called)
            per_param.append((name, positional, [torch.rand(b, generator=generator),
                                                 torch.randint(0, 10, (b,), generator=generator)]))
            continue
        candidates = []
        # a later input's own layer is read only beside inputs read so (the combination the
        # guesses make first then gives every input its width); elsewhere the usual guesses stand
        met = met_layer_input(randn, func, name, module, b, s, image, bool(per_param) and met_seen) \
            if method == "forward" else None
        met_seen = met_seen or met is not None
        if met is not None:
            # the layer the input meets through a transpose or inside a block it holds (a mel
            # spectrogram [batch, frames, mels] turned channel-first for a Conv1d), or, after
            # such an input, a later input's own layer: its input, first (three inputs of three
            # widths then fit at once)
            candidates.append(met)
        if fed is None and not per_param:
            # the layer the code hands the first input to as it is (``q = self.to_q(x)``), when
            # it is a convolution: its input width first (not the first convolution registered,
            # which may be a deeper one: an offset network over grouped channels)
            handed = fed_layer(func, name, module)
            if isinstance(handed, (nn.Conv2d, nn.Conv3d)) and conv is not None \
                    and handed.in_channels != getattr(conv, "in_channels", None):
                candidates.append(_layer_input(randn, handed, b, s, image))
            handed = handed or fed_layer(func, name, module, copies=True)
            if isinstance(handed, nn.GroupNorm):
                # a channel-first norm takes the input first (the VQ-GAN / latent-diffusion
                # AttnBlock): its channels on axis 1, the sides the module's first convolution
                # takes (a Conv1d: a sequence; none: a sequence too)
                first = next((m for m in map(functional_layer, module.modules())
                              if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d))), None)
                if isinstance(first, (nn.Conv2d, nn.Conv3d)):
                    sides = (image, image) if isinstance(first, nn.Conv2d) else (4, image, image)
                else:
                    sides = (s * 4,)
                candidates.append(randn(b, handed.num_channels, *sides))
        image_like = "pixel" in lowered or "image" in lowered or lowered in ("img", "imgs", "video")
        if conv is not None or ((channels is not None or image_like) and lowered in _IMAGE_NAMES | {"pixel_values"}) \
                or image_like:
            candidates += images()
            if per_param and conv is not None and not isinstance(conv, (nn.Conv1d, nn.Conv3d)):
                # a later tensor of a convolutional module: maybe a one-channel map of the same
                # sides (a saliency map, a mask, a depth map), after the images of its widths
                candidates.append(randn(b, 1, image, image))
        elif channels is not None:
            candidates += images()
        # hidden states of the rank the forward's own code unpacks (first) or rearranges (after
        # the usual [batch, seq, width]; mobile ViT's ``'b p n (h d)'``: patches of tokens)
        four = [randn(b, 4, s, width) for width in widths[:3]] if rank == 4 and conv is None \
            and (not per_param or not certain) else []
        if not per_param and rank == 4 and conv is None and channels_first(func):
            # a channel-first map the code moves its channels last: [batch, width, side, side],
            # after the token-like guesses
            candidates += [randn(b, width, image, image) for width in widths[:3]]
        own_rank = stated.get(name) if per_param and conv is None else None
        if per_param and (operand_ranks.get(name) == 4 or own_rank == 4) and conv is None:
            # a later tensor the code hands to einsum as 4-D (``k`` beside ``q``), maybe after
            # rebinding it, or whose shape it unpacks into four names (a guess: a wrong one
            # costs a try, never a verdict)
            four, certain_here = [randn(b, 4, s, width) for width in widths[:3]], True
        elif own_rank is not None and 5 <= own_rank <= 8:
            # a later tensor whose shape the code unpacks into five or more names (retrieved
            # neighbours' encodings, ``b, chunks, neighbors, length, d = e.shape``): tokens of
            # that rank, the first input's batch, the sequence's length last but one, first
            four, certain_here = _deep_tokens(randn, b, own_rank, [s, *_window_lengths(module)], widths[:2]), True
        else:
            certain_here = certain and not per_param
        # (a later tensor of a forward whose code rearranges 4-D tokens -- the Perceiver's
        # latents beside its media -- gets them too, at the same positions as the first's, so the
        # two are tried together)
        if not per_param and rank is not None and rank >= 5 and conv is None:
            four = _deep_tokens(randn, b, rank, [s, *_window_lengths(module)], widths[:2])
        if certain_here or (certain and per_param and four):
            candidates, four = four + candidates, []
        if per_param and conv is None and rank == 4 and certain and operand_ranks.get(name) in (2, 3):
            # a later tensor the code reads with fewer axes than a 4-D first input (fla's per-head
            # gate ``g: [B, T, HQ]`` read as ``'b t h'`` beside ``q: [B, T, HQ, D]``): the first
            # input's leading axes, first
            candidates.insert(0, randn(*(b, 4, s)[:operand_ranks[name]]))
        if per_param and name in pairs and conv is None:
            # a pairwise representation read after the first input: [batch, tokens, tokens, width]
            # then one channel, which broadcasts over the heads the code moves it onto (a bias
            # ``.permute(0, 3, 1, 2)``-ed onto [batch, heads, queries, keys] scores: whatever the
            # heads, a bias shared by all of them fits), over the tokens of a four-axis first
            # input's second axis too ([batch, tokens, heads, width] inputs hold 4 there)
            # A bias of one channel per head comes before one shared by all heads: a shared one
            # fits whatever the heads, so a patch that mixes the heads' biases (averages them)
            # would pass on it (review44); the heads of a four-axis first input are the axis
            # that is not its tokens (4 or ``s``: [batch, tokens, heads, width] or [batch, heads,
            # tokens, width]).  A bias that builds only shared is marked so that the verdict says
            # the per-head layout went unchecked (SHARED_BIAS).
            per_head = [randn(b, n, n, h) for n, h in ((s, 4), (4, s))] if rank == 4 else []
            shared = [_mark_shared(randn(b, n, n, 1)) for n in dict.fromkeys((s, 4) if rank == 4 else (s,))]
            candidates = [randn(b, s, s, width) for width in widths[:3]] + per_head + shared + candidates
        handed = fed_layer(func, name, module) if per_param else None
        if isinstance(handed, nn.Linear) and fed_output_rank(func, name, module) == 2:
            # a later input of a layer whose result the code rearranges as [batch, width] (a
            # global vector beside the tokens): that layer's width, one row per sample, first
            candidates.insert(0, randn(b, handed.in_features))
        if per_param and isinstance(conv, nn.Conv2d) and (operand_ranks.get(name) or 0) > 4:
            # a later input of a 2-D convolutional module that the code rearranges as more axes
            # than a map (``'b k n c h w -> (b k n) c h w'``: maps grouped per sample): maps of the
            # first convolution's channels with the extra axes (of 2) after the batch, first
            extra = (2,) * (operand_ranks[name] - 4)
            candidates.insert(0, randn(b, *extra, conv.in_channels, image, image))
        if isinstance(fed, nn.LayerNorm) and fed.normalized_shape:
            candidates.append(randn(b, s, int(fed.normalized_shape[-1])))
        elif isinstance(fed, _SHAPED):
            candidates.append(_layer_input(randn, fed, b, s, image))
        for width in widths:
            candidates.append(randn(b, s, width))
        if not per_param and conv is None and widths and batch_second(func):
            # the first input sequence-first, as the code's own check against a later input's
            # batch states it: [seq, batch, width], right after the first batch-first guess (which
            # that check rejects), so it is tried with every guess of the later inputs
            at = next((i for i, c in enumerate(candidates)
                       if isinstance(c, torch.Tensor) and tuple(c.shape) == (b, s, widths[0])), len(candidates) - 1)
            candidates.insert(at + 1, randn(s, b, widths[0]))
        candidates += four
        if isinstance(handed, nn.Linear) and fed_output_rank(func, name, module) != 2:
            # a later input the code hands as it is to a Linear of its own: maybe one vector per
            # sample (a conditioning embedding, maia2's ``self.elo_query(elo_emb).view(x.size(0),
            # heads, 1, -1)``): that Linear's width, one row per sample, after the token guesses
            candidates.append(randn(b, handed.in_features))
        if per_param and isinstance(handed, (nn.Conv2d, nn.Conv3d)):
            # a later input the code hands as it is to a 2-D or 3-D convolution of its own
            # (learning3d's ``self.line_conv_att(curves)`` beside points of a Conv1d): that
            # convolution's input, tried only after every other guess (``late``)
            late[name] = _layer_input(randn, handed, b, s, image)
        if channels is None and not image_like:
            for width in widths[:2]:
                candidates.append(randn(b * 4, width))
            if per_param:  # a second tensor of a layer: maybe per-position weights (``keep[:, None, :]``)
                candidates.append(torch.ones(b, s))
        if per_param and widths:
            # a second tensor that broadcasts against per-head queries (rotary ``cos``/``sin``
            # tables, position biases): [seq, head width]
            tables = [randn(s, d) for d in head_widths(module, widths[0])[:2]]
            guessed.update(id(t) for t in tables)
            candidates += tables
        if not per_param and isinstance(conv, nn.Conv1d):
            # the first input of a module whose first convolution is 1-D: maybe a channel-first
            # map one axis deeper that the code reduces to a sequence first (kronecker
            # attention's ``torch.cat((x.mean(dim=-1), x.mean(dim=-2)), dim=-1)`` before its
            # Conv1d), [batch, channels, side, side], tried after every sequence (a module that
            # takes a sequence took one already; one that takes no map only costs a try)
            candidates.append(randn(b, conv.in_channels, image, image))
        if conv is None and _sequence_first(module) and widths:
            # torch's sequence-first layout (an ``nn.MultiheadAttention`` or a transformer layer of
            # torch, or a subclass, built with ``batch_first=False``): [seq, batch, width], after
            # every other guess (a module some earlier guess fits is called as it was)
            candidates.append(randn(s, b, widths[0]))
        if per_param and integer_positions(func, name, module):
            # a later tensor the code reads as integer positions (counts where it is 0, casts it
            # to an integer dtype, indexes with it; maybe in a function it is handed to): the
            # positions 0..T-1 of each sample, first, the other guesses after
            candidates.insert(0, torch.arange(s).expand(b, s).contiguous())
        if not per_param and demands is not None:
            # the first input resized as the code demands (a block size dividing its sides)
            want, axes = demands
            adjusted = [constrained(c, axes) for c in candidates if isinstance(c, torch.Tensor) and c.dim() == want]
            candidates = [c for c in adjusted if c is not None] + candidates
        per_param.append((name, positional, candidates))

    for shift, (index, entry) in enumerate(stand_ins):
        per_param.insert(index + shift, entry)
    for name, _, candidates in per_param[1:]:
        if name in partners and name not in late and name not in forward_overrides:
            # a later input multiplied elementwise with the first's values: shaped as the first
            # is, after every other guess (hsir's MST mask beside its [batch, h, w, c] map)
            late[name] = LIKE_FIRST
    lists = [c for _, _, c in per_param]
    tries = _combinations(lists)
    if unmasked or left_out:
        # after every guessed mask, the required ones None and the optional ones left out, all
        # at once (a few tries of their own): the combinations above pair a mask's absence (its
        # last candidate) with the other inputs' guesses of the same position, so optional masks
        # before a required input (RelPosMHSA's ``key_padding_mask, attn_mask, pos_emb``) may
        # never be left out beside that input's first guess
        tries = itertools.chain(itertools.islice(tries, MAX_INPUT_TRIES), itertools.islice(_combinations(
            [[None] if name in unmasked else [OMIT] if name in left_out else c for name, _, c in per_param]),
            MAX_UNMASKED_TRIES))
    budget = MAX_INPUT_TRIES + (MAX_UNMASKED_TRIES if unmasked or left_out else 0)
    if late:
        # the late guesses, each with the other inputs' guesses, after every try above (so a
        # module some earlier guess fits is called with the inputs it was before)
        tries = itertools.chain(itertools.islice(tries, budget), itertools.islice(_combinations(
            [[late[name]] if name in late else c for name, _, c in per_param]), MAX_LATE_TRIES))
        budget += MAX_LATE_TRIES
    for count, combo in enumerate(tries):
        if count >= budget:
            return
        args: list[Any] = []
        kwargs: dict[str, Any] = {}
        keyword_only = False
        masked: list[int | str] = []
        if any(value is LIKE_FIRST for value in combo):
            lead = combo[0] if per_param else None
            if not isinstance(lead, torch.Tensor) or not lead.is_floating_point():
                continue
            combo = tuple(randn(*lead.shape) if value is LIKE_FIRST else value for value in combo)
        for (name, positional, _), value in zip(per_param, combo):
            if value is OMIT:
                keyword_only = True
                continue
            if positional and not keyword_only:
                if id(value) in masks:
                    masked.append(len(args))
                args.append(value)
            else:
                if id(value) in masks:
                    masked.append(name)
                kwargs[name] = value
        yield Call(tuple(args), kwargs, guessed=any(id(v) in guessed for v in combo), masked=tuple(masked))


def _combinations(lists: list[list[Any]]) -> Iterator[tuple]:
    """Every combination of the candidates, those where the later arguments take candidates of the
    same position first (``cos`` and ``sin`` both ``[seq, head width]``), then the rest in order."""
    if not lists:
        yield ()
        return
    seen: set[tuple[int, ...]] = set()
    rest = lists[1:]
    longest = max((len(c) for c in rest), default=0)
    for first in range(len(lists[0])):
        for j in range(max(longest, 1)):
            index = (first, *[min(j, len(c) - 1) for c in rest])
            if index not in seen:
                seen.add(index)
                yield tuple(c[i] for c, i in zip(lists, index))
    for index in itertools.product(*[range(len(c)) for c in lists]):
        if index not in seen:
            yield tuple(c[i] for c, i in zip(lists, index))


def optional_params(module: nn.Module, method: str = "forward") -> list[str]:
    """Optional parameters of ``method`` that a branch may depend on (``targets=None``, ``mask=None``)."""
    out = []
    for param in signature_of(getattr(module, method)):
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        if param.default is None:
            out.append(param.name)
    return out


# ----------------------------------------------------------------------------- repairs from errors

#: The most elements a repaired input may hold (64 MiB of float32).  A repair multiplies axes
#: (tokens repeated into a grid, a length a table fixes): on a module whose real input is large,
#: the guess could ask for gigabytes -- an allocation error at best, the kernel's out-of-memory
#: killer at worst (timm's LeViT asked for 14 GB) -- and a verdict needs no large input.
MAX_REPAIR_ELEMENTS = 1 << 24

_SIZE_MISMATCH = re.compile(r"size of tensor a \((\d+)\) must match the size of tensor b \((\d+)\)")
_TOO_FEW = re.compile(r"not enough values to unpack \(expected (?:at least )?(\d+), got (\d+)\)")
_TOO_MANY = re.compile(r"too many values to unpack \(expected (\d+)")
#: torch.bmm handed a tensor of another rank (the newer wording, then the older)
_BMM_RANK = re.compile(r"batch[12] must be a 3D tensor|Expected 3-dimensional tensor, but got \d-dimensional")
#: a tensor repeated over fewer axes than it has (``w.unsqueeze(2).repeat(1, 1, n)`` on a score
#: made 3-D from a guessed 3-D query where the code expects one vector per row)
_REPEAT_RANK = re.compile(r"Number of dimensions of repeat dims can not be smaller than number of dimensions")
_BAD_VIEW = re.compile(r"shape '\[([-\d, ]+)\]' is invalid for input of size (\d+)")
#: an einops pattern that splits an axis into parts of a size the call fixes (``'b (f n) d'`` with
#: ``n=...``) met an axis that size does not divide
_EINOPS_CHUNKS = re.compile(r"can't divide axis of length (\d+) in chunks of (\d+)")
#: a guessed float mask handed to a fill that takes only booleans (``scores.masked_fill_(mask, -inf)``)
_BOOL_FILL = re.compile(r"masked_fill_? only supports boolean masks")
# a convolution over a grid of the tokens smaller than its kernel ("Calculated padded input size
# per channel: (2 x 4). Kernel size: (3 x 3). Kernel size can't be greater than actual input size")
_SMALL_GRID = re.compile(r"padded input size per channel: \(([\d x]+)\)\. Kernel size: \(([\d x]+)\)")
#: a convolution handed another channel count than its weight takes ("Given groups=1, weight of
#: size [96, 192, 1, 1], expected input[2, 64, 32, 192] to have 192 channels, but got 64 channels
#: instead"): channels-last inputs concatenated and permuted to channels-first before the conv
_CONV_CHANNELS = re.compile(r"expected input\[[\d, ]+\] to have (\d+) channels, but got (\d+) channels")
_NONE_USED = re.compile(r"'NoneType' object (has no attribute|is not subscriptable|is not iterable)|"
                        r"NoneType' and 'Tensor'|'Tensor' and 'NoneType'|must be Tensor, not NoneType")


def map_tensors(value: Any, fn: Callable[[torch.Tensor], torch.Tensor | None]) -> Any:
    """``value`` (a call's arguments) with ``fn`` applied to each tensor in it, through tuples,
    lists and dicts (a tensor ``fn`` returns None for, and any other value, as it is)."""
    if isinstance(value, torch.Tensor):
        out = fn(value)
        return value if out is None else out
    if isinstance(value, tuple):
        return tuple(map_tensors(v, fn) for v in value)
    if isinstance(value, list):
        return [map_tensors(v, fn) for v in value]
    if isinstance(value, dict):
        return {k: map_tensors(v, fn) for k, v in value.items()}
    return value


def _resized(t: torch.Tensor, old: int, new: int) -> torch.Tensor | None:
    """``t`` with every axis but the batch's of size ``old`` made ``new`` long (random values of
    the same kind; a mask keeps its kind)."""
    if t.dim() < 2 or old not in t.shape[1:]:
        return None
    shape = [t.shape[0]] + [new if n == old else n for n in t.shape[1:]]
    if math.prod(shape) > MAX_REPAIR_ELEMENTS:
        return None
    return _redrawn(t, shape)


def _redrawn(t: torch.Tensor, shape: list[int]) -> torch.Tensor:
    """A tensor of ``shape`` of the same kind as ``t`` (seeded random values; a 0/1 or additive
    float mask all zeros, a boolean one all True, integers below ``t``'s largest)."""
    generator = torch.Generator().manual_seed(4321)
    if t.is_floating_point():
        if _is_mask(t):
            return torch.zeros(shape, dtype=t.dtype)  # a 0/1 or additive mask: keep everything
        return torch.randn(shape, generator=generator, dtype=t.dtype)
    if t.dtype == torch.bool:
        return torch.ones(shape, dtype=torch.bool)
    return torch.randint(0, max(1, int(t.max()) + 1), shape, generator=generator, dtype=t.dtype)


def _drawn_like(t: torch.Tensor, shape: list[int]) -> torch.Tensor:
    """A tensor of ``shape`` in ``t``'s dtype for a repaired call: seeded random values for a float
    tensor (the same on every try), zeros for any other kind."""
    if t.is_floating_point():
        return torch.randn(shape, generator=torch.Generator().manual_seed(4321), dtype=t.dtype)
    return torch.zeros(shape, dtype=t.dtype)


SHRUNK_SIDES = (8, 4)  # a token axis refused at its guessed length is tried this long (then a quarter)
MIN_SHRUNK_SIDE = 2  # the fewest tokens a shrunk axis keeps


def _token_axes(t: torch.Tensor) -> range:
    """The axes of a guessed input that hold tokens: a map's sides after [batch, channels], a
    sequence's positions after its batch ([batch, tokens, width]); none for a vector per sample."""
    if t.dim() >= 4:
        return range(2, t.dim())
    if t.dim() == 3:
        return range(1, 2)
    return range(0)


def _is_mask(t: torch.Tensor) -> bool:
    """Is ``t`` a mask by its values: boolean, or a float 0/1 or additive (all <= 0) one?"""
    if t.dtype == torch.bool:
        return True
    return t.is_floating_point() and (bool(((t == 0) | (t == 1)).all()) or bool((t <= 0).all()))


def _fewer_tokens(t: torch.Tensor, side: Callable[[int], int]) -> torch.Tensor | None:
    """``t`` with each token axis ``side(n)`` long where that is shorter (None where none is),
    marked with the shapes before and after and whether it is a mask (:func:`shrunk_inputs` reads
    the mark).  The tensor is sliced to its first tokens, not redrawn: a causal or padding mask
    keeps its pattern there (a redrawn one kept every token, and the patch ran unmasked), and
    an axis keeps at least ``MIN_SHRUNK_SIDE`` tokens (one token makes every softmax trivially 1)."""
    shape = list(t.shape)
    for axis in _token_axes(t):
        shape[axis] = min(shape[axis], max(MIN_SHRUNK_SIDE, side(shape[axis])))
    if shape == list(t.shape):
        return None
    out = t[tuple(slice(0, n) for n in shape)].clone()
    out._adopter_shrunk = (tuple(t.shape), tuple(shape), _is_mask(t))
    return out


def memory_repairs(call: "Call") -> list["Call"]:
    """For a call verify's memory ceiling refused (``memory.out_of_memory``): the same call with
    fewer tokens, its inputs' token axes (a map's sides, a sequence's positions) first at most
    ``SHRUNK_SIDES[0]`` long, then a quarter of their length.  Attention scores grow with the
    square of the tokens (monai-generative's AttentionBlock over a [2, 96, 96, 32] map with 96
    heads asked for 7.2 GB), the weights not at all, so a call that did not fit may fit with a
    few tokens; widths and channels stay as the module's layers need them.  Each is still run on
    the original first; the verdict names what was shrunk (:func:`shrunk_inputs`)."""
    from .build import Call

    out: list[Call] = []
    seen: set = set()
    for side in (lambda n: SHRUNK_SIDES[0], lambda n: n // 4):
        args = map_tensors(call.args, lambda t: _fewer_tokens(t, side))
        kwargs = map_tensors(call.kwargs, lambda t: _fewer_tokens(t, side))
        shapes = tuple(tuple(t.shape) for t in Call(args, kwargs).leaves())
        if shapes in seen or all(x is y for x, y in zip(call.leaves(), Call(args, kwargs).leaves())):
            continue
        seen.add(shapes)
        out.append(Call(args, kwargs, call.method, guessed=call.guessed, masked=call.masked))
    return out


def shrunk_inputs(inputs) -> str:
    """What a verdict says of inputs :func:`memory_repairs` shrank ("" when none was), and
    whether a mask among them was cut to its first tokens (its pattern there kept)."""
    values = inputs.values() if isinstance(inputs, dict) else inputs
    marks = [m for m in (getattr(v, "_adopter_shrunk", None) for v in values) if m]
    if not marks:
        return ""
    shown = ", ".join(f"{list(a)} -> {list(b)}" for a, b, _ in marks)
    masks = "; a mask was cut to its first tokens, its pattern there kept" if any(m[2] for m in marks) else ""
    return f"inputs shrunk to fewer tokens after verify's memory ceiling refused the guessed ones ({shown}){masks}"


def repairs(call: "Call", exc: BaseException) -> list["Call"]:
    """Calls that answer what ``exc`` (raised by ``call``) says the module expected: a length it
    fixes (a position table over ``resolution ** 2`` tokens: "the size of tensor a (8) must match
    the size of tensor b (196)"), a rank its code unpacks ("not enough values to unpack (expected
    4, got 3)").  The module's own error is the only source; every candidate is still run on the
    original first, so a wrong guess costs a try, never a verdict."""
    from .build import Call
    from .memory import out_of_memory

    if out_of_memory(exc):
        return memory_repairs(call)
    text = str(exc)
    out: list[Call] = []

    def add(args: tuple, kwargs: dict) -> None:
        out.append(Call(args, kwargs, call.method, guessed=call.guessed))

    found = _SIZE_MISMATCH.search(text)
    if found:
        a, b = int(found.group(1)), int(found.group(2))
        for old, new in ((a, b), (b, a)):
            if old == new or not 1 <= new <= 4096:
                continue
            args = map_tensors(call.args, lambda t: _resized(t, old, new))
            kwargs = map_tensors(call.kwargs, lambda t: _resized(t, old, new))
            if any(x is not y for x, y in zip([*call.leaves()], Call(args, kwargs).leaves())):
                add(args, kwargs)
    channels = _CONV_CHANNELS.search(text)
    if channels and call.args:
        # the channel count the convolution got is a whole fraction of what its weight takes,
        # and no input axis holds it as it is (else the size repair above answers): the inputs'
        # channels are made from their axes (channels-last inputs concatenated, then permuted
        # to channels-first: GMAN's ``cat((X, STE), -1).permute(0, 3, 2, 1)`` into a 1x1 conv).
        # Every float input's last axis, then its axis 1, made that many times as long
        want, got = int(channels.group(1)), int(channels.group(2))
        factor = want // got if got and want % got == 0 else 0
        for axis in (-1, 1) if 2 <= factor <= 64 else ():
            def scaled(t: torch.Tensor, axis: int = axis) -> torch.Tensor | None:
                if not t.is_floating_point() or t.dim() < 3 or _is_mask(t):
                    return None
                shape = list(t.shape)
                shape[axis] *= factor
                if shape[axis] > 4096 or math.prod(shape) > MAX_REPAIR_ELEMENTS:
                    return None
                return _drawn_like(t, shape)
            args = map_tensors(call.args, scaled)
            kwargs = map_tensors(call.kwargs, scaled)
            if any(x is not y for x, y in zip([*call.leaves()], Call(args, kwargs).leaves())):
                add(args, kwargs)
    if call.masked and _BOOL_FILL.search(text):
        # the guessed masks as booleans, True where they hide (the fill is written where the mask
        # holds True), as they are and without their size-1 head axis: attention over heads folded
        # into the batch (3-D scores, ``torch.bmm``) fills them in place with a [b, 1, s] or
        # [b, s, s] mask, which a [b, 1, 1, s] one cannot broadcast to
        for squeeze in (False, True):
            def boolean(t: torch.Tensor, squeeze: bool = squeeze) -> torch.Tensor | None:
                if not t.is_floating_point():
                    return None
                hidden = t < 0
                if squeeze:
                    return hidden.squeeze(1) if t.dim() == 4 and t.shape[1] == 1 else None
                return hidden
            masked = set(call.masked)
            args = tuple(map_tensors(v, boolean) if i in masked else v for i, v in enumerate(call.args))
            kwargs = {k: map_tensors(v, boolean) if k in masked else v for k, v in call.kwargs.items()}
            if any(x is not y for x, y in zip([*call.leaves()], Call(args, kwargs).leaves())):
                add(args, kwargs)
    few, many = _TOO_FEW.search(text), _TOO_MANY.search(text)
    first = next((v for v in call.args if isinstance(v, torch.Tensor)), None)
    view = _BAD_VIEW.search(text)
    if first is not None and first.dim() >= 2 and view:
        # a view into sizes the module fixes ("shape '[2, 14, 14, 32]' is invalid for input of
        # size 512": LeViT's downsampling grid over resolution ** 2 tokens): one axis of the
        # input scaled by what the view lacks, the token axis first
        sizes = [int(n) for n in view.group(1).split(",") if n.strip()]
        have = int(view.group(2))
        wanted = math.prod(sizes) if sizes and min(sizes) > 0 else 0
        for axis in range(1, first.dim()) if wanted and have else ():
            scaled = first.shape[axis] * wanted
            if scaled % have or not 1 <= scaled // have <= 4096 or scaled // have == first.shape[axis]:
                continue
            shape = list(first.shape)
            shape[axis] = scaled // have
            if math.prod(shape) > MAX_REPAIR_ELEMENTS:
                continue
            new = _drawn_like(first, shape)
            add(tuple(new if v is first else v for v in call.args), dict(call.kwargs))
    chunks = _EINOPS_CHUNKS.search(text)
    if chunks:
        # the axis the pattern splits is the input's token axis less what the code cut off first
        # (a class token spliced out: ``t[:, 1:]``): each input axis between the batch and the
        # features as long or a little longer grown by what makes the split axis a multiple of the chunk (at least two chunks, so
        # that the other part of the split is not an axis of one)
        length, chunk = int(chunks.group(1)), int(chunks.group(2))
        want = max(2 * chunk, -(-length // chunk) * chunk) if chunk >= 1 else 0
        olds = {n for v in call.leaves() if isinstance(v, torch.Tensor) and v.dim() >= 2
                for n in (v.shape[1:-1] if v.dim() >= 3 else v.shape[1:]) if length <= n <= length + 2}
        for old in sorted(olds) if want and want != length else ():
            new = old + want - length
            if not 1 <= new <= 4096:
                continue
            args = map_tensors(call.args, lambda t: _resized(t, old, new))
            kwargs = map_tensors(call.kwargs, lambda t: _resized(t, old, new))
            if any(x is not y for x, y in zip([*call.leaves()], Call(args, kwargs).leaves())):
                add(args, kwargs)
    small = _SMALL_GRID.search(text)
    if first is not None and first.dim() >= 3 and small:
        # the sides of the grid the call hands as integers (``forward(x, H, W)``, SegFormer's
        # spatial reduction by a strided convolution): the grid grown by the least factor
        # that fits the kernel in it, and the tokens with it
        kernel = max(int(n) for n in small.group(2).split(" x "))
        sides = [i for i, v in enumerate(call.args) if type(v) is int and v >= 1]
        grid = [call.args[i] for i in sides]
        if len(grid) >= 2 and math.prod(grid) == first.shape[1]:
            factor = -(-kernel // min(grid))
            tokens = math.prod(g * factor for g in grid)
            shape = [first.shape[0], tokens, *first.shape[2:]]
            if factor >= 2 and tokens <= 4096 and math.prod(shape) <= MAX_REPAIR_ELEMENTS:
                new = _drawn_like(first, shape)
                args = tuple(new if v is first else v * factor if i in sides else v
                             for i, v in enumerate(call.args))
                add(args, dict(call.kwargs))
    if first is not None and many and first.dim() >= 2:
        # an axis split into the unpacked count by a size taken from it (``ch = qkv.shape[1] // 3;
        # q, k, v = torch.split(qkv, ch, dim=1)``: guided diffusion's fused [B, 3 * C, T] input)
        # that the count does not divide: that axis made the count times as wide, the channel
        # axis first, then the last
        count = int(many.group(1))
        for axis in dict.fromkeys((1, first.dim() - 1)):
            size = first.shape[axis]
            if not 2 <= count <= 8 or size % count == 0 or size * count > 4096:
                continue
            shape = list(first.shape)
            shape[axis] = size * count
            if math.prod(shape) > MAX_REPAIR_ELEMENTS:
                continue
            new = _drawn_like(first, shape)
            add(tuple(new if v is first else v for v in call.args), dict(call.kwargs))
    if _BMM_RANK.search(text) or _REPEAT_RANK.search(text):
        # a batched product of 3-D tensors handed one made 4-D from a guessed argument (wavencoder's
        # dot attention: ``torch.bmm(values, query.squeeze(0).unsqueeze(2))``, the query one
        # vector per row), or a repeat over as many axes as the code expects that meets a tensor
        # one axis deeper (``(query @ W).unsqueeze(1) @ values.transpose(1, 2)`` then
        # ``weights.unsqueeze(2).repeat(1, 1, t)``): each 3-D argument in turn with its middle
        # axis dropped
        for at, value in enumerate(call.args):
            if isinstance(value, torch.Tensor) and value.dim() == 3 and value.is_floating_point():
                new = _drawn_like(value, [value.shape[0], value.shape[2]])
                add(tuple(new if i == at else v for i, v in enumerate(call.args)), dict(call.kwargs))
    if first is not None and first.dim() >= 1 and first.shape[0] > 1 and batch_of_one_asserted(exc):
        # the code asserts a batch of one (``b, c, h, w = x.shape; assert b == 1``, a tiling that
        # writes its tiles back into sample 0): every tensor of the call's batch cut to its first
        # sample
        batch = first.shape[0]

        def first_sample(t: torch.Tensor) -> torch.Tensor | None:
            return t[:1].clone() if t.dim() >= 1 and t.shape[0] == batch else None

        add(map_tensors(call.args, first_sample), map_tensors(call.kwargs, first_sample))
    if first is not None and (few or many):
        have = first.dim()
        # the unpacked tuple may hold more than the shape (``b, n, *_, h = *x.shape, self.heads``):
        # the shape lacks what the count lacks
        want = have + int(few.group(1)) - int(few.group(2)) if few else int(many.group(1))
        shape = list(first.shape)
        if few and want > have >= 2:
            # the middle axes repeated (tokens as a grid: [b, n, c] -> [b, n, n, c])
            shape = shape[:1] + [shape[1]] * (want - have) + shape[1:]
        elif many and want < have and want >= 2:
            merged = math.prod(shape[1:have - want + 2])
            shape = shape[:1] + [merged] + shape[have - want + 2:]
        else:
            shape = []
        if shape and len(shape) == want and math.prod(shape) <= MAX_REPAIR_ELEMENTS:
            new = _drawn_like(first, shape)
            args = tuple(new if v is first else v for v in call.args)
            add(args, dict(call.kwargs))
    return out


def batch_of_one_asserted(exc: BaseException) -> bool:
    """Whether ``exc`` is an AssertionError raised by an ``assert <b> == 1`` whose ``<b>`` the same
    function unpacked first from a tensor's shape (``b, c, h, w = x.shape``): the code runs only on
    a batch of one.  The assert is placed by the traceback (its innermost frame), never by the
    error's text, and read from that function's own source."""
    if not isinstance(exc, AssertionError):
        return False
    tb = exc.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    code = tb.tb_frame.f_code
    try:
        lines, start = inspect.getsourcelines(code)
        node = ast.parse(textwrap.dedent("".join(lines)))
    except (OSError, TypeError, SyntaxError, IndentationError):
        return False
    at = tb.tb_lineno - start + 1
    asserted = next((n for n in ast.walk(node) if isinstance(n, ast.Assert) and n.lineno == at), None)
    if asserted is None or not isinstance(asserted.test, ast.Compare) or len(asserted.test.ops) != 1 \
            or not isinstance(asserted.test.ops[0], ast.Eq):
        return False
    left, right = asserted.test.left, asserted.test.comparators[0]
    name = left if isinstance(right, ast.Constant) and right.value == 1 else \
        right if isinstance(left, ast.Constant) and left.value == 1 else None
    if not isinstance(name, ast.Name):
        return False

    def is_shape(value: ast.expr) -> bool:
        if isinstance(value, ast.Call):
            return isinstance(value.func, ast.Attribute) and value.func.attr == "size" and not value.args
        return isinstance(value, ast.Attribute) and value.attr == "shape"

    return any(isinstance(n, ast.Assign) and len(n.targets) == 1 and isinstance(n.targets[0], (ast.Tuple, ast.List))
               and n.targets[0].elts and isinstance(n.targets[0].elts[0], ast.Name)
               and n.targets[0].elts[0].id == name.id and is_shape(n.value) for n in ast.walk(node))


#: a local read before any assignment ran (Python 3.11+, then older wording)
_UNASSIGNED = re.compile(r"cannot access local variable '(\w+)' where it is not associated with a value|"
                         r"local variable '(\w+)' referenced before assignment")


def guarding_params(func: Callable, exc: BaseException) -> tuple[str, ...]:
    """The optional parameters whose None test guards the only assignments of the local that
    ``exc`` (an UnboundLocalError raised by ``func``) says was read unassigned: DETR-style
    attention keeps its input for the values only ``if position_embeddings is not None:`` and
    reads the kept name unconditionally, so that argument, although it defaults to None, is
    needed."""
    found = _UNASSIGNED.search(str(exc)) if isinstance(exc, UnboundLocalError) else None
    node = _function_def(func) if found else None
    if node is None:
        return ()
    local = found.group(1) or found.group(2)
    out: list[str] = []
    for inner, name in _none_test_ifs(func, node, ast.IsNot):
        assigned = {t.id for stmt in inner.body for t in ast.walk(stmt)
                    if isinstance(t, ast.Name) and isinstance(t.ctx, ast.Store)}
        if local in assigned and name not in out:
            out.append(name)
    return tuple(out)


def _none_test_ifs(func: Callable, node: ast.AST, op: type):
    """(each ``if p is None:`` (``op`` ast.Is) or ``if p is not None:`` (ast.IsNot) in ``node``,
    p) for p an optional parameter of ``func`` (a None default)."""
    optional = {p.name for p in signature_of(func) if p.default is None}
    for inner in ast.walk(node):
        if not isinstance(inner, ast.If):
            continue
        test = inner.test
        if isinstance(test, ast.Compare) and isinstance(test.left, ast.Name) and test.left.id in optional \
                and len(test.ops) == 1 and isinstance(test.ops[0], op) \
                and isinstance(test.comparators[0], ast.Constant) and test.comparators[0].value is None:
            yield inner, test.left.id


def raising_params(func: Callable, exc: BaseException) -> tuple[str, ...]:
    """The optional parameters whose ``is None`` test holds the ``raise`` that ``exc`` came from
    (texar's T5 attention: ``if position_bias is None: if not self.stores_rpr: raise
    ValueError(...)``, a bias the first layer computes and hands to the others): the function
    cannot run without them on a module built that way, so they are inputs to give.  The raise
    is placed by the traceback (the frame of ``func``'s own code), never by the error's text."""
    plain = getattr(func, "__func__", func)
    code = getattr(plain, "__code__", None)
    if code is None:
        return ()
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code is code:
            line = tb.tb_lineno
        tb = tb.tb_next
    node = _function_def(func) if line is not None else None
    if node is None:
        return ()
    at = line - code.co_firstlineno + 1  # the parsed source starts at the code's first line
    out: list[str] = []
    for inner, name in _none_test_ifs(func, node, ast.Is):
        raised = any(isinstance(t, ast.Raise) and t.lineno <= at <= (t.end_lineno or t.lineno)
                     for stmt in inner.body for t in ast.walk(stmt))
        if raised and name not in out:
            out.append(name)
    if isinstance(exc, AssertionError):
        out += [name for name in asserted_at(func, node, at) if name not in out]
    return tuple(out)


def asserted_at(func: Callable, node: ast.AST, at: int) -> list[str]:
    """The optional parameters (None defaults) that the ``assert`` at line ``at`` of ``node``
    states are given (``assert key is not None and value is not None``, fairseq-style attention
    built for neither self- nor encoder-decoder attention, under a branch of the forward): the
    call that failed it cannot run without them, so they are inputs to give.  The assert is
    placed by the traceback, never by the error's text (an assert has none)."""
    optional = {p.name for p in signature_of(func) if p.default is None}
    out: list[str] = []
    for stmt in ast.walk(node):
        if isinstance(stmt, ast.Assert) and stmt.lineno <= at <= (stmt.end_lineno or stmt.lineno):
            out += [name for name in asserted_not_none(stmt, optional) if name not in out]
    return out


def none_used(exc: BaseException) -> bool:
    """Whether ``exc`` says an argument left at its default None was used as a tensor."""
    return bool(_NONE_USED.search(str(exc)))


# the note a verdict carries when a pairwise bias built only as one channel shared by all heads
SHARED_BIAS = "bias shared by all heads, per-head layout unchecked"


def _mark_shared(tensor):
    """``tensor`` marked as a pair bias of one channel broadcast over every head (an attribute
    on the tensor object: the verdict reads it off the inputs that ran, see :func:`shared_bias`)."""
    tensor._adopter_shared_bias = True
    return tensor


def shared_bias(inputs) -> bool:
    """Did the inputs that ran hold a pair bias shared by all heads (:func:`_mark_shared`)?"""
    values = inputs.values() if isinstance(inputs, dict) else inputs
    return any(getattr(v, "_adopter_shared_bias", False) for v in values)
