"""The bot keeps going and never goes back: odd file names, pathological and huge files, runs out
of order and racing runs, a deleted base branch, a body too long for GitHub, and secondary rate
limits.  Real git (a bare origin with a real server-side hook for the races) and the GitHub
stand-in over real HTTP."""

from __future__ import annotations

import json
import shutil
import stat
import textwrap

from conftest import MODEL_V1, MODEL_V2, PYPROJECT, needs_synth

MARKER = "<!-- adopter-bot -->"
ODD_NAMES = ['models/ünï "q".py', "models/t\tab.py", "models/new\nline.py", "models/back\\slash.py"]


def _writes(fake):
    return fake.calls("POST") + fake.calls("PATCH") + fake.calls("PUT") + fake.calls("DELETE")


def _built_from(world, ref="adopter/main"):
    world.git("fetch", "-q", "origin")
    return world.git("rev-parse", f"origin/{ref}^")


@needs_synth
def test_file_names_with_any_characters_are_analysed_and_patched(world, fake_github):
    world.push({"pyproject.toml": PYPROJECT}, "init")
    before, after = world.push({name: MODEL_V1 for name in ODD_NAMES}, "odd names")
    run = world.run_bot(fake_github, before, after, verify="false")
    assert run.rc == 0, run.text
    rows = json.loads(open(run.outputs["results-file"]).read())["rows"]
    assert sorted(r["path"] for r in rows) == sorted(ODD_NAMES)
    assert run.outputs["findings"] == str(len(ODD_NAMES))
    for name in ODD_NAMES:
        assert "dropout_add_layer_norm(" in world.origin_file("adopter/main", name), name
    # and the changed lines were found for each of them (annotations on line 14)
    assert run.stdout.count(",line=14,") == len(ODD_NAMES)


@needs_synth
def test_a_file_over_its_time_budget_or_size_limit_is_skipped_and_the_others_go_on(world, fake_github):
    body = MODEL_V1.split("\n\n\n", 1)[1]
    big = "import torch\nfrom torch import nn\n\n\n" + "\n\n".join(
        body.replace("SelfOutput", f"SelfOutput{i}") for i in range(1000))
    huge = "# filler\n" * 250_000 + MODEL_V1  # 2.5 MB: over the 2 MiB limit
    world.push({"pyproject.toml": PYPROJECT, "slow/pyproject.toml": "[tool.adopter]\nfile-timeout = 0.05\n"},
               "init")
    before, after = world.push({"slow/many.py": big, "models/huge.py": huge, "models/bert.py": MODEL_V1}, "add")
    run = world.run_bot(fake_github, before, after, verify="false")
    assert run.rc == 0, run.text
    assert "slow/many.py: time budget of 0.05 s exceeded" in run.stdout
    assert "models/huge.py: file is too large to analyse (2.1 MiB, limit 2.0 MiB)" in run.stdout
    assert "### Files not analysed" in run.summary
    # the ordinary file still became the pull request
    assert "dropout_add_layer_norm(" in world.origin_file("adopter/main", "models/bert.py")
    assert _built_from(world) == after
    assert world.git("diff", "--name-only", after, "origin/adopter/main").splitlines() == \
        ["models/bert.py", "pyproject.toml"]


@needs_synth
def test_an_older_run_never_moves_the_branch_back(world, fake_github):
    world.push({"pyproject.toml": PYPROJECT}, "init")
    before_a, a = world.push({"models/bert.py": MODEL_V1}, "A")
    before_b, b = world.push({"models/t5_out.py": MODEL_V2}, "B")
    newer = world.run_bot(fake_github, before_b, b, verify="false")
    assert newer.rc == 0, newer.text
    tip = world.origin_ref("adopter/main")
    body = fake_github.pulls[1]["body"]
    assert _built_from(world) == b
    # A's run finishes after B's (a re-run, or runs out of order): it leaves branch and PR alone
    older = world.run_bot(fake_github, before_a, a, verify="false")
    assert older.rc == 0, older.text
    assert f"was built from {b[:7]}, a newer push than this run's {a[:7]}" in older.stdout
    assert world.origin_ref("adopter/main") == tip and fake_github.pulls[1]["body"] == body
    assert len(_writes(fake_github)) == 1  # only B's create
    assert older.outputs["pull-request-url"] == newer.outputs["pull-request-url"]
    # a still newer push updates as usual (exit 0, not 2)
    before_c, c = world.push({"README.md": "c\n"}, "C")
    latest = world.run_bot(fake_github, before_c, c, verify="false")
    assert latest.rc == 0, latest.text
    assert _built_from(world) == c and len(fake_github.calls("PATCH", r"/pulls/1$")) == 1


