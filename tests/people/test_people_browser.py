"""In a real browser: an IT admin maps a group to a role and sees a new member's role in People."""

from __future__ import annotations

import re
from typing import Any

import pytest

from portal.models import Organisation
from tests.conftest import PASSWORD, screenshot
from tests.people.conftest import Directory

pytestmark = pytest.mark.browser


def _shot(page: Any, name: str) -> None:
    page.evaluate("window.scrollTo(0, 0)")  # a scrolled full-page shot misplaces the top bar
    screenshot(page, name)


def _sign_in(page: Any, base: str) -> None:
    page.goto(f"{base}/login")
    page.fill("#email", "it-admin@acme.example")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")


def test_mapping_a_group_gives_a_member_who_joins_it_the_role_on_the_people_screen(
    page: Any, live_server: str, acme: Organisation, directory: Directory
) -> None:
    ann = directory.scim_member(acme, "ann.lee@acme.example", display_name="Ann Lee")
    directory.scim_member(acme, "bob@acme.example", display_name="Bob Stone", active=False)
    security = directory.group(acme, "Security Team")
    _sign_in(page, live_server)

    # The guard first: the only IAM admin cannot take their own IT Administrator role away.
    page.click("nav.main-nav >> text=People")
    page.wait_for_url(re.compile(r"/people/$"))
    page.click("#people-table a:has-text('it-admin@acme.example')")
    page.click('tr[data-role="IT Administrator"] >> button:has-text("Revoke")')
    error = page.locator('[data-testid="role-error"]')
    error.wait_for()
    assert "nobody who can manage Identity & Access Management" in error.inner_text()
    _shot(page, "people-guard-refusal")

    # Map the group in the Groups screen (HTMX swaps the mapping section in place).
    page.click("nav.main-nav >> text=Groups")
    page.wait_for_url(re.compile(r"/groups/$"))
    _shot(page, "groups-list-before")
    page.click("text=Security Team")
    page.wait_for_url(f"{live_server}/groups/{security}")
    page.select_option("#map-role", label="IT Administrator")
    page.click("button:has-text('Map role')")
    page.click("dialog[open] button:has-text('Map to IT Administrator')")  # the confirmation
    page.locator('#group-mappings li[data-role="IT Administrator"]').wait_for()
    assert page.url == f"{live_server}/groups/{security}"  # swapped in place, no reload
    _shot(page, "group-detail-mapped")

    # The IdP adds Ann to the group (straight into the database until the SCIM API lands).
    directory.join(security, ann)

    page.click("nav.main-nav >> text=People")
    row = page.locator(f'tr[data-member="{ann}"]')
    assert "IT Administrator" in row.locator(".cell-roles").inner_text()
    assert "Security Team" in row.locator(".cell-groups").inner_text()
    _shot(page, "people-list")

    # Search narrows the table through HTMX and the URL follows.
    page.fill("#people-q", "ann")
    page.wait_for_url(re.compile(r"q=ann"))
    page.locator(f'#people-table tr[data-member="{ann}"]').wait_for()
    assert page.locator("#people-table tbody tr").count() == 1
    page.select_option("#people-status", "deactivated")
    page.wait_for_url(re.compile(r"status=deactivated"))
    page.locator("#people-table >> text=Nobody matches these filters.").wait_for()
    page.go_back()
    page.locator(f'#people-table tr[data-member="{ann}"]').wait_for()
    _shot(page, "people-search")

    page.click(f'tr[data-member="{ann}"] >> text=Ann Lee')
    page.wait_for_url(f"{live_server}/people/{ann}")
    source = page.locator('tr[data-role="IT Administrator"]')
    assert "via group Security Team" in source.inner_text()
    assert page.locator('[data-testid="idp-badge"]').first.is_visible()
    _shot(page, "person-detail")


def test_people_and_groups_screens_work_without_javascript(
    browser: Any, live_server: str, app: Any, acme: Organisation, directory: Directory
) -> None:
    app.config["PEOPLE_PAGE_SIZE"] = 2
    ann = directory.scim_member(acme, "ann@acme.example", display_name="Ann Lee")
    for name in ("bea", "cy", "dan"):
        directory.scim_member(acme, f"{name}@acme.example", password=None)
    staff = directory.group(acme, "Staff", members=[ann])
    context = browser.new_context(java_script_enabled=False, viewport={"width": 1280,
                                                                       "height": 800})
    page = context.new_page()
    page.set_default_timeout(10_000)
    try:
        _sign_in(page, live_server)
        page.goto(f"{live_server}/people/?source=scim")
        assert page.locator("#people-table tbody tr").count() == 2
        page.click("a[rel=next]")
        page.wait_for_url(re.compile(r"after="))
        assert "source=scim" in page.url and page.locator("#people-table tbody tr").count() == 2
        page.fill("#people-q", "ann lee")
        page.click("button:has-text('Apply')")
        page.wait_for_url(re.compile(r"q=ann\+lee"))
        assert page.locator("#people-table tbody tr").count() == 1

        page.goto(f"{live_server}/groups/{staff}")
        page.select_option("#map-role", label="Member")
        page.click("button:has-text('Map role')")
        page.wait_for_url(f"{live_server}/groups/{staff}")
        assert page.locator('#group-mappings li[data-role="Member"]').count() == 1
        assert "Members of Staff now hold Member." in page.inner_text("#flash-area")
        assert directory.roles_of(ann) == {"Member"}
        _shot(page, "group-mapped-without-js")
    finally:
        context.close()


def test_mapping_a_role_shows_the_members_new_roles_without_a_reload(
    page: Any, live_server: str, acme: Organisation, directory: Directory
) -> None:
    ann = directory.scim_member(acme, "ann.lee@acme.example", display_name="Ann Lee")
    ben = directory.scim_member(acme, "ben@acme.example", display_name="Ben Ray")
    it = directory.group(acme, "IT", members=[ann, ben])
    _sign_in(page, live_server)
    page.goto(f"{live_server}/groups/{it}")
    page.evaluate("window.notReloaded = true")  # gone if the page reloads
    for member in (ann, ben):
        assert page.locator(f'#group-members tr[data-member="{member}"] td').nth(3) \
            .inner_text() == "none"
    page.select_option("#map-role", label="IT Administrator")
    page.click("button:has-text('Map role')")
    page.click("dialog[open] button:has-text('Map to IT Administrator')")  # the confirmation
    page.locator('#group-mappings li[data-role="IT Administrator"]').wait_for()
    for member in (ann, ben):
        roles = page.locator(f'#group-members tr[data-member="{member}"] td').nth(3)
        roles.locator("text=IT Administrator").wait_for()
        assert roles.inner_text() == "IT Administrator"
    assert page.locator('#group-history [data-action="group.role_mapped"]').count() >= 1
    assert page.evaluate("window.notReloaded") is True
    assert page.locator("#group-members").count() == 1  # replaced, not duplicated
    _shot(page, "group-detail-mapped-members")
