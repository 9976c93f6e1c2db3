"""The bot never proposes an unsafe fix (``fix_safety = "unsafe: why"``): ``adopter fix``
applies one only with ``--unsafe-fixes``, a choice the bot cannot make for the user.  On the
CUDA target ADP014 (unsafe) finds its pattern next to a safe ADP005 patch: the pull request
carries the safe patch only and lists the unsafe finding as not proposed, with the reason."""

from __future__ import annotations

import json

from conftest import MODEL_V1, PYPROJECT, needs_synth

from adopter.ruleset import load_rules

ROPE = next(e for e in next(r for r in load_rules() if r.id == "ADP014").examples if e.after is not None)
CUDA = PYPROJECT + '\n[tool.adopter]\ntarget = "cuda"\n'


@needs_synth
def test_an_unsafe_fix_is_listed_never_proposed(world, fake_github):
    world.push({"pyproject.toml": CUDA}, "init")
    before, after = world.push({"models/rope.py": ROPE.before, "models/bert.py": MODEL_V1}, "add models")
    run = world.run_bot(fake_github, before, after, verify="false", select="ADP005,ADP014")
    assert run.rc == 0, run.text
    rows = {row["rule"]: row for row in json.loads(open(run.outputs["results-file"]).read())["rows"]}
    assert rows["ADP005"]["status"] == "proposed"
    assert rows["ADP014"]["status"] == "not-fixed"
    assert rows["ADP014"]["reason"].startswith("unsafe: not proposed (torch.jit.script")
    # the bot's branch has the safe patch and leaves the unsafe one's file as it was
    assert world.origin_file("adopter/main", "models/rope.py") == ROPE.before.strip()
    assert "dropout_add_layer_norm(" in world.origin_file("adopter/main", "models/bert.py")
    (post,) = fake_github.calls("POST", r"/pulls$")
    body = post.body["body"]
    proposed = body.split("### Left out", 1)[0]
    assert "ADP005 dropout-add-layernorm" in proposed and "| ADP014" not in proposed
    line = next(line for line in body.splitlines() if "ADP014" in line and "|" in line)
    assert "unsafe: not proposed" in line
