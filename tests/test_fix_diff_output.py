"""``adopter fix --diff`` prints a diff that ``git apply`` takes and that ends in a newline,
whatever the file: without a trailing newline (the diff says ``\\ No newline at end of file`` and
goes on to a new line, so nothing printed after it runs onto its last line), or with a form feed
or a U+2028 in it (``str.splitlines`` ends lines there; ``patch`` and git do not)."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAD = "import torch\nfrom torch import nn\n"
BODY = '''

class Block(nn.Module):
    """A block.{extra}"""

    def __init__(self, d):
        super().__init__()
        self.norm = nn.LayerNorm(d)
        self.drop = nn.Dropout(0.1)

    def forward(self, x, h):
        h = self.drop(h)
        return self.norm(h + x)'''

CASES = {
    "no trailing newline": HEAD + BODY.format(extra=""),
    "trailing newline": HEAD + BODY.format(extra="") + "\n",
    "form feed and U+2028": HEAD + "\x0c\n" + BODY.format(extra=" \u2028 \x0c"),
    "form feed, no trailing newline, last line": HEAD + BODY.format(extra="") + "  # \x0c end",
}


def _git(cwd, *args):
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_diff_applies_with_git_and_ends_in_a_newline(tmp_path, case):
    text = CASES[case]
    model = tmp_path / "m.py"
    model.write_text(text, encoding="utf-8", newline="")
    command = [sys.executable, "-c", "import sys; from adopter.cli import main; sys.exit(main())",
               "fix", "--no-config", "--no-deps", "--select", "ADP005"]
    shown = subprocess.run([*command, "--diff", "m.py"], cwd=tmp_path, capture_output=True, timeout=120)
    assert shown.returncode == 1, shown.stderr
    diff = shown.stdout.decode("utf-8")
    assert diff.endswith("\n") and "dropout_add_layer_norm(" in diff
    markers = [i for i, line in enumerate(diff.split("\n")) if line.startswith("\\")]
    if text.endswith("\n"):
        assert markers == []
    else:  # after the last - line and after the last + line, nowhere else
        lines = diff.split("\n")
        assert [lines[i - 1][0] for i in markers] == ["-", "+"] and markers[-1] == len(lines) - 2
    # what is printed after the diff (here: stderr in the same stream) starts on its own line
    together = subprocess.run([*command, "--diff", "m.py"], cwd=tmp_path, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, timeout=120).stdout.decode("utf-8")
    assert "m.py: would fix 1 (ADP005)" in together.split("\n")
    # git applies it, and the result is what `fix` writes
    assert _git(tmp_path, "init", "-q").returncode == 0
    (tmp_path / "change.diff").write_bytes(shown.stdout)
    applied = _git(tmp_path, "apply", "--whitespace=nowarn", "change.diff")
    assert applied.returncode == 0, applied.stderr
    patched = model.read_bytes()
    model.write_text(text, encoding="utf-8", newline="")
    assert subprocess.run([*command, "m.py"], cwd=tmp_path, capture_output=True, timeout=120).returncode == 1
    assert model.read_bytes() == patched
