"""A notification belongs to its organisation: shown, counted and opened only with access there."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from portal.auth import safe_next
from portal.extensions import db
from portal.models import Account, Membership, Notification, Organisation
from portal.permissions import IAM_MANAGE, MEMBER
from portal.services import notifications, roles
from tests.conftest import Factory, csrf_from, login

HTMX = {"HX-Request": "true"}
ACTIVITY = "/settings/iam/scim/activity?status=errors"


@pytest.fixture
def two_orgs(app: Flask, factory: Factory) -> dict[str, Organisation]:
    """Ada administers IAM in Acme Corp and Globex; each organisation told her one thing."""
    orgs = {"acme": factory.org("Acme Corp"), "globex": factory.org("Globex")}
    for org in orgs.values():
        factory.it_admin(org, "ada@acme.example")
    with app.app_context():
        ada = db.session.scalar(select(Account).where(Account.email == "ada@acme.example"))
        for name, org in orgs.items():
            notifications.notify(ada, f"{name} SCIM is failing", organisation=org,
                                 link=ACTIVITY, permission=IAM_MANAGE)
        notifications.notify(ada, "your own password changed")  # no organisation
        db.session.commit()
    return orgs


def _note_id(app: Flask, message: str) -> int:
    with app.app_context():
        found = db.session.scalar(select(Notification.id).where(Notification.message == message))
        assert found is not None
        return found


def _unread(app: Flask) -> set[str]:
    with app.app_context():
        return set(db.session.scalars(select(Notification.message)
                                      .where(Notification.read_at.is_(None))))


def _shown(client: FlaskClient) -> tuple[set[str], set[str], str | None]:
    """Return the messages of the page and of the HTMX dropdown, and the bell's count."""
    page = client.get("/notifications").get_data(as_text=True)
    fragment = client.get("/notifications", headers=HTMX).get_data(as_text=True)
    pattern = r"(\w+ SCIM is failing|your own password changed)"
    count = re.search(r'data-testid="unread-count">(\d+)<', page)
    return (set(re.findall(pattern, page)), set(re.findall(pattern, fragment)),
            count.group(1) if count else None)


def _working_in(client: FlaskClient) -> str:
    match = re.search(r"<h2>([^<]+)</h2>", client.get("/").get_data(as_text=True))
    assert match is not None
    return match.group(1)


def _set_membership(app: Flask, org: Organisation, *, active: bool = True,
                    role: str | None = None) -> None:
    with app.app_context():
        member = db.session.scalar(select(Membership).join(Account).where(
            Account.email == "ada@acme.example", Membership.organisation_id == org.id))
        assert member is not None
        member.active = active
        if role is not None:
            member.roles = [roles.get_role(role)]
        db.session.commit()


def test_a_reader_with_access_everywhere_sees_every_notice_with_its_organisation(
    client: FlaskClient, two_orgs: dict[str, Organisation]
) -> None:
    login(client, "ada@acme.example")
    everything = {"acme SCIM is failing", "globex SCIM is failing", "your own password changed"}
    assert _shown(client) == (everything, everything, "3")
    page = client.get("/notifications").get_data(as_text=True)
    assert page.count('data-testid="notification-org">Acme Corp<') == 1
    assert page.count('data-testid="notification-org">Globex<') == 1


def test_a_deactivated_membership_hides_that_organisations_notices(
    app: Flask, client: FlaskClient, two_orgs: dict[str, Organisation]
) -> None:
    _set_membership(app, two_orgs["acme"], active=False)
    login(client, "ada@acme.example")
    assert _working_in(client) == "Globex"
    visible = {"globex SCIM is failing", "your own password changed"}
    assert _shown(client) == (visible, visible, "2")
    assert client.get(f"/notifications/{_note_id(app, 'acme SCIM is failing')}").status_code \
        == 404
    token = csrf_from(client.get("/notifications").data)
    client.post("/notifications/read", data={"csrf_token": token})
    assert _unread(app) == {"acme SCIM is failing"}  # hidden, so not marked either
    assert _shown(client)[2] is None


def test_losing_the_iam_permission_hides_iam_notices_of_that_organisation(
    app: Flask, client: FlaskClient, two_orgs: dict[str, Organisation]
) -> None:
    _set_membership(app, two_orgs["acme"], role=MEMBER)
    login(client, "ada@acme.example")
    visible = {"globex SCIM is failing", "your own password changed"}
    assert _shown(client) == (visible, visible, "2")


def test_opening_another_organisations_notice_asks_and_then_switches_to_it(
    app: Flask, client: FlaskClient, two_orgs: dict[str, Organisation]
) -> None:
    login(client, "ada@acme.example")
    client.post("/switch-organisation", data={
        "organisation_id": two_orgs["globex"].id, "csrf_token": csrf_from(client.get("/").data)})
    assert _working_in(client) == "Globex"
    acme_note = _note_id(app, "acme SCIM is failing")
    page = client.get(f"/notifications/{acme_note}")
    assert page.status_code == 200 and "Switch to Acme Corp and open" in page.get_data(as_text=True)
    assert _working_in(client) == "Globex" and "acme SCIM is failing" in _unread(app)
    answer = client.post(f"/notifications/{acme_note}", data={"csrf_token": csrf_from(page.data)})
    assert answer.status_code == 302 and answer.headers["Location"] == ACTIVITY
    assert _working_in(client) == "Acme Corp"
    assert "acme SCIM is failing" not in _unread(app)


