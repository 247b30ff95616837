"""The ledger's two tables, on a ``MetaData`` of the package's own (Airflow's db-managers create and drop them).

``ordo_hooks_delivery`` holds one row per delivery (one event of one try, to one target: its
``webhook_id``), ``ordo_hooks_delivery_attempt`` one row per request made for it. The real
target is kept encrypted with Airflow's Fernet key (a URL may hold secrets), as Airflow keeps
connection passwords, and in plain text only where Airflow has no key (:mod:`.crypto`); every other
text names it masked. Changing a table needs a migration in ``migrations/versions/``.
"""

from __future__ import annotations

from datetime import datetime

from airflow.utils.sqlalchemy import UtcDateTime
from sqlalchemy import Boolean, ForeignKey, Index, Integer, MetaData, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

STATES = ("pending", "delivering", "delivered", "gone", "failed")
"""``pending``: waits for ``next_attempt_at``; ``delivering``: an API server sends it, its lease
ends at ``next_attempt_at``; ``delivered``: a 2xx; ``gone``: the receiver answered 410 (stop
sending); ``failed``: every attempt of the schedule failed."""
FINAL_STATES = ("delivered", "gone", "failed")
EVENTS = ("on_success", "on_error", "on_retries_exhausted", "on_exit")
ACTIONS = ("notify_webhook", "notify_slack_webhook", "notify_discord_webhook", "call_webhook")
SOURCES = ("callback", "recovery", "on_exit", "redeliver")
BY = ("worker", "dag-processor", "api-server")

metadata = MetaData(naming_convention={"pk": "%(table_name)s_pkey"})
"""The ledger's tables only (Airflow refuses a db-manager whose tables are in its own metadata);
constraints and indexes are named as the migrations name them."""


class Base(DeclarativeBase):
    metadata = metadata


class Delivery(Base):
    """One event of one try (or of a DAG run) delivered to one target, and where its delivery stands."""

    __tablename__ = "ordo_hooks_delivery"

    webhook_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    dag_id: Mapped[str] = mapped_column(String(250), nullable=False)
    run_id: Mapped[str] = mapped_column(String(250), nullable=False)
    task_id: Mapped[str | None] = mapped_column(String(250), nullable=True)  # null: a DAG-run event, the on_exit report
    map_index: Mapped[int] = mapped_column(Integer, nullable=False, default=-1)
    try_number: Mapped[int] = mapped_column(Integer, nullable=False, default=0)  # 0: a run-level event
    event: Mapped[str] = mapped_column(String(50), nullable=False)
    action: Mapped[str] = mapped_column(String(50), nullable=False)
    target_masked: Mapped[str] = mapped_column(String(300), nullable=False)
    target_encrypted: Mapped[str] = mapped_column(Text, nullable=False)  # plain text where target_is_encrypted is false
    # as Connection.is_encrypted; null: written by an API server from before this column (see crypto.decrypt)
    target_is_encrypted: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    # the real target's fingerprint (_targets.fingerprint), to group by target; null where it could not be read
    target_fingerprint: Mapped[str | None] = mapped_column(String(16), nullable=True)
    payload: Mapped[str] = mapped_column(Text, nullable=False)  # the exact JSON body sent
    source: Mapped[str] = mapped_column(String(20), nullable=False)
    state: Mapped[str] = mapped_column(String(20), nullable=False)
    attempt_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    last_status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False)

    attempts: Mapped[list[Attempt]] = relationship(
        back_populates="delivery", order_by="Attempt.number", cascade="all, delete-orphan", lazy="selectin"
    )

    __table_args__ = (
        Index("idx_ordo_hooks_delivery_dag_run", "dag_id", "run_id"),
        Index("idx_ordo_hooks_delivery_due", "state", "next_attempt_at"),
        Index("idx_ordo_hooks_delivery_created_at", "created_at"),  # a page, newest first
        Index("idx_ordo_hooks_delivery_settled", "state", "updated_at"),  # what retention prunes, given up since
        Index("idx_ordo_hooks_delivery_target", "target_fingerprint", "created_at"),  # a target's health
    )


class Attempt(Base):
    """One request made for a delivery: by a worker or the DAG processor inline, or by an API server."""

    __tablename__ = "ordo_hooks_delivery_attempt"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    webhook_id: Mapped[str] = mapped_column(
        String(64),
        ForeignKey(
            "ordo_hooks_delivery.webhook_id", name="ordo_hooks_delivery_attempt_webhook_id_fkey", ondelete="CASCADE"
        ),
        nullable=False,
    )
    number: Mapped[int] = mapped_column(Integer, nullable=False)  # 1-based, in the order the attempts were made
    at: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False)
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)  # masked
    elapsed_ms: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    by: Mapped[str] = mapped_column(String(20), nullable=False)

    delivery: Mapped[Delivery] = relationship(back_populates="attempts")

    __table_args__ = (
        Index("idx_ordo_hooks_delivery_attempt_webhook_id", "webhook_id"),
        Index("idx_ordo_hooks_delivery_attempt_at", "at"),  # the attempts of the last hours: a target's health
    )
