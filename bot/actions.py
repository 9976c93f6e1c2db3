"""The GitHub Actions runner interface: environment, inputs, event, and workflow commands.

Everything the bot learns about the run comes through :func:`load_context`, from the standard
variables (``GITHUB_API_URL``, ``GITHUB_REPOSITORY``, ``GITHUB_EVENT_NAME``,
``GITHUB_EVENT_PATH``, ``GITHUB_SHA``, ``GITHUB_REF``, ...) and the action's inputs
(``INPUT_GITHUB-TOKEN`` as the runner names them, or ``INPUT_GITHUB_TOKEN``).  Everything it
tells the runner goes through the small writers at the bottom (outputs, job summary, masks,
annotations), so that the token can be redacted in exactly one place.
"""

from __future__ import annotations

import json
import re
import secrets
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

MODES = ("report", "pull-request", "apply")
DEFAULT_API_URL = "https://api.github.com"
DEFAULT_SERVER_URL = "https://github.com"


class BotError(Exception):
    """A problem the user must fix (configuration, permissions, git); exit code 2."""


@dataclass(frozen=True)
class Inputs:
    token: str | None = None
    mode: str = "pull-request"
    select: tuple[str, ...] = ()
    verify: bool = True
    benchmark: bool = True
    base_branch: str | None = None
    patch_dir: str | None = None  # mode apply: the folder holding the artifact (patch + results)
    out_dir: str | None = None  # where SARIF, the patch and results.json are written


@dataclass(frozen=True)
class Context:
    api_url: str
    server_url: str
    repository: str  # owner/name
    event_name: str
    event: dict
    sha: str
    ref: str
    workspace: Path
    in_actions: bool
    output_file: Path | None = None
    summary_file: Path | None = None
    runner_temp: Path | None = None
    inputs: Inputs = field(default_factory=Inputs)

    @property
    def owner(self) -> str:
        return self.repository.split("/", 1)[0]

    @property
    def ref_branch(self) -> str | None:
        """The branch the event is about (``refs/heads/X`` -> ``X``), or None for tags etc."""
        ref = self.ref
        if self.event_name == "workflow_run":
            return (self.event.get("workflow_run") or {}).get("head_branch") or None
        if ref.startswith("refs/heads/"):
            return ref[len("refs/heads/"):]
        return None

    @property
    def default_branch(self) -> str | None:
        return (self.event.get("repository") or {}).get("default_branch") or None


#: Events whose checked-out code was written by someone who can push to the repository (a push, a
#: pull request run with the pull request's own, read-only token for forks, a manual or scheduled
#: run of a branch).  On every other event (``pull_request_target``, ``workflow_run``,
#: ``issue_comment``, ...) the workflow may check out code its author does not control while a
#: write token is around (in the environment, in ``.git/config``): the bot runs none of it.
TRUSTED_CODE_EVENTS = frozenset({"push", "pull_request", "workflow_dispatch", "schedule", "merge_group"})


def runs_untrusted_code(event_name: str) -> bool:
    """Whether importing the checked-out code could hand a write token to its author."""
    return event_name not in TRUSTED_CODE_EVENTS


_TRUE = {"true", "yes", "1", "on"}
_FALSE = {"false", "no", "0", "off", ""}


def _input(env: Mapping[str, str], name: str) -> str | None:
    """An action input as the runner passes it: ``INPUT_<NAME>`` upper-cased, hyphens kept
    (JavaScript actions) or turned into underscores (our composite action's ``env:``)."""
    upper = name.upper()
    for key in (f"INPUT_{upper}", f"INPUT_{upper.replace('-', '_')}"):
        value = env.get(key)
        if value is not None:
            return value.strip()
    return None


def _bool(value: str | None, name: str, default: bool) -> bool:
    if value is None or value == "":
        return default
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise BotError(f"input {name} must be true or false, not {value!r}")


