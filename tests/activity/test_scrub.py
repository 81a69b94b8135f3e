"""The activity log's scrubber: what an IdP sent as a secret is gone wherever it appears."""

from __future__ import annotations

import json

from scim_api.scrub import REMOVED, body_secrets, scrub_body, scrub_text, secrets_in

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
