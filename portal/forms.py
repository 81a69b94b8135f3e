"""Forms shared by the portal's blueprints."""

from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, StringField
from wtforms.validators import DataRequired


class EmptyForm(FlaskForm):
    """Carries only the CSRF token, for buttons that just POST."""


class LoginForm(FlaskForm):
    """Email and password sign-in."""

    email = EmailField("Email", validators=[DataRequired(message="Enter your email address.")])
    password = PasswordField("Password", validators=[DataRequired(message="Enter your password.")])


class SwitchOrganisationForm(FlaskForm):
    """Choose which organisation the session works in."""

    organisation = StringField("Organisation", validators=[DataRequired()])
