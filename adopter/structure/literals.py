"""Keyword arguments passed as ``**name`` where ``name`` is a dict literal of the same code.

``torch.optim.AdamW(params, **opt_kwargs)`` with ``opt_kwargs = {"lr": 1e-3, "betas": (0.9,
0.99)}``: the keywords the call receives are the literal's keys, so a rule that must know
which keywords a call passes (``!fused``) can read them, as for written keywords.  Only when
that is certain: the name is bound once in the whole file, to a dict display with string keys
and no ``**`` inside, and every other occurrence of the name in the file is a ``**name``
argument (no item assignment, ``update``, alias, or second binding anywhere, in any function).
"""

from __future__ import annotations

import ast
import re


def literal_keywords(expr: ast.expr, assigned: object, lines: list[str] | None,
                     cache: dict) -> list[tuple[str, ast.expr]] | None:
    """The (key, value expression) pairs ``**expr`` passes, or None when they are not certain.
    ``assigned``: what the flow builder last saw assigned to the name (an ast expression)."""
    if not isinstance(expr, ast.Name) or not isinstance(assigned, ast.Dict) or lines is None:
        return None
    if not all(isinstance(k, ast.Constant) and isinstance(k.value, str) for k in assigned.keys):
        return None  # a None key is a ``**other`` spread inside the literal
    name = expr.id
    once = cache.get(name)
    if once is None:
        text = "\n".join(lines)
        total = len(re.findall(rf"(?<![\w.]){re.escape(name)}\b", text))
        spread = len(re.findall(rf"\*\*\s*{re.escape(name)}\b", text))
        once = cache[name] = total == spread + 1
    if not once:
        return None
    return [(k.value, v) for k, v in zip(assigned.keys, assigned.values)]
