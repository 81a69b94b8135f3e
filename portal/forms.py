"""Forms shared by the portal's blueprints."""

from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, StringField
from wtforms.validators import DataRequired, EqualTo, InputRequired


class EmptyForm(FlaskForm):
    """Carries only the CSRF token, for buttons that just POST."""


class LoginForm(FlaskForm):
    """Email and password sign-in."""

    email = EmailField("Email", validators=[DataRequired(message="Enter your email address.")])
    password = PasswordField("Password", validators=[DataRequired(message="Enter your password.")])


class PasswordForm(FlaskForm):
    """Set or change one's own password (the current one is checked by the service)."""

    current_password = PasswordField("Current password")
    new_password = PasswordField(
        "New password", validators=[InputRequired(message="Enter the new password.")])
    confirm_password = PasswordField("Repeat the new password", validators=[
        InputRequired(message="Repeat the new password."),
        EqualTo("new_password", message="The two new passwords are not the same.")])


class SwitchOrganisationForm(FlaskForm):
    """Choose which organisation the session works in."""

    organisation = StringField("Organisation", validators=[DataRequired()])


_MAX_ID = 2**63 - 1


def id_param(value: str | None) -> int | None:
    """Parse a database id from a query or form value; anything not a storable id is None."""
    if value is None or not value.strip().isdigit():
        return None
    number = int(value.strip()[:20])
    return number if 0 < number <= _MAX_ID else None
