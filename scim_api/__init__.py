"""The SCIM 2.0 service provider (RFC 7643 / RFC 7644), one base URL per organisation."""

from __future__ import annotations

from flask import Blueprint
from flask.sansio.blueprints import BlueprintSetupState

from portal.flask_app import current_request
from portal.security import query_has_nul, serialise_writes

bp = Blueprint("scim", __name__, url_prefix="/scim/v2/<org_key>")

from scim_api import (  # noqa: E402,F401  (modules register on bp)
    activity,
    auth,
    discovery,
    errors,
    groups,
    routes,
    users,
)


def _refuse_nul_in_query() -> None:
    """Refuse a NUL character in the query (PostgreSQL cannot compare one): 400 invalidValue.

    An id with NUL in the path is simply not found (the services answer 404).
    """
    if query_has_nul():
        raise errors.ScimError("The query string contains a NUL character (%00).",
                               scim_type="invalidValue")


def _writes_in_order() -> None:
    """Run every SCIM write as one serial transaction (a search is a read, though it POSTs)."""
    req = current_request()
    if req.method in ("POST", "PUT", "PATCH", "DELETE") and not (
            req.endpoint or "").endswith("_search"):
        serialise_writes()


bp.before_request(_refuse_nul_in_query)
bp.before_request(auth.authenticate)
bp.before_request(_writes_in_order)
bp.after_request(errors.scim_content_type)
errors.register(bp)


@bp.record_once
def _record_first(state: BlueprintSetupState) -> None:
    # The activity log's hook runs before every other hook (CSRF, the token check) and
    # also for /scim/ URLs that match no route, so every request is recorded.
    state.app.before_request_funcs.setdefault(None, []).insert(0, activity.start_recording)
