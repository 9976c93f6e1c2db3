"""Build the original and the patched class with the same arguments, and example inputs for them.

Three ways, tried in order:

1. a factory named in ``[tool.adopter.verify] factories`` for the class (``"pkg.mod.Block" =
   "pkg.factories:make_block"``): ``make_block(cls)`` returns ``(instance, inputs)`` and is
   called once with the original class and once with the patched one;
2. a Hugging Face config class found in the module: a tiny config (see ``hf.py``) is passed as
   the ``config`` argument;
3. otherwise the ``__init__`` parameters are guessed from their names (``hidden_size``,
   ``in_channels``, ``num_heads``, ``kernel_size``, ...) and annotations; defaults are kept.

Example inputs come from the ``forward`` signature and the built module: hidden states
``[batch, seq, width]`` where width is tried among the module's own widths (the first Linear's
``in_features``, the LayerNorm width, the config's hidden size, ...), images ``[batch, C, H, W]``
for convolution classes, token ids for ``*_ids``, and attention masks in the format the level
suggests (a model takes a ``[batch, seq]`` 0/1 mask, a layer Hugging Face's extended additive
``[batch, 1, 1, seq]`` or ``[batch, 1, seq, seq]`` one).  Candidates are tried richest first and
the first one the *original* module runs without error is used; optional arguments keep their
defaults.  When nothing runs the class is skipped with the reason.
"""

from __future__ import annotations

import ast
import copy
import importlib
import importlib.util
import inspect
import itertools
import logging
import os
import sys
import warnings
from contextlib import nullcontext
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Callable, Iterator

import torch
from torch import nn

from . import hf
from .sizes import Sizes

MAX_INPUT_TRIES = 48
MAX_CTOR_TRIES = 12


class Skip(Exception):
    """The class cannot be built or fed automatically; the message says why."""


class Broken(Exception):
    """The original class builds and runs, the patched one does not: the patch is wrong."""


# ----------------------------------------------------------------------------- calls


def _clone_value(value: Any, device: torch.device | None, grad: bool) -> Any:
    if isinstance(value, torch.Tensor):
        out = value.detach().clone()
        if device is not None:
            out = out.to(device)
        if grad and out.is_floating_point():
            out.requires_grad_(True)
        return out
    if isinstance(value, tuple):
        return tuple(_clone_value(v, device, grad) for v in value)
    if isinstance(value, list):
        return [_clone_value(v, device, grad) for v in value]
    if isinstance(value, dict):
        return {k: _clone_value(v, device, grad) for k, v in value.items()}
    return value


def _describe_value(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        kind = "float" if value.is_floating_point() else str(value.dtype).replace("torch.", "")
        return f"{kind}{list(value.shape)}"
    if isinstance(value, (tuple, list)):
        return "(" + ", ".join(_describe_value(v) for v in value) + ")"
    return repr(value)


@dataclass
class Call:
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)

    def clone(self, device: torch.device | None = None, grad: bool = False) -> "Call":
        return Call(_clone_value(self.args, device, grad), _clone_value(self.kwargs, device, grad))

    def run(self, module: nn.Module) -> Any:
        return module(*self.args, **self.kwargs)

    def leaves(self) -> list[torch.Tensor]:
        out: list[torch.Tensor] = []

        def walk(value: Any) -> None:
            if isinstance(value, torch.Tensor):
                out.append(value)
            elif isinstance(value, (tuple, list)):
                for v in value:
                    walk(v)
            elif isinstance(value, dict):
                for v in value.values():
                    walk(v)

        walk(self.args)
        walk(self.kwargs)
        return out

    def describe(self) -> str:
        parts = [_describe_value(v) for v in self.args]
        parts += [f"{k}={_describe_value(v)}" for k, v in self.kwargs.items()]
        return ", ".join(parts)


@dataclass(frozen=True)
class Variant:
    """Flags that steer a class onto another code path (to reach a patched line)."""

    config: tuple[tuple[str, Any], ...] = ()
    ctor: tuple[tuple[str, Any], ...] = ()
    forward: tuple[tuple[str, Any], ...] = ()

    def label(self) -> str:
        parts = [f"config.{k}={v!r}" for k, v in self.config]
        parts += [f"{k}={v!r} (constructor)" for k, v in self.ctor]
        parts += [f"{k}={v!r} (forward)" for k, v in self.forward]
        return ", ".join(parts)


