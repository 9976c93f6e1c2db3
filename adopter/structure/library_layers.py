"""What well-known libraries' public layer factories and model classes build, as code the engine
reads like a sibling module.

``from torchvision.models.resnet import conv3x3`` then ``self.conv1 = conv3x3(c, c)`` and
``self.bn1 = nn.BatchNorm2d(c)`` is a conv-BN pair, and so is ``self.backbone.bn1(
self.backbone.conv1(x))`` over ``self.backbone = torchvision.models.resnet50()``: research code
builds its CNNs out of torchvision's documented pieces all the time, and a one-file reading does
not see what they are.  For the few public APIs whose layers are documented and stable, this
module describes them as code -- the factories as functions returning the layer class they
document, the model classes as an ``__init__`` binding the members users reach into -- which the
layer typer walks like a module of the file's own package (:meth:`layers.LayerTyper._call`) and
the binder inherits like torch's own classes (:mod:`torch_bases`).  Only what users reach and the
documentation fixes is described (a ResNet's stem, its blocks' convolutions and norms); the rest
stays unknown.  The descriptions are ours, written from the documented behaviour; nothing here
imports a library.
"""

from __future__ import annotations

import ast
import re
from functools import lru_cache

_RESNET = '''import torch
from torch import nn


def conv3x3(in_planes, out_planes, stride=1, groups=1, dilation=1):
    """documented: a 3x3 nn.Conv2d without bias, padding equal to the dilation"""
    return nn.Conv2d(in_planes, out_planes, 3, stride=stride, padding=dilation, groups=groups,
                     bias=False, dilation=dilation)


def conv1x1(in_planes, out_planes, stride=1):
    """documented: a 1x1 nn.Conv2d without bias"""
    return nn.Conv2d(in_planes, out_planes, 1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    def __init__(self, inplanes, planes, stride=1, downsample=None, groups=1, base_width=64,
                 dilation=1, norm_layer=None):
        if norm_layer is None:
            norm_layer = nn.BatchNorm2d
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = norm_layer(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = norm_layer(planes)


class Bottleneck(nn.Module):
    def __init__(self, inplanes, planes, stride=1, downsample=None, groups=1, base_width=64,
                 dilation=1, norm_layer=None):
        if norm_layer is None:
            norm_layer = nn.BatchNorm2d
        self.conv1 = conv1x1(inplanes, planes)
        self.bn1 = norm_layer(planes)
        self.conv2 = conv3x3(planes, planes, stride, groups, dilation)
        self.bn2 = norm_layer(planes)
        self.conv3 = conv1x1(planes, planes * 4)
        self.bn3 = norm_layer(planes * 4)
        self.relu = nn.ReLU(inplace=True)


class ResNet(nn.Module):
    def __init__(self, block, layers, num_classes=1000, zero_init_residual=False, groups=1,
                 width_per_group=64, replace_stride_with_dilation=None, norm_layer=None):
        if norm_layer is None:
            norm_layer = nn.BatchNorm2d
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = norm_layer(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512, num_classes)


def resnet18(*, weights=None, progress=True, **kwargs):
    return ResNet(BasicBlock, [2, 2, 2, 2], **kwargs)


def resnet34(*, weights=None, progress=True, **kwargs):
    return ResNet(BasicBlock, [3, 4, 6, 3], **kwargs)


def resnet50(*, weights=None, progress=True, **kwargs):
    return ResNet(Bottleneck, [3, 4, 6, 3], **kwargs)


def resnet101(*, weights=None, progress=True, **kwargs):
    return ResNet(Bottleneck, [3, 4, 23, 3], **kwargs)


def resnet152(*, weights=None, progress=True, **kwargs):
    return ResNet(Bottleneck, [3, 8, 36, 3], **kwargs)


def resnext50_32x4d(*, weights=None, progress=True, **kwargs):
    return ResNet(Bottleneck, [3, 4, 6, 3], **kwargs)


def resnext101_32x8d(*, weights=None, progress=True, **kwargs):
    return ResNet(Bottleneck, [3, 4, 23, 3], **kwargs)


def resnext101_64x4d(*, weights=None, progress=True, **kwargs):
    return ResNet(Bottleneck, [3, 4, 23, 3], **kwargs)


def wide_resnet50_2(*, weights=None, progress=True, **kwargs):
    return ResNet(Bottleneck, [3, 4, 6, 3], **kwargs)


def wide_resnet101_2(*, weights=None, progress=True, **kwargs):
    return ResNet(Bottleneck, [3, 4, 23, 3], **kwargs)
'''

