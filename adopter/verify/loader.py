"""Import the original module and a patched source side by side, in the same package context.

A file inside a package (folders with ``__init__.py`` up to some root) is imported under its
dotted name, and the patched text is executed as a *sibling* module of it
(``transformers.models.bert.modeling_bert__adopter_ADP004_1``) so that its relative imports
(``from ...modeling_utils import PreTrainedModel``) resolve exactly as the original's do.
A file outside any package is loaded as a standalone module under a private name, with its
folder on ``sys.path`` so that its absolute imports of neighbouring files work, and the patched
text likewise.

The patched text is written to a private temporary folder (so tracebacks and ``inspect`` can
show its lines, and the line tracer can recognise its frames by file name); modules are
registered in ``sys.modules`` while in use and removed by :meth:`ModuleLoader.close`.

A file that imports a package which is not installed here (unguarded) is imported again with a
stub of that package (``stubs.py``): the classes that do not use it load and verify; one that
does raises "needs X" when built or run.  Stubs and every module that took one are forgotten on
close.
"""

from __future__ import annotations

import importlib
import importlib.util
import itertools
import os
import re
import shutil
import sys
import tempfile
from types import ModuleType

from ..structure import package_of
from .stubs import ImportStubs, importing, missing_package, needs_text

_COUNTER = itertools.count(1)


class LoadError(Exception):
    """The module (original or patched) could not be imported."""

    def __init__(self, message: str, missing: str | None = None):
        super().__init__(message)
        self.missing = missing  # a package the module needs that is not installed here


MAX_STUBS = 8


def _ident(text: str) -> str:
    return re.sub(r"\W", "_", text) or "_"


class ModuleLoader:
    """Loads one analysed file and any number of patched variants of it."""

    def __init__(self, path: str):
        self.path = os.path.abspath(path)
        self.stem = _ident(os.path.splitext(os.path.basename(path))[0])
        self.package = package_of(self.path)
        self._added_paths: list[str] = []
        self._names: list[str] = []
        self._tmp = tempfile.mkdtemp(prefix="adopter-verify-")
        self._original: ModuleType | None = None
        self.original_name = ""
        self.stubs = ImportStubs().__enter__()
        if self.package:
            root = os.path.dirname(self.path)
            for _ in self.package.split("."):
                root = os.path.dirname(root)
            self._add_path(root)
        else:
            self._add_path(os.path.dirname(self.path))

    # ------------------------------------------------------------------ sys.path / sys.modules

    def _add_path(self, folder: str) -> None:
        if folder not in sys.path:
            sys.path.insert(0, folder)
            self._added_paths.append(folder)
            importlib.invalidate_caches()

    def close(self) -> None:
        self.stubs.close()
        for name in self._names:
            sys.modules.pop(name, None)
        for folder in self._added_paths:
            try:
                sys.path.remove(folder)
            except ValueError:
                pass
        self._added_paths.clear()
        shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> "ModuleLoader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ loading

    def _exec(self, name: str, file: str) -> ModuleType:
        spec = importlib.util.spec_from_file_location(name, file)
        if spec is None or spec.loader is None:
            raise LoadError(f"cannot create an import spec for {file}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        self._names.append(name)
        try:
            spec.loader.exec_module(module)
        except BaseException as exc:
            sys.modules.pop(name, None)
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            raise LoadError(f"{type(exc).__name__}: {exc}") from exc
        return module

    def original(self) -> ModuleType:
        """The analysed file as it is on disk, imported under its own dotted name if it has one.

        An import of a package that is not installed is retried with a stub of it."""
        if self._original is not None:
            return self._original
        for _ in range(MAX_STUBS + 1):
            try:
                with importing():
                    return self._import_original()
            except LoadError as exc:
                package = self.stubs.can_stub(exc.__cause__) if len(self.stubs.packages) < MAX_STUBS else None
                if package is None:
                    used = missing_package(exc.__cause__)
                    if used:
                        raise LoadError(f"{needs_text(used)} (the module uses it when imported)", used) from None
                    raise
                self.stubs.add(package)
        raise LoadError("too many packages are missing")  # pragma: no cover

    @property
    def stubbed(self) -> list[str]:
        """Packages that are not installed and were replaced by stubs for this file."""
        return list(self.stubs.packages)

    def _import_original(self) -> ModuleType:
        if self.package:
            name = f"{self.package}.{self.stem}"
            try:
                module = importlib.import_module(name)
            except BaseException as exc:
                if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                    raise
                raise LoadError(f"importing {name}: {type(exc).__name__}: {exc}") from exc
            found = getattr(module, "__file__", None)
            if not found or os.path.realpath(found) != os.path.realpath(self.path):
                # The dotted name resolves to another copy (e.g. an installed one): load this
                # file as a sibling so relative imports still go through the same package.
                name = f"{self.package}.{self.stem}__adopter_original_{next(_COUNTER)}"
                module = self._exec(name, self.path)
        else:
            name = f"_adopter_verify_{self.stem}_original_{next(_COUNTER)}"
            module = self._exec(name, self.path)
        self._original = module
        self.original_name = module.__name__
        return module

    def patched(self, text: str, tag: str) -> ModuleType:
        """Execute ``text`` as a sibling of the original module; return the new module."""
        number = next(_COUNTER)
        base = f"{self.stem}__adopter_{_ident(tag)}_{number}"
        file = os.path.join(self._tmp, base + ".py")
        with open(file, "w", encoding="utf-8") as handle:
            handle.write(text)
        name = f"{self.package}.{base}" if self.package else f"_adopter_verify_{base}"
        try:
            with importing():
                return self._exec(name, file)
        except LoadError as exc:
            cause = exc.__cause__
            while cause is not None and not isinstance(cause, ModuleNotFoundError):
                cause = cause.__cause__ or cause.__context__
            package = self.stubs.can_stub(cause) if cause is not None else None
            if package is not None:  # the patch imports a package (its kernel's) that is not here
                raise LoadError(f"the patched module imports {package}: {needs_text(package)}", package) from None
            raise