@dataclass
class Pair:
    original: nn.Module
    patched: nn.Module
    call: Call
    configs: list = field(default_factory=list)
    how: str = ""


# ----------------------------------------------------------------------------- factories


def load_factory(spec: str, root: str | None) -> Callable:
    """``"pkg.mod:func"`` (importable, or relative to the config's folder) or ``"file.py:func"``."""
    if ":" not in spec:
        raise Skip(f"factory {spec!r} must look like 'module:function' or 'file.py:function'")
    target, _, func = spec.rpartition(":")
    added = False
    if root and root not in sys.path:
        sys.path.insert(0, root)
        added = True
    try:
        if target.endswith(".py"):
            file = target if os.path.isabs(target) else os.path.join(root or os.getcwd(), target)
            name = "_adopter_factory_" + os.path.splitext(os.path.basename(file))[0]
            spec_ = importlib.util.spec_from_file_location(name, file)
            if spec_ is None or spec_.loader is None:
                raise Skip(f"factory file {file} cannot be loaded")
            module = importlib.util.module_from_spec(spec_)
            spec_.loader.exec_module(module)
        else:
            module = importlib.import_module(target)
    except Skip:
        raise
    except Exception as exc:
        raise Skip(f"factory {spec!r} cannot be imported: {type(exc).__name__}: {exc}") from None
    finally:
        if added:
            try:
                sys.path.remove(root)
            except ValueError:
                pass
    try:
        return getattr(module, func)
    except AttributeError:
        raise Skip(f"factory {spec!r}: no function {func!r} in {target}") from None


def _factory_inputs(value: Any) -> Call:
    if isinstance(value, Call):
        return value
    if isinstance(value, dict):
        return Call((), dict(value))
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], (tuple, list)) and isinstance(value[1], dict):
        return Call(tuple(value[0]), dict(value[1]))
    if isinstance(value, (tuple, list)):
        return Call(tuple(value), {})
    return Call((value,), {})


# ----------------------------------------------------------------------------- guessing


_INDEX_NAMES = {"layer_idx", "layer_id", "layer_index", "layer_number", "idx", "index", "block_idx", "stage_idx",
                "layer_num", "i", "depth_idx"}
_HIDDEN_NAMES = {"hidden", "hidden_size", "hidden_dim", "d_model", "dim", "embed_dim", "embedding_dim", "n_embd",
                 "in_features", "out_features", "in_dim", "out_dim", "features", "width", "size", "model_dim",
                 "input_dim", "output_dim", "num_features", "d_hidden", "n_state", "nx", "emb_dim"}
_FFN_NAMES = {"intermediate_size", "ffn_dim", "mlp_dim", "hidden_features", "d_ff", "inner_dim", "d_inner",
              "ff_dim", "dim_feedforward", "intermediate_dim", "n_inner"}
_HEAD_NAMES = {"num_heads", "n_heads", "heads", "num_attention_heads", "n_head", "nhead", "num_head"}


def guess_ctor_values(name: str, param: inspect.Parameter, sizes: Sizes, config: Any) -> list[Any]:
    """Candidate values for a required constructor argument, or [] when there is no good guess."""
    lowered = name.lower()
    out: list[Any] = []
    if config is not None and name in vars(config):
        out.append(getattr(config, name))
    annotation = param.annotation
    if annotation is bool or lowered.startswith(("is_", "use_", "has_", "add_")):
        out += [False, True]
    elif lowered in _INDEX_NAMES:
        out.append(0)
    elif lowered == "attention_type":
        out += ["global", "local"]
    elif "channel" in lowered or "plane" in lowered or lowered in ("c_in", "c_out", "filters", "num_filters"):
        out.append(sizes.channels)
    elif lowered in _FFN_NAMES:
        out.append(sizes.ffn)
    elif lowered in _HEAD_NAMES:
        out.append(sizes.heads)
    elif lowered in _HIDDEN_NAMES or lowered.endswith(("_size", "_dim", "_features")):
        out.append(sizes.hidden)
    elif lowered in ("kernel_size", "kernel", "k"):
        out.append(3)
    elif lowered == "stride":
        out.append(1)
    elif lowered == "padding":
        out.append(1)
    elif lowered in ("eps", "layer_norm_eps", "epsilon"):
        out.append(1e-5)
    elif "drop" in lowered or lowered in ("p", "rate"):
        out.append(0.1)
    elif lowered in ("vocab_size", "num_embeddings", "n_vocab"):
        out.append(sizes.vocab)
    elif lowered in ("num_layers", "n_layers", "depth", "n_layer"):
        out.append(sizes.layers)
    elif lowered in ("max_len", "max_length", "seq_len", "block_size", "n_ctx", "max_position_embeddings",
                     "max_seq_len", "context_length"):
        out.append(sizes.positions)
    elif lowered in ("num_classes", "num_labels", "n_classes"):
        out.append(3)
    elif annotation is int:
        out.append(sizes.hidden)
    elif annotation is float:
        out.append(0.1)
    seen: list[Any] = []
    for value in out:
        if not any(value is s or (type(value) is type(s) and value == s) for s in seen):
            seen.append(value)
    return seen


