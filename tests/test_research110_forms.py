"""research110 (session 43): a config-dict norm builder in another module of the package.

The fixtures are ours: a package folder in ``tmp_path`` with a ``bricks.py`` whose builder
returns ``nn.Identity()`` for a ``None`` config and otherwise looks the layer class up in a
literal table by the config's ``"type"`` (the dict copied first, ``copy.deepcopy(cfg)``), and a
model module calling it by keyword (``build_norm(c, norm_cfg=norm_cfg)``).

1. A head whose ``norm_cfg`` parameter defaults to ``None`` and that no construction in the
   file builds otherwise: the builder's ``None`` branch runs, the layer is an ``nn.Identity``,
   so a Conv2d before it is no conv -> BN pair (GUIDE ADP007: a norm parameter that defaults
   to None).  Passed by name as by position, and through the copy of the config.
2. Look-alikes that must stay sites: the same head whose default names BatchNorm2d
   (``{"type": "BatchNorm2d"}``), and the ``None`` default with a construction in the file
   passing a BatchNorm2d config.
"""

from __future__ import annotations

import textwrap

from corpus_forms import line_of, rules

from adopter.engine import analyze
from adopter.structure import package_of

BRICKS = textwrap.dedent("""\
    import copy
    import torch.nn as nn


    def build_norm(placeholder, norm_cfg):
        if norm_cfg is None:
            return nn.Identity()
        norm_cfg = copy.deepcopy(norm_cfg)
        table = {"BatchNorm2d": nn.BatchNorm2d, "GroupNorm": nn.GroupNorm}
        norm_type = norm_cfg.pop("type")
        return table[norm_type](placeholder, **norm_cfg)
""")

HEAD = textwrap.dedent("""\
    import torch.nn as nn
    from .bricks import build_norm


    class Head(nn.Module):
        def __init__(self, cin, cout, norm_cfg=DEFAULT):
            super().__init__()
            self.branch = nn.Sequential(
                nn.Conv2d(cin, cout, 1, bias=False),
                CALL,  # pair
                nn.ReLU(),
            )

        def forward(self, x):
            return self.branch(x)
""")


def _package(tmp_path, name: str, head: str):
    top = tmp_path / name
    top.mkdir()
    (top / "__init__.py").touch()
    (top / "bricks.py").write_text(BRICKS)
    (top / "head.py").write_text(head)
    return top / "head.py"


def _pairs(path) -> list:
    text = path.read_text()
    line = line_of(text, "# pair")
    findings = analyze(text, str(path), rules("ADP007"), package_of(str(path))).findings
    return [f for f in findings if f.rule == "ADP007" and f.line <= line <= f.end_line]


def _head(default: str, call: str = "build_norm(cout, norm_cfg=norm_cfg)") -> str:
    return HEAD.replace("DEFAULT", default).replace("CALL", call)


def test_a_none_config_passed_by_name_builds_an_identity_no_pair(tmp_path):
    assert not _pairs(_package(tmp_path, "kwpkg", _head("None")))
    # by position, as before
    assert not _pairs(_package(tmp_path, "pospkg", _head("None", "build_norm(cout, norm_cfg)")))


def test_a_batchnorm_default_config_stays_a_site(tmp_path):
    assert _pairs(_package(tmp_path, "bnpkg", _head('{"type": "BatchNorm2d"}')))


def test_a_none_default_that_a_construction_in_the_file_sets_stays_a_site(tmp_path):
    built = _head("None") + textwrap.dedent("""\


        def make(c):
            return Head(c, c, norm_cfg={"type": "BatchNorm2d"})
    """)
    assert _pairs(_package(tmp_path, "builtpkg", built))
