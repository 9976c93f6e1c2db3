"""The bot's trust boundary, end to end (real git, the GitHub stand-in over real HTTP, the bot as a
real subprocess with torch where verification would run):

- on ``pull_request_target`` and ``workflow_run`` (code the workflow's author does not control,
  a write token around) nothing from the repository is imported or run;
- what reaches the pull request, the summary and the result files is redacted (the token and
  every secret-looking runner variable, even inside an exception message that quotes the
  environment) and escaped (file names with headings, mentions and raw HTML stay text).
"""

from __future__ import annotations

import json
import re

import pytest
from markdown_it import MarkdownIt

from conftest import MODEL_V1, MODEL_V2, PYPROJECT, TOKEN, needs_synth, verify_available

needs_verify = pytest.mark.skipif(verify_available() is not None, reason=verify_available() or "")

# Importing this module leaves a file next to it: proof that the bot ran the repository's code.
TRIPWIRE = "import pathlib\npathlib.Path(__file__).with_name('IMPORTED').write_text('imported')\n" + MODEL_V1
API_KEY = "sk_live_0123456789abcdefABCDEF"


def _pull_request_event(world, base_sha: str, head_sha: str, name: str):
    return world.event(None, head_sha, ref="refs/heads/main", name=name, extra={
        "action": "opened", "number": 7,
        "pull_request": {"number": 7, "base": {"ref": "main", "sha": base_sha},
                         "head": {"ref": "feature", "sha": head_sha}},
    })


@needs_synth
@pytest.mark.parametrize("event_name", ["pull_request_target", "workflow_run"])
def test_untrusted_events_never_run_the_repositorys_code(world, fake_github, event_name):
    world.push({"pyproject.toml": PYPROJECT}, "init")
    base_sha = world.origin_ref("main")
    _, head = world.push({"models/evil.py": TRIPWIRE}, "a pull request from a fork", branch="feature")
    event = (_pull_request_event(world, base_sha, head, event_name) if event_name == "pull_request_target"
             else world.event(None, head, name=event_name, extra={"workflow_run": {
                 "head_sha": head, "head_branch": "feature", "event": "pull_request"}}))
    # verify and benchmark are on (the default); the token can write
    run = world.run_bot(fake_github, None, head, event=event, event_name=event_name, subprocess_run=True)
    assert run.rc == 0, run.text
    assert not (run.checkout / "models" / "IMPORTED").exists()
    assert "nothing from the repository is imported or run" in run.stdout
    rows = json.loads(open(run.outputs["results-file"]).read())["rows"]
    assert [(r["rule"], r["verified"]) for r in rows] == [("ADP005", "off")]
    assert fake_github.calls("POST") == fake_github.calls("PATCH") == []
    assert "refs/heads/adopter/main" not in world.origin_refs()


@needs_synth
@needs_verify
def test_a_push_does_run_it_so_the_tripwire_works(world, fake_github):
    world.push({"pyproject.toml": PYPROJECT}, "init")
    before, after = world.push({"models/evil.py": TRIPWIRE}, "a push by a maintainer")
    run = world.run_bot(fake_github, before, after, mode="report", benchmark="false", subprocess_run=True)
    assert run.rc == 0, run.text
    assert (run.checkout / "models" / "IMPORTED").read_text() == "imported"


LEAKY = ('import os\nraise RuntimeError("environment: INPUT_GITHUB-TOKEN=" + os.environ["INPUT_GITHUB-TOKEN"]'
         ' + " INPUT_API-KEY=" + os.environ["INPUT_API-KEY"] + " again " + os.environ["INPUT_API-KEY"])\n'
         + MODEL_V2)
HOSTILE = "models/# Heading @octo-org/team <img src=x onerror=alert(1)> <!-- x.py"


def _visible_html(markdown: str) -> str:
    """The body as GitHub's Markdown renders it (CommonMark + tables), without code spans."""
    html = MarkdownIt("commonmark").enable("table").render(markdown)
    return re.sub(r"<code>.*?</code>", "", html, flags=re.S)


@needs_synth
@needs_verify
def test_the_pull_request_is_redacted_and_escaped(world, fake_github):
    world.push({"pyproject.toml": PYPROJECT}, "init")
    before, after = world.push({"models/bert.py": MODEL_V1, "models/leaky.py": LEAKY, HOSTILE: MODEL_V1},
                               "hostile files")
    run = world.run_bot(fake_github, before, after, benchmark="false", subprocess_run=True, api_key=API_KEY)
    assert run.rc == 0, run.text
    (post,) = fake_github.calls("POST", r"/pulls$")
    body = post.body["body"]
    results = open(run.outputs["results-file"]).read()
    sarif = open(run.outputs["sarif-file"]).read()
    # the verification reason quoted the environment; nothing of it survives anywhere
    log = run.stdout.replace(f"::add-mask::{TOKEN}\n", "", 1)  # the runner swallows that line
    for text in (body, post.body["title"], run.summary, log, run.stderr, results, sarif):
        # not even escaped for Markdown (ghs\_...): the cores of both secrets are nowhere
        assert TOKEN[4:] not in text and API_KEY[8:] not in text
    leaky = next(r for r in json.loads(results)["rows"] if r["path"] == "models/leaky.py")
    assert leaky["status"] == "unverified" and "INPUT_GITHUB-TOKEN=***" in leaky["reason"]
    html = _visible_html(body)
    assert "INPUT_GITHUB-TOKEN=***" in html and "INPUT_API-KEY=***" in html
    # the hostile file name is listed, as text
    assert any(r["path"] == HOSTILE for r in json.loads(results)["rows"])
    assert "<img" not in html and "<!--" not in html.replace("<!-- adopter-bot -->", "")
    assert "@octo-org" not in html and not re.search(r"<h[12]>", html)
    assert set(re.findall(r"<h3>(.*?)</h3>", html)) <= {
        "Patches in this pull request (2)", "Patches in this pull request (3)", "Patches in this pull request (1)",
        "Why these rules help", "Left out (1)", "Left out (2)", "New dependencies", "Not wanted?"}
    # the link to the file quotes its name instead of breaking out of the URL
    assert "%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E" in body

