"""The SCIM 2.0 service provider (RFC 7643 / RFC 7644), one base URL per organisation."""

from __future__ import annotations

from flask import Blueprint, request
from flask.sansio.blueprints import BlueprintSetupState

from portal.security import serialise_writes

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


def _writes_in_order() -> None:
    """Run every SCIM write as one serial transaction (a search is a read, though it POSTs)."""
    if request.method in ("POST", "PUT", "PATCH", "DELETE") and not (
            request.endpoint or "").endswith("_search"):
        serialise_writes()


bp.before_request(auth.authenticate)
bp.before_request(_writes_in_order)
bp.after_request(errors.scim_content_type)
errors.register(bp)


@bp.record_once
def _record_first(state: BlueprintSetupState) -> None:
    # The activity log's hook runs before every other hook (CSRF, the token check) and
    # also for /scim/ URLs that match no route, so every request is recorded.
    state.app.before_request_funcs.setdefault(None, []).insert(0, activity.start_recording)
