"""Fixtures for SSO tests: a test IdP, an organisation using it, SCIM-provisioned people."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from portal.extensions import db
from portal.models import SOURCE_SCIM, MemberEmail, Membership, Organisation
from portal.services import accounts, saml, sso
from portal.services.audit import CLI_ACTOR
from portal.services.sso_settings import settings_from_metadata
from tests.conftest import Factory
from tests.sso.idp import TestIdP


@dataclass
class SsoOrg:
    """An organisation with SSO configured against `idp`, and its IT administrator."""

    org: Organisation
    idp: TestIdP
    entity_id: str
    acs_url: str
    admin_email: str

    @property
    def acs_path(self) -> str:
        return f"/sso/{self.org.key}/acs"

    def response(self, name_id: str, **kwargs: object) -> str:
        """Return a SAMLResponse for this organisation, signed by its IdP unless told otherwise."""
        kwargs.setdefault("acs_url", self.acs_url)
        kwargs.setdefault("audience", self.entity_id)
        return self.idp.response(name_id=name_id, **kwargs)  # type: ignore[arg-type]


def configure_sso(app: Flask, org: Organisation, idp: TestIdP) -> tuple[str, str]:
    """Save SSO settings for the organisation from the IdP's metadata; return (entity, acs)."""
    with app.test_request_context():
        fresh = db.session.get(Organisation, org.id)
        assert fresh is not None
        sso.save_config(fresh, settings_from_metadata(idp.metadata()), CLI_ACTOR, source="metadata")
        db.session.commit()
        return saml.sp_entity_id(fresh), saml.acs_url(fresh)


def scim_member(app: Flask, org: Organisation, user_name: str, *, email: str | None = None,
                active: bool = True, display_name: str = "Jane Doe") -> Membership:
    """Create a member the way SCIM provisioning does: no password, source 'scim'."""
    email = email or user_name
    with app.app_context():
        account = accounts.get_or_create_account(email, display_name=display_name)
        member = Membership(
            organisation_id=org.id, account_id=account.id, source=SOURCE_SCIM,
            scim_managed=True, active=active, user_name=user_name,
            user_name_lower=user_name.lower(), display_name=display_name,
            emails=[MemberEmail(value=email, value_lower=email.lower(), type="work",
                                primary=True)])
        db.session.add(member)
        db.session.commit()
        db.session.refresh(member)
        _ = member.account
        db.session.expunge_all()
        return member


def post_acs(client: FlaskClient, sso_org: SsoOrg, saml_response: str,
             **form: str) -> TestResponse:
    """POST a SAMLResponse to the organisation's ACS as the IdP's auto-submitting form does."""
    return client.post(sso_org.acs_path, data={"SAMLResponse": saml_response, **form})


@pytest.fixture
def idp() -> TestIdP:
    """A test identity provider with a fresh key pair and certificate."""
    return TestIdP()


@pytest.fixture
def sso_org(app: Flask, factory: Factory, idp: TestIdP) -> SsoOrg:
    """Acme Corp with SSO configured against the test IdP, and an IT administrator."""
    org = factory.org("Acme Corp")
    admin = factory.it_admin(org)
    entity_id, acs_url = configure_sso(app, org, idp)
    return SsoOrg(org=org, idp=idp, entity_id=entity_id, acs_url=acs_url,
                  admin_email=admin.account.email)
