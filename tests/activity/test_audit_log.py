"""IT Settings → Audit Log: filters, paging, "from where", CSV export with a formula guard."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from portal.extensions import db
from portal.models import AuditEvent, Membership, Organisation
from portal.services import organisations, scim_tokens
from portal.services.audit import CLI_ACTOR, Actor
from portal.services.audit_details import action_label
from portal.services.audit_log import PAGE_SIZE, csv_cell
from tests.activity.conftest import ScimOrg

DAY = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


@pytest.fixture
def add_event(app: Flask):
    """Insert an audit event with chosen fields."""

    def add(org: Organisation, action: str = "scim.user_created", *, at: datetime = DAY,
            actor: str = "Okta SCIM Client", target: str | None = "alice@acme.example",
            ip: str | None = "203.0.113.9", details: dict | None = None) -> int:
        with app.app_context():
            event = AuditEvent(organisation_id=org.id, actor_label=actor, action=action,
                               target_type="member", target_label=target, ip_address=ip,
                               details=details or {}, created_at=at)
            db.session.add(event)
            db.session.commit()
            return event.id

    return add


def _ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'data-event-id="(\d+)"', html)]


def _csv(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(response.get_data(as_text=True))))


@pytest.mark.parametrize("path", ["/settings/audit", "/settings/audit/export.csv"])
def test_member_without_audit_permission_gets_403(member_client: FlaskClient, path: str) -> None:
    assert member_client.get(path).status_code == 403
    assert member_client.get(path, headers={"HX-Request": "true"}).status_code == 403


def test_log_shows_who_what_when_and_from_where_for_this_organisation_only(
    admin_client: FlaskClient, scim_org: ScimOrg, add_event, factory
) -> None:
    mine = add_event(scim_org.org, details={"role": "Member"})
    add_event(factory.org("Globex"))
    response = admin_client.get("/settings/audit")
    html = response.get_data(as_text=True)
    assert mine in _ids(html) and len(_ids(html)) == len(set(_ids(html)))
    with admin_client.application.app_context():
        globex_ids = set(db.session.scalars(select(AuditEvent.id).join(Organisation).where(
            Organisation.name == "Globex")))
    assert not globex_ids & set(_ids(html))
    assert 'data-testid="from-where">203.0.113.9<' in html and "from where" in html
    assert "Okta SCIM Client" in html
    assert "HX-Request" in response.headers["Vary"]


def test_filters_by_action_actor_text_and_dates(admin_client: FlaskClient, scim_org: ScimOrg,
                                                add_event) -> None:
    created = add_event(scim_org.org, "scim.user_created", at=DAY - timedelta(days=3))
    deactivated = add_event(scim_org.org, "scim.user_deactivated", target="bob@acme.example")
    by_admin = add_event(scim_org.org, "scim.token_rotated", actor="ada@acme.example",
                         target="dpms_scim_…a1b2", at=DAY + timedelta(days=1))

    def ids(query: str) -> list[int]:
        html = admin_client.get("/settings/audit?" + query).get_data(as_text=True)
        return [i for i in _ids(html) if i in (created, deactivated, by_admin)]

    assert ids("action=scim.user_deactivated") == [deactivated]
    assert ids("actor=ADA@") == [by_admin]
    assert ids("q=bob@") == [deactivated]
    assert ids("from=2026-03-01&to=2026-03-02") == [deactivated]
    assert ids("to=2026-02-27") == [created]
    assert ids("from=2026-03-03") == [by_admin]


def test_unusable_dates_are_reported_and_nothing_is_listed_or_exported(
    admin_client: FlaskClient, scim_org: ScimOrg, add_event, app: Flask
) -> None:
    """A reader who believes a date range applied must not get the whole log instead."""
    event = add_event(scim_org.org)
    for query, message in (("from=yesterday", "From: enter a date as YYYY-MM-DD."),
                           ("from=2026-03-05&to=2026-03-01",
                            "The end date is before the start date.")):
        html = admin_client.get("/settings/audit?" + query).get_data(as_text=True)
        assert message in html and "Nothing is listed or exported" in html
        assert event not in _ids(html) and _ids(html) == []
        assert "Fix the filters above to see events." in html
        assert "/settings/audit/export.csv" not in html
        export = admin_client.get("/settings/audit/export.csv?" + query)
        assert export.status_code == 302
        assert export.headers["Location"] == "/settings/audit?" + query
        assert message in admin_client.get(export.headers["Location"]).get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(AuditEvent).where(
            AuditEvent.action == "audit_log.exported")) is None


def test_filtering_in_place_updates_the_export_link_to_the_same_filters(
    admin_client: FlaskClient, scim_org: ScimOrg, add_event
) -> None:
    """The form swaps the results (HTMX): the export link must follow, not stay unfiltered."""
    wanted = add_event(scim_org.org, "scim.user_deactivated", target="bob@acme.example")
    other = add_event(scim_org.org, "scim.user_created")
    page = admin_client.get("/settings/audit").get_data(as_text=True)
    assert 'hx-target="#audit-results"' in page and '<div id="audit-results">' in page
    assert 'href="/settings/audit/export.csv"' in page
    part = admin_client.get("/settings/audit?action=scim.user_deactivated&q=bob",
                            headers={"HX-Request": "true", "HX-Target": "audit-results"})
    html = part.get_data(as_text=True)
    assert b"<html" not in part.data and _ids(html) == [wanted]
    assert "Show newest, unfiltered" in html and "HX-Target" in part.headers["Vary"]
    link = re.search(r'href="(/settings/audit/export\.csv[^"]*)"', html)
    assert link and "Exports the events matching these filters" in html
    rows = _csv(admin_client.get(link.group(1).replace("&amp;", "&")))
    assert [row[2] for row in rows[1:]] == ["scim.user_deactivated"] and other


def test_htmx_paging_keeps_filters(admin_client: FlaskClient, scim_org: ScimOrg,
                                   add_event) -> None:
    ids = [add_event(scim_org.org, "scim.group_created", at=DAY + timedelta(minutes=i))
           for i in range(PAGE_SIZE + 7)]
    html = admin_client.get("/settings/audit?action=scim.group_created").get_data(as_text=True)
    assert _ids(html) == ids[::-1][:PAGE_SIZE]
    more = re.search(r'hx-get="([^"]+)" hx-target="closest tr"', html)
    assert more and "action=scim.group_created" in more.group(1)
    part = admin_client.get(more.group(1).replace("&amp;", "&"), headers={"HX-Request": "true"})
    assert _ids(part.get_data(as_text=True)) == ids[::-1][PAGE_SIZE:]
    assert b"<html" not in part.data and b"Load more" not in part.data


def test_csv_export_escapes_and_guards_against_formulas(
    admin_client: FlaskClient, scim_org: ScimOrg, add_event, app: Flask
) -> None:
    add_event(scim_org.org, target='=HYPERLINK("http://evil","x")', actor="+cmd|' /C calc'!A0",
              details={"note": 'comma, "quote"\nnewline'})
    add_event(scim_org.org, target="-2+3", actor="@SUM(A1)", at=DAY - timedelta(hours=1))
    response = admin_client.get("/settings/audit/export.csv?action=scim.user_created")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"].startswith(
        f'attachment; filename="audit-log-{scim_org.org.key}-')
    rows = _csv(response)
    assert rows[0] == ["time", "actor", "action", "target_type", "target_id", "target",
                       "ip_address", "details", "event", "details_in_words"]
    assert len(rows) == 3
    first, second = rows[1], rows[2]
    assert (first[2], first[8]) == ("scim.user_created", action_label("scim.user_created"))
    assert first[8] and first[8] != first[2]  # in words, as the audit log page shows it
    assert first[0] == DAY.isoformat()
    assert first[1] == "'+cmd|' /C calc'!A0"
    assert first[5] == "'=HYPERLINK(\"http://evil\",\"x\")"
    assert first[7] == '{"note": "comma, \\"quote\\"\\nnewline"}'
    assert first[6] == "203.0.113.9"
    assert second[1] == "'@SUM(A1)" and second[5] == "'-2+3"
    with app.app_context():
        exported = db.session.scalar(select(AuditEvent).where(
            AuditEvent.action == "audit_log.exported"))
        assert exported is not None and exported.actor_label == "it-admin@acme.example"
        assert exported.details == {"rows": 2, "filters": {"action": "scim.user_created"}}


def test_page_and_csv_show_details_in_words_and_the_csv_keeps_raw_values_too(
    admin_client: FlaskClient, scim_org: ScimOrg, add_event, app: Flask
) -> None:
    with app.app_context():
        admin = db.session.scalar(select(Membership).where(
            Membership.organisation_id == scim_org.org.id))
        assert admin is not None
        admin_id, admin_label = admin.public_id, admin.label
    raw = {"members": [admin_id], "count": 1, "active": True,
           "access_ended_at": "2026-03-02T11:59:59.250000+00:00",
           "displayName": {"from": "IT", "to": "IT Ops"}}
    add_event(scim_org.org, "group.members_added", details=raw)
    html = admin_client.get("/settings/audit?action=group.members_added").get_data(as_text=True)
    cell = re.search(r'<td class="small cell-details">(.*?)</td>', html, re.S).group(1)
    assert f'<span class="muted">Members:</span> {admin_label}</div>' in cell
    assert '<span class="muted">Active:</span> Yes</div>' in cell
    assert ('<span class="muted">Access ended:</span> <time datetime="2026-03-02T11:59:59.250000'
            '+00:00">2026-03-02 11:59:59</time>') in cell
    assert '<span class="muted">Display name:</span> IT → IT Ops</div>' in cell
    assert admin_id not in cell and "true" not in cell
    rows = _csv(admin_client.get("/settings/audit/export.csv?action=group.members_added"))
    assert json.loads(rows[1][7]) == raw  # machine-readable: ids, ISO times, JSON booleans
    assert f'"members": ["{admin_id}"]' in rows[1][7] and '"active": true' in rows[1][7]
    assert rows[1][9] == (f"Members: {admin_label}; Count: 1; Active: Yes; Access ended: "
                          "2026-03-02 11:59:59; Display name: IT → IT Ops")  # as the page says


def test_csv_cell_guard() -> None:
    assert [csv_cell(v) for v in ("=1+1", "+1", "-1", "@x", "\tx", "plain", None, 5)] == \
        ["'=1+1", "'+1", "'-1", "'@x", "'\tx", "plain", "", "5"]


def test_token_and_rollout_changes_are_audited_with_actor(app: Flask, scim_org: ScimOrg,
                                                          factory) -> None:
    admin = factory.it_admin(scim_org.org, "ada@acme.example")
    with app.app_context():
        org = db.session.get(Organisation, scim_org.org.id)
        from portal.models import Account

        actor = Actor.of(db.session.get(Account, admin.account_id))
        scim_tokens.issue_token(org, actor)
        organisations.set_scim_rollout(org, False, CLI_ACTOR)
        organisations.set_scim_rollout(org, True, CLI_ACTOR)
        db.session.commit()
        events = [(e.action, e.actor_label) for e in db.session.scalars(
            select(AuditEvent).where(AuditEvent.organisation_id == org.id)
            .order_by(AuditEvent.id))]
    assert ("scim.token_generated", "command line") in events  # the fixture's first token
    assert ("scim.token_rotated", "ada@acme.example") in events
    assert events[-2:] == [("scim.rollout_withdrawn", "command line"),
                           ("scim.rollout_released", "command line")]
