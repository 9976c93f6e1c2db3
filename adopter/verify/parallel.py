"""Single-process distributed state for model code that needs a process group to be built.

Model-parallel layers (fairscale's ``ColumnParallelLinear``, Megatron-style tensor-parallel
layers, a research file's own sharded projections) ask a module-level group for the world size
while they are built, and fail when none is set up: ``model parallel group is not initialized``,
``Default process group has not been initialized``.  Verify compares a layer with its patched
copy on one device, where every group has size 1 and the sharded layer is the whole layer.

:class:`Groups` reads such an error and sets up what it asks for, then the build is tried again:

* the default ``torch.distributed`` process group, when a frame of ``torch.distributed`` raised
  and none exists: gloo, world size 1, rank 0, rendezvous through a file in a fresh temporary
  folder (no port to pick);
* the library's own group, when the raising function tests a module-level global that is
  ``None`` (``assert _MODEL_PARALLEL_GROUP is not None``): the function of the same module that
  assigns that global (``global _MODEL_PARALLEL_GROUP; _MODEL_PARALLEL_GROUP = ...``) is called
  with each required argument 1 (every parallel size of a single process) and its optional ones
  left at their defaults.  The setter is found by what it does, never by its name: it assigns
  the global and calls into ``torch.distributed`` (a setter of some other global is not called).

* where CUDA is not available and a frame of ``torch.cuda`` raised (a constructor's
  ``torch.zeros(...).cuda()``): ``.cuda()`` of tensors and modules leaves them on this device,
  the one verify runs both modules on.

:meth:`Groups.close` undoes it all: the library globals get their previous values back and the
process group verify made is destroyed.
"""

from __future__ import annotations

import ast
import contextlib
import inspect
import io
import os
import shutil
import tempfile
from types import TracebackType
from typing import Any, Callable

MAX_SETUPS = 4  # setters called per module at most


def _frames(tb: TracebackType | None) -> list:
    out = []
    while tb is not None:
        out.append(tb.tb_frame)
        tb = tb.tb_next
    return out


def _raised_in(frames: list, package: str) -> bool:
    """Did a frame of ``package`` or one of its modules raise (``torch.distributed``: no
    process group; ``torch.cuda``: ``Torch not compiled with CUDA enabled``, no driver)?"""
    for frame in frames:
        name = frame.f_globals.get("__name__", "")
        if isinstance(name, str) and (name == package or name.startswith(package + ".")):
            return True
    return False


def _unset_globals(frame) -> list[str]:
    """Module-level globals the raising function reads that are ``None`` now."""
    module_globals = frame.f_globals
    names = []
    for name in frame.f_code.co_names:
        if name in module_globals and module_globals[name] is None and not name.startswith("__"):
            names.append(name)
    return names


