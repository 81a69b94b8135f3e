"""Recording every SCIM request in the provisioning activity log.

A hook that runs before every other one (including the bearer-token check) starts a
timer and registers the write with `record_regardless`: the record is one insert at
the end of the request, in the same transaction as a successful request's changes,
or on its own after a failed request's changes were rolled back. So requests
rejected for a bad token, unknown paths, oversized bodies and errors are all
recorded, and a record never describes a half-done change.
"""

from __future__ import annotations

import json
import logging
from time import perf_counter
from typing import Any

from flask import Request, Response, current_app
from sqlalchemy import bindparam, func, insert, literal_column, select, true

from portal import write_queue
from portal.errors import is_scim_request
from portal.extensions import db
from portal.flask_app import current_request, request_globals
from portal.models import Organisation, ProvisioningActivity, utcnow
from portal.prepared import Prepared, session_connection
from portal.security import record_regardless
from portal.services import scim_notices, scim_tokens
from portal.services.provisioning_activity import effect_from_audit, note_effect, noted_effects
from scim_api.scrub import TooManySecrets, body_secrets, scrub_body, scrub_query, scrub_text

__all__ = ["note_effect", "start_recording"]

log = logging.getLogger(__name__)

# /scim/v2/<org_key>/<segment>: the resource type the segment names.
RESOURCE_TYPES = {
    "users": "User",
    "groups": "Group",
    "serviceproviderconfig": "ServiceProviderConfig",
    "resourcetypes": "ResourceTypes",
    "schemas": "Schemas",
    "bulk": "Bulk",
    "me": "Me",
    ".search": "Search",
}


NOT_STORED_WITHOUT_TOKEN = "not stored: the request did not carry the organisation's valid SCIM token"


def start_recording() -> None:
    """Start timing a SCIM request and arrange for it to be recorded, whatever its outcome."""
    if not is_scim_request():
        return
    ctx_g = request_globals()
    ctx_g.scim_started = perf_counter()
    ctx_g.scim_started_at = utcnow()
    # Last: on SQLite a read's record may then be committed on its own (see _write).
    record_regardless(_write, last=True)


def _presented_token(req: Request) -> str:
    header = req.environ.get("HTTP_AUTHORIZATION", "")
    scheme, _, rest = header.strip().partition(" ")
    return rest.strip() if scheme.lower() == "bearer" else header.strip()


def _path_parts(req: Request) -> tuple[str, str | None, str | None]:
    """Return (organisation key, resource type, resource id) named by the URL."""
    parts = req.path.split("/")[3:]
    key = parts[0] if parts else ""
    segment = parts[1] if len(parts) > 1 and parts[1] else None
    resource = RESOURCE_TYPES.get(segment.lower(), "Other") if segment else None
    resource_id = scrub_text(parts[2])[:64] if len(parts) > 2 and parts[2] else None
    return key, resource, resource_id


def _route_shape(req: Request) -> str:
    """Return the path up to its resource type, "/…" for more and "?…" for a query."""
    parts = req.path.split("/")
    shape = scrub_text("/".join(parts[:5]))[:300]
    if len(parts) > 5 and any(parts[5:]):
        shape += "/…"
    return shape + ("?…" if req.query_string else "")


def _response_json(response: Response) -> dict[str, Any] | None:
    if response.is_streamed or response.direct_passthrough or not response.is_json:
        return None
    try:
        body = json.loads(response.get_data())
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _raw_body(req: Request, status: int) -> bytes | None:
    """Return the request body as received, or None when it was too large to keep."""
    limit = current_app.config["SCIM_MAX_BODY_BYTES"]
    length = req.content_length
    if status == 413 or (length is not None and length > limit):
        return None
    raw = request_globals().get("scim_request_body")  # what the SCIM API read, if it read the body
    if raw is not None:
        return raw
    if not length and "chunked" not in req.environ.get("HTTP_TRANSFER_ENCODING", "").lower():
        return b""  # a GET or DELETE: no body to read
    return req.get_data(cache=True)


def _request_body(req: Request, raw: bytes | None, secrets: tuple[str, ...],
                  token_valid: bool) -> Any:
    if raw is None:
        return {"truncated": True, "bytes": req.content_length,
                "note": "larger than accepted; not stored"}
    if not token_valid and raw:  # its size only (see describe)
        return {"bytes": len(raw), "note": NOT_STORED_WITHOUT_TOKEN}
    return scrub_body(raw, secrets=secrets)


def _effect(status: int, method: str) -> str | None:
    if status >= 400:
        return "nothing changed" if method != "GET" else None
    words = noted_effects()
    if words:
        return "; ".join(words)
    return effect_from_audit(request_globals().get("audit_events", []))


