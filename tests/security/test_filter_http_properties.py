"""Property tests over HTTP: any filter text is a 200 or a SCIM 400, reads nothing foreign, writes nothing.

tests/scim/test_filter_properties.py drives the parser and the SQL builder directly; here the
same generated filters (and arbitrary text) go through the real endpoints, query string and
POST .search alike, so the request parsing, paging, projection and error handling are covered.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from flask import Flask
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.scim.conftest import Scim
from tests.scim.test_filter_properties import any_text, filters
from tests.security.conftest import db_snapshot

ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
ENDPOINTS = ["GET /Users", "GET /Groups", "POST /Users/.search", "POST /Groups/.search",
             "POST /.search"]
HTTP_SETTINGS = settings(max_examples=120, deadline=None,
                         suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                HealthCheck.too_slow])


def _setup(scim: Scim, other_scim: Scim) -> set[str]:
    """Create people and groups in both organisations once; return our resource ids."""
    cached: set[str] | None = getattr(scim, "filter_ids", None)
    if cached:
        return cached
    ours = [scim.create_user(f"u{n}@acme.example", displayName=f"User {n}", title="Eng",
                             emails=[{"value": f"u{n}@acme.example", "type": "work"}])["id"]
            for n in range(3)]
    ours.append(scim.create_group("Staff", ours[:2])["id"])
    theirs = [other_scim.create_user(f"u{n}@acme.example", displayName=f"User {n}")["id"]
              for n in range(2)]
    other_scim.create_group("Staff", theirs)
    scim.filter_ids = set(ours)  # type: ignore[attr-defined]
    return set(ours)


def _call(scim: Scim, endpoint: str, text: str) -> Any:
    method, path = endpoint.split(" ")
    if method == "GET":
        return scim.get(f"{path}?filter={quote(text, safe='')}")
    return scim.post(path, {"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
                            "filter": text})


@HTTP_SETTINGS
@given(text=st.one_of(filters, any_text), endpoint=st.sampled_from(ENDPOINTS))
def test_any_filter_over_http_is_200_or_a_scim_400_reads_only_own_rows_and_writes_nothing(
    app: Flask, scim: Scim, other_scim: Scim, text: str, endpoint: str
) -> None:
    ours = _setup(scim, other_scim)
    before = db_snapshot(app)
    response = _call(scim, endpoint, text)
    event(f"status {response.status_code}")
    assert response.status_code in (200, 400), (endpoint, text, response.status_code)
    assert response.mimetype == "application/scim+json"
    body = json.loads(response.get_data(as_text=True))
    if response.status_code == 400:
        assert body["schemas"] == [ERROR] and body["status"] == "400"
        assert body["scimType"] in ("invalidFilter", "invalidValue"), body
    else:
        found = {r["id"] for r in body["Resources"]}
        assert found <= ours, (endpoint, text)  # never a resource of the other organisation
        assert body["totalResults"] >= len(found)
    assert db_snapshot(app) == before
