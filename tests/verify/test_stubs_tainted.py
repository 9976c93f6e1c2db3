"""What the stubs' cleanup forgets after a run (``adopter.verify.stubs.tainted``).

A package may put an object that is no module, and has no ``__dict__``, into ``sys.modules``
(petals does, through one of its dependencies): the cleanup read every new entry with
``vars()`` and failed with "vars() argument must have __dict__ attribute", which ``adopter
verify`` reported as an internal error for the whole file (research119).
"""

from __future__ import annotations

from types import ModuleType

import pytest

pytest.importorskip("torch")

from adopter.verify.stubs import StubModule, tainted  # noqa: E402


class _Slotted:
    __slots__ = ("value",)


def test_an_entry_without_a_dict_is_kept_and_modules_reaching_a_stub_are_forgotten():
    stub = StubModule("missingpkg", "missingpkg")
    user = ModuleType("user_module")
    user.dep = stub
    plain = ModuleType("plain_module")
    modules = {"missingpkg": stub, "user_module": user, "plain_module": plain, "odd_entry": _Slotted()}
    out = tainted(modules, before=set(), packages=["missingpkg"])
    assert out == ["missingpkg", "user_module"]
