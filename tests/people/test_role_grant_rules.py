"""Time-boxed access guardrails, the form's time handling, who may use it, and the tidy-up."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from portal.extensions import db
from portal.models import GRANT_ENDED_EARLY, GRANT_EXPIRED, Account, Membership, Organisation
from portal.permissions import ADMINISTRATOR, IT_ADMINISTRATOR, MEMBER
from portal.services import role_grants, roles, scim_tokens
from portal.services.audit import CLI_ACTOR
from tests.conftest import Factory, FrozenClock, csrf_from, login
from tests.people.conftest import Directory, count_statements
from tests.people.grant_helpers import events, grants, post_end, post_grant, public_id


@pytest.fixture
def max_id(app: Flask, factory: Factory, acme: Organisation) -> str:
    """Max, a plain Member of Acme."""
    factory.member(acme, "max@acme.example", MEMBER)
    return public_id(app, "max@acme.example")


def _error(response: object) -> str:
    match = re.search(r'data-testid="grant-error">([^<]+)<', response.get_data(as_text=True))
    assert match, "no grant error shown"
    return match.group(1)


@pytest.mark.parametrize("kwargs, message", [
    ({"until": "2026-12-02T09:01"}, "at most 30 days"),
    ({"until": "2026-11-02T08:59"}, "Choose an end in the future"),
    ({"until": "2026-11-02T09:00"}, "Choose an end in the future"),
    ({"preset": "1h", "reason": "   "}, "Give a reason"),
    ({"preset": "1h", "reason": ""}, "Give a reason"),
    ({"preset": "1h", "reason": "x" * 301}, "300 characters"),
    ({"until": "next tuesday"}, "Enter the end as a date and time"),
    ({"until": ""}, "Choose when the grant ends"),
    ({"preset": "forever"}, "Choose when the grant ends from the list."),
])
def test_refused_grants_say_why_keep_the_input_and_change_nothing(
    app: Flask, admin_client: FlaskClient, max_id: str, clock: FrozenClock,
    kwargs: dict[str, str], message: str
) -> None:
    response = post_grant(admin_client, app, max_id, IT_ADMINISTRATOR, **kwargs)
    assert response.status_code == 422
    assert message in _error(response)
    assert grants(app) == [] and events(app) == []
    if "reason" not in kwargs:  # what was typed comes back with the message
        assert 'value="Q4 ISO 27001 audit"' in response.get_data(as_text=True)


def test_a_role_already_held_without_an_end_is_not_granted_again(
    app: Flask, admin_client: FlaskClient, max_id: str, clock: FrozenClock
) -> None:
    response = post_grant(admin_client, app, max_id, MEMBER, preset="1h")
    assert response.status_code == 422
    assert "already holds Member without an end date" in _error(response)
    assert grants(app) == []


def test_exactly_thirty_days_is_allowed_and_the_limit_is_configurable(
    app: Flask, admin_client: FlaskClient, max_id: str, clock: FrozenClock
) -> None:
    assert post_grant(admin_client, app, max_id, IT_ADMINISTRATOR, preset="30d").status_code == 302
    app.config["MAX_GRANT_DAYS"] = 7
    refused = post_grant(admin_client, app, max_id, ADMINISTRATOR, preset="30d")
    assert refused.status_code == 422 and "at most 7 days" in _error(refused)
    assert post_grant(admin_client, app, max_id, ADMINISTRATOR, preset="7d").status_code == 302
    assert [(g["role"], g["until"] - clock.current) for g in grants(app)] == [
        (IT_ADMINISTRATOR, timedelta(days=30)), (ADMINISTRATOR, timedelta(days=7))]


@pytest.mark.parametrize("kwargs, expected", [
    ({"until": "2026-11-02T18:00"}, datetime(2026, 11, 2, 18, 0, tzinfo=UTC)),  # no JS: UTC
    ({"until": "2026-11-02T18:00", "tz_offset": "60"}, datetime(2026, 11, 2, 17, 0, tzinfo=UTC)),
    ({"until": "2026-11-02T18:00", "tz_offset": "-300"},
     datetime(2026, 11, 2, 23, 0, tzinfo=UTC)),
    ({"preset": "tomorrow-18"}, datetime(2026, 11, 3, 18, 0, tzinfo=UTC)),
    ({"preset": "tomorrow-18", "tz_offset": "120"}, datetime(2026, 11, 3, 16, 0, tzinfo=UTC)),
    ({"preset": "1h", "until": "2026-11-20T00:00"}, datetime(2026, 11, 2, 10, 0, tzinfo=UTC)),
])
def test_the_end_is_read_in_the_browsers_time_zone_or_as_utc_without_javascript(
    app: Flask, admin_client: FlaskClient, max_id: str, clock: FrozenClock,
    kwargs: dict[str, str], expected: datetime
) -> None:
    assert post_grant(admin_client, app, max_id, IT_ADMINISTRATOR, **kwargs).status_code == 302
    assert grants(app)[0]["until"] == expected


def test_the_grant_shows_on_the_member_page_and_in_the_people_list_with_its_expiry(
    app: Flask, admin_client: FlaskClient, max_id: str, clock: FrozenClock
) -> None:
    post_grant(admin_client, app, max_id, IT_ADMINISTRATOR, preset="8h")
    clock.advance(hours=2, minutes=30)
    listing = admin_client.get("/people/").get_data(as_text=True)
    row = re.search(rf'<tr data-member="{max_id}">(.*?)</tr>', listing, re.S).group(1)
    assert re.search(r'class="pill pill-temporary"[^>]*>IT Administrator '
                     r'<span class="pill-note">· expires in 5 h 30 min</span>', row)
    page = admin_client.get(f"/people/{max_id}").get_data(as_text=True)
    source = re.search(r'<tr data-role="IT Administrator" data-source="grant"[^>]*>(.*?)</tr>',
                       page, re.S).group(1)
    assert "Time-boxed until" in source and "2026-11-02 17:00 UTC" in source
    assert "expires in 5 h 30 min" in source and "Q4 ISO 27001 audit" in source
    assert "granted by it-admin@acme.example" in source and "End now" in source


def test_a_deactivated_or_removed_member_is_not_granted_anything(
    app: Flask, admin_client: FlaskClient, acme: Organisation, directory: Directory,
    clock: FrozenClock
) -> None:
    off = directory.scim_member(acme, "off@acme.example", active=False)
    gone = directory.scim_member(acme, "gone@acme.example", deleted=True)
    for member in (off, gone):
        response = post_grant(admin_client, app, member, IT_ADMINISTRATOR, preset="1h")
        assert response.status_code == 422 and "is not active here" in _error(response)
    assert grants(app) == []


def test_people_list_statements_stay_constant_with_grants_present(
    app: Flask, admin_client: FlaskClient, acme: Organisation, directory: Directory,
    clock: FrozenClock
) -> None:
    def grow_to(n: int, start: int) -> None:
        new = [directory.scim_member(acme, f"user{i:03}@acme.example", password=None)
               for i in range(start, n)]
        with app.app_context():
            admin = db.session.scalar(select(Membership).join(Account).where(
                Account.email == "it-admin@acme.example"))
            for i, pid in enumerate(new, start):
                member = db.session.scalar(select(Membership).where(Membership.public_id == pid))
                role = roles.get_role(IT_ADMINISTRATOR if i % 2 else ADMINISTRATOR)
                grant = role_grants.grant_role_until(admin, member, role,
                                                     clock.current + timedelta(hours=1 + i),
                                                     "audit")
                if i % 3 == 0:
                    role_grants.end_grant_early(CLI_ACTOR, grant)
            db.session.commit()

    def statements_for_one_page() -> tuple[int, int]:
        with app.app_context(), count_statements() as statements:
            response = admin_client.get("/people/")
        assert response.status_code == 200
        return len(statements), response.get_data(as_text=True).count("pill-temporary")

    grow_to(4, 0)
    small, small_temporary = statements_for_one_page()
    grow_to(80, 4)
    clock.advance(hours=2)  # a few grants run out: they stop showing, nothing else changes
    large, large_temporary = statements_for_one_page()
    assert small == large, (small, large)
    assert small <= 12
    assert (small_temporary, large_temporary) == (2, 31)


def test_htmx_grant_and_end_re_render_the_roles_section_in_place(
    app: Flask, admin_client: FlaskClient, max_id: str, clock: FrozenClock
) -> None:
    htmx = {"HX-Request": "true"}
    granted = post_grant(admin_client, app, max_id, IT_ADMINISTRATOR, preset="1h", headers=htmx)
    html = granted.get_data(as_text=True)
    assert granted.status_code == 200 and html.startswith('<section class="card" id="member-roles"')
    assert 'data-source="grant"' in html and 'value="Q4 ISO 27001 audit"' not in html
    refused = post_grant(admin_client, app, max_id, IT_ADMINISTRATOR, preset="1h", reason="",
                         headers=htmx)
    assert refused.status_code == 422 and refused.headers["HX-Reswap"] == "outerHTML"
    ended = post_end(admin_client, max_id, grants(app)[0]["id"], headers=htmx)
    assert ended.status_code == 200 and 'data-source="grant"' not in ended.get_data(as_text=True)
    assert grants(app)[0]["end_reason"] == GRANT_ENDED_EARLY


@pytest.mark.parametrize("headers", [{}, {"HX-Request": "true"}], ids=["page", "htmx"])
def test_a_member_without_people_manage_gets_403_on_the_grant_endpoints(
    app: Flask, factory: Factory, acme: Organisation, admin_client: FlaskClient, max_id: str,
    clock: FrozenClock, headers: dict[str, str]
) -> None:
    post_grant(admin_client, app, max_id, IT_ADMINISTRATOR, preset="1h")
    before = (grants(app), events(app))
    factory.member(acme, "mia@acme.example", MEMBER)
    mia = app.test_client()
    login(mia, "mia@acme.example")
    assert post_grant(mia, app, max_id, IT_ADMINISTRATOR, preset="1h",
                      headers=headers).status_code == 403
    response = post_end(mia, max_id, before[0][0]["id"], headers=headers)
    assert response.status_code == 403
    if headers:
        assert b"403 Forbidden" in response.data and b"<html" not in response.data
    assert (grants(app), events(app)) == before


def test_grant_endpoints_need_the_csrf_token(
    app: Flask, admin_client: FlaskClient, max_id: str, clock: FrozenClock
) -> None:
    assert post_grant(admin_client, app, max_id, IT_ADMINISTRATOR, preset="1h",
                      csrf=False).status_code == 400
    assert grants(app) == []
    post_grant(admin_client, app, max_id, IT_ADMINISTRATOR, preset="1h")
    assert post_end(admin_client, max_id, grants(app)[0]["id"], csrf=False).status_code == 400
    assert grants(app)[0]["ended_at"] is None


def test_another_organisations_grant_or_member_is_404(
    app: Flask, factory: Factory, admin_client: FlaskClient, max_id: str, clock: FrozenClock
) -> None:
    globex = factory.org("Globex")
    factory.it_admin(globex, "boss@globex.example")
    factory.member(globex, "gus@globex.example", MEMBER)
    gus_id = public_id(app, "gus@globex.example")
    other = app.test_client()
    login(other, "boss@globex.example")
    post_grant(other, app, gus_id, IT_ADMINISTRATOR, preset="1h")
    globex_grant = grants(app)[0]["id"]
    assert post_grant(admin_client, app, gus_id, IT_ADMINISTRATOR, preset="1h").status_code == 404
    assert post_end(admin_client, gus_id, globex_grant).status_code == 404
    assert post_end(admin_client, max_id, globex_grant).status_code == 404
    assert [g["ended_at"] for g in grants(app)] == [None]


def test_access_expire_records_each_run_out_grant_once(
    app: Flask, factory: Factory, acme: Organisation, admin_client: FlaskClient, max_id: str,
    clock: FrozenClock
) -> None:
    factory.member(acme, "mia@acme.example", MEMBER)
    mia_id = public_id(app, "mia@acme.example")
    post_grant(admin_client, app, max_id, IT_ADMINISTRATOR, preset="1h")
    post_grant(admin_client, app, mia_id, IT_ADMINISTRATOR, preset="8h")
    post_grant(admin_client, app, mia_id, ADMINISTRATOR, preset="1h")
    post_end(admin_client, mia_id, grants(app)[2]["id"])  # ended early: not an expiry
    runner = app.test_cli_runner()
    assert runner.invoke(args=["access", "expire"]).output == "0 grants ended.\n"
    clock.advance(hours=3)
    assert runner.invoke(args=["access", "expire"]).output == "1 grant ended.\n"
    assert runner.invoke(args=["access", "expire"]).output == "0 grants ended.\n"
    max_grant, mia_grant, ended_early = grants(app)
    assert (max_grant["end_reason"], max_grant["ended_at"]) == (GRANT_EXPIRED, max_grant["until"])
    assert mia_grant["ended_at"] is None and ended_early["end_reason"] == GRANT_ENDED_EARLY
    expired = [e for e in events(app) if e["action"] == "member.role_grant_expired"]
    assert len(expired) == 1
    assert {"target": "max@acme.example", "role": IT_ADMINISTRATOR, "reason": "Q4 ISO 27001 audit",
            "until": "2026-11-02T10:00:00+00:00", "granted_by": "it-admin@acme.example",
            "actor": "automatic expiry"}.items() <= expired[0].items()


def test_a_granted_member_sees_the_scim_status_block_but_never_a_token(
    app: Flask, acme: Organisation, admin_client: FlaskClient, max_id: str, clock: FrozenClock
) -> None:
    with app.app_context():
        issued = scim_tokens.issue_token(db.session.get(Organisation, acme.id), CLI_ACTOR)
        plaintext = issued.plaintext
        db.session.commit()
    post_grant(admin_client, app, max_id, IT_ADMINISTRATOR, preset="1h")
    max_client = app.test_client()
    login(max_client, "max@acme.example")
    page = max_client.get("/settings/iam/scim").get_data(as_text=True)
    assert "Status for auditors" in page and "Token issued" in page
    assert plaintext not in page
    people_page = admin_client.get(f"/people/{max_id}").get_data(as_text=True)
    assert plaintext not in people_page
    assert csrf_from(page.encode())  # the screen still works as usual for them


@pytest.mark.parametrize("left, words", [
    (timedelta(seconds=20), "expires in 1 min"), (timedelta(minutes=45), "expires in 45 min"),
    (timedelta(minutes=60), "expires in 1 h"),
    (timedelta(hours=5, minutes=59), "expires in 5 h 59 min"),
    (timedelta(hours=7, minutes=59, seconds=30), "expires in 8 h"),  # an 8 h grant just given
    (timedelta(hours=23, minutes=40), "expires in 24 h"), (timedelta(hours=47), "expires in 47 h"),
    (timedelta(days=29, hours=23), "expires in 30 days"),
    (timedelta(0), "expired"),
])
def test_expiry_is_said_in_words(left: timedelta, words: str) -> None:
    now = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    assert role_grants.expires_in_words(now + left, now) == words
