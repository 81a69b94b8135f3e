"""Two write requests of one organisation that meet on PostgreSQL: no deadlock, no stray row.

Each request is held right after it has locked its own resource (the User or the Group
it was sent to) until the other has locked its own too. Then the User's request goes on
first; the Group's waits until the database shows a request waiting for a lock (the
User's, for a row the Group's holds), so the User's has done whatever it does before it
waits. On PostgreSQL, locking the same rows in opposite orders then deadlocks, and the
victim's IdP gets a 503. SQLite runs one write request at a time, so these are
PostgreSQL-only.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select, text

from portal.extensions import db
from portal.models import Group, GroupMember, Membership
from portal.services import scim_groups, scim_users
from tests.scim.conftest import Scim

pytestmark = pytest.mark.postgres_only


@dataclass
class Hold:
    """Where the requests are held; `group_goes_on` runs before the Group's request goes on."""

    barrier: threading.Barrier
    group_goes_on: Callable[[], None]


@pytest.fixture
def held(monkeypatch: pytest.MonkeyPatch) -> Iterator[Hold]:
    """Hold a request after its first lock (User or Group) until the other one has its own."""
    hold = Hold(threading.Barrier(2, timeout=30), lambda: _until_a_request_waits_for_a_lock())
    get_user, get_group = scim_users.get_user, scim_groups.get_group

    def user_then_wait(*args: Any, **kwargs: Any) -> Any:
        found = get_user(*args, **kwargs)
        if kwargs.get("for_update"):
            hold.barrier.wait()
        return found

    def group_then_wait(*args: Any, **kwargs: Any) -> Any:
        found = get_group(*args, **kwargs)
        if kwargs.get("for_update"):
            hold.barrier.wait()
            hold.group_goes_on()
        return found

    monkeypatch.setattr(scim_users, "get_user", user_then_wait)
    monkeypatch.setattr(scim_groups, "get_group", group_then_wait)
    yield hold


