"""``adopter structure``: show what patterns are matched against, in the DSL's own notation."""

from __future__ import annotations

from .engine import parse_text
from .structure import Const, Node, Ref, module_structure, package_of

MAX_PATHS = 16


def _value(value) -> str:
    if isinstance(value, Const):
        return repr(value.value)
    if isinstance(value, Ref):
        return value.text if not value.key.startswith("%") else value.key
    return str(value)


def node_text(node: Node) -> str:
    args = [_value(a) for a in node.args]
    args += [f"{k}={_value(v)}" for k, v in node.kwargs]
    outs = ", ".join(o.text if not o.key.startswith("%") else o.key for o in node.outs)
    lhs = f"{outs} = " if outs else ""
    if node.kind == "layer":
        types = "|".join(sorted(node.types))
        return f"{lhs}{types}[{node.layer}]({', '.join(args)})"
    if node.kind == "op" and len(args) == 2:
        return f"{lhs}{args[0]} {node.op} {args[1]}"
    if node.kind == "method":
        return f"{lhs}{args[0]}.{node.op}({', '.join(args[1:])})"
    return f"{lhs}{node.op}({', '.join(args)})"


DL_KINDS = ("layer", "call", "method", "op")


def describe_file(text: str, path: str, class_name: str | None = None) -> str:
    tree, text = parse_text(text, path)  # (a file in newer syntax: its rendering, same lines and columns)
    structure = module_structure(tree, package_of(path), text, path)
    classes = structure.classes
    if class_name is not None:
        if class_name not in classes:
            raise KeyError(class_name)
        classes = {class_name: classes[class_name]}
    out: list[str] = []
    for name, cls in classes.items():
        out.append(f"class {name}:")
        for attr, ctors in sorted(cls.bindings.items()):
            for ctor in ctors:
                shown = f"{ctor.fqn}[...]" if ctor.table else f"{ctor.fqn}(...)"
                out.append(f"  @{ctor.stmt[0]:<5} self.{attr} = {shown}")
        for fname, flow in cls.flows.items():
            dl = [n for n in flow.nodes if n.kind in DL_KINDS]
            out.append(f"  def {fname}:  ({len(dl)} DL nodes)")
            for node in dl:
                indent = "  " * len(node.scope)
                out.append(f"    {node.line:<5} {indent}{node_text(node)}")
            paths = _paths(flow)
            if paths is not None and len(paths) > 1:
                out.append(f"    paths: {len(paths)}")
                for index, path in enumerate(paths, 1):
                    lines = " -> ".join(str(flow.nodes[i].line) for i in path if flow.nodes[i].kind in ("layer", "call"))
                    out.append(f"      {index}: {lines or '(no layer calls)'}")
            elif paths is None:
                out.append(f"    paths: more than {MAX_PATHS}")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def _paths(flow):
    """Entry-to-exit paths that respect correlated guards (same guard text, same branch)."""
    paths = []
    stack = [(flow.entry, (flow.entry,), {})]
    while stack:
        pos, path, guards = stack.pop()
        if pos == flow.exit:
            paths.append(path)
            if len(paths) > MAX_PATHS:
                return None
            continue
        for succ, guard in flow.out[pos]:
            chosen = guards
            if guard is not None:
                text, taken = guard
                if guards.get(text, taken) != taken:
                    continue
                chosen = {**guards, text: taken}
            stack.append((succ, path + (succ,), chosen))
    return sorted(paths)
