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
    The privileged half of the secure split: takes the artifact of an unprivileged ``report``
    run (input ``patch-dir``), fixes the pushed commit again itself (never applying the
    artifact's patch), checks that the result is what the artifact claims, and commits, pushes
    and opens the pull request with the artifact's measurements.  It never imports or runs
    the analysed code.

Exit codes: 0 done (findings or not), 2 a problem to fix (token, permissions, git, input).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import traceback
from dataclasses import dataclass, fields, replace
from pathlib import Path

from adopter import __version__
from adopter.report import github as github_annotations
from adopter.report import sarif
from adopter.source import MAX_BYTES

from . import artifact, render
from .actions import (BotError, Console, Context, append_summary, load_context, load_inputs, runs_untrusted_code,
                      set_outputs)
from .changes import Changes, changed_files, is_python
from .gitops import REGULAR_MODES, Git, GitError, RemoteBranch, StaleBranch
from .patches import PROPOSED, Options, Outcome, Row, build
from .ordering import Order, order

PATCH_NAME = artifact.PATCH_NAME
RESULTS_NAME = artifact.RESULTS_NAME
SARIF_NAME = "adopter.sarif"
PUSH_ATTEMPTS = 3
#: The adopter repository, for links to the bundled rules' documentation.
DOCS_URL = "https://github.com/adopter-dev/adopter/blob/main/docs/rules/{id}.md"


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
        console.add_environment(env)
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


@dataclass
class Target:
    """Where a run proposes: the API, the open pull request, the bot branch as it was read."""

    pulls: object
    existing: object
    remote: RemoteBranch
    protected: set[str]
    base: str


class Stale(Exception):
    """The bot branch was built from a newer push than this run's: leave it alone."""


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

        verify = self.inputs.verify
        if verify and runs_untrusted_code(ctx.event_name):
            self.console.warning(
                f"{ctx.event_name} runs may check out code that the workflow's author does not control while a "
                "write token is around: nothing from the repository is imported or run (verification and "
                "benchmarks are off). Use the secure split to verify such code (docs/bot.md).", ctx.in_actions)
            verify = False
        wants_pr = self.inputs.mode == "pull-request"
        if wants_pr and ctx.event_name.startswith("pull_request"):
            self.console.warning("pull_request events only report: their token cannot safely push; "
                                 "see docs/bot.md for the secure split", ctx.in_actions)
            wants_pr = False
        if wants_pr and runs_untrusted_code(ctx.event_name):
            self.console.info(f"{ctx.event_name} runs only report")
            wants_pr = False
        if wants_pr and not branch:
            self.console.info(f"{ctx.ref or 'this event'} is not a branch: reporting only")
            wants_pr = False
        if wants_pr and base != branch:
            self.console.info(f"push to {branch}; pull requests are opened for pushes to {base}: reporting only")
            wants_pr = False

        target = None
        if wants_pr:
            target = self._connect(base, from_input=bool(self.inputs.base_branch))
            if target is None:
                set_outputs(ctx.output_file, outputs, self.console)
                return 0
            try:
                self._check_order(target.remote, after, base)
            except Stale as exc:
                self.console.info(str(exc))
                if target.existing is not None:
                    outputs["pull-request-url"] = target.existing.html_url
                set_outputs(ctx.output_file, outputs, self.console)
                return 0

        changes = changed_files(self.git, before, after, forced)
        paths = [f.path for f in changes.files]
        options = Options(select=self.inputs.select, verify=verify, benchmark=self.inputs.benchmark and verify)
        outcome, carried = self._build(target, after, paths, options)
        self.console.info(f"adopter bot {__version__}: {len(paths)} changed Python file(s) in {changes.description}"
                          + (f", {len(carried)} carried over from the open pull request" if carried else ""))
        annotated = self._annotate(outcome, changes)
        out_dir = self._out_dir()
        outputs["findings"] = str(len(outcome.findings))
        outputs["sarif-file"] = str(self._write_sarif(outcome, out_dir))
        link_base = f"{ctx.server_url}/{ctx.repository}/blob/{after}"
        notes = self._rule_notes(outcome, link_base)

        commit = patch = None
        if outcome.files:
            commit = self.git.commit_files(after, outcome.files, self._message(outcome.proposed, base or "HEAD"))
            patch = self.git.patch(after, commit)
            outputs["patch-file"] = str(self._write_patch(out_dir, patch))
        if outcome.rows:
            outputs["results-file"] = str(self._write_results(out_dir, after, base or "", outcome, patch))

        published = None
        if target is not None and commit:
            try:
                published = self._publish(target, after, commit, outcome.rows, outcome.requirements,
                                          outcome.dependency_files, notes, link_base,
                                          rebuild=lambda t: self._rebuild(t, after, paths, options, base))
            except Stale as exc:
                self.console.info(str(exc))
            if published is not None:
                outputs["pull-request-url"] = published.url
        elif target is not None and target.existing is not None:
            outputs["pull-request-url"] = target.existing.html_url
            self.console.info(f"nothing new to propose; the open pull request {target.existing.html_url} "
                              "is left as it is")

        append_summary(ctx.summary_file, render.summary(
            outcome.rows, len(outcome.findings), len(annotated), base, self.inputs.mode, outcome.requirements,
            published.url if published else None, outcome.errors, changes.description, link_base,
            outcome.dependency_files, outcome.notes, notes), self.console)
        for note in outcome.notes:
            self.console.info(f"note: {note}")
        for path, message in outcome.errors:
            self.console.warning(f"{path}: {message}", ctx.in_actions)
        self._log_result(outcome, published)
        set_outputs(ctx.output_file, outputs, self.console)
        return 0

    # ------------------------------------------------------------------ pieces

    def _build(self, target: Target | None, after: str, paths: list[str], options: Options):
        carried = []
        if target is not None and target.existing is not None:
            carried = self._carried(target.remote, after, set(paths))
        outcome = build(self.root, paths + carried, lambda p: self.git.regular_blob(after, p, MAX_BYTES), options)
        self._analysed = list(dict.fromkeys(paths + carried))
        self._redact_outcome(outcome)
        return outcome, carried

    def _redact_outcome(self, outcome: Outcome) -> None:
        """Secrets out of every text of the table before it is escaped for Markdown (an escaped
        secret no longer matches the redactor)."""
        outcome.rows = [self._redact_row(r) for r in outcome.rows]
        outcome.notes = [self.console.redact(n) for n in outcome.notes]
        outcome.errors = [(self.console.redact(p), self.console.redact(m)) for p, m in outcome.errors]

    def _redact_row(self, row: Row) -> Row:
        changes = {f.name: self.console.redact(getattr(row, f.name)) for f in fields(row)
                   if isinstance(getattr(row, f.name), str)}
        return replace(row, **changes)

    def _rebuild(self, target: Target, after: str, paths: list[str], options: Options, base: str):
        """After an older push's run moved the bot branch meanwhile: the commit again, keeping
        what this run analysed and adding what that run's commit patches."""
        outcome, _ = self._build(target, after, list(self._analysed), options)
        if not outcome.files:
            return None
        return outcome, self.git.commit_files(after, outcome.files, self._message(outcome.proposed, base))

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

    def _connect(self, base: str, from_input: bool) -> Target | None:
        """The pull request side of the run; None when the base branch is gone (nothing to do)."""
        from .pulls import Pulls  # PyGithub is imported only when GitHub is talked to

        if not self.inputs.token:
            raise BotError("mode pull-request needs a token: set the github-token input (default: the "
                           "workflow's GITHUB_TOKEN) and give the job contents: write and pull-requests: write")
        if self.git.remote_branch(base).sha is None:
            if from_input:
                raise BotError(f"the input base-branch names {base!r}, which does not exist on origin")
            self.console.warning(f"the branch {base} no longer exists on origin (deleted after the push?): "
                                 "no pull request can target it; nothing was pushed", self.ctx.in_actions)
            return None
        pulls = Pulls(self.ctx.api_url, self.inputs.token, self.ctx.repository)
        name = f"adopter/{base}"
        protected = {b for b in (base, pulls.default_branch, self.ctx.default_branch) if b}
        if name in protected:
            raise BotError(f"the bot branch {name} is a protected base branch here; refusing")
        existing = pulls.find(name, base)
        remote = self.git.remote_branch(name)
        return Target(pulls, existing, remote, protected, base)

    def _built_from(self, remote: RemoteBranch) -> str | None:
        """The push the bot branch's commit was built on (its parent)."""
        if not remote.sha or not self.git.fetch_branch(remote):
            return None
        return self.git.parent(remote.sha)

    def _check_order(self, remote: RemoteBranch, after: str, base: str) -> None:
        built_from = self._built_from(remote)
        if built_from is None:
            return
        if not self.git.has_commit(built_from):
            self.git.try_fetch(built_from)
        tip = self.git.remote_branch(base).sha
        if order(self.git, built_from, after, tip) is Order.OLDER:
            raise Stale(f"{remote.name} was built from {built_from[:7]}, a newer push than this run's {after[:7]}: "
                        "left as it is (the newer run keeps it up to date)")

    def _carried(self, remote: RemoteBranch | None, after: str, already: set[str]) -> list[str]:
        """Python files the open pull request patches: re-analysed so an update keeps them."""
        if remote is None or not remote.sha or not self.git.fetch_branch(remote):
            return []
        try:
            paths = self.git.changed_paths(f"{remote.sha}^", remote.sha)
        except GitError:
            return []
        return [p for p in paths if is_python(p) and p not in already and self.git.entry(after, p) is not None]

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

    def _rule_notes(self, outcome: Outcome, link_base: str) -> list[render.RuleNote]:
        """Why each rule of the table helps, and where its documentation is."""
        wanted = sorted({part for row in outcome.rows for part in row.rule.split("+")})
        return rule_notes([outcome.rules[r] for r in wanted if r in outcome.rules], self.root, link_base)

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
        path.write_text(self.console.redact(sarif(outcome.findings, rules)), encoding="utf-8")
        return path

    def _write_patch(self, folder: Path, patch: bytes) -> Path:
        path = folder / PATCH_NAME
        path.write_bytes(patch)
        return path

    def _write_results(self, folder: Path, base_sha: str, base: str, outcome: Outcome, patch: bytes | None) -> Path:
        path = folder / RESULTS_NAME
        document = artifact.document(self.ctx.repository, base, base_sha, outcome.rows, sorted(outcome.active),
                                     outcome.files, patch, __version__, outcome.requirements,
                                     outcome.dependency_files)
        path.write_text(self.console.redact(json.dumps(document, indent=2)), encoding="utf-8")
        return path

    def _message(self, rows: list[Row], base: str) -> str:
        lines = [f"Adopt optimized kernels in {base} (adopter bot)", ""]
        lines += [f"- {r.rule} {r.name}: {r.path}:{r.line} -> {r.kernel}" for r in rows[:50]]
        if len(rows) > 50:
            lines.append(f"- ...and {len(rows) - 50} more")
        return self.console.redact("\n".join(lines) + "\n")

    def _publish(self, target: Target, base_sha: str, commit: str, rows: list[Row], requirements,
                 declared: dict[str, list[str]], notes: list[render.RuleNote], link_base: str,
                 rebuild=None) -> Published | None:
        """Push the bot branch (never back onto an older push) and open or update the pull request.

        The body is rendered, redacted and fitted to GitHub's size limit before anything is
        pushed.  When another run moved the branch meanwhile, the order of the two pushes
        decides: a newer one is left alone (:class:`Stale`), an older one is replaced."""
        base = target.base
        proposed = [r for r in rows if r.status == PROPOSED]
        title = self.console.redact(render.title(base, len(proposed)))
        body = self.console.redact(render.body(rows, base, base_sha, requirements, link_base, __version__, declared,
                                               notes))
        remote = target.remote
        pushed = True
        for attempt in range(1, PUSH_ATTEMPTS + 1):
            if remote.sha and self.git.fetch_branch(remote) and self._same(remote.sha, commit, base_sha):
                pushed = False
                self.console.info(f"{remote.name} already holds these patches on {base_sha[:7]}; not pushed again")
                break
            try:
                self.git.push(commit, remote, target.protected)
            except StaleBranch:
                if attempt == PUSH_ATTEMPTS:
                    raise
                remote = self.git.remote_branch(remote.name)
                self._check_order(remote, base_sha, base)  # raises Stale when a newer run pushed
                self.console.info(f"{remote.name} moved while this run worked (another run, on an older push); "
                                  "replacing it")
                if rebuild is not None:
                    target.remote = remote
                    rebuilt = rebuild(target)
                    if rebuilt is None:
                        raise Stale("another run updated the bot branch meanwhile, and nothing is left to "
                                    "propose on top of it") from None
                    outcome, commit = rebuilt
                    rows, requirements, declared = outcome.rows, outcome.requirements, outcome.dependency_files
                    body = self.console.redact(render.body(rows, base, base_sha, requirements, link_base,
                                                           __version__, declared, notes))
                continue
            self.console.info(f"pushed {commit[:7]} to origin {remote.name}")
            break
        if self.git.remote_branch(remote.name).sha != commit and pushed:
            raise Stale(f"{remote.name} moved again right after this run pushed it; the pull request is left to "
                        "the run that moved it")
        try:
            result = target.pulls.open_or_update(target.existing, remote.name, base, title, body)
        except BotError:
            if target.existing is None and pushed and self._orphan(target, remote.name, base):
                # no pull request will ever show this branch: do not leave it behind
                if self.git.delete(remote, commit):
                    self.console.info(f"deleted {remote.name} again: the pull request could not be opened")
            raise
        self.console.info(f"{'opened' if result.created else 'updated'} pull request {result.url}")
        return Published(result.url, result.created, pushed)

    def _orphan(self, target: Target, branch: str, base: str) -> bool:
        """Whether no open pull request shows ``branch`` (False when that cannot be told)."""
        try:
            return target.pulls.find(branch, base) is None
        except BotError:
            return False

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
        """Open the pull request for an unprivileged ``report`` run's artifact.

        The artifact's patch is never applied.  The pushed commit is fixed again here, with the
        deterministic ``fix`` and exactly the patches the artifact says were kept; what is
        pushed is that result, and only when it matches the artifact's claims (the same files,
        with the same SHA-256).  No code from the repository or the artifact is imported or run
        (nothing is verified here); the artifact's measurements are only shown."""
        ctx = self.ctx
        if not self.inputs.patch_dir:
            raise BotError("mode apply needs the input patch-dir (the downloaded artifact's folder)")
        folder = Path(self.inputs.patch_dir)
        outputs = {"findings": "0", "pull-request-url": "", "sarif-file": "", "patch-file": "", "results-file": ""}
        found = artifact.load(folder)
        if found is None:
            self.console.info(f"no {RESULTS_NAME} in {folder}: the analysis proposed nothing")
            set_outputs(ctx.output_file, outputs, self.console)
            return 0
        outputs["findings"] = str(len(found.rows))
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
        if found.base_sha != base_sha:
            raise BotError(f"the artifact was made for {found.base_sha[:12]}, not for {base_sha[:12]}; refusing it")
        if base.startswith("adopter/"):
            self.console.info(f"run on the bot's own branch {base}: nothing to do")
            set_outputs(ctx.output_file, outputs, self.console)
            return 0
        artifact.check_patch_file(folder, found)
        found = replace(found, rows=[self._redact_row(r) for r in found.rows])
        proposed = found.proposed
        if not proposed:
            self.console.info("no patch to propose")
            set_outputs(ctx.output_file, outputs, self.console)
            return 0
        if not self.git.has_commit(base_sha):
            self.git.try_fetch(base_sha)
        if not self.git.has_commit(base_sha):
            raise BotError(f"the commit {base_sha[:12]} is not in this checkout")
        if self.git.line("rev-parse", "HEAD") != base_sha:
            raise BotError(f"mode apply needs the checkout at {base_sha[:12]} (actions/checkout with ref: "
                           "github.event.workflow_run.head_sha)")
        outcome = self._replay(found, base_sha)
        target = self._connect(base, from_input=bool(self.inputs.base_branch))
        if target is None:
            set_outputs(ctx.output_file, outputs, self.console)
            return 0
        try:
            self._check_order(target.remote, base_sha, base)
        except Stale as exc:
            self.console.info(str(exc))
            set_outputs(ctx.output_file, outputs, self.console)
            return 0
        commit = self.git.commit_files(base_sha, outcome.files, self._message(proposed, base))
        link_base = f"{ctx.server_url}/{ctx.repository}/blob/{base_sha}"
        notes = self._rule_notes(Outcome(rows=found.rows, rules=outcome.rules), link_base)
        try:
            published = self._publish(target, base_sha, commit, found.rows, outcome.requirements,
                                      outcome.dependency_files, notes, link_base)
        except Stale as exc:
            self.console.info(str(exc))
            published = None
        if published is not None:
            outputs["pull-request-url"] = published.url
        append_summary(ctx.summary_file, render.summary(
            found.rows, len(found.rows), 0, base, "apply", outcome.requirements,
            published.url if published else None, [], f"artifact for {base_sha[:7]}", link_base,
            outcome.dependency_files, outcome.notes, notes), self.console)
        set_outputs(ctx.output_file, outputs, self.console)
        return 0

    def _replay(self, found: artifact.Artifact, base_sha: str) -> Outcome:
        """Fix the pushed commit again with the patches the artifact kept, and check that the
        result is what the artifact claims; refuse the artifact otherwise."""
        keep: dict[str, set[tuple[str, int]]] = {}
        for row in found.proposed:
            if not is_python(row.path):
                raise artifact.ArtifactError(f"the artifact proposes a patch to {row.path[:200]!r}, which is not a "
                                             "Python file; refusing it")
            keep.setdefault(row.path, set()).add((row.rule, row.line))
        for path in keep:
            entry = self.git.entry(base_sha, path)
            if entry is None or entry[0] not in REGULAR_MODES:
                raise artifact.ArtifactError(f"the artifact proposes a patch to {path[:200]!r}, which is not a "
                                             f"regular file of {base_sha[:12]}; refusing it")
        options = Options(select=found.rules, verify=False, benchmark=False,
                          replay={p: frozenset(k) for p, k in keep.items()})
        outcome = build(self.root, sorted(keep), lambda p: self.git.regular_blob(base_sha, p, MAX_BYTES), options)
        landed = {(r.path, r.rule, r.line) for r in outcome.proposed}
        claimed = {(r.path, r.rule, r.line) for r in found.proposed}
        mine = {path: artifact.digest(data) for path, data in outcome.files.items()}
        problem = ""
        if outcome.errors:
            path, message = outcome.errors[0]
            problem = f"{path}: {message}"
        elif landed != claimed:
            missing = sorted(claimed - landed) or sorted(landed - claimed)
            problem = f"the patch {missing[0][1]} at {missing[0][0]}:{missing[0][2]} comes out differently"
        elif mine != found.files:
            differing = sorted(set(mine) ^ set(found.files)) or sorted(p for p in mine if mine[p] != found.files[p])
            problem = f"{differing[0]} comes out differently"
        if problem:
            raise artifact.ArtifactError(
                f"the artifact does not match what adopter {__version__} makes from {base_sha[:12]} ({problem}); "
                "refusing it. Was it made by another adopter release, or altered?")
        self.console.info(f"fixed {len(outcome.files)} file(s) of {base_sha[:7]} again: the same files and "
                          "contents as the artifact claims")
        return outcome


def rule_notes(rules, root: Path, link_base: str) -> list[render.RuleNote]:
    """One line why each rule helps, linked to its documentation: the page under docs/rules of
    the adopter repository where there is one, the rule file itself for a rule of the analysed
    repository, else ``adopter rules ID``."""
    from adopter.ruleset import bundled_rules_dir

    bundled = bundled_rules_dir().resolve()
    docs = _documented_rules()
    top = root.resolve()
    notes = []
    for rule in rules:
        path = Path(rule.path).resolve()
        url = None
        if path.parent == bundled:
            url = DOCS_URL.format(id=rule.id) if rule.id in docs else None
        else:
            try:
                url = f"{link_base}/{path.relative_to(top).as_posix()}"
            except ValueError:
                url = None
        notes.append(render.RuleNote(rule.id, rule.name, " ".join(rule.summary.split()), ", ".join(rule.helps), url))
    return notes


def _documented_rules() -> set[str]:
    """Ids of the rules with a page under docs/rules in the adopter source tree this runs from
    (the action's checkout, or a development install)."""
    found: set[str] = set()
    candidates = [Path(__file__).resolve().parents[1] / "docs" / "rules"]
    action = os.environ.get("GITHUB_ACTION_PATH")
    if action:
        candidates.append(Path(action) / "docs" / "rules")
    for folder in candidates:
        if folder.is_dir():
            found |= {p.stem for p in folder.glob("ADP*.md")}
    return found