def _hook_once(world, move_to: str):
    """A real pre-receive hook on origin: the next push to adopter/main finds that another run
    has just moved the branch to ``move_to`` (it moves it, then rejects the push, as a lost
    race does); later pushes go through."""
    hooks = world.origin / "hooks"
    script = hooks / "pre-receive"
    script.write_text(textwrap.dedent(f"""\
        #!/bin/sh
        [ -f "{hooks}/fired" ] && exit 0
        touch "{hooks}/fired"
        env -u GIT_QUARANTINE_PATH -u GIT_OBJECT_DIRECTORY -u GIT_ALTERNATE_OBJECT_DIRECTORIES \\
            git --git-dir="{world.origin}" update-ref refs/heads/adopter/main {move_to}
        echo "another run pushed first" >&2
        exit 1
        """))
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return hooks / "fired"


def _commit_on(world, parent: str, name: str) -> str:
    """A commit on ``parent`` (as a bot commit would be), stored in origin under no branch."""
    world.git("checkout", "-q", "--detach", parent)
    (world.dev / f"{name}.txt").write_text(name + "\n")
    world.git("add", f"{name}.txt")
    world.git("commit", "-q", "-m", name)
    sha = world.git("rev-parse", "HEAD")
    world.git("push", "-q", "origin", f"{sha}:refs/heads/tmp-{name}")
    world.git("push", "-q", "origin", f":refs/heads/tmp-{name}")
    world.git("checkout", "-q", "main")
    return sha


@needs_synth
def test_racing_runs_newer_rebuilds_on_top_and_older_gives_way(world, fake_github):
    world.push({"pyproject.toml": PYPROJECT}, "init")
    before_a, a = world.push({"models/bert.py": MODEL_V1}, "A")
    assert world.run_bot(fake_github, before_a, a, verify="false").rc == 0
    before_b, b = world.push({"models/t5_out.py": MODEL_V2}, "B")

    # B runs; right before its push an older run (on A) moves the branch: B rebuilds on top, pushes
    older_commit = _commit_on(world, a, "older-run")
    fired = _hook_once(world, older_commit)
    run = world.run_bot(fake_github, before_b, b, verify="false")
    assert run.rc == 0, run.text
    assert fired.exists() and "moved while this run worked" in run.stdout
    assert _built_from(world) == b
    patched = world.origin_file("adopter/main", "models/t5_out.py")
    assert "dropout_add_layer_norm(" in patched
    assert "dropout_add_layer_norm(" in world.origin_file("adopter/main", "models/bert.py")
    assert "models/t5_out.py:14" in fake_github.pulls[1]["body"]

    # C's run: right before its push a run for a newer push D wins the race: C gives way
    before_c, c = world.push({"README.md": "c\n"}, "C")
    _, d = world.push({"README.md": "d\n"}, "D")
    newer_commit = _commit_on(world, d, "newer-run")
    fired.unlink()
    _hook_once(world, newer_commit)
    patches = len(fake_github.calls("PATCH"))
    run = world.run_bot(fake_github, before_c, c, verify="false", checkout=world.checkout(c))
    assert run.rc == 0, run.text
    assert world.origin_ref("adopter/main") == newer_commit
    assert "a newer push than this run's" in run.stdout
    assert len(fake_github.calls("PATCH")) == patches and fired.exists()


@needs_synth
def test_a_deleted_base_branch_leaves_nothing_behind(world, fake_github):
    world.push({"pyproject.toml": PYPROJECT}, "init")
    before, after = world.push({"models/bert.py": MODEL_V1}, "add bert")
    # deleted before the run started
    world.git("config", "receive.denyDeleteCurrent", "ignore", cwd=world.origin)
    world.git("push", "-q", "origin", "--delete", "main")
    run = world.run_bot(fake_github, before, after, verify="false",
                        checkout=_checkout_detached(world, after))
    assert run.rc == 0, run.text
    assert "the branch main no longer exists on origin" in run.stdout
    assert world.origin_refs() == {} and _writes(fake_github) == []