#: described module -> its description
MODULES: dict[str, str] = {"torchvision.models.resnet": _RESNET}

#: where a library re-exports a described name (``torchvision.models.resnet50``)
_REEXPORTS: dict[str, str] = {"torchvision.models": "torchvision.models.resnet"}

#: per described module, words one of which a file that uses it writes (a function or class
#: name, or the start of a family of them): a file naming the library for something else
#: (``torchvision.transforms``) keeps its cheap pre-filter
_WORDS: dict[str, tuple[str, ...]] = {
    "torchvision.models.resnet": ("conv3x3", "conv1x1", "resnet", "ResNet", "resnext", "BasicBlock", "Bottleneck"),
}

#: the top-level packages described
TOPS: frozenset[str] = frozenset(module.partition(".")[0] for module in MODULES)

#: the first segments of every described or re-exported FQN: a cheap gate before any lookup
PREFIXES: tuple[str, ...] = ("torchvision.models.",)


def imported(imports: dict) -> bool:
    """Do a file's imports (name -> FQN) import a described library?"""
    return any(fqn.partition(".")[0] in TOPS for fqn in imports.values() if fqn)


def mentioned(text: str) -> list[str]:
    """The descriptions of the libraries ``text`` names (the rules' trigger words a file never
    writes itself -- ``nn.BatchNorm2d`` for ``torchvision.models.resnet50()`` -- are theirs)."""
    return [MODULES[module] for module, words in _WORDS.items()
            if module.partition(".")[0] in text and any(word in text for word in words)]


#: per described class, its children in the order its constructor registers them (what
#: ``list(model.children())`` yields: torchvision's ResNet registers conv1, bn1, relu, maxpool,
#: layer1-4, avgpool, fc); a class not here has no child order the engine reads
CHILDREN: dict[str, tuple[str, ...]] = {
    "torchvision.models.resnet.ResNet": ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3",
                                         "layer4", "avgpool", "fc"),
}


def children(fqn: str) -> tuple[str, ...] | None:
    """The member names, in registration order, of the described class ``fqn`` (itself or a
    re-export); None when no order is described."""
    found = canonical(fqn) if fqn.startswith(PREFIXES) else None
    return CHILDREN.get(found) if found is not None else None


def list_reordered(text: str | None, name: str) -> bool:
    """May the file move, drop or replace members of the list held in ``name`` (``layers``,
    ``self.base_layers``): an item or slice stored or deleted, ``insert`` / ``pop`` / ``remove``
    / ``reverse`` / ``sort`` / ``clear``, or the list handed whole to a call?  (Appending keeps
    the members before.)  True when the text is unknown."""
    if text is None:
        return True
    n = re.escape(name).replace(r"\.", r"\s*\.\s*")
    pattern = (rf"(?<![\w.]){n}\s*\[[^\]]*\]\s*=(?!=)|\bdel\s+{n}\s*\["
               rf"|(?<![\w.]){n}\s*\.\s*(?:insert|pop|remove|reverse|sort|clear|__setitem__|__delitem__)\b"
               rf"|[(,]\s*{n}\s*[),]")
    return re.search(pattern, text) is not None


#: per described module, its functions that build one layer whatever they are passed
LAYER_FACTORIES: dict[str, frozenset[str]] = {"torchvision.models.resnet": frozenset({"conv1x1", "conv3x3"})}

#: positional arguments a described model factory or class may take and still build what its
#: description says (the old ``resnet50(pretrained, progress)``; a block's or ResNet's arguments
#: before ``norm_layer``, the eighth)
MAX_FACTORY_POSITIONAL = 2
MAX_CLASS_POSITIONAL = 7

#: keywords of a described model factory or class that leave the described members as they are
#: (pretrained weights, the classifier's width); any other (``norm_layer=``, ``**kwargs``) may
#: change them, and the members are then unknown
PLAIN_KEYWORDS = frozenset({"weights", "pretrained", "progress", "num_classes", "zero_init_residual"})


def plain_call(found, call) -> bool:  # (call: an ast.Call)
    """Does ``call`` of the described ``found`` (typer, name) build what the description says?
    A layer factory (``conv3x3``) always does; a model factory or class only with
    :data:`PLAIN_KEYWORDS` and no ``**`` / ``*`` spread."""
    if found[1] in LAYER_FACTORIES.get(found[0].module, ()):
        return True
    return plain_arguments(call.args, call.keywords, MAX_FACTORY_POSITIONAL)


