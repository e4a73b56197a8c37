"""the speakers' names of a session, from the program file (optional column)

Revision ID: edd18a979299
Revises: 5a1f0c2e9b7d
Create Date: 2026-11-30 07:32:28.903365

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'edd18a979299'
down_revision = '5a1f0c2e9b7d'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('program_sessions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('speakers', sa.String(length=300), server_default='', nullable=False))



def downgrade():
    with op.batch_alter_table('program_sessions', schema=None) as batch_op:
        batch_op.drop_column('speakers')