def _widths(module: nn.Module, config: Any, sizes: Sizes) -> list[int]:
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
        elif isinstance(sub, (nn.BatchNorm1d,)):
            rest.append(sub.num_features)
    if config is not None:
        for key in ("hidden_size", "d_model", "n_embd", "dim", "embedding_size"):
            value = getattr(config, key, None)
            if isinstance(value, int) and not isinstance(value, bool):
                rest.append(value)
                break
    rest.append(sizes.hidden)
    for sub in module.modules():
        if isinstance(sub, nn.Linear):
            rest.append(sub.out_features)
    out: list[int] = []
    for width in first + rest:
        if width not in out:
            out.append(width)
    return out[:5]


def _conv_channels(module: nn.Module, config: Any) -> int | None:
    for sub in module.modules():
        if isinstance(sub, nn.Conv2d):
            return sub.in_channels
        if isinstance(sub, nn.BatchNorm2d):
            return sub.num_features
    return None


def _image_size(config: Any, sizes: Sizes) -> int:
    value = getattr(config, "image_size", None) if config is not None else None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, (tuple, list)) and value and isinstance(value[0], int):
        return value[0]
    return sizes.image


# A model's main inputs: given even when optional (they are alternatives to inputs_embeds).
_PRIMARY = ("input_ids", "decoder_input_ids", "pixel_values")
_MODEL_LEVEL = ("input_ids", "pixel_values", "inputs_embeds", "decoder_input_ids", "input_values", "input_features")


def _mask_values(kind: str, sizes: Sizes, dtype=torch.float32) -> torch.Tensor:
    b, s = sizes.batch, sizes.seq
    low = torch.finfo(dtype).min
    if kind == "binary":
        mask = torch.ones(b, s, dtype=torch.long)
        mask[-1, -2:] = 0
        return mask
    if kind == "additive4":
        mask = torch.zeros(b, 1, 1, s, dtype=dtype)
        mask[-1, ..., -2:] = low
        return mask
    if kind == "additive_square":
        mask = torch.zeros(b, 1, s, s, dtype=dtype)
        mask[-1, ..., -2:] = low
        return mask
    if kind == "causal":
        mask = torch.full((s, s), low, dtype=dtype).triu(1)
        return mask[None, None].expand(b, 1, s, s).contiguous()
    raise ValueError(kind)


