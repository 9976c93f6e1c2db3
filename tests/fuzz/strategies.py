"""Hypothesis strategies: PyTorch module sources built from random parts, and mutations of
real files.

A generated module (:func:`torch_modules`) is runnable by construction: every op keeps the
tensor's shape, so any sequence of them runs.  It draws the import style (``nn``/``tnn``/
``torch.nn``, ``F``/``fn``/``torch.nn.functional``/``from ... import softmax as sm``, classes
imported under other names), the layers, and the forward's control flow: plain statements,
aliases, ``if``/``else`` on a flag set in ``__init__``, ``for`` loops, helper methods and nested
submodules.  The ops include every pattern of the bundled rules (softmax, dropout + residual
+ LayerNorm, Linear + ACT2FN, Conv2d + BatchNorm2d, Linear + BatchNorm1d, q/k/v projections),
in the forms that match and in near misses that must not.

:func:`mutated_sources` takes whole top-level classes of a real file (the pinned transformers
4.34.0 in the test environment) and breaks them: deleted, duplicated and swapped lines,
truncation, random bytes, NUL bytes, tabs, CR/CRLF endings, a BOM, unicode.
"""

from __future__ import annotations

import ast
import textwrap
from dataclasses import dataclass
from pathlib import Path

from hypothesis import strategies as st

DIM = 8


@dataclass(frozen=True)
class Names:
    """How the generated file spells torch.nn, torch.nn.functional and the layer classes."""

    imports: tuple[str, ...]
    nn: str
    F: str
    softmax: str  # callable spelling of torch.nn.functional.softmax
    linear: str
    layer_norm: str
    uses_act2fn: bool = False


@st.composite
def names(draw) -> Names:
    imports = ["import torch"]
    nn_choice = draw(st.sampled_from(["from torch import nn", "import torch.nn as tnn", "torch.nn",
                                      "from torch import nn as layers"]))
    if nn_choice == "torch.nn":
        nn = "torch.nn"
    else:
        imports.append(nn_choice)
        nn = nn_choice.split()[-1]
    f_choice = draw(st.sampled_from(["import torch.nn.functional as F", "from torch.nn import functional as fn",
                                     "torch.nn.functional", "from torch.nn.functional import softmax as sm"]))
    F = "torch.nn.functional"
    softmax = "torch.nn.functional.softmax"
    if f_choice.startswith("from torch.nn.functional"):
        imports.append(f_choice)
        softmax = "sm"
    elif f_choice != "torch.nn.functional":
        imports.append(f_choice)
        F = f_choice.split()[-1]
        softmax = f"{F}.softmax"
    linear, layer_norm = f"{nn}.Linear", f"{nn}.LayerNorm"
    if draw(st.booleans()):
        imports.append("from torch.nn import Linear as Dense")
        linear = "Dense"
    if draw(st.booleans()):
        imports.append("from torch.nn import LayerNorm as LN")
        layer_norm = "LN"
    return Names(tuple(imports), nn, F, softmax, linear, layer_norm)


