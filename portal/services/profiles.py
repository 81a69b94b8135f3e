"""Editing a member's profile by hand; attributes the IdP owns are refused for SCIM members."""

from __future__ import annotations

from sqlalchemy import String

from portal.models import Membership, utcnow
from portal.services import audit
from portal.services.errors import ServiceError

# The profile fields the portal lets an administrator edit. Every one is a SCIM
# User attribute, so for a SCIM-managed member all of them belong to the IdP.
EDITABLE_FIELDS: dict[str, str] = {
    "display_name": "Display name",
    "given_name": "Given name",
    "family_name": "Family name",
    "title": "Job title",
    "department": "Department",
}
SCIM_OWNED_FIELDS = frozenset(EDITABLE_FIELDS)


class ManagedByIdentityProvider(ServiceError):
    """The change touches attributes that only the organisation's IdP may change."""


def _max_length(name: str) -> int:
    column_type = Membership.__table__.c[name].type
    return column_type.length if isinstance(column_type, String) and column_type.length else 200


def update_profile(member: Membership, values: dict[str, str | None],
                   actor: audit.Actor) -> list[str]:
    """Apply profile changes and return the changed field names (none: nothing written)."""
    unknown = set(values) - set(EDITABLE_FIELDS)
    if unknown:
        raise ServiceError(f"These fields cannot be edited: {', '.join(sorted(unknown))}.")
    changes: dict[str, str | None] = {}
    for name, raw in values.items():
        value = (raw or "").strip() or None
        if value is not None and len(value) > _max_length(name):
            raise ServiceError(f"{EDITABLE_FIELDS[name]} can have at most "
                               f"{_max_length(name)} characters.")
        if getattr(member, name) != value:
            changes[name] = value
    if not changes:
        return []
    owned = [name for name in EDITABLE_FIELDS if name in changes and name in SCIM_OWNED_FIELDS]
    if member.scim_managed and owned:
        labels = ", ".join(EDITABLE_FIELDS[n] for n in owned)
        raise ManagedByIdentityProvider(
            f"{labels}: managed by your identity provider. Change this person in your IdP; "
            "its next sync updates DPMS. Nothing was changed.")
    for name, value in changes.items():
        setattr(member, name, value)
    member.updated_at = utcnow()
    member.version += 1
    audit.record(actor, "member.profile_updated", member.organisation, target_type="member",
                 target_id=member.public_id, target_label=member.user_name,
                 details={"fields": sorted(changes)})
    return sorted(changes)
