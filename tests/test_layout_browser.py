"""Every portal screen in a real browser, at desktop and phone width, with long names in it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from portal.extensions import db
from portal.models import Account, Group, Membership, Organisation, utcnow
from portal.permissions import AUDITOR, MEMBER
from portal.services import role_grants, roles, scim_tokens
from portal.services.audit import CLI_ACTOR, Actor
from tests.conftest import Factory, screenshot
from tests.iam.helpers import support_account
from tests.test_shell_browser import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.sqlite_only]

LONG_USER = ("a.very.long.user.name.that.keeps.going.and.going.forever"
             "@subdomain.of.a.very-long-company-domain.example")
LONG_GROUP = "Engineering — Platform Infrastructure and Reliability Team (EMEA) and friends"
WIDTHS = {"desktop": (1366, 768), "phone": (390, 844)}


def _scim_token(app: Flask, org: Organisation) -> str:
    with app.app_context():
        token = scim_tokens.issue_token(db.session.get(Organisation, org.id), CLI_ACTOR).plaintext
        db.session.commit()
    return token


def _give_roles(app: Flask, org: Organisation, person: str) -> None:
    """A role by hand and a time-boxed grant: the person page's roles table gets its buttons."""
    with app.app_context():
        admin, member = (db.session.scalar(select(Membership).where(
            Membership.organisation_id == org.id, condition)) for condition in (
            Membership.account.has(Account.email == "it-admin@acme.example"),
            Membership.public_id == person))
        assert admin is not None and member is not None
        roles.grant_manual_role(member, roles.get_role(MEMBER), Actor.of(admin.account))
        role_grants.grant_role_until(admin, member, roles.get_role(AUDITOR),
                                     utcnow() + timedelta(hours=8), "Q4 ISO 27001 audit")
        db.session.commit()


def _provision_long_names(app: Flask, org: Organisation) -> tuple[str, str]:
    """Drive the SCIM API: users with long names, a long group, a deactivation and a failure."""
    token = _scim_token(app, org)
    scim = app.test_client()
    headers = {"Authorization": f"Bearer {token}", "User-Agent": "Okta SCIM Client 1.0.0"}
    base = f"/scim/v2/{org.key}"
    ids = []
    for user_name in (LONG_USER, "alice@acme.example", "bob@acme.example"):
        created = scim.post(f"{base}/Users", headers=headers, json={
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": user_name,
            "emails": [{"value": user_name, "primary": True}], "active": True})
        assert created.status_code == 201, created.data
        ids.append(created.json["id"])
    group = scim.post(f"{base}/Groups", headers=headers, json={
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": LONG_GROUP,
        "members": [{"value": i} for i in ids]})
    assert group.status_code == 201, group.data
    deactivated = scim.patch(f"{base}/Users/{ids[2]}", headers=headers, json={
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "value": {"active": False}}]})
    assert deactivated.status_code == 200
    assert scim.post(f"{base}/Users", headers=headers, json={"schemas": []}).status_code == 400
    with app.app_context():
        person = db.session.scalar(select(Membership.public_id).where(
            Membership.organisation_id == org.id, Membership.user_name == LONG_USER))
        team = db.session.scalar(select(Group.public_id).where(Group.organisation_id == org.id))
    assert person and team
    return person, team


def _check_page(page: Any, url: str, name: str) -> None:
    """Open a page; it fits the window, has one h1, a product title and loads every resource."""
    failed: list[str] = []

    def note(r: Any) -> None:
        if r.status >= 400:
            failed.append(r.url)

    page.on("response", note)
    response = page.goto(url)
    assert response is not None and response.status == 200, url
    page.wait_for_load_state("load")
    width = page.evaluate("document.documentElement.scrollWidth")
    client = page.evaluate("document.documentElement.clientWidth")
    screenshot(page, name)
    assert width <= client, f"{url} is {width}px wide in a {client}px window"
    assert page.locator("h1").count() == 1, url
    assert page.title().endswith(" · Priverion DPMS"), page.title()
    page.remove_listener("response", note)
    assert failed == [], f"{url} loaded {failed}"  # e.g. no /favicon.ico 404


@pytest.mark.parametrize("size", WIDTHS)
def test_long_names_urls_and_tables_never_widen_any_page(
    app: Flask, factory: Factory, live_server: str, browser: Any, size: str
) -> None:
    org = factory.org("Acme Corp")
    factory.it_admin(org)
    person, team = _provision_long_names(app, org)
    _give_roles(app, org, person)
    support_account(app, "support@vendor.example")
    width, height = WIDTHS[size]
    pages = {
        "it-admin@acme.example": [
            ("/", "home"), ("/people/", "people"), (f"/people/{person}", "person-long"),
            ("/groups/", "groups"), (f"/groups/{team}", "group-long"),
            ("/settings/general", "general"), ("/settings/audit", "audit-log"),
            ("/settings/iam/scim", "scim"), ("/settings/iam/scim/activity", "activity"),
            ("/settings/iam/scim/report", "report"), ("/settings/iam/scim/token/rotate", "rotate"),
            ("/settings/iam/sso", "sso"), ("/notifications", "notifications"),
            ("/account/password", "account-password")],
        "support@vendor.example": [("/support/rollout", "support-rollout"),
                                   (f"/support/rollout/{org.key}/withdraw", "support-withdraw")],
    }
    for email, paths in pages.items():
        context = browser.new_context(viewport={"width": width, "height": height})
        try:
            page = context.new_page()
            page.set_default_timeout(10_000)
            sign_in(page, live_server, email)
            for path, name in paths:
                _check_page(page, live_server + path, f"layout-{size}-{name}")
        finally:
            context.close()


UNBROKEN = "Maximilianeunterbergerschmidt" * 10  # 290 characters, no space: the API takes it


def test_an_unbroken_name_from_the_idp_wraps_and_leaves_every_column_in_view(
    app: Flask, factory: Factory, live_server: str, browser: Any
) -> None:
    org = factory.org("Acme Corp")
    factory.it_admin(org)
    token = _scim_token(app, org)
    scim, base = app.test_client(), f"/scim/v2/{org.key}"
    headers = {"Authorization": f"Bearer {token}"}
    user = scim.post(f"{base}/Users", headers=headers, json={
        "userName": "max@acme.example", "displayName": UNBROKEN})
    assert user.status_code == 201, user.data
    group = scim.post(f"{base}/Groups", headers=headers, json={
        "displayName": UNBROKEN, "members": [{"value": user.json["id"]}]})
    assert group.status_code == 201, group.data
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        page = context.new_page()
        page.set_default_timeout(10_000)
        sign_in(page, live_server, "it-admin@acme.example")
        for path, name in (("/people/", "people"), ("/groups/", "groups")):
            page.goto(live_server + path)
            screenshot(page, f"unbroken-name-{name}")
            hidden = page.evaluate("""() => {
                const box = document.querySelector('.table-scroll, .listing')
                    .getBoundingClientRect();
                return [...document.querySelectorAll('table thead th')]
                    .filter(th => th.getBoundingClientRect().right > box.right + 1)
                    .map(th => th.textContent.trim());
            }""")
            assert hidden == [], f"{path}: columns out of view: {hidden}"
            select = page.locator("#people-group")
            if select.count():
                assert select.bounding_box()["width"] <= 22 * 16 + 1
    finally:
        context.close()
