"""Layers another module of the same package defines, read by their computation (siblings2).
The fixtures are ours: a package folder in ``tmp_path`` with two modules.

1. An annotated module-level table in a sibling module (``NORMS: dict[str, type] = {"bn2d":
   nn.BatchNorm2d, ...}``) read by that module's factory (``build_norm(name="bn2d")``): the
   annotation changes nothing the module computes, so the factory builds a BatchNorm2d at its
   default key as it does for an unannotated table.  Near-miss: a bare annotation
   (``NORMS: dict[str, type]``) whose name a call binds later: no literal, nothing typed.
2. An ``nn.Sequential`` subclass of a sibling module that builds its own members from its
   ``__init__`` parameters (``norm_layer(cout)``, ``nn.Identity`` when None) and hands them to
   ``super().__init__``: a call passing ``norm_layer=nn.BatchNorm2d`` builds a conv -> BN
   sequence at the call (reported, not fixed).  Near-misses: a class whose forward runs the
   members in reverse, a call leaving the norm at its default (the pair, if any, is the other
   module's), a call passing a GroupNorm, a class adding a member after ``super().__init__``.
3. A namespace package (PEP 420: ``ns/`` without ``__init__.py`` holding ``ns/pkg/``): the file's
   absolute import ``ns.pkg.layers.cba`` names the sibling module ``pkg.layers.cba``.
"""

from __future__ import annotations

import textwrap

from corpus_forms import line_of, rules

from adopter.engine import analyze
from adopter.structure import package_of

NORM_MODULE = textwrap.dedent("""\
    import torch.nn as nn
    from .registry import load_norms

    TABLE


    def build_norm(name="bn2d", num_features=None, **kwargs):
        if name in ["ln"]:
            kwargs["normalized_shape"] = num_features
        else:
            kwargs["num_features"] = num_features
        if name in NORMS:
            norm_cls = NORMS[name]
            return norm_cls(**kwargs)
        return None
""")

CONV_LAYER = textwrap.dedent("""\
    import torch.nn as nn
    from PKG.norm import build_norm


    class ConvLayer(nn.Module):
        def __init__(self, cin, cout, norm="bn2d"):
            super().__init__()
            self.conv = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
            self.norm = build_norm(norm, num_features=cout)

        def forward(self, x):
            x = self.conv(x)
            if self.norm:
                x = self.norm(x)  # pair
            return x
""")

BLOCK_MODULE = textwrap.dedent("""\
    from collections import OrderedDict
    from torch import nn


    class ConvNormAct(nn.Sequential):
        def __init__(self, cin, cout, *, kernel_size, norm_layer=None, act_layer=None, **kwargs):
            if norm_layer is None:
                norm_layer = nn.Identity
            if act_layer is None:
                act_layer = nn.Identity
            layers = OrderedDict({
                "conv": nn.Conv2d(cin, cout, kernel_size, **kwargs),
                "norm": norm_layer(cout),
                "act": act_layer(),
            })
            super().__init__(layers)
            AFTER
        FORWARD
""")

REVERSED = """def forward(self, x):
            for m in reversed(list(self)):
                x = m(x)
            return x"""

CALLER = textwrap.dedent("""\
    from torch import nn
    from PKG.layers.cba import ConvNormAct

    NORM_CLASSES = (nn.BatchNorm2d, nn.GroupNorm)  # (the rule's words, in every variant)

    def conv_bn(cin, cout, k):
        layer = ConvNormAct(  # pair
            cin, cout, kernel_size=k,
            NORM
        )
        return layer
""")


def _package(tmp_path, name: str, files: dict, namespace: str | None = None):
    top = tmp_path / namespace / name if namespace else tmp_path / name
    for rel, text in files.items():
        path = top / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        folder = path.parent
        while folder != top.parent:
            (folder / "__init__.py").touch()
            folder = folder.parent
        path.write_text(text)
    return top


def _pairs(path, rule: str = "ADP007") -> list:
    text = path.read_text()
    line = line_of(text, "# pair")
    findings = analyze(text, str(path), rules(rule), package_of(str(path))).findings
    return [f for f in findings if f.rule == rule and f.line <= line <= f.end_line]


ANNOTATED = """NORMS: dict[str, type] = {
    "bn2d": nn.BatchNorm2d,
    "ln": nn.LayerNorm,
}"""

BARE = """NORMS: dict[str, type]
NORMS = load_norms()"""


def test_annotated_table_of_a_sibling_factory(tmp_path):
    top = _package(tmp_path, "annpkg", {"norm.py": NORM_MODULE.replace("TABLE", ANNOTATED),
                                        "ops.py": CONV_LAYER.replace("PKG", "annpkg")})
    assert _pairs(top / "ops.py")


def test_bare_annotation_bound_by_a_call_is_not_read(tmp_path):
    top = _package(tmp_path, "annpkg2", {"norm.py": NORM_MODULE.replace("TABLE", BARE),
                                         "ops.py": CONV_LAYER.replace("PKG", "annpkg2")})
    assert not _pairs(top / "ops.py")


