"""The one pull request, through PyGithub at ``GITHUB_API_URL``: find it, open it, update it.

The bot's pull request is the open one whose head is ``owner:adopter/<base>`` and whose body
carries the hidden marker; it is updated in place (PATCH), never duplicated.  An open pull
request on that branch without the marker belongs to someone else and is left alone.

Retries: 5xx answers and rate limits are retried with exponential backoff by PyGithub's
``GithubRetry`` (urllib3 ``Retry``) for reads and for the PATCH, which is idempotent; urllib3
waits out a ``Retry-After`` header (secondary rate limits) before it repeats.  A create (POST)
is not blindly repeated, because a 502 may hide a pull request that was made: after a failed
create the bot waits (``Retry-After`` when GitHub sent one, else a growing backoff), looks the
pull request up again and only then retries.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from github import Auth, Github, GithubException, GithubRetry
from github.GithubException import BadCredentialsException, RateLimitExceededException, UnknownObjectException
from urllib3.util.retry import Retry

from .actions import BotError
from .render import MARKER

RETRIES = 5
BACKOFF = 1.0  # seconds; urllib3 doubles it on each retry after the first
CREATE_ATTEMPTS = 3
MAX_WAIT = 300.0  # the longest Retry-After the bot waits out; longer ones end the run with a message


class ApiError(BotError):
    pass


@dataclass(frozen=True)
class PullRequest:
    number: int
    url: str  # html_url
    created: bool


def client(api_url: str, token: str | None) -> Github:
    options = dict(total=RETRIES, backoff_factor=BACKOFF, raise_on_status=False,
                   allowed_methods=Retry.DEFAULT_ALLOWED_METHODS | {"GET", "PATCH"})
    try:
        retry = GithubRetry(max_rate_limit_wait=300, **options)
    except TypeError:  # PyGithub before 2.9 has no cap on the rate-limit wait
        retry = GithubRetry(**options)
    auth = Auth.Token(token) if token else None
    return Github(base_url=api_url, auth=auth, retry=retry, timeout=30, per_page=100,
                  user_agent="adopter-bot")


def explain(exc: Exception, repository: str) -> str:
    """A GitHub API failure as one line a user can act on (never the token)."""
    if isinstance(exc, BadCredentialsException) or getattr(exc, "status", None) == 401:
        return ("GitHub rejected the token (401 Bad credentials). Pass a valid token as the github-token "
                "input (the default is the workflow's GITHUB_TOKEN).")
    if isinstance(exc, RateLimitExceededException):
        return "GitHub's API rate limit is exhausted and did not reset in time; re-run the workflow later."
    status = getattr(exc, "status", None)
    message = ""
    data = getattr(exc, "data", None)
    if isinstance(data, dict):
        message = str(data.get("message") or "")
    if isinstance(exc, UnknownObjectException) or status == 404:
        return (f"GitHub answered 404 for {repository}: the repository does not exist or the token cannot see "
                f"it. {message}".strip())
    if status == 403:
        return ("GitHub refused the request (403 Forbidden): the token needs `contents: write` and "
                "`pull-requests: write` (workflow permissions), and 'Allow GitHub Actions to create pull "
                f"requests' must be on in the repository settings. {message}".strip())
    if status == 422:
        errors = data.get("errors") if isinstance(data, dict) else None
        details = []
        for error in errors if isinstance(errors, list) else []:
            if isinstance(error, dict):
                if error.get("field") == "base" and error.get("code") == "invalid":
                    details.append("the base branch does not exist on GitHub (was it deleted?)")
                else:
                    details.append(str(error.get("message") or f"{error.get('field')} {error.get('code')}"))
            elif isinstance(error, str):
                details.append(error)
        return f"GitHub could not process the pull request (422 {message or 'Unprocessable'}): " + (
            "; ".join(details) or str(exc))
    if status is not None and status >= 500:
        return f"GitHub kept failing ({status}) after {RETRIES} retries; re-run the workflow later. {message}".strip()
    if isinstance(exc, GithubException):
        return f"GitHub API error {status}: {message or exc}"
    return f"cannot reach the GitHub API: {type(exc).__name__}: {exc}"


def rate_limit_wait(exc: GithubException) -> float | None:
    """Seconds to wait before repeating a request GitHub refused for a rate limit (403 or 429
    with ``Retry-After``, or a rate-limit message), None when it was refused for another reason."""
    if not isinstance(exc, RateLimitExceededException) and exc.status not in (403, 429):
        return None
    seconds = None
    headers = {str(k).lower(): v for k, v in (getattr(exc, "headers", None) or {}).items()}
    value = headers.get("retry-after")
    if value is not None:
        try:
            seconds = max(0.0, float(value))
        except ValueError:
            seconds = None
    if seconds is not None:
        return seconds
    data = getattr(exc, "data", None)
    message = str(data.get("message") or "") if isinstance(data, dict) else ""
    if isinstance(exc, RateLimitExceededException) or "rate limit" in message.lower():
        return 60.0  # GitHub's advice for a secondary limit without Retry-After: wait at least a minute
    return None


class Pulls:
    """The repository's pull requests as far as the bot needs them."""

    def __init__(self, api_url: str, token: str | None, repository: str, sleep=time.sleep):
        self.repository = repository
        self._sleep = sleep
        self._github = client(api_url, token)
        try:
            self._repo = self._github.get_repo(repository)
            self.default_branch = self._repo.default_branch
            self.owner = self._repo.owner.login if self._repo.owner else repository.split("/")[0]
        except Exception as exc:
            raise ApiError(explain(exc, repository)) from None

    def find(self, branch: str, base: str):
        """The bot's open pull request from ``branch`` into ``base``, or None.
        Raises when an open pull request on that branch is not the bot's."""
        try:
            for pull in self._repo.get_pulls(state="open", head=f"{self.owner}:{branch}"):
                if pull.head.ref != branch:
                    continue  # a server that ignores the head filter
                if MARKER in (pull.body or ""):
                    return pull
                raise ApiError(f"pull request #{pull.number} comes from {branch} but was not opened by the "
                               "Adopter bot (no marker in its body); not touching it or its branch")
        except ApiError:
            raise
        except Exception as exc:
            raise ApiError(explain(exc, self.repository)) from None
        return None

    def update(self, pull, title: str, body: str) -> PullRequest:
        try:
            pull.edit(title=title, body=body)
        except Exception as exc:
            raise ApiError(explain(exc, self.repository)) from None
        return PullRequest(pull.number, pull.html_url, created=False)

    def create(self, branch: str, base: str, title: str, body: str) -> PullRequest:
        delay = BACKOFF
        for attempt in range(1, CREATE_ATTEMPTS + 1):
            wait = delay
            try:
                pull = self._repo.create_pull(base=base, head=branch, title=title, body=body,
                                              maintainer_can_modify=True)
                return PullRequest(pull.number, pull.html_url, created=True)
            except GithubException as exc:
                limited = rate_limit_wait(exc)
                retryable = exc.status >= 500 or limited is not None
                if not retryable or attempt == CREATE_ATTEMPTS:
                    raise ApiError(explain(exc, self.repository)) from None
                if limited is not None:
                    if limited > MAX_WAIT:
                        raise ApiError(f"GitHub's secondary rate limit asks to wait {limited:.0f} s before the pull "
                                       "request can be opened; re-run the workflow later.") from None
                    wait = max(limited, delay)
            except Exception as exc:
                if attempt == CREATE_ATTEMPTS:
                    raise ApiError(explain(exc, self.repository)) from None
            self._sleep(wait)
            delay *= 2
            existing = self.find(branch, base)  # did the failed create go through after all?
            if existing is not None:
                return self.update(existing, title, body)
        raise AssertionError("unreachable")

    def open_or_update(self, existing, branch: str, base: str, title: str, body: str) -> PullRequest:
        if existing is not None:
            return self.update(existing, title, body)
        return self.create(branch, base, title, body)
