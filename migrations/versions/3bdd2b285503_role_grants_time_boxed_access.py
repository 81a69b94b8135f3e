"""role grants (time-boxed access: a role until an instant, with a reason)

Revision ID: 3bdd2b285503
Revises: f9a4a7672e5c
Create Date: 2026-11-28 12:00:40.123505

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '3bdd2b285503'
down_revision = 'f9a4a7672e5c'
branch_labels = None
depends_on = None

OPEN = sa.text('ended_at IS NULL')


def upgrade():
    op.create_table(
        'role_grant',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('organisation_id', sa.Integer(), nullable=False),
        sa.Column('membership_id', sa.Integer(), nullable=False),
        sa.Column('role_id', sa.Integer(), nullable=False),
        sa.Column('until', sa.DateTime(timezone=True), nullable=False),
        sa.Column('reason', sa.String(length=300), nullable=False),
        sa.Column('granted_by_id', sa.Integer(), nullable=True),
        sa.Column('granted_by_label', sa.String(length=320), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('ended_by_id', sa.Integer(), nullable=True),
        sa.Column('ended_by_label', sa.String(length=320), nullable=True),
        sa.Column('end_reason', sa.String(length=20), nullable=True),
        sa.ForeignKeyConstraint(['ended_by_id'], ['account.id'],
                                name=op.f('fk_role_grant_ended_by_id_account'),
                                ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['granted_by_id'], ['account.id'],
                                name=op.f('fk_role_grant_granted_by_id_account'),
                                ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['membership_id'], ['membership.id'],
                                name=op.f('fk_role_grant_membership_id_membership'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['organisation_id'], ['organisation.id'],
                                name=op.f('fk_role_grant_organisation_id_organisation'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['role_id'], ['role.id'],
                                name=op.f('fk_role_grant_role_id_role'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_role_grant')),
    )
    with op.batch_alter_table('role_grant', schema=None) as batch_op:
        batch_op.create_index('ix_role_grant_membership', ['membership_id', 'until'],
                              unique=False)
        batch_op.create_index('ix_role_grant_open_until', ['until'], unique=False,
                              sqlite_where=OPEN, postgresql_where=OPEN)
        batch_op.create_index(batch_op.f('ix_role_grant_organisation_id'), ['organisation_id'],
                              unique=False)


def downgrade():
    with op.batch_alter_table('role_grant', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_role_grant_organisation_id'))
        batch_op.drop_index('ix_role_grant_open_until', sqlite_where=OPEN, postgresql_where=OPEN)
        batch_op.drop_index('ix_role_grant_membership')

    op.drop_table('role_grant')
