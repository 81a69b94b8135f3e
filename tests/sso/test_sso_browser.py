"""In a real browser: configure SSO from pasted metadata, test, enforce, sign in at the IdP."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from tests.conftest import PASSWORD, Factory, screenshot
from tests.sso.conftest import scim_member
from tests.sso.idp_server import running_idp

pytestmark = pytest.mark.browser


def _sign_in_with_password(page: Any, base: str, email: str) -> None:
    page.goto(f"{base}/login")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.click("button:has-text('Sign in')")
    page.wait_for_url(f"{base}/")


def test_admin_configures_sso_from_metadata_and_a_provisioned_member_signs_in_at_the_idp(
    app: Flask, live_server: str, page: Any, factory: Factory
) -> None:
    app.config["EXTERNAL_URL"] = live_server  # the SP URLs the IdP posts back to
    org = factory.org("Acme Corp")
    factory.it_admin(org)
    scim_member(app, org, "jane.doe@acme.example")
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])

    with running_idp() as idp:
        _sign_in_with_password(page, live_server, "it-admin@acme.example")
        page.goto(f"{live_server}/settings/iam/sso")
        assert page.input_value("#sp-entity-id") == f"{live_server}/sso/{org.key}"
        assert page.input_value("#acs-url") == f"{live_server}/sso/{org.key}/acs"
        page.click("button[data-copy-target='#acs-url']")
        assert page.evaluate("navigator.clipboard.readText()") == f"{live_server}/sso/{org.key}/acs"
        assert page.locator("[data-testid=status-badge]").inner_text() == "Not configured"
        assert page.locator(".breadcrumbs").count() == 0
        screenshot(page, "sso-01-not-configured")

        page.fill("#metadata_xml", "<md:EntityDescriptor broken")
        page.click("button:has-text('Save from metadata')")
        assert "not well-formed XML" in page.locator("[data-testid=error-metadata]").inner_text()
        errors = page.locator("[data-testid=idp-errors]")  # in view, not below the fold
        assert errors.is_visible() and page.evaluate(
            "document.querySelector('[data-testid=idp-errors]').getBoundingClientRect().top"
            " < window.innerHeight")
        screenshot(page, "sso-02-metadata-error")

        page.fill("#metadata_xml", idp.metadata())
        page.click("button:has-text('Save from metadata')")
        assert page.locator("[data-testid=status-badge]").inner_text() == "Configured"
        assert page.url.endswith("/settings/iam/sso#main")  # the saved message, at the top
        assert page.evaluate("window.scrollY") < 200
        assert "CN=idp.example.test" in page.locator("[data-testid=certificate]").inner_text()
        screenshot(page, "sso-03-configured")

        with page.context.expect_page() as opened:
            page.click("[data-testid=test-sign-in]")
        tab = opened.value
        tab.wait_for_load_state()
        tab.fill("#email", "jane.doe@acme.example")
        tab.click("button:has-text('Sign in at the IdP')")
        tab.wait_for_selector("[data-testid=sso-test-result]")
        assert tab.locator("[data-testid=test-outcome]").get_attribute("data-ok") == "true"
        assert "Legal" in tab.locator("[data-testid=test-attributes]").inner_text()
        screenshot(tab, "sso-04-test-result")
        tab.close()

        page.fill("#break-glass-email", "it-admin@acme.example")
        page.click("button:has-text('Mark as break-glass')")
        break_glass = page.locator("[data-testid=break-glass-list]").inner_text()
        assert "it-admin@acme.example" in break_glass
        page.reload()
        assert "Passed" in page.locator("[data-testid=last-test]").inner_text()
        page.click("#enforce-form button:has-text('Enforce SSO')")
        dialog = page.locator("#enforce-dialog")
        assert dialog.is_visible()
        screenshot(page, "sso-05-enforce-dialog")
        dialog.locator("button:has-text('Enforce SSO')").click()
        page.wait_for_selector("[data-testid=status-badge]:has-text('Enforced')")
        screenshot(page, "sso-06-enforced")

        page.click("summary[aria-label='Profile menu']")
        page.click("button:has-text('Sign out')")
        page.wait_for_url(f"{live_server}/login")
        page.click("[data-testid=sso-sign-in]")
        page.fill("#identifier", "jane.doe@acme.example")
        screenshot(page, "sso-07-sign-in-with-sso")
        page.click("button:has-text('Continue')")
        page.wait_for_url(lambda url: url.startswith(idp.sso_url + "?"))
        page.fill("#email", "stranger@acme.example")  # the IdP knows them; SCIM never sent them
        page.click("button:has-text('Sign in at the IdP')")
        page.wait_for_selector("[data-testid=sso-refused]")
        assert "You do not have an account in Acme Corp" in page.inner_text("main")
        screenshot(page, "sso-08-unknown-person-refused")

        page.goto(f"{live_server}/sso/{org.key}")
        page.wait_for_url(lambda url: url.startswith(idp.sso_url + "?"))
        page.fill("#email", "jane.doe@acme.example")
        page.click("button:has-text('Sign in at the IdP')")
        page.wait_for_url(f"{live_server}/")
        assert "Welcome, Jane Doe" in page.locator("h1").inner_text()
        screenshot(page, "sso-09-signed-in-through-sso")
