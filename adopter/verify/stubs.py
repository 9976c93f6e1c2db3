"""Stand-ins for packages a model file imports but verify's environment does not have.

Research files import packages their model classes never touch: PIL for a transform, wandb or
tiktoken in a training helper, fairscale for an optional parallel layer.  Without them the whole
file fails to import and no patch in it can be verified.  So when importing the original module
fails with ``ModuleNotFoundError`` for a top-level package that is not installed (and the import
was not guarded by the file's own ``try/except ImportError``, which propagates no error), verify
retries with a *stub* of that package:

- ``import X``, ``from X.sub import name``, ``X.a.b`` all succeed at import time (attribute
  access yields placeholders, so default arguments such as ``Image.BILINEAR`` and annotations
  still evaluate);
- any real *use* of a placeholder - calling it, iterating it, indexing it, truth-testing it,
  arithmetic - raises :class:`MissingDependency` ("needs X"), so a class that does use the
  package still fails honestly and verify reports which package to install; a class statement
  that subclasses one runs, and making an instance of that subclass raises;
- ``isinstance(obj, placeholder)`` is False: nothing can be an instance of a class that is not
  installed; a stub module's ``__version__`` is ``"0.0.0"`` (import-time version checks);
- while the module itself is being imported, calling a placeholder is lenient: as a decorator
  (``@numba.jit``) it leaves the function as written, otherwise it gives another placeholder
  (``ENC = tiktoken.get_encoding("gpt2")``), which raises when the code that needs it runs.

The stubs are scoped to one verification run: :class:`ImportStubs` is a context manager that
puts its finder at the *end* of ``sys.meta_path`` (installed packages always win) and, on exit,
removes the finder, the stub modules and every module imported during the run that holds a
stub, so nothing of it stays in ``sys.modules``.  An import inside a ``try`` block that catches
``ImportError`` is never stubbed: the file has its own fallback, and taking it is the truth.
"""

from __future__ import annotations

import ast
import contextlib
import importlib.abc
import inspect
import importlib.machinery
import importlib.util
import linecache
import sys
from functools import lru_cache
from types import ModuleType
from typing import Any, Iterable

__all__ = ["ImportStubs", "MissingDependency", "importing", "is_stub", "left_out_used", "missing_package", "needs_text"]


_IMPORTING = 0  # > 0 while verify imports the analysed module (see Placeholder.__call__)


@contextlib.contextmanager
def importing():
    """Mark the import of the analysed module (calls of placeholders are lenient meanwhile)."""
    global _IMPORTING
    _IMPORTING += 1
    try:
        yield
    finally:
        _IMPORTING -= 1


# Names a module-level statement of the analysed file would have bound, had it not raised when
# imported here (``loader.py``, "unavailable"): key -> what to say when one is used.
UNAVAILABLE: dict[str, str] = {}


class MissingDependency(RuntimeError):
    """A stubbed (not installed) package was used: the code needs it."""

    def __init__(self, package: str, what: str):
        if package in UNAVAILABLE:
            super().__init__(f"{UNAVAILABLE[package]} ({what} was used)")
        else:
            super().__init__(f"needs {package} (not installed here; {what} was used)")
        self.package = package
        self.what = what


def _raiser(action: str):
    def method(self, *args, **kwargs):
        raise MissingDependency(object.__getattribute__(self, "_adopter_package"),
                                f"{object.__getattribute__(self, '_adopter_path')} ({action})")

    return method


