"""Concurrency over real HTTP: gunicorn with 3 worker processes x 4 threads, on both databases.

Requests are released together by a barrier, so they really overlap in several
processes. Each test checks the outcome in the database, and that the server logged
no error (no "database is locked", no traceback).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from flask import Flask
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import Account, AuditEvent, Group, Membership, Organisation, Role, ScimToken
from portal.permissions import IT_ADMINISTRATOR, MEMBER
from portal.services import scim_tokens
from portal.services.audit import CLI_ACTOR
from tests.conftest import PASSWORD, Factory
from tests.scim.conftest import Scim
from tests.security.conftest import PortalSession, Reply, Server, send

T = TypeVar("T")
PARALLEL = 20


def together(count: int, work: Callable[[int], T]) -> list[T]:
    """Run work(0..count-1) in `count` threads released at the same moment."""
    barrier = threading.Barrier(count)

    def run(index: int) -> T:
        barrier.wait(timeout=60)
        return work(index)

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(run, range(count)))


def scim_call(server: Server, scim: Scim, method: str, path: str, body: Any = None,
              token: str | None = None) -> Reply:
    """Call the organisation's SCIM API on the real server."""
    return send(f"{server.url}/scim/v2/{scim.key}{path}", method, body=body,
                headers={"Authorization": f"Bearer {token or scim.token}",
                         "User-Agent": "race-test/1.0"})


def assert_clean_logs(server: Server) -> None:
    """Assert the server logged no error: nothing locked, nothing unhandled, no 5xx."""
    logs = server.logs()
    assert "database is locked" not in logs
    assert "Traceback" not in logs and "unhandled error" not in logs
    assert '" 500 ' not in logs and '" 503 ' not in logs


def _count(app: Flask, query: Any) -> int:
    with app.app_context():
        return int(db.session.scalar(query) or 0)


def test_parallel_creates_of_one_user_name_in_any_case_make_exactly_one_user(
    app: Flask, scim: Scim, gunicorn: Server
) -> None:
    name = "raceuser@acme.example"
    spellings = ["".join(c.upper() if (i >> k) & 1 else c for k, c in enumerate(name))
                 for i in range(PARALLEL)]
    assert len(set(spellings)) == PARALLEL
    replies = together(PARALLEL, lambda i: scim_call(
        gunicorn, scim, "POST", "/Users", {"userName": spellings[i], "displayName": f"R{i}"}))
    statuses = sorted(r.status for r in replies)
    assert statuses == [201] + [409] * (PARALLEL - 1), statuses
    for reply in replies:
        if reply.status == 409:
            assert reply.json()["scimType"] == "uniqueness"
    assert _count(app, select(func.count()).select_from(Membership).where(
        Membership.organisation_id == scim.org_id, Membership.user_name_lower == name)) == 1
    assert _count(app, select(func.count()).select_from(Account).where(Account.email == name)) == 1
    assert _count(app, select(func.count()).select_from(AuditEvent).where(
        AuditEvent.action == "member.provisioned")) == 1
    assert_clean_logs(gunicorn)


def test_parallel_patches_adding_different_members_to_one_group_keep_every_member(
    app: Flask, scim: Scim, gunicorn: Server
) -> None:
    people = [scim.create_user(f"p{n}@acme.example")["id"] for n in range(PARALLEL)]
    group = scim.create_group("Race group")
    replies = together(PARALLEL, lambda i: scim_call(
        gunicorn, scim, "PATCH", f"/Groups/{group['id']}",
        {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
         "Operations": [{"op": "add", "path": "members", "value": [{"value": people[i]}]}]}))
    assert [r.status for r in replies] == [204] * PARALLEL
    assert scim.group_member_ids(group["id"]) == set(people)
    listed = scim_call(gunicorn, scim, "GET", f"/Groups/{group['id']}").json()
    assert {m["value"] for m in listed["members"]} == set(people)
    with app.app_context():
        version = db.session.scalar(select(Group.version).where(Group.public_id == group["id"]))
    assert version == 1 + PARALLEL  # every change counted: no lost update of the version
    assert _count(app, select(func.count()).select_from(AuditEvent).where(
        AuditEvent.action == "group.members_added")) == PARALLEL
    assert_clean_logs(gunicorn)


