"""documents: no index on content_hash; on PostgreSQL, lz4 for the long columns

No query looks documents up by their hash (it names a document when the upload gives no id,
and is shown in the API), and every import paid for keeping the index: measured with sqlite3
alone, 10,000 documents of 2,000 characters went in in 103 ms without it against 124 ms with
it (median of six; docs/speed.md).

PostgreSQL compresses every value over ~2 KB (TOAST), with pglz by default: the same import
through the API took 1.11-1.15 s with pglz and 0.64 s with lz4 (PostgreSQL 15, three runs
each; the web process's own CPU was 0.30 s either way). Where the server has lz4 (14 and
later, when built with it, as Debian's is), documents.text and documents.tokens use it for
the values written from now on; values already stored stay as they are.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 19:40:00.000000
"""
import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

LONG_COLUMNS = ('text', 'tokens')


def _has_lz4(bind) -> bool:
    if bind.dialect.name != 'postgresql':
        return False
    values = bind.execute(sa.text(
        "SELECT enumvals FROM pg_settings WHERE name = 'default_toast_compression'")).scalar()
    return bool(values) and 'lz4' in values


def upgrade() -> None:
    op.drop_index('ix_documents_content_hash', table_name='documents')
    bind = op.get_bind()
    if _has_lz4(bind):
        for column in LONG_COLUMNS:
            op.execute(f'ALTER TABLE documents ALTER COLUMN {column} SET COMPRESSION lz4')


def downgrade() -> None:
    bind = op.get_bind()
    if _has_lz4(bind):
        for column in LONG_COLUMNS:
            op.execute(f'ALTER TABLE documents ALTER COLUMN {column} SET COMPRESSION DEFAULT')
    op.create_index('ix_documents_content_hash', 'documents', ['content_hash'], unique=False)
