"""The secure split: an unprivileged ``report`` run leaves the patch and its results as files; a
privileged ``apply`` run (a ``workflow_run`` job) never applies that patch: it fixes the pushed
commit again itself and pushes that, only when it is what the artifact claims.

The crafted artifacts are real git patches (made with git from real changes in the developer's
clone) that ``git apply`` would have taken: a rename into ``.github/workflows``, a new workflow
behind ``x/``/``y/`` prefixes, a symlink to ``/etc/passwd``, an executable bit, a deletion, and a
1.5 GB file.  None of them may reach a branch, and the untouched artifact still opens the PR.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess

import pytest

from conftest import MODEL_V1, PYPROJECT, needs_synth

MARKER = "<!-- adopter-bot -->"


def _workflow_run_event(world, head_sha: str, event: str = "push"):
    return world.event(None, head_sha, ref="refs/heads/main", name="workflow_run", extra={
        "action": "completed",
        "workflow_run": {"head_sha": head_sha, "head_branch": "main", "event": event, "conclusion": "success"},
    })


def _artifact(world, fake_github, tmp_path, files=None):
    world.push({"pyproject.toml": PYPROJECT}, "init")
    before, after = world.push(files or {"models/bert.py": MODEL_V1}, "add bert")
    report = world.run_bot(fake_github, before, after, mode="report", verify="false")
    assert report.rc == 0, report.text
    artifact = tmp_path / "artifact"
    artifact.mkdir()
    shutil.copy(report.outputs["patch-file"], artifact)
    shutil.copy(report.outputs["results-file"], artifact)
    assert fake_github.requests == []  # the unprivileged half never talks to GitHub
    return after, artifact


def _apply(world, fake_github, after, folder):
    return world.run_bot(fake_github, None, after, event=_workflow_run_event(world, after),
                         event_name="workflow_run", mode="apply", patch_dir=str(folder))


def _copy(artifact, tmp_path, name):
    folder = tmp_path / name
    shutil.copytree(artifact, folder)
    return folder


def _tree(world, ref):
    """path -> (mode, content) of every file on ``ref`` in origin."""
    out = subprocess.run(["git", "--git-dir", str(world.origin), "ls-tree", "-r", "-z", ref], env=world.env,
                         capture_output=True, check=True).stdout
    files = {}
    for entry in out.split(b"\0"):
        if entry:
            meta, _, name = entry.partition(b"\t")
            mode, _, sha = meta.decode().split()
            files[name.decode()] = (mode, world.git("cat-file", "-p", sha, cwd=world.origin))
    return files


@needs_synth
def test_apply_opens_the_pull_request_from_the_artifact(world, fake_github, tmp_path):
    after, artifact = _artifact(world, fake_github, tmp_path)
    results = json.loads((artifact / "adopter-results.json").read_text())
    assert results["version"] == 2 and set(results["files"]) == {"models/bert.py", "pyproject.toml"}
    assert "ADP005" in results["rules"] and len(results["patch_sha256"]) == 64
    run = _apply(world, fake_github, after, artifact)
    assert run.rc == 0, run.text
    assert "the same files and contents as the artifact claims" in run.stdout
    posts = fake_github.calls("POST", r"/pulls$")
    assert len(posts) == 1 and posts[0].body["body"].startswith(MARKER)
    assert "models/bert.py:14" in posts[0].body["body"]
    assert "dropout_add_layer_norm(" in world.origin_file("adopter/main", "models/bert.py")
    assert 'dependencies = ["torch", "adopter-kernels>=0.1.0"]' in world.origin_file("adopter/main", "pyproject.toml")
    assert world.origin_ref("main") == after
    # exactly the report run's patch landed
    world.git("fetch", "-q", "origin")
    landed = world.git("diff", "--no-color", f"{after}", "origin/adopter/main")
    assert landed.strip() == (artifact / "adopter.patch").read_text().strip()


def _crafted_patches(world) -> dict[str, bytes]:
    """Real patches, made by git from hostile changes in the developer's clone, then undone."""
    dev = world.dev

    def diff(*extra: str) -> bytes:
        world.git("add", "-A")
        out = subprocess.run(["git", "diff", "--cached", "--binary", "-M", *extra], cwd=dev, env=world.env,
                             capture_output=True, check=True).stdout
        world.git("reset", "-q", "--hard")
        world.git("clean", "-qfd")
        return out

    patches = {}
    (dev / ".github" / "workflows").mkdir(parents=True)
    shutil.move(dev / "model.py", dev / ".github" / "workflows" / "evil.yml")
    with open(dev / ".github" / "workflows" / "evil.yml", "a") as handle:
        handle.write("# on: push\n")
    patches["rename into .github/workflows"] = diff()
    (dev / ".github" / "workflows").mkdir(parents=True)
    (dev / ".github" / "workflows" / "evil.yml").write_text("on: push\njobs: {}\n")
    patches["x/ y/ prefixes"] = diff("--src-prefix=x/", "--dst-prefix=y/")
    os.symlink("../../../../../etc/passwd", dev / "link.py")
    patches["symlink to /etc/passwd"] = diff()
    (dev / "model.py").chmod(0o755)
    patches["executable mode"] = diff()
    (dev / "model.py").unlink()
    patches["deletion via +++ /dev/null"] = diff()
    assert b"rename to .github/workflows/evil.yml" in patches["rename into .github/workflows"]
    assert b"+++ y/.github/workflows/evil.yml" in patches["x/ y/ prefixes"]
    assert b"new file mode 120000" in patches["symlink to /etc/passwd"]
    assert b"new mode 100755" in patches["executable mode"]
    assert b"+++ /dev/null" in patches["deletion via +++ /dev/null"]
    return patches


