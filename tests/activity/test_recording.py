"""Every SCIM request is recorded: successes, errors, bad tokens; no secrets, no half-changes."""

from __future__ import annotations

import json
import sqlite3
import threading
from typing import Any

import pytest
from flask import Flask, Response, abort, current_app, request
from sqlalchemy import event, select

from portal.extensions import csrf, db
from portal.models import Group, Organisation
from portal.services import audit
from portal.services.provisioning_activity import note_effect
from scim_api.errors import scim_error_response
from tests.activity.conftest import ScimOrg, activity_rows, dump_database

PASSWORD_SENT = "Sup3r-Secret-Passw0rd!"


@pytest.fixture
def probe(app: Flask) -> None:
    """Routes under a SCIM base URL that succeed, fail after writing, or refuse large bodies."""

    def create_group(org_key: str) -> Response:
        org = db.session.scalar(select(Organisation).where(Organisation.key == org_key))
        assert org is not None
        name = request.get_json(force=True)["displayName"]
        db.session.add(Group(organisation_id=org.id, display_name=name,
                             display_name_lower=name.lower()))
        db.session.flush()
        if name == "Duplicate":  # the change is written, then the request fails
            return scim_error_response(409, "A group with this name exists.", "uniqueness")
        note_effect(f"created group {name}")
        return Response(json.dumps({"id": "g-1", "displayName": name}), 201,
                        content_type="application/scim+json")

    def limited(org_key: str) -> Response:
        if (request.content_length or 0) > current_app.config["SCIM_MAX_BODY_BYTES"]:
            abort(413)
        return scim_error_response(400, "Unparseable body.", "invalidSyntax")

    def late_conflict(org_key: str) -> Response:
        org = db.session.scalar(select(Organisation).where(Organisation.key == org_key))
        assert org is not None
        for _ in range(2):  # the duplicate only surfaces when the request's commit flushes
            db.session.add(Group(organisation_id=org.id, display_name="Twin",
                                 display_name_lower="twin"))
        return Response("{}", 201, content_type="application/scim+json")

    def audited(org_key: str) -> Response:
        org = db.session.scalar(select(Organisation).where(Organisation.key == org_key))
        audit.record(audit.Actor("Okta SCIM Client"), "scim.user_deactivated", org,
                     target_label="bob@acme.example")
        return Response("{}", 200, content_type="application/scim+json")

    def unflushed(org_key: str) -> Response:  # a read that leaves a change in the Session
        org = db.session.scalar(select(Organisation).where(Organisation.key == org_key))
        assert org is not None
        db.session.add(Group(organisation_id=org.id, display_name="Late",
                             display_name_lower="late"))
        return Response("{}", 200, content_type="application/scim+json")

    for rule, view in (("Probe", create_group), ("Limited", limited),
                       ("LateConflict", late_conflict), ("Audited", audited)):
        app.add_url_rule(f"/scim/v2/<org_key>/{rule}", view.__name__, csrf.exempt(view),
                         methods=["POST"])
    app.add_url_rule("/scim/v2/<org_key>/Unflushed", "unflushed", unflushed)


def test_successful_request_is_recorded_with_its_effect(scim_org: ScimOrg, app: Flask,
                                                        probe: None) -> None:
    response = scim_org.call("POST", "/Probe", json={"displayName": "Engineering"})
    assert response.status_code == 201
    [row] = activity_rows(app)
    assert row.organisation_id == scim_org.org.id
    assert (row.method, row.status, row.resource_type) == ("POST", 201, "Other")
    assert row.resource_id == "g-1"  # taken from the created resource
    assert row.effect == "created group Engineering"
    assert row.client == "Okta SCIM Client 1.0.0"
    assert row.token_valid is True
    assert row.request_body == {"displayName": "Engineering"}
    assert row.duration_ms >= 0 and row.time is not None


def test_failed_request_leaves_no_partial_change_but_is_recorded(scim_org: ScimOrg, app: Flask,
                                                                 probe: None) -> None:
    response = scim_org.call("POST", "/Probe", json={"displayName": "Duplicate"})
    assert response.status_code == 409
    with app.app_context():
        assert db.session.scalar(select(Group)) is None  # the flushed group was rolled back
    [row] = activity_rows(app)
    assert (row.status, row.scim_type) == (409, "uniqueness")
    assert row.detail == "A group with this name exists."
    assert row.effect == "nothing changed"


def test_request_whose_commit_fails_is_recorded_with_the_error_the_idp_got(
    scim_org: ScimOrg, app: Flask, probe: None
) -> None:
    response = scim_org.call("POST", "/LateConflict", json={})
    assert response.status_code == 409
    with app.app_context():
        assert db.session.scalar(select(Group)) is None
    [row] = activity_rows(app)
    assert row.status == 409 and row.effect == "nothing changed"