def input_options(module: nn.Module, config: Any, sizes: Sizes, forward_overrides: dict) -> Iterator[Call]:
    """Candidate calls of ``module``'s forward, richest first."""
    try:
        params = list(inspect.signature(module.forward).parameters.values())
    except (TypeError, ValueError):
        return
    names = {p.name for p in params}
    model_level = bool(names & set(_MODEL_LEVEL))
    b, s = sizes.batch, sizes.seq
    vocab = getattr(config, "vocab_size", None) if config is not None else None
    if not isinstance(vocab, int) or isinstance(vocab, bool) or vocab < 2:
        vocab = sizes.vocab
    widths = _widths(module, config, sizes)
    channels = _conv_channels(module, config)
    num_channels = getattr(config, "num_channels", None) if config is not None else None
    image = _image_size(config, sizes)
    per_param: list[tuple[str, bool, list[Any]]] = []  # (name, positional, candidates)
    generator = torch.Generator().manual_seed(1234)

    def randn(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=generator)

    gap = False  # once a parameter is left out, later ones must be passed by keyword
    for param in params:
        name = param.name
        lowered = name.lower()
        if param.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            gap = True
            continue
        positional = not gap and param.kind in (inspect.Parameter.POSITIONAL_ONLY,
                                                inspect.Parameter.POSITIONAL_OR_KEYWORD)
        required = param.default is inspect.Parameter.empty or name in _PRIMARY
        if name in forward_overrides:
            per_param.append((name, False, [forward_overrides[name]]))
            continue
        if "mask" in lowered:
            if "head" in lowered or ("encoder" in lowered and not required):
                if required:
                    per_param.append((name, positional, [None]))
                else:
                    gap = True
                continue
            if "causal" in lowered:
                candidates = [_mask_values("causal", sizes)]
            elif model_level:
                candidates = [_mask_values("binary", sizes)]
            else:
                candidates = [_mask_values("additive4", sizes), _mask_values("additive_square", sizes)]
                if required:
                    candidates.append(_mask_values("binary", sizes).float())
            if not required:
                candidates.append(_OMIT)
            per_param.append((name, positional, candidates))
            continue
        if not required:
            gap = True
            continue
        if lowered.endswith("ids"):
            if lowered in ("input_ids", "decoder_input_ids"):
                candidates = [torch.randint(0, vocab, (b, s), generator=generator)]
            elif "position" in lowered:
                candidates = [torch.arange(s).expand(b, s).contiguous()]
            else:
                candidates = [torch.zeros(b, s, dtype=torch.long)]
            per_param.append((name, positional, candidates))
            continue
        if param.annotation is bool:
            per_param.append((name, positional, [False]))
            continue
        if param.annotation is int or lowered in ("query_length", "seq_len", "length"):
            per_param.append((name, positional, [s]))
            continue
        candidates = []
        image_like = "pixel" in lowered or "image" in lowered
        if channels is not None or image_like:
            c = channels or num_channels or 3
            candidates.append(randn(b, c, image, image))
        for width in widths:
            candidates.append(randn(b, s, width))
        if channels is None and not image_like:
            for width in widths[:2]:
                candidates.append(randn(b * 4, width))
        per_param.append((name, positional, candidates))

    lists = [c for _, _, c in per_param]
    for count, combo in enumerate(itertools.product(*lists)):
        if count >= MAX_INPUT_TRIES:
            return
        args: list[Any] = []
        kwargs: dict[str, Any] = {}
        keyword_only = False
        for (name, positional, _), value in zip(per_param, combo):
            if value is _OMIT:
                keyword_only = True
                continue
            if positional and not keyword_only:
                args.append(value)
            else:
                kwargs[name] = value
        yield Call(tuple(args), kwargs)


class _Omit:
    def __repr__(self) -> str:
        return "<omitted>"


_OMIT = _Omit()


# ----------------------------------------------------------------------------- the builder


def _is_module_class(obj: Any) -> bool:
    return isinstance(obj, type) and issubclass(obj, nn.Module)


def _seed() -> None:
    torch.manual_seed(0)


