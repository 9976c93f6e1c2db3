"""Fix safety, as Ruff has it: a rule marked ``fix_safety = "unsafe: why"`` (ADP014, on the
CUDA target) is rewritten by ``fix`` only with ``--unsafe-fixes``, and ``check``'s fixable
count says exactly that: without the flag its finding is not fixable, says why and is counted
as a hidden unsafe fix; with it, it is fixable.  Both counts equal what the matching ``fix``
run rewrites, on a file that also holds a safe fix."""

from __future__ import annotations

import json
import textwrap

import pytest

from adopter.cli import main
from adopter.ruleset import load_rules

RULES = {r.id: r for r in load_rules()}
ROPE = next(e for e in RULES["ADP014"].examples if e.after is not None)

# A safe fix (ADP005) next to the unsafe one (ADP014) in one file.
SAFE = textwrap.dedent('''

    class Output(nn.Module):
        def __init__(self, size):
            super().__init__()
            self.norm = nn.LayerNorm(size)
            self.drop = nn.Dropout(0.1)

        def forward(self, x, residual):
            return self.norm(self.drop(x) + residual)
''')


@pytest.fixture
def model(tmp_path):
    assert not RULES["ADP014"].safe_fix and RULES["ADP005"].safe_fix
    path = tmp_path / "model.py"
    path.write_text(ROPE.before + SAFE)
    return path


def _check(path, capsys, *flags):
    rc = main(["check", "--no-config", "--target", "cuda", "--select", "ADP005,ADP014",
               "--output-format", "json", *flags, str(path)])
    assert rc == 1
    return {item["rule"]: item for item in json.loads(capsys.readouterr().out)}


def _fix(path, capsys, *flags):
    before = path.read_text()
    main(["fix", "--no-config", "--no-deps", "--target", "cuda", "--select", "ADP005,ADP014", *flags, str(path)])
    after = path.read_text()
    path.write_text(before)
    err = capsys.readouterr().err
    fixed = {rule for rule, marker in (("ADP014", "liger_rope("), ("ADP005", "dropout_add_layer_norm("))
             if marker in after and marker not in before}
    return fixed, err


def test_check_counts_an_unsafe_fix_only_with_unsafe_fixes_as_fix_applies_it(model, capsys):
    found = _check(model, capsys)
    assert found["ADP005"]["fixable"] is True
    assert found["ADP014"]["fixable"] is False
    assert found["ADP014"]["not_fixable"].startswith("unsafe fix: apply with --unsafe-fixes (torch.jit.script")
    fixed, err = _fix(model, capsys)
    assert fixed == {rule for rule, item in found.items() if item["fixable"]} == {"ADP005"}
    assert "ADP014 not fixed: unsafe fix: apply with --unsafe-fixes" in err

    found = _check(model, capsys, "--unsafe-fixes")
    assert found["ADP014"]["fixable"] is True and found["ADP014"]["not_fixable"] is None
    fixed, _ = _fix(model, capsys, "--unsafe-fixes")
    assert fixed == {rule for rule, item in found.items() if item["fixable"]} == {"ADP005", "ADP014"}


def test_the_text_summary_counts_hidden_unsafe_fixes_apart(model, capsys):
    main(["check", "--no-config", "--target", "cuda", "--select", "ADP005,ADP014", str(model)])
    summary = capsys.readouterr().err.strip().splitlines()[-1]
    assert summary == ("Found 2 opportunities (1 fixable with `adopter fix`; "
                       "1 hidden unsafe fix can be enabled with `--unsafe-fixes`).")
    main(["check", "--no-config", "--target", "cuda", "--select", "ADP005,ADP014", "--unsafe-fixes", str(model)])
    summary = capsys.readouterr().err.strip().splitlines()[-1]
    assert summary == "Found 2 opportunities (2 fixable with `adopter fix --unsafe-fixes`)."
    # check --fix applies the safe fix and says what is left, the unsafe one counted apart
    main(["check", "--no-config", "--target", "cuda", "--select", "ADP005,ADP014", "--fix", "--no-deps", str(model)])
    summary = capsys.readouterr().err.strip().splitlines()[-1]
    assert summary == ("Found 2 opportunities (1 fixed, 1 remaining; "
                       "1 hidden unsafe fix can be enabled with `--unsafe-fixes`).")
    assert "dropout_add_layer_norm(" in model.read_text() and "liger_rope(" not in model.read_text()


def test_the_hook_hint_is_not_shown_for_an_unsafe_fix(model, capsys):
    from hook.main import FIX_HINT, check

    (model.parent / "pyproject.toml").write_text(
        '[tool.adopter]\ntarget = "cuda"\nselect = ["ADP005", "ADP014"]\n')
    assert check(["--whole-file", str(model)]) == 1
    lines = {line.split(": ")[1].split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert lines["ADP005"].endswith(f"(fix: {FIX_HINT})")
    assert "(fix:" not in lines["ADP014"]


GATED_MLP = textwrap.dedent("""\
    from torch import nn
    from transformers.activations import ACT2FN


    class MLP(nn.Module):
        def __init__(self, config):
            super().__init__()
            self.gate = nn.Linear(config.d, config.h)
            self.up = nn.Linear(config.d, config.h)
            self.down = nn.Linear(config.h, config.d)
            self.act = ACT2FN[config.hidden_act]

        def forward(self, x):
            return self.down(self.act(self.gate(x)) * self.up(x))
""")


@pytest.mark.parametrize("target", [None, "cuda"])
def test_a_rule_fix_will_not_apply_here_does_not_take_the_site_from_one_it_will(tmp_path, capsys, target):
    """Without --target cuda, the CUDA-only SwiGLU rule (ADP013) is informational and fix leaves
    it; the bias-GELU rule (ADP006) on the same gate projection is then what fix applies, so
    check must call that finding fixable (it used to plan ADP013 in and say not fixable)."""
    path = tmp_path / "mlp.py"
    path.write_text(GATED_MLP)
    args = ["--no-config", *(["--target", target] if target else [])]
    main(["check", *args, "--select", "ADP006,ADP013", "--output-format", "json", str(path)])
    fixable = {f["rule"] for f in json.loads(capsys.readouterr().out) if f["fixable"]}
    main(["fix", *args, "--select", "ADP006,ADP013", "--no-deps", str(path)])
    capsys.readouterr()
    fixed = path.read_text()
    applied = {rule for rule, call in (("ADP006", "bias_gelu("), ("ADP013", "liger_swiglu(")) if call in fixed}
    assert fixable == applied and len(applied) == 1
    assert applied == ({"ADP013"} if target == "cuda" else {"ADP006"})
