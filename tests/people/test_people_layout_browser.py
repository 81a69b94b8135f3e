"""The People list and a group's page in a real browser at 1280 px: readable wrapping,
the IAM-role confirmation dialog, and a mapping change that keeps the members page."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.models import Group, GroupRoleMapping, Organisation
from tests.conftest import screenshot
from tests.people.conftest import Directory
from tests.people.test_people_browser import _sign_in

pytestmark = [pytest.mark.browser, pytest.mark.sqlite_only]

# Where each line of an element's text starts (character offsets into its text).
LINE_STARTS = """(el) => {
  const starts = []; let text = ''; let top = null;
  const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    for (let i = 0; i < node.data.length; i++) {
      const range = document.createRange();
      range.setStart(node, i); range.setEnd(node, i + 1);
      const rect = range.getClientRects()[0];
      if (rect && rect.width > 0) {
        if (top !== null && rect.top > top + 2) { starts.push(text.length); }
        top = rect.top;
      }
      text += node.data[i];
    }
  }
  return {text, starts};
}"""

LONG_NAMES = {
    "maximiliane.alexandrina.von-hohenzollern-sigmaringen@subsidiary.example-holdings.example":
        "Maximiliane Alexandrina von Hohenzollern-Sigmaringen Rodríguez de la Fuente",
    "bartholomew.featherstonehaugh-cholmondeley@acme-international-holdings.example":
        "Bartholomew Featherstonehaugh-Cholmondeley",
    "ann@acme.example": "Ann Lee",
}


def _sensible(text: str, start: int, email: bool) -> bool:
    """A line may start after a space or a hyphen; an e-mail also after @ or before a dot."""
    before, at = text[start - 1], text[start]
    return before in " -" or at == " " or (email and (before == "@" or at == "."))


def test_people_names_and_emails_wrap_only_at_sensible_points_at_1280(
    page: Any, live_server: str, acme: Organisation, directory: Directory
) -> None:
    for email, name in LONG_NAMES.items():
        directory.scim_member(acme, email, display_name=name, password=None)
    # No display name: the userName is the name shown (an e-mail address).
    directory.scim_member(acme, next(iter(LONG_NAMES)).replace("maximiliane", "max"),
                          password=None)
    _sign_in(page, live_server)
    page.goto(f"{live_server}/people/")
    screenshot(page, "people-list-1280")
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    rows = page.locator("#people-table tbody tr[data-member]")
    assert rows.count() == 5
    wrapped = 0
    for i in range(rows.count()):
        name = rows.nth(i).locator("td").nth(0).locator("a")
        email = rows.nth(i).locator("td").nth(1)
        for cell, is_email in ((name, "@" in name.inner_text()), (email, True)):
            lines = cell.evaluate(LINE_STARTS)
            wrapped += len(lines["starts"])
            bad = [lines["text"][:s] + "|" + lines["text"][s:] for s in lines["starts"]
                   if not _sensible(lines["text"], s, is_email)]
            assert bad == [], bad
    assert wrapped > 0  # the long ones did wrap, so the check above checked something
    # No cell's content is wider than the cell (nothing spills over its neighbour).
    spills = page.evaluate("""() => [...document.querySelectorAll('#people-table td')]
        .filter(td => td.scrollWidth > td.clientWidth + 1).map(td => td.innerText)""")
    assert spills == []


def test_mapping_the_iam_role_asks_in_a_dialog_and_keeps_the_members_page(
    page: Any, app: Any, live_server: str, acme: Organisation, directory: Directory
) -> None:
    app.config["GROUP_MEMBERS_PAGE_SIZE"] = 2
    people = [directory.scim_member(acme, f"user{i}@acme.example", display_name=f"User {i}",
                                    password=None) for i in range(5)]
    it = directory.group(acme, "IT", members=people)
    _sign_in(page, live_server)
    page.goto(f"{live_server}/groups/{it}")
    page.click("#group-members a[rel=next]")
    page.wait_for_url(f"**/groups/{it}?after=*")
    second = people[2:4]
    shown = "#group-members tbody tr[data-member]"
    page.locator(f'{shown}[data-member="{second[0]}"]').wait_for()

    def mapped() -> list[str]:
        with app.app_context():
            return list(db.session.scalars(
                select(GroupRoleMapping.role_id).join(Group).where(Group.public_id == it)))

    # The IAM role: a modal dialog asks first; Cancel changes nothing.
    page.select_option("#map-role", label="IT Administrator")
    page.click("button:has-text('Map role')")
    dialog = page.locator("dialog[open]")
    dialog.wait_for()
    assert dialog.evaluate("d => d.matches(':modal')") is True
    assert "can manage Identity & Access Management" in dialog.inner_text()
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, "group-map-iam-confirm")
    dialog.locator("button:has-text('Cancel')").click()
    assert page.locator("dialog[open]").count() == 0
    assert mapped() == []
    # Confirmed: mapped, and the members table is still on the second page.
    page.click("button:has-text('Map role')")
    page.click("dialog[open] button:has-text('Map to IT Administrator')")
    page.locator('#group-mappings li[data-role="IT Administrator"]').wait_for()
    page.locator(f'{shown}[data-member="{second[0]}"] >> text=IT Administrator').wait_for()
    assert [page.locator(shown).nth(i).get_attribute("data-member") for i in range(2)] == second
    assert len(mapped()) == 1
    # A role without the IAM permission maps at once, and the page is kept again.
    page.select_option("#map-role", label="Member")
    page.click("button:has-text('Map role')")
    page.locator('#group-mappings li[data-role="Member"]').wait_for()
    assert page.locator("dialog[open]").count() == 0
    assert [page.locator(shown).nth(i).get_attribute("data-member") for i in range(2)] == second
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, "group-mapped-kept-page")
