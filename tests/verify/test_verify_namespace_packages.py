"""Modules of packages without a top ``__init__.py`` (PEP 420 namespace packages).

Two trees verify could not import before:

- a namespace top whose sub-package is called like a real module (``ns/json/`` with
  ``json/__init__.py`` but no ``ns/__init__.py``, its modules importing ``ns.json.layers``, as
  texar-pytorch's ``texar/torch/`` modules import ``texar.torch.core``): named
  ``json.attention`` from the plain package, the import collided with the standard library's
  ``json``; it is now ``ns.json.attention``;
- a folder of modules without ``__init__.py`` that import each other relatively (as
  clearvoice's ``mossformer_gan_se/``): loaded standalone, ``from .layers import QKV`` raised
  "attempted relative import with no known parent package"; the folder is now a namespace
  package.

A patch that drops the attention's scale must still fail; a package below a namespace folder
whose modules import only relatively keeps today's name.
"""

import sys
import textwrap
import uuid

import pytest
from stand_in import stand_in_fix as _fix

from adopter.config import Config
from adopter.verify import verify_file
from adopter.verify.loader import ModuleLoader, namespaced_package
from adopter.verify.result import FAIL, PASS

LAYERS = '''
import torch.nn as nn


class QKV(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.proj = nn.Linear(dim, dim * 3)

    def forward(self, x):
        return self.proj(x)
'''

ATTENTION = '''
import torch
import torch.nn as nn
import torch.nn.functional as F

from .layers import QKV


class SelfAttention(nn.Module):
    def __init__(self, dim, heads=2):
        super().__init__()
        self.heads = heads
        self.qkv = QKV(dim)
        self.out = nn.Linear(dim, dim)
        self.scale = (dim // heads) ** -0.5

    def forward(self, x):
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        attn = (q @ k.transpose(-2, -1)) * self.scale
        attn = attn.softmax(dim=-1)
        y = (attn @ v).transpose(1, 2).reshape(b, n, c)
        return self.out(y)
'''

SITE = ("        attn = (q @ k.transpose(-2, -1)) * self.scale\n        attn = attn.softmax(dim=-1)\n"
        "        y = (attn @ v).transpose(1, 2).reshape(b, n, c)")
RIGHT = "        y = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, n, c)"
WRONG = "        y = F.scaled_dot_product_attention(q, k, v, scale=1.0).transpose(1, 2).reshape(b, n, c)"


def _shadowing(tmp_path):
    """``<ns>/json/attention.py``: ``<ns>`` has no ``__init__.py``, ``json/`` has one."""
    namespace = f"adopter_ns_{uuid.uuid4().hex[:8]}"
    package = tmp_path / namespace / "json"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "layers.py").write_text(textwrap.dedent(LAYERS))
    path = package / "attention.py"
    # by its name from the namespace root, as texar's modules import ``texar.torch.core``
    path.write_text(textwrap.dedent(ATTENTION).replace("from .layers import", f"from {namespace}.json.layers import"))
    return namespace, path


def _loose_folder(tmp_path):
    """``<blocks>/attention.py`` importing ``.layers``, no ``__init__.py`` anywhere."""
    folder_name = f"adopter_blocks_{uuid.uuid4().hex[:8]}"
    folder = tmp_path / "proj" / folder_name
    folder.mkdir(parents=True)
    (folder / "layers.py").write_text(textwrap.dedent(LAYERS))
    path = folder / "attention.py"
    path.write_text(textwrap.dedent(ATTENTION))
    return folder_name, path


def _verify(path, all_rules, quick, edit=None):
    rules = [r for r in all_rules if r.id == "ADP010"]
    kwargs = {"fix": _fix(*edit)} if edit else {}
    return [r for r in verify_file(str(path), rules, Config(), benchmark=False, options=quick, **kwargs)
            if not r.combined]


def test_a_sub_package_called_like_a_real_module_is_named_from_the_namespace(tmp_path):
    namespace, path = _shadowing(tmp_path)
    assert namespaced_package(str(path), "json") == (f"{namespace}.json", str(tmp_path))
    with ModuleLoader(str(path)) as loader:
        module = loader.original()
        assert module.__name__ == f"{namespace}.json.attention"
        assert "SelfAttention" in vars(module)
    assert namespace not in sys.modules and not any(n.startswith(namespace + ".") for n in sys.modules)
    import json
    assert json.dumps([1]) == "[1]"  # the real module is untouched


def test_a_folder_without_init_that_imports_relatively_is_a_namespace_package(tmp_path):
    folder_name, path = _loose_folder(tmp_path)
    assert namespaced_package(str(path), None) == (folder_name, str(tmp_path / "proj"))
    with ModuleLoader(str(path)) as loader:
        module = loader.original()
        assert module.__name__ == f"{folder_name}.attention"
        assert module.QKV.__module__ == f"{folder_name}.layers"
    assert folder_name not in sys.modules


def test_the_loose_folder_is_named_up_through_parents_with_init(tmp_path):
    folder_name, path = _loose_folder(tmp_path)
    (tmp_path / "proj" / "__init__.py").write_text("")
    assert namespaced_package(str(path), None) == (f"proj.{folder_name}", str(tmp_path))


def test_a_package_below_a_namespace_that_imports_only_relatively_keeps_its_name(tmp_path):
    # (a checkout's ``src/pkg/...``: ``src`` is no part of the name its modules use)
    namespace, path = _shadowing(tmp_path)
    path.write_text(textwrap.dedent(ATTENTION))
    assert namespaced_package(str(path), "json") is None


def test_a_file_without_relative_imports_keeps_the_standalone_load(tmp_path):
    path = tmp_path / "loose" / "m.py"
    path.parent.mkdir()
    path.write_text("import torch\n")
    assert namespaced_package(str(path), None) is None


@pytest.mark.parametrize("make", [_shadowing, _loose_folder])
@pytest.mark.parametrize("edit, verdict", [((SITE, RIGHT), PASS), ((SITE, WRONG), FAIL)])
def test_a_stand_in_patch_is_judged(tmp_path, all_rules, quick, make, edit, verdict):
    _, path = make(tmp_path)
    assert SITE in path.read_text()
    results = _verify(path, all_rules, quick, edit)
    assert [r.verdict for r in results] == [verdict], results
