"""The activity log's scrubber: what an IdP sent as a secret is gone wherever it appears."""

from __future__ import annotations

import json

import pytest

from scim_api import scrub as scrub_mod
from scim_api.scrub import (
    MAX_SECRETS,
    MAX_STORED_BODY,
    REMOVED,
    TooManySecrets,
    body_secrets,
    scrub_body,
    scrub_text,
    secrets_in,
)

PASSWORD = "Us3r-pass-phrase"


def _stored(body: object) -> str:
    return json.dumps(scrub_body(json.dumps(body).encode()))


def test_a_password_is_removed_with_its_key_and_wherever_else_it_was_sent() -> None:
    stored = _stored({"userName": {"bad": PASSWORD}, "password": PASSWORD,
                      "name": {"formatted": f"echo {PASSWORD} echo"}})
    assert PASSWORD not in stored
    assert "password" not in stored
    assert json.loads(stored)["userName"] == {"bad": REMOVED}
    assert json.loads(stored)["name"]["formatted"] == f"echo {REMOVED} echo"


def test_a_patch_that_sets_the_password_by_path_leaks_its_value_nowhere() -> None:
    body = {"Operations": [{"op": "replace", "path": "password", "value": PASSWORD},
                           {"op": "add", "path": "title", "value": PASSWORD}]}
    stored = json.loads(_stored(body))
    assert stored["Operations"] == [{"op": "replace", "path": "password", "value": REMOVED},
                                    {"op": "add", "path": "title", "value": REMOVED}]


def test_secrets_are_collected_at_any_depth_longest_first() -> None:
    body = {"a": [{"b": {"clientSecret": {"x": ["abcd", "abcdef"]}}}], "c": "plain"}
    assert secrets_in(body) == ("abcdef", "abcd")
    assert body_secrets(json.dumps(body).encode()) == ("abcdef", "abcd")


def test_very_short_secrets_are_not_hunted_in_other_values() -> None:
    # A one-letter "password" would otherwise blank out that letter in every stored word.
    stored = json.loads(_stored({"password": "a", "displayName": "Ann"}))
    assert stored == {"displayName": "Ann"}


def test_bodies_that_are_not_json_carry_no_secrets_to_hunt() -> None:
    assert body_secrets(b"not json") == ()
    assert body_secrets(b"") == ()
    assert scrub_text(f"detail {PASSWORD}", secrets=(PASSWORD,)) == f"detail {REMOVED}"


def test_a_patch_path_in_any_case_still_hides_the_password_it_sets() -> None:
    for key in ("PATH", "pAtH", "Path", "path"):
        body = {"Operations": [{"op": "replace", key: "password", "value": PASSWORD},
                               {"op": "replace", "path": "title", "value": f"x{PASSWORD}"}]}
        stored = _stored(body)
        assert PASSWORD not in stored, key


def test_a_body_with_more_secrets_than_are_hunted_is_not_stored_at_all() -> None:
    many = [f"pw-{n:05d}" for n in range(MAX_SECRETS + 1)]
    raw = json.dumps({"password": many, "userName": many[-1]}).encode()
    stored = scrub_body(raw)
    assert set(stored) == {"bytes", "note"} and "not stored" in stored["note"]
    assert not any(secret in json.dumps(stored) for secret in many)
    with pytest.raises(TooManySecrets):
        body_secrets(raw)


def test_scrubbing_a_huge_body_does_work_for_the_stored_excerpt_only(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    """A megabyte of small strings and 32 secrets: each string is not searched 32 times."""
    calls = 0
    real = scrub_mod.scrub_text

    def counting(text: str, *, secrets: tuple[str, ...] = ()) -> str:
        nonlocal calls
        calls += 1
        return real(text, secrets=secrets)

    monkeypatch.setattr(scrub_mod, "scrub_text", counting)
    secrets = [f"pw-{n:05d}" for n in range(MAX_SECRETS)]
    strings = [f"s{n}" for n in range(100_000)]
    raw = json.dumps({"password": secrets, "x": strings}).encode()
    stored = scrub_body(raw)
    assert stored["truncated"] is True and stored["bytes"] == len(raw)
    assert len(stored["excerpt"]) <= MAX_STORED_BODY
    assert calls < 10_000  # about the strings that fit in the excerpt, not 100,000


def test_our_own_bearer_placeholder_text_survives_scrubbing() -> None:
    from scim_api.auth import UNAUTHORIZED_DETAIL

    assert scrub_text(UNAUTHORIZED_DETAIL) == UNAUTHORIZED_DETAIL
    assert "'Authorization: Bearer <token>' to this" in scrub_text(UNAUTHORIZED_DETAIL)
    for text in ("bearer <token>", 'say "Bearer <token>".', "(Bearer <token>) then"):
        assert scrub_text(text) == text


def test_a_real_bearer_credential_is_still_removed_next_to_the_placeholder() -> None:
    secret = "eyJhbGciOiJIUzI1NiJ9.c2VjcmV0.sig"
    for text, kept in (
        (f"Authorization: Bearer {secret}", "Authorization: Bearer [removed]"),
        (f"bearer   {secret} and more", "Bearer [removed] and more"),
        ("Bearer <token>SECRET-VALUE", "Bearer [removed]"),  # not the placeholder alone
        ("Bearer <token>'leaked-rest", "Bearer [removed]"),
        (f"Bearer <token> or Bearer {secret}", "Bearer <token> or Bearer [removed]"),
    ):
        assert scrub_text(text) == kept
        assert "SECRET-VALUE" not in scrub_text(text) and secret not in scrub_text(text)
