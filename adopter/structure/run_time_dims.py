"""Convolutions and BatchNorms whose dimension is a required argument of the code building them.

Research and medical code writes N-d layers as ``getattr(nn, f"Conv{n_dims}d")(...)`` and
``getattr(nn, f"BatchNorm{n_dims}d")(...)`` with ``n_dims`` a parameter without a default: the
dimension is known only where the model is built.  A convolution followed by a BatchNorm folds in
every dimension as long as the two dimensions are one value (the runtime kernel checks the pair's
classes and the input's rank where it runs, and runs the two modules as written otherwise).  So
such a layer is read as the 2-d class standing for its family, but only where every run-time
dimension the building function gives a convolution or a BatchNorm is the same parameter: two
parameters (``conv_dims``, ``norm_dims``) may hold different values, and the pair is declined.
"""

from __future__ import annotations

import ast

from .treewalk import ast_walk

# The layer families read with a run-time dimension: (text before, text after) the dimension.
_FAMILIES = frozenset({("Conv", "d"), ("BatchNorm", "d")})


def run_time_family(key: ast.JoinedStr) -> str | None:
    """The parameter name of an f-string key ``f"Conv{p}d"`` / ``f"BatchNorm{p}d"`` (one plain
    name between the family's literal parts), or None for any other key."""
    values = key.values
    if len(values) != 3 or values[0].__class__ is not ast.Constant or values[2].__class__ is not ast.Constant:
        return None
    part = values[1]
    if part.__class__ is not ast.FormattedValue or part.conversion != -1 or part.format_spec is not None \
            or part.value.__class__ is not ast.Name:
        return None
    if (values[0].value, values[2].value) not in _FAMILIES:
        return None
    return part.value.id


def shares_one_dimension(func: ast.AST, name: str) -> bool:
    """Does every run-time-dimension convolution or BatchNorm key written in ``func`` (the
    function whose required parameter ``name`` is) read that same parameter?"""
    names = func.__dict__.get("_run_time_dims")  # (read once per function node)
    if names is None:
        names = func._run_time_dims = frozenset(
            param for node in ast_walk(func) if node.__class__ is ast.JoinedStr
            for param in (run_time_family(node),) if param is not None)
    return names == {name}