def test_effect_falls_back_to_the_audit_events_the_request_wrote(
    scim_org: ScimOrg, app: Flask, probe: None
) -> None:
    scim_org.call("POST", "/Audited", json={})
    [row] = activity_rows(app)
    assert row.effect == "scim user deactivated: bob@acme.example"


def test_unknown_path_is_recorded_as_404(scim_org: ScimOrg, app: Flask) -> None:
    response = scim_org.call("GET", "/NoSuchThing/42?attributes=userName")
    assert response.status_code == 404
    [row] = activity_rows(app)
    assert row.status == 404 and row.organisation_id == scim_org.org.id
    assert row.path == f"{scim_org.base}/NoSuchThing/42?attributes=userName"
    assert row.resource_id == "42"


def test_bad_token_request_is_recorded_as_such_for_the_named_organisation(
    scim_org: ScimOrg, app: Flask
) -> None:
    scim_org.call("GET", "/Users", token="dpms_scim_not-the-right-one")
    [row] = activity_rows(app)
    assert row.organisation_id == scim_org.org.id
    assert row.token_valid is False


def test_what_a_request_without_the_valid_token_sends_is_not_kept_in_the_log(
    scim_org: ScimOrg, app: Flask
) -> None:
    """Anyone who knows the base URL can send one: their words stay out of the org's log."""
    planted = json.dumps({"userName": "Call +1 555 0100 to restore your access"})
    wrong_token = scim_org.call("POST", "/Users", token="dpms_scim_not-the-right-one",
                                data=planted, content_type="application/scim+json")
    no_token = scim_org.client.post(f"{scim_org.base}/Users", data=planted,
                                    content_type="application/scim+json")
    assert wrong_token.status_code == no_token.status_code == 401
    assert scim_org.call("POST", "/Users", data=planted,
                         content_type="application/scim+json").status_code == 201
    refused_1, refused_2, accepted = activity_rows(app)
    for refused in (refused_1, refused_2):
        assert refused.token_valid is False and refused.organisation_id == scim_org.org.id
        assert refused.request_body == {
            "bytes": len(planted),
            "note": "not stored: the request did not carry the organisation's valid SCIM token"}
    assert accepted.request_body == json.loads(planted)
    assert "555 0100" not in json.dumps([refused_1.request_body, refused_2.request_body])
    planted_path = "/Users/Call-555-0100-now?filter=userName%20eq%20%22call%20555%200100%22"
    assert scim_org.call("GET", planted_path, token="dpms_scim_wrong").status_code == 401
    assert scim_org.call("GET", "/ServiceProviderConfig", token="dpms_scim_wrong").status_code \
        == 401
    by_path, config = activity_rows(app)[3:]
    assert (by_path.path, by_path.resource_id) == (f"{scim_org.base}/Users/…?…", None)
    assert (config.path, config.resource_type) == (f"{scim_org.base}/ServiceProviderConfig",
                                                   "ServiceProviderConfig")


def test_request_naming_no_known_organisation_is_recorded_without_one(
    scim_org: ScimOrg, app: Flask
) -> None:
    scim_org.client.get("/scim/v2/not-an-org/Users", headers=scim_org.headers())
    [row] = activity_rows(app)
    assert row.organisation_id is None and row.status in (401, 404)
    assert row.token_valid is False  # a real token, but not this URL's


def test_oversized_body_is_refused_and_recorded_without_storing_it(
    scim_org: ScimOrg, app: Flask, probe: None
) -> None:
    app.config["SCIM_MAX_BODY_BYTES"] = 1000
    response = scim_org.call("POST", "/Limited", data="x" * 5000,
                             content_type="application/scim+json")
    assert response.status_code == 413
    [row] = activity_rows(app)
    assert row.status == 413
    assert row.request_body == {"truncated": True, "bytes": 5000,
                                "note": "larger than accepted; not stored"}


def test_malformed_request_is_recorded_with_scim_type(scim_org: ScimOrg, app: Flask,
                                                      probe: None) -> None:
    scim_org.call("POST", "/Limited", data='{"userName": "x", "active": tru',
                  content_type="application/scim+json")
    scim_org.call("POST", "/Limited", data='{"userName": "x", "password": "hunter22"',
                  content_type="application/scim+json")
    plain, secret = activity_rows(app)
    assert (plain.status, plain.scim_type) == (400, "invalidSyntax")
    assert plain.request_body == {"unparsed": '{"userName": "x", "active": tru',
                                  "note": "not valid JSON"}
    assert "hunter22" not in json.dumps(secret.request_body)
    assert secret.request_body["bytes"] == 40


