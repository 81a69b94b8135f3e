"""Forms of the People and Groups screens."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from flask_wtf import FlaskForm
from wtforms import IntegerField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, Length, NumberRange, Optional

from portal.models import Role

# Ends offered ready-made; "tomorrow-18" is 18:00 tomorrow in the person's time zone.
PRESETS: dict[str, str] = {
    "": "At a date and time",
    "1h": "For one hour",
    "8h": "For eight hours",
    "tomorrow-18": "Until tomorrow 18:00",
    "7d": "For seven days",
    "30d": "For 30 days",
}
_PRESET_DELTAS = {"1h": timedelta(hours=1), "8h": timedelta(hours=8), "7d": timedelta(days=7),
                  "30d": timedelta(days=30)}


_NOT_IN_LIST = {"role_id": "Choose a role from the list.",
                "preset": "Choose when the grant ends from the list."}


def _first_error(form: FlaskForm) -> str:
    for name, errors in form.errors.items():
        for error in errors:
            if "valid choice" in str(error):
                return _NOT_IN_LIST.get(name, "Choose a value from the list.")
            return str(error)
    return "The form could not be read; reload the page and try again."


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
        return _first_error(self)


class GrantForm(RoleForm):
    """Grant a role until a date and time, for a reason (the time is UTC unless JS says otherwise)."""

    preset = SelectField("Ends", default="",
                         choices=[SelectChoice(v, label) for v, label in PRESETS.items()])
    until = StringField("Until", validators=[Optional()])
    # Minutes east of UTC of the person's browser, filled in by static/app.js; empty is UTC.
    tz_offset = IntegerField("Time zone offset", validators=[
        Optional(), NumberRange(min=-16 * 60, max=16 * 60, message="Reload the page and try again.")])
    reason = StringField("Reason", validators=[
        InputRequired(message="Give a reason (for example “Q4 ISO 27001 audit”)."),
        Length(max=300, message="Keep the reason to 300 characters.")])

    def until_utc(self, now: datetime) -> datetime:
        """Return the chosen end as an aware UTC instant, or raise ValueError with a message."""
        zone = timezone(timedelta(minutes=self.tz_offset.data or 0))
        preset = self.preset.data or ""
        if preset in _PRESET_DELTAS:
            return now + _PRESET_DELTAS[preset]
        if preset == "tomorrow-18":
            local = now.astimezone(zone) + timedelta(days=1)
            return local.replace(hour=18, minute=0, second=0, microsecond=0).astimezone(UTC)
        text = (self.until.data or "").strip()
        if not text:
            raise ValueError("Choose when the grant ends: a date and time, or one of the presets.")
        try:
            chosen = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError("Enter the end as a date and time, e.g. 2026-12-01 18:00.") from None
        if chosen.tzinfo is None:
            chosen = chosen.replace(tzinfo=zone)
        return chosen.astimezone(UTC)
