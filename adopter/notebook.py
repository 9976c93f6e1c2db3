"""Jupyter notebooks: their code cells analysed as one module, fixes written back per cell.

Models are often written in notebooks, and a notebook must not look "clean" only because it
is JSON.  The code cells are joined into one Python module (imports made in cell 1 resolve
names in cell 5, as they do in the kernel), each cell after a marker comment line, so that
every position maps back to ``cell N:line`` (N counts every cell of the notebook, from 1,
as a user counts them on screen) and a fixed module splits back into its cells.

IPython syntax is not Python: a line magic (``%timeit f(x)``), a shell escape
(``!pip install x``, ``files = !ls``) or a help query (``obj?``) is analysed as ``pass`` and
put back unchanged; a cell magic (``%%bash`` on the first line) makes the whole cell foreign
code, left out of the analysis and never edited.

Writing keeps everything but the changed cells' ``source`` byte for byte: the JSON is
written with the indentation, key order, escaping and final newline it was read with.  A
notebook whose formatting cannot be reproduced that way is analysed but not rewritten (an
error says so), rather than reformatted behind the user's back.
"""

from __future__ import annotations

import json
import re
from .records import dataclass

from .source import SourceError, SourceFile

MARKER = "# %% [adopter: cell {}]"
_MARKER = re.compile(r"^# %% \[adopter: cell (\d+)\]$")
_MAGIC = re.compile(r"^\s*(?:[%!]|[\w.,\s\[\]()*]+=\s*[%!])|^[^#]*\?\s*$")
_MAGIC_LINE = "pass  # adopter: ipython {}"
_MAGIC_BACK = re.compile(r"^(\s*)pass  # adopter: ipython (\d+)$")
MAX_CODE_BYTES = 2 * 1024 * 1024


class NotebookError(SourceError):
    """A notebook that cannot be read or written back; the message is one line."""


@dataclass
class Notebook:
    source: SourceFile  # the notebook file itself (JSON text)
    data: dict
    text: str  # the code cells as one module
    cells: list[int]  # notebook cell index of each code cell in ``text``, in order
    line_map: list[tuple[int, int]]  # per line of ``text`` (0-based): (cell number, line in cell)
    magics: list[str]  # original lines replaced by ``pass`` markers
    style: dict | None  # json.dumps arguments that reproduce the file; None: cannot be rewritten

    def position(self, line: int) -> tuple[int, int]:
        """(cell number from 1, line in that cell from 1) of a line of :attr:`text`."""
        if 1 <= line <= len(self.line_map):
            return self.line_map[line - 1]
        return (0, line)


def _cell_text(cell: dict) -> str:
    source = cell.get("source", "")
    if isinstance(source, list):
        if not all(isinstance(part, str) for part in source):
            raise NotebookError("a cell's source is not text; not a valid notebook")
        return "".join(source)
    if not isinstance(source, str):
        raise NotebookError("a cell's source is not text; not a valid notebook")
    return source


def _style(raw: str, data: dict) -> dict | None:
    for indent in (1, 2, 4, None, 3, "\t"):
        for ensure_ascii in (False, True):
            for separators in (None, (",", ":")):
                kwargs = {"indent": indent, "ensure_ascii": ensure_ascii, "separators": separators}
                try:
                    dumped = json.dumps(data, **kwargs)
                except (TypeError, ValueError):
                    return None
                if raw == dumped:
                    return {**kwargs, "newline": False}
                if raw == dumped + "\n":
                    return {**kwargs, "newline": True}
    return None


