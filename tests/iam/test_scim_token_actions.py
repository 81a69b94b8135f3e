"""Generating and rotating the SCIM token from the screen: state, secrecy, access, audit."""

from __future__ import annotations

import json
import logging

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from portal.extensions import db
from portal.models import AuditEvent, Notification, Organisation
from portal.services import scim_tokens
from tests.conftest import Factory, login
from tests.iam.helpers import (
    GENERATE,
    HTMX,
    ROTATE,
    SCIM_PAGE,
    active_tokens,
    post,
    rotate_form_token_id,
    shown_token,
    tokens,
)


@pytest.fixture
def org(factory: Factory) -> Organisation:
    return factory.org("Acme Corp")


@pytest.fixture
def admin(client: FlaskClient, factory: Factory, org: Organisation) -> FlaskClient:
    factory.it_admin(org)
    login(client, "it-admin@acme.example")
    return client


def _verifies(app: Flask, org: Organisation, plaintext: str) -> bool:
    with app.app_context():
        return scim_tokens.verify_token(org.key, plaintext) is not None


def _rotate(client: FlaskClient, *, htmx: bool = False) -> str:
    token_id = rotate_form_token_id(client.get(SCIM_PAGE).get_data(as_text=True))
    response = post(client, ROTATE, htmx=htmx, token_id=token_id)
    assert response.status_code == 200
    return shown_token(response.get_data(as_text=True))


@pytest.mark.parametrize("htmx", [False, True], ids=["plain", "htmx"])
def test_generate_issues_a_token_that_verifies_and_is_stored_only_as_a_digest(
    app: Flask, admin: FlaskClient, org: Organisation, htmx: bool
) -> None:
    response = post(admin, GENERATE, htmx=htmx)
    assert response.status_code == 200
    token = shown_token(response.get_data(as_text=True))
    assert _verifies(app, org, token)
    [row] = tokens(app, org)
    assert row.digest == scim_tokens.digest(token) and token not in (row.hint, row.digest)
    assert row.created_by_label == "it-admin@acme.example"


@pytest.mark.parametrize("htmx", [False, True], ids=["plain", "htmx"])
def test_token_showing_responses_are_never_stored(admin: FlaskClient, htmx: bool) -> None:
    generated = post(admin, GENERATE, htmx=htmx)
    assert shown_token(generated.get_data(as_text=True))
    assert generated.headers["Cache-Control"] == "no-store"
    token_id = rotate_form_token_id(admin.get(SCIM_PAGE).get_data(as_text=True))
    rotated = post(admin, ROTATE, htmx=htmx, token_id=token_id)
    assert shown_token(rotated.get_data(as_text=True))
    assert rotated.headers["Cache-Control"] == "no-store"
    assert admin.get(SCIM_PAGE).headers["Cache-Control"] == "no-store"  # the token lands here