def _block_package(tmp_path, name: str, norm: str, after: str = "", forward: str = "", namespace=None):
    block = BLOCK_MODULE.replace("AFTER", after).replace("FORWARD", forward)
    prefix = f"{namespace}.{name}" if namespace else name
    caller = CALLER.replace("PKG", prefix).replace("NORM", norm)
    return _package(tmp_path, name, {"layers/cba.py": block, "blocks.py": caller}, namespace)


def test_sibling_sequential_block_built_with_a_passed_norm(tmp_path):
    top = _block_package(tmp_path, "blockpkg", "norm_layer=nn.BatchNorm2d,")
    found = _pairs(top / "blocks.py")
    assert found
    assert all(not f.fixable for f in found)  # the layers are built in the other module


def test_sibling_block_look_alikes(tmp_path):
    cases = {
        "reorders": dict(norm="norm_layer=nn.BatchNorm2d,", forward=REVERSED),
        "defaults": dict(norm="act_layer=nn.ReLU,"),
        "groupnorm": dict(norm="norm_layer=nn.GroupNorm,"),
        "adds_after": dict(norm="norm_layer=nn.BatchNorm2d,", after="self.insert(1, nn.ReLU())"),
    }
    for index, (case, parts) in enumerate(cases.items()):
        top = _block_package(tmp_path, f"alike{index}", parts["norm"], parts.get("after", ""),
                             parts.get("forward", ""))
        assert not _pairs(top / "blocks.py"), case


def test_default_pair_of_a_sibling_block_stays_its_modules(tmp_path):
    """A block whose own default norm is BatchNorm2d forms the pair by itself: a call passing
    only an activation holds no pair this file decides (the other module's site)."""
    block = BLOCK_MODULE.replace("AFTER", "").replace("FORWARD", "").replace(
        "norm_layer=None, act_layer", "norm_layer=nn.BatchNorm2d, act_layer")
    caller = CALLER.replace("PKG", "defpkg").replace("NORM", "act_layer=nn.ReLU,")
    top = _package(tmp_path, "defpkg", {"layers/cba.py": block, "blocks.py": caller})
    assert not _pairs(top / "blocks.py")


def test_namespace_package_import_names_a_sibling(tmp_path):
    top = _block_package(tmp_path, "nspkg", "norm_layer=nn.BatchNorm2d,", namespace="nsroot")
    assert not (tmp_path / "nsroot" / "__init__.py").exists()
    assert _pairs(top / "blocks.py")


# ----------------------------------------------------- a None key handed to a sibling's table
# (review35 found it: efficientvit's LinearLayer, act_func=None that no construction in its file
# sets, reported as a bias-GELU because the sibling's table was read as a run-time choice of
# every entry, GELU among them; GUIDE: a key handed to another file's function, every
# construction in the file leaving a non-GELU default, is no site)

ACT_MODULE = textwrap.dedent("""\
    from functools import partial

    import torch.nn as nn

    ACTS: dict[str, type] = {
        "relu": nn.ReLU,
        "gelu": partial(nn.GELU, approximate="tanh"),
    }


    def build_act(name, **kwargs):
        if name in ACTS:
            return ACTS[name](**kwargs)
        return None
""")

LINEAR_LAYER = textwrap.dedent("""\
    import torch.nn as nn
    from PKG.act import build_act


    class LinearLayer(nn.Module):
        def __init__(self, cin, cout, act_func=DEFAULT):
            super().__init__()
            self.linear = nn.Linear(cin, cout)
            self.act = build_act(act_func)

        def forward(self, x):
            x = self.linear(x)
            if self.act:
                x = self.act(x)  # pair
            return x
""")


def test_a_none_key_no_construction_in_the_file_sets_builds_no_activation(tmp_path):
    top = _package(tmp_path, "nonepkg", {"act.py": ACT_MODULE,
                                         "ops.py": LINEAR_LAYER.replace("PKG", "nonepkg").replace("DEFAULT", "None")})
    assert not _pairs(top / "ops.py", "ADP006")


def test_a_gelu_key_default_or_a_construction_passing_gelu_stays_a_site(tmp_path):
    top = _package(tmp_path, "gelupkg", {"act.py": ACT_MODULE,
                                         "ops.py": LINEAR_LAYER.replace("PKG", "gelupkg").replace("DEFAULT", '"gelu"')})
    assert _pairs(top / "ops.py", "ADP006")
    built = LINEAR_LAYER.replace("PKG", "builtpkg").replace("DEFAULT", "None") + textwrap.dedent("""\


        def head(c):
            return LinearLayer(c, c, act_func="gelu")
    """)
    top = _package(tmp_path, "builtpkg", {"act.py": ACT_MODULE, "ops.py": built})
    assert _pairs(top / "ops.py", "ADP006")
