"""``adopter bot``: the door.  Reads the run, drives the rooms, turns errors into exit codes.

Modes (input ``mode``):

``report``
    Annotations on the changed lines, the job summary, a SARIF file, and the patch plus its
    results as files (outputs ``patch-file``, ``results-file``) for an artifact.  Nothing is
    pushed and no pull request is touched.
``pull-request`` (the default)
    As ``report``, then the kept patches are committed on ``adopter/<base-branch>``, pushed to
    ``origin`` and proposed in one pull request, opened or updated in place.
``apply``
    The privileged half of the secure split: takes a patch and its results produced by an
    unprivileged ``report`` run (input ``patch-dir``), checks them as data, and commits,
    pushes and opens the pull request.  It never imports or runs the analysed code.

Exit codes: 0 done (findings or not), 2 a problem to fix (token, permissions, git, input).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import traceback
from dataclasses import dataclass
from pathlib import Path

from adopter import __version__
from adopter.report import github as github_annotations
from adopter.report import sarif

from . import render
from .actions import BotError, Console, Context, append_summary, load_context, load_inputs, set_outputs
from .changes import Changes, changed_files, is_python
from .gitops import Git, GitError, RemoteBranch
from .patches import Options, Outcome, Row, build

PATCH_NAME = "adopter.patch"
RESULTS_NAME = "adopter-results.json"
SARIF_NAME = "adopter.sarif"
MAX_PATCH_BYTES = 2 * 1024 * 1024
MAX_ROWS = 2000
ALLOWED_DATA_FILES = re.compile(r"(^|/)(pyproject\.toml|setup\.cfg|requirements[\w.-]*\.(txt|in))$")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="adopter bot",
        description="Run as a GitHub Action: report, or open one pull request with verified kernel patches. "
                    "Settings come from the action's inputs (INPUT_*) and the Actions environment; "
                    "these options override them.")
    parser.add_argument("--mode", choices=("report", "pull-request", "apply"))
    parser.add_argument("--select", help="comma-separated rule ids or names")
    parser.add_argument("--base-branch", dest="base_branch")
    parser.add_argument("--no-verify", dest="verify", action="store_const", const=False, default=None)
    parser.add_argument("--no-benchmark", dest="benchmark", action="store_const", const=False, default=None)
    parser.add_argument("--patch-dir", dest="patch_dir", help="mode apply: folder with the patch and results")
    parser.add_argument("--output-dir", dest="out_dir", help="where to write the SARIF file, patch and results")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    console = Console()
    env = dict(os.environ)
    in_actions = env.get("GITHUB_ACTIONS", "").lower() == "true"
    try:
        inputs = load_inputs(env, vars(args))
        console.add_secret(inputs.token, in_actions)
        context = load_context(env, inputs)
        return Bot(context, console).run()
    except BotError as exc:
        console.error(str(exc), in_actions)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a bug of ours: say so plainly, without the token
        console.error(f"internal error: {type(exc).__name__}: {exc}", in_actions)
        sys.stderr.write(console.redact(traceback.format_exc()))
        return 2


@dataclass
class Published:
    url: str
    created: bool
    pushed: bool


class Bot:
    def __init__(self, context: Context, console: Console):
        self.ctx = context
        self.inputs = context.inputs
        self.console = console
        self.git = Git(context.workspace, context.inputs.token, console.redact)

    # ------------------------------------------------------------------ the run

    def run(self) -> int:
        self.root = self.git.toplevel()
        if self.inputs.mode == "apply":
            return self.apply()
        ctx = self.ctx
        before, after, forced = self._range()
        branch = self._event_branch()
        base = self.inputs.base_branch or branch
        outputs = {"findings": "0", "pull-request-url": "", "sarif-file": "", "patch-file": "", "results-file": ""}
        if not after:
            raise BotError("no commit to analyse: GITHUB_SHA is empty and the event has no 'after'")
        if branch and branch.startswith("adopter/"):
            self.console.info(f"push to the bot's own branch {branch}: nothing to do")
            set_outputs(ctx.output_file, outputs, self.console)
            return 0

        wants_pr = self.inputs.mode == "pull-request"
        if wants_pr and ctx.event_name.startswith("pull_request"):
            self.console.warning("pull_request events only report: their token cannot safely push; "
                                 "see docs/bot.md for the secure split", ctx.in_actions)
            wants_pr = False
        if wants_pr and not branch:
            self.console.info(f"{ctx.ref or 'this event'} is not a branch: reporting only")
            wants_pr = False
        if wants_pr and base != branch:
            self.console.info(f"push to {branch}; pull requests are opened for pushes to {base}: reporting only")
            wants_pr = False

        pulls = existing = remote = None
        protected: set[str] = set()
        if wants_pr:
            pulls, existing, remote, protected = self._connect(base)

        changes = changed_files(self.git, before, after, forced)
        paths = [f.path for f in changes.files]
        carried = self._carried(remote, after, set(paths)) if existing is not None else []
        self.console.info(f"adopter bot {__version__}: {len(paths)} changed Python file(s) in {changes.description}"
                          + (f", {len(carried)} carried over from the open pull request" if carried else ""))
        options = Options(select=self.inputs.select, verify=self.inputs.verify, benchmark=self.inputs.benchmark)
        outcome = build(self.root, paths + carried, lambda p: self.git.blob(after, p), options)
        annotated = self._annotate(outcome, changes)
        out_dir = self._out_dir()
        outputs["findings"] = str(len(outcome.findings))
        outputs["sarif-file"] = str(self._write_sarif(outcome, out_dir))

        commit = None
        if outcome.files:
            commit = self.git.commit_files(after, outcome.files, self._message(outcome.proposed, base or "HEAD"))
            outputs["patch-file"] = str(self._write_patch(out_dir, after, commit))
        if outcome.rows:
            outputs["results-file"] = str(self._write_results(out_dir, after, base or "", outcome))

        published = None
        if wants_pr and commit:
            published = self._publish(pulls, existing, remote, protected, base, after, commit,
                                      outcome.rows, outcome.requirements, outcome.dependency_files)
            outputs["pull-request-url"] = published.url
        elif wants_pr and existing is not None:
            outputs["pull-request-url"] = existing.html_url
            self.console.info(f"nothing new to propose; the open pull request {existing.html_url} is left as it is")

        link_base = f"{ctx.server_url}/{ctx.repository}/blob/{after}"
        append_summary(ctx.summary_file, render.summary(
            outcome.rows, len(outcome.findings), len(annotated), base, self.inputs.mode, outcome.requirements,
            published.url if published else None, outcome.errors, changes.description, link_base,
            outcome.dependency_files, outcome.notes), self.console)
        for note in outcome.notes:
            self.console.info(f"note: {note}")
        for path, message in outcome.errors:
            self.console.warning(f"{path}: {message}", ctx.in_actions)
        self._log_result(outcome, published)
        set_outputs(ctx.output_file, outputs, self.console)
        return 0

    # ------------------------------------------------------------------ pieces

    def _range(self) -> tuple[str | None, str, bool]:
        ctx, event = self.ctx, self.ctx.event
        if ctx.event_name == "push":
            return event.get("before"), str(event.get("after") or ctx.sha), bool(event.get("forced"))
        if ctx.event_name.startswith("pull_request"):
            # actions/checkout checks out the merge commit (GITHUB_SHA): diff it against the base
            pull = event.get("pull_request") or {}
            return ((pull.get("base") or {}).get("sha"), ctx.sha or (pull.get("head") or {}).get("sha"), False)
        return None, ctx.sha, False

    def _event_branch(self) -> str | None:
        ctx = self.ctx
        if ctx.event_name.startswith("pull_request"):
            return ((ctx.event.get("pull_request") or {}).get("base") or {}).get("ref")
        return ctx.ref_branch

    def _connect(self, base: str):
        from .pulls import Pulls  # PyGithub is imported only when GitHub is talked to

        if not self.inputs.token:
            raise BotError("mode pull-request needs a token: set the github-token input (default: the "
                           "workflow's GITHUB_TOKEN) and give the job contents: write and pull-requests: write")
        pulls = Pulls(self.ctx.api_url, self.inputs.token, self.ctx.repository)
        name = f"adopter/{base}"
        protected = {b for b in (base, pulls.default_branch, self.ctx.default_branch) if b}
        if name in protected:
            raise BotError(f"the bot branch {name} is a protected base branch here; refusing")
        existing = pulls.find(name, base)
        remote = self.git.remote_branch(name)
        return pulls, existing, remote, protected

    def _carried(self, remote: RemoteBranch | None, after: str, already: set[str]) -> list[str]:
        """Python files the open pull request patches: re-analysed so an update keeps them."""
        if remote is None or not remote.sha or not self.git.fetch_branch(remote):
            return []
        try:
            paths = self.git.changed_paths(f"{remote.sha}^", remote.sha)
        except GitError:
            return []
        return [p for p in paths if is_python(p) and p not in already and self.git.blob(after, p) is not None]

    def _annotate(self, outcome: Outcome, changes: Changes) -> list:
        annotated = []
        for finding in outcome.findings:
            lines = changes.lines_for(finding.path)
            if any(n in lines for n in range(finding.line, finding.end_line + 1)):
                annotated.append(finding)
        text = github_annotations(annotated)
        if text:
            self.console.info(text)
        return annotated

    def _out_dir(self) -> Path:
        if self.inputs.out_dir:
            folder = Path(self.inputs.out_dir)
        elif self.ctx.runner_temp:
            folder = self.ctx.runner_temp / "adopter"
        else:
            folder = Path(tempfile.mkdtemp(prefix="adopter-bot-"))
        folder.mkdir(parents=True, exist_ok=True)
        return folder.resolve()

    def _write_sarif(self, outcome: Outcome, folder: Path) -> Path:
        path = folder / SARIF_NAME
        rules = sorted(outcome.rules.values(), key=lambda r: r.id)
        path.write_text(sarif(outcome.findings, rules), encoding="utf-8")
        return path

    def _write_patch(self, folder: Path, base_sha: str, commit: str) -> Path:
        patch = folder / PATCH_NAME
        patch.write_bytes(self.git.run("diff", "--no-color", "--no-ext-diff", "--binary", base_sha, commit).stdout)
        return patch

    def _write_results(self, folder: Path, base_sha: str, base: str, outcome: Outcome) -> Path:
        results = folder / RESULTS_NAME
        results.write_text(json.dumps({
            "version": 1, "repository": self.ctx.repository, "base_branch": base, "base_sha": base_sha,
            "requirements": sorted(outcome.requirements), "dependency_files": outcome.dependency_files,
            "rows": [r.as_dict() for r in outcome.rows],
        }, indent=2), encoding="utf-8")
        return results

    def _message(self, rows: list[Row], base: str) -> str:
        lines = [f"Adopt optimized kernels in {base} (adopter bot)", ""]
        lines += [f"- {r.rule} {r.name}: {r.path}:{r.line} -> {r.kernel}" for r in rows[:50]]
        if len(rows) > 50:
            lines.append(f"- ...and {len(rows) - 50} more")
        return "\n".join(lines) + "\n"

    def _publish(self, pulls, existing, remote: RemoteBranch, protected: set[str], base: str, base_sha: str,
                 commit: str, rows: list[Row], requirements, declared: dict[str, list[str]]) -> Published:
        proposed = [r for r in rows if r.status == "proposed"]
        pushed = True
        if remote.sha and self.git.fetch_branch(remote) and self._same(remote.sha, commit, base_sha):
            pushed = False
            self.console.info(f"{remote.name} already holds these patches on {base_sha[:7]}; not pushed again")
        else:
            self.git.push(commit, remote, protected)
            self.console.info(f"pushed {commit[:7]} to origin {remote.name}")
        link_base = f"{self.ctx.server_url}/{self.ctx.repository}/blob/{base_sha}"
        body = render.body(rows, base, base_sha, requirements, link_base, __version__, declared)
        result = pulls.open_or_update(existing, remote.name, base, render.title(base, len(proposed)), body)
        self.console.info(f"{'opened' if result.created else 'updated'} pull request {result.url}")
        return Published(result.url, result.created, pushed)

    def _same(self, old: str, new: str, base_sha: str) -> bool:
        try:
            parent = self.git.line("rev-parse", f"{old}^")
            return parent == base_sha and self.git.tree_of(old) == self.git.tree_of(new)
        except GitError:
            return False

    def _log_result(self, outcome: Outcome, published: Published | None) -> None:
        proposed, left = outcome.proposed, outcome.left_out
        self.console.info(f"{len(outcome.findings)} finding(s); {len(proposed)} patch(es) kept, {len(left)} left out")
        for row in left:
            self.console.info(f"  left out {row.rule} {row.path}:{row.line}: {row.status}"
                              + (f" ({row.reason})" if row.reason else ""))

    # ------------------------------------------------------------------ mode apply

    def apply(self) -> int:
        """Commit a patch produced by an unprivileged run, push it, open the pull request.
        The patch and results are data: checked, never executed."""
        ctx = self.ctx
        if not self.inputs.patch_dir:
            raise BotError("mode apply needs the input patch-dir (the downloaded artifact's folder)")
        folder = Path(self.inputs.patch_dir)
        outputs = {"findings": "0", "pull-request-url": "", "sarif-file": "", "patch-file": "", "results-file": ""}
        patch_path, results_path = folder / PATCH_NAME, folder / RESULTS_NAME
        if not results_path.is_file():
            self.console.info(f"no {RESULTS_NAME} in {folder}: the analysis proposed nothing")
            set_outputs(ctx.output_file, outputs, self.console)
            return 0
        rows, requirements, declared, artifact_sha = self._read_results(results_path)
        outputs["findings"] = str(len(rows))
        if ctx.event_name == "workflow_run":
            run = ctx.event.get("workflow_run") or {}
            if run.get("event") != "push":
                raise BotError(f"mode apply opens pull requests for push runs only, not {run.get('event')!r}")
            base_sha = str(run.get("head_sha") or "")
            base = self.inputs.base_branch or str(run.get("head_branch") or "")
        else:
            base_sha, base = ctx.sha, self.inputs.base_branch or (ctx.ref_branch or "")
        if not base or not base_sha:
            raise BotError("mode apply cannot tell the base branch and commit from the event")
        if artifact_sha != base_sha:
            raise BotError(f"the artifact was made for {artifact_sha[:12]}, not for {base_sha[:12]}; refusing it")
        if base.startswith("adopter/"):
            self.console.info(f"run on the bot's own branch {base}: nothing to do")
            set_outputs(ctx.output_file, outputs, self.console)
            return 0
        proposed = [r for r in rows if r.status == "proposed"]
        if not proposed or not patch_path.is_file():
            self.console.info("no patch to propose")
            set_outputs(ctx.output_file, outputs, self.console)
            return 0
        patch = patch_path.read_bytes()
        check_patch(patch)
        if not self.git.has_commit(base_sha):
            self.git.try_fetch(base_sha)
        pulls, existing, remote, protected = self._connect(base)
        commit = self.git.commit_patch(base_sha, patch, self._message(proposed, base))
        published = self._publish(pulls, existing, remote, protected, base, base_sha, commit, rows, requirements,
                                  declared)
        outputs["pull-request-url"] = published.url
        append_summary(ctx.summary_file, render.summary(
            rows, len(rows), 0, base, "apply", requirements, published.url, [], f"artifact for {base_sha[:7]}",
            f"{ctx.server_url}/{ctx.repository}/blob/{base_sha}", declared), self.console)
        set_outputs(ctx.output_file, outputs, self.console)
        return 0

    def _read_results(self, path: Path) -> tuple[list[Row], list[str], dict[str, list[str]], str]:
        try:
            if path.stat().st_size > MAX_PATCH_BYTES:
                raise BotError(f"{path.name} is larger than {MAX_PATCH_BYTES} bytes; refusing it")
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, dict) or data.get("version") != 1:
                raise ValueError("not an adopter results file (version 1)")
            raw_rows = data.get("rows")
            if not isinstance(raw_rows, list) or len(raw_rows) > MAX_ROWS:
                raise ValueError("rows must be a list")
            rows = [Row.from_dict(r) for r in raw_rows]
            reqs = data.get("requirements", [])
            if not isinstance(reqs, list) or not all(isinstance(r, str) and len(r) < 200 for r in reqs):
                raise ValueError("requirements must be a list of strings")
            declared = data.get("dependency_files", {})
            if not isinstance(declared, dict) or not all(
                    isinstance(k, str) and len(k) < 500 and isinstance(v, list)
                    and all(isinstance(r, str) and len(r) < 200 for r in v) for k, v in declared.items()):
                raise ValueError("dependency_files must map paths to lists of strings")
            sha = data.get("base_sha")
            if not isinstance(sha, str) or not re.fullmatch(r"[0-9a-f]{40,64}", sha):
                raise ValueError("base_sha must be a commit id")
        except (OSError, ValueError) as exc:
            raise BotError(f"the artifact's {path.name} is not valid: {exc}") from None
        return rows, reqs, declared, sha


def check_patch(patch: bytes) -> None:
    """Refuse a patch that does more than edit Python sources and dependency lists."""
    from unidiff import PatchSet
    from unidiff.errors import UnidiffParseError

    if len(patch) > MAX_PATCH_BYTES:
        raise BotError(f"the patch is larger than {MAX_PATCH_BYTES} bytes; refusing it")
    try:
        text = patch.decode("utf-8")
    except UnicodeDecodeError:
        raise BotError("the patch is not UTF-8 text; refusing it") from None
    for line in text.splitlines():
        if line.startswith(("old mode", "new mode", "deleted file mode", "copy from", "copy to", "rename from",
                            "rename to", "GIT binary patch", "Binary files")) or line.startswith("new file mode 12"):
            raise BotError(f"the patch does something other than edit text files ({line.split(' ')[0]} ...); refusing it")
    try:
        files = PatchSet(text)
    except UnidiffParseError as exc:
        raise BotError(f"the patch cannot be parsed: {exc}") from None
    if not files:
        raise BotError("the patch is empty")
    for patched in files:
        for name in {patched.source_file, patched.target_file}:
            if name == "/dev/null":
                continue
            path = name[2:] if name.startswith(("a/", "b/")) else name
            parts = path.split("/")
            if (path.startswith("/") or ".." in parts or parts[0] in (".github", ".git") or "\\" in path
                    or not (path.endswith(".py") or ALLOWED_DATA_FILES.search(path))):
                raise BotError(f"the patch touches {path!r}, which the bot never edits; refusing it")