class Builder:
    """Collects the lines of one generated file while the strategies draw its parts."""

    def __init__(self, draw, names: Names, kind: str):
        self.draw, self.n, self.kind = draw, names, kind
        self.count = 0
        self.classes: list[str] = []
        self.act2fn = False

    def fresh(self, stem: str) -> str:
        self.count += 1
        return f"{stem}{self.count}"

    # Each op returns (init lines, forward lines, extra methods); all keep h's shape.
    def op(self, depth: int) -> tuple[list[str], list[str], list[str]]:
        kinds = ["softmax", "softmax", "act", "scale", "alias", "dal", "linear", "bias_gelu"]
        if self.kind == "image":
            kinds = ["softmax", "act", "scale", "alias", "conv_bn", "conv_bn"]
        elif self.kind == "flat":
            kinds += ["linear_bn", "linear_bn"]
        elif self.kind == "qkv":
            kinds += ["qkv", "qkv"]
        if depth < 2:
            kinds += ["if", "loop", "helper", "sub"]
        kind = self.draw(st.sampled_from(kinds))
        return getattr(self, f"op_{kind}")(depth)

    def ops(self, depth: int, min_size: int = 1, max_size: int = 5):
        init, fwd, methods = [], [], []
        for _ in range(self.draw(st.integers(min_size, max_size))):
            i, f, m = self.op(depth)
            init += i
            fwd += f
            methods += m
        return init, fwd, methods

    def op_softmax(self, depth):
        s, F = self.n.softmax, self.n.F
        form = self.draw(st.sampled_from([
            f"h = {s}(h, dim=-1)", f"h = {s}(h, -1)", f"h = {s}(h, dim=1)", f"h = torch.softmax(h, dim=-1)",
            f"h = {s}(h.float(), dim=-1).type_as(h)", f"p = {s}(h, dim=-1)\nh = p * 2 - h",
            f"h = h + {s}(h * 0.5, dim=-1)", f"h = {F}.softmax(h, dim=-1, dtype=h.dtype)",
        ]))
        return [], form.split("\n"), []

    def op_act(self, depth):
        name = self.fresh("act")
        form = self.draw(st.sampled_from(["h = torch.relu(h)", f"h = {self.n.F}.gelu(h)", "h = torch.tanh(h)",
                                          f"h = self.{name}(h)"]))
        init = [f"self.{name} = {self.n.nn}.GELU()"] if name in form else []
        return init, [form], []

    def op_scale(self, depth):
        return [], [self.draw(st.sampled_from(["h = h * 0.5 + 1", "h = h - h.mean(dim=-1, keepdim=True)",
                                                "h = (h * h).sqrt()"]))], []

    def op_alias(self, depth):
        other = self.fresh("g")
        init, fwd, methods = self.op(depth + 1) if depth < 2 else ([], ["h = h * 1.5"], [])
        return init, [f"{other} = h", f"h = {other}", *fwd, f"{other} = h", f"h = {other}"], methods

    def op_linear(self, depth):
        name = self.fresh("proj")
        return [f"self.{name} = {self.n.linear}({DIM}, {DIM})"], [f"h = self.{name}(h)"], []

    def op_dal(self, depth):
        drop, norm, res, tmp = self.fresh("dropout"), self.fresh("norm"), self.fresh("r"), self.fresh("t")
        init = [f"self.{drop} = {self.n.nn}.Dropout({self.draw(st.sampled_from(['0.1', '0.0', 'p=0.2']))})",
                f"self.{norm} = {self.n.layer_norm}({DIM})"]
        form = self.draw(st.sampled_from([
            f"h = self.{norm}(self.{drop}(h * 2) + {res})",
            f"{tmp} = self.{drop}(h * 2)\nh = {tmp} + {res}\nh = self.{norm}(h)",
            f"h = self.{norm}({res} + self.{drop}(h * 2))",
            f"h = self.{norm}(self.{drop}(h * 2) + {res}) + {res}",
        ]))
        return init, [f"{res} = h", *form.split("\n")], []

    def op_bias_gelu(self, depth):
        self.act2fn = True
        dense, act = self.fresh("dense"), self.fresh("intermediate_act_fn")
        init = [f"self.{dense} = {self.n.linear}({DIM}, {DIM})", f"self.{act} = ACT2FN[config.hidden_act]"]
        form = self.draw(st.sampled_from([f"h = self.{act}(self.{dense}(h))",
                                          f"h = self.{dense}(h)\nh = self.{act}(h)",
                                          f"u = self.{dense}(h)\nh = self.{act}(u) + u"]))
        return init, form.split("\n"), []

    def op_conv_bn(self, depth):
        conv, bn = self.fresh("conv"), self.fresh("bn")
        init = [f"self.{conv} = {self.n.nn}.Conv2d({DIM}, {DIM}, 3, padding=1)",
                f"self.{bn} = {self.n.nn}.BatchNorm2d({DIM})"]
        form = self.draw(st.sampled_from([f"h = self.{bn}(self.{conv}(h))", f"h = self.{conv}(h)\nh = self.{bn}(h)"]))
        return init, form.split("\n"), []

    def op_linear_bn(self, depth):
        lin, bn = self.fresh("fc"), self.fresh("bn")
        init = [f"self.{lin} = {self.n.linear}({DIM}, {DIM})", f"self.{bn} = {self.n.nn}.BatchNorm1d({DIM})"]
        form = self.draw(st.sampled_from([f"h = self.{bn}(self.{lin}(h))", f"h = self.{lin}(h)\nh = self.{bn}(h)"]))
        return init, form.split("\n"), []

    def op_qkv(self, depth):
        q, k, v = self.fresh("q_proj"), self.fresh("k_proj"), self.fresh("v_proj")
        split = "_split_heads"  # the name the rule looks for; a second copy of the method is harmless
        init = [f"self.{x} = {self.n.linear}({DIM}, {DIM}, bias={self.draw(st.booleans())})" for x in (q, k, v)]
        fwd = [f"query = self.{q}(h)", f"key = self.{k}(h)", f"value = self.{v}(h)", f"query = self.{split}(query)",
               "h = (query.flatten(-2) + key) * value"]
        method = [f"def {split}(self, x):", "    return x.view(*x.shape[:-1], 2, -1)"]
        return init, fwd, method

    def op_if(self, depth):
        flag = self.fresh("use_branch")
        init_a, fwd_a, m_a = self.ops(depth + 1, 1, 3)
        init_b, fwd_b, m_b = self.ops(depth + 1, 1, 3)
        init = [f"self.{flag} = {self.draw(st.booleans())}", *init_a, *init_b]
        fwd = [f"if self.{flag}:", *_indent(fwd_a), "else:", *_indent(fwd_b)]
        return init, fwd, m_a + m_b

    def op_loop(self, depth):
        init, body, methods = self.ops(depth + 1, 1, 3)
        times = self.draw(st.integers(1, 2))
        return init, [f"for _ in range({times}):", *_indent(body)], methods

    def op_helper(self, depth):
        name = self.fresh("_helper")
        init, body, methods = self.ops(depth + 1, 1, 3)
        method = [f"def {name}(self, h):", *_indent(body), "    return h"]
        return init, [f"h = self.{name}(h)"], methods + method

    def op_sub(self, depth):
        cls, attr = self.fresh("Block"), self.fresh("block")
        init, body, methods = self.ops(depth + 1, 1, 3)
        self.classes.append(self.render_class(cls, init, body, methods))
        return [f"self.{attr} = {cls}(config)"], [f"h = self.{attr}(h)"], []

    def render_class(self, name: str, init: list[str], fwd: list[str], methods: list[str]) -> str:
        lines = [f"class {name}({self.n.nn}.Module):", "    def __init__(self, config):", "        super().__init__()",
                 *("        " + line for line in init), "", "    def forward(self, h):",
                 *("        " + line for line in fwd), "        return h"]
        for line in methods:
            if line.startswith("def "):
                lines.append("")
            lines.append("    " + line)
        return "\n".join(lines) + "\n"


