"""scim_user_tally: live SCIM Users per organisation, kept by triggers

An unfiltered GET /Users reads the count from here instead of counting the rows
(portal/scim_tally.py says why and how). The triggers are the ones portal.scim_tally
defines; a later change to them needs its own migration that drops and recreates them.
Existing rows are counted once, into the same slots the triggers use.

Revision ID: c9e4b7a1d2f3
Revises: c3d8f1a2b9e4
Create Date: 2026-11-29 03:10:00.000000

"""
import sqlalchemy as sa
from alembic import op

from portal.scim_tally import POSTGRESQL_TRIGGERS, SLOTS, SQLITE_TRIGGERS

# revision identifiers, used by Alembic.
revision = 'c9e4b7a1d2f3'
down_revision = 'c3d8f1a2b9e4'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'scim_user_tally',
        sa.Column('organisation_id', sa.Integer(), nullable=False),
        sa.Column('slot', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('live', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['organisation_id'], ['organisation.id'],
                                name=op.f('fk_scim_user_tally_organisation_id_organisation'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('organisation_id', 'slot', name=op.f('pk_scim_user_tally')),
    )
    sqlite = op.get_bind().dialect.name == 'sqlite'
    for statement in SQLITE_TRIGGERS if sqlite else POSTGRESQL_TRIGGERS:
        op.execute(statement)
    live = 'scim_managed = true' if not sqlite else 'scim_managed = 1'
    op.execute(
        f"INSERT INTO scim_user_tally (organisation_id, slot, live) "
        f"SELECT organisation_id, id % {SLOTS}, count(*) FROM membership "
        f"WHERE {live} AND scim_deleted_at IS NULL GROUP BY organisation_id, id % {SLOTS}")


def downgrade():
    if op.get_bind().dialect.name == 'sqlite':
        for name in ('insert', 'delete', 'update'):
            op.execute(f'DROP TRIGGER IF EXISTS scim_user_tally_{name}')
    else:
        op.execute('DROP TRIGGER IF EXISTS scim_user_tally_keep ON membership')
        op.execute('DROP FUNCTION IF EXISTS scim_user_tally_keep()')
    op.drop_table('scim_user_tally')
