"""Removing secrets from what an IdP sent before any of it is stored.

Okta sends `password` on create and update (IDP-COMPAT.md), and PATCH can carry one
as `{"path": "password", "value": ...}`; a client may even put its token in the URL.
None of it may reach the activity log.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qsl, unquote_plus, urlencode

from portal.services.scim_tokens import TOKEN_PREFIX

# Stored request bodies are capped; larger ones keep an excerpt and a marker.
MAX_STORED_BODY = 16 * 1024
REMOVED = "[removed]"
TOKEN_PLACEHOLDER = "<token>"
# Shorter strings under a secret key are not hunted elsewhere: "a" would mangle every word.
MIN_SECRET_LENGTH = 4
MAX_SECRETS = 32
ELIDED = "…"
MAX_SECRET_DEPTH = 64
_SECRET_WORDS = ("password", "secret", "token", "credential", "apikey", "api_key")
_TOKEN_PATTERN = re.compile(re.escape(TOKEN_PREFIX) + r"[A-Za-z0-9_\-]*")
# A bearer credential, except our own messages' literal placeholder "Bearer <token>" (the
# 401 detail and the discovery text say how to authenticate; they hold no credential).
_BEARER_PATTERN = re.compile(r"(?i)bearer\s+(?!" + re.escape(TOKEN_PLACEHOLDER)
                             + r"['\".,;:)\]]*(?:\s|$))\S+")
# In text that is not JSON: a secret-looking key, a separator, then the value.
_TEXT_SECRET = re.compile(
    r"(?i)([\"']?[\w:.\-]{0,64}(?:" + "|".join(_SECRET_WORDS) + r")[\w\-]{0,64}[\"']?\s{0,8}[:=]\s{0,8})"
    r"(\"(?:[^\"\\]|\\.)*\"?|'[^']*'?|[^\s,&}]+)"
)


def is_secret_name(name: str) -> bool:
    """Return whether an attribute or parameter name looks like it carries a secret."""
    # "urn:...:User:password" and "password" alike: look at the last segment.
    last = re.split(r"[:.]", name.strip())[-1].lower()
    return any(word in last for word in _SECRET_WORDS)


def _is_secret_path(path: Any) -> bool:
    if not isinstance(path, str):
        return False
    return is_secret_name(path.split("[", 1)[0])


def _sets_a_secret(item: dict[Any, Any]) -> bool:
    """Return whether a PATCH operation's `path` (any case, as the parser reads it) is secret."""
    return any(isinstance(key, str) and key.lower() == "path" and _is_secret_path(value)
               for key, value in item.items())


class TooManySecrets(ValueError):
    """A body carries more secret values than are hunted for elsewhere in it."""


def secrets_in(value: Any) -> tuple[str, ...]:
    """Return every string sent as a secret anywhere in a JSON value.

    A password under `password` is dropped with its key, but the same string may also
    be sent under a key that does not look secret (`{"userName": {"bad": "<password>"}}`)
    or echoed in an error: once known, it is replaced wherever else it appears. Every
    stored string is searched for each of them, so their number is capped: a body with
    more raises TooManySecrets (and is not stored).
    """
    found: set[str] = set()

    def strings(item: Any, depth: int) -> None:
        if depth > MAX_SECRET_DEPTH:
            return
        if isinstance(item, str):
            if len(item) >= MIN_SECRET_LENGTH:
                found.add(item)
                if len(found) > MAX_SECRETS:
                    raise TooManySecrets(f"more than {MAX_SECRETS} secret values")
        elif isinstance(item, dict):
            for nested in item.values():
                strings(nested, depth + 1)
        elif isinstance(item, list):
            for nested in item:
                strings(nested, depth + 1)

    def walk(item: Any, depth: int) -> None:
        if depth > MAX_SECRET_DEPTH:
            return
        if isinstance(item, dict):
            secret_path = _sets_a_secret(item)
            for key, nested in item.items():
                if isinstance(key, str) and (is_secret_name(key)
                                             or (secret_path and key.lower() == "value")):
                    strings(nested, depth + 1)
                else:
                    walk(nested, depth + 1)
        elif isinstance(item, list):
            for nested in item:
                walk(nested, depth + 1)

    walk(value, 0)
    # Longest first, so a secret that contains another is replaced whole.
    return tuple(sorted(found, key=len, reverse=True))