def test_large_body_is_stored_truncated(scim_org: ScimOrg, app: Flask, probe: None) -> None:
    members = [{"value": f"user-{i:05d}"} for i in range(2000)]
    scim_org.call("POST", "/Limited", json={"members": members})
    [row] = activity_rows(app)
    assert row.request_body["truncated"] is True
    assert len(row.request_body["excerpt"]) == 16 * 1024


def test_password_and_token_are_stored_in_no_column_of_any_table(
    scim_org: ScimOrg, app: Flask, probe: None
) -> None:
    body = {"displayName": "Ops", "password": PASSWORD_SENT,
            "nested": [{"Password": PASSWORD_SENT, "keep": 1}],
            "Operations": [{"op": "replace", "path": "password", "value": PASSWORD_SENT}],
            "note": f"token={scim_org.token}"}
    scim_org.call("POST", "/Probe", json=body)
    scim_org.call("POST", "/Limited", data=json.dumps(body)[:-3],
                  content_type="application/scim+json")
    scim_org.client.get(f"{scim_org.base}/Users?access_token={scim_org.token}",
                        headers=scim_org.headers())
    rows = activity_rows(app)
    assert len(rows) == 3
    assert rows[0].request_body["nested"] == [{"keep": 1}]
    assert rows[0].request_body["Operations"][0]["value"] == "[removed]"
    everything = dump_database(app)
    assert PASSWORD_SENT not in everything
    assert scim_org.token not in everything
    assert scim_org.token[len("dpms_scim_"):] not in everything


def test_client_name_is_stored_without_credentials(scim_org: ScimOrg, app: Flask) -> None:
    scim_org.client.get(f"{scim_org.base}/Users",
                        headers={"Authorization": f"Bearer {scim_org.token}",
                                 "User-Agent": f"curl/8 password={PASSWORD_SENT}"})
    [row] = activity_rows(app)
    assert row.client == "curl/8 password=[removed]"


def test_bodies_and_paths_postgresql_cannot_store_are_recorded_safely(
    scim_org: ScimOrg, app: Flask, probe: None
) -> None:
    scim_org.call("POST", "/Limited", data='{"userName": NaN, "n": Infinity}',
                  content_type="application/scim+json")
    scim_org.call("GET", "/Users/abc%00def")
    scim_org.call("GET", "/Groups/abc%00def")
    constant, user, group = activity_rows(app)
    assert constant.status == 400
    assert constant.request_body == {"unparsed": '{"userName": NaN, "n": Infinity}',
                                     "note": "not valid JSON"}
    for row in (user, group):
        assert row.status == 404 and "\x00" not in row.path and row.resource_id == "abcdef"


@pytest.mark.postgres_only
def test_a_read_or_a_refusal_commits_without_waiting_for_the_disk_a_change_waits(
    app: Flask, scim_org: ScimOrg
) -> None:
    """On PostgreSQL only records of reads and refusals use asynchronous commit."""
    from tests.scim.test_query_counts import statements

    def relaxed(method: str, path: str, **kwargs: object) -> tuple[int, bool]:
        with statements(app) as seen:
            status = scim_org.call(method, path, **kwargs).status_code
        return status, any("synchronous_commit" in s for s in seen)

    assert relaxed("GET", "/Users") == (200, True)
    assert relaxed("GET", "/Users", token="dpms_scim_wrong") == (401, True)
    created = relaxed("POST", "/Users", json={"userName": "ann@acme.example"})
    assert created == (201, False)  # a change and its record wait for the flush
    assert relaxed("POST", "/Users", json={"userName": "ann@acme.example"}) == (409, True)
    assert [r.status for r in activity_rows(app)][-4:] == [200, 401, 201, 409]