def _indent(lines: list[str]) -> list[str]:
    return ["    " + line for line in lines]


INPUT_SHAPES = {"seq": (2, 3, DIM), "flat": (4, DIM), "qkv": (2, 3, DIM), "image": (2, DIM, 5, 5)}


@dataclass(frozen=True)
class GeneratedModule:
    source: str
    kind: str

    @property
    def input_shape(self) -> tuple[int, ...]:
        return INPUT_SHAPES[self.kind]


@st.composite
def torch_modules(draw) -> GeneratedModule:
    n = draw(names())
    kind = draw(st.sampled_from(["seq", "seq", "flat", "image", "qkv"]))
    builder = Builder(draw, n, kind)
    init, fwd, methods = builder.ops(0, 1, 6)
    main = builder.render_class("Model", init, fwd, methods)
    imports = list(n.imports)
    if builder.act2fn:
        imports.append("from transformers.activations import ACT2FN")
    source = "\n".join(imports) + "\n\n\n" + "\n\n".join([*builder.classes, main])
    ast.parse(source)  # a generator bug, not a finding, if this fails
    return GeneratedModule(source, kind)


# ------------------------------------------------------------------------------ real files

def real_class_sources(path: Path, limit_lines: int = 220) -> list[str]:
    """Each top-level class of ``path`` with the file's imports above it, as its own source."""
    text = path.read_text(encoding="utf-8")
    tree = ast.parse(text)
    lines = text.splitlines(keepends=True)
    head = "".join("".join(lines[n.lineno - 1: n.end_lineno])
                   for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom)))
    out = []
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.end_lineno - node.lineno < limit_lines:
            start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            out.append(head + "\n\n" + "".join(lines[start - 1: node.end_lineno]))
    return out


def _lines(data: bytes) -> list[bytes]:
    return data.splitlines(keepends=True)


@st.composite
def mutation(draw, data: bytes) -> bytes:
    lines = _lines(data)
    kind = draw(st.sampled_from(["delete", "duplicate", "swap", "truncate", "insert_bytes", "nul", "tabs",
                                 "crlf", "cr", "bom", "unicode", "dedent", "flip", "none"]))
    if kind == "none" or not lines:
        return data
    i = draw(st.integers(0, len(lines) - 1))
    j = draw(st.integers(0, len(lines) - 1))
    if kind == "delete":
        del lines[min(i, j): min(max(i, j) + 1, min(i, j) + 4)]
    elif kind == "duplicate":
        lines.insert(j, lines[i])
    elif kind == "swap":
        lines[i], lines[j] = lines[j], lines[i]
    elif kind == "truncate":
        return data[: draw(st.integers(0, len(data)))]
    elif kind == "insert_bytes":
        at = draw(st.integers(0, len(data)))
        return data[:at] + draw(st.binary(min_size=1, max_size=8)) + data[at:]
    elif kind == "nul":
        at = draw(st.integers(0, len(data)))
        return data[:at] + b"\x00" + data[at:]
    elif kind == "tabs":
        return data.replace(b"    ", b"\t")
    elif kind == "crlf":
        return data.replace(b"\n", b"\r\n")
    elif kind == "cr":
        return data.replace(b"\n", b"\r")
    elif kind == "bom":
        return b"\xef\xbb\xbf" + data
    elif kind == "unicode":
        text = draw(st.text(min_size=1, max_size=6))
        lines.insert(i, f"# {text}\n".replace("\r", "").encode("utf-8", "surrogatepass"))
    elif kind == "dedent":
        lines[i] = lines[i].lstrip(b" ")
    elif kind == "flip":
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        return data[:at] + bytes([data[at] ^ draw(st.integers(1, 255))]) + data[at + 1:] if data else data
    return b"".join(lines)


@st.composite
def mutated_sources(draw, pieces: list[str]) -> bytes:
    data = draw(st.sampled_from(pieces)).encode("utf-8")
    for _ in range(draw(st.integers(0, 3))):
        data = draw(mutation(data))
    return data


def dedent(text: str) -> str:
    return textwrap.dedent(text)
