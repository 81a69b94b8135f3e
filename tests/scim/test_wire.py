"""The SCIM wire: content types, body limits, malformed input, 404/405, lenient URLs."""

from __future__ import annotations

import json

import pytest
from flask import Flask
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import Membership
from tests.scim.conftest import Scim


def _users(app: Flask, scim: Scim) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Membership).where(
            Membership.organisation_id == scim.org_id)) or 0


@pytest.mark.parametrize("content_type", [
    "application/scim+json", "application/scim+json; charset=utf-8", "application/json",
    "application/json; charset=UTF-8", "text/plain"])
def test_json_body_is_read_whatever_the_content_type(
    app: Flask, scim: Scim, content_type: str
) -> None:
    response = scim.post("/Users", {"userName": "ann@acme.example"}, content_type=content_type)
    assert response.status_code == 201
    assert response.mimetype == "application/scim+json"
    assert scim.member(response.get_json(force=True)["id"]).user_name == "ann@acme.example"


@pytest.mark.parametrize("raw", [b"{not json", b'{"userName": }', b"\xff\xfe\x00garbage",
                                 b'{"userName": NaN}', b"[1, 2", b'{"a": 1' + b"0" * 5000 + b"}"])
def test_malformed_json_is_400_invalid_syntax_and_nothing_is_stored(
    app: Flask, scim: Scim, raw: bytes
) -> None:
    response = scim.post("/Users", raw=raw)
    assert response.status_code == 400
    body = response.get_json(force=True)
    assert body["scimType"] == "invalidSyntax" and body["status"] == "400"
    assert _users(app, scim) == 0


@pytest.mark.parametrize("raw", [b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 50 + b"1" + b"}" * 50])
def test_deeply_nested_json_is_400_never_500(app: Flask, scim: Scim, raw: bytes) -> None:
    response = scim.post("/Users", raw=raw)
    assert response.status_code == 400
    assert response.get_json(force=True)["scimType"] == "invalidSyntax"


@pytest.mark.parametrize("raw", [b"[]", b'"alice"', b"42"])
def test_body_that_is_not_an_object_is_400(scim: Scim, raw: bytes) -> None:
    assert scim.post("/Users", raw=raw).status_code == 400


def test_body_over_the_size_limit_is_413_scim_error(app: Flask, scim: Scim) -> None:
    app.config["SCIM_MAX_BODY_BYTES"] = 2048
    body = {"userName": "big@acme.example", "displayName": "x" * 4000}
    response = scim.post("/Users", body)
    assert response.status_code == 413
    assert response.get_json(force=True)["status"] == "413"
    assert _users(app, scim) == 0
    assert scim.post("/Users", {"userName": "small@acme.example"}).status_code == 201


def test_default_body_limit_is_one_mebibyte(app: Flask) -> None:
    assert app.config["SCIM_MAX_BODY_BYTES"] == 1024 * 1024


@pytest.mark.parametrize("path", ["/Users/", "/Users?", "/Users?&", "/Users?aadOptscim062020",
                                  "/Users?foo=bar&count=5", "/ServiceProviderConfig/",
                                  "/Schemas/", "/Groups/"])
def test_trailing_slash_question_mark_and_unknown_parameters_are_tolerated(
    scim: Scim, path: str
) -> None:
    response = scim.get(path)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "application/scim+json"


def test_single_resource_with_trailing_slash_is_found(scim: Scim) -> None:
    created = scim.create_user("ann@acme.example")
    response = scim.get(f"/Users/{created['id']}/")
    assert response.status_code == 200
    assert response.get_json(force=True)["id"] == created["id"]


@pytest.mark.parametrize("path", ["/Nope", "/Users/x/y", "/scim/v2/{key}", "/scim/v2/{key}/",
                                  "/Bulk", "/Me"])
def test_unknown_paths_are_404_scim_errors(scim: Scim, path: str) -> None:
    response = scim.get(path.format(key=scim.key))
    assert response.status_code == 404
    assert response.mimetype == "application/scim+json"
    assert response.get_json(force=True)["status"] == "404"


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
@pytest.mark.parametrize("path", ["/ServiceProviderConfig", "/ResourceTypes",
                                  "/ResourceTypes/User", "/Schemas",
                                  "/Schemas/urn:ietf:params:scim:schemas:core:2.0:User"])
def test_writes_to_discovery_endpoints_are_405(scim: Scim, method: str, path: str) -> None:
    response = scim.request(method, path, {})
    assert response.status_code == 405
    assert response.get_json(force=True)["status"] == "405"


@pytest.mark.parametrize("method,path", [("PUT", "/Users"), ("DELETE", "/Groups"),
                                         ("PATCH", "/Users"), ("GET", "/.search"),
                                         ("GET", "/Users/.search"), ("POST", "/Users/abc")])
def test_unsupported_methods_on_resource_endpoints_are_405(
    scim: Scim, method: str, path: str
) -> None:
    response = scim.request(method, path, {})
    assert response.status_code == 405
    assert response.mimetype == "application/scim+json"


def test_unknown_id_is_404_with_detail(scim: Scim) -> None:
    for path in ["/Users/0b1c", "/Groups/0b1c"]:
        response = scim.get(path)
        assert response.status_code == 404
        body = response.get_json(force=True)
        assert body["status"] == "404" and "0b1c" in body["detail"]


def test_delete_answers_204_with_an_empty_body(scim: Scim) -> None:
    created = scim.create_user("ann@acme.example")
    response = scim.delete(f"/Users/{created['id']}")
    assert response.status_code == 204 and response.data == b""


def test_error_bodies_never_carry_a_traceback(scim: Scim) -> None:
    response = scim.post("/Users", {"userName": {"nested": ["x"]}})
    assert response.status_code == 400
    text = response.get_data(as_text=True)
    assert "Traceback" not in text and "File \"" not in text
    assert json.loads(text)["scimType"] == "invalidValue"


def test_head_answers_like_get_without_a_body(scim: Scim) -> None:
    created = scim.create_user("ann@acme.example")
    for path in ("/Users", f"/Users/{created['id']}", "/Groups", "/ServiceProviderConfig"):
        response = scim.request("HEAD", path)
        assert response.status_code == 200 and response.data == b"", path
