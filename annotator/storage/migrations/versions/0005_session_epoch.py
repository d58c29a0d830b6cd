"""users.session_epoch: logging out and a new password end the sessions begun before

A session is a signed cookie; until this revision a copy of one kept working after its
owner logged out, until it expired. Each cookie now carries the epoch of its user at log-in,
and every request compares it with the user's, read by the look-up that loads the caller
anyway. Logging out and setting a password add one. Existing users start at 0, which is
also what a cookie from before this revision counts as, so upgrading logs nobody out.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 07:00:00.000000
"""
import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('session_epoch', sa.Integer(), nullable=False,
                                      server_default='0'))


def downgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('session_epoch')
