"""Jupyter notebooks: code cells analysed as one module, positions as `cell N:line`, fixes
written back into the cells with everything else in the file kept byte for byte.  (The
notebook's model is a softmax: ADP004, off by default, is selected.)"""

from __future__ import annotations

import json
import textwrap

import pytest

from adopter.cli import main

IMPORTS = "import torch.nn.functional as F\nfrom torch import nn\n%matplotlib inline"
MODEL_CELL = textwrap.dedent("""\
    class Head(nn.Module):
        def forward(self, h):
            !echo this is IPython, not Python
            return F.softmax(h, dim=-1)""")


def notebook(*cells: tuple[str, str], indent=1) -> str:
    def cell(kind, source):
        body = {"cell_type": kind, "metadata": {"tags": ["x"]}, "source": source.splitlines(keepends=True)}
        if kind == "code":
            body.update(execution_count=3, outputs=[{"output_type": "stream", "name": "stdout", "text": ["é ok\n"]}])
        return body

    data = {"cells": [cell(k, s) for k, s in cells],
            "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3"},
                         "language_info": {"name": "python", "version": "3.11.7"}},
            "nbformat": 4, "nbformat_minor": 5}
    return json.dumps(data, indent=indent, ensure_ascii=False) + "\n"


@pytest.fixture
def nb(tmp_path):
    path = tmp_path / "model.ipynb"
    path.write_text(notebook(("markdown", "# A model\n"), ("code", IMPORTS), ("code", "%%bash\necho hi\n"),
                             ("code", MODEL_CELL)), encoding="utf-8")
    return path


def test_check_reports_positions_in_cells(nb, capsys):
    assert main(["check", "--select=ADP004", str(nb)]) == 1
    out = capsys.readouterr().out
    assert out.strip() == (f"{nb}:cell 4:4:16: ADP004 softmax: last-dimension softmax can use "
                           "adopter_kernels.softmax")
    assert main(["check", "--select=ADP004", "--output-format", "json", str(nb)]) == 1
    (item,) = json.loads(capsys.readouterr().out)
    assert (item["cell"], item["line"], item["column"]) == (4, 4, 16)


def test_fix_rewrites_the_cells_and_keeps_everything_else(nb, capsys):
    before = json.loads(nb.read_text(encoding="utf-8"))
    assert main(["fix", "--select=ADP004", "--no-deps", str(nb)]) == 1
    raw = nb.read_text(encoding="utf-8")
    after = json.loads(raw)
    # the file is written the way it was formatted (indent 1, non-ASCII kept, final newline)
    assert raw == json.dumps(after, indent=1, ensure_ascii=False) + "\n"
    assert [c["cell_type"] for c in after["cells"]] == [c["cell_type"] for c in before["cells"]]
    for old, new in zip(before["cells"], after["cells"]):
        assert {k: v for k, v in old.items() if k != "source"} == {k: v for k, v in new.items() if k != "source"}
    assert after["metadata"] == before["metadata"]
    imports = "".join(after["cells"][1]["source"])
    assert "%matplotlib inline" in imports and "from adopter_kernels import softmax" in imports
    assert after["cells"][2] == before["cells"][2]  # the %%bash cell is not Python: untouched
    model = "".join(after["cells"][3]["source"])
    assert "return softmax(h, dim=-1)" in model and "!echo this is IPython, not Python" in model
    assert not model.endswith("\n")  # a cell's last line keeps having no newline
    # a second run finds nothing more to do
    capsys.readouterr()
    assert main(["fix", "--select=ADP004", "--no-deps", str(nb)]) == 0
    assert nb.read_text(encoding="utf-8") == raw
    assert main(["check", "--select=ADP004", str(nb)]) == 0


def test_diff_is_per_cell(nb, capsys):
    assert main(["fix", "--select=ADP004", "--diff", "--no-deps", str(nb)]) == 1
    out = capsys.readouterr().out
    assert f"--- a/{str(nb).lstrip('/')}:cell 2" in out and f"+++ b/{str(nb).lstrip('/')}:cell 4" in out
    assert "-        return F.softmax(h, dim=-1)" in out and "+        return softmax(h, dim=-1)" in out


def test_notebooks_are_found_in_folders(nb, capsys):
    assert main(["check", "--select=ADP004", "--output-format", "json", str(nb.parent)]) == 1
    assert [d["path"] for d in json.loads(capsys.readouterr().out)] == [str(nb)]


def test_a_notebook_whose_formatting_cannot_be_kept_is_not_rewritten(tmp_path, capsys):
    path = tmp_path / "odd.ipynb"
    text = notebook(("code", IMPORTS), ("code", MODEL_CELL)).replace('"cells": [', '"cells" :  [')
    path.write_text(text, encoding="utf-8")
    assert main(["check", "--select=ADP004", str(path)]) == 1
    capsys.readouterr()
    assert main(["fix", "--select=ADP004", "--no-deps", str(path)]) == 2
    assert "its JSON formatting cannot be reproduced" in capsys.readouterr().err
    assert path.read_text(encoding="utf-8") == text


def test_broken_and_foreign_notebooks_are_errors(tmp_path, capsys):
    broken = tmp_path / "broken.ipynb"
    broken.write_text('{"cells": [')
    r_book = tmp_path / "r.ipynb"
    data = json.loads(notebook(("code", "x <- 1")))
    data["metadata"]["language_info"]["name"] = "R"
    r_book.write_text(json.dumps(data))
    syntax = tmp_path / "syntax.ipynb"
    syntax.write_text(notebook(("code", "def f(:\n    pass")))
    assert main(["check", str(broken), str(r_book), str(syntax)]) == 2
    err = capsys.readouterr().err
    assert "broken.ipynb: error: not a valid notebook: JSON error" in err
    assert "r.ipynb: error: a R notebook, not Python" in err
    assert "syntax.ipynb: error: syntax error" in err
    assert "Traceback" not in err
