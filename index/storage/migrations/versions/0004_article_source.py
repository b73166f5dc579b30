"""What an article's source said about itself: validators for refresh (ETag, Last-Modified), the
published date, when it was fetched, and where each PDF page starts (for #page=N links).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.add_column("article", sa.Column("etag", sa.String(length=512), nullable=True))
    op.add_column("article", sa.Column("last_modified", sa.String(length=64), nullable=True))
    op.add_column("article", sa.Column("published", sa.String(length=32), nullable=True))
    op.add_column("article", sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("article", sa.Column("pages", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("article") as batch:
        for name in ("pages", "fetched_at", "published", "last_modified", "etag"):
            batch.drop_column(name)
