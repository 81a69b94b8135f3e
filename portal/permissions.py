"""Permissions and the built-in roles that carry them."""

from __future__ import annotations

from dataclasses import dataclass

IAM_MANAGE = "it_settings.iam"  # "IT Settings — Identity & Access Management"
SETTINGS_GENERAL = "it_settings.general"
AUDIT_VIEW = "it_settings.audit"
PEOPLE_VIEW = "people.view"
PEOPLE_MANAGE = "people.manage"

PERMISSION_LABELS: dict[str, str] = {
    IAM_MANAGE: "IT Settings — Identity & Access Management",
    SETTINGS_GENERAL: "IT Settings — General",
    AUDIT_VIEW: "IT Settings — Audit Log",
    PEOPLE_VIEW: "People — view",
    PEOPLE_MANAGE: "People — manage",
}

IT_SETTINGS_PERMISSIONS = frozenset({IAM_MANAGE, SETTINGS_GENERAL, AUDIT_VIEW})


@dataclass(frozen=True)
class BuiltinRole:
    """A role every organisation can use."""

    name: str
    description: str
    permissions: tuple[str, ...]


ADMINISTRATOR = "Administrator"
IT_ADMINISTRATOR = "IT Administrator"
AUDITOR = "Auditor"
MEMBER = "Member"

BUILTIN_ROLES: tuple[BuiltinRole, ...] = (
    BuiltinRole(ADMINISTRATOR, "Everything in the organisation.", tuple(PERMISSION_LABELS)),
    BuiltinRole(
        IT_ADMINISTRATOR,
        "Technical platform configuration, including identity and access management.",
        (IAM_MANAGE, SETTINGS_GENERAL, AUDIT_VIEW, PEOPLE_VIEW, PEOPLE_MANAGE),
    ),
    # For a Data Protection Officer or an auditor: evidence without the power to change
    # anything (migration d2b7c4e8a9f1 adds it where the built-in roles already exist).
    BuiltinRole(AUDITOR, "Reads the audit log, people and groups, and exports audit evidence; "
                         "changes nothing.", (AUDIT_VIEW, PEOPLE_VIEW)),
    BuiltinRole(MEMBER, "Uses the product; no IT Settings access.", ()),
)
