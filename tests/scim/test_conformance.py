"""Over real HTTP: scim2-tester conformance, content types, and concurrent creates."""

from __future__ import annotations

import json
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx2
import pytest
from flask import Flask
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import Membership
from tests.scim.conftest import Scim


def _http(live_server: str, scim: Scim) -> httpx2.Client:
    return httpx2.Client(base_url=f"{live_server}{scim.base}", timeout=30,
                         headers={"Authorization": f"Bearer {scim.token}"})


def test_scim2_tester_reports_no_error(live_server: str, scim: Scim) -> None:
    with _http(live_server, scim) as http:
        results = check_server(SyncSCIMClient(http))
    statuses = Counter(result.status for result in results)
    failures = [f"{r.title} [{r.resource_type}]: {r.reason}" for r in results
                if r.status in (Status.ERROR, Status.CRITICAL)]
    assert failures == []
    assert statuses[Status.SUCCESS] >= 120, statuses  # discovery, CRUD and PATCH all ran
    titles = {r.title for r in results if r.status == Status.SUCCESS}
    assert {"object_creation", "object_replacement", "object_deletion", "check_add_attribute",
            "check_remove_attribute", "check_replace_attribute", "search_with_attributes",
            "random_url", "service_provider_config_endpoint_methods"} <= titles


@pytest.mark.parametrize("content_type", ["application/scim+json; charset=utf-8",
                                          "application/json"])
def test_http_requests_in_either_content_type_get_scim_json(
    live_server: str, scim: Scim, content_type: str
) -> None:
    with _http(live_server, scim) as http:
        created = http.post("/Users", content=json.dumps({"userName": "ann@acme.example"}),
                            headers={"Content-Type": content_type})
        listed = http.get("/Users?")
        missing = http.get("/Users/nope")
        refused = http.get("/Users", headers={"Authorization": "Bearer wrong"})
    assert created.status_code == 201
    assert created.headers["Location"] == created.json()["meta"]["location"]
    for response in (created, listed, missing, refused):
        assert response.headers["Content-Type"] == "application/scim+json"
    assert refused.status_code == 401 and refused.headers["WWW-Authenticate"].startswith("Bearer")


def test_http_delete_is_an_empty_204(live_server: str, scim: Scim) -> None:
    with _http(live_server, scim) as http:
        user = http.post("/Users", json={"userName": "ann@acme.example"}).json()
        deleted = http.delete(f"/Users/{user['id']}")
    assert deleted.status_code == 204 and deleted.content == b""


def test_parallel_creates_of_one_user_name_make_exactly_one_user(
    app: Flask, live_server: str, scim: Scim
) -> None:
    names = [f"{'DUP' if n % 2 else 'dup'}-{'USER' if n % 3 else 'user'}@acme.example"
             for n in range(20)]

    def create(name: str) -> int:
        with _http(live_server, scim) as http:
            return http.post("/Users", json={"userName": name}).status_code

    with ThreadPoolExecutor(max_workers=20) as pool:
        statuses = Counter(pool.map(create, names))
    assert statuses == Counter({201: 1, 409: 19}), statuses
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Membership)) == 1


def test_parallel_member_additions_to_one_group_all_land(
    live_server: str, scim: Scim
) -> None:
    users = [scim.create_user(f"u{n}@acme.example")["id"] for n in range(10)]
    group = scim.create_group("Everyone")

    def add(user_id: str) -> int:
        with _http(live_server, scim) as http:
            return http.patch(f"/Groups/{group['id']}", json={
                "Operations": [{"op": "add", "path": "members", "value": [{"value": user_id}]}],
            }).status_code

    with ThreadPoolExecutor(max_workers=10) as pool:
        statuses = Counter(pool.map(add, users))
    assert statuses == Counter({204: 10}), statuses
    assert scim.group_member_ids(group["id"]) == set(users)