def test_parallel_token_rotations_leave_exactly_one_valid_token(
    app: Flask, scim: Scim, gunicorn: Server
) -> None:
    """Rotate as `flask scim rotate-token` does, from 8 threads with their own sessions."""

    def rotate(_: int) -> str:
        with app.app_context():
            org = db.session.get(Organisation, scim.org_id)
            assert org is not None
            issued = scim_tokens.issue_token(org, CLI_ACTOR)
            db.session.commit()
            return issued.plaintext

    issued = together(8, rotate)
    valid = [t for t in [scim.token, *issued]
             if scim_call(gunicorn, scim, "GET", "/Users", token=t).status == 200]
    assert len(valid) == 1
    with app.app_context():
        active = db.session.scalars(select(ScimToken).where(
            ScimToken.organisation_id == scim.org_id, ScimToken.revoked_at.is_(None))).all()
        assert [t.digest for t in active] == [scim_tokens.digest(valid[0])]
        assert db.session.scalar(select(func.count()).select_from(ScimToken)) == 9
    assert_clean_logs(gunicorn)


def test_parallel_rotations_from_the_portal_show_exactly_one_token_that_works(
    app: Flask, factory: Factory, scim: Scim, gunicorn: Server
) -> None:
    org = Organisation(id=scim.org_id, name="Acme Corp")
    factory.member(org, "it-admin@acme.example", IT_ADMINISTRATOR)
    sessions = [PortalSession(gunicorn.url) for _ in range(6)]
    for session in sessions:
        session.sign_in("it-admin@acme.example", PASSWORD)
    with app.app_context():
        token_id = db.session.scalar(select(ScimToken.id).where(
            ScimToken.organisation_id == scim.org_id, ScimToken.revoked_at.is_(None)))
    replies = together(len(sessions), lambda i: sessions[i].request(
        "POST", "/settings/iam/scim/token/rotate", {"token_id": str(token_id)},
        {"HX-Request": "true"}))
    assert sorted(r.status for r in replies) == [200] + [409] * (len(sessions) - 1)
    shown = {t for r in replies for t in re.findall(rb"dpms_scim_[A-Za-z0-9_-]{40,}", r.body)}
    assert len(shown) == 1
    new_token = shown.pop().decode()
    assert scim_call(gunicorn, scim, "GET", "/Users", token=new_token).status == 200
    assert scim_call(gunicorn, scim, "GET", "/Users").status == 401
    assert_clean_logs(gunicorn)


