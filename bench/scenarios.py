"""The six tests: the same SCIM requests for every server, and what a correct answer looks like."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from bench.dataset import BIG_GROUP, SMALL_GROUP, user_name
from bench.load import RequestSpec

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
LABELS = {
    "filter": 'GET /Users?filter=userName eq "…"',
    "list": "GET /Users?startIndex=1&count=100",
    "post": "POST /Users (users/s)",
    "patch_big": "PATCH /Groups/{id} member, big group",
    "patch_small": "PATCH /Groups/{id} member, 10-member group",
    "group_filter": 'GET /Groups?filter=displayName eq "…"&excludedAttributes=members',
}


@dataclass
class Target:
    """A server as the tests see it: where its SCIM endpoints are and what was loaded."""

    name: str
    port: int
    base_path: str
    token: str
    users: int
    spares: list[str]
    groups: dict[str, dict[str, Any]]  # name -> {"id": ..., "members": ...}
    hello: bool = False  # the ceiling answers every request with 200 {"hello": "world"}


Check = Callable[[int, bytes], str | None]  # returns a problem, or None when the answer is right


def build(test: str, target: Target) -> tuple[RequestSpec, Check]:
    """Return the request spec of a test against a target and the check of a correct answer."""
    headers = {"Authorization": f"Bearer {target.token}", "Accept": "application/scim+json",
               "Content-Type": "application/scim+json", "User-Agent": "dpms-bench"}
    base = target.base_path
    if test == "filter":
        wanted = user_name(target.users // 2)
        path = f"{base}/Users?filter=" + quote(f'userName eq "{wanted}"')
        return RequestSpec("GET", path, headers), _list_check(target, 1, lambda r: (
            r["Resources"][0]["userName"] == wanted))
    if test == "list":
        path = f"{base}/Users?startIndex=1&count=100"
        return RequestSpec("GET", path, headers), _list_check(target, None, lambda r: (
            len(r["Resources"]) == 100 and r["totalResults"] >= target.users))
    if test == "post":
        run = secrets.token_hex(3)
        name = f"post-{run}-{{n}}@bench.example"
        body = json.dumps({"schemas": [USER_SCHEMA], "userName": name,
                           "externalId": f"x-{run}-{{n}}",
                           "name": {"givenName": "Posted", "familyName": f"User {run}"},
                           "displayName": f"Posted User {run}",
                           "emails": [{"value": name, "type": "work", "primary": True}],
                           "active": True})
        return RequestSpec("POST", f"{base}/Users", headers, (body,)), _status_check(target, 201)
    if test in ("patch_big", "patch_small"):
        group = target.groups[BIG_GROUP if test == "patch_big" else SMALL_GROUP]
        bodies = []
        for member in target.spares:
            bodies.append(json.dumps({"schemas": [PATCH_SCHEMA], "Operations": [
                {"op": "add", "path": "members", "value": [{"value": member}]}]}))
            bodies.append(json.dumps({"schemas": [PATCH_SCHEMA], "Operations": [
                {"op": "remove", "path": f'members[value eq "{member}"]'}]}))
        path = f"{base}/Groups/{group['id']}?excludedAttributes=members"
        return RequestSpec("PATCH", path, headers, tuple(bodies)), _status_check(target, 200, 204)
    if test == "group_filter":
        path = (f"{base}/Groups?filter=" + quote(f'displayName eq "{BIG_GROUP}"')
                + "&excludedAttributes=members")
        return RequestSpec("GET", path, headers), _list_check(target, 1, lambda r: (
            r["Resources"][0]["displayName"] == BIG_GROUP and "members" not in r["Resources"][0]))
    raise ValueError(test)


def _status_check(target: Target, *expected: int) -> Check:
    def check(status: int, body: bytes) -> str | None:
        wanted = (200,) if target.hello else expected
        return None if status in wanted else f"status {status}: {body[:300]!r}"
    return check


def _list_check(target: Target, total: int | None, ok: Callable[[dict[str, Any]], bool]) -> Check:
    def check(status: int, body: bytes) -> str | None:
        if status != 200:
            return f"status {status}: {body[:300]!r}"
        if target.hello:
            return None if json.loads(body) == {"hello": "world"} else f"unexpected {body[:100]!r}"
        try:
            doc = json.loads(body)
            if total is not None and doc["totalResults"] != total:
                return f"totalResults {doc['totalResults']} != {total}"
            return None if ok(doc) else f"unexpected answer {body[:300]!r}"
        except (ValueError, KeyError, IndexError) as exc:
            return f"unexpected answer ({exc}): {body[:300]!r}"
    return check
