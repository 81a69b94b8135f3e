"""Discovery documents: accurate, parseable by scim2-models, and needing the token."""

from __future__ import annotations

from scim2_models import ResourceType, Schema, ScimProvider, ServiceProviderConfig

from tests.scim.conftest import Scim

CORE_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
CORE_GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"


def test_service_provider_config_advertises_only_what_works(scim: Scim) -> None:
    body = scim.get("/ServiceProviderConfig").get_json(force=True)
    assert body["patch"] == {"supported": True}
    assert body["bulk"]["supported"] is False
    assert body["filter"] == {"supported": True, "maxResults": 1000}
    assert body["changePassword"] == {"supported": False}
    assert body["sort"] == {"supported": True}
    assert body["etag"] == {"supported": True}
    assert [s["type"] for s in body["authenticationSchemes"]] == ["oauthbearertoken"]
    assert body["meta"]["location"] == f"https://dpms.test{scim.base}/ServiceProviderConfig"
    ServiceProviderConfig.model_validate(body)


def test_advertised_maximum_page_size_is_enforced(scim: Scim) -> None:
    for n in range(3):
        scim.create_user(f"u{n}@acme.example")
    body = scim.get("/Users?count=5000").get_json(force=True)
    assert body["itemsPerPage"] == 3  # the cap is 1000; only 3 exist
    maximum = scim.get("/ServiceProviderConfig").get_json(force=True)["filter"]["maxResults"]
    assert maximum == 1000


def test_resource_types_list_users_with_enterprise_extension_and_groups(scim: Scim) -> None:
    body = scim.get("/ResourceTypes").get_json(force=True)
    assert body["totalResults"] == 2
    by_id = {r["id"]: r for r in body["Resources"]}
    assert by_id["User"]["endpoint"] == "/Users" and by_id["User"]["schema"] == CORE_USER
    assert by_id["User"]["schemaExtensions"] == [{"schema": ENTERPRISE, "required": False}]
    assert by_id["Group"]["schema"] == CORE_GROUP
    one = scim.get("/ResourceTypes/User").get_json(force=True)
    assert one == by_id["User"]
    ResourceType.model_validate(one)
    assert scim.get("/ResourceTypes/Device").status_code == 404


def test_schemas_describe_users_enterprise_and_groups(scim: Scim) -> None:
    body = scim.get("/Schemas").get_json(force=True)
    ids = [s["id"] for s in body["Resources"]]
    assert ids == [CORE_USER, ENTERPRISE, CORE_GROUP]
    user = scim.get(f"/Schemas/{CORE_USER}").get_json(force=True)
    names = {a["name"]: a for a in user["attributes"]}
    assert names["userName"]["uniqueness"] == "server" and names["userName"]["caseExact"] is False
    assert names["password"]["returned"] == "never"
    assert names["groups"]["mutability"] == "readOnly"
    assert user["meta"]["location"].endswith(f"/Schemas/{CORE_USER}")
    group = scim.get(f"/Schemas/{CORE_GROUP}").get_json(force=True)
    members = next(a for a in group["attributes"] if a["name"] == "members")
    subs = {s["name"]: s for s in members["subAttributes"]}
    assert subs["$ref"]["referenceTypes"] == ["User"]
    assert subs["display"]["mutability"] == "readOnly"
    assert scim.get("/Schemas/urn:example:nope").status_code == 404


def test_published_documents_compose_into_a_provider_description(scim: Scim) -> None:
    schemas = [Schema.model_validate(s)
               for s in scim.get("/Schemas").get_json(force=True)["Resources"]]
    types = [ResourceType.model_validate(r)
             for r in scim.get("/ResourceTypes").get_json(force=True)["Resources"]]
    config = ServiceProviderConfig.model_validate(
        scim.get("/ServiceProviderConfig").get_json(force=True))
    provider = ScimProvider.from_discovery(schemas, types, config)
    assert {rt.name for rt in provider.resource_types} == {"User", "Group"}


def test_discovery_needs_the_token(scim: Scim) -> None:
    assert scim.get("/ServiceProviderConfig", token="").status_code == 401
    assert scim.get("/Schemas", token="nope").status_code == 401
