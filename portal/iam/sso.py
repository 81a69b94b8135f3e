"""The SSO / SAML Configuration screen."""

from __future__ import annotations

from typing import Any

from flask import flash, make_response, redirect, render_template, request, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from portal.iam import bp
from portal.models import utcnow
from portal.permissions import IAM_MANAGE
from portal.security import current_membership, require_permission
from portal.services import saml, sso
from portal.services.audit import Actor
from portal.services.errors import ServiceError
from portal.services.sso_settings import (
    MAX_METADATA_BYTES,
    SsoValidationError,
    settings_from_fields,
    settings_from_metadata,
)
from portal.sso_signin import start_sign_in


def _render(errors: dict[str, str] | None = None, source: str | None = None,
            values: dict[str, str] | None = None, status: int = 200) -> Response:
    """Render the screen with the organisation's current state (and a failed form's input)."""
    org = current_membership().organisation
    config = sso.get_config(org)
    if values is None:
        values = {"entity_id": config.idp_entity_id, "sso_url": config.idp_sso_url,
                  "certificate": config.idp_certificate,
                  "user_id_attribute": config.user_id_attribute or ""} if config else {}
    context: dict[str, Any] = {
        "nav_key": "iam.sso", "org": org, "config": config, "status": sso.status(config),
        "certificates": sso.certificate_details(config) if config else [],
        "expires_soon": sso.expires_soon(config),
        "sp_entity_id": saml.sp_entity_id(org), "acs_url": saml.acs_url(org),
        "break_glass": sso.break_glass_admins(org), "errors": errors or {},
        "source": source, "values": values, "now": utcnow(),
    }
    return make_response(render_template("settings/iam/sso.html", **context), status)


@bp.route("/sso", endpoint="sso")
@require_permission(IAM_MANAGE)
def sso_page() -> Response:
    """Show the SSO Configuration screen."""
    return _render()


@bp.route("/sso/idp", methods=["POST"])
@require_permission(IAM_MANAGE)
def sso_save() -> Response:
    """Save the IdP settings from pasted or uploaded metadata, or from the manual fields."""
    source = "metadata" if request.form.get("source") == "metadata" else "manual"
    form = request.form
    attribute = form.get("user_id_attribute", "")
    try:
        if source == "metadata":
            upload = request.files.get("metadata_file")
            xml: str | bytes = upload.read(MAX_METADATA_BYTES + 1) if upload and upload.filename \
                else form.get("metadata_xml", "")
            settings = settings_from_metadata(xml, attribute)
        else:
            settings = settings_from_fields(form.get("entity_id", ""), form.get("sso_url", ""),
                                            form.get("certificate", ""), attribute)
        org = current_membership().organisation
        sso.save_config(org, settings, Actor.of(current_user), source=source)
    except SsoValidationError as exc:
        values = {k: form.get(k, "") for k in ("entity_id", "sso_url", "certificate",
                                                "user_id_attribute", "metadata_xml")}
        return _render(exc.errors, source, values, status=400)
    flash("The identity provider settings were saved.", "success")
    # The forms post to "…#idp-title" so that their errors are in view; the page after a
    # save starts at the top, where the message is (a redirect's own fragment wins).
    return redirect(url_for("iam.sso", _anchor="main"))


@bp.route("/sso/enforce", methods=["POST"])
@require_permission(IAM_MANAGE)
def sso_enforce() -> Response:
    """Turn SSO enforcement on or off."""
    on = request.form.get("enforced") == "on"
    try:
        if sso.set_enforced(current_membership().organisation, on, Actor.of(current_user)):
            flash("SSO is now enforced: members must sign in through the identity provider."
                  if on else "SSO is no longer enforced: members may also use passwords.",
                  "success")
    except ServiceError as exc:
        flash(str(exc), "error")
    return redirect(url_for("iam.sso"))


@bp.route("/sso/break-glass", methods=["POST"])
@require_permission(IAM_MANAGE)
def sso_break_glass() -> Response:
    """Mark or unmark a member of this organisation as a break-glass administrator."""
    org = current_membership().organisation
    on = request.form.get("break_glass") == "on"
    member = sso.find_member_by_email(org, request.form.get("email", ""))
    try:
        if member is None:
            raise ServiceError("No member of this organisation has that email address.")
        if sso.set_break_glass(member, on, Actor.of(current_user)):
            flash(f"{member.account.email} is {'now' if on else 'no longer'} a break-glass "
                  "administrator.", "success")
    except ServiceError as exc:
        flash(str(exc), "error")
    return redirect(url_for("iam.sso"))


@bp.route("/sso/metadata.xml")
@require_permission(IAM_MANAGE)
def sso_metadata() -> Response:
    """Download this organisation's SP metadata XML."""
    org = current_membership().organisation
    response = make_response(saml.sp_metadata(org))
    response.mimetype = "application/samlmetadata+xml"
    response.headers["Content-Disposition"] = \
        f'attachment; filename="dpms-sp-metadata-{org.key}.xml"'
    return response


@bp.route("/sso/test")
@require_permission(IAM_MANAGE)
def sso_test() -> Response:
    """Start a test sign-in at the IdP; the ACS reports the attributes instead of signing in."""
    org = current_membership().organisation
    config = sso.get_config(org)
    if config is None:
        flash("Configure the identity provider before testing sign-in.", "error")
        return redirect(url_for("iam.sso"))
    try:
        return start_sign_in(config, org, test=True, account_id=current_user.id)
    except saml.SamlRejected as exc:
        flash(exc.detail, "error")
        return redirect(url_for("iam.sso"))
