"""The SCIM 2.0 service provider (RFC 7643 / RFC 7644), one base URL per organisation."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("scim", __name__, url_prefix="/scim/v2/<org_key>")

from scim_api import (  # noqa: E402,F401  (modules register on bp)
    auth,
    discovery,
    errors,
    groups,
    routes,
    users,
)

bp.before_request(auth.authenticate)
bp.after_request(errors.scim_content_type)
errors.register(bp)
