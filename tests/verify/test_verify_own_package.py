"""A file in a folder without ``__init__.py`` that imports its own project's package by name.

``proj/pkg/modules/attention.py`` does ``from pkg.modules.layers import *``: ``modules/`` is no
package, so verify loads the file on its own; before, ``pkg`` was not on ``sys.path``, was taken for
a package that is not installed, stubbed, and the star import bound nothing (``NameError: Conv2d``
when building).  The project's package ``__init__`` also imports a package that is not installed
here (stubbed, as before).  The attention's second input is a one-channel map of the image's sides
(``prob = cat([fg, bg], 1).view(b, 2, hw)``), which verify now tries after the images of the
module's widths.  Near-miss: a patch that drops the scale must still fail.
"""

import sys
import textwrap
import uuid

import pytest
from stand_in import stand_in_fix as _fix

from adopter.config import Config
from adopter.verify import verify_file
from adopter.verify.loader import ModuleLoader, own_package_roots
from adopter.verify.result import FAIL, PASS

LAYERS = '''
import torch
import torch.nn as nn


class Conv2d(nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size, relu=False):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2)
        self.relu = relu

    def forward(self, x):
        x = self.conv(x)
        return torch.relu(x) if self.relu else x
'''

ATTENTION = '''
import torch
import torch.nn as nn
import torch.nn.functional as F

from PKG.modules.layers import *


class MapAttention(nn.Module):
    def __init__(self, in_channel, depth=8):
        super().__init__()
        self.depth = depth
        self.conv_query = Conv2d(in_channel, depth, 3, relu=True)
        self.conv_key = Conv2d(in_channel, depth, 1, relu=True)
        self.conv_value = Conv2d(in_channel, depth, 1, relu=True)
        self.conv_out = Conv2d(depth, in_channel, 3)
        self.threshold = nn.Parameter(torch.tensor([0.5]))

    def forward(self, x, smap):
        b, c, h, w = x.shape
        p = torch.sigmoid(smap) - self.threshold
        prob = torch.cat([torch.clip(p, 0, 1), torch.clip(-p, 0, 1)], dim=1).view(b, 2, h * w)
        f = x.view(b, c, h * w).permute(0, 2, 1)
        context = torch.bmm(prob, f).permute(0, 2, 1).unsqueeze(3)
        query = self.conv_query(x).view(b, self.depth, -1).permute(0, 2, 1)
        key = self.conv_key(context).view(b, self.depth, -1)
        value = self.conv_value(context).view(b, self.depth, -1).permute(0, 2, 1)
        sim = torch.bmm(query, key)
        sim = (self.depth ** -.5) * sim
        sim = F.softmax(sim, dim=-1)
        context = torch.bmm(sim, value).permute(0, 2, 1).contiguous().view(b, -1, h, w)
        return x + self.conv_out(context)
'''


def _project(tmp_path):
    name = f"adopter_own_{uuid.uuid4().hex[:8]}"
    root = tmp_path / "proj" / name
    (root / "modules").mkdir(parents=True)  # no __init__.py in modules/
    # the package's __init__ imports a package that is not installed here (stubbed)
    (root / "__init__.py").write_text("import adopter_not_installed_pkg_xyz\nfrom .tools import helper\n")
    (root / "tools.py").write_text("def helper():\n    return 1\n")
    (root / "modules" / "layers.py").write_text(textwrap.dedent(LAYERS))
    path = root / "modules" / "attention.py"
    path.write_text(textwrap.dedent(ATTENTION).replace("PKG", name))
    return name, path


SITE = ("        sim = torch.bmm(query, key)\n        sim = (self.depth ** -.5) * sim\n"
        "        sim = F.softmax(sim, dim=-1)\n        context = torch.bmm(sim, value)")
RIGHT = "        context = F.scaled_dot_product_attention(query, key.transpose(1, 2), value)"
WRONG = "        context = F.scaled_dot_product_attention(query, key.transpose(1, 2), value, scale=1.0)"


def _verify(path, all_rules, quick, edit=None):
    rules = [r for r in all_rules if r.id == "ADP010"]
    kwargs = {"fix": _fix(*edit)} if edit else {}
    return [r for r in verify_file(str(path), rules, Config(), benchmark=False, options=quick, **kwargs)
            if not r.combined]


def test_own_package_roots_names_the_folder_above_the_package(tmp_path):
    name, path = _project(tmp_path)
    assert own_package_roots(str(path)) == [(name, str(tmp_path / "proj"))]


def test_own_package_roots_ignores_names_that_are_not_the_files_project(tmp_path):
    folder = tmp_path / "a" / "modules"
    folder.mkdir(parents=True)
    path = folder / "m.py"
    # ``torch.nn`` is no folder above; ``a.other`` names a module that is not there
    path.write_text("import torch.nn\nfrom a.other import thing\n")
    assert own_package_roots(str(path)) == []


def test_the_star_import_of_the_own_package_binds_its_names(tmp_path):
    name, path = _project(tmp_path)
    with ModuleLoader(str(path)) as loader:
        module = loader.original()
        assert "Conv2d" in vars(module)
        assert name not in loader.stubbed
    assert name not in sys.modules and not any(n.startswith(name + ".") for n in sys.modules)


def test_the_fixed_attention_passes(tmp_path, all_rules, quick):
    _, path = _project(tmp_path)
    results = _verify(path, all_rules, quick)
    assert results and all(r.verdict == PASS for r in results), results


@pytest.mark.parametrize("edit, verdict", [((SITE, RIGHT), PASS), ((SITE, WRONG), FAIL)])
def test_a_stand_in_patch_is_judged(tmp_path, all_rules, quick, edit, verdict):
    _, path = _project(tmp_path)
    assert SITE in path.read_text()
    results = _verify(path, all_rules, quick, edit)
    assert [r.verdict for r in results] == [verdict], results
