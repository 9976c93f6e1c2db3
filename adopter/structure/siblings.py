"""The other modules of the package a checked file belongs to, read for layer typing.

``from .utils import get_same_padding_conv2d`` or ``from .common.conv import conv1x1``: what
the imported function builds is defined in a sibling module.  When the checked file lies in a
package on disk (``__init__.py`` folders, :func:`adopter.structure.names.package_of`), a name
imported from a module of the *same* top package is looked up in that module's source: parsed
with ``ast`` (never imported or executed), once per process (cached by path, size and
modification time), only when the name is built into a layer, and only below the package's
own folder (no other installed package is read), with a size cap and a small depth for
re-exports (``from .conv import conv1x1`` in ``common/__init__.py``, ``from .conv import *``).
"""

from __future__ import annotations

import ast
import os

from .names import ModuleNames, collect_names

MAX_BYTES = 512_000  # a larger module is not read (generated code, vendored tables)
MAX_HOPS = 3  # re-exports followed from one import

# path -> (size, mtime_ns, typer or None); a typer keeps the module's tree and names
_MODULES: dict[str, tuple] = {}


class Package:
    """The package of one checked file: its dotted name and the folder holding its top."""

    def __init__(self, package: str, path: str):
        self.package = package
        self.top = package.split(".")[0]
        folder = os.path.dirname(os.path.abspath(path))
        for _ in range(package.count(".") + 1):
            folder = os.path.dirname(folder)
        self.base = folder  # <base>/<top>/.../the file

    def owns(self, fqn: str) -> bool:
        return fqn.split(".", 1)[0] == self.top and "." in fqn

    def _file(self, module: str) -> str | None:
        parts = module.split(".")
        if parts[0] != self.top or any(not p.isidentifier() for p in parts):
            return None
        path = os.path.join(self.base, *parts)
        for candidate in (path + ".py", os.path.join(path, "__init__.py")):
            if os.path.isfile(candidate):
                return candidate
        return None

    def typer(self, module: str):
        """The layer typer of a module of this package (None: none such, too large, broken)."""
        path = self._file(module)
        if path is None:
            return None
        try:
            stat = os.stat(path)
        except OSError:
            return None
        cached = _MODULES.get(path)
        if cached is not None and cached[:2] == (stat.st_size, stat.st_mtime_ns):
            return cached[2]
        typer = None
        if stat.st_size <= MAX_BYTES:
            try:
                with open(path, "rb") as handle:
                    tree = ast.parse(handle.read(), filename=path)
            except (OSError, SyntaxError, ValueError, RecursionError, MemoryError):
                tree = None
            if tree is not None:
                from .layers import LayerTyper

                package = module if path.endswith("__init__.py") else module.rpartition(".")[0]
                typer = LayerTyper(collect_names(tree, package), tree, package=Package(package, path))
                typer.module = module
        _MODULES[path] = (stat.st_size, stat.st_mtime_ns, typer)
        return typer

    def find(self, fqn: str, hops: int = 0):
        """(typer of the defining module, name) for a function or class ``fqn`` of this package."""
        if hops > MAX_HOPS or not self.owns(fqn):
            return None
        module, _, name = fqn.rpartition(".")
        typer = self.typer(module)
        if typer is None:
            return None
        names: ModuleNames = typer.names
        if name in names.functions or name in names.classes:
            return typer, name
        if name in names.imports:
            return self.find(names.imports[name], hops + 1)
        alias = names.constants.get(name)
        if isinstance(alias, (ast.Name, ast.Attribute)):  # Conv = SameConv2d
            target = names.resolve(alias)
            if target is not None and target != name:
                if target in names.functions or target in names.classes:
                    return typer, target
                return self.find(target, hops + 1)
        for star in names.stars:  # from .conv import *
            found = self.find(f"{star}.{name}", hops + 1)
            if found is not None:
                return found
        return None