def _until_a_request_waits_for_a_lock(limit: float = 10.0) -> None:
    """Return once another connection waits for a lock (or after `limit` s: it never will)."""
    deadline = time.monotonic() + limit
    with db.engine.connect() as watcher:
        while time.monotonic() < deadline:
            waiting = watcher.scalar(text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"))
            watcher.rollback()
            if waiting:
                return
            time.sleep(0.01)


def side_by_side(scim: Scim, *calls: Callable[[Scim], Any]) -> list[Any]:
    """Send the calls from threads of their own (own client, own session); return the replies."""
    replies: list[Any] = [None] * len(calls)

    def run(index: int) -> None:
        caller = Scim(scim.app, scim.app.test_client(), scim.org_id, scim.key, scim.token)
        replies[index] = calls[index](caller)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return replies


def _rows_of_deleted_users(app: Flask) -> list[tuple[str, str]]:
    with app.app_context():
        return [(u, g) for u, g in db.session.execute(
            select(Membership.user_name, Group.display_name)
            .join(GroupMember, GroupMember.membership_id == Membership.id)
            .join(Group, Group.id == GroupMember.group_id)
            .where(Membership.scim_deleted_at.is_not(None)))]


def test_deleting_a_user_while_their_group_removes_them_answers_both(
    app: Flask, scim: Scim, held: Hold
) -> None:
    user = scim.create_user("leaver@acme.example")["id"]
    stays = scim.create_user("stays@acme.example")["id"]
    group = scim.create_group("Finance", [user, stays])["id"]
    delete, patch = side_by_side(
        scim,
        lambda c: c.delete(f"/Users/{user}"),
        lambda c: c.patch(f"/Groups/{group}",
                          {"op": "remove", "path": f'members[value eq "{user}"]'}))
    assert delete.status_code == 204, delete.get_data(as_text=True)
    assert patch.status_code == 204, patch.get_data(as_text=True)
    assert scim.get(f"/Users/{user}").status_code == 404
    assert scim.group_member_ids(group) == {stays}


def test_deleting_a_user_while_their_group_is_replaced_answers_both(
    app: Flask, scim: Scim, held: Hold
) -> None:
    user = scim.create_user("leaver@acme.example")["id"]
    stays = scim.create_user("stays@acme.example")["id"]
    group = scim.create_group("Finance", [user])["id"]
    delete, put = side_by_side(
        scim,
        lambda c: c.delete(f"/Users/{user}"),
        lambda c: c.put(f"/Groups/{group}", {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": "Finance", "members": [{"value": stays}]}))
    assert delete.status_code == 204, delete.get_data(as_text=True)
    assert put.status_code == 200, put.get_data(as_text=True)
    assert scim.group_member_ids(group) == {stays}


def test_deleting_a_user_while_their_group_is_deleted_answers_both(
    app: Flask, scim: Scim, held: Hold
) -> None:
    user = scim.create_user("leaver@acme.example")["id"]
    group = scim.create_group("Finance", [user])["id"]
    delete_user, delete_group = side_by_side(
        scim, lambda c: c.delete(f"/Users/{user}"), lambda c: c.delete(f"/Groups/{group}"))
    assert delete_user.status_code == 204, delete_user.get_data(as_text=True)
    assert delete_group.status_code == 204, delete_group.get_data(as_text=True)
    assert scim.get(f"/Groups/{group}").status_code == 404
    with app.app_context():
        assert db.session.scalar(select(GroupMember.group_id)) is None


def test_adding_a_user_who_is_being_deleted_refuses_them_and_leaves_no_row(
    app: Flask, scim: Scim, held: Hold, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The add reads the person as live, then the delete commits before the add inserts.

    Without a lock the add kept a row for a deleted User: hidden from SCIM, and the
    group's roles back for them if the IdP created them again.
    """
    user = scim.create_user("leaver@acme.example")["id"]
    group = scim.create_group("Finance")["id"]
    deleted = threading.Event()
    resolve = scim_groups.resolve_members

    def resolve_then_wait(*args: Any) -> dict[str, int]:
        found = resolve(*args)
        assert deleted.wait(30)
        return found

    monkeypatch.setattr(scim_groups, "resolve_members", resolve_then_wait)
    held.group_goes_on = lambda: None

    def delete_user(c: Scim) -> Any:
        reply = c.delete(f"/Users/{user}")
        deleted.set()
        return reply

    delete, patch = side_by_side(
        scim,
        delete_user,
        lambda c: c.patch(f"/Groups/{group}",
                          {"op": "add", "path": "members", "value": [{"value": user}]}))
    assert delete.status_code == 204, delete.get_data(as_text=True)
    assert patch.status_code == 400, patch.get_data(as_text=True)
    assert "not Users of this organisation" in patch.get_json()["detail"]
    assert user in patch.get_json()["detail"]
    assert scim.group_member_ids(group) == set()
    assert _rows_of_deleted_users(app) == []


def test_two_deletes_of_members_of_the_same_groups_answer_both(
    app: Flask, scim: Scim, held: Hold
) -> None:
    first = scim.create_user("first@acme.example")["id"]
    second = scim.create_user("second@acme.example")["id"]
    groups = [scim.create_group(name, [first, second])["id"] for name in ("A", "B", "C")]
    replies = side_by_side(scim, lambda c: c.delete(f"/Users/{first}"),
                           lambda c: c.delete(f"/Users/{second}"))
    assert [r.status_code for r in replies] == [204, 204]
    assert all(scim.group_member_ids(g) == set() for g in groups)
    with app.app_context():
        versions = list(db.session.scalars(select(Group.version).order_by(Group.id)))
    assert versions == [3, 3, 3]  # created (1), then one step per deleted member


def test_a_delete_that_comes_while_an_add_holds_the_person_waits_and_removes_the_new_row(
    app: Flask, scim: Scim, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The add has checked the person is live; a delete arrives before the add inserts.

    The add holds the person (FOR SHARE) until it commits, so the delete waits, then finds
    the new row and removes it. Without the hold the delete went first and the add kept a
    row for a deleted User.
    """
    user = scim.create_user("leaver@acme.example")["id"]
    group = scim.create_group("Finance")["id"]
    held_now = threading.Event()
    hold = scim_groups._hold_as_users

    def hold_then_wait_for_the_delete(member_ids: Any) -> None:
        hold(member_ids)
        held_now.set()
        _until_a_request_waits_for_a_lock()  # the delete, waiting for this add to commit

    monkeypatch.setattr(scim_groups, "_hold_as_users", hold_then_wait_for_the_delete)

    def delete_user(c: Scim) -> Any:
        assert held_now.wait(30)
        return c.delete(f"/Users/{user}")

    patch, delete = side_by_side(
        scim,
        lambda c: c.patch(f"/Groups/{group}",
                          {"op": "add", "path": "members", "value": [{"value": user}]}),
        delete_user)
    assert patch.status_code == 204, patch.get_data(as_text=True)
    assert delete.status_code == 204, delete.get_data(as_text=True)
    assert scim.group_member_ids(group) == set()
    assert _rows_of_deleted_users(app) == []