class Placeholder:
    """A name from a missing package: fine to mention, an error to use."""

    __slots__ = ("_adopter_package", "_adopter_path")

    def __init__(self, package: str, path: str):
        object.__setattr__(self, "_adopter_package", package)
        object.__setattr__(self, "_adopter_path", path)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return Placeholder(self._adopter_package, f"{self._adopter_path}.{name}")

    def __repr__(self) -> str:
        return f"<not installed: {self._adopter_path}>"

    def __instancecheck__(self, instance: Any) -> bool:  # isinstance(x, placeholder)
        return False

    def __subclasscheck__(self, subclass: Any) -> bool:
        return False

    def __mro_entries__(self, bases):
        return (_stand_in_base(self._adopter_package, self._adopter_path),)

    def __call__(self, *args, **kwargs):
        if _IMPORTING:
            # While a module is being imported, a call is most likely a decorator (``@numba.jit``,
            # ``@numba.jit(nopython=True)``) or a module constant (``enc = tiktoken.get_encoding()``):
            # a decorator leaves the function as written, a constant stays a placeholder that
            # raises when the code that needs it runs.
            if len(args) == 1 and not kwargs and (inspect.isfunction(args[0]) or inspect.isclass(args[0])):
                return args[0]
            return Placeholder(self._adopter_package, f"{self._adopter_path}(...)")
        raise MissingDependency(self._adopter_package, f"{self._adopter_path} (called)")
    def __getitem__(self, key):
        if _IMPORTING:
            # an annotation evaluated at import time (``beartype.typing.Optional[int]``,
            # ``Float[Tensor, "b n"]``): another placeholder, an error only where it is used
            return Placeholder(self._adopter_package, f"{self._adopter_path}[...]")
        raise MissingDependency(self._adopter_package, f"{self._adopter_path} (indexed)")

    def __or__(self, other):
        if _IMPORTING:  # ``Placeholder | None`` in an annotation
            return Placeholder(self._adopter_package, f"{self._adopter_path} | ...")
        raise MissingDependency(self._adopter_package, f"{self._adopter_path} (arithmetic)")

    __ror__ = __or__
    __iter__ = _raiser("iterated")
    __len__ = _raiser("len")
    __setitem__ = _raiser("item set")
    __bool__ = _raiser("truth-tested")
    __enter__ = _raiser("used as a context manager")
    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _raiser("arithmetic")
    __truediv__ = __rtruediv__ = __matmul__ = __rmatmul__ = __neg__ = __pow__ = _raiser("arithmetic")
    __lt__ = __le__ = __gt__ = __ge__ = _raiser("compared")
    __float__ = __int__ = __index__ = _raiser("converted")

    def __setattr__(self, name: str, value: Any) -> None:
        raise MissingDependency(self._adopter_package, f"{self._adopter_path}.{name} (set)")


def _stand_in_base(package: str, path: str) -> type:
    """A base class for ``class X(missing.Base)``: the class statement runs, but making an
    instance (or reading an attribute the missing base would have provided) raises."""

    def __init__(self, *args, **kwargs):
        # A missing mixin beside an installed base (``class Config(MissingMixin, PretrainedConfig)``,
        # whose ``__init__`` calls ``super().__init__(**kwargs)``): the construction goes on to the
        # installed base, as a mixin without an ``__init__`` of its own would let it.  Whatever the
        # mixin would have given -- a method, an attribute it set -- still raises where it is read
        # (``__getattr__`` below), so nothing of it is faked.  Alone, or before only other stand-ins,
        # the instance cannot be made.
        mro = type(self).__mro__
        after = mro[mro.index(stand_in) + 1:]
        real = [c for c in after if c is not object and "_adopter_package" not in vars(c)]
        if not real:
            raise MissingDependency(package, f"{path} (a subclass was instantiated)")
        super(stand_in, self).__init__(*args, **kwargs)

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        # (an installed base after the mixin with a lookup of its own -- nn.Module's, which finds
        # the layers and parameters it registered -- answers first)
        try:
            later = super(stand_in, self).__getattr__
        except AttributeError:
            later = None
        if later is not None:
            try:
                return later(name)
            except AttributeError:
                pass
        raise MissingDependency(package, f"{path}.{name}")

    stand_in = type(path.rsplit(".", 1)[-1], (), {"__init__": __init__, "__getattr__": __getattr__,
                                                  "_adopter_package": package, "__module__": __name__})
    return stand_in


class StubModule(ModuleType):
    """A module of a missing package: every public name is a :class:`Placeholder`."""

    def __init__(self, name: str, package: str):
        super().__init__(name, f"stand-in for {name}, which is not installed (adopter verify)")
        self._adopter_package = package
        # Import-time version checks (``PIL.__version__.split(".")``) must not stop the import;
        # whatever path they choose, a real use of the package still raises.
        self.__version__ = "0.0.0"

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return Placeholder(self._adopter_package, f"{self.__name__}.{name}")


def left_out_used(reason: str) -> bool:
    """Whether a skip reason is the use of a name a left-out module-level statement binds (see
    ``UNAVAILABLE``): another build or input may take a path that does not use it."""
    return reason in UNAVAILABLE.values()


def is_stub(value: Any) -> bool:
    return isinstance(value, StubModule) or type(value) is Placeholder


def missing_package(exc: BaseException | None) -> str | None:
    """The package a :class:`MissingDependency` in ``exc``'s chain names, if any."""
    seen = 0
    while exc is not None and seen < 20:
        if isinstance(exc, MissingDependency):
            return exc.package
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return None


def needs_text(package: str) -> str:
    """The skip reason: the one thing the user must provide."""
    if package in UNAVAILABLE:
        return UNAVAILABLE[package]
    return f"needs {package}, which is not installed here: install {package} where verify runs"


