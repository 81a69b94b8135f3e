"""The audit log in a real browser at 1280 px: the table fits its box, actions read as words."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from portal.extensions import db
from portal.models import Organisation
from portal.services import audit
from tests.activity.conftest import ScimOrg
from tests.conftest import Factory, screenshot
from tests.test_shell_browser import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.sqlite_only]

LONG_TARGET = ("a.very.long.user.name.that.keeps.going.and.going"
               "@subdomain.of.a.very-long-company-domain.example")

BOXES = """() => {
  const table = document.querySelector('table.audit-table');
  const box = table.closest('.table-scroll');
  const main = document.querySelector('main');
  const style = getComputedStyle(main);
  const inner = main.getBoundingClientRect().right - parseFloat(style.paddingRight);
  return {tableScroll: table.scrollWidth, tableWidth: table.getBoundingClientRect().width,
          boxClient: box.clientWidth, boxScroll: box.scrollWidth,
          boxRight: box.getBoundingClientRect().right, mainInner: inner,
          page: document.documentElement.scrollWidth,
          window: document.documentElement.clientWidth};
}"""


def test_audit_log_table_fits_its_box_at_1280_without_any_horizontal_scroll(
    page: Any, live_server: str, app: Flask, factory: Factory, scim_org: ScimOrg
) -> None:
    factory.it_admin(scim_org.org)
    with app.app_context():
        org = db.session.get(Organisation, scim_org.org.id)
        for action, details in (
            ("member.deactivated", {"was_active": True}),
            ("member.role_granted_until", {"role": "IT Administrator", "reason": "Q4 ISO 27001 "
                                           "audit of the identity provider configuration",
                                           "until": "2026-12-01T18:00:00+00:00"}),
            ("group.members_removed", {"count": 12, "members": ["x"] * 5}),
            ("scim.token_rotated", {}),
        ):
            audit.record(audit.Actor("Okta SCIM Client with a long user agent name 1.0.0"),
                         action, org, target_type="member", target_label=LONG_TARGET,
                         details=details)
        db.session.commit()
    sign_in(page, live_server, "it-admin@acme.example")
    page.goto(f"{live_server}/settings/audit")
    boxes = page.evaluate(BOXES)
    screenshot(page, "audit-log-1280")
    assert boxes["page"] <= boxes["window"], boxes  # no horizontal page scroll
    assert boxes["tableScroll"] <= boxes["boxClient"], boxes  # nothing scrolls inside the box
    assert boxes["boxScroll"] <= boxes["boxClient"], boxes
    assert boxes["boxRight"] <= boxes["mainInner"] + 0.5, boxes  # the box stays in the content
    cell = page.locator('tr[data-event-id] td.cell-action', has_text="Person deactivated")
    assert cell.locator(".action-label").get_attribute("title") == "member.deactivated"
    assert cell.locator(".action-code").inner_text() == "member.deactivated"