def _checkout_detached(world, sha):
    path = world.tmp / f"detached-{sha[:7]}"
    world.git("clone", "-q", "--no-checkout", str(world.dev), str(path), cwd=world.tmp)
    world.git("remote", "set-url", "origin", str(world.origin), cwd=path)
    world.git("checkout", "-q", "-B", "main", sha, cwd=path)
    return path


@needs_synth
def test_base_deleted_while_the_bot_ran_gives_the_reason_and_removes_the_branch(world, fake_github):
    world.push({"pyproject.toml": PYPROJECT}, "init")
    before, after = world.push({"models/bert.py": MODEL_V1}, "add bert")
    fake_github.branches = lambda name: name != "main"  # GitHub no longer knows main when the PR is opened
    run = world.run_bot(fake_github, before, after, verify="false")
    assert run.rc == 2
    assert "the base branch does not exist on GitHub (was it deleted?)" in run.stderr
    assert "refs/heads/adopter/main" not in world.origin_refs()
    assert len(fake_github.calls("POST", r"/pulls$")) == 1 and fake_github.pulls == {}


@needs_synth
def test_a_body_over_githubs_limit_is_cut_to_fit_before_the_push(world, fake_github, tmp_path):
    world.push({"pyproject.toml": PYPROJECT}, "init")
    before, after = world.push({"models/bert.py": MODEL_V1}, "add bert")
    report = world.run_bot(fake_github, before, after, mode="report", verify="false")
    folder = tmp_path / "artifact"
    folder.mkdir()
    shutil.copy(report.outputs["patch-file"], folder)
    results = json.loads(open(report.outputs["results-file"]).read())
    proposed = results["rows"][0]
    # 1,900 left-out rows with long paths and reasons: about 2 MB of table
    results["rows"] += [{**proposed, "status": "failed", "path": f"models/{'deep/' * 80}m{i}.py",
                         "reason": "outputs differ " * 30, "line": 1 + i} for i in range(1900)]
    (folder / "adopter-results.json").write_text(json.dumps(results))
    event = world.event(None, after, name="workflow_run", extra={"workflow_run": {
        "head_sha": after, "head_branch": "main", "event": "push", "conclusion": "success"}})
    run = world.run_bot(fake_github, None, after, event=event, event_name="workflow_run", mode="apply",
                        patch_dir=str(folder))
    assert run.rc == 0, run.text
    (post,) = fake_github.calls("POST", r"/pulls$")
    body = post.body["body"]
    assert len(body) <= 65536 and body.startswith(MARKER)
    assert "### Left out (1900)" in body and "more, not shown to keep this under GitHub's size limit" in body
    assert "models/bert.py:14" in body  # the patch itself is always listed
    assert "### Not wanted?" in body


@needs_synth
def test_secondary_rate_limits_are_waited_out(world, fake_github):
    world.push({"pyproject.toml": PYPROJECT}, "init")
    before, after = world.push({"models/bert.py": MODEL_V1}, "add bert")
    limited = {"Retry-After": "1"}
    message = "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
    fake_github.fail("POST", r"/pulls$", 403, times=1, message=message, headers=limited)
    run = world.run_bot(fake_github, before, after, verify="false")
    assert run.rc == 0, run.text
    first, second = fake_github.calls("POST", r"/pulls$")
    assert second.at - first.at >= 1.0 and len(fake_github.pulls) == 1
    # an update (PATCH) limited with 429 + Retry-After is repeated by PyGithub's retry after the wait
    before2, after2 = world.push({"models/t5_out.py": MODEL_V2}, "more")
    fake_github.fail("PATCH", r"/pulls/1$", 429, times=1, message=message, headers=limited)
    run = world.run_bot(fake_github, before2, after2, verify="false")
    assert run.rc == 0, run.text
    first, second = fake_github.calls("PATCH", r"/pulls/1$")
    assert second.at - first.at >= 1.0 and "models/t5_out.py:14" in fake_github.pulls[1]["body"]


@needs_synth
def test_a_rate_limit_wait_beyond_reason_ends_the_run_clearly(world, fake_github):
    world.push({"pyproject.toml": PYPROJECT}, "init")
    before, after = world.push({"models/bert.py": MODEL_V1}, "add bert")
    fake_github.fail("POST", r"/pulls$", 403, times=5, message="You have exceeded a secondary rate limit",
                     headers={"Retry-After": "100000"})
    run = world.run_bot(fake_github, before, after, verify="false")
    assert run.rc == 2 and "asks to wait 100000 s" in run.stderr
    assert "refs/heads/adopter/main" not in world.origin_refs()  # no branch left without its PR
