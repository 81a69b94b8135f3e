"""Forms of the People and Groups screens."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import SelectField
from wtforms.validators import InputRequired

from portal.models import Role


class RoleForm(FlaskForm):
    """Choose one role (to grant to a member or to map a group to)."""

    role_id = SelectField("Role", coerce=int,
                          validators=[InputRequired(message="Choose a role.")])

    def set_roles(self, roles: list[Role]) -> RoleForm:
        """Offer these roles as the choices."""
        self.role_id.choices = [(r.id, r.name) for r in roles]
        return self

    def error_message(self) -> str:
        """Return the first validation error as one sentence."""
        for errors in self.errors.values():
            for error in errors:
                return "Choose a role from the list." if "valid choice" in str(error) else \
                    str(error)
        return "The form could not be read; reload the page and try again."
