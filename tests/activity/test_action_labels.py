"""Every audit action code the services record has words on the screens."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from portal.services.audit_details import ACTION_LABELS, action_label

ROOT = Path(__file__).resolve().parents[2]
CODE = re.compile(r"^(account|member|group|sso|scim|organisation|audit_log)\.[a-z_]+$")
# Strings of the same shape that are not audit actions: endpoints and column references.
NOT_ACTIONS = {"sso.acs", "sso.login", "sso.start", "account.change_password", "account.id",
               "group.id", "organisation.id"}


def _codes_in_source() -> set[str]:
    found: set[str] = set()
    for path in [*(ROOT / "portal").rglob("*.py"), *(ROOT / "scim_api").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                    and CODE.match(node.value):
                found.add(node.value)
    return found - NOT_ACTIONS


def test_every_action_code_in_the_source_has_a_label() -> None:
    codes = _codes_in_source()
    assert {"member.deactivated", "group.role_mapped", "member.role_grant_expired",
            "account.password_changed"} <= codes
    assert sorted(codes - set(ACTION_LABELS)) == []


def test_an_unknown_code_still_reads_as_words() -> None:
    assert action_label("member.deactivated") == "Person deactivated"
    assert action_label("scim.user_created") == "Scim user created"