@pytest.mark.postgres_only
def test_only_a_reads_record_lets_its_transaction_skip_the_wait_for_the_disk(
    app: Flask, scim_org: ScimOrg
) -> None:
    """The setting the record's INSERT carries really is in force when the request commits."""
    in_force: list[str] = []

    def raw(conn: Any, sql: str) -> Any:
        cursor = conn.connection.dbapi_connection.cursor()
        cursor.execute(sql)
        return cursor.fetchone() if cursor.description else None

    def watch(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "scim_token.digest" in statement:  # the request's first statement
            raw(conn, "SET LOCAL synchronous_commit TO on")  # the test server runs with off
        elif statement.startswith("INSERT INTO provisioning_activity"):
            in_force.append(raw(conn, "SHOW synchronous_commit")[0])

    with app.app_context():
        event.listen(db.engine, "after_cursor_execute", watch)
    try:
        assert scim_org.call("GET", "/Users").status_code == 200
        assert scim_org.call("POST", "/Users", json={"userName": "ann@acme.example"}
                             ).status_code == 201
    finally:
        with app.app_context():
            event.remove(db.engine, "after_cursor_execute", watch)
    assert in_force == ["off", "on"]  # a read's record; a change and its record wait


@pytest.mark.sqlite_only
def test_on_sqlite_a_reads_record_is_committed_at_once_a_changes_with_the_change(
    app: Flask, scim_org: ScimOrg
) -> None:
    """SQLite's one write lock is held for a read's record alone, not until the request ends."""
    pending_at_commit: list[bool] = []
    # The token's first use also stamps its "last used" (once a minute): a second write.
    assert scim_org.call("GET", "/Users").status_code == 200

    def watch(conn: Any) -> None:  # the request's own commit, at its end
        pending_at_commit.append(conn.connection.driver_connection.in_transaction)

    with app.app_context():
        event.listen(db.engine, "commit", watch)
    try:
        assert scim_org.call("GET", "/Users").status_code == 200
        assert scim_org.call("GET", "/Users", token="dpms_scim_wrong").status_code == 401
        assert scim_org.call("POST", "/Users", json={"userName": "ann@acme.example"}
                             ).status_code == 201
        assert scim_org.call("POST", "/Users", json={"userName": "ann@acme.example"}
                             ).status_code == 409
    finally:
        with app.app_context():
            event.remove(db.engine, "commit", watch)
    # The read's and both refusals' records were committed on their own, leaving those
    # requests nothing to commit; the create's record is committed with the new User.
    assert pending_at_commit == [True]
    assert [r.status for r in activity_rows(app)][-4:] == [200, 401, 201, 409]


def test_a_request_commits_only_when_something_is_left_to_commit(
    app: Flask, scim_org: ScimOrg, probe: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read whose record is already committed ends without a commit (SQLite); a change
    still pending in the Session, even in a GET, is committed with the request."""
    from sqlalchemy.orm import Session

    assert scim_org.call("GET", "/Users").status_code == 200  # the token's "last used"
    real_commit = Session.commit
    commits: list[str] = []

    def counted(self: Session) -> None:
        commits.append(request.path.rpartition("/")[2])
        real_commit(self)

    monkeypatch.setattr(Session, "commit", counted)
    assert scim_org.call("GET", "/Users").status_code == 200
    assert scim_org.call("GET", "/Users", token="dpms_scim_wrong").status_code == 401
    assert scim_org.call("GET", "/Unflushed").status_code == 200
    monkeypatch.setattr(Session, "commit", real_commit)
    with app.app_context():
        sqlite = db.engine.dialect.name == "sqlite"
        assert db.session.scalar(select(Group.display_name)) == "Late"  # committed
    # PostgreSQL keeps a read's record in the request's transaction: it always commits.
    assert commits == (["Unflushed"] if sqlite else ["Users", "Users", "Unflushed"])
    assert [(r.path.rpartition("/")[2], r.status) for r in activity_rows(app)][-3:] == [
        ("Users", 200), ("Users", 401), ("Unflushed", 200)]


@pytest.mark.parametrize("key", ["%C3%A9", "%00", "caf%C3%A9%00"])
def test_an_odd_organisation_key_with_a_valid_token_is_refused_and_recorded(
    app: Flask, scim_org: ScimOrg, key: str
) -> None:
    response = scim_org.client.get(f"/scim/v2/{key}/Users", headers=scim_org.headers())
    assert response.status_code in (401, 404)
    assert response.get_json(force=True)["schemas"] == [
        "urn:ietf:params:scim:api:messages:2.0:Error"]
    [row] = [r for r in activity_rows(app) if r.path.endswith("/Users")]
    assert row.status == response.status_code and row.organisation_id is None
    assert row.token_valid is False


def test_a_refused_token_is_logged_with_the_401_message_intact_and_the_token_nowhere(
    app: Flask, scim_org: ScimOrg, admin_client: Any
) -> None:
    from scim_api.auth import UNAUTHORIZED_DETAIL

    wrong = "eyJ0eXAiOiJKV1Qi.not-our-token-9f8e7d"
    assert scim_org.call("GET", "/Users", token=wrong).status_code == 401
    row = activity_rows(app)[-1]
    assert row.status == 401 and row.detail == UNAUTHORIZED_DETAIL
    assert "Bearer <token>' to this organisation" in row.detail
    assert wrong not in dump_database(app)
    page = admin_client.get("/settings/iam/scim/activity").get_data(as_text=True)
    assert "Bearer &lt;token&gt;&#39; to this organisation" in page
    assert "[removed] to this" not in page


@pytest.mark.sqlite_only
def test_an_alerting_refusal_writes_its_record_incident_and_notices_in_one_transaction(
    app: Flask, scim_org: ScimOrg, factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A refusal that may raise an alert is not committed alone: the notices follow it."""
    from portal.services import scim_notices

    factory.it_admin(scim_org.org, "ada@acme.example")
    assert scim_org.call("GET", "/Users").status_code == 200  # the token's "last used"
    in_transaction: list[bool] = []
    notify = scim_notices.notify_if_failing

    def watched(org: Organisation) -> Any:
        driver = db.session.connection().connection.driver_connection
        in_transaction.append(driver.in_transaction)
        return notify(org)

    monkeypatch.setattr(scim_notices, "notify_if_failing", watched)
    bad_filter = "/Users?filter=userName%20zz%20%22x%22"  # 400 invalidFilter: breaks it
    statuses = [scim_org.call("GET", bad_filter).status_code for _ in range(3)]
    assert statuses == [400, 400, 400]
    assert in_transaction == [True, True, True]  # under the record's write lock
    assert [r.status for r in activity_rows(app)][-3:] == [400, 400, 400]


@pytest.mark.sqlite_only
def test_a_read_whose_empty_commit_fails_after_its_record_keeps_one_record(
    app: Flask, scim_org: ScimOrg, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The record committed on its own is not written twice when the request's commit fails."""
    from sqlalchemy.exc import OperationalError
    from sqlalchemy.orm import Session

    from portal import security

    assert scim_org.call("GET", "/Users").status_code == 200  # the token's "last used"
    before = len(activity_rows(app))
    real_commit = Session.commit
    calls: list[int] = []

    def failing_once(self: Session) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise OperationalError("COMMIT", {}, Exception("disk I/O error"))
        real_commit(self)

    monkeypatch.setattr(Session, "commit", failing_once)
    # A read's transaction is left with nothing to commit and is not committed at all
    # (portal.security._nothing_to_commit); when it is, and that fails:
    monkeypatch.setattr(security, "_nothing_to_commit", lambda: False)
    response = scim_org.call("GET", "/Users")
    monkeypatch.setattr(Session, "commit", real_commit)
    assert response.status_code == 503
    rows = activity_rows(app)
    assert len(rows) == before + 1
    assert rows[-1].status == 200  # committed before the failure, as it was then


@pytest.mark.sqlite_only
@pytest.mark.parametrize("held_for", [0.0003, 0.05])
def test_a_lone_write_waits_for_the_lock_and_leaves_the_busy_timeout_as_it_was(
    app: Flask, held_for: float
) -> None:
    """Another writer holds SQLite's lock briefly (quick tries) or longer (SQLite's wait)."""
    from portal.write_queue import sqlite_idle, write_alone

    path = app.config["SQLALCHEMY_DATABASE_URI"].removeprefix("sqlite:///")
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("CREATE TABLE lone (note TEXT)")
    with app.app_context():
        connection = db.session.connection()
        driver = connection.connection.dbapi_connection
        timeout_before = driver.execute("PRAGMA busy_timeout").fetchone()[0]
        assert timeout_before > 0 and sqlite_idle(connection)
        other.execute("BEGIN IMMEDIATE")
        release = threading.Timer(held_for, lambda: other.execute("COMMIT"))
        release.start()
        write_alone(connection, lambda: connection.exec_driver_sql(
            "INSERT INTO lone VALUES ('written alone')"))
        release.join()
        assert sqlite_idle(connection)  # committed at once
        assert driver.execute("PRAGMA busy_timeout").fetchone()[0] == timeout_before
        db.session.rollback()  # nothing left to undo: the write stands
    assert other.execute("SELECT note FROM lone").fetchall() == [("written alone",)]
    other.close()


@pytest.mark.sqlite_only
def test_a_lone_write_that_cannot_begin_raises_sqlalchemys_error_for_the_request_to_answer(
    app: Flask,
) -> None:
    """A failure to take the lock or commit becomes a DBAPIError (answered 503), never a 500."""
    from sqlalchemy.exc import DBAPIError

    from portal.write_queue import write_alone

    written: list[bool] = []
    with app.app_context():
        connection = db.session.connection()
        connection.connection.dbapi_connection.close()  # the file is gone from under it
        with pytest.raises(DBAPIError):
            write_alone(connection, lambda: written.append(True))
        db.session.rollback()
    assert written == []
