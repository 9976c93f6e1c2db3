"""The bot's pieces on their own: changed files and lines from real git diffs, inputs, runner
outputs and redaction, the table's escaping and size, the verdicts and their gate."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from adopter.bot import actions, render
from adopter.bot.actions import BotError, Console, load_inputs, set_outputs
from adopter.bot.changes import changed_files, unquote
from adopter.bot.gitops import Git, GitError, RemoteBranch
from adopter.bot.patches import FAILED, PROPOSED, SLOWER, UNVERIFIED, Options, Row, _judge, slower_modes
from adopter.engine import Finding
from conftest import parse_outputs


# ---------------------------------------------------------------- changed files and lines

def test_changed_lines_from_a_real_diff(world):
    world.push({"a.py": "x = 1\ny = 2\nz = 3\n", "b.py": "b = 1\n", "notes.txt": "t\n", "gone.py": "g = 1\n"})
    before, after = world.push({"a.py": "x = 1\ny = 20\nz = 3\nw = 4\n", "notes.txt": "u\n",
                                "gone.py": None, "new/c.py": "c = 1\n"}, "edit")
    world.git("mv", "b.py", "renamed.py")
    world.git("commit", "-q", "-m", "rename")
    world.git("push", "-q", "origin", "HEAD:main")
    after2 = world.git("rev-parse", "HEAD")
    git = Git(world.dev)
    changes = changed_files(git, before, after)
    assert {f.path: set(f.lines) for f in changes.files} == {"a.py": {2, 4}, "new/c.py": {1}}
    assert changes.description == f"{before[:7]}..{after[:7]}"
    renamed = changed_files(git, after, after2)
    assert [(f.path, set(f.lines)) for f in renamed.files] == [("renamed.py", set())]


def test_new_branch_missing_before_and_force_push_use_the_head_commit(world):
    _, first = world.push({"a.py": "a = 1\n"}, "root")
    _, second = world.push({"b.py": "b = 1\n", "a.py": "a = 2\n"}, "second")
    git = Git(world.dev)
    root = changed_files(git, "0" * 40, first)
    assert [f.path for f in root.files] == ["a.py"] and root.base == git.empty_tree()
    for before, forced in ((None, False), ("0" * 40, False), (first, True), ("f" * 40, False)):
        head = changed_files(git, before, second, forced=forced)
        assert head.base == first and head.description == f"head commit {second[:7]}"
        assert sorted(f.path for f in head.files) == ["a.py", "b.py"]


def test_a_missing_head_commit_is_an_error(world):
    world.push({"a.py": "a = 1\n"})
    with pytest.raises(GitError, match="not in this checkout"):
        changed_files(Git(world.dev), None, "a" * 40)


def test_push_refuses_anything_but_a_bot_branch(world):
    world.push({"a.py": "a = 1\n"})
    git = Git(world.dev)
    head = world.git("rev-parse", "HEAD")
    for name in ("main", "adopter/main"):
        with pytest.raises(GitError, match="refusing"):
            git.push(head, RemoteBranch(name, None), protected={"main", "adopter/main"})


def test_commit_files_leaves_the_working_tree_alone(world):
    before, head = world.push({"pkg/m.py": "a = 1\n", "run.sh": "echo\n"})
    (world.dev / "run.sh").chmod(0o755)
    world.git("add", "run.sh")
    world.git("commit", "-q", "-m", "exec")
    head = world.git("rev-parse", "HEAD")
    git = Git(world.dev)
    commit = git.commit_files(head, {"pkg/m.py": b"a = 2\n", "run.sh": b"echo hi\n"}, "bot\n")
    assert world.git("rev-parse", f"{commit}^") == head
    assert world.git("show", f"{commit}:pkg/m.py") == "a = 2"
    assert "100755" in world.git("ls-tree", commit, "run.sh")
    assert world.git("rev-parse", "HEAD") == head and world.git("status", "--porcelain") == ""


# ---------------------------------------------------------------- inputs and the runner

def test_inputs_in_both_spellings_and_cli_overrides():
    env = {"INPUT_GITHUB-TOKEN": "t1", "INPUT_MODE": "report", "INPUT_SELECT": "ADP005, ADP006",
           "INPUT_VERIFY": "False", "INPUT_BASE_BRANCH": "dev"}
    inputs = load_inputs(env)
    assert (inputs.token, inputs.mode, inputs.select, inputs.verify, inputs.benchmark, inputs.base_branch) == \
        ("t1", "report", ("ADP005", "ADP006"), False, True, "dev")
    assert load_inputs({"INPUT_GITHUB_TOKEN": "t2", "GITHUB_TOKEN": "t3"}).token == "t2"
    assert load_inputs({"GITHUB_TOKEN": "t3"}).token == "t3"
    assert load_inputs(env, {"mode": "pull-request", "verify": None}).mode == "pull-request"
    with pytest.raises(BotError, match="mode"):
        load_inputs({"INPUT_MODE": "yolo"})
    with pytest.raises(BotError, match="verify"):
        load_inputs({"INPUT_VERIFY": "maybe"})


def test_outputs_are_written_for_the_runner_and_secrets_redacted(tmp_path):
    out = tmp_path / "output"
    console = Console(io.StringIO(), io.StringIO())
    console.add_secret("s3cret", in_actions=False)
    set_outputs(out, {"findings": "2", "table": "a\nb s3cret", "url": "http://x/pull/1"}, console)
    assert parse_outputs(out.read_text()) == {"findings": "2", "table": "a\nb ***", "url": "http://x/pull/1"}


def test_context_needs_a_repository(tmp_path):
    with pytest.raises(BotError, match="GITHUB_REPOSITORY"):
        actions.load_context({}, actions.Inputs())
    event = tmp_path / "e.json"
    event.write_text("[1]")
    with pytest.raises(BotError, match="JSON object"):
        actions.load_context({"GITHUB_REPOSITORY": "o/r", "GITHUB_EVENT_PATH": str(event)}, actions.Inputs())


# ---------------------------------------------------------------- verdicts

def _finding(line=10):
    return Finding("ADP005", "dropout-add-layernorm", "m.py", line, 9, line + 1, 40, "msg", True, "Block")


def test_verdicts_drop_failing_slower_and_unverified_patches():
    on = Options(verify=True, benchmark=True)
    result = {"rule": "ADP005", "line": 10, "verdict": "pass", "max_abs_diff": 1e-7, "forward_ratio": 1.4,
              "forward_backward_ratio": 1.2, "memory_ratio": 0.8, "device": "cpu: test"}
    assert _judge(_finding(), None, result, on).status == PROPOSED
    assert _judge(_finding(), None, {**result, "forward_backward_ratio": 0.8}, on).status == SLOWER
    assert _judge(_finding(), None, {**result, "verdict": "fail", "reason": "outputs differ"}, on).status == FAILED
    assert _judge(_finding(), None, {**result, "verdict": "skip"}, on).status == UNVERIFIED
    assert _judge(_finding(), None, None, on).status == UNVERIFIED
    off = _judge(_finding(), None, None, Options(verify=False))
    assert (off.status, off.verified) == (PROPOSED, "off")
    # with benchmarks off, speed is not judged
    assert _judge(_finding(), None, {**result, "forward_ratio": 0.5, "forward_backward_ratio": None},
                  Options(verify=True, benchmark=False)).status == PROPOSED


def test_slower_means_beyond_timing_noise_in_any_mode():
    assert slower_modes(0.5, None) == [("forward", 0.5)]
    assert slower_modes(1.5, 0.9) == [("forward+backward", 0.9)]
    # the forward pass counts even when the training step got faster
    assert slower_modes(0.8, 1.3) == [("forward", 0.8)]
    assert slower_modes(0.99, None) == [] and slower_modes(None, None) == []
    # the measured spread widens the band of noise, never narrows it below 3 %
    assert slower_modes(0.9, None, spread=0.2) == [] and slower_modes(0.9, None, spread=0.01) == [("forward", 0.9)]


# ---------------------------------------------------------------- the table

def _row(**kw):
    base = dict(rule="ADP005", name="dropout-add-layernorm", path="m.py", line=3, class_name="B",
                kernel="adopter_kernels.dropout_add_layer_norm", package="adopter-kernels>=0.1.0", status=PROPOSED,
                verified="yes", max_abs_diff=2.5e-7, forward_ratio=1.31, forward_backward_ratio=0.5,
                memory_ratio=0.9, device="NVIDIA H100")
    base.update(kw)
    return Row(**base)


def test_body_has_the_marker_table_dependencies_and_silencing():
    rows = [_row(), _row(line=9, status=SLOWER, reason="slower on this runner")]
    text = render.body(rows, "main", "a" * 40, ["adopter-kernels>=0.1.0"], None, "0.1.0")
    assert text.startswith(render.MARKER)
    assert "| ADP005 dropout-add-layernorm | `m.py:3` | `adopter_kernels.dropout_add_layer_norm` (`adopter-kernels>=0.1.0`) " \
           "| yes, max abs diff 2.5e-07 | 1.31× faster ±3% | 0.50× (slower ±3%) | 0.90× (more) | NVIDIA H100 |" in text
    assert "### Left out (1)" in text and "slower on this runner: left out" in text and "`m.py:9`" in text
    assert "- `adopter-kernels>=0.1.0`" in text
    assert "# adopter: ignore[ADP005]" in text and "[tool.adopter]" in text and "mode: report" in text
    assert "Measured on: NVIDIA H100." in text


def test_a_forward_only_pass_says_so_in_the_verified_cell():
    # verify's pass whose original cannot train (lead ruling, session 37): gradients not compared
    row = _row(reason="forward only: the original cannot train (RuntimeError: a view modified inplace); eval and "
                      "train-mode outputs match")
    assert render.verified(row) == "yes, forward only (the original cannot train), max abs diff 2.5e-07"
    assert render.verified(_row(reason="eval and train outputs and gradients match")) == "yes, max abs diff 2.5e-07"


def test_cells_cannot_break_the_table_or_inject_html():
    row = _row(path="a|b<script>.py", reason="x\n| y", device="@octocat <b>", status=FAILED)
    text = render.left_out_table([row])
    line = text.splitlines()[2]
    assert line.count(" | ") == 5  # six cells, pipes inside them escaped
    assert "`a\\|b<script>.py:3`" in line  # inside a code span HTML is inert
    assert "<b>" not in text and "@octocat" not in text


def test_row_from_untrusted_json_is_checked():
    good = _row().as_dict()
    assert Row.from_dict(good) == _row()
    for bad in ({"line": "3"}, {"status": "merged"}, {"verified": "sure"}, {"forward_ratio": "fast"},
                {"rule": "`rm`"}, {"max_abs_diff": float("nan")}):
        with pytest.raises(ValueError):
            Row.from_dict({**good, **bad})


def test_docs_and_action_agree_on_the_inputs():
    yaml = pytest.importorskip("yaml")
    root = Path(__file__).resolve().parents[2]
    action = yaml.safe_load((root / "action.yml").read_text())
    assert action["runs"]["using"] == "composite" and action["branding"]
    assert set(action["inputs"]) >= {"github-token", "select", "mode", "verify", "benchmark", "base-branch",
                                     "python-version"}
    assert set(action["outputs"]) >= {"findings", "pull-request-url", "sarif-file"}
    steps = action["runs"]["steps"]
    assert any("[${ADOPTER_EXTRAS}]" in s.get("run", "") for s in steps)
    assert steps[-1]["run"].strip() == "adopter bot"
    # no input is spliced into a script: they travel as environment variables
    assert all("inputs." not in s.get("run", "") for s in steps)
    docs = (root / "docs" / "bot.md").read_text()
    for name in action["inputs"]:
        assert f"`{name}`" in docs, f"docs/bot.md does not describe the input {name}"
    for name in action["outputs"]:
        assert f"`{name}`" in docs, f"docs/bot.md does not describe the output {name}"


def test_example_workflows_keep_the_privileged_half_away_from_the_code():
    yaml = pytest.importorskip("yaml")
    folder = Path(__file__).resolve().parents[2] / ".github" / "workflows"
    analyse = yaml.safe_load((folder / "adopter-split-analyse.yml").read_text())
    propose = yaml.safe_load((folder / "adopter-split-propose.yml").read_text())
    assert analyse["permissions"] == {"contents": "read"}
    (job,) = analyse["jobs"].values()
    assert any(s.get("with", {}).get("mode") == "report" for s in job["steps"])
    assert any(str(s.get("uses", "")).startswith("actions/upload-artifact") for s in job["steps"])
    triggers = propose[True] if True in propose else propose["on"]  # PyYAML reads `on` as True
    assert "workflow_run" in triggers
    (job,) = propose["jobs"].values()
    assert "github.event.workflow_run.event == 'push'" in job["if"]
    steps = job["steps"]
    assert any(s.get("with", {}).get("mode") == "apply" for s in steps)
    assert not any("pip install" in s.get("run", "") or "python " in s.get("run", "") for s in steps)


# ---------------------------------------------------------------- names, secrets, size

def test_git_quoted_names_are_unquoted_as_git_quotes_them():
    assert unquote('"t\\tab.py"') == "t\tab.py"
    assert unquote('"new\\nline.py"') == "new\nline.py"
    assert unquote('"\\303\\274n\\303\\257 \\"q\\".py"') == 'ünï "q".py'
    assert unquote('"back\\\\slash.py"') == "back\\slash.py"
    assert unquote("plain.py") == "plain.py"


def test_every_secret_looking_runner_variable_is_redacted():
    console = Console(io.StringIO(), io.StringIO())
    env = {"INPUT_GITHUB-TOKEN": "ghs_abcdefghijklmnopqrstuvwxyz", "ACTIONS_RUNTIME_TOKEN": "eyJhbGciOi.x.y-runtime",
           "INPUT_DEPLOY_KEY": "dk-1234567890", "GITHUB_SHA": "a" * 40, "INPUT_MODE": "pull-request",
           "GITHUB_WORKSPACE": "/home/runner/work", "HOME_TOKEN": "not-a-runner-variable"}
    console.add_environment(env)
    text = console.redact("\n".join(f"{k}={v}" for k, v in env.items()) + " and ghp_" + "x" * 36)
    assert "abcdefghijklmnop" not in text and "runtime" not in text and "dk-1234567890" not in text
    assert "x" * 36 not in text
    assert f"GITHUB_SHA={'a' * 40}" in text and "INPUT_MODE=pull-request" in text
    assert "GITHUB_WORKSPACE=/home/runner/work" in text
    # a secret quoted from the environment by name, whatever its value looks like
    assert console.redact("KeyError: GITHUB_TOKEN='hunter2hunter2'") == "KeyError: GITHUB_TOKEN='***'"


def test_the_body_is_kept_under_githubs_limit_by_size():
    rows = [_row(path="a/" * 240 + f"m{i}.py", line=i + 1, reason="r " * 240,
                 status=PROPOSED if i % 3 else FAILED) for i in range(3000)]
    text = render.body(rows, "main", "a" * 40, ["adopter-kernels>=0.1.0"], "https://github.com/o/r/blob/" + "a" * 40)
    assert len(text) <= render.MAX_BODY_CHARS < 65536
    assert "more, not shown to keep this under GitHub's size limit" in text
    assert "### Patches in this pull request (2000)" in text and "### Left out (1000)" in text
    assert text.rstrip().endswith("</sub>")  # the table was shortened, not the text cut
    # small tables are left whole
    small = render.body(rows[:5], "main", "a" * 40, [])
    assert "not shown" not in small and small.count("| ADP005") == 5
