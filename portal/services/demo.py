"""The demo data `flask --app app demo` seeds, idempotently."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from portal.extensions import db
from portal.models import Organisation
from portal.permissions import IT_ADMINISTRATOR, MEMBER
from portal.services import accounts, organisations, roles
from portal.services.audit import CLI_ACTOR

IT_ADMIN_EMAIL = "it-admin@acme.example"
MEMBER_EMAIL = "member@acme.example"
SUPPORT_EMAIL = "support@vendor.example"


@dataclass(frozen=True)
class DemoData:
    """What the demo seeded."""

    acme: Organisation
    globex: Organisation

    def describe(self, password: str, base_url: str) -> str:
        """Return the sign-in details for the console (the portal served at `base_url`)."""
        return "\n".join([
            f"Demo data is ready. Sign in at {base_url.rstrip('/')}/login with:",
            f"  IT administrator  {IT_ADMIN_EMAIL:<26} password: {password}",
            f"  Member            {MEMBER_EMAIL:<26} password: {password}",
            f"  Support staff     {SUPPORT_EMAIL:<26} password: {password}",
            f"Acme Corp key: {self.acme.key} (SCIM released)",
            f"Globex key:    {self.globex.key} (SCIM not yet released)",
        ])


def _organisation(name: str, released: bool) -> Organisation:
    org = db.session.scalar(select(Organisation).where(Organisation.name == name))
    if org is None:
        org = organisations.create_organisation(name, CLI_ACTOR, released=released)
    return org


def seed_demo(password: str) -> DemoData:
    """Create or refresh the demo organisations and people."""
    roles.ensure_builtin_roles()
    acme = _organisation("Acme Corp", released=True)
    globex = _organisation("Globex", released=False)
    it_admin = roles.get_role(IT_ADMINISTRATOR)
    member = roles.get_role(MEMBER)
    accounts.add_member(acme, IT_ADMIN_EMAIL, CLI_ACTOR, role=it_admin, password=password,
                        display_name="Ada IT-Admin")
    accounts.add_member(globex, IT_ADMIN_EMAIL, CLI_ACTOR, role=it_admin)
    accounts.add_member(acme, MEMBER_EMAIL, CLI_ACTOR, role=member, password=password,
                        display_name="Max Member")
    support = accounts.get_or_create_account(SUPPORT_EMAIL, display_name="Sam Support")
    accounts.set_password(support, password)
    support.is_support_staff = True
    db.session.flush()
    return DemoData(acme, globex)
