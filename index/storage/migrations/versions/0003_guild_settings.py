"""Per-server settings (/config): thresholds, roles by id, answer channels, auto-answer, retention,
private answers. One row per collection (a guild's id); a NULL column falls back to config.toml.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "guildsettings",
        sa.Column("collection", sa.String(length=64), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=True),
        sa.Column("may_threshold", sa.Float(), nullable=True),
        sa.Column("moderator_role_ids", sa.String(length=1024), nullable=True),
        sa.Column("admin_role_ids", sa.String(length=1024), nullable=True),
        sa.Column("answer_channel_ids", sa.String(length=2048), nullable=True),
        sa.Column("auto_answer_channel_id", sa.BigInteger(), nullable=True),
        sa.Column("retention_days", sa.Integer(), nullable=True),
        sa.Column("private_answers", sa.Boolean(), nullable=True),
        sa.Column("updated_by", sa.String(length=64), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("collection"),
    )


def downgrade() -> None:
    op.drop_table("guildsettings")
