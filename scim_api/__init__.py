"""The SCIM 2.0 service provider (RFC 7643 / RFC 7644), one base URL per organisation."""

from __future__ import annotations

from flask import Blueprint, request

from portal.security import serialise_writes, url_has_nul

bp = Blueprint("scim", __name__, url_prefix="/scim/v2/<org_key>")

from scim_api import (  # noqa: E402,F401  (modules register on bp)
    auth,
    discovery,
    errors,
    groups,
    routes,
    users,
)


def _refuse_nul_in_url() -> None:
    """Refuse a NUL character in the URL (PostgreSQL cannot compare one): 400 invalidValue."""
    if url_has_nul():
        raise errors.ScimError("The URL contains a NUL character (%00).", scim_type="invalidValue")


def _writes_in_order() -> None:
    """Run every SCIM write as one serial transaction (a search is a read, though it POSTs)."""
    if request.method in ("POST", "PUT", "PATCH", "DELETE") and not (
            request.endpoint or "").endswith("_search"):
        serialise_writes()


bp.before_request(_refuse_nul_in_url)
bp.before_request(auth.authenticate)
bp.before_request(_writes_in_order)
bp.after_request(errors.scim_content_type)
errors.register(bp)
