"""The People list: columns, search, filters, keyset pagination, HTMX fragment, constant cost."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from flask import Flask
from flask.testing import FlaskClient

from portal.models import Organisation
from portal.permissions import ADMINISTRATOR, IT_ADMINISTRATOR, MEMBER
from tests.conftest import Factory
from tests.people.conftest import Directory, count_statements


def _rows(html: bytes) -> list[str]:
    return re.findall(r'<tr data-member="([^"]+)">', html.decode())


def _row(html: bytes, public_id: str) -> str:
    match = re.search(rf'<tr data-member="{public_id}">(.*?)</tr>', html.decode(), re.S)
    assert match, f"no row for {public_id}"
    return match.group(1)


def test_list_shows_name_email_status_source_groups_roles_and_last_change(
    admin_client: FlaskClient, acme: Organisation, directory: Directory
) -> None:
    ann = directory.scim_member(acme, "Ann.Lee@acme.example", display_name="Ann Lee",
                                updated_at=datetime(2026, 3, 4, 5, 6, tzinfo=UTC))
    directory.group(acme, "IT Admins", members=[ann], roles_=[IT_ADMINISTRATOR])
    directory.group(acme, "Everyone", members=[ann])
    response = admin_client.get("/people/")
    assert response.status_code == 200
    row = _row(response.data, ann)
    assert "Ann Lee" in row and "ann.lee@acme.example" in row.replace("<wbr>", "")
    assert '<td class="cell-email">ann<wbr>.lee@<wbr>acme<wbr>.example</td>' in row
    assert 'data-status="active"' in row and 'data-source="scim"' in row
    assert row.index("Everyone") < row.index("IT Admins")
    assert '<span class="pill">IT Administrator</span>' in row
    assert 'title="2026-03-04 05:06:00 UTC">2026-03-04</time>' in row
    admin_row = [r for r in _rows(response.data) if r != ann][0]
    assert 'data-source="manual"' in _row(response.data, admin_row)
    assert b"2 people" in response.data


def test_search_matches_name_email_and_user_name_case_insensitively(
    admin_client: FlaskClient, acme: Organisation, directory: Directory
) -> None:
    ann = directory.scim_member(acme, "a.lee", display_name="Ann Lee", email="ann@corp.example")
    bob = directory.scim_member(acme, "bob@acme.example", display_name="Bob 100% Real")
    for q, expected in (("ANN LEE", [ann]), ("corp.example", [ann]), ("A.LEE", [ann]),
                        ("100%", [bob]), ("%", [bob]), ("_", []), ("nobody", [])):
        response = admin_client.get("/people/", query_string={"q": q})
        assert _rows(response.data) == expected, q
    assert b"Nobody matches these filters." in admin_client.get("/people/?q=nobody").data


def test_search_finds_a_person_by_any_of_their_emails_in_this_organisation_only(
    app: Flask, admin_client: FlaskClient, acme: Organisation, factory: Factory,
    directory: Directory
) -> None:
    ann = directory.scim_member(acme, "ann@acme.example", display_name="Ann Lee",
                                other_emails=["Ann.Private@Home.example", "a.lee@old-corp.example"])
    bob = directory.scim_member(acme, "bob@acme.example", other_emails=["bob@home.example"])
    globex = factory.org("Globex")
    directory.scim_member(globex, "zed@globex.example", other_emails=["twin@old-corp.example"])
    for q, expected in (("ann.private@home.example", [ann]), ("HOME.EXAMPLE", [ann, bob]),
                        ("old-corp", [ann]), ("twin@old-corp", []), ("lee@old", [ann]),
                        ("%@home", []), ("bob@home", [bob])):
        response = admin_client.get("/people/", query_string={"q": q})
        assert _rows(response.data) == expected, q
    fragment = admin_client.get("/people/?q=old-corp", headers={"HX-Request": "true"})
    assert _rows(fragment.data) == [ann] and b"1 person" in fragment.data


def test_statements_of_a_search_by_a_secondary_email_stay_constant_as_the_organisation_grows(
    app: Flask, admin_client: FlaskClient, acme: Organisation, directory: Directory
) -> None:
    groups = [directory.group(acme, name, roles_=role) for name, role in
              (("IT", [IT_ADMINISTRATOR]), ("Staff", [MEMBER]))]

    def grow_to(n: int, start: int) -> None:
        for i in range(start, n):
            pid = directory.scim_member(acme, f"user{i:03}@acme.example", password=None,
                                        other_emails=[f"u{i}@home.example", f"u{i}@x.example"])
            directory.join(groups[i % 2], pid)

    def statements_for_one_search() -> tuple[int, int]:
        with app.app_context(), count_statements() as statements:
            response = admin_client.get("/people/?q=home.example")
        assert response.status_code == 200
        return len(statements), len(_rows(response.data))

    grow_to(4, 0)
    small, small_rows = statements_for_one_search()
    grow_to(80, 4)
    large, large_rows = statements_for_one_search()
    assert (small_rows, large_rows) == (4, 50)
    assert small == large, (small, large)


def test_status_filter_tells_active_deactivated_and_removed_by_idp_apart(
    admin_client: FlaskClient, acme: Organisation, directory: Directory
) -> None:
    on = directory.scim_member(acme, "on@acme.example")
    off = directory.scim_member(acme, "off@acme.example", active=False)
    gone = directory.scim_member(acme, "gone@acme.example", deleted=True)
    everyone = admin_client.get("/people/")
    assert 'data-status="removed">Removed by IdP' in _row(everyone.data, gone)
    assert 'data-status="deactivated"' in _row(everyone.data, off)
    assert set(_rows(admin_client.get("/people/?status=deactivated").data)) == {off}
    assert set(_rows(admin_client.get("/people/?status=removed").data)) == {gone}
    active = set(_rows(admin_client.get("/people/?status=active").data))
    assert on in active and off not in active and gone not in active


def test_source_and_group_filters_narrow_the_list(
    admin_client: FlaskClient, acme: Organisation, directory: Directory
) -> None:
    ann = directory.scim_member(acme, "ann@acme.example")
    bob = directory.scim_member(acme, "bob@acme.example")
    it = directory.group(acme, "IT", members=[ann])
    scim = set(_rows(admin_client.get("/people/?source=scim").data))
    manual = _rows(admin_client.get("/people/?source=manual").data)
    assert scim == {ann, bob} and len(manual) == 1 and manual[0] not in scim
    assert _rows(admin_client.get(f"/people/?group={it}").data) == [ann]
    assert _rows(admin_client.get(f"/people/?group={it}&source=manual").data) == []


def test_filters_that_name_another_organisations_group_are_404(
    admin_client: FlaskClient, factory: Factory, directory: Directory
) -> None:
    foreign = directory.group(factory.org("Globex"), "Globex IT")
    assert admin_client.get(f"/people/?group={foreign}").status_code == 404
    assert admin_client.get("/people/?group=no-such-group").status_code == 404


@pytest.mark.parametrize("query, message", [
    ({"status": "sleeping"}, "Choose a status from the list."),
    ({"source": "ldap"}, "Choose a source from the list."),
    ({"q": "x" * 201}, "Search for at most 200 characters."),
])
def test_bad_filter_values_get_a_clear_400(
    admin_client: FlaskClient, query: dict[str, str], message: str
) -> None:
    response = admin_client.get("/people/", query_string=query)
    assert response.status_code == 400 and message.encode() in response.data


def test_keyset_pages_walk_forward_and_back_without_gaps_or_repeats(
    app: Flask, admin_client: FlaskClient, acme: Organisation, directory: Directory
) -> None:
    app.config["PEOPLE_PAGE_SIZE"] = 3
    for i in range(7):
        directory.scim_member(acme, f"user{i}@acme.example", password=None)
    seen: list[list[str]] = []
    url: str | None = "/people/?source=scim"
    while url:
        html = admin_client.get(url).data.decode()
        seen.append(_rows(html.encode()))
        nxt = re.search(r'rel="next" href="([^"]+)"', html)
        url = nxt.group(1).replace("&amp;", "&") if nxt else None
        assert "source=scim" in (url or "source=scim")  # filters survive paging
    assert [len(page) for page in seen] == [3, 3, 1]
    flat = [pid for page in seen for pid in page]
    assert len(set(flat)) == 7
    back = re.search(r'rel="prev" href="([^"]+)"', html).group(1).replace("&amp;", "&")
    assert _rows(admin_client.get(back).data) == seen[1]


def test_statements_per_page_stay_constant_as_the_organisation_grows(
    app: Flask, admin_client: FlaskClient, acme: Organisation, directory: Directory
) -> None:
    def grow_to(n: int, start: int) -> None:
        for i in range(start, n):
            pid = directory.scim_member(acme, f"user{i:03}@acme.example", password=None)
            directory.join(groups[i % 3], pid)
            directory.join(groups[(i + 1) % 3], pid)

    def statements_for_one_page() -> tuple[int, int]:
        with app.app_context(), count_statements() as statements:
            response = admin_client.get("/people/")
        assert response.status_code == 200
        return len(statements), len(_rows(response.data))

    groups = [directory.group(acme, name, roles_=role) for name, role in
              (("IT", [IT_ADMINISTRATOR]), ("Staff", [MEMBER]), ("Board", [ADMINISTRATOR]))]
    grow_to(4, 0)
    small, small_rows = statements_for_one_page()
    grow_to(80, 4)
    large, large_rows = statements_for_one_page()
    assert (small_rows, large_rows) == (5, 50)
    assert small == large, (small, large)
    assert small <= 12  # sign-in state, the page query, its count, groups, roles, the shell


def test_htmx_gets_only_the_table_and_history_restore_gets_the_page(
    admin_client: FlaskClient, acme: Organisation, directory: Directory
) -> None:
    directory.scim_member(acme, "ann@acme.example")
    fragment = admin_client.get("/people/?q=ann", headers={"HX-Request": "true"})
    assert fragment.data.lstrip().startswith(b'<div id="people-table"')
    assert b"<html" not in fragment.data and len(_rows(fragment.data)) == 1
    assert "HX-Request" in fragment.headers["Vary"]
    restore = admin_client.get("/people/?q=ann", headers={
        "HX-Request": "true", "HX-History-Restore-Request": "true"})
    assert b"<html" in restore.data and b'id="people-table"' in restore.data
    page = admin_client.get("/people/?q=ann")
    assert "HX-Request" in page.headers["Vary"]
    assert b'hx-push-url="true"' in page.data and b'value="ann"' in page.data


def test_members_of_other_organisations_never_appear(
    admin_client: FlaskClient, factory: Factory, acme: Organisation, directory: Directory
) -> None:
    foreign = directory.scim_member(factory.org("Globex"), "ann@globex.example")
    assert foreign not in _rows(admin_client.get("/people/").data)
    assert _rows(admin_client.get("/people/?q=globex").data) == []
    # Another organisation's id as a cursor is ignored: the first page, not a peek at Globex.
    first_page = _rows(admin_client.get("/people/").data)
    assert _rows(admin_client.get(f"/people/?after={foreign}").data) == first_page


def _walk(client: FlaskClient, url: str | None) -> list[list[str]]:
    pages: list[list[str]] = []
    while url:
        html = client.get(url).data.decode()
        pages.append(_rows(html.encode()))
        nxt = re.search(r'rel="next" href="([^"]+)"', html)
        url = nxt.group(1).replace("&amp;", "&") if nxt else None
    return pages


def test_people_are_sorted_by_the_name_shown_case_insensitively_the_same_on_every_page(
    app: Flask, admin_client: FlaskClient, acme: Organisation, directory: Directory
) -> None:
    app.config["PEOPLE_PAGE_SIZE"] = 2
    # userName order (a, b, c, d, e, f) is nearly the reverse of the names shown.
    zoe = directory.scim_member(acme, "a@acme.example", display_name="Zoe Adams", password=None)
    sam_1 = directory.scim_member(acme, "b@acme.example", display_name="sam Lee", password=None)
    sam_2 = directory.scim_member(acme, "c@acme.example", display_name="Sam Lee", password=None)
    mia = directory.scim_member(acme, "d@acme.example", display_name="Mia  Ortiz", password=None)
    ann = directory.scim_member(acme, "e@acme.example", display_name="ann Berg", password=None)
    # No display name: the list shows the userName, and sorts by it too.
    bare = directory.scim_member(acme, "Karl@acme.example", password=None)
    expected = [ann, bare, mia, sam_1, sam_2, zoe]  # equal names: the older row first
    pages = _walk(admin_client, "/people/?source=scim")
    assert [pid for page in pages for pid in page] == expected
    assert [len(page) for page in pages] == [2, 2, 2]
    # Walking back from the last page meets the same rows in the same order.
    html = admin_client.get(f"/people/?source=scim&before={zoe}").data.decode()
    assert _rows(html.encode()) == [sam_1, sam_2]
    back = re.search(r'rel="prev" href="([^"]+)"', html).group(1).replace("&amp;", "&")
    assert _rows(admin_client.get(back).data) == [bare, mia]
    # The group members table is the same list, sorted alike.
    security = directory.group(acme, "Security", members=[zoe, bare, ann])
    assert _rows(admin_client.get(f"/groups/{security}").data) == [ann, bare, zoe]


def test_a_rename_moves_the_person_to_their_new_place_in_the_list(
    app: Flask, admin_client: FlaskClient, acme: Organisation, directory: Directory
) -> None:
    from portal.extensions import db
    from portal.models import Account, Membership

    bea = directory.scim_member(acme, "bea@acme.example", display_name="Bea", password=None)
    carl = directory.scim_member(acme, "carl@acme.example", display_name="Carl", password=None)
    dora = directory.scim_member(acme, "dora@acme.example", password=None)
    assert _rows(admin_client.get("/people/?source=scim").data) == [bea, carl, dora]
    with app.app_context():
        member = db.session.query(Membership).filter_by(public_id=carl).one()
        member.display_name = "Aaron Carl"
        # Dora has no display name of her own: her account's name is what the list shows.
        db.session.query(Account).filter_by(email="dora@acme.example").one().display_name = "Al"
        db.session.commit()
    assert _rows(admin_client.get("/people/?source=scim").data) == [carl, dora, bea]
