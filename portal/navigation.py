"""The IT Settings sections, in the order the secondary sidebar lists them."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class NavItem:
    """A sidebar entry; a group has children and no endpoint of its own."""

    label: str
    endpoint: str | None = None
    key: str = ""
    children: tuple[NavItem, ...] = field(default_factory=tuple)


IT_SETTINGS_NAV: tuple[NavItem, ...] = (
    NavItem("General", "settings.general", key="general"),
    NavItem(
        "Identity & Access Management",
        key="iam",
        children=(
            NavItem("SCIM", "iam.scim", key="iam.scim"),
            NavItem("SSO", "iam.sso", key="iam.sso"),
        ),
    ),
    NavItem("Audit Log", "settings.audit_log", key="audit"),
)


def nav_key_for(endpoint: str | None) -> str | None:
    """Return the sidebar key of the section an endpoint belongs to (for error pages)."""
    if not endpoint:
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
