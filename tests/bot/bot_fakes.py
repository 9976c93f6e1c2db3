"""A fake GitHub REST API on 127.0.0.1: just the endpoints the bot's PyGithub calls make.

It speaks real HTTP (``http.server`` in a thread), keeps pull requests in memory, records
every request with the time it arrived, answers with URLs on its own host (so PyGithub's
follow-up calls come back here), checks the token, and can be told to fail a route a number of
times (502s, 401s, secondary rate limits with ``Retry-After``).  Like GitHub it refuses a body
over 65,536 characters and a pull request whose base branch does not exist (``branches``: a
callable that says which exist, e.g. read from the bare origin).
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

PREFIX = "/api/v3"


@dataclass
class Request:
    method: str
    path: str  # without the prefix and query
    query: dict
    body: object
    authorization: str
    at: float = 0.0  # time.monotonic() when it arrived


@dataclass
class Failure:
    method: str
    pattern: str
    status: int
    times: int
    body: dict = field(default_factory=lambda: {"message": "Server Error"})
    after_handling: bool = False  # do the work, then answer with the failure (a lost response)
    headers: dict = field(default_factory=dict)


class FakeGitHub:
    def __init__(self, owner: str = "octo", name: str = "models", token: str = "ghs_fake_token_123",
                 default_branch: str = "main", branches=None):
        self.owner, self.name, self.token, self.default_branch = owner, name, token, default_branch
        self.branches = branches  # callable(name) -> bool, or None: every branch exists
        self.requests: list[Request] = []
        self.pulls: dict[int, dict] = {}
        self.failures: list[Failure] = []
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep pytest output clean
                pass

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                status, payload, extra = fake.handle(self.command, self.path, raw,
                                                     self.headers.get("Authorization", ""))
                data = json.dumps(payload).encode()
                self.send_response(status)
                for key, value in extra.items():
                    self.send_header(key, value)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("X-RateLimit-Limit", "5000")
                self.send_header("X-RateLimit-Remaining", "4999")
                self.send_header("X-RateLimit-Reset", "4102444800")
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.host = f"http://127.0.0.1:{self.port}"
        self.api_url = self.host + PREFIX
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> "FakeGitHub":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # ------------------------------------------------------------------ scripting and inspection

    def fail(self, method: str, pattern: str, status: int, times: int = 1, message: str = "Server Error",
             after_handling: bool = False, headers: dict | None = None, errors: list | None = None) -> None:
        body = {"message": message, **({"errors": errors} if errors else {})}
        self.failures.append(Failure(method, pattern, status, times, body, after_handling, dict(headers or {})))

    def calls(self, method: str | None = None, pattern: str = "") -> list[Request]:
        return [r for r in self.requests if (method is None or r.method == method) and re.search(pattern, r.path)]

    def add_pull(self, head: str, base: str, body: str, title: str = "someone's PR") -> dict:
        with self._lock:
            return self._new_pull({"head": head, "base": base, "body": body, "title": title})

    # ------------------------------------------------------------------ JSON shapes

    def repo_json(self) -> dict:
        api = f"{self.api_url}/repos/{self.owner}/{self.name}"
        return {
            "id": 1, "node_id": "R_1", "name": self.name, "full_name": f"{self.owner}/{self.name}",
            "private": False, "owner": {"login": self.owner, "id": 2, "type": "Organization",
                                        "url": f"{self.api_url}/users/{self.owner}"},
            "html_url": f"{self.host}/{self.owner}/{self.name}", "url": api, "pulls_url": api + "/pulls{/number}",
            "default_branch": self.default_branch,
        }

    def _pull_json(self, pull: dict) -> dict:
        api = f"{self.api_url}/repos/{self.owner}/{self.name}"
        number = pull["number"]
        return {
            "id": 1000 + number, "number": number, "state": pull["state"], "title": pull["title"],
            "body": pull["body"], "url": f"{api}/pulls/{number}",
            "html_url": f"{self.host}/{self.owner}/{self.name}/pull/{number}",
            "head": {"ref": pull["head"], "label": f"{self.owner}:{pull['head']}", "sha": "0" * 40,
                     "repo": self.repo_json()},
            "base": {"ref": pull["base"], "label": f"{self.owner}:{pull['base']}", "sha": "0" * 40,
                     "repo": self.repo_json()},
            "maintainer_can_modify": pull.get("maintainer_can_modify", False),
        }

    def _new_pull(self, data: dict) -> dict:
        number = len(self.pulls) + 1
        pull = {"number": number, "state": "open", "title": data.get("title", ""), "body": data.get("body", ""),
                "head": data["head"], "base": data["base"],
                "maintainer_can_modify": data.get("maintainer_can_modify", False)}
        self.pulls[number] = pull
        return pull

    # ------------------------------------------------------------------ routing

    def handle(self, method: str, raw_path: str, raw: bytes, authorization: str) -> tuple[int, object, dict]:
        parts = urlsplit(raw_path)
        path = parts.path[len(PREFIX):] if parts.path.startswith(PREFIX) else parts.path
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        with self._lock:
            self.requests.append(Request(method, path, query, body, authorization, time.monotonic()))
            failure = next((f for f in self.failures
                            if f.times > 0 and f.method == method and re.search(f.pattern, path)), None)
            if failure is not None:
                failure.times -= 1
                if not failure.after_handling:
                    return failure.status, failure.body, failure.headers
            if authorization.split(" ")[-1] != self.token:
                return 401, {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"}, {}
            answer = self._route(method, path, query, body)
            return (failure.status, failure.body, failure.headers) if failure is not None else (*answer, {})

    def _route(self, method, path, query, body):
        repo = f"/repos/{self.owner}/{self.name}"
        if path == repo and method == "GET":
            return 200, self.repo_json()
        if path == repo + "/pulls" and method == "GET":
            found = []
            for pull in self.pulls.values():
                if query.get("state", "open") not in ("all", pull["state"]):
                    continue
                if "head" in query and query["head"] != f"{self.owner}:{pull['head']}":
                    continue
                if "base" in query and query["base"] != pull["base"]:
                    continue
                found.append(self._pull_json(pull))
            return 200, found
        if isinstance(body, dict) and len(str(body.get("body") or "")) > 65536:
            return 422, {"message": "Validation Failed", "errors": [
                {"resource": "Issue", "code": "custom", "field": "body",
                 "message": "body is too long (maximum is 65536 characters)"}]}
        if path == repo + "/pulls" and method == "POST":
            if not isinstance(body, dict) or not {"head", "base", "title"} <= body.keys():
                return 422, {"message": "Validation Failed"}
            if self.branches is not None and not self.branches(body["base"]):
                return 422, {"message": "Validation Failed", "errors": [
                    {"resource": "PullRequest", "field": "base", "code": "invalid"}]}
            for pull in self.pulls.values():
                if pull["state"] == "open" and pull["head"] == body["head"] and pull["base"] == body["base"]:
                    return 422, {"message": "Validation Failed",
                                 "errors": [{"message": f"A pull request already exists for {body['head']}."}]}
            return 201, self._pull_json(self._new_pull(body))
        found = re.fullmatch(re.escape(repo) + r"/pulls/(\d+)", path)
        if found and int(found.group(1)) in self.pulls:
            pull = self.pulls[int(found.group(1))]
            if method == "GET":
                return 200, self._pull_json(pull)
            if method == "PATCH" and isinstance(body, dict):
                for key in ("title", "body", "state", "base"):
                    if key in body:
                        pull[key] = body[key]
                return 200, self._pull_json(pull)
        return 404, {"message": "Not Found"}