def load_inputs(env: Mapping[str, str], overrides: Mapping[str, object] | None = None) -> Inputs:
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    token = _input(env, "github-token") or env.get("GITHUB_TOKEN") or None
    mode = str(overrides.get("mode") or _input(env, "mode") or "pull-request")
    if mode not in MODES:
        raise BotError(f"input mode must be one of {', '.join(MODES)}, not {mode!r}")
    select_raw = overrides.get("select") or _input(env, "select") or ""
    select = tuple(s.strip() for s in str(select_raw).replace("\n", ",").split(",") if s.strip())
    verify = overrides["verify"] if "verify" in overrides else _bool(_input(env, "verify"), "verify", True)
    benchmark = (overrides["benchmark"] if "benchmark" in overrides
                 else _bool(_input(env, "benchmark"), "benchmark", True))
    base = overrides.get("base_branch") or _input(env, "base-branch") or None
    return Inputs(
        token=token, mode=mode, select=select, verify=bool(verify), benchmark=bool(benchmark),
        base_branch=str(base) if base else None,
        patch_dir=str(overrides.get("patch_dir") or _input(env, "patch-dir") or "") or None,
        out_dir=str(overrides.get("out_dir") or _input(env, "output-dir") or "") or None,
    )


def load_context(env: Mapping[str, str], inputs: Inputs) -> Context:
    repository = env.get("GITHUB_REPOSITORY", "").strip()
    if not re.fullmatch(r"[\w.-]+/[\w.-]+", repository):
        raise BotError("GITHUB_REPOSITORY is not set (expected owner/name); run inside GitHub Actions "
                       "or set it by hand")
    event_name = env.get("GITHUB_EVENT_NAME", "").strip() or "push"
    event: dict = {}
    event_path = env.get("GITHUB_EVENT_PATH", "").strip()
    if event_path:
        try:
            event = json.loads(Path(event_path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise BotError(f"GITHUB_EVENT_PATH points to a missing file: {event_path}") from None
        except (OSError, ValueError) as exc:
            raise BotError(f"cannot read the event file {event_path}: {exc}") from None
        if not isinstance(event, dict):
            raise BotError(f"the event file {event_path} does not hold a JSON object")
    sha = env.get("GITHUB_SHA", "").strip() or str(event.get("after") or "")
    ref = env.get("GITHUB_REF", "").strip() or str(event.get("ref") or "")

    def path(name: str) -> Path | None:
        value = env.get(name, "").strip()
        return Path(value) if value else None

    return Context(
        api_url=(env.get("GITHUB_API_URL", "").strip() or DEFAULT_API_URL).rstrip("/"),
        server_url=(env.get("GITHUB_SERVER_URL", "").strip() or DEFAULT_SERVER_URL).rstrip("/"),
        repository=repository,
        event_name=event_name,
        event=event,
        sha=sha,
        ref=ref,
        workspace=path("GITHUB_WORKSPACE") or Path.cwd(),
        in_actions=env.get("GITHUB_ACTIONS", "").lower() == "true",
        output_file=path("GITHUB_OUTPUT"),
        summary_file=path("GITHUB_STEP_SUMMARY"),
        runner_temp=path("RUNNER_TEMP"),
        inputs=inputs,
    )


# ---------------------------------------------------------------- what we tell the runner

#: Names of variables whose values are secrets, among the runner's INPUT_*, GITHUB_*, ACTIONS_*
#: and RUNNER_* variables.
SECRET_NAME = re.compile(r"(?:^|[_-])(?:TOKEN|SECRET|PASSWORD|PASSWD|PRIVATE|CREDENTIALS?|API[_-]?KEY|AUTH\w*|"
                         r"PAT|KEY)(?:$|[_-])", re.I)
RUNNER_PREFIXES = ("INPUT_", "GITHUB_", "ACTIONS_", "RUNNER_")
#: Values shaped like GitHub tokens or JWTs, wherever they come from.
TOKEN_SHAPE = re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{16,}|github_pat_[A-Za-z0-9_]{16,}"
                         r"|eyJ[A-Za-z0-9_-]{6,}\.[A-Za-z0-9_-]{6,}\.[A-Za-z0-9_-]{6,})")
#: ``NAME=value`` or ``NAME: value`` where NAME is a runner variable that holds a secret.
SECRET_ASSIGNMENT = re.compile(
    r"(\b(?:INPUT|GITHUB|ACTIONS|RUNNER)_[A-Za-z0-9_-]*?(?:TOKEN|SECRET|PASSWORD|KEY|AUTH)[A-Za-z0-9_-]*"
    r"['\"]?\s*(?:=|:)\s*['\"]?)([^\s'\",;)}\]]+)", re.I)


def secret_values(env: Mapping[str, str]) -> list[str]:
    """The values of the runner's variables that look like secrets: named like one (``*_TOKEN``,
    ``*_SECRET``, ``*_KEY``) or shaped like a GitHub token, at least 8 characters long."""
    found = []
    for name, value in env.items():
        value = (value or "").strip()
        if len(value) < 8 or not name.upper().startswith(RUNNER_PREFIXES):
            continue
        if SECRET_NAME.search(name[name.index("_") + 1:]) or TOKEN_SHAPE.search(value):
            found.append(value)
    return found


class Console:
    """Prints for the runner log, with every secret replaced by ``***`` first.

    :meth:`redact` is also what the PR body, its title, the commit message, the results file
    and the SARIF file pass through: the token and every secret-looking runner variable are
    replaced where they occur verbatim, and so is anything shaped like a GitHub token or
    written as ``GITHUB_TOKEN=...`` (an exception message that quotes the environment)."""

    def __init__(self, out=None, err=None):
        self._out = out or sys.stdout
        self._err = err or sys.stderr
        self._secrets: list[str] = []

    def add_secret(self, value: str | None, in_actions: bool) -> None:
        if not value:
            return
        self._remember(value)
        if in_actions:
            # The runner swallows this command and hides the value in every later log line.
            self._out.write(f"::add-mask::{value}\n")
            self._out.flush()

    def add_environment(self, env: Mapping[str, str]) -> None:
        for value in secret_values(env):
            self._remember(value)

    def _remember(self, value: str) -> None:
        if value not in self._secrets:
            self._secrets.append(value)
            self._secrets.sort(key=len, reverse=True)  # a secret inside another is replaced last

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        text = SECRET_ASSIGNMENT.sub(lambda m: m.group(1) + "***", text)
        return TOKEN_SHAPE.sub("***", text)

    def info(self, text: str) -> None:
        self._out.write(self.redact(text) + "\n")
        self._out.flush()

    def error(self, text: str, in_actions: bool) -> None:
        text = self.redact(text)
        if in_actions:
            self._out.write(f"::error title=adopter bot::{escape_data(text)}\n")
            self._out.flush()
        self._err.write(f"adopter bot: error: {text}\n")
        self._err.flush()

    def warning(self, text: str, in_actions: bool) -> None:
        text = self.redact(text)
        if in_actions:
            self._out.write(f"::warning title=adopter bot::{escape_data(text)}\n")
        else:
            self._out.write(f"adopter bot: warning: {text}\n")
        self._out.flush()

    def group(self, title: str, body: str) -> None:
        if not body:
            return
        self._out.write(f"::group::{self.redact(title)}\n{self.redact(body)}\n::endgroup::\n")
        self._out.flush()


def escape_data(value: str) -> str:
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def set_outputs(path: Path | None, values: Mapping[str, str], console: Console) -> None:
    """Append ``name=value`` pairs to ``$GITHUB_OUTPUT`` (heredoc form for multi-line values)."""
    if path is None:
        for name, value in values.items():
            console.info(f"output {name}={value}")
        return
    lines = []
    for name, value in values.items():
        value = console.redact(str(value))
        if "\n" in value:
            delimiter = f"ADOPTER_{secrets.token_hex(8)}"
            lines.append(f"{name}<<{delimiter}\n{value}\n{delimiter}\n")
        else:
            lines.append(f"{name}={value}\n")
    with open(path, "a", encoding="utf-8") as handle:
        handle.write("".join(lines))


def append_summary(path: Path | None, markdown: str, console: Console) -> None:
    if path is None:
        return
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(console.redact(markdown).rstrip("\n") + "\n")