class _Loader(importlib.abc.Loader):
    def __init__(self, package: str):
        self.package = package

    def create_module(self, spec):
        module = StubModule(spec.name, self.package)
        module.__path__ = []  # a package, so that submodules import too
        return module

    def exec_module(self, module) -> None:
        return None


@lru_cache(maxsize=256)
def _guarded_lines(filename: str) -> frozenset[int]:
    """Lines of ``filename`` inside a ``try`` body whose handlers catch ImportError."""
    lines = linecache.getlines(filename)
    if not lines:
        return frozenset()
    try:
        tree = ast.parse("".join(lines))
    except (SyntaxError, ValueError):
        return frozenset()
    catching = {"ImportError", "ModuleNotFoundError", "Exception", "BaseException"}
    out: set[int] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Try):
            continue
        names: set[str] = set()
        bare = False
        for handler in node.handlers:
            if handler.type is None:
                bare = True
            for sub in ast.walk(handler.type) if handler.type is not None else ():
                if isinstance(sub, ast.Name):
                    names.add(sub.id)
                elif isinstance(sub, ast.Attribute):
                    names.add(sub.attr)
        if bare or names & catching:
            for stmt in node.body:
                out.update(range(stmt.lineno, (stmt.end_lineno or stmt.lineno) + 1))
    return frozenset(out)


def _import_is_guarded() -> bool:
    """Whether the import being resolved sits in a ``try`` that handles ImportError."""
    frame = sys._getframe(2)
    while frame is not None:
        filename = frame.f_code.co_filename
        if not filename.startswith("<frozen") and "importlib" not in filename and filename != __file__:
            return frame.f_lineno in _guarded_lines(filename)
        frame = frame.f_back
    return False


class ImportStubs(importlib.abc.MetaPathFinder):
    """Stubs for named missing top-level packages, for the duration of a ``with`` block."""

    def __init__(self) -> None:
        self.packages: list[str] = []
        self._before: set[str] = set()
        self._active = False

    # ------------------------------------------------------------------ finder

    def find_spec(self, fullname: str, path=None, target=None):
        top = fullname.partition(".")[0]
        if top not in self.packages or _import_is_guarded():
            return None
        return importlib.machinery.ModuleSpec(fullname, _Loader(top), is_package=True)

    # ------------------------------------------------------------------ which packages

    def can_stub(self, exc: BaseException) -> str | None:
        """The top-level package to stub for this import failure, or None."""
        while exc is not None and not isinstance(exc, ModuleNotFoundError):
            exc = exc.__cause__ or exc.__context__
        if exc is None or not exc.name:
            return None
        top = exc.name.partition(".")[0]
        if top in self.packages or top in sys.builtin_module_names:
            return None
        try:
            if importlib.util.find_spec(top) is not None:
                return None  # installed: the failure is something else (a missing submodule)
        except (ImportError, ValueError):
            pass
        return top

    def add(self, package: str) -> None:
        self.packages.append(package)
        importlib.invalidate_caches()

    # ------------------------------------------------------------------ scope

    def __enter__(self) -> "ImportStubs":
        self._before = set(sys.modules)
        sys.meta_path.append(self)
        self._active = True
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if not self._active:
            return
        self._active = False
        try:
            sys.meta_path.remove(self)
        except ValueError:
            pass
        if self.packages:
            for name in tainted(sys.modules, self._before, self.packages):
                sys.modules.pop(name, None)
        importlib.invalidate_caches()


def _holds_stub(module: Any) -> bool:
    try:
        values: Iterable[Any] = list(vars(module).values())
    except TypeError:
        return False
    return any(is_stub(v) for v in values)


def tainted(modules: dict, before: set[str], packages: list[str]) -> list[str]:
    """Modules to forget after a run with stubs: the stubs, and new modules that reference one
    (directly, or through a new module already forgotten)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _tainted(modules, before, packages)


def _tainted(modules: dict, before: set[str], packages: list[str]) -> list[str]:
    out: set[str] = set()
    for name, module in list(modules.items()):
        if name.partition(".")[0] in packages or isinstance(module, StubModule):
            out.add(name)
    new = [n for n in list(modules) if n not in before and n not in out]
    changed = True
    while changed:
        changed = False
        for name in new:
            if name in out:
                continue
            module = modules.get(name)
            if module is None:
                continue
            # (a package may put an object without a ``__dict__`` in sys.modules: it holds nothing)
            if _holds_stub(module) or any(isinstance(v, ModuleType) and getattr(v, "__name__", None) in out
                                          for v in list(getattr(module, "__dict__", {}).values())):
                out.add(name)
                changed = True
    return sorted(out)
