"""An organisation's number of live SCIM Users, kept by the database as rows change.

Every unfiltered `GET /Users` answers `totalResults`, and IdPs page through whole
directories that way. Counting the rows each time costs time in proportion to the
directory: at 100,000 Users, ~4 ms on SQLite, more than the rest of a page of 100. Here
triggers on `membership` keep the count in `scim_user_tally`, so the list reads at most 16
small rows whatever the size.

Why triggers, not application code: a User enters or leaves the list by any write to
`scim_managed`, `scim_deleted_at` or `organisation_id` — SCIM creates and deletes, the
portal, the CLI, cascades when an organisation is deleted, bulk loads in raw SQL. A trigger
sees them all, in the same transaction, so the count cannot drift from the rows. No
library keeps a per-tenant counter for SQLAlchemy.

Why 16 slots: a row's slot is its id modulo 16, so on PostgreSQL concurrent creates in
one organisation mostly update different rows instead of queueing on one. A slot may go
negative (a User counted in one slot and removed later is taken from the same slot, so the
sum stays exact); only the sum means anything. SQLite needs none of this (one writer), but
the same schema keeps one code path.

Migrations create the same triggers (c9e4b7a1d2f3); `db.create_all()` (the tests) gets
them from the `after_create` hooks below.
"""

from __future__ import annotations

from sqlalchemy import DDL, event
from sqlalchemy.schema import MetaData

SLOTS = 16
_LIVE = "{row}.scim_managed AND {row}.scim_deleted_at IS NULL"

SQLITE_TRIGGERS = (
    f"""CREATE TRIGGER scim_user_tally_insert AFTER INSERT ON membership
    WHEN {_LIVE.format(row="NEW")}
    BEGIN
        INSERT INTO scim_user_tally (organisation_id, slot, live)
        VALUES (NEW.organisation_id, NEW.id % {SLOTS}, 1)
        ON CONFLICT (organisation_id, slot) DO UPDATE SET live = live + 1;
    END""",
    f"""CREATE TRIGGER scim_user_tally_delete AFTER DELETE ON membership
    WHEN {_LIVE.format(row="OLD")}
    BEGIN
        UPDATE scim_user_tally SET live = live - 1
        WHERE organisation_id = OLD.organisation_id AND slot = OLD.id % {SLOTS};
    END""",
    f"""CREATE TRIGGER scim_user_tally_update
    AFTER UPDATE OF scim_managed, scim_deleted_at, organisation_id ON membership
    BEGIN
        UPDATE scim_user_tally SET live = live - 1
        WHERE {_LIVE.format(row="OLD")}
          AND organisation_id = OLD.organisation_id AND slot = OLD.id % {SLOTS};
        INSERT INTO scim_user_tally (organisation_id, slot, live)
        SELECT NEW.organisation_id, NEW.id % {SLOTS}, 1 WHERE {_LIVE.format(row="NEW")}
        ON CONFLICT (organisation_id, slot) DO UPDATE SET live = live + 1;
    END""",
)

POSTGRESQL_TRIGGERS = (
    f"""CREATE OR REPLACE FUNCTION scim_user_tally_keep() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP IN ('UPDATE', 'DELETE') THEN
            IF {_LIVE.format(row="OLD")} THEN
                UPDATE scim_user_tally SET live = live - 1
                WHERE organisation_id = OLD.organisation_id AND slot = OLD.id % {SLOTS};
            END IF;
        END IF;
        IF TG_OP IN ('INSERT', 'UPDATE') THEN
            IF {_LIVE.format(row="NEW")} THEN
                INSERT INTO scim_user_tally (organisation_id, slot, live)
                VALUES (NEW.organisation_id, NEW.id % {SLOTS}, 1)
                ON CONFLICT (organisation_id, slot)
                DO UPDATE SET live = scim_user_tally.live + 1;
            END IF;
        END IF;
        RETURN NULL;
    END $$""",
    "DROP TRIGGER IF EXISTS scim_user_tally_keep ON membership",
    """CREATE TRIGGER scim_user_tally_keep
    AFTER INSERT OR DELETE OR UPDATE OF scim_managed, scim_deleted_at, organisation_id
    ON membership FOR EACH ROW EXECUTE FUNCTION scim_user_tally_keep()""",
)


def install(metadata: MetaData) -> None:
    """Create the triggers whenever `metadata.create_all()` creates the tables."""
    for dialect, statements in (("sqlite", SQLITE_TRIGGERS), ("postgresql", POSTGRESQL_TRIGGERS)):
        for statement in statements:  # DDL formats its text with %: "id % 16" -> "id %% 16"
            ddl = DDL(statement.replace("%", "%%")).execute_if(dialect=dialect)
            event.listen(metadata, "after_create", ddl)