def _setters(module_globals: dict, filename: str, names: set[str]) -> list[Callable]:
    """Module-level functions of the raising frame's module (its source read from its file, so a
    module verify loaded itself counts too) that declare one of ``names`` global and assign it."""
    try:
        with open(filename, encoding="utf-8") as handle:
            tree = ast.parse(handle.read())
    except (OSError, SyntaxError, ValueError):
        return []
    out: list[Callable] = []
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef):
            continue
        declared: set[str] = set()
        assigned: set[str] = set()
        for sub in ast.walk(node):
            if isinstance(sub, ast.Global):
                declared.update(sub.names)
            elif isinstance(sub, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
                targets = sub.targets if isinstance(sub, ast.Assign) else [sub.target]
                for target in targets:
                    for leaf in ast.walk(target):
                        if isinstance(leaf, ast.Name):
                            assigned.add(leaf.id)
        func = module_globals.get(node.name)
        if declared & assigned & names and callable(func) and _calls_distributed(node, module_globals) and \
                getattr(getattr(func, "__code__", None), "co_filename", None) == filename:
            out.append(func)
    return out


def _calls_distributed(function: ast.FunctionDef, module_globals: dict) -> bool:
    """Whether the function calls into ``torch.distributed`` (``dist.new_group(...)``,
    ``torch.distributed.get_world_size()``): it sets up process groups, not some other global."""
    import torch.distributed

    for sub in ast.walk(function):
        if not isinstance(sub, ast.Call):
            continue
        chain: list[str] = []
        node = sub.func
        while isinstance(node, ast.Attribute):
            chain.append(node.attr)
            node = node.value
        if not isinstance(node, ast.Name):
            continue
        target = module_globals.get(node.id)
        for attr in reversed(chain[1:]):  # down to the module holding the called function
            if target is torch.distributed:
                break
            target = getattr(target, attr, None)
        if target is torch.distributed or (callable(target) and not chain and
                                           str(getattr(target, "__module__", "")).startswith("torch.distributed")):
            return True  # ``from torch.distributed import new_group`` too
    return False


def _single_process_call(func: Callable) -> tuple[tuple, dict] | None:
    """Arguments for a setter: each required parameter 1 (a size of one process)."""
    try:
        params = list(inspect.signature(func).parameters.values())
    except (TypeError, ValueError):
        return None
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    for param in params:
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD) or param.default is not param.empty:
            continue
        if param.annotation not in (param.empty, int, "int"):
            return None  # a required argument that is not a size: not ours to guess
        if param.kind == param.KEYWORD_ONLY:
            kwargs[param.name] = 1
        else:
            args.append(1)
    return tuple(args), kwargs


