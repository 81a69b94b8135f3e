"""JSON columns read back exactly what was stored, on both backends (orjson with a fallback)."""

from __future__ import annotations

import math

from flask import Flask
from sqlalchemy import select

from portal import _load_json
from portal.extensions import db
from portal.models import AuditEvent


def test_json_reader_keeps_huge_integers_exact_and_reads_nan() -> None:
    assert _load_json('{"n": 147573952589676412927}') == {"n": 147573952589676412927}
    assert _load_json(b'{"n": -92233720368547758090}') == {"n": -92233720368547758090}
    assert _load_json('{"n": 18446744073709551615, "s": "x"}')["n"] == 18446744073709551615
    assert math.isnan(_load_json('{"n": NaN}')["n"])
    assert _load_json(b'{"emails": [{"value": "a@b.example"}], "ok": true}') == {
        "emails": [{"value": "a@b.example"}], "ok": True}


def test_a_json_column_round_trips_huge_integers_floats_and_unicode(app: Flask) -> None:
    stored = {"big": 147573952589676412927, "neg": -98765432109876543210123, "f": 0.1,
              "text": "Zoë – 東京", "nested": [{"id": 12345678901234567890}]}
    with app.app_context():
        db.session.add(AuditEvent(action="test.json", actor_label="test", details=stored))
        db.session.commit()
        db.session.expire_all()
        read = db.session.scalar(select(AuditEvent.details).where(AuditEvent.action == "test.json"))
    assert read == stored
    assert isinstance(read["big"], int) and isinstance(read["nested"][0]["id"], int)