def test_switching_through_a_notice_needs_the_csrf_token(
    app: Flask, client: FlaskClient, two_orgs: dict[str, Organisation]
) -> None:
    login(client, "ada@acme.example")
    client.post("/switch-organisation", data={
        "organisation_id": two_orgs["globex"].id, "csrf_token": csrf_from(client.get("/").data)})
    assert client.post(f"/notifications/{_note_id(app, 'acme SCIM is failing')}").status_code \
        == 400
    assert _working_in(client) == "Globex"


def test_a_get_of_a_notice_of_the_current_organisation_follows_its_link_and_leaves_it_unread(
    app: Flask, client: FlaskClient, two_orgs: dict[str, Organisation]
) -> None:
    login(client, "ada@acme.example")
    assert _working_in(client) == "Acme Corp"
    answer = client.get(f"/notifications/{_note_id(app, 'acme SCIM is failing')}")
    assert answer.status_code == 302 and answer.headers["Location"] == ACTIVITY
    assert "acme SCIM is failing" in _unread(app)  # a GET changes nothing
    assert _working_in(client) == "Acme Corp"


def test_a_get_of_another_organisations_notice_neither_switches_nor_marks_it_read(
    app: Flask, client: FlaskClient, two_orgs: dict[str, Organisation]
) -> None:
    login(client, "ada@acme.example")
    page = client.get(f"/notifications/{_note_id(app, 'globex SCIM is failing')}")
    assert page.status_code == 200 and "Switch to Globex and open" in page.get_data(as_text=True)
    assert _working_in(client) == "Acme Corp"
    assert _unread(app) == {"acme SCIM is failing", "globex SCIM is failing",
                            "your own password changed"}


def test_opening_a_notice_by_post_with_the_csrf_token_marks_it_read(
    app: Flask, client: FlaskClient, two_orgs: dict[str, Organisation]
) -> None:
    login(client, "ada@acme.example")
    page = client.get("/notifications")
    note = _note_id(app, "acme SCIM is failing")
    # The list opens a notice with a POST form (CSRF token inside), not a plain link.
    assert f'<form class="notification-open" method="post" action="/notifications/{note}">' \
        in page.get_data(as_text=True)
    assert f'href="/notifications/{note}"' not in page.get_data(as_text=True)
    answer = client.post(f"/notifications/{note}", data={"csrf_token": csrf_from(page.data)})
    assert answer.status_code == 302 and answer.headers["Location"] == ACTIVITY
    assert _unread(app) == {"globex SCIM is failing", "your own password changed"}
    assert _working_in(client) == "Acme Corp"


def test_opening_a_notice_by_post_without_the_csrf_token_is_refused_and_changes_nothing(
    app: Flask, client: FlaskClient, two_orgs: dict[str, Organisation]
) -> None:
    login(client, "ada@acme.example")
    note = _note_id(app, "acme SCIM is failing")
    assert client.post(f"/notifications/{note}").status_code == 400
    assert client.post(f"/notifications/{note}", data={"csrf_token": "forged"}).status_code \
        == 400
    assert "acme SCIM is failing" in _unread(app)


def test_a_notice_without_a_link_is_shown_and_marked_read_only_by_its_button(
    app: Flask, client: FlaskClient, two_orgs: dict[str, Organisation]
) -> None:
    login(client, "ada@acme.example")
    note = _note_id(app, "your own password changed")
    page = client.get(f"/notifications/{note}")
    assert page.status_code == 200 and "Mark as read" in page.get_data(as_text=True)
    assert "your own password changed" in _unread(app)
    answer = client.post(f"/notifications/{note}", data={"csrf_token": csrf_from(page.data)})
    assert answer.status_code == 302 and answer.headers["Location"] == "/notifications"
    assert "your own password changed" not in _unread(app)


def test_someone_elses_notice_cannot_be_opened(
    app: Flask, client: FlaskClient, factory: Factory, two_orgs: dict[str, Organisation]
) -> None:
    factory.it_admin(two_orgs["acme"], "bea@acme.example")
    login(client, "bea@acme.example")
    assert _shown(client) == (set(), set(), None)
    note = _note_id(app, "acme SCIM is failing")
    assert client.get(f"/notifications/{note}").status_code == 404
    token = csrf_from(client.get("/").data)
    assert client.post(f"/notifications/{note}", data={"csrf_token": token}).status_code == 404
    assert "acme SCIM is failing" in _unread(app)


def test_another_organisations_notice_is_not_found_by_get_or_post(
    app: Flask, client: FlaskClient, factory: Factory, two_orgs: dict[str, Organisation]
) -> None:
    other = factory.org("Initech")
    factory.it_admin(other, "ian@initech.example")
    with app.app_context():
        ian = db.session.scalar(select(Account).where(Account.email == "ian@initech.example"))
        assert ian is not None
        notifications.notify(ian, "initech SCIM is failing", organisation=other, link=ACTIVITY,
                             permission=IAM_MANAGE)
        db.session.commit()
    login(client, "ada@acme.example")  # Ada belongs to Acme and Globex, not to Initech
    note = _note_id(app, "initech SCIM is failing")
    token = csrf_from(client.get("/").data)
    assert client.get(f"/notifications/{note}").status_code == 404
    assert client.post(f"/notifications/{note}", data={"csrf_token": token}).status_code == 404
    assert "initech SCIM is failing" in _unread(app)
    assert _working_in(client) == "Acme Corp"


def test_a_stored_link_to_another_site_is_never_followed() -> None:
    assert safe_next("/settings/iam/scim") == "/settings/iam/scim"
    for link in ("https://evil.example/", "//evil.example/x", "/\\evil.example", None, ""):
        assert safe_next(link) is None
