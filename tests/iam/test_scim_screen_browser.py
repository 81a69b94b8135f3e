"""The SCIM screen in a real headless Chromium: copy, generate, reload, rotate, cancel, 403."""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from typing import Any

import pytest
from flask import Flask

from portal.extensions import db
from portal.models import Organisation
from portal.services import scim_tokens
from portal.services.audit import CLI_ACTOR
from tests.conftest import PASSWORD, SCREENSHOTS, Factory, screenshot
from tests.iam.helpers import support_account

pytestmark = pytest.mark.browser


def _sign_in(page: Any, live_server: str, email: str) -> None:
    page.goto(f"{live_server}/login")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server}/")


def _shot(page: Any, name: str, *, full_page: bool = True) -> None:
    """Save a screenshot from the top of the page (the top bar is sticky)."""
    if full_page:
        page.evaluate("window.scrollTo(0, 0)")
        screenshot(page, name)
    else:  # a modal dialog and its backdrop cover the viewport only
        os.makedirs(SCREENSHOTS, exist_ok=True)
        page.screenshot(path=os.path.join(SCREENSHOTS, f"{name}.png"))


def _verifies(live_server: str, org: Organisation, plaintext: str) -> bool:
    """Ask the real SCIM API over HTTP whether the token is accepted (200) or not (401)."""
    request = urllib.request.Request(
        f"{live_server}/scim/v2/{org.key}/Users?count=1",
        headers={"Authorization": f"Bearer {plaintext}", "User-Agent": "Browser-test IdP"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return bool(response.status == 200)
    except urllib.error.HTTPError as error:
        assert error.code == 401, error.code
        return False


def _no_horizontal_overflow(page: Any) -> bool:
    return bool(page.evaluate(
        "document.documentElement.scrollWidth <= document.documentElement.clientWidth"))


def test_it_admin_copies_generates_reloads_and_rotates_in_the_browser(
    app: Flask, factory: Factory, live_server: str, page: Any
) -> None:
    org = factory.org("Acme Corp")
    factory.it_admin(org)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server)
    _sign_in(page, live_server, "it-admin@acme.example")
    page.goto(f"{live_server}/settings/iam/scim")
    assert page.get_attribute("nav.settings-nav a[aria-current=page]", "href") == \
        "/settings/iam/scim"
    assert page.locator("[aria-label=Breadcrumb]").count() == 0
    _shot(page, "scim-1-no-token")

    # Copy the Base URL: the clipboard holds it and "Copied" is announced.
    base_url = page.input_value("#scim-base-url")
    assert base_url == f"https://dpms.test/scim/v2/{org.key}"
    page.click("button[aria-label='Copy SCIM Base URL']")
    status = page.locator("#scim-base-url ~ [data-copy-status]")
    status.filter(has_text="Copied").wait_for()
    assert page.evaluate("navigator.clipboard.readText()") == base_url

    # Generate: the token appears once, with the warning, focused, and it works.
    page.click("text=Generate Token")
    token_field = page.locator("#scim-new-token")
    token_field.wait_for()
    token = token_field.input_value()
    assert token.startswith("dpms_scim_") and _verifies(live_server, org, token)
    assert page.locator("#token-warning").is_visible()
    assert page.evaluate("document.activeElement.id") == "scim-new-token"
    page.locator("#scim-status").filter(has_text="on ").wait_for()  # auditor block refreshed
    page.click("button[aria-label='Copy bearer token']")
    page.locator("#scim-new-token ~ [data-copy-status]").filter(has_text="Copied").wait_for()
    assert page.evaluate("navigator.clipboard.readText()") == token
    _shot(page, "scim-2-token-shown")

    # Leave and come back, then reload: the token is gone for good; only its hint remains.
    page.click("text=Open the SSO configuration")
    page.wait_for_url("**/settings/iam/sso")
    page.go_back()
    page.locator("[data-testid=token-hint]").wait_for()
    assert token not in page.content()
    page.reload()
    assert token not in page.content()
    assert page.locator("[data-testid=token-hint]").inner_text() == f"dpms_scim_…{token[-4:]}"
    _shot(page, "scim-3-token-issued")

    # Rotate → dialog → Escape and Cancel change nothing.
    rotate = page.locator("a", has_text="Rotate Token")
    rotate.click()
    dialog = page.locator("#rotate-dialog")
    dialog.wait_for(state="visible")
    assert page.evaluate("document.activeElement.closest('dialog')?.id") == "rotate-dialog"
    assert page.evaluate("document.activeElement.textContent") == "Cancel"
    _shot(page, "scim-4-rotate-dialog", full_page=False)
    page.keyboard.press("Escape")
    dialog.wait_for(state="hidden")
    assert page.evaluate("document.activeElement.textContent") == "Rotate Token"
    rotate.click()
    dialog.wait_for(state="visible")
    dialog.locator("button", has_text="Cancel").click()
    dialog.wait_for(state="hidden")
    assert _verifies(live_server, org, token)
    assert page.locator("[data-testid=token-hint]").inner_text() == f"dpms_scim_…{token[-4:]}"

    # Rotate → Confirm: the old token stops working at once, the new one works.
    rotate.click()
    dialog.locator("button", has_text="Rotate token now").click()
    page.locator("#scim-new-token").wait_for()
    new_token = page.input_value("#scim-new-token")
    assert new_token != token
    assert not _verifies(live_server, org, token)
    assert _verifies(live_server, org, new_token)
    assert "stopped working" in page.locator("#scim-token-panel").inner_text()
    _shot(page, "scim-5-token-rotated")

    # "I have stored the token" returns the panel to its issued state without a reload.
    page.click("text=I have stored the token")
    page.locator("[data-testid=token-hint]").wait_for()
    assert new_token not in page.content()


@pytest.mark.sqlite_only  # the full flow above runs on both backends
def test_member_sees_the_403_page(factory: Factory, live_server: str, page: Any) -> None:
    org = factory.org("Acme Corp")
    factory.member(org, "max@acme.example")
    _sign_in(page, live_server, "max@acme.example")
    response = page.goto(f"{live_server}/settings/iam/scim")
    assert response is not None and response.status == 403
    assert page.locator("h1", has_text="403 Forbidden").is_visible()
    assert page.locator("#scim-base-url").count() == 0
    _shot(page, "scim-6-member-403")


@pytest.mark.sqlite_only  # the full flow above runs on both backends
def test_generate_works_as_a_plain_form_post_without_javascript(
    app: Flask, browser: Any, factory: Factory, live_server: str
) -> None:
    org = factory.org("Acme Corp")
    factory.it_admin(org)
    context = browser.new_context(java_script_enabled=False,
                                  viewport={"width": 1280, "height": 800})
    try:
        page = context.new_page()
        page.set_default_timeout(10_000)
        _sign_in(page, live_server, "it-admin@acme.example")
        page.goto(f"{live_server}/settings/iam/scim")
        assert not page.locator("button[aria-label='Copy SCIM Base URL']").is_visible()
        with page.expect_navigation() as navigation:
            page.click("text=Generate Token")
        response = navigation.value
        assert response.status == 200 and response.headers["cache-control"] == "no-store"
        token = page.input_value("#scim-new-token")
        assert _verifies(live_server, org, token)
        _shot(page, "scim-7-no-javascript-token-shown")
        page.goto(f"{live_server}/settings/iam/scim")
        assert token not in page.content()
        page.click("text=Rotate Token")  # a link to the confirmation page without JavaScript
        page.wait_for_url(f"{live_server}/settings/iam/scim/token/rotate")
        page.click("text=Rotate token now")
        new_token = page.input_value("#scim-new-token")
        assert not _verifies(live_server, org, token) and _verifies(live_server, org, new_token)
    finally:
        context.close()


@pytest.mark.sqlite_only  # the full flow above runs on both backends
def test_rollout_pending_screen_is_blank_but_for_one_line(
    factory: Factory, live_server: str, page: Any
) -> None:
    org = factory.org("Globex", released=False)
    factory.it_admin(org, "ada@globex.example")
    _sign_in(page, live_server, "ada@globex.example")
    page.goto(f"{live_server}/settings/iam/scim")
    children = page.evaluate(
        "[...document.querySelectorAll('#scim-main > *')].map(e => e.tagName + '.' + e.className)")
    assert children == ["H1.visually-hidden", "P.rollout-pending"]
    heading = page.locator("#scim-main h1").bounding_box()
    assert heading is not None and heading["width"] <= 1 and heading["height"] <= 1
    assert page.locator(".rollout-pending").inner_text().startswith(
        "The SCIM controls are not yet available for Globex.")
    assert page.locator("#scim-main button, #scim-main input").count() == 0
    _shot(page, "scim-8-rollout-pending")


@pytest.mark.sqlite_only  # the full flow above runs on both backends
def test_screen_fits_a_narrow_phone_screen(
    app: Flask, factory: Factory, live_server: str, browser: Any
) -> None:
    org = factory.org("Acme Corp")
    factory.it_admin(org)
    with app.app_context():
        scim_tokens.issue_token(db.session.get(Organisation, org.id), CLI_ACTOR)
        db.session.commit()
    context = browser.new_context(viewport={"width": 390, "height": 844})
    try:
        page = context.new_page()
        page.set_default_timeout(10_000)
        _sign_in(page, live_server, "it-admin@acme.example")
        page.goto(f"{live_server}/settings/iam/scim")
        assert _no_horizontal_overflow(page)
        _shot(page, "scim-9-narrow")
        page.click("text=Rotate Token")
        page.locator("#rotate-dialog").wait_for(state="visible")
        box = page.locator("#rotate-dialog").bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390
        _shot(page, "scim-10-narrow-rotate-dialog", full_page=False)
    finally:
        context.close()


@pytest.mark.sqlite_only  # the full flow above runs on both backends
def test_support_releases_scim_from_the_rollout_page(
    app: Flask, factory: Factory, live_server: str, page: Any
) -> None:
    factory.org("Acme Corp")
    globex = factory.org("Globex", released=False)
    support_account(app, "sam@vendor.example")
    _sign_in(page, live_server, "sam@vendor.example")
    page.goto(f"{live_server}/support/rollout")
    _shot(page, "support-rollout")
    page.click("button[aria-label='Release SCIM for Globex']")
    page.locator(".alert", has_text="SCIM is now released for Globex.").wait_for()
    row = page.locator(f"tr[data-org='{globex.key}']")
    assert "Released" in row.inner_text()
    row.locator("a", has_text="Withdraw").click()
    dialog = page.locator(f"#withdraw-dialog-{globex.id}")
    dialog.wait_for(state="visible")
    dialog.locator("button", has_text="Withdraw SCIM").click()
    page.locator(".alert", has_text="SCIM is now withdrawn for Globex.").wait_for()
    assert "Not released" in page.locator(f"tr[data-org='{globex.key}']").inner_text()


@pytest.mark.sqlite_only  # the full flow above runs on both backends
def test_keyboard_alone_reaches_copy_and_the_rotate_dialog_with_visible_focus(
    app: Flask, factory: Factory, live_server: str, page: Any
) -> None:
    org = factory.org("Acme Corp")
    factory.it_admin(org)
    with app.app_context():
        issued = scim_tokens.issue_token(db.session.get(Organisation, org.id), CLI_ACTOR)
        scim_tokens.note_use(issued.record, "Okta SCIM Client 1.0.0")
        db.session.commit()
    _sign_in(page, live_server, "it-admin@acme.example")
    page.goto(f"{live_server}/settings/iam/scim")
    focused = "document.activeElement"
    page.focus("#scim-base-url")
    page.keyboard.press("Tab")
    assert page.evaluate(f"{focused}.getAttribute('aria-label')") == "Copy SCIM Base URL"
    assert page.evaluate(f"getComputedStyle({focused}).boxShadow") != "none"  # visible focus
    page.keyboard.press("Enter")
    page.locator("#scim-base-url ~ [data-copy-status]").filter(has_text="Copied").wait_for()
    page.keyboard.press("Tab")
    assert page.evaluate(f"{focused}.textContent") == "Rotate Token"
    page.keyboard.press("Enter")
    page.locator("#rotate-dialog").wait_for(state="visible")
    assert page.evaluate(f"{focused}.textContent") == "Cancel"
    page.keyboard.press("Tab")
    assert page.evaluate(f"{focused}.textContent") == "Rotate token now"
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Enter")  # Cancel
    page.locator("#rotate-dialog").wait_for(state="hidden")
    assert _verifies(live_server, org, issued.plaintext)

    # The last client is named, and each IdP's fields open on demand.
    panel = page.locator("#scim-token-panel").inner_text()
    assert "by Okta SCIM Client 1.0.0" in panel
    okta = page.locator("details[data-idp=okta]")
    assert not okta.locator("table").is_visible()
    okta.locator("summary").click()
    assert okta.locator("table").is_visible()
    assert "SCIM connector base URL" in okta.inner_text()
    _shot(page, "scim-0-configured")


@pytest.mark.sqlite_only  # the full flow above runs on both backends
def test_an_error_while_the_page_is_open_is_shown_in_place(
    app: Flask, factory: Factory, live_server: str, page: Any
) -> None:
    from portal.models import MembershipRole
    from portal.services import organisations

    acme, globex = factory.org("Acme Corp"), factory.org("Globex")
    admin = factory.it_admin(acme)
    factory.it_admin(globex, "ada@globex.example")
    _sign_in(page, live_server, "it-admin@acme.example")
    page.goto(f"{live_server}/settings/iam/scim")
    with app.app_context():  # the admin loses the IAM role while the page is open
        db.session.query(MembershipRole).filter_by(membership_id=admin.id).delete()
        db.session.commit()
    page.click("text=Generate Token")
    page.locator("#flash-area", has_text="403 Forbidden").wait_for()
    assert page.locator("#scim-new-token").count() == 0

    context = page.context.browser.new_context()
    try:
        other = context.new_page()
        other.set_default_timeout(10_000)
        _sign_in(other, live_server, "ada@globex.example")
        other.goto(f"{live_server}/settings/iam/scim")
        with app.app_context():  # support withdraws SCIM while the page is open
            organisations.set_scim_rollout(db.session.get(Organisation, globex.id), False,
                                           CLI_ACTOR)
            db.session.commit()
        other.click("text=Generate Token")
        other.locator(".rollout-pending").wait_for()
        assert other.locator("#scim-main button").count() == 0
        assert _no_tokens(app, globex)
    finally:
        context.close()


def _no_tokens(app: Flask, org: Organisation) -> bool:
    with app.app_context():
        found = scim_tokens.active_token(db.session.get(Organisation, org.id)) is None
        db.session.remove()
        return found


@pytest.mark.sqlite_only  # the full flow above runs on both backends
def test_tab_and_shift_tab_stay_inside_the_open_rotate_dialog(
    app: Flask, factory: Factory, live_server: str, page: Any
) -> None:
    org = factory.org("Acme Corp")
    factory.it_admin(org)
    with app.app_context():
        issued = scim_tokens.issue_token(db.session.get(Organisation, org.id), CLI_ACTOR)
        db.session.commit()
    _sign_in(page, live_server, "it-admin@acme.example")
    page.goto(f"{live_server}/settings/iam/scim")
    page.get_by_role("link", name="Rotate Token").focus()
    page.keyboard.press("Enter")
    page.locator("#rotate-dialog").wait_for(state="visible")
    active = ("(() => { const a = document.activeElement; return [a.textContent.trim(), "
              "!!a.closest('#rotate-dialog')]; })()")
    assert page.evaluate(active) == ["Cancel", True]
    page.keyboard.press("Tab")
    assert page.evaluate(active) == ["Rotate token now", True]
    page.keyboard.press("Tab")  # past the last button: back to the first, not out of the dialog
    assert page.evaluate(active) == ["Cancel", True]
    page.keyboard.press("Shift+Tab")  # before the first: round to the last
    assert page.evaluate(active) == ["Rotate token now", True]
    for _ in range(5):
        page.keyboard.press("Tab")
        assert page.evaluate(active)[1] is True
    page.keyboard.press("Escape")
    page.locator("#rotate-dialog").wait_for(state="hidden")
    assert page.evaluate("document.activeElement.textContent.trim()") == "Rotate Token"
    assert _verifies(live_server, org, issued.plaintext)  # nothing was rotated