@needs_synth
def test_crafted_artifacts_never_reach_a_branch(world, fake_github, tmp_path):
    after, artifact = _artifact(world, fake_github, tmp_path, {"model.py": MODEL_V1})
    crafted = _crafted_patches(world)
    # each of them is a patch git itself would apply to the pushed commit
    probe = world.checkout(after)
    for name, patch in crafted.items():
        done = subprocess.run(["git", "apply", "--check", "-"], input=patch, cwd=probe, env=world.env,
                              capture_output=True)
        assert done.returncode == 0, (name, done.stderr)
    refs = world.origin_refs()

    # 1. the patch swapped: refused (it is not the patch the results describe), nothing pushed
    for index, (name, patch) in enumerate(crafted.items()):
        folder = _copy(artifact, tmp_path, f"swapped-{index}")
        (folder / "adopter.patch").write_bytes(patch)
        run = _apply(world, fake_github, after, folder)
        assert run.rc == 2, (name, run.text)
        assert "not the patch its results describe" in run.stderr, name
        assert world.origin_refs() == refs and fake_github.calls("POST") == [], name

    # 2. a 1.5 GB patch (sparse: no disk used) is refused by its size before a byte is read
    folder = _copy(artifact, tmp_path, "oversize")
    with open(folder / "adopter.patch", "r+b") as handle:
        handle.truncate(1_500_000_000)
    run = _apply(world, fake_github, after, folder)
    assert run.rc == 2 and "over the limit" in run.stderr, run.text
    assert world.origin_refs() == refs

    # 3. the patch swapped and the results' patch digest forged to match: the patch is still never
    #    applied; what lands is the commit fixed again here, identical to the untouched artifact's
    landed = []
    for index, (name, patch) in enumerate(crafted.items()):
        folder = _copy(artifact, tmp_path, f"forged-{index}")
        (folder / "adopter.patch").write_bytes(patch)
        results = json.loads((folder / "adopter-results.json").read_text())
        results["patch_sha256"] = hashlib.sha256(patch).hexdigest()
        (folder / "adopter-results.json").write_text(json.dumps(results))
        run = _apply(world, fake_github, after, folder)
        assert run.rc == 0, (name, run.text)
        tree = _tree(world, "refs/heads/adopter/main")
        assert ".github/workflows/evil.yml" not in tree and "link.py" not in tree, name
        assert tree["model.py"][0] == "100644" and "dropout_add_layer_norm(" in tree["model.py"][1], name
        landed.append(tree)
    assert all(tree == landed[0] for tree in landed)
    assert set(landed[0]) == {"model.py", "pyproject.toml"}

    # 4. the untouched artifact still opens the pull request with that same content
    run = _apply(world, fake_github, after, artifact)
    assert run.rc == 0, run.text
    assert _tree(world, "refs/heads/adopter/main") == landed[0]
    assert len(fake_github.calls("POST", r"/pulls$")) == 1 and len(fake_github.pulls) == 1


