"""``adopter bot`` end to end: real git (bare origin, pushes), real HTTP to a fake GitHub API.

verify is off in these runs (the verification machinery has its own tests and a run with it
on is in test_bot_verify.py); everything else is the real pipeline.
"""

from __future__ import annotations

import json

from conftest import MODEL_V1, MODEL_V2, PYPROJECT, TOKEN, needs_synth

MARKER = "<!-- adopter-bot -->"


def _writes(fake):
    return fake.calls("POST") + fake.calls("PATCH") + fake.calls("PUT") + fake.calls("DELETE")


@needs_synth
def test_push_opens_one_pull_request_then_updates_it(world, fake_github):
    world.push({"pyproject.toml": PYPROJECT, "README.md": "models\n"}, "init")
    before, after = world.push({"models/bert.py": MODEL_V1}, "add bert")
    run = world.run_bot(fake_github, before, after, verify="false")
    assert run.rc == 0, run.text

    # exactly one pull request, created once, from adopter/main into main, with the table
    posts = fake_github.calls("POST", r"/pulls$")
    assert len(posts) == 1
    created = posts[0].body
    assert created["head"] == "adopter/main" and created["base"] == "main"
    assert created["body"].startswith(MARKER)
    assert "| Rule | Where | Kernel (package) | Verified | Forward | Forward+backward | Peak memory | Hardware |" \
        in created["body"]
    assert "ADP005" in created["body"] and "models/bert.py:14" in created["body"]
    assert "adopter_kernels.dropout_add_layer_norm" in created["body"]
    assert "# adopter: ignore[ADP005]" in created["body"] and "[tool.adopter]" in created["body"]
    assert "- `adopter-kernels>=0.1.0`, added to `pyproject.toml`" in created["body"]
    assert "`adopter-kernels` is the small runtime package" in created["body"]  # the PR says what it is
    assert fake_github.calls("GET", r"/pulls$")[0].query["head"] == "octo:adopter/main"
    assert all(r.authorization.endswith(TOKEN) for r in fake_github.requests)

    # the bot branch holds one commit on top of the push, with the patch; main is untouched
    refs = world.origin_refs()
    assert refs["refs/heads/main"] == after
    assert "refs/heads/adopter/main" in refs
    patched = world.origin_file("adopter/main", "models/bert.py")
    assert "dropout_add_layer_norm(" in patched
    world.git("fetch", "-q", "origin")
    assert world.git("rev-parse", "origin/adopter/main^") == after
    assert world.git("diff", "--name-only", "origin/main", "origin/adopter/main").splitlines() == \
        ["models/bert.py", "pyproject.toml"]
    assert 'dependencies = ["torch", "adopter-kernels>=0.1.0"]' in world.origin_file("adopter/main", "pyproject.toml")
    # the user's checkout was not touched
    assert world.git("status", "--porcelain", cwd=run.checkout) == ""
    assert world.git("rev-parse", "HEAD", cwd=run.checkout) == after

    # outputs, summary, annotations, SARIF
    assert run.outputs["findings"] == "1"
    assert run.outputs["pull-request-url"] == f"{fake_github.host}/octo/models/pull/1"
    assert "| Rule | Where |" in run.summary and "ADP005" in run.summary
    assert "::notice file=models/bert.py,line=14," in run.stdout
    sarif = json.loads(open(run.outputs["sarif-file"]).read())
    assert sarif["runs"][0]["results"][0]["ruleId"] == "ADP005"

    # a second push: same pull request updated (PATCH), no second POST, branch moved on
    before2, after2 = world.push({"models/t5_out.py": MODEL_V2}, "add output block")
    run2 = world.run_bot(fake_github, before2, after2, verify="false")
    assert run2.rc == 0, run2.text
    assert len(fake_github.calls("POST", r"/pulls$")) == 1
    patches = fake_github.calls("PATCH", r"/pulls/1$")
    assert len(patches) == 1
    body = patches[0].body["body"]
    assert body.startswith(MARKER)
    # the update carries the earlier file's patch and the new one
    assert "models/bert.py:14" in body and "models/t5_out.py:14" in body
    assert len(fake_github.pulls) == 1 and fake_github.pulls[1]["state"] == "open"
    assert run2.outputs["pull-request-url"] == run.outputs["pull-request-url"]
    world.git("fetch", "-q", "origin")
    assert world.git("rev-parse", "origin/adopter/main^") == after2
    changed = set(world.git("diff", "--name-only", "origin/main", "origin/adopter/main").splitlines())
    assert {"models/bert.py", "models/t5_out.py"} <= changed
    # only the new push's lines are annotated
    assert "file=models/t5_out.py" in run2.stdout and "file=models/bert.py" not in run2.stdout


@needs_synth
def test_report_mode_changes_nothing_remote(world, fake_github):
    before, after = world.push({"bert.py": MODEL_V1}, "add bert")
    refs = world.origin_refs()
    run = world.run_bot(fake_github, before, after, mode="report", verify="false")
    assert run.rc == 0, run.text
    assert _writes(fake_github) == []
    assert world.origin_refs() == refs
    assert run.outputs["findings"] == "1" and run.outputs["pull-request-url"] == ""
    assert "Report mode" in run.summary and "| Rule | Where |" in run.summary
    # the patch is left as a file for an artifact (the secure split)
    patch = open(run.outputs["patch-file"]).read()
    assert "+from adopter_kernels import dropout_add_layer_norm" in patch
    results = json.loads(open(run.outputs["results-file"]).read())
    assert results["base_sha"] == after and results["rows"][0]["status"] == "proposed"