def plain_arguments(args, keywords, positional: int) -> bool:
    """At most ``positional`` positional arguments (none spread), keywords among
    :data:`PLAIN_KEYWORDS` (none spread)."""
    return len(args) <= positional and not any(a.__class__ is ast.Starred for a in args) \
        and all(k.arg in PLAIN_KEYWORDS for k in keywords)


@lru_cache(maxsize=None)
def class_parameters(fqn: str) -> tuple[frozenset, frozenset]:
    """(the leading parameters a positional argument may fill -- :data:`MAX_CLASS_POSITIONAL`
    of them --, the parameters defaulting to None) of the described class ``fqn``'s
    ``__init__``; both empty when nothing describes it."""
    found = find(fqn)
    node = found[0].names.classes.get(found[1]) if found is not None else None
    init = next((s for s in node.body if s.__class__ is ast.FunctionDef and s.name == "__init__"), None) \
        if isinstance(node, ast.ClassDef) else None
    if init is None:
        return frozenset(), frozenset()
    params = init.args.args[1:]
    defaults = dict(zip([a.arg for a in params[len(params) - len(init.args.defaults):]], init.args.defaults))
    return (frozenset(a.arg for a in params[:MAX_CLASS_POSITIONAL]),
            frozenset(name for name, d in defaults.items() if d.__class__ is ast.Constant and d.value is None))


def holder_changed(text: str | None, holder: str, member: str) -> bool:
    """Does the file change (or may it change) ``holder.member`` (``self.backbone.bn1``,
    ``net.conv1``) after the library built it: ``holder.member = ...`` or ``del holder.member``,
    ``setattr(holder, ...)``, ``holder.add_module(...)`` / ``apply`` / ``_modules``, or
    ``holder`` handed whole to a call (a function swapping its norms)?  Other members changed
    (``del net.fc``) do not count.  True when the text is unknown."""
    if text is None:
        return True
    key = (id(text), holder, member)
    found = _CHANGED.get(key)
    if found is None or found[0] is not text:
        h = re.escape(holder).replace(r"\.", r"\s*\.\s*")
        m = re.escape(member)
        pattern = (rf"setattr\(\s*{h}\s*,|\bdel\s+{h}\s*\.\s*{m}\b"
                   rf"|(?<![\w.]){h}\s*\.\s*(?:add_module|register_module|apply|_modules)\b"
                   rf"|(?<![\w.]){h}\s*\.\s*{m}\s*=(?!=)|[(,]\s*{h}\s*[),]")
        if len(_CHANGED) > 512:  # (a long-lived process: the texts it keeps stay few)
            _CHANGED.clear()
        found = _CHANGED[key] = (text, re.search(pattern, text) is not None)
    return found[1]


_CHANGED: dict = {}  # (id of a text, holder, member) -> (the text, holder_changed's answer)


def canonical(fqn: str) -> str | None:
    """The described FQN ``fqn`` names (itself, or what a re-export stands for); None when
    nothing here describes it."""
    module, _, name = fqn.rpartition(".")
    if module in MODULES:
        return fqn
    target = _REEXPORTS.get(module)
    return f"{target}.{name}" if target is not None else None


@lru_cache(maxsize=None)
def _typer(module: str):
    from .layers import LayerTyper
    from .siblings import _lazy_names

    text = MODULES[module]
    typer = LayerTyper(_lazy_names(text, module.rpartition(".")[0]), None)
    typer.module = module
    typer.source = text
    typer.text, typer.lines = text, text.splitlines()
    return typer


def find(fqn: str):
    """(typer of the described module, name) for a described function or class; None else."""
    if not fqn.startswith(PREFIXES):
        return None
    found = canonical(fqn)
    if found is None:
        return None
    module, _, name = found.rpartition(".")
    typer = _typer(module)
    if name in typer.names.functions or name in typer.names.classes:
        return typer, name
    return None


def class_source(fqn: str) -> str | None:
    """The description holding class ``fqn`` (for torch_bases' inheritance), or None."""
    found = canonical(fqn) if fqn.startswith(PREFIXES) else None
    if found is None:
        return None
    module, _, name = found.rpartition(".")
    typer = _typer(module)
    return MODULES[module] if name in typer.names.classes else None