def describe(response: Response) -> dict[str, Any]:
    """Return the activity record (column values) for the current request and its response."""
    # Read unproxied (portal.flask_app): every SCIM request is described.
    req: Request = current_request()
    ctx_g = request_globals()
    key, resource, resource_id = _path_parts(req)
    presented = _presented_token(req)
    status = response.status_code
    row: dict[str, Any] = {
        "time": ctx_g.get("scim_started_at") or utcnow(),
        "method": req.method[:10],
        "path": scrub_text(req.path)[:1500],
        "resource_type": resource,
        "resource_id": resource_id,
        "status": status,
        "scim_type": None,
        "detail": None,
        "duration_ms": int((perf_counter() - ctx_g.get("scim_started", perf_counter())) * 1000),
        "client": scrub_text(req.environ.get("HTTP_USER_AGENT", ""))[:300] or None,
        "effect": None,
        "request_body": None,
    }
    authenticated = ctx_g.get("scim_org")  # set by the token check when the token was valid
    if isinstance(authenticated, scim_tokens.TokenOrganisation):
        row["organisation_id"], row["token_valid"] = authenticated.id, True
    else:
        # No key holds NUL, and PostgreSQL refuses it in a query parameter.
        row["organisation_id"] = db.session.scalar(
            select(Organisation.id).where(Organisation.key == key)) \
            if key and "\x00" not in key else None
        row["token_valid"] = (bool(presented)
                              and scim_tokens.verify_token(key, presented) is not None)
    if not row["token_valid"]:
        # Anyone who knows the base URL can send a request: keep the route it asked for,
        # not words it chose (an id segment, a query, a body) for the admins to read.
        row["path"], row["resource_id"] = _route_shape(req), None
    try:
        query = req.query_string.decode("utf-8", "replace")
        if query and row["token_valid"]:
            row["path"] = (row["path"] + "?" + scrub_query(query))[:2000]
        raw = _raw_body(req, status)
        # The token and every password the body carries, wherever else they appear.
        try:
            secrets, echoes_allowed = (presented, *body_secrets(raw or b"")), True
        except TooManySecrets:  # the body is not stored; neither is what may echo it
            secrets, echoes_allowed = (presented,), False
        # Only an error's detail and a created resource's id are kept from the response:
        # a page of Users is not parsed again just to be thrown away.
        created = resource_id is None and req.method == "POST"
        location = response.headers.get("Location") if created and status < 400 else None
        if location:  # a created resource names itself: no need to parse the answer
            row["resource_id"] = scrub_text(location.rstrip("/").rpartition("/")[2])[:64]
        answer = _response_json(response) if status >= 400 or (created and not location) \
            else None
        if answer and status >= 400:
            row["scim_type"] = scrub_text(str(answer.get("scimType") or ""),
                                          secrets=secrets)[:50] or None
            row["detail"] = (scrub_text(str(answer.get("detail") or ""), secrets=secrets)[:2000]
                             if echoes_allowed else "(not stored: the request carried too many "
                                                    "secret values)") or None
        elif answer and created and isinstance(answer.get("id"), str):
            row["resource_id"] = scrub_text(answer["id"])[:64]
        effect = _effect(status, req.method)
        row["effect"] = effect.replace("\x00", "") if effect else None
        row["request_body"] = _request_body(req, raw, secrets, bool(row["token_valid"]))
    except Exception:  # the record must be written even if the request was odd
        log.exception("could not fully describe SCIM request %s %s", req.method, row["path"])
    return row


# One prebuilt INSERT: the record is written on every SCIM request, so it skips the ORM's
# unit of work (an object, its state and a flush cost ~250 µs a request here) and the
# engine's per-call execution (portal.prepared). `describe` gives every column but `id`.
_ACTIVITY = ProvisioningActivity.__table__
_COLUMNS = [column for column in _ACTIVITY.c if column.name != "id"]
_INSERT = Prepared(insert(_ACTIVITY).values(
    {column.name: bindparam(column.name) for column in _COLUMNS}))
# The same INSERT on PostgreSQL for a transaction that only records a read or a refusal:
# it holds nothing but this record (and the token's "last used"), so it need not wait for
# the WAL flush. `set_config(…, true)` is `SET LOCAL synchronous_commit TO OFF` for this
# transaction only, run inside the INSERT rather than as one more round trip per read. A
# server crash may lose the last moments of such records; never a change an IdP made,
# whose transaction still waits for the disk. (SQLite in WAL mode with synchronous=NORMAL
# already commits without a flush.)
_COMMIT_EARLY = select(func.set_config(literal_column("'synchronous_commit'"),
                                       literal_column("'off'"), true())).subquery()
_INSERT_COMMITTING_EARLY = Prepared(insert(_ACTIVITY).from_select(
    [column.name for column in _COLUMNS],
    select(*(bindparam(column.name, type_=column.type) for column in _COLUMNS))
    .select_from(_COMMIT_EARLY)))


def _write(response: Response) -> None:
    ctx_g = request_globals()
    if ctx_g.get("scim_record_committed"):
        # Committed on its own below, and the request's (empty) commit failed after it:
        # one record per request, as the IdP's client saw it then.
        return
    row = describe(response)
    early = row["method"] in ("GET", "HEAD") or row["status"] >= 400
    # Only a request with the organisation's valid token can raise an alert: anyone who
    # knows the URL can send a bad one (see portal.services.scim_notices).
    alerting = row["organisation_id"] is not None and \
        scim_notices.breaks_provisioning(row["status"], bool(row["token_valid"]))
    connection = session_connection(db.session())
    if early and connection.dialect.name == "postgresql" and not ctx_g.get("audit_events"):
        # (An audited refusal, a replaced token's first use, waits for the disk.)
        _INSERT_COMMITTING_EARLY.rows(row)
    elif early and not alerting and write_queue.sqlite_idle(connection):
        # The record of a read or a refusal is the request's last write (registered last)
        # and its only one: it takes SQLite's one write lock for the insert alone
        # (portal.write_queue). An alert's incident and notifications, and a token's
        # "last used", are written with the record in one transaction instead.
        write_queue.write_alone(connection, lambda: _INSERT.rows(row))
        ctx_g.scim_record_committed = True
    else:
        _INSERT.rows(row)
    if alerting:
        org = db.session.get(Organisation, row["organisation_id"])
        if org is not None:
            scim_notices.notify_if_failing(org)
