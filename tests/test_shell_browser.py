"""The shell in a real browser: sign in, the collapsible IAM group, the 403 page."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.conftest import PASSWORD, Factory, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.sqlite_only]


def sign_in(page, base: str, email: str) -> None:
    page.goto(f"{base}/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/")


def test_it_admin_signs_in_and_navigates_to_scim_through_the_sidebars(
    page, live_server: str, factory: Factory
) -> None:
    org = factory.org()
    factory.it_admin(org)
    sign_in(page, live_server, "it-admin@acme.example")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="IT Settings").click()
    sidebar = page.get_by_role("navigation", name="IT Settings")
    scim_link = sidebar.get_by_role("link", name="SCIM")
    # On General the IAM group is collapsed: SCIM is hidden until the group is expanded.
    assert page.url.endswith("/settings/general")
    assert not scim_link.is_visible()
    sidebar.get_by_text("Identity & Access Management").click()
    assert scim_link.is_visible()
    scim_link.click()
    page.wait_for_url("**/settings/iam/scim")
    assert scim_link.get_attribute("aria-current") == "page"
    assert page.locator("nav[aria-label=Breadcrumb]").count() == 0
    # The group stays expanded on its own pages and can be collapsed again.
    sidebar.get_by_text("Identity & Access Management").click()
    assert not scim_link.is_visible()
    screenshot(page, "shell-scim-collapsed")


def test_member_without_permission_sees_the_403_page(
    page, live_server: str, factory: Factory
) -> None:
    org = factory.org()
    factory.member(org, "max@acme.example")
    sign_in(page, live_server, "max@acme.example")
    response = page.goto(f"{live_server}/settings/iam/scim")
    assert response is not None and response.status == 403
    assert page.get_by_role("heading", name="403 Forbidden").is_visible()
    screenshot(page, "shell-403")


def test_wrong_password_shows_one_generic_message(
    page, live_server: str, factory: Factory
) -> None:
    factory.member(factory.org(), "max@acme.example")
    page.goto(f"{live_server}/login")
    page.get_by_label("Email").fill("max@acme.example")
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Sign in").click()
    assert page.get_by_test_id("login-error").inner_text() == "The email or password is not correct."


def test_organisation_switcher_changes_the_current_organisation(
    page, live_server: str, factory: Factory
) -> None:
    acme, globex = factory.org("Acme Corp"), factory.org("Globex")
    factory.it_admin(acme)
    factory.it_admin(globex)
    sign_in(page, live_server, "it-admin@acme.example")
    page.get_by_label("Organisation").select_option(label="Globex")
    expect(page.get_by_role("heading", name="Globex")).to_be_visible()
    expect(page.get_by_role("status")).to_contain_text("You are now working in Globex")
    screenshot(page, "shell-home")


def test_it_settings_sections_fold_into_one_line_on_a_phone(
    browser, live_server: str, factory: Factory
) -> None:
    factory.it_admin(factory.org())
    context = browser.new_context(viewport={"width": 390, "height": 844})
    try:
        page = context.new_page()
        page.set_default_timeout(10_000)
        sign_in(page, live_server, "it-admin@acme.example")
        page.goto(f"{live_server}/settings/iam/scim")
        sidebar = page.get_by_role("navigation", name="IT Settings")
        toggle = sidebar.locator("summary.settings-sections-toggle")
        expect(toggle).to_have_text(re.compile(r"^IT Settings sections\b.*\bSCIM\s*$"))
        scim_link = sidebar.get_by_role("link", name="SCIM")
        assert not scim_link.is_visible()
        box = sidebar.bounding_box()
        assert box is not None and box["height"] <= 70  # one line, not ~250 px of menu
        screenshot(page, "shell-phone-sections-folded")
        # Keyboard: the disclosure is reachable and opens with Enter; the IAM group is open
        # on its own pages and the current page is marked.
        toggle.focus()
        page.keyboard.press("Enter")
        expect(scim_link).to_be_visible()
        assert scim_link.get_attribute("aria-current") == "page"
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.textContent") == "General"
        screenshot(page, "shell-phone-sections-open")
        sidebar.get_by_role("link", name="SSO").click()
        page.wait_for_url("**/settings/iam/sso")
        expect(sidebar.locator("summary.settings-sections-toggle")).to_have_text(
            re.compile(r"\bSSO\s*$"))
        assert not sidebar.get_by_role("link", name="SSO").is_visible()  # folded again
    finally:
        context.close()


def test_it_settings_sidebar_is_always_open_on_a_desktop(
    page, live_server: str, factory: Factory
) -> None:
    factory.it_admin(factory.org())
    sign_in(page, live_server, "it-admin@acme.example")
    page.goto(f"{live_server}/settings/audit")
    sidebar = page.get_by_role("navigation", name="IT Settings")
    assert not sidebar.locator("summary.settings-sections-toggle").is_visible()
    expect(sidebar.get_by_role("heading", name="IT Settings")).to_be_visible()
    audit = sidebar.get_by_role("link", name="Audit Log")
    expect(audit).to_be_visible()
    assert audit.get_attribute("aria-current") == "page"
    box = sidebar.bounding_box()
    assert box is not None and box["width"] == 250 and box["x"] < 250
    # Keyboard order is unchanged: General, then the IAM group's summary.
    sidebar.get_by_role("link", name="General").focus()
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Identity & Access Management"