def run_quietly(fn: Callable[[], Any]) -> Any:
    """Run ``fn`` without the warnings and log messages model code prints while being built."""
    previous = logging.root.manager.disable
    logging.disable(max(previous, logging.WARNING))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fn()
    finally:
        logging.disable(previous)


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if len(text) > 160:
        text = text[:157] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class Builder:
    """Builds (original, patched) instances of one class of one analysed file."""

    def __init__(self, original: ModuleType, source_text: str, sizes: Sizes, factories: dict[str, str] | None = None,
                 root: str | None = None, module_name: str = ""):
        self.original = original
        self.sizes = sizes
        self.factories = dict(factories or {})
        self.root = root
        self.module_name = module_name
        try:
            self._tree = ast.parse(source_text)
        except SyntaxError:
            self._tree = None

    # ------------------------------------------------------------ helpers

    def factory_for(self, class_name: str) -> str | None:
        for key in (f"{self.module_name}.{class_name}", class_name):
            if key in self.factories:
                return self.factories[key]
        for key, value in self.factories.items():
            if key.endswith("." + class_name) or key.endswith(":" + class_name):
                return value
        return None

    def class_of(self, module: ModuleType, class_name: str) -> type:
        cls = getattr(module, class_name, None)
        if not _is_module_class(cls):
            raise Skip(f"{class_name} is not an nn.Module class at module level")
        return cls

    def _class_node(self, class_name: str) -> ast.ClassDef | None:
        if self._tree is None:
            return None
        for node in self._tree.body:
            if isinstance(node, ast.ClassDef) and node.name == class_name:
                return node
        return None

    def config_flags_used(self, class_name: str) -> list[str]:
        node = self._class_node(class_name)
        if node is None:
            return []
        names: list[str] = []
        for sub in ast.walk(node):
            if isinstance(sub, ast.Attribute):
                base = sub.value
                if (isinstance(base, ast.Name) and base.id == "config") or (
                        isinstance(base, ast.Attribute) and base.attr == "config"):
                    if sub.attr not in names:
                        names.append(sub.attr)
        return names

    # ------------------------------------------------------------ variants

    def variants(self, class_name: str) -> list[Variant]:
        """The default build first, then one flag flipped at a time."""
        out = [Variant()]
        if self.factory_for(class_name):
            return out
        cls = self.class_of(self.original, class_name)
        config_cls = next(iter(hf.config_candidates(cls, self.original)), None) if self._takes_config(cls) else None
        if config_cls is not None:
            try:
                default = hf.tiny_config(config_cls, self.sizes)
            except Exception:
                default = None
            if default is not None:
                for name in self.config_flags_used(class_name):
                    value = getattr(default, name, None)
                    if isinstance(value, bool):
                        out.append(Variant(config=((name, not value),)))
        for where, func in (("ctor", cls.__init__), ("forward", cls.forward)):
            try:
                params = list(inspect.signature(func).parameters.values())[1:]
            except (TypeError, ValueError):
                continue
            for param in params:
                if isinstance(param.default, bool):
                    item = ((param.name, not param.default),)
                    out.append(Variant(ctor=item) if where == "ctor" else Variant(forward=item))
        return out

    @staticmethod
    def _takes_config(cls: type) -> bool:
        try:
            params = list(inspect.signature(cls.__init__).parameters.values())[1:]
        except (TypeError, ValueError):
            return False
        return any(p.name == "config" or hf._annotation_configs(p.annotation) for p in params)

    # ------------------------------------------------------------ construction

    def _ctor_options(self, cls: type, variant: Variant) -> Iterator[tuple[tuple, dict, Any, str]]:
        try:
            params = list(inspect.signature(cls.__init__).parameters.values())[1:]
        except (TypeError, ValueError):
            raise Skip(f"cannot read the signature of {cls.__name__}.__init__") from None
        ctor_overrides = dict(variant.ctor)
        config_param = None
        for param in params:
            if param.name == "config" or hf._annotation_configs(param.annotation):
                config_param = param
                break
        configs: list[tuple[Any, str]] = [(None, "")]
        if config_param is not None:
            candidates = hf.config_candidates(cls, self.original)
            if not candidates:
                raise Skip(f"{cls.__name__} takes a config but no config class was found in the module; "
                           "name a factory in [tool.adopter.verify]")
            configs = []
            for config_cls in candidates:
                try:
                    config = hf.tiny_config(config_cls, self.sizes, dict(variant.config))
                except Exception:
                    continue
                configs.append((config, hf.describe(config, self.sizes)))
            if not configs:
                raise Skip(f"none of {', '.join(c.__name__ for c in candidates)} builds with default arguments")
        for config, label in configs:
            per_param: list[tuple[inspect.Parameter, list[Any]]] = []
            for param in params:
                if param is config_param:
                    per_param.append((param, [config]))
                elif param.name in ctor_overrides:
                    per_param.append((param, [ctor_overrides[param.name]]))
                elif param.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
                    continue
                elif param.default is not inspect.Parameter.empty:
                    continue
                else:
                    values = guess_ctor_values(param.name, param, self.sizes, config)
                    if not values:
                        raise Skip(f"cannot infer the constructor argument {param.name!r} of {cls.__name__}; "
                                   "name a factory in [tool.adopter.verify]")
                    per_param.append((param, values))
            for count, combo in enumerate(itertools.product(*[v for _, v in per_param])):
                if count >= MAX_CTOR_TRIES:
                    break
                args: list[Any] = []
                kwargs: dict[str, Any] = {}
                for (param, _), value in zip(per_param, combo):
                    if param.kind == inspect.Parameter.POSITIONAL_ONLY:
                        args.append(value)
                    else:
                        kwargs[param.name] = value
                shown = ", ".join([label] * (config is not None) + [f"{p.name}={v!r}" for (p, _), v in zip(per_param, combo)
                                                                   if p is not config_param])
                yield tuple(args), kwargs, config, shown

    def build(self, class_name: str, patched_module: ModuleType, variant: Variant = Variant(),
              patched_context: Callable[[], Any] = nullcontext) -> Pair:
        original_cls = self.class_of(self.original, class_name)
        try:
            patched_cls = self.class_of(patched_module, class_name)
        except Skip as exc:
            raise Broken(f"the patched module has no class {class_name}: {exc}") from None
        spec = self.factory_for(class_name)
        if spec:
            return self._build_with_factory(spec, original_cls, patched_cls, patched_context)
        first_error: str | None = None
        for args, kwargs, config, shown in self._ctor_options(original_cls, variant):
            _seed()
            try:
                original = run_quietly(lambda: original_cls(*args, **kwargs))
            except Exception as exc:
                first_error = first_error or f"{class_name}({shown}) raised {_short(exc)}"
                continue
            original.eval()
            call = self._first_working_call(original, config, dict(variant.forward))
            if isinstance(call, str):
                first_error = first_error or call
                continue
            patched_args, patched_kwargs = copy.deepcopy((args, kwargs))
            patched_config = next((v for v in [*patched_args, *patched_kwargs.values()] if hf.is_config(v)), None)
            _seed()
            try:
                with patched_context():
                    patched = run_quietly(lambda: patched_cls(*patched_args, **patched_kwargs))
            except Exception as exc:
                raise Broken(f"the patched {class_name}({shown}) raised {_short(exc)}; the original builds") from None
            configs = [c for c in (config, patched_config) if c is not None]
            return Pair(original, patched, call, configs, f"{class_name}({shown})")
        raise Skip(first_error or f"no way to build {class_name}")

    def _first_working_call(self, module: nn.Module, config: Any, forward_overrides: dict) -> Call | str:
        first_error: str | None = None
        tried = 0
        for call in input_options(module, config, self.sizes, forward_overrides):
            tried += 1
            _seed()
            try:
                with torch.no_grad():
                    run_quietly(lambda: call.clone().run(module))
            except Exception as exc:
                first_error = first_error or f"{type(module).__name__}.forward({call.describe()}) raised {_short(exc)}"
                continue
            return call
        if not tried:
            return f"cannot infer the inputs of {type(module).__name__}.forward; name a factory in [tool.adopter.verify]"
        return (first_error or "no inputs") + "; name a factory in [tool.adopter.verify] to supply inputs"

    def _build_with_factory(self, spec: str, original_cls: type, patched_cls: type,
                            patched_context: Callable[[], Any]) -> Pair:
        factory = load_factory(spec, self.root)
        kwargs: dict[str, Any] = {}
        try:
            if "size" in inspect.signature(factory).parameters:
                kwargs["size"] = self.sizes.name
        except (TypeError, ValueError):
            pass
        _seed()
        try:
            made = run_quietly(lambda: factory(original_cls, **kwargs))
            original, inputs = made
        except Exception as exc:
            raise Skip(f"factory {spec} raised {_short(exc)} for the original class") from None
        if not isinstance(original, nn.Module):
            raise Skip(f"factory {spec} must return (module, inputs)")
        _seed()
        try:
            with patched_context():
                patched, _ = run_quietly(lambda: factory(patched_cls, **kwargs))
        except Exception as exc:
            raise Broken(f"factory {spec} raised {_short(exc)} for the patched class; it works for the original") from None
        call = _factory_inputs(inputs)
        configs = [c for c in (getattr(original, "config", None), getattr(patched, "config", None)) if hf.is_config(c)]
        return Pair(original, patched, call, configs, f"factory {spec}")


def zero_dropout(module: nn.Module) -> None:
    """Every dropout probability to 0: ``nn.Dropout*`` modules and float attributes named like dropout."""
    for sub in module.modules():
        if isinstance(sub, nn.modules.dropout._DropoutNd):
            sub.p = 0.0
        for key, value in list(vars(sub).items()):
            if key.startswith("_"):
                continue
            if isinstance(value, float) and hf.is_dropout_name(key) and 0.0 < value < 1.0:
                setattr(sub, key, 0.0)
            elif hf.is_config(value):
                hf.zero_dropout_config(value)
