"""Optimizer-construction patches (ADP012) are verified on the optimizers they build, without
running the training script they sit in."""

from __future__ import annotations

import json
import textwrap
from types import SimpleNamespace

from adopter.cli import main
from adopter.config import Config
from adopter.verify import verify_file
from adopter.verify.result import FAIL, PASS, SKIP

TRAIN = """
import torch
from torch import nn

learning_rate = 3e-4
open({marker!r}, "w").write("the script ran")
model = nn.Linear(4, 4)
optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, betas=(0.9, 0.95), weight_decay=0.1)
for step in range(3):
    loss = model(torch.randn(2, 4)).sum()
    loss.backward()
    optimizer.step()
"""


def _script(tmp_path):
    marker = tmp_path / "ran.txt"
    path = tmp_path / "train.py"
    path.write_text(TRAIN.format(marker=str(marker)))
    return path, marker


def test_optimizer_patch_in_a_training_script_passes_without_running_it(tmp_path, capsys):
    path, marker = _script(tmp_path)
    code = main(["verify", str(path), "--no-config", "--no-benchmark", "--output-format", "json"])
    rows = json.loads(capsys.readouterr().out)["results"]
    assert code == 0
    (row,) = [r for r in rows if r["rule"] == "ADP012"]
    assert row["verdict"] == PASS, row
    assert row["details"]["built"] == "AdamW(<probe parameters>, lr=0.0003, betas=(0.9, 0.95), weight_decay=0.1)"
    assert row["reason"].startswith("builds the same AdamW: 3 steps")
    assert not marker.exists()  # only the imports and the callee were evaluated


def _text_fix(old, new):
    def fix(text, path, rules, package=None):
        return SimpleNamespace(text=text.replace(old, new), applied=[], skipped=[], error=None)

    return fix


def test_a_patch_that_builds_another_optimizer_fails(tmp_path, all_rules, quick):
    path, _ = _script(tmp_path)
    rules = [r for r in all_rules if r.id == "ADP012"]
    other_class = _text_fix("torch.optim.AdamW(model", "torch.optim.Adam(model")
    (result,) = verify_file(str(path), rules, Config(), benchmark=False, fix=other_class, options=quick)
    assert result.verdict == FAIL and "builds a Adam, the original a AdamW" in result.reason
    other_lr = _text_fix("lr=learning_rate", "lr=learning_rate * 2")
    (result,) = verify_file(str(path), rules, Config(), benchmark=False, fix=other_lr, options=quick)
    assert result.verdict == FAIL and "other arguments" in result.reason


def test_a_wrapper_that_changes_the_update_fails(tmp_path, all_rules, quick):
    path, _ = _script(tmp_path)
    (tmp_path / "bad_optim.py").write_text(textwrap.dedent("""
        def scaled(cls):
            def build(params, **kwargs):
                kwargs["lr"] = kwargs.get("lr", 1e-3) * 1.5
                return cls(params, **kwargs)
            return build
    """))
    fix = _text_fix("optimizer = torch.optim.AdamW(", "import bad_optim\noptimizer = bad_optim.scaled(torch.optim.AdamW)(")
    (result,) = verify_file(str(path), [r for r in all_rules if r.id == "ADP012"], Config(), benchmark=False,
                            fix=fix, options=quick)
    assert result.verdict == FAIL and "hyperparameters differ" in result.reason


def test_model_classes_in_a_script_are_not_imported(tmp_path, all_rules, quick):
    marker = tmp_path / "ran.txt"
    path = tmp_path / "script_model.py"
    path.write_text(textwrap.dedent(f"""
        import torch.nn.functional as F
        from torch import nn

        class Mixer(nn.Module):
            def __init__(self, hidden_size):
                super().__init__()
                self.proj = nn.Linear(hidden_size, hidden_size)

            def forward(self, x):
                return F.softmax(self.proj(x), dim=-1)

        for _ in range(1):
            open({str(marker)!r}, "w").write("ran")
    """))
    (result,) = verify_file(str(path), [r for r in all_rules if r.id == "ADP004"], Config(), benchmark=False,
                            options=quick)
    assert result.verdict == SKIP and "runs a script when imported" in result.reason
    assert "move Mixer into a module" in result.reason
    assert not marker.exists()


def test_a_loop_that_only_tags_objects_is_not_a_script(tmp_path, all_rules, quick):
    """fastai-style modules set an attribute on a list of callables at import (``for o in
    F.relu, nn.ReLU: o.__default_init__ = kaiming_uniform_``): that defines, it runs nothing, so
    the module's classes are verified.  A loop whose body calls something stays a script."""
    source = textwrap.dedent("""
        import torch.nn.functional as F
        from torch import nn

        class Tagged:
            pass

        class AlsoTagged:
            pass

        for o in Tagged, AlsoTagged:
            o.default_init = None

        class Mixer(nn.Module):
            def __init__(self, hidden_size):
                super().__init__()
                self.proj = nn.Linear(hidden_size, hidden_size)

            def forward(self, x):
                return F.softmax(self.proj(x), dim=-1)
    """)
    rules = [r for r in all_rules if r.id == "ADP004"]
    path = tmp_path / "tagging_model.py"
    path.write_text(source)
    (result,) = verify_file(str(path), rules, Config(), benchmark=False, options=quick)
    assert result.verdict == PASS, result.reason
    calling = tmp_path / "calling_model.py"
    calling.write_text(source.replace("o.default_init = None", "o.default_init = print('ran')"))
    (result,) = verify_file(str(calling), rules, Config(), benchmark=False, options=quick)
    assert result.verdict == SKIP and "runs a script when imported" in result.reason


def test_neighbouring_optimizer_calls_are_paired_by_their_arguments(tmp_path, all_rules, quick):
    path = tmp_path / "optim.py"
    path.write_text(textwrap.dedent("""
        import torch


        def make_optimizer(params, name="adamw", lr=3e-4):
            if name == "adamw":
                return torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.95), eps=1e-8)
            return torch.optim.SGD(params, lr=lr, momentum=0.9)
    """))
    results = verify_file(str(path), [r for r in all_rules if r.id == "ADP012"], Config(), benchmark=False,
                          options=quick)
    assert [(r.verdict, r.details["built"]) for r in results] == [
        (PASS, "AdamW(<probe parameters>, lr=0.0003, betas=(0.9, 0.95), eps=1e-08)"),
        (PASS, "SGD(<probe parameters>, lr=0.0003, momentum=0.9)"),
    ]
