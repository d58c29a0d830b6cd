"""jobs, model_versions, predictions: background work queued in the database, trained models
and what they predict (issue 12)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 10:00:00.000000
"""
import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    ts = sa.DateTime(timezone=True)
    op.create_table(
        'jobs',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('project_id', sa.Integer(), nullable=True),
        sa.Column('params', sa.JSON(), nullable=False),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('progress', sa.Float(), nullable=False),
        sa.Column('message', sa.Text(), nullable=False),
        sa.Column('error', sa.Text(), nullable=True),
        sa.Column('result', sa.JSON(), nullable=True),
        sa.Column('owner', sa.String(length=128), nullable=True),
        sa.Column('created_by', sa.Integer(), nullable=True),
        sa.Column('created_at', ts, nullable=False),
        sa.Column('started_at', ts, nullable=True),
        sa.Column('heartbeat_at', ts, nullable=True),
        sa.Column('finished_at', ts, nullable=True),
        sa.CheckConstraint("kind IN ('tokenize', 'train', 'predict')", name='ck_jobs_kind'),
        sa.CheckConstraint("state IN ('queued', 'running', 'done', 'failed')", name='ck_jobs_state'),
        sa.ForeignKeyConstraint(['project_id'], ['projects.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['created_by'], ['users.id'], ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_jobs_state_id', 'jobs', ['state', 'id'])
    op.create_index('ix_jobs_project_id', 'jobs', ['project_id'])
    op.create_table(
        'model_versions',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('project_id', sa.Integer(), nullable=False),
        sa.Column('number', sa.Integer(), nullable=False),
        sa.Column('source', sa.String(length=16), nullable=False),
        sa.Column('scores', sa.JSON(), nullable=False),
        sa.Column('path', sa.String(length=512), nullable=False),
        sa.Column('job_id', sa.Integer(), nullable=True),
        sa.Column('created_at', ts, nullable=False),
        sa.ForeignKeyConstraint(['project_id'], ['projects.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('project_id', 'number', name='uq_model_versions_project_number'),
    )
    op.create_index('ix_model_versions_project_id', 'model_versions', ['project_id'])
    op.create_table(
        'predictions',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('model_version_id', sa.Integer(), nullable=False),
        sa.Column('document_id', sa.Integer(), nullable=False),
        sa.Column('spans', sa.JSON(), nullable=False),
        sa.Column('uncertainty', sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(['model_version_id'], ['model_versions.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['document_id'], ['documents.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('model_version_id', 'document_id', name='uq_predictions_version_document'),
    )
    op.create_index('ix_predictions_document_id', 'predictions', ['document_id'])


def downgrade() -> None:
    op.drop_index('ix_predictions_document_id', table_name='predictions')
    op.drop_table('predictions')
    op.drop_index('ix_model_versions_project_id', table_name='model_versions')
    op.drop_table('model_versions')
    op.drop_index('ix_jobs_project_id', table_name='jobs')
    op.drop_index('ix_jobs_state_id', table_name='jobs')
    op.drop_table('jobs')