def test_report_mode_without_token_or_findings(world, fake_github):
    before, after = world.push({"util.py": "def f(x):\n    return x + 1\n"}, "util")
    run = world.run_bot(fake_github, before, after, mode="report", token="")
    assert run.rc == 0, run.text
    assert fake_github.requests == []
    assert run.outputs["findings"] == "0" and run.outputs["patch-file"] == ""


def test_server_error_is_retried(world, fake_github):
    fake_github.fail("GET", r"^/repos/octo/models$", 502)
    before, after = world.push({"util.py": "x = 1\n"}, "util")
    run = world.run_bot(fake_github, before, after, verify="false")
    assert run.rc == 0, run.text
    repo_gets = fake_github.calls("GET", r"^/repos/octo/models$")
    assert len(repo_gets) == 2  # the 502, then the retry that got 200
    assert fake_github.calls("GET", r"/pulls$"), "the run went on after the retry"


def test_bad_token_exits_2_with_a_clear_message_and_no_token(world, fake_github):
    before, after = world.push({"bert.py": MODEL_V1}, "add bert")
    wrong = "ghs_WrongToken9876543210fedcba"
    refs = world.origin_refs()
    run = world.run_bot(fake_github, before, after, token=wrong, verify="false", subprocess_run=True)
    assert run.rc == 2
    assert "401" in run.stderr and "token" in run.stderr.lower()
    assert "Traceback" not in run.text
    # the only place the token appears is the mask command, which the runner swallows
    leaks = [line for line in run.text.splitlines() if wrong in line]
    assert leaks == [f"::add-mask::{wrong}"]
    assert wrong not in run.summary and wrong not in json.dumps(run.outputs)
    assert _writes(fake_github) == [] and world.origin_refs() == refs


def test_pushes_to_the_bot_branch_or_tags_do_nothing_remote(world, fake_github):
    world.push({"bert.py": MODEL_V1}, "add bert")
    before, after = world.push({"x.py": MODEL_V2}, "on bot branch", branch="adopter/main")
    run = world.run_bot(fake_github, before, after, ref="refs/heads/adopter/main")
    assert run.rc == 0 and "nothing to do" in run.stdout
    assert fake_github.requests == []
    before, after = world.push({"util.py": "x = 1\n"}, "util")
    run = world.run_bot(fake_github, None, after, ref="refs/tags/v1")
    assert run.rc == 0, run.text
    assert _writes(fake_github) == []


@needs_synth
def test_a_foreign_pull_request_on_the_bot_branch_is_left_alone(world, fake_github):
    fake_github.add_pull("adopter/main", "main", "a human's pull request")
    before, after = world.push({"bert.py": MODEL_V1}, "add bert")
    refs = world.origin_refs()
    run = world.run_bot(fake_github, before, after, verify="false")
    assert run.rc == 2
    assert "not opened by the Adopter bot" in run.stderr
    assert _writes(fake_github) == [] and world.origin_refs() == refs


@needs_synth
def test_first_push_and_force_push_fall_back_to_the_head_commit(world, fake_github):
    world.push({"a.py": MODEL_V1}, "first")
    before, after = world.push({"b.py": MODEL_V2}, "second")
    # a force-push whose 'before' this checkout never saw: only the head commit's files count
    event = world.event("1234567" * 5 + "12345", after, forced=True)
    run = world.run_bot(fake_github, None, after, event=event, mode="report", verify="false")
    assert run.rc == 0, run.text
    assert "head commit" in run.summary
    assert run.outputs["findings"] == "1"
    assert "file=b.py" in run.stdout and "file=a.py" not in run.stdout


@needs_synth
def test_pushes_to_other_branches_only_report(world, fake_github):
    world.push({"README.md": "x\n"}, "init")
    before, after = world.push({"bert.py": MODEL_V1}, "feature", branch="feature")
    run = world.run_bot(fake_github, before, after, ref="refs/heads/feature", verify="false",
                        **{"base_branch": "main"})
    assert run.rc == 0, run.text
    assert "reporting only" in run.stdout
    assert _writes(fake_github) == []
    assert "refs/heads/adopter/main" not in world.origin_refs()


@needs_synth
def test_a_create_that_failed_after_all_is_not_repeated_into_a_duplicate(world, fake_github):
    # the server makes the pull request, then answers 502: the bot must find it, not post again
    fake_github.fail("POST", r"/pulls$", 502, after_handling=True)
    before, after = world.push({"bert.py": MODEL_V1}, "add bert")
    run = world.run_bot(fake_github, before, after, verify="false")
    assert run.rc == 0, run.text
    assert len(fake_github.calls("POST", r"/pulls$")) == 1 and len(fake_github.pulls) == 1
    assert len(fake_github.calls("PATCH", r"/pulls/1$")) == 1
    assert run.outputs["pull-request-url"].endswith("/pull/1")


def test_missing_permissions_and_rate_limits_are_explained():
    from github import GithubException
    from github.GithubException import RateLimitExceededException

    from adopter.bot.pulls import explain

    assert "contents: write" in explain(GithubException(403, {"message": "Resource not accessible"}), "o/r")
    assert "404" in explain(GithubException(404, {"message": "Not Found"}), "o/r")
    assert "rate limit" in explain(RateLimitExceededException(403, {"message": "API rate limit"}), "o/r")
    assert "re-run" in explain(GithubException(503, {"message": "busy"}), "o/r")