def test_concurrent_idp_and_portal_traffic_never_fails_with_database_locked(
    app: Flask, factory: Factory, scim: Scim, gunicorn: Server
) -> None:
    org = Organisation(id=scim.org_id, name="Acme Corp")
    factory.member(org, "it-admin@acme.example", IT_ADMINISTRATOR)
    manual = [factory.member(org, f"staff{n}@acme.example").public_id for n in range(3)]
    provisioned = [scim.create_user(f"idp{n}@acme.example")["id"] for n in range(3)]
    group = scim.create_group("Everyone")
    with app.app_context():
        member_role = db.session.scalar(select(Role.id).where(Role.name == MEMBER))
    rounds = 8

    def idp(worker: int) -> list[int]:
        statuses = []
        for n in range(rounds):
            created = scim_call(gunicorn, scim, "POST", "/Users",
                                {"userName": f"new{worker}-{n}@acme.example"})
            statuses.append(created.status)
            patch = {"Operations": [{"op": "add", "path": "members",
                                     "value": [{"value": created.json()["id"]}]}]}
            statuses.append(scim_call(gunicorn, scim, "PATCH", f"/Groups/{group['id']}",
                                      patch).status)
            statuses.append(scim_call(gunicorn, scim, "PATCH", f"/Users/{provisioned[worker]}",
                                      {"Operations": [{"op": "replace", "path": "title",
                                                       "value": f"T{n}"}]}).status)
            statuses.append(scim_call(gunicorn, scim, "GET", "/Users?count=5").status)
        return statuses

    def portal(worker: int) -> list[int]:
        session = PortalSession(gunicorn.url)
        session.sign_in("it-admin@acme.example", PASSWORD)
        statuses = []
        for n in range(rounds):
            statuses.append(session.request("POST", f"/people/{manual[worker]}/profile",
                                            {"title": f"Title {n}"}).status)
            action = "roles" if n % 2 == 0 else f"roles/{member_role}/revoke"
            form = {"role_id": str(member_role)} if n % 2 == 0 else {}
            statuses.append(session.request("POST", f"/people/{provisioned[worker]}/{action}",
                                            form, {"HX-Request": "true"}).status)
            statuses.append(session.request("GET", "/people/?q=new").status)
        return statuses

    results = together(6, lambda i: idp(i) if i < 3 else portal(i - 3))
    idp_statuses = [s for r in results[:3] for s in r]
    portal_statuses = [s for r in results[3:] for s in r]
    assert set(idp_statuses) <= {200, 201, 204}, idp_statuses
    assert set(portal_statuses) == {200}, portal_statuses  # redirects followed
    assert len(scim.group_member_ids(group["id"])) == 3 * rounds
    with app.app_context():
        titles = set(db.session.scalars(select(Membership.title).where(
            Membership.public_id.in_(manual))))
    assert titles == {f"Title {rounds - 1}"}
    assert_clean_logs(gunicorn)



def test_parallel_replacements_of_one_user_leave_exactly_one_of_them(
    app: Flask, scim: Scim, gunicorn: Server
) -> None:
    ann = scim.create_user("ann@acme.example", emails=[{"value": "old@acme.example"}])
    bodies = [{"userName": "ann@acme.example", "title": f"T{i}",
               "emails": [{"value": f"a{i}@acme.example", "type": "work"},
                          {"value": f"b{i}@acme.example", "type": "home"}]}
              for i in range(12)]
    replies = together(len(bodies), lambda i: scim_call(
        gunicorn, scim, "PUT", f"/Users/{ann['id']}", bodies[i]))
    assert [r.status for r in replies] == [200] * len(bodies)
    stored = scim_call(gunicorn, scim, "GET", f"/Users/{ann['id']}").json()
    winner = int(stored["title"][1:])
    assert [e["value"] for e in stored["emails"]] == [f"a{winner}@acme.example",
                                                      f"b{winner}@acme.example"]
    assert stored["meta"]["version"] == f'W/"{1 + len(bodies)}"'  # each change its own version
    assert sorted(r.json()["meta"]["version"] for r in replies) == sorted(
        f'W/"{1 + n}"' for n in range(1, len(bodies) + 1))
    assert_clean_logs(gunicorn)


def test_parallel_replacements_of_a_groups_members_leave_exactly_one_list(
    app: Flask, scim: Scim, gunicorn: Server
) -> None:
    people = [scim.create_user(f"p{n}@acme.example")["id"] for n in range(12)]
    group = scim.create_group("Race group", people[:3])
    lists = [people[i:i + 3] for i in range(0, 12, 2)]  # overlapping lists
    replies = together(len(lists), lambda i: scim_call(
        gunicorn, scim, "PUT", f"/Groups/{group['id']}",
        {"displayName": "Race group", "members": [{"value": p} for p in lists[i]]}))
    assert [r.status for r in replies] == [200] * len(lists)
    assert scim.group_member_ids(group["id"]) in [set(chosen) for chosen in lists]
    assert_clean_logs(gunicorn)