class Groups:
    """The process group and library groups verify set up for one file, and how to undo them."""

    def __init__(self) -> None:
        self._folder: str | None = None
        self._started = False
        self._saved: list[tuple[dict, str, Any]] = []  # (module globals, name, previous value)
        self._called: set[Callable] = set()
        self._host_cuda: tuple | None = None  # torch's own .cuda() methods while _keep_on_host holds
        self.notes: list[str] = []

    # ------------------------------------------------------------ setting up

    def repair(self, exc: BaseException) -> bool:
        """Set up what ``exc`` says is missing; True when something new was set up (try again)."""
        frames = _frames(exc.__traceback__)
        if not frames:
            return False
        if _raised_in(frames, "torch.distributed") and self._start_process_group():
            return True
        if _raised_in(frames, "torch.cuda") and self._keep_on_host():
            return True
        last = frames[-1]
        names = _unset_globals(last)
        if not names:
            return False
        for setter in _setters(last.f_globals, last.f_code.co_filename, set(names)):
            # each module (the original, every patched copy) sets up its own, a few setters each
            if setter in self._called or sum(1 for f in self._called if f.__globals__ is last.f_globals) >= MAX_SETUPS:
                continue
            call = _single_process_call(setter)
            if call is None:
                continue
            self._called.add(setter)
            if self._run_setter(last.f_globals, setter, call, names):
                return True
        return False

    def _run_setter(self, module_globals: dict, setter: Callable, call: tuple[tuple, dict], wanted: list[str]
                    ) -> bool:
        before = dict(module_globals)
        for attempt in range(2):
            try:
                with contextlib.redirect_stdout(io.StringIO()):  # libraries announce it ("> initializing ...")
                    setter(*call[0], **call[1])
                break
            except Exception:  # the setter itself may need the default process group first
                self._restore_changed(module_globals, before)
                if attempt or not self._start_process_group():
                    return False
        if all(module_globals.get(name) is None for name in wanted):  # it set nothing asked for (a teardown)
            self._restore_changed(module_globals, before)
            return False
        for name, value in list(module_globals.items()):
            if name not in before:
                self._saved.append((module_globals, name, _ABSENT))
            elif value is not before[name]:
                self._saved.append((module_globals, name, before[name]))
        name = module_globals.get("__name__", "")
        # a library module by its name; verify's own copies of the file (original, patched) by the function's
        own_copy = "_adopter_verify_" in name or "__adopter_" in name
        where = f"{name}." if name and not own_copy else ""
        note = f"{where}{setter.__name__}(" + \
            ", ".join([*map(repr, call[0]), *(f"{k}={v!r}" for k, v in call[1].items())]) + ")"
        if note not in self.notes:  # verify's own copies of the file (original, patched) say it once
            self.notes.append(note)
        return True

    @staticmethod
    def _restore_changed(module_globals: dict, before: dict) -> None:
        for name in [n for n in module_globals if n not in before]:
            del module_globals[name]
        for name, value in before.items():
            if module_globals.get(name, _ABSENT) is not value:
                module_globals[name] = value

    def _start_process_group(self) -> bool:
        import torch.distributed as dist

        if not dist.is_available() or dist.is_initialized() or not dist.is_gloo_available():
            return False
        self._folder = tempfile.mkdtemp(prefix="adopter-verify-group-")
        store = os.path.join(self._folder, "store")
        try:
            dist.init_process_group("gloo", init_method=f"file://{store}", world_size=1, rank=0)
        except Exception:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None
            return False
        self._started = True
        self.notes.append("a single-process gloo group")
        return True

    def _keep_on_host(self) -> bool:
        """Where CUDA is not available, ``.cuda()`` of a tensor or module leaves it where it is:
        verify builds and runs the original and the patched module on one device (this one), so a
        buffer a constructor moves to the GPU (llama's ``self.cache_k = torch.zeros(...).cuda()``)
        stays with the rest.  Once; undone by :meth:`close`."""
        import torch

        if self._host_cuda is not None or torch.cuda.is_available():
            return False
        self._host_cuda = (torch.Tensor.cuda, torch.nn.Module.cuda)

        def tensor_cuda(self, device=None, non_blocking=False, memory_format=None):
            return self

        def module_cuda(self, device=None):
            return self

        torch.Tensor.cuda = tensor_cuda
        torch.nn.Module.cuda = module_cuda
        self.notes.append("`.cuda()` kept on this device (CUDA is not available here)")
        return True

    def describe(self) -> str:
        return "; set up " + ", ".join(self.notes) if self.notes else ""

    # ------------------------------------------------------------ undoing

    def close(self) -> None:
        for module_globals, name, value in reversed(self._saved):
            if value is _ABSENT:
                module_globals.pop(name, None)
            else:
                module_globals[name] = value
        self._saved.clear()
        self._called.clear()
        if self._host_cuda is not None:
            import torch

            torch.Tensor.cuda, torch.nn.Module.cuda = self._host_cuda
            self._host_cuda = None
        if self._started:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()
            self._started = False
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None

    def __enter__(self) -> "Groups":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


_ABSENT = object()


class ModelCodeError(Exception):
    """A ``BaseException`` that model code raised which is neither an exit nor an interrupt
    (transformers' ``OptionalDependencyNotAvailable`` derives from ``BaseException``): raised
    again as an ``Exception``, so that verification reports that class as not runnable here
    instead of stopping at it.  ``raised`` is the original."""

    def __init__(self, raised: BaseException):
        super().__init__(f"{type(raised).__name__}: {raised}" if str(raised) else type(raised).__name__)
        self.raised = raised


def as_exception(fn: Callable[[], Any]) -> Any:
    """``fn()``, with a non-exit ``BaseException`` it raises turned into a :class:`ModelCodeError`."""
    try:
        return fn()
    except (Exception, KeyboardInterrupt, SystemExit, GeneratorExit):
        raise
    except BaseException as exc:
        raise ModelCodeError(exc) from exc


def construct(groups: Groups | None, make: Callable[[], Any]) -> Any:
    """``make()``, tried again after each error ``groups`` can set something up for."""
    while True:
        try:
            return as_exception(make)
        except Exception as exc:
            if groups is None or not groups.repair(exc):
                raise
