"""Which push is newer: the one the bot's branch was built from, or the one this run analyses.

The bot's commit always sits directly on the push it was built from, so the branch's tip's
parent names that push.  A run never moves the branch (and the pull request) back onto an
older push: an older run that finishes after a newer one (a re-run, runs out of order)
leaves both alone, and a newer run always updates them.

Ancestry decides first.  Where it cannot (a force push rewrote history, or a shallow checkout
lacks the commits in between), the base branch's current tip on the remote does: the push it
names is the newest.  Failing both, the later committer date wins.
"""

from __future__ import annotations

from enum import Enum

from .gitops import Git, GitError


class Order(Enum):
    SAME = "same"  # a re-run for the push the branch was built from
    NEWER = "newer"  # this run's push is newer: update
    OLDER = "older"  # the branch was built from a newer push: leave it


def order(git: Git, built_from: str | None, ours: str, base_tip: str | None) -> Order:
    """This run's push (``ours``) relative to the one the bot branch was ``built_from``."""
    if not built_from:
        return Order.NEWER
    if built_from == ours:
        return Order.SAME
    if git.is_ancestor(built_from, ours):
        return Order.NEWER
    if git.is_ancestor(ours, built_from):
        return Order.OLDER
    if base_tip == ours:
        return Order.NEWER
    if base_tip == built_from:
        return Order.OLDER
    try:
        return Order.NEWER if git.commit_time(ours) >= git.commit_time(built_from) else Order.OLDER
    except GitError:
        return Order.NEWER