def scrub_value(value: Any, secrets: tuple[str, ...] = (),
                budget: list[int] | None = None) -> Any:
    """Return a copy of a JSON value with every secret-looking key removed at any depth.

    `budget` (characters still to scrub) bounds the work: only an excerpt of a large
    body is stored, so what lies beyond it is replaced by "…" rather than scrubbed.
    """
    budget = budget if budget is not None else [MAX_STORED_BODY * 2]
    if budget[0] <= 0:
        return ELIDED
    if isinstance(value, dict):
        cleaned: dict[str, Any] = {}
        secret_path = _sets_a_secret(value)
        for key, item in value.items():
            if budget[0] <= 0:
                cleaned[ELIDED] = ELIDED
                break
            if isinstance(key, str) and is_secret_name(key):
                continue
            if secret_path and isinstance(key, str) and key.lower() == "value":
                cleaned[key] = REMOVED
                continue
            cleaned[scrub_text(str(key), secrets=secrets)] = scrub_value(item, secrets, budget)
        return cleaned
    if isinstance(value, list):
        items: list[Any] = []
        for item in value:
            if budget[0] <= 0:
                items.append(ELIDED)
                break
            items.append(scrub_value(item, secrets, budget))
        return items
    if isinstance(value, str):
        budget[0] -= len(value) + 8
        return scrub_text(value, secrets=secrets)
    budget[0] -= 8
    return value


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not valid JSON")


def scrub_text(text: str, *, secrets: tuple[str, ...] = ()) -> str:
    """Return text with tokens, bearer credentials and `password=...`-style values removed."""
    if len(text) > MAX_STORED_BODY:
        # Only an excerpt is ever stored; scrubbing a megabyte would burn CPU per request.
        text = text[:MAX_STORED_BODY] + "…"
    text = text.replace("\x00", "")  # PostgreSQL text cannot hold NUL
    for secret in secrets:
        if secret:
            text = text.replace(secret, REMOVED)
    if not _may_hold_secret(text):
        return text  # every request runs this on its path and client: skip the patterns
    text = _TOKEN_PATTERN.sub(REMOVED, text)
    text = _BEARER_PATTERN.sub("Bearer " + REMOVED, text)
    return _TEXT_SECRET.sub(lambda m: m.group(1) + REMOVED, text)


def _may_hold_secret(text: str) -> bool:
    """Return whether a pattern below could match: a secret word, the token prefix, Bearer."""
    lowered = text.lower()
    return (TOKEN_PREFIX in lowered or "bearer" in lowered
            or any(word in lowered for word in _SECRET_WORDS))


def scrub_query(query: str) -> str:
    """Return a query string without parameters that look like secrets."""
    if not query:
        return ""
    if not _may_hold_secret(unquote_plus(query)):
        return query
    pairs = parse_qsl(query, keep_blank_values=True)
    return urlencode([(k, REMOVED if is_secret_name(k) else scrub_text(v)) for k, v in pairs])


def scrub_body(raw: bytes, *, secrets: tuple[str, ...] = ()) -> Any:
    """Return the request body as stored: scrubbed JSON, capped at MAX_STORED_BODY."""
    if not raw:
        return None
    try:
        # NaN and Infinity are not JSON (PostgreSQL refuses them): keep such bodies as text.
        parsed = json.loads(raw, parse_constant=_not_json)
    except (ValueError, RecursionError):
        text = raw.decode("utf-8", "replace")
        if any(word in text.lower() for word in _SECRET_WORDS):
            # Without structure we cannot tell which part is the secret: keep none of it.
            return {"bytes": len(raw), "note": "not valid JSON; not stored because it mentions "
                                               "a password, secret or token"}
        text = scrub_text(text[: MAX_STORED_BODY * 2], secrets=secrets)
        return _capped({"unparsed": text}, len(raw), note="not valid JSON")
    try:
        found = secrets_in(parsed)
    except TooManySecrets:
        return {"bytes": len(raw), "note": f"not stored: it carries more than {MAX_SECRETS} "
                                           "passwords, secrets or tokens"}
    budget = [MAX_STORED_BODY * 2]
    cleaned = scrub_value(parsed, tuple(dict.fromkeys((*secrets, *found))), budget)
    if budget[0] <= 0:
        excerpt = json.dumps(cleaned, ensure_ascii=False)[:MAX_STORED_BODY]
        return {"truncated": True, "bytes": len(raw), "excerpt": excerpt,
                "note": f"body of {len(raw)} bytes; an excerpt is stored"}
    return _capped(cleaned, len(raw))


def body_secrets(raw: bytes) -> tuple[str, ...]:
    """Return the secrets a raw JSON request body carries (none when it is not JSON).

    Raises TooManySecrets for a body with more than MAX_SECRETS of them (scrub_body then
    stores none of it, and nothing echoing it should be stored either).
    """
    if not raw:
        return ()
    try:
        return secrets_in(json.loads(raw, parse_constant=_not_json))
    except TooManySecrets:
        raise
    except (ValueError, RecursionError):
        return ()


def _capped(value: Any, size: int, *, note: str | None = None) -> Any:
    encoded = json.dumps(value, ensure_ascii=False)
    if len(encoded) <= MAX_STORED_BODY and note is None:
        return value
    if len(encoded) <= MAX_STORED_BODY:
        return {**value, "note": note}
    excerpt = encoded[:MAX_STORED_BODY]
    return {"truncated": True, "bytes": size, "excerpt": excerpt,
            "note": note or f"body of {size} bytes truncated to {MAX_STORED_BODY} characters"}
