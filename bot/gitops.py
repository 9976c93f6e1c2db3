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
REGULAR_MODES = ("100644", "100755")
BOT_NAME = "github-actions[bot]"
BOT_EMAIL = "41898282+github-actions[bot]@users.noreply.github.com"


class GitError(BotError):
    pass


class StaleBranch(GitError):
    """The remote branch moved after the bot read it (another run pushed meanwhile)."""


def _command(args: tuple[str, ...]) -> str:
    """The git subcommand of an argument list (``-c key=value diff ...`` -> ``diff``)."""
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg == "-c":
            skip = True
        elif not arg.startswith("-"):
            return arg
    return args[0] if args else "git"


@dataclass(frozen=True)
class RemoteBranch:
    name: str
    sha: str | None  # None: the branch does not exist on the remote


class Git:
    def __init__(self, root: Path, token: str | None = None, redact=lambda s: s):
        self.root = Path(root)
        self._redact = redact
        self._env = dict(os.environ)
        # GIT_LITERAL_PATHSPECS: a path is a name, never a glob or a ':(magic)' pathspec.
        self._env.update({"GIT_TERMINAL_PROMPT": "0", "GIT_PAGER": "cat", "GIT_ASKPASS": "",
                          "GIT_OPTIONAL_LOCKS": "0", "GIT_LITERAL_PATHSPECS": "1"})
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
            raise GitError(f"git {_command(args)} took longer than 10 minutes") from None
        if check and done.returncode != 0:
            message = done.stderr.decode("utf-8", "replace").strip().splitlines()
            detail = message[-1] if message else f"exit status {done.returncode}"
            raise GitError(self._redact(f"git {_command(args)} failed: {detail}"))
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

    def entry(self, commit: str, path: str) -> tuple[str, str, int] | None:
        """(mode, object id, size) of ``path`` in ``commit``, or None when it is not there."""
        out = self.run("ls-tree", "-z", "--long", "--full-tree", commit, "--", path, check=False).stdout
        for item in out.split(b"\0"):
            meta, _, name = item.partition(b"\t")
            if name.decode("utf-8", "surrogateescape") == path:
                mode, kind, oid, size = meta.decode().split()
                return mode, oid, int(size) if size.isdigit() else 0
        return None

    def regular_blob(self, commit: str, path: str, limit: int) -> bytes | None:
        """The bytes of ``path`` in ``commit`` when it is a regular file (mode 100644 or 100755,
        never a symlink or submodule); None otherwise.  A file over ``limit`` bytes is not read:
        ``SourceError`` says so."""
        from adopter.source import SourceError

        found = self.entry(commit, path)
        if found is None or found[0] not in REGULAR_MODES:
            return None
        mode, oid, size = found
        if size > limit:
            raise SourceError(f"file is too large to analyse ({size / (1024 * 1024):.1f} MiB, "
                              f"limit {limit / (1024 * 1024):.1f} MiB)")
        done = self.run("cat-file", "blob", oid, check=False)
        return done.stdout if done.returncode == 0 else None

    def is_ancestor(self, older: str, newer: str) -> bool:
        return self.run("merge-base", "--is-ancestor", older, newer, check=False).returncode == 0

    def commit_time(self, commit: str) -> int:
        return int(self.line("show", "-s", "--format=%ct", commit))

    def parent(self, commit: str) -> str | None:
        done = self.run("rev-parse", "-q", "--verify", f"{commit}^", check=False)
        return done.stdout.decode().strip() or None if done.returncode == 0 else None

    def tree_of(self, commit: str) -> str:
        return self.line("rev-parse", f"{commit}^{{tree}}")

    def changed_paths(self, base: str, head: str) -> list[str]:
        out = self.run("diff", "--name-only", "-z", "--no-renames", base, head).stdout
        return [p.decode("utf-8", "surrogateescape") for p in out.split(b"\0") if p]

    def patch(self, base: str, head: str) -> bytes:
        """The unified diff of two commits, independent of the user's diff configuration."""
        return self.run("-c", "diff.noprefix=false", "-c", "diff.mnemonicPrefix=false", "diff", "--no-color",
                        "--no-ext-diff", "--no-textconv", "--binary", "--no-renames", "--src-prefix=a/",
                        "--dst-prefix=b/", base, head).stdout

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
                raise StaleBranch(f"the branch {name} changed on the remote while the bot ran (another run?); "
                               "not overwritten. Re-run the workflow.")
            last = [ln for ln in text.strip().splitlines() if ln.strip()]
            raise GitError(f"git push of {name} failed: {last[-1] if last else 'no message'}")

    def delete(self, branch: RemoteBranch, expected: str) -> bool:
        """Delete the remote ``adopter/*`` branch if it still points at ``expected``."""
        if not branch.name.startswith("adopter/"):
            return False
        lease = f"--force-with-lease=refs/heads/{branch.name}:{expected}"
        done = self.run("push", "--porcelain", "--no-verify", lease, REMOTE, f":refs/heads/{branch.name}",
                        check=False, remote=True)
        return done.returncode == 0
