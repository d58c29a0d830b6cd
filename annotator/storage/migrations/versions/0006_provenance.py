"""spans: where a span came from; suggestion_rejections (issue 12)

A saved span records whether it was drawn by hand (``origin`` null) or accepted from a
suggestion (``origin``: dictionary, patterns or model, with the source's ``origin_version``),
and whether it was ``edited`` after accepting. Every rejected suggestion is a row of
``suggestion_rejections``: it is not offered to that person on that document again. Existing
spans count as drawn by hand.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 07:20:00.000000
"""
import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('spans', schema=None) as batch_op:
        batch_op.add_column(sa.Column('origin', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('origin_version', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('edited', sa.Boolean(), nullable=True))
    op.create_table(
        'suggestion_rejections',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('document_id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('start', sa.Integer(), nullable=False),
        sa.Column('end', sa.Integer(), nullable=False),
        sa.Column('label', sa.String(length=64), nullable=False),
        sa.Column('source', sa.String(length=16), nullable=False),
        sa.Column('version', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['document_id'], ['documents.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('document_id', 'user_id', 'start', 'end', 'label',
                            name='uq_rejections_doc_user_span'),
    )
    op.create_index('ix_suggestion_rejections_document_id', 'suggestion_rejections',
                    ['document_id'])


def downgrade() -> None:
    op.drop_index('ix_suggestion_rejections_document_id', table_name='suggestion_rejections')
    op.drop_table('suggestion_rejections')
    with op.batch_alter_table('spans', schema=None) as batch_op:
        batch_op.drop_column('edited')
        batch_op.drop_column('origin_version')
        batch_op.drop_column('origin')
