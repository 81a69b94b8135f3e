"""The effect of a SCIM request in words, from what the services audited or noted."""

from __future__ import annotations

from flask import Flask

from portal.models import AuditEvent
from portal.services.provisioning_activity import effect_from_audit, note_effect, noted_effects


def _event(action: str, label: str = "Engineering", **details: object) -> AuditEvent:
    return AuditEvent(action=action, actor_label="SCIM: Okta", target_label=label,
                      details=details)


def test_lifecycle_events_read_as_sentences() -> None:
    cases = {
        ("member.provisioned", "alice@acme.example"): "created user alice@acme.example",
        ("member.deactivated", "bob@acme.example"): "deactivated user bob@acme.example",
        ("member.reactivated", "bob@acme.example"): "reactivated user bob@acme.example",
        ("member.deprovisioned", "bob@acme.example"):
            "deleted user bob@acme.example; access ended",
        ("member.adopted", "eve@acme.example"): "adopted existing member eve@acme.example",
        ("group.created", "Engineering"): "created group Engineering",
        ("group.deleted", "Engineering"): "deleted group Engineering",
    }
    for (action, label), words in cases.items():
        assert effect_from_audit([_event(action, label)]) == words


def test_membership_and_rename_events_carry_their_figures() -> None:
    assert effect_from_audit([_event("group.members_removed", count=2)]) == \
        "removed 2 members from Engineering"
    assert effect_from_audit([_event("group.members_added", count=1)]) == \
        "added 1 member to Engineering"
    renamed = _event("group.updated", "Platform",
                     displayName={"from": "Engineering", "to": "Platform"})
    assert effect_from_audit([renamed]) == "renamed group Engineering to Platform"
    updated = _event("member.updated", "alice@acme.example", changed=["family_name", "title"])
    assert effect_from_audit([updated]) == "updated user alice@acme.example (family_name, title)"


def test_several_events_and_unknown_actions_are_joined() -> None:
    events = [_event("group.created"), _event("group.members_added", count=3),
              _event("role.mapping_changed", "Engineering → IT Administrator")]
    assert effect_from_audit(events) == ("created group Engineering; added 3 members to "
                                         "Engineering; role mapping changed: Engineering → "
                                         "IT Administrator")
    assert effect_from_audit([]) is None


def test_noted_effects_belong_to_the_current_request(app: Flask) -> None:
    with app.test_request_context():
        note_effect("removed 2 members from Engineering")
        assert noted_effects() == ["removed 2 members from Engineering"]
    with app.test_request_context():
        assert noted_effects() == []
    note_effect("outside any app context is ignored")
