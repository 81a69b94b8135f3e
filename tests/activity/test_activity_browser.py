"""The provisioning activity page in a real browser: expand a row, filter, load more."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from playwright.sync_api import expect

from portal.services.provisioning_activity import PAGE_SIZE
from tests.activity.conftest import AddActivity, ScimOrg, backdate_token
from tests.conftest import Factory, screenshot
from tests.test_shell_browser import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.sqlite_only]


def test_admin_reads_filters_and_pages_the_activity_log(
    page, live_server: str, app: Flask, factory: Factory, scim_org: ScimOrg,
    add_activity: AddActivity
) -> None:
    factory.it_admin(scim_org.org)
    backdate_token(app, scim_org.org, days=2)
    for i in range(PAGE_SIZE):
        add_activity(scim_org.org, minutes_ago=600 - i, method="GET",
                     path=f"/Users?startIndex={i + 1}&count=100")
    add_activity(scim_org.org, minutes_ago=20, method="POST", path="/Users", status=201,
                 resource_id="4f1c", effect="created user alice@acme.example",
                 request_body={"userName": "alice@acme.example", "active": True})
    add_activity(scim_org.org, minutes_ago=12, method="PATCH", path="/Groups/9b2e",
                 resource_type="Group", resource_id="9b2e",
                 effect="removed 2 members from Engineering",
                 request_body={"Operations": [{"op": "remove", "path": "members"}]})
    add_activity(scim_org.org, minutes_ago=4, method="POST", path="/Users", status=409,
                 scim_type="uniqueness", detail="userName bob@acme.example is already taken.",
                 request_body={"userName": "bob@acme.example"})

    sign_in(page, live_server, "it-admin@acme.example")
    page.goto(f"{live_server}/settings/iam/scim")
    page.get_by_role("link", name="Provisioning activity").click()
    page.wait_for_url("**/settings/iam/scim/activity")
    # One failure among many successes: still healthy.
    expect(page.locator("#scim-health")).to_have_text(
        re.compile(r"^\s*Healthy\s+last request 4 min ago"))
    table = page.get_by_role("table", name=re.compile("SCIM requests, newest first"))
    headers = ["Time", "Status", "Method", "Path", "Result", "Client"]
    expect(table.get_by_role("columnheader")).to_have_text(headers)
    rows = page.locator(".activity-item")
    expect(rows).to_have_count(PAGE_SIZE)
    first = rows.first
    expect(first).to_contain_text("409")
    expect(first.locator(".activity-detail")).to_be_hidden()
    # The keyboard opens a request (its time is a disclosure) and closes it again.
    first.locator("summary").focus()
    page.keyboard.press("Enter")
    expect(first.locator(".activity-detail")).to_be_visible()
    assert first.locator("summary").get_attribute("aria-expanded") in (None, "true")
    page.keyboard.press("Enter")
    expect(first.locator(".activity-detail")).to_be_hidden()
    # A click anywhere on the row opens it too; its cells sit under their headers.
    first.locator(".activity-effect").click()
    expect(first.locator(".activity-detail")).to_be_visible()
    status_header = table.get_by_role("columnheader", name="Status").bounding_box()
    status_cell = first.locator(".status").bounding_box()
    assert status_header and status_cell
    assert status_header["x"] <= status_cell["x"] < status_header["x"] + status_header["width"]
    expect(first).to_contain_text("uniqueness")
    expect(first.locator("pre")).to_contain_text('"userName": "bob@acme.example"')
    screenshot(page, "scim-activity")

    page.get_by_role("link", name="Load more").click()
    expect(rows).to_have_count(PAGE_SIZE + 3)
    assert page.url.endswith("/settings/iam/scim/activity")  # paged in place

    page.get_by_label("Errors").check()
    expect(rows).to_have_count(1)
    expect(table.get_by_role("columnheader")).to_have_text(headers)  # filtering keeps them
    expect(rows.first).to_contain_text("already taken")
    assert "status=errors" in page.url
    page.get_by_label("All").check()
    page.get_by_label("Resource").select_option("Group")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("removed 2 members from Engineering")
    screenshot(page, "scim-activity-filtered")


def test_admin_opens_the_printable_status_report_from_the_scim_screen(
    page, live_server: str, app: Flask, factory: Factory, scim_org: ScimOrg,
    add_activity: AddActivity
) -> None:
    factory.it_admin(scim_org.org)
    backdate_token(app, scim_org.org, days=2)
    add_activity(scim_org.org, minutes_ago=5, method="PATCH", path="/Users/4f1c")
    sign_in(page, live_server, "it-admin@acme.example")
    page.goto(f"{live_server}/settings/iam/scim")
    page.get_by_role("link", name="Download SCIM status report").click()
    page.wait_for_url("**/settings/iam/scim/report")
    report = page.locator("article.report")
    expect(report).to_contain_text("SCIM provisioning status report")
    expect(report).to_contain_text(f"/scim/v2/{scim_org.org.key}")
    expect(report).to_contain_text("0 removals of access, affecting 0 people.")
    page.emulate_media(media="print")
    assert not page.locator(".settings-nav").is_visible()
    assert not page.get_by_role("button", name="Print").is_visible()
    screenshot(page, "scim-status-report-print")
