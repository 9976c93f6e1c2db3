"""Git, through the ``git`` command: read commits, build the bot's commit, push its branch.

The bot never touches the user's working tree, index or HEAD: its commit is made with
plumbing (a private index file, ``write-tree``, ``commit-tree``) on top of the pushed commit,
and pushed as ``<commit>:refs/heads/adopter/<base>`` with ``--force-with-lease`` naming the
branch tip the bot saw, so that a concurrent run is never silently overwritten.

Credentials: actions/checkout leaves an ``http.<url>.extraheader`` in the checkout's config,
and that is used as it is.  When it is missing (``persist-credentials: false``) and a token
was given, the same header is passed through ``GIT_CONFIG_*`` variables, never on a command
line and never in a remote URL, so it cannot show up in an error message.
"""

from __future__ import annotations

import base64
import os
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from .actions import BotError

REMOTE = "origin"
BOT_NAME = "github-actions[bot]"
BOT_EMAIL = "41898282+github-actions[bot]@users.noreply.github.com"


class GitError(BotError):
    pass


@dataclass(frozen=True)
class RemoteBranch:
    name: str
    sha: str | None  # None: the branch does not exist on the remote


class Git:
    def __init__(self, root: Path, token: str | None = None, redact=lambda s: s):
        self.root = Path(root)
        self._redact = redact
        self._env = dict(os.environ)
        self._env.update({"GIT_TERMINAL_PROMPT": "0", "GIT_PAGER": "cat", "GIT_ASKPASS": "",
                          "GIT_OPTIONAL_LOCKS": "0"})
        self._env.setdefault("GIT_AUTHOR_NAME", BOT_NAME)
        self._env.setdefault("GIT_AUTHOR_EMAIL", BOT_EMAIL)
        self._env.setdefault("GIT_COMMITTER_NAME", self._env["GIT_AUTHOR_NAME"])
        self._env.setdefault("GIT_COMMITTER_EMAIL", self._env["GIT_AUTHOR_EMAIL"])
        self._token = token
        self._auth_env: dict[str, str] | None = None

    # ------------------------------------------------------------------ running git

    def run(self, *args: str, input: bytes | None = None, env: dict | None = None,
            check: bool = True, remote: bool = False) -> subprocess.CompletedProcess:
        full_env = dict(self._env)
        if remote:
            full_env.update(self._remote_auth())
        if env:
            full_env.update(env)
        try:
            done = subprocess.run(["git", *args], cwd=self.root, input=input, env=full_env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=600)
        except FileNotFoundError:
            raise GitError("git is not installed on this runner") from None
        except subprocess.TimeoutExpired:
            raise GitError(f"git {args[0]} took longer than 10 minutes") from None
        if check and done.returncode != 0:
            message = done.stderr.decode("utf-8", "replace").strip().splitlines()
            detail = message[-1] if message else f"exit status {done.returncode}"
            raise GitError(self._redact(f"git {args[0]} failed: {detail}"))
        return done

    def text(self, *args: str, **kw) -> str:
        return self.run(*args, **kw).stdout.decode("utf-8", "replace")

    def line(self, *args: str, **kw) -> str:
        return self.text(*args, **kw).strip()

    def _remote_auth(self) -> dict[str, str]:
        if self._auth_env is not None:
            return self._auth_env
        self._auth_env = {}
        if not self._token:
            return self._auth_env
        url = self.run("remote", "get-url", REMOTE, check=False).stdout.decode("utf-8", "replace").strip()
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return self._auth_env
        configured = self.run("config", "--get-regexp", r"^http\..*\.extraheader$", check=False)
        if configured.returncode == 0 and configured.stdout.strip():
            return self._auth_env  # actions/checkout's persisted credentials
        basic = base64.b64encode(f"x-access-token:{self._token}".encode()).decode()
        netloc = parts.hostname + (f":{parts.port}" if parts.port else "")
        count = int(self._env.get("GIT_CONFIG_COUNT", "0") or 0)
        self._auth_env = {
            "GIT_CONFIG_COUNT": str(count + 1),
            f"GIT_CONFIG_KEY_{count}": f"http.{parts.scheme}://{netloc}/.extraheader",
            f"GIT_CONFIG_VALUE_{count}": f"AUTHORIZATION: basic {basic}",
        }
        return self._auth_env

    # ------------------------------------------------------------------ reading

    def toplevel(self) -> Path:
        return Path(self.line("rev-parse", "--show-toplevel"))

    def has_commit(self, sha: str) -> bool:
        if not sha or not re.fullmatch(r"[0-9a-fA-F]{4,64}", sha):
            return False
        return self.run("cat-file", "-e", f"{sha}^{{commit}}", check=False).returncode == 0

    def is_shallow(self) -> bool:
        return self.line("rev-parse", "--is-shallow-repository") == "true"

    def try_fetch(self, sha: str) -> None:
        """Fetch one commit that a shallow checkout lacks; failures are left to the caller."""
        if re.fullmatch(r"[0-9a-fA-F]{40,64}", sha or ""):
            depth = ["--depth=2"] if self.is_shallow() else []  # never make a full clone shallow
            self.run("fetch", "--quiet", "--no-tags", *depth, REMOTE, sha, check=False, remote=True)

    def first_parent(self, sha: str) -> str | None:
        parents = self.line("rev-list", "--parents", "-n", "1", sha).split()[1:]
        if not parents and self.is_shallow():
            self.run("fetch", "--quiet", "--no-tags", "--deepen=1", REMOTE, check=False, remote=True)
            parents = self.line("rev-list", "--parents", "-n", "1", sha).split()[1:]
        return parents[0] if parents else None

    def empty_tree(self) -> str:
        return self.line("hash-object", "-t", "tree", "/dev/null")

    def blob(self, commit: str, path: str) -> bytes | None:
        done = self.run("cat-file", "blob", f"{commit}:{path}", check=False)
        return done.stdout if done.returncode == 0 else None

    def tree_of(self, commit: str) -> str:
        return self.line("rev-parse", f"{commit}^{{tree}}")

    def changed_paths(self, base: str, head: str) -> list[str]:
        out = self.run("diff", "--name-only", "-z", "--no-renames", base, head).stdout
        return [p.decode("utf-8", "surrogateescape") for p in out.split(b"\0") if p]

    def diff(self, base: str, head: str) -> str:
        return self.text("diff", "--no-color", "--no-ext-diff", "--binary", base, head)

    # ------------------------------------------------------------------ the remote branch

    def remote_branch(self, branch: str) -> RemoteBranch:
        out = self.line("ls-remote", "--heads", REMOTE, f"refs/heads/{branch}", remote=True)
        for row in out.splitlines():
            sha, _, ref = row.partition("\t")
            if ref == f"refs/heads/{branch}":
                return RemoteBranch(branch, sha)
        return RemoteBranch(branch, None)

    def fetch_branch(self, branch: RemoteBranch) -> bool:
        """Bring the bot branch's tip and its parent here (both are needed to diff it)."""
        if not branch.sha:
            return False
        if self.has_commit(branch.sha) and self.run("rev-parse", "-q", "--verify", f"{branch.sha}^",
                                                    check=False).returncode == 0:
            return True
        depth = ["--depth=2"] if self.is_shallow() else []
        self.run("fetch", "--quiet", "--no-tags", *depth, REMOTE, f"refs/heads/{branch.name}",
                 check=False, remote=True)
        return self.has_commit(branch.sha)

    # ------------------------------------------------------------------ writing

    def _with_index(self, base: str, fill) -> str:
        with tempfile.TemporaryDirectory(prefix="adopter-index-") as folder:
            env = {"GIT_INDEX_FILE": os.path.join(folder, "index")}
            self.run("read-tree", base, env=env)
            fill(env)
            return self.line("write-tree", env=env)

    def commit_files(self, base: str, files: dict[str, bytes], message: str) -> str:
        """A commit on top of ``base`` whose tree is base's with ``files`` replaced or added."""
        modes = {}
        if files:
            listing = self.run("ls-tree", "-z", base, "--", *files).stdout
            for entry in listing.split(b"\0"):
                if entry:
                    meta, _, name = entry.partition(b"\t")
                    modes[name.decode("utf-8", "surrogateescape")] = meta.split()[0].decode()

        def fill(env):
            for path, data in sorted(files.items()):
                blob = self.line("hash-object", "-w", "--stdin", input=data)
                mode = modes.get(path, "100644")
                self.run("update-index", "--add", "--cacheinfo", f"{mode},{blob},{path}", env=env)

        tree = self._with_index(base, fill)
        return self.line("commit-tree", tree, "-p", base, "-F", "-", input=message.encode("utf-8"))

    def commit_patch(self, base: str, patch: bytes, message: str) -> str:
        """A commit on top of ``base`` with a unified diff applied (``git apply --cached``)."""

        def fill(env):
            self.run("apply", "--cached", "--whitespace=nowarn", "-", input=patch, env=env)

        tree = self._with_index(base, fill)
        if tree == self.tree_of(base):
            raise GitError("the patch changes nothing")
        return self.line("commit-tree", tree, "-p", base, "-F", "-", input=message.encode("utf-8"))

    def push(self, commit: str, branch: RemoteBranch, protected: set[str]) -> None:
        """Point the remote ``branch`` at ``commit``, only if it is still where we saw it."""
        name = branch.name
        if not name.startswith("adopter/") or name in protected:
            raise GitError(f"refusing to push to {name!r}: the bot only pushes its own adopter/* branch")
        lease = f"--force-with-lease=refs/heads/{name}:{branch.sha or ''}"
        done = self.run("push", "--porcelain", "--no-verify", lease, REMOTE, f"{commit}:refs/heads/{name}",
                        check=False, remote=True)
        if done.returncode != 0:
            text = self._redact((done.stdout + done.stderr).decode("utf-8", "replace"))
            if "stale info" in text or "rejected" in text:
                raise GitError(f"the branch {name} changed on the remote while the bot ran (another run?); "
                               "not overwritten. Re-run the workflow.")
            last = [ln for ln in text.strip().splitlines() if ln.strip()]
            raise GitError(f"git push of {name} failed: {last[-1] if last else 'no message'}")