def load(source: SourceFile) -> Notebook:
    """Parse a notebook's JSON (already read as text) into its code as one module."""
    try:
        data = json.loads(source.text)
    except json.JSONDecodeError as exc:
        raise NotebookError(f"not a valid notebook: JSON error at {exc.lineno}:{exc.colno}: {exc.msg}") from None
    except RecursionError:
        raise NotebookError("not a valid notebook: JSON nested too deeply") from None
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        raise NotebookError("not a valid notebook: no list of cells")
    language = ((data.get("metadata") or {}).get("language_info") or {}).get("name", "python")
    if isinstance(language, str) and language.lower() not in ("python", "python3", "ipython", ""):
        raise NotebookError(f"a {language} notebook, not Python; not analysed")
    parts: list[str] = []
    line_map: list[tuple[int, int]] = []
    cells: list[int] = []
    magics: list[str] = []
    for index, cell in enumerate(data["cells"]):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        body = _cell_text(cell)
        if body.lstrip().startswith("%%"):
            continue  # a cell magic: not Python
        lines = body.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        cells.append(index)
        parts.append(MARKER.format(index + 1))
        line_map.append((index + 1, 0))
        # Only a cell that is not Python as it stands has its IPython lines masked: a line
        # that merely starts with '%' may continue a Python expression.
        masked = not _parses(body)
        for number, line in enumerate(lines, start=1):
            if masked and _MAGIC.match(line):
                indent = line[: len(line) - len(line.lstrip())]
                magics.append(line)
                line = indent + _MAGIC_LINE.format(len(magics) - 1)
            parts.append(line)
            line_map.append((index + 1, number))
    text = "\n".join(parts) + ("\n" if parts else "")
    if len(text.encode("utf-8")) > MAX_CODE_BYTES:
        raise NotebookError("the notebook's code is too large to analyse (over 2.0 MiB)")
    return Notebook(source, data, text, cells, line_map, magics, _style(source.text, data))


def _parses(code: str) -> bool:
    import ast

    try:
        ast.parse(code)
    except Exception:  # SyntaxError, ValueError (NUL), RecursionError: not plain Python
        return False
    return True


def _split(text: str, notebook: Notebook) -> dict[int, str]:
    """The new module text back into cells: {notebook cell index: its new source}."""
    cells: dict[int, list[str]] = {}
    current: int | None = None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for line in lines:
        marker = _MARKER.match(line)
        if marker:
            current = int(marker.group(1)) - 1
            if current in cells:
                raise NotebookError("the fix moved a cell boundary; notebook left as it is")
            cells[current] = []
            continue
        if current is None:
            if line.strip():
                raise NotebookError("the fix wrote code before the first cell; notebook left as it is")
            continue
        back = _MAGIC_BACK.match(line)
        if back:
            number = int(back.group(2))
            if number >= len(notebook.magics):
                raise NotebookError("the fix changed an IPython line; notebook left as it is")
            line = back.group(1) + notebook.magics[number].lstrip()
        cells[current].append(line)
    if list(cells) != notebook.cells:
        raise NotebookError("the fix moved a cell boundary; notebook left as it is")
    return {index: "\n".join(body) for index, body in cells.items()}


def rewrite(notebook: Notebook, new_text: str) -> tuple[str, list[tuple[int, str, str]]]:
    """The notebook's new JSON text for ``new_text`` (the fixed module), and the changed cells
    as (cell number, old source, new source).  Raises :class:`NotebookError` when the fix
    cannot be mapped back onto the cells or the file's formatting cannot be kept."""
    if notebook.style is None:
        raise NotebookError("its JSON formatting cannot be reproduced, so it is not rewritten; "
                            "save it from Jupyter (or with nbformat) and run again")
    new_cells = _split(new_text, notebook)
    changed = []
    for index, body in new_cells.items():
        cell = notebook.data["cells"][index]
        old = _cell_text(cell)
        if old.endswith("\n"):
            body += "\n"
        if body == old:
            continue
        changed.append((index + 1, old, body))
        if isinstance(cell.get("source"), list):
            cell["source"] = body.splitlines(keepends=True)
        else:
            cell["source"] = body
    style = dict(notebook.style)
    newline = style.pop("newline")
    return json.dumps(notebook.data, **style) + ("\n" if newline else ""), changed
