"""The secure split: an unprivileged ``report`` run leaves the patch and its results as files; a
privileged ``apply`` run (a ``workflow_run`` job) checks them as data and opens the PR."""

from __future__ import annotations

import json
import shutil

from conftest import MODEL_V1, needs_synth

MARKER = "<!-- adopter-bot -->"


def _workflow_run_event(world, head_sha: str, event: str = "push"):
    return world.event(None, head_sha, ref="refs/heads/main", name="workflow_run", extra={
        "action": "completed",
        "workflow_run": {"head_sha": head_sha, "head_branch": "main", "event": event, "conclusion": "success"},
    })


def _artifact(world, fake_github, tmp_path):
    before, after = world.push({"models/bert.py": MODEL_V1}, "add bert")
    report = world.run_bot(fake_github, before, after, mode="report", verify="false")
    assert report.rc == 0, report.text
    artifact = tmp_path / "artifact"
    artifact.mkdir()
    shutil.copy(report.outputs["patch-file"], artifact)
    shutil.copy(report.outputs["results-file"], artifact)
    assert fake_github.requests == []  # the unprivileged half never talks to GitHub
    return after, artifact


@needs_synth
def test_apply_opens_the_pull_request_from_the_artifact(world, fake_github, tmp_path):
    after, artifact = _artifact(world, fake_github, tmp_path)
    event = _workflow_run_event(world, after)
    run = world.run_bot(fake_github, None, after, event=event, event_name="workflow_run", mode="apply",
                        patch_dir=str(artifact))
    assert run.rc == 0, run.text
    posts = fake_github.calls("POST", r"/pulls$")
    assert len(posts) == 1 and posts[0].body["body"].startswith(MARKER)
    assert "models/bert.py:14" in posts[0].body["body"]
    assert "dropout_add_layer_norm(" in world.origin_file("adopter/main", "models/bert.py")
    assert world.origin_ref("main") == after


@needs_synth
def test_apply_refuses_a_patch_that_edits_workflows(world, fake_github, tmp_path):
    after, artifact = _artifact(world, fake_github, tmp_path)
    evil = ("diff --git a/.github/workflows/x.yml b/.github/workflows/x.yml\nnew file mode 100644\n"
            "--- /dev/null\n+++ b/.github/workflows/x.yml\n@@ -0,0 +1 @@\n+on: push\n")
    (artifact / "adopter.patch").write_text(evil)
    refs = world.origin_refs()
    run = world.run_bot(fake_github, None, after, event=_workflow_run_event(world, after),
                        event_name="workflow_run", mode="apply", patch_dir=str(artifact))
    assert run.rc == 2 and ".github/workflows/x.yml" in run.stderr
    assert world.origin_refs() == refs and fake_github.calls("POST") == []


@needs_synth
def test_apply_refuses_an_artifact_for_another_commit_or_a_pull_request_run(world, fake_github, tmp_path):
    after, artifact = _artifact(world, fake_github, tmp_path)
    _, other = world.push({"README.md": "x\n"}, "later")
    run = world.run_bot(fake_github, None, other, event=_workflow_run_event(world, other),
                        event_name="workflow_run", mode="apply", patch_dir=str(artifact))
    assert run.rc == 2 and "refusing" in run.stderr
    run = world.run_bot(fake_github, None, after, event=_workflow_run_event(world, after, event="pull_request"),
                        event_name="workflow_run", mode="apply", patch_dir=str(artifact))
    assert run.rc == 2 and "push runs only" in run.stderr
    results = json.loads((artifact / "adopter-results.json").read_text())
    results["rows"][0]["line"] = "14; rm -rf /"
    (artifact / "adopter-results.json").write_text(json.dumps(results))
    run = world.run_bot(fake_github, None, after, event=_workflow_run_event(world, after),
                        event_name="workflow_run", mode="apply", patch_dir=str(artifact))
    assert run.rc == 2 and "not valid" in run.stderr
    assert fake_github.calls("POST") == [] and "refs/heads/adopter/main" not in world.origin_refs()
