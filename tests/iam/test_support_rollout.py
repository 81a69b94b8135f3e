"""The support rollout page: who may see it, what it lists, release and withdraw (audited)."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from portal.extensions import db
from portal.models import AuditEvent, Organisation
from portal.services import scim_tokens
from portal.services.audit import CLI_ACTOR
from tests.conftest import Factory, login
from tests.iam.helpers import SCIM_PAGE, post, support_account

ROLLOUT = "/support/rollout"


@pytest.fixture
def support(app: Flask, client: FlaskClient) -> FlaskClient:
    support_account(app, "sam@vendor.example")
    login(client, "sam@vendor.example")
    return client


def _rollout(app: Flask, org: Organisation) -> str:
    with app.app_context():
        fresh = db.session.get(Organisation, org.id)
        assert fresh is not None
        return fresh.scim_rollout


def _row(html: str, org: Organisation) -> str:
    match = re.search(rf'<tr data-org="{re.escape(org.key)}">(.*?)</tr>', html, re.S)
    assert match, f"no row for {org.name}"
    return match.group(1)


def test_support_page_lists_rollout_token_and_last_request_per_organisation(
    app: Flask, factory: Factory, support: FlaskClient
) -> None:
    acme, globex = factory.org("Acme Corp"), factory.org("Globex", released=False)
    with app.app_context():
        issued = scim_tokens.issue_token(db.session.get(Organisation, acme.id), CLI_ACTOR)
        scim_tokens.note_use(issued.record, "Okta SCIM Client 1.0.0")
        db.session.commit()
    response = support.get(ROLLOUT)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    acme_row, globex_row = _row(html, acme), _row(html, globex)
    assert "Released" in acme_row and "Yes, <time" in acme_row
    assert "Okta SCIM Client 1.0.0" in acme_row
    assert 'aria-label="Withdraw SCIM for Acme Corp"' in acme_row
    assert "Not released" in globex_row and "<td>No</td>" in globex_row
    assert "No requests received yet" in globex_row
    assert 'aria-label="Release SCIM for Globex"' in globex_row
    assert issued.plaintext not in html


def test_release_changes_the_state_and_is_audited_under_the_support_person(
    app: Flask, factory: Factory, support: FlaskClient
) -> None:
    globex = factory.org("Globex", released=False)
    response = post(support, f"{ROLLOUT}/{globex.key}/release")
    assert response.status_code == 302 and response.headers["Location"] == ROLLOUT
    assert _rollout(app, globex) == "released"
    assert b"SCIM is now released for Globex." in support.get(ROLLOUT).data
    with app.app_context():
        event = db.session.scalar(select(AuditEvent).where(
            AuditEvent.action == "scim.rollout_released"))
        assert event is not None and event.organisation_id == globex.id
        assert event.actor_label == "sam@vendor.example (Priverion support)"
        assert event.actor_account_id is not None


def test_withdraw_changes_the_state_and_the_screen_goes_quiet(
    app: Flask, factory: Factory, support: FlaskClient
) -> None:
    acme = factory.org("Acme Corp")
    post(support, f"{ROLLOUT}/{acme.key}/withdraw")
    assert _rollout(app, acme) == "pending"
    with app.app_context():
        actions = db.session.scalars(select(AuditEvent.action).where(
            AuditEvent.organisation_id == acme.id)).all()
        assert "scim.rollout_withdrawn" in actions
    factory.it_admin(acme)
    admin = app.test_client()
    login(admin, "it-admin@acme.example")
    assert b"not yet available for Acme Corp" in admin.get(SCIM_PAGE).data


def test_withdraw_asks_for_confirmation_in_a_dialog_and_on_a_page(
    factory: Factory, support: FlaskClient
) -> None:
    acme = factory.org("Acme Corp")
    html = support.get(ROLLOUT).get_data(as_text=True)
    dialog = re.search(rf'<dialog id="withdraw-dialog-{acme.id}"[^>]*>(.*?)</dialog>', html, re.S)
    assert dialog and f'aria-labelledby="withdraw-title-{acme.id}"' in dialog.group(0)
    assert "Withdraw SCIM for Acme Corp?" in dialog.group(1)
    assert "data-dialog-close" in dialog.group(1)
    page = support.get(f"{ROLLOUT}/{acme.key}/withdraw").get_data(as_text=True)
    assert "Withdraw SCIM for Acme Corp?" in page
    assert f'action="{ROLLOUT}/{acme.key}/withdraw"' in page and 'name="csrf_token"' in page


def test_repeating_a_release_changes_nothing_and_says_so(
    app: Flask, factory: Factory, support: FlaskClient
) -> None:
    acme = factory.org("Acme Corp")
    post(support, f"{ROLLOUT}/{acme.key}/release")
    assert b"SCIM was already released for Acme Corp." in support.get(ROLLOUT).data
    with app.app_context():
        assert db.session.scalar(select(AuditEvent).where(
            AuditEvent.action == "scim.rollout_released")) is None


@pytest.mark.parametrize("action", ["release", "withdraw"])
def test_rollout_change_without_csrf_is_refused(
    app: Flask, factory: Factory, support: FlaskClient, action: str
) -> None:
    org = factory.org("Acme Corp", released=action == "withdraw")
    before = _rollout(app, org)
    response = post(support, f"{ROLLOUT}/{org.key}/{action}", with_csrf=False)
    assert response.status_code == 400 and _rollout(app, org) == before


def test_unknown_organisation_key_is_404(support: FlaskClient) -> None:
    assert post(support, f"{ROLLOUT}/no-such-key/release").status_code == 404


@pytest.mark.parametrize("method,path", [
    ("get", ""), ("post", "/{key}/release"), ("post", "/{key}/withdraw"),
    ("get", "/{key}/withdraw"),
])
def test_it_administrators_cannot_use_the_support_page(
    app: Flask, client: FlaskClient, factory: Factory, method: str, path: str
) -> None:
    org = factory.org("Acme Corp", released=False)
    factory.it_admin(org)
    login(client, "it-admin@acme.example")
    url = ROLLOUT + path.format(key=org.key)
    response = post(client, url) if method == "post" else client.get(url)
    assert response.status_code == 403
    assert _rollout(app, org) == "pending"
