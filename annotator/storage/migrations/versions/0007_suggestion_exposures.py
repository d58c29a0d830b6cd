"""suggestion_exposures: whether a person's document was shown with suggestions (issue 12)

The report compares documents annotated with suggestions and without (control documents,
honeypots, suggestions off). Which one a document was cannot be worked out afterwards from the
settings, which may have changed since: the suggestions endpoint records it per (document,
person) when it answers. Work done before this revision has no row and counts as without.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 07:50:00.000000
"""
import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'suggestion_exposures',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('document_id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('shown', sa.Boolean(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['document_id'], ['documents.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('document_id', 'user_id', name='uq_exposures_document_user'),
    )
    op.create_index('ix_suggestion_exposures_document_id', 'suggestion_exposures',
                    ['document_id'])


def downgrade() -> None:
    op.drop_index('ix_suggestion_exposures_document_id', table_name='suggestion_exposures')
    op.drop_table('suggestion_exposures')
