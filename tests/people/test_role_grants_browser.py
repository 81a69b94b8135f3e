"""In a real browser: an administrator grants IT Administrator for an hour; the auditor uses it."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask

from portal.extensions import db
from portal.models import Organisation
from portal.permissions import MEMBER
from portal.services import scim_tokens
from portal.services.audit import CLI_ACTOR
from tests.conftest import PASSWORD, Factory, FrozenClock, screenshot
from tests.people.grant_helpers import grants, public_id

pytestmark = pytest.mark.browser


def _shot(page: Any, name: str) -> None:
    page.evaluate("window.scrollTo(0, 0)")  # a scrolled full-page shot misplaces the top bar
    screenshot(page, name)


def _sign_in(page: Any, base: str, email: str) -> None:
    page.goto(f"{base}/login")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")


def _context(browser: Any, **options: Any) -> tuple[Any, Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, **options)
    page = context.new_page()
    page.set_default_timeout(10_000)
    return context, page


def test_admin_grants_it_administrator_for_an_hour_and_the_auditor_sees_the_status_block(
    browser: Any, live_server: str, app: Flask, factory: Factory, acme: Organisation,
    clock: FrozenClock
) -> None:
    clock.current = datetime.now(UTC).replace(second=0, microsecond=0)
    factory.member(acme, "audrey@acme.example", MEMBER)
    audrey = public_id(app, "audrey@acme.example")
    with app.app_context():
        scim_tokens.issue_token(db.session.get(Organisation, acme.id), CLI_ACTOR)
        db.session.commit()

    # The administrator, in Berlin, grants the role on Audrey's page (HTMX swaps it in place).
    admin_context, admin = _context(browser, timezone_id="Europe/Berlin")
    try:
        _sign_in(admin, live_server, "it-admin@acme.example")
        admin.click("nav.main-nav >> text=People")
        admin.click(f'#people-table tr[data-member="{audrey}"] a')
        admin.wait_for_url(f"{live_server}/people/{audrey}")
        assert re.fullmatch(r"\(your time, UTC\+0[12]:00\)",
                            admin.inner_text("[data-tz-hint]"))
        admin.select_option("#grant-until-role", label="IT Administrator")
        admin.select_option("#grant-preset", label="For one hour")
        assert admin.input_value("#grant-until")  # the preset previews its end
        admin.fill("#grant-reason", "Q4 ISO 27001 audit")
        admin.click("button:has-text('Grant until…')")
        source = admin.locator('tr[data-role="IT Administrator"][data-source="grant"]')
        source.wait_for()
        assert admin.url == f"{live_server}/people/{audrey}"  # swapped in place
        assert "expires in 1 h" in source.inner_text()
        assert "Q4 ISO 27001 audit" in source.inner_text()
        _shot(admin, "grant-on-member-page")
        admin.click("nav.main-nav >> text=People")
        pill = admin.locator(f'tr[data-member="{audrey}"] .pill-temporary')
        assert "IT Administrator" in pill.inner_text()
        _shot(admin, "grant-in-people-list")
    finally:
        admin_context.close()
    [grant] = grants(app)
    assert grant["role"] == "IT Administrator" and grant["reason"] == "Q4 ISO 27001 audit"
    assert (grant["until"] - clock.current).total_seconds() == 3600

    # Audrey, in her own browser, follows the user guide's audit steps.
    auditor_context, auditor = _context(browser)
    try:
        _sign_in(auditor, live_server, "audrey@acme.example")
        auditor.click("nav.main-nav >> text=IT Settings")
        iam = auditor.locator("nav.settings-nav details[data-nav-group]", has_text="Identity")
        if iam.get_attribute("open") is None:
            iam.locator("summary").click()
        iam.locator("a", has_text="SCIM").click()
        auditor.wait_for_url(f"{live_server}/settings/iam/scim")
        status = auditor.locator("#scim-status")
        status.wait_for()
        text = status.inner_text()
        assert "Status for auditors" in text
        assert re.search(r"Endpoint configured\s+Yes", text)
        assert re.search(r"Token issued\s+Yes", text)
        assert status.locator("button, input, form").count() == 0  # read-only
        _shot(auditor, "auditor-sees-scim-status")

        # An hour later the grant has run out: the very next request is refused.
        clock.advance(hours=1)
        auditor.reload()
        assert "403 Forbidden" in auditor.inner_text("main")
        _shot(auditor, "auditor-after-expiry")
    finally:
        auditor_context.close()


def test_granting_and_ending_early_work_without_javascript_in_utc(
    browser: Any, live_server: str, app: Flask, factory: Factory, acme: Organisation,
    clock: FrozenClock
) -> None:
    clock.current = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    factory.member(acme, "audrey@acme.example", MEMBER)
    audrey = public_id(app, "audrey@acme.example")
    context, page = _context(browser, java_script_enabled=False, timezone_id="Europe/Berlin")
    try:
        _sign_in(page, live_server, "it-admin@acme.example")
        page.goto(f"{live_server}/people/{audrey}")
        assert page.inner_text("[data-tz-hint]") == "(UTC)"  # no script: the time is UTC
        page.select_option("#grant-until-role", label="IT Administrator")
        page.fill("#grant-until", "2026-11-03T18:00")
        page.fill("#grant-reason", "Q4 ISO 27001 audit")
        page.click("button:has-text('Grant until…')")
        page.wait_for_url(f"{live_server}/people/{audrey}")
        assert "holds IT Administrator until 2026-11-03 18:00 UTC (expires in 33 h)" in \
            page.inner_text("#flash-area")
        [grant] = grants(app)
        assert grant["until"] == datetime(2026, 11, 3, 18, 0, tzinfo=UTC)
        page.click('tr[data-source="grant"] >> button:has-text("End now")')
        page.wait_for_url(f"{live_server}/people/{audrey}")
        assert "no longer holds IT Administrator" in page.inner_text("#flash-area")
        assert page.locator('tr[data-source="grant"]').count() == 0
        assert grants(app)[0]["end_reason"] == "ended early"
        _shot(page, "grant-ended-without-js")
    finally:
        context.close()
