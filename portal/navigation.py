"""The IT Settings sections, in the order the secondary sidebar lists them."""

from __future__ import annotations

from dataclasses import dataclass, field

from portal.permissions import (
    AUDIT_VIEW,
    IAM_MANAGE,
    PEOPLE_MANAGE,
    PEOPLE_VIEW,
    PERMISSION_LABELS,
    SETTINGS_GENERAL,
)


@dataclass(frozen=True)
class NavItem:
    """A sidebar entry; a group has children and no endpoint of its own."""

    label: str
    endpoint: str | None = None
    key: str = ""
    children: tuple[NavItem, ...] = field(default_factory=tuple)
    permission: str | None = None  # what opening it needs (the sidebar marks the others)


IT_SETTINGS_NAV: tuple[NavItem, ...] = (
    NavItem("General", "settings.general", key="general", permission=SETTINGS_GENERAL),
    NavItem(
        "Identity & Access Management",
        key="iam",
        children=(
            NavItem("SCIM", "iam.scim", key="iam.scim", permission=IAM_MANAGE),
            NavItem("SSO", "iam.sso", key="iam.sso", permission=IAM_MANAGE),
        ),
    ),
    NavItem("Audit Log", "settings.audit_log", key="audit", permission=AUDIT_VIEW),
)


def nav_key_for(endpoint: str | None) -> str | None:
    """Return the sidebar key of the section an endpoint belongs to (for error pages)."""
    if not endpoint or endpoint == "settings.index":
        return None
    if endpoint.startswith("iam.sso"):
        return "iam.sso"
    if endpoint.startswith("iam."):
        return "iam.scim"
    if endpoint.startswith("settings.audit"):
        return "audit"
    if endpoint.startswith("settings."):
        return "general"
    return None


def required_access(endpoint: str | None, method: str = "GET") -> str | None:
    """Name what a page needs, for its 403 page (the permission, or being support staff)."""
    if not endpoint:
        return None
    if endpoint.startswith("support."):
        return "Priverion support staff"
    if endpoint == "settings.index":
        return "IT Settings"
    permission = None
    if endpoint.startswith("iam."):
        permission = IAM_MANAGE
    elif endpoint.startswith("settings.audit"):
        permission = AUDIT_VIEW
    elif endpoint.startswith("settings."):
        permission = SETTINGS_GENERAL
    elif endpoint.startswith(("people.", "groups.")):
        permission = PEOPLE_VIEW if method in ("GET", "HEAD") else PEOPLE_MANAGE
    return PERMISSION_LABELS[permission] if permission else None
