"""notification permission and scim incident

Every notification that names an organisation until now was for IAM administrators
(SCIM failures and release, token rotation, SSO certificate expiry, IAM grants), so
those rows get that permission: readers who lost it stop seeing them.

Revision ID: e7553ad1e6ad
Revises: b7e2c41d9a05
Create Date: 2026-11-28 23:24:19.942366

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'e7553ad1e6ad'
down_revision = 'b7e2c41d9a05'
branch_labels = None
depends_on = None

OPEN = sa.text('closed_at IS NULL')


def upgrade():
    op.create_table('scim_incident',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('organisation_id', sa.Integer(), nullable=False),
    sa.Column('opened_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('announced_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_failure_id', sa.Integer(), nullable=False),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisation.id'],
                            name=op.f('fk_scim_incident_organisation_id_organisation'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_scim_incident'))
    )
    with op.batch_alter_table('scim_incident', schema=None) as batch_op:
        batch_op.create_index('uq_scim_incident_open', ['organisation_id'], unique=True,
                              sqlite_where=OPEN, postgresql_where=OPEN)

    with op.batch_alter_table('notification', schema=None) as batch_op:
        batch_op.add_column(sa.Column('permission', sa.String(length=100), nullable=True))
    op.execute("UPDATE notification SET permission = 'it_settings.iam' "
               "WHERE organisation_id IS NOT NULL")


def downgrade():
    with op.batch_alter_table('notification', schema=None) as batch_op:
        batch_op.drop_column('permission')

    with op.batch_alter_table('scim_incident', schema=None) as batch_op:
        batch_op.drop_index('uq_scim_incident_open', sqlite_where=OPEN, postgresql_where=OPEN)

    op.drop_table('scim_incident')
