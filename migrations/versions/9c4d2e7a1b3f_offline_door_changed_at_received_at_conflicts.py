"""the offline door: registrants.changed_at, received_at beside the door's times, offline results and conflicts

- registrants.changed_at: when anything about the person last changed (the door's data set sends changes since a
  version); backfilled with registered_at.
- checkins.received_at, scans.received_at: when the server learnt of the scan; `at` becomes the device's scan
  time for a scan queued offline. Backfilled with `at`.
- scans.offline_result, scans.conflict, scans.conflict_resolved_at, scans.conflict_resolved_by_id: what the door
  decided offline, where the server disagrees, and when staff dealt with it.

Revision ID: 9c4d2e7a1b3f
Revises: 433159b066d6
Create Date: 2026-11-30 14:45:00.000000

"""
from alembic import op
import sqlalchemy as sa

from registration.types import UTCDateTime

# revision identifiers, used by Alembic.
revision = '9c4d2e7a1b3f'
down_revision = '433159b066d6'
branch_labels = None
depends_on = None


def upgrade():
    sqlite = op.get_bind().dialect.name == 'sqlite'
    # registrants is the parent of many foreign keys: on SQLite (foreign keys on) a batch recreate of it fails once it
    # has rows, so the column comes NOT NULL with a constant default, which SQLite adds in place; it is backfilled
    # below, and PostgreSQL drops the default again. The app always sets changed_at itself.
    op.add_column('registrants', sa.Column('changed_at', UTCDateTime(), nullable=False,
                                           server_default=sa.text("'1970-01-01 00:00:00'")))
    op.create_index(op.f('ix_registrants_changed_at'), 'registrants', ['changed_at'], unique=False)
    # checkins and scans are no parents: added nullable, filled from the row's own times, then made NOT NULL.
    with op.batch_alter_table('checkins', schema=None) as batch_op:
        batch_op.add_column(sa.Column('received_at', UTCDateTime(), nullable=True))
    with op.batch_alter_table('scans', schema=None) as batch_op:
        batch_op.add_column(sa.Column('received_at', UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('offline_result', sa.String(length=24), nullable=True))
        batch_op.add_column(sa.Column('conflict', sa.String(length=24), nullable=True))
        batch_op.add_column(sa.Column('conflict_resolved_at', UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('conflict_resolved_by_id', sa.Integer(), nullable=True))

    op.execute("UPDATE registrants SET changed_at = registered_at")
    op.execute("UPDATE checkins SET received_at = at WHERE received_at IS NULL")
    op.execute("UPDATE scans SET received_at = at WHERE received_at IS NULL")

    if not sqlite:
        op.alter_column('registrants', 'changed_at', existing_type=UTCDateTime(), server_default=None)
    with op.batch_alter_table('checkins', schema=None) as batch_op:
        batch_op.alter_column('received_at', existing_type=UTCDateTime(), nullable=False)
    with op.batch_alter_table('scans', schema=None) as batch_op:
        batch_op.alter_column('received_at', existing_type=UTCDateTime(), nullable=False)
        batch_op.create_index(batch_op.f('ix_scans_conflict'), ['conflict'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_scans_conflict_resolved_by_id_staff'), 'staff',
                                    ['conflict_resolved_by_id'], ['id'])


def downgrade():
    with op.batch_alter_table('scans', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_scans_conflict_resolved_by_id_staff'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_scans_conflict'))
        batch_op.drop_column('conflict_resolved_by_id')
        batch_op.drop_column('conflict_resolved_at')
        batch_op.drop_column('conflict')
        batch_op.drop_column('offline_result')
        batch_op.drop_column('received_at')
    with op.batch_alter_table('checkins', schema=None) as batch_op:
        batch_op.drop_column('received_at')
    op.drop_index(op.f('ix_registrants_changed_at'), table_name='registrants')
    op.drop_column('registrants', 'changed_at')  # SQLite >= 3.35 drops a column in place