@needs_synth
def test_claims_that_do_not_match_the_fix_are_refused(world, fake_github, tmp_path):
    os.symlink("model.py", world.dev / "link.py")  # committed with the first push
    world.git("add", "link.py")
    after, artifact = _artifact(world, fake_github, tmp_path, {"model.py": MODEL_V1})
    assert _tree(world, after)["link.py"][0] == "120000"
    refs = world.origin_refs()
    results = json.loads((artifact / "adopter-results.json").read_text())
    proposed = next(r for r in results["rows"] if r["status"] == "proposed")

    def forged(name, change):
        folder = _copy(artifact, tmp_path, name)
        data = json.loads(json.dumps(results))
        change(data)
        (folder / "adopter-results.json").write_text(json.dumps(data))
        return _apply(world, fake_github, after, folder)

    cases = {
        # another content claimed for the patched file
        "content": (lambda d: d["files"].update({"model.py": "0" * 64}), "comes out differently"),
        # one more file claimed (a workflow), as if the patch also wrote it
        "extra file": (lambda d: d["files"].update({".github/workflows/evil.yml": "0" * 64}),
                       "comes out differently"),
        # a patch claimed for a file that is not Python
        "not python": (lambda d: d["rows"].append({**proposed, "path": ".github/workflows/evil.yml"}),
                       "not a Python file"),
        # a patch claimed for a line where the fix makes none
        "phantom line": (lambda d: d["rows"].append({**proposed, "line": 3}), "comes out differently"),
        # an older results format, without the claims
        "version 1": (lambda d: d.update({"version": 1}), "version 2"),
        # a patch claimed for a symlink of the pushed commit, or for a file it does not have
        "symlink": (lambda d: d["rows"].append({**proposed, "path": "link.py"}), "not a regular file"),
        "missing file": (lambda d: d["rows"].append({**proposed, "path": "nowhere.py"}), "not a regular file"),
    }
    for name, (change, message) in cases.items():
        run = forged(name.replace(" ", "-"), change)
        assert run.rc == 2 and message in run.stderr, (name, run.text)
        assert world.origin_refs() == refs and fake_github.calls("POST") == [], name


@needs_synth
def test_apply_refuses_an_artifact_for_another_commit_or_a_pull_request_run(world, fake_github, tmp_path):
    after, artifact = _artifact(world, fake_github, tmp_path)
    _, other = world.push({"README.md": "x\n"}, "later")
    run = _apply(world, fake_github, other, artifact)
    assert run.rc == 2 and "refusing" in run.stderr
    run = world.run_bot(fake_github, None, after, event=_workflow_run_event(world, after, event="pull_request"),
                        event_name="workflow_run", mode="apply", patch_dir=str(artifact))
    assert run.rc == 2 and "push runs only" in run.stderr
    results = json.loads((artifact / "adopter-results.json").read_text())
    results["rows"][0]["line"] = "14; rm -rf /"
    (artifact / "adopter-results.json").write_text(json.dumps(results))
    run = _apply(world, fake_github, after, artifact)
    assert run.rc == 2 and "not valid" in run.stderr
    assert fake_github.calls("POST") == [] and "refs/heads/adopter/main" not in world.origin_refs()


@needs_synth
@pytest.mark.parametrize("kind", ["fifo", "symlink"])
def test_artifact_files_that_are_not_regular_files_are_refused(world, fake_github, tmp_path, kind):
    after, artifact = _artifact(world, fake_github, tmp_path)
    target = artifact / "adopter-results.json"
    saved = tmp_path / "results.json"
    shutil.move(target, saved)
    if kind == "fifo":
        os.mkfifo(target)  # reading it would block forever
    else:
        os.symlink(saved, target)
    run = _apply(world, fake_github, after, artifact)
    assert run.rc == 2 and "refusing" in run.stderr, run.text
    assert "refs/heads/adopter/main" not in world.origin_refs()
