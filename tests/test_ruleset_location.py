"""Findings must not depend on where the package or the rule files lie (rulepath).

research27 saw b8d2050's engine, run from a second checkout with research27's interpreter
(benchmarks/devcorpus/score.py runs ``python -c "from adopter.cli import main"`` in the
checkout), find an RMSNorm that the same code and rules did not find anywhere else.  The cause:
``bundled_rules_dir`` asked the import system for ``adopter.rules``, and the editable install's
finder answers with the *installed* checkout's ``rules/`` whatever ``adopter`` was imported
from, so that run paired one checkout's engine with another checkout's (newer) ADP011.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# transformer-toolkit 0.0.33, transformer_toolkit/normalization.py (research27's ADP011 label).
RMSNORM = '''\
import torch
import torch.nn as nn


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.w = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        rms = x.pow(2).mean(-1, keepdim=True).add(self.eps).sqrt()
        return self.w * x / rms
'''
RMS_LINE = 12


def _env(cache: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "ADOPTER_NO_CACHE")}
    env["ADOPTER_CACHE_DIR"] = str(cache)
    return env


def _check(cwd: Path, cache: Path, target: Path, *args: str) -> list[tuple[str, int]]:
    proc = subprocess.run(
        [sys.executable, "-c", "import sys; from adopter.cli import main; sys.exit(main())", "check",
         "--no-config", "--output-format", "json", *args, str(target)],
        cwd=cwd, env=_env(cache), capture_output=True, text=True, timeout=300)
    assert proc.returncode in (0, 1), proc.stderr[-2000:]
    return sorted((item["rule"], int(item["line"])) for item in json.loads(proc.stdout))


def _checkout(root: Path, drop: str) -> Path:
    """A second source checkout (adopter/, rules/, pyproject.toml) whose rules lack ``drop``."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(REPO / "adopter", root / "adopter", ignore=ignore)
    shutil.copytree(REPO / "rules", root / "rules", ignore=ignore)
    shutil.copy2(REPO / "pyproject.toml", root / "pyproject.toml")
    (root / "rules" / drop).unlink()
    return root


def test_a_checkout_runs_its_own_bundled_rules(tmp_path):
    other = _checkout(tmp_path / "other-checkout", "ADP011-rms-norm.toml")
    target = tmp_path / "normalization.py"
    target.write_text(RMSNORM)
    where = subprocess.run(
        [sys.executable, "-c", "import adopter, adopter.ruleset as r; print(adopter.__file__); print(r.bundled_rules_dir())"],
        cwd=other, env=_env(tmp_path / "c0"), capture_output=True, text=True, timeout=120)
    assert where.returncode == 0, where.stderr
    package, rules = where.stdout.split("\n")[:2]
    assert Path(package).parent == other / "adopter"
    assert Path(rules) == other / "rules"  # was this repository's rules/ under an editable install
    # This repository's ADP011 finds the RMSNorm; the second checkout has no ADP011, so its
    # engine must not find it (it did, with this repository's rule).
    assert ("ADP011", RMS_LINE) in _check(REPO, tmp_path / "c1", target, "--select", "ALL")
    assert not [f for f in _check(other, tmp_path / "c2", target, "--select", "ALL") if f[0] == "ADP011"]


def test_same_rule_text_in_two_folders_same_findings(tmp_path):
    target = tmp_path / "normalization.py"
    target.write_text(RMSNORM)
    found = []
    for n, folder in enumerate((tmp_path / "a" / "rules", tmp_path / "b" / "deeper" / "zz-other")):
        folder.mkdir(parents=True)
        for path in (REPO / "rules").glob("*.toml"):
            shutil.copy2(path, folder / path.name)
        cwd = tmp_path if n else REPO
        found.append(_check(cwd, tmp_path / f"cache{n}", target, "--no-bundled-rules", "--rules-dir", str(folder),
                            "--select", "ADP011"))
    assert found[0] == found[1] == [("ADP011", RMS_LINE)]