def test_the_token_never_appears_in_any_later_response_record_or_cookie(
    app: Flask, admin: FlaskClient, org: Organisation, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    generated = shown_token(post(admin, GENERATE).get_data(as_text=True))
    rotated = _rotate(admin)
    later = [
        admin.get(SCIM_PAGE),
        admin.get(SCIM_PAGE, headers=HTMX),
        admin.get(ROTATE),
        admin.get("/settings/audit"),
        admin.get("/notifications"),
        admin.get("/notifications", headers=HTMX),
        admin.get("/"),
    ]
    for response in later:
        assert response.status_code == 200, response.request.path
        body = response.get_data(as_text=True)
        for secret in (generated, rotated):
            assert secret not in body, response.request.path
            assert secret not in str(response.headers)
    cookie = admin.get_cookie("session")
    assert cookie is not None
    with app.test_request_context():
        session_data = app.session_interface.get_signing_serializer(app).loads(cookie.value)
    for secret in (generated, rotated):
        assert secret not in cookie.value and secret not in json.dumps(session_data)
        assert secret not in caplog.text
    with app.app_context():
        events = db.session.scalars(select(AuditEvent)).all()
        notes = db.session.scalars(select(Notification)).all()
        stored = json.dumps([[e.actor_label, e.action, e.target_label, e.target_id, e.details]
                             for e in events] + [[n.message, n.link] for n in notes])
    assert generated not in stored and rotated not in stored
    assert generated[-12:] not in stored  # not even a long tail of it


def test_rotation_invalidates_the_old_token_immediately(
    app: Flask, admin: FlaskClient, org: Organisation
) -> None:
    old = shown_token(post(admin, GENERATE).get_data(as_text=True))
    new = _rotate(admin, htmx=True)
    assert new != old
    assert not _verifies(app, org, old)
    assert _verifies(app, org, new)


def test_two_rotations_leave_exactly_one_valid_token(
    app: Flask, admin: FlaskClient, org: Organisation
) -> None:
    first = shown_token(post(admin, GENERATE).get_data(as_text=True))
    second = _rotate(admin)
    third = _rotate(admin, htmx=True)
    assert [_verifies(app, org, t) for t in (first, second, third)] == [False, False, True]
    assert len(active_tokens(app, org)) == 1 and len(tokens(app, org)) == 3


def test_reload_after_generating_shows_only_the_hint(
    app: Flask, admin: FlaskClient, org: Organisation
) -> None:
    token = shown_token(post(admin, GENERATE).get_data(as_text=True))
    html = admin.get(SCIM_PAGE).get_data(as_text=True)
    assert token not in html and 'data-state="issued"' in html
    assert f"dpms_scim_…{token[-4:]}" in html


def test_generate_and_rotate_write_audit_events_with_actor_and_organisation(
    app: Flask, admin: FlaskClient, org: Organisation
) -> None:
    post(admin, GENERATE)
    _rotate(admin)
    with app.app_context():
        events = db.session.scalars(
            select(AuditEvent).where(AuditEvent.action.like("scim.token_%"))
            .order_by(AuditEvent.id)).all()
        assert [e.action for e in events] == ["scim.token_generated", "scim.token_rotated"]
        for event in events:
            assert event.organisation_id == org.id
            assert event.actor_label == "it-admin@acme.example"
            assert event.actor_account_id is not None
            assert event.target_type == "scim_token" and event.created_at is not None


def test_generate_when_a_token_exists_is_refused_and_keeps_the_token(
    app: Flask, admin: FlaskClient, org: Organisation
) -> None:
    token = shown_token(post(admin, GENERATE).get_data(as_text=True))
    again = post(admin, GENERATE)  # e.g. a stale page, or the browser resending the form
    assert again.status_code == 409
    html = again.get_data(as_text=True)
    assert "no new one was generated" in html and 'data-state="issued"' in html
    assert token not in html
    assert _verifies(app, org, token) and len(tokens(app, org)) == 1


@pytest.mark.parametrize("token_id", ["", "999999"], ids=["missing", "stale"])
def test_rotate_of_a_token_that_is_no_longer_current_changes_nothing(
    app: Flask, admin: FlaskClient, org: Organisation, token_id: str
) -> None:
    token = shown_token(post(admin, GENERATE).get_data(as_text=True))
    response = post(admin, ROTATE, htmx=True, token_id=token_id)
    assert response.status_code == 409
    assert response.headers["HX-Reswap"] == "outerHTML"
    assert b"The token changed since this page was loaded" in response.data
    assert _verifies(app, org, token) and len(tokens(app, org)) == 1


def test_resending_a_rotate_form_does_not_rotate_twice(
    app: Flask, admin: FlaskClient, org: Organisation
) -> None:
    post(admin, GENERATE)
    token_id = rotate_form_token_id(admin.get(SCIM_PAGE).get_data(as_text=True))
    shown = shown_token(post(admin, ROTATE, token_id=token_id).get_data(as_text=True))
    assert post(admin, ROTATE, token_id=token_id).status_code == 409
    assert _verifies(app, org, shown) and len(tokens(app, org)) == 2


@pytest.mark.parametrize("htmx", [False, True], ids=["plain", "htmx"])
@pytest.mark.parametrize("url", [GENERATE, ROTATE])
def test_post_without_csrf_is_refused_and_changes_nothing(
    app: Flask, admin: FlaskClient, org: Organisation, url: str, htmx: bool
) -> None:
    token = shown_token(post(admin, GENERATE).get_data(as_text=True)) if url == ROTATE else None
    token_id = str(tokens(app, org)[0].id) if token else ""
    response = post(admin, url, htmx=htmx, with_csrf=False, token_id=token_id)
    assert response.status_code == 400
    assert b"Nothing was changed" in response.data
    assert len(tokens(app, org)) == (1 if token else 0)
    if token:
        assert _verifies(app, org, token)


@pytest.fixture
def member(client: FlaskClient, factory: Factory, org: Organisation) -> FlaskClient:
    factory.member(org, "max@acme.example")
    login(client, "max@acme.example")
    return client


@pytest.mark.parametrize("method,url", [
    ("get", SCIM_PAGE), ("get", ROTATE), ("post", GENERATE), ("post", ROTATE),
])
@pytest.mark.parametrize("htmx", [False, True], ids=["page", "htmx"])
def test_member_without_iam_permission_gets_403_everywhere_and_changes_nothing(
    app: Flask, member: FlaskClient, org: Organisation, method: str, url: str, htmx: bool
) -> None:
    if method == "post":
        response = post(member, url, htmx=htmx, token_id="1")
    else:
        response = member.get(url, headers=HTMX if htmx else {})
    assert response.status_code == 403
    html = response.get_data(as_text=True)
    assert "403 Forbidden" in html
    assert ("<html" not in html) if htmx else ('class="topbar"' in html)
    assert "SCIM Base URL" not in html and org.key not in html
    assert tokens(app, org) == []


def test_support_staff_without_membership_cannot_use_the_screen(
    app: Flask, client: FlaskClient, org: Organisation
) -> None:
    from tests.iam.helpers import support_account

    support_account(app, "sam@vendor.example")
    login(client, "sam@vendor.example")
    assert client.get(SCIM_PAGE).status_code == 403
    assert post(client, GENERATE).status_code == 403
    assert tokens(app, org) == []


@pytest.fixture
def pending_admin(client: FlaskClient, factory: Factory) -> tuple[FlaskClient, Organisation]:
    globex = factory.org("Globex", released=False)
    factory.it_admin(globex, "ada@globex.example")
    login(client, "ada@globex.example")
    return client, globex


@pytest.mark.parametrize("htmx", [False, True], ids=["plain", "htmx"])
def test_generate_is_refused_while_scim_is_not_released(
    app: Flask, pending_admin: tuple[FlaskClient, Organisation], htmx: bool
) -> None:
    client, globex = pending_admin
    response = post(client, GENERATE, htmx=htmx)
    assert response.status_code == 409
    assert b"not yet available for Globex" in response.data
    assert b"dpms_scim_" not in response.data
    if htmx:
        assert response.headers["HX-Retarget"] == "#scim-main"
    assert tokens(app, globex) == []


def test_rotate_is_refused_after_scim_was_withdrawn(
    app: Flask, factory: Factory, admin: FlaskClient, org: Organisation
) -> None:
    from portal.services import organisations
    from portal.services.audit import CLI_ACTOR

    token = shown_token(post(admin, GENERATE).get_data(as_text=True))
    token_id = str(tokens(app, org)[0].id)
    with app.app_context():
        organisations.set_scim_rollout(db.session.get(Organisation, org.id), False, CLI_ACTOR)
        db.session.commit()
    response = post(admin, ROTATE, token_id=token_id)
    assert response.status_code == 409
    assert b"not yet available for Acme Corp" in response.data
    assert len(tokens(app, org)) == 1 and _verifies(app, org, token)


def test_rotation_notifies_the_other_iam_administrators_once(
    app: Flask, factory: Factory, admin: FlaskClient, org: Organisation
) -> None:
    factory.it_admin(org, "bea@acme.example")
    factory.member(org, "max@acme.example")
    factory.it_admin(factory.org("Other Corp"), "olga@other.example")
    post(admin, GENERATE)
    with app.app_context():
        assert db.session.query(Notification).count() == 0  # generating is not a rotation
    _rotate(admin)
    with app.app_context():
        notes = db.session.scalars(select(Notification)).all()
        assert [(n.account_id, n.organisation_id) for n in notes] == [
            (_account_id("bea@acme.example"), org.id)]
        assert notes[0].message.startswith(
            "The SCIM token of Acme Corp was rotated by it-admin@acme.example.")
        assert notes[0].link == SCIM_PAGE
        assert notes[0].dedupe_key == f"scim-token-rotated:{active_tokens(app, org)[0].id}"


def _account_id(email: str) -> int:
    from portal.services.accounts import find_account

    account = find_account(email)
    assert account is not None
    return account.id
