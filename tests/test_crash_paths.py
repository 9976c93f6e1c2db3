"""The last crash paths found by a hostile review: a forward too large for the flow graph, the
time budget's signal landing in cleanup code, and the kernel imports added next to a huge
literal.  Each one ends in a one-line message or a correct result, never a traceback."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from adopter.ruleset import load_rules, select_rules

ADOPTER = [sys.executable, "-c", "import sys; from adopter.cli import main; sys.exit(main())"]


def test_a_forward_over_the_node_limit_stops_with_one_clear_line(tmp_path):
    body = "\n".join("        x = x * 2 + 1" for _ in range(12000))
    source = textwrap.dedent("""\
        import torch
        from torch import nn


        class Big(nn.Module):
            def __init__(self):
                super().__init__()
                self.drop = nn.Dropout(0.1)
                self.ln = nn.LayerNorm(8)

            def forward(self, x, r):
        """) + body + "\n        return self.ln(self.drop(x) + r)\n"
    path = tmp_path / "big.py"
    path.write_text(source)
    small = tmp_path / "small.py"
    small.write_text("import torch\nx = torch.nn.functional.softmax(torch.ones(2), dim=-1)\n")
    for command in ("check", "fix"):
        done = subprocess.run([*ADOPTER, command, "--select", "ADP005", "--file-timeout", "0", str(path), str(small)],
                              capture_output=True, text=True, timeout=300)
        output = done.stdout + done.stderr
        assert done.returncode == 2, output
        lines = [line for line in output.splitlines() if str(path) in line]
        assert lines == [f"{path}: error: Big.forward has more than 20,000 flow-graph nodes; too large to analyse"]
        assert "internal error" not in output and "Traceback" not in output


BUDGET_IN_CLEANUP = """
import contextlib, sys, time
from adopter.budget import BudgetExceeded, time_budget

counts = {"entered": 0, "exited": 0, "generator cleanups": 0, "stopped": 0}


def spin(seconds):
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


class Slow:
    def __enter__(self):
        counts["entered"] += 1
        return self

    def __exit__(self, *exc):
        spin(0.02)  # cleanup that takes a while: the budget's signal lands here often
        counts["exited"] += 1
        return False


@contextlib.contextmanager
def generator_manager():
    try:
        yield
    finally:
        spin(0.02)
        counts["generator cleanups"] += 1


for attempt in range(8):
    try:
        with time_budget(0.05):
            while True:
                with Slow():
                    with generator_manager():
                        spin(0.04)
    except BudgetExceeded:
        counts["stopped"] += 1
    spin(0.15)  # a retry signal left armed would raise here, outside any budget
print(counts)
"""


def test_the_budget_never_cuts_a_cleanup_short_and_leaves_no_signal_behind(tmp_path):
    script = tmp_path / "budget_in_cleanup.py"
    script.write_text(BUDGET_IN_CLEANUP)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    counts = eval(done.stdout)  # noqa: S307 - our own script's dict
    assert counts["stopped"] == 8
    assert counts["entered"] == counts["exited"] == counts["generator cleanups"]


MODEL = """\
import torch
from torch import nn


class SelfOutput(nn.Module):
    def __init__(self, hidden):
        super().__init__()
        self.LayerNorm = nn.LayerNorm(hidden, eps=1e-12)
        self.dropout = nn.Dropout(0.1)

    def forward(self, hidden_states, input_tensor):
        hidden_states = self.dropout(hidden_states)
        hidden_states = self.LayerNorm(hidden_states + input_tensor)
        return hidden_states
"""


def test_imports_are_added_without_parsing_what_follows_them():
    """The head given to LibCST ends with the imports; what follows (here a literal that would
    cost LibCST hundreds of megabytes at full size) is kept byte for byte."""
    from adopter.synth import fix_text

    head, rest = MODEL.split("\n\n\n", 1)
    table = "TABLE = {\n" + ",\n".join(f'    "k{i}": [{i}, "v{i}"]' for i in range(300)) + "\n}\n"
    rules = select_rules(load_rules(), ["ADP005"])
    layouts = {
        "literal after the imports": head + "\n# a comment about the table\n\n" + table + "\n\n" + rest,
        "docstring first": '"""Models."""\n' + head + "\n\n" + table + "\n\n" + rest,
        "no imports": table + "\n\n" + "import torch\nfrom torch import nn\n\n\n" + rest,
        "future import": "from __future__ import annotations\n" + head + "\n\n" + table + "\n\n" + rest,
    }
    for name, text in layouts.items():
        result = fix_text(text, "m.py", rules)
        assert result.error is None and len(result.applied) == 1, name
        new = result.text
        assert table in new, name  # the literal is untouched
        assert "from adopter_kernels import dropout_add_layer_norm\n" in new, name
        if name == "no imports":  # the imports follow the table: the new one joins their block
            assert new.index("TABLE = {") < new.index("import torch\nfrom adopter_kernels import"), name
        else:
            assert new.index("from adopter_kernels import") < new.index("TABLE = {"), name
        assert "__adopter_rest_of_module__" not in new, name
        compile(new, name, "exec")
        if name == "future import":
            assert new.startswith("from __future__ import annotations\n")
        if name == "literal after the imports":
            # (in its isort place: the diff branch's imports.py)
            assert "import torch\nfrom adopter_kernels import dropout_add_layer_norm\nfrom torch import nn\n# a comment" in new
