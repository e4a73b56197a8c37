"""revocable staff sessions, fresh re-registration, link requests, anonymisation

- staff.session_token: what a session carries; a new value ends every session of the person.
- registrants: the address is unique among live registrations only, so registering again after a cancellation
  starts a new registration; anonymised_at marks erased personal data.
- link_requests: lost-link and repeat-registration requests, answered by the mail sender.
- outbox.registrant_id: the registration a mail is about, so that erasing it finds its mail.

Revision ID: 5a1f0c2e9b7d
Revises: 3eed48bf4af4
Create Date: 2026-11-30 05:20:00.000000

"""
import secrets

from alembic import op
import sqlalchemy as sa

from registration.types import UTCDateTime

# revision identifiers, used by Alembic.
revision = '5a1f0c2e9b7d'
down_revision = '3eed48bf4af4'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('staff', schema=None) as batch_op:
        batch_op.add_column(sa.Column('session_token', sa.String(length=64), nullable=True))
    staff = sa.table('staff', sa.column('id', sa.Integer), sa.column('session_token', sa.String))
    connection = op.get_bind()
    for (staff_id,) in connection.execute(sa.select(staff.c.id)).all():
        # Each account its own random token: sessions signed in before the upgrade end, which is the safe side.
        connection.execute(staff.update().where(staff.c.id == staff_id)
                           .values(session_token=secrets.token_urlsafe(32)))
    with op.batch_alter_table('staff', schema=None) as batch_op:
        batch_op.alter_column('session_token', existing_type=sa.String(length=64), nullable=False)
        batch_op.create_unique_constraint(batch_op.f('uq_staff_session_token'), ['session_token'])

    with op.batch_alter_table('registrants', schema=None) as batch_op:
        batch_op.add_column(sa.Column('anonymised_at', UTCDateTime(), nullable=True))
        batch_op.drop_constraint(batch_op.f('uq_registrants_email_key'), type_='unique')
        batch_op.create_index(batch_op.f('ix_registrants_email_key'), ['email_key'], unique=False)
        batch_op.create_index('uq_registrants_live_email_key', ['email_key'], unique=True,
                              sqlite_where=sa.text('cancelled_at IS NULL'),
                              postgresql_where=sa.text('cancelled_at IS NULL'))

    with op.batch_alter_table('outbox', schema=None) as batch_op:
        # Mail queued before this revision stays unlinked: `privacy purge` erases all mail regardless.
        batch_op.add_column(sa.Column('registrant_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_outbox_registrant_id'), ['registrant_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_outbox_registrant_id_registrants'), 'registrants',
                                    ['registrant_id'], ['id'])

    op.create_table(
        'link_requests',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('email', sa.String(length=254), nullable=False),
        sa.Column('kind', sa.String(length=20), nullable=False),
        sa.Column('requested_at', UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_link_requests')),
    )


def downgrade():
    op.drop_table('link_requests')
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_outbox_registrant_id_registrants'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_outbox_registrant_id'))
        batch_op.drop_column('registrant_id')
    with op.batch_alter_table('registrants', schema=None) as batch_op:
        batch_op.drop_index('uq_registrants_live_email_key', sqlite_where=sa.text('cancelled_at IS NULL'),
                            postgresql_where=sa.text('cancelled_at IS NULL'))
        batch_op.drop_index(batch_op.f('ix_registrants_email_key'))
        # Fails, as it should, when an address has both a cancelled and a live registration.
        batch_op.create_unique_constraint(batch_op.f('uq_registrants_email_key'), ['email_key'])
        batch_op.drop_column('anonymised_at')
    with op.batch_alter_table('staff', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_staff_session_token'), type_='unique')
        batch_op.drop_column('session_token')
