"""Peak memory and time of ``adopter fix`` on files that hold a huge literal next to a patch.

A 1.5 MB dict literal between the imports and a fixable class used to peak at 1.16 GB and take
minutes: the kernel imports were added by LibCST on the module's head, which then included the
statement after the import block, i.e. the whole literal (LibCST keeps ~700 bytes per byte of
source).  The head now stops at the imports, with a one-line stand-in for what follows.

Each case runs ``adopter fix`` in a fresh process (``--file-timeout 0``) and prints that
process's peak resident memory (its own ``ru_maxrss``) and the wall time::

    python benchmarks/fix_memory.py              # 1.5 MB literals
    python benchmarks/fix_memory.py --entries 5000   # smaller, a few seconds
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MODEL = '''\
class SelfOutput(nn.Module):
    def __init__(self, hidden):
        super().__init__()
        self.dense = nn.Linear(hidden, hidden)
        self.LayerNorm = nn.LayerNorm(hidden, eps=1e-12)
        self.dropout = nn.Dropout(0.1)

    def forward(self, hidden_states, input_tensor):
        hidden_states = self.dense(hidden_states)
        hidden_states = self.dropout(hidden_states)
        hidden_states = self.LayerNorm(hidden_states + input_tensor)
        return hidden_states
'''
IMPORTS = "import torch\nfrom torch import nn\n\n\n"


def cases(entries: int) -> dict[str, str]:
    table = "TABLE = {\n" + ",\n".join(f'    "key{i}": [{i}, {i * 2}, "v{i}"]' for i in range(entries)) + "\n}\n"
    in_init = MODEL.replace("        super().__init__()\n", "        super().__init__()\n        self.table = {\n"
                            + ",\n".join(f'            "k{i}": [{i}, "v{i}"]' for i in range(entries)) + "\n        }\n")
    return {
        "dict after the imports": IMPORTS + table + "\n\n" + MODEL,
        "dict at the end": IMPORTS + MODEL + "\n\n" + table,
        "dict in __init__ of the patched class": IMPORTS + in_init,
    }


def run(text: str) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.py"
        path.write_text(text)
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", CHILD, str(path)], capture_output=True, text=True)
        elapsed = time.perf_counter() - start
        if "fixed 1" not in done.stdout + done.stderr:
            raise SystemExit(f"fix did not patch the file: {done.stdout}{done.stderr}")
        peak = int(done.stdout.strip().splitlines()[-1])
        return peak / 1024, elapsed


CHILD = """
import resource, sys
from adopter.cli import main
main(["fix", "--file-timeout", "0", sys.argv[1]])
sys.stdout.flush()
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=38000, help="dict entries (38000: about 1.5 MB)")
    args = parser.parse_args()
    print(f"{'case':42} {'size':>9} {'peak RSS':>10} {'time':>8}")
    for name, text in cases(args.entries).items():
        peak, elapsed = run(text)
        print(f"{name:42} {len(text) / 1e6:7.2f}MB {peak:8.0f}MB {elapsed:7.1f}s")


if __name__ == "__main__":
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    main()
