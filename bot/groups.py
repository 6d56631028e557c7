"""Slack user group membership for the permissions policy (:mod:`commands.policy`).

``commands`` never imports Slack: the policy is given a plain function, user id
in, group ids out, and caches its answers.  This module makes that function
from a Web API client.  A failed lookup answers "no groups" with a warning, so
a Slack outage denies group-granted actions and never crashes a listener.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection

from slack_sdk import WebClient
from slack_sdk.errors import SlackClientError

__all__ = ["slack_groups_of"]

log = logging.getLogger("untag.slack")


def slack_groups_of(
    client: WebClient, groups: Callable[[], Collection[str]] | None = None
) -> Callable[[str], frozenset[str]]:
    """A resolver of the user group ids a user belongs to.

    With ``groups`` (pass :meth:`Permissions.referenced_groups`), only those
    groups are asked, one ``usergroups.users.list`` each: a policy names a few
    groups, a workspace may have hundreds.  Without it, one ``usergroups.list``
    with ``include_users`` covers every group.  Needs the ``usergroups:read`` scope.
    """

    def groups_of(user: str) -> frozenset[str]:
        if groups is None:
            return _from_list(client, user)
        return frozenset(g for g in sorted(groups()) if user in _members(client, g))

    return groups_of


def _members(client: WebClient, group: str) -> frozenset[str]:
    try:
        response = client.usergroups_users_list(usergroup=group)
    except (SlackClientError, OSError) as exc:
        log.warning(
            "usergroups.users.list %s failed (%s); counted as not a member", group, _why(exc)
        )
        return frozenset()
    return frozenset(str(u) for u in response.get("users") or ())


def _from_list(client: WebClient, user: str) -> frozenset[str]:
    try:
        response = client.usergroups_list(include_users=True)
    except (SlackClientError, OSError) as exc:
        log.warning("usergroups.list failed (%s); counted as no groups", _why(exc))
        return frozenset()
    return frozenset(
        str(group["id"])
        for group in response.get("usergroups") or ()
        if user in (group.get("users") or ())
    )


def _why(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    error = response.get("error") if response is not None else None
    return str(error) if error else type(exc).__name__
