"""The delivery ledger's retention: settled deliveries older than a cutoff deleted with their attempts, in bounded batches.

A delivery is settled once ``delivered``, ``gone`` or ``failed``; its ``updated_at`` is when it
settled (or when a late attempt was last reported for it). ``pending`` and ``delivering``
deliveries are never deleted, however old. The API server's redelivery loop prunes what is older
than ``[ordo_hooks] retention_days`` (:mod:`~airflow_ordo_hooks.server.redelivery`), and
``airflow ordo-hooks db-clean`` what is older than a time given.

**Bounded batches.** Each batch is its own short transaction of at most :data:`BATCH` deliveries,
read by the index on ``(state, updated_at)``, in order, one state at a time: it never holds a
long lock, on PostgreSQL nor on SQLite, where a writer locks the whole database. Between batches
the pruner pauses for :data:`PAUSE`, so that the API server's ingest, waiting on SQLite's lock,
gets it before the next batch.

**Attempts.** The batch deletes its deliveries with a bulk ``DELETE``, which the ORM's cascade
does not see: their attempts go by the foreign key's ``ON DELETE CASCADE`` (PostgreSQL; SQLite
with ``PRAGMA foreign_keys=ON``, which Airflow's engine sets), and a second ``DELETE`` in the same
transaction takes any attempt of the batch left without its delivery (SQLite without the pragma),
so none is orphaned. Attempts go only once their delivery has: a delivery made pending again
between the read of the batch and its deletion (a Redeliver) keeps them.

**Several at once.** Several API servers prune the same table: on PostgreSQL a batch locks its
rows as it reads them (``FOR UPDATE SKIP LOCKED``), so two pruners take different rows, and a row
another transaction holds (an attempt being recorded for it) is left for a later batch; on SQLite
writers take turns, and a pruner whose batch another has just deleted deletes nothing, without error.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import and_, delete, func, select
from sqlalchemy.orm import Session

from airflow_ordo_hooks.server.models import FINAL_STATES, Attempt, Delivery
from airflow_ordo_hooks.server.schedule import utcnow

BATCH = 500
"""Deliveries a batch deletes at the most (and ids in its ``IN (...)``, as :data:`~.queries.CHUNK`)."""
PAUSE = 0.1
"""Seconds between two batches: SQLite's busy handler has a waiting writer try again at least this often."""


def _settled_before(cutoff: datetime, states: tuple[str, ...] = FINAL_STATES):
    return and_(Delivery.state.in_(states), Delivery.updated_at < cutoff)


def retention_cutoff(now: datetime | None = None) -> datetime | None:
    """
    Now less ``[ordo_hooks] retention_days``: settled deliveries last updated before it are due
    for deletion; ``None`` when ``retention_days`` is 0 (every delivery is kept).

    :raises SettingsError: ``retention_days`` is not a number from 0 to 36500.
    """
    from airflow_ordo_hooks import _settings

    days = _settings.get("retention_days")
    return (now or utcnow()) - timedelta(days=days) if days else None


def count(session: Session, cutoff: datetime) -> dict[str, int]:
    """How many settled deliveries were last updated before ``cutoff``, per state (each of ``FINAL_STATES``, 0 included)."""
    stmt = select(Delivery.state, func.count()).where(_settled_before(cutoff)).group_by(Delivery.state)
    counted = dict(session.execute(stmt).all())
    return {state: counted.get(state, 0) for state in FINAL_STATES}


def delete_batch(session: Session, cutoff: datetime, limit: int = BATCH) -> int:
    """
    Delete up to ``limit`` settled deliveries last updated before ``cutoff``, oldest first within
    each state, with their attempts; return how many deliveries were deleted. Flushes, never commits:
    :func:`prune` gives each batch its own transaction.
    """
    ids: list[str] = []
    for state in FINAL_STATES:  # one state at a time: a range of the index, read in its order
        if len(ids) < limit:
            ids += session.scalars(
                select(Delivery.webhook_id)
                .where(_settled_before(cutoff, (state,)))
                .order_by(Delivery.updated_at)
                .limit(limit - len(ids))
                .with_for_update(skip_locked=True)  # PostgreSQL's; SQLite has no row locks and renders none
            ).all()
    if not ids:
        return 0
    # the condition again: a row made pending since it was read stays
    deleted = session.execute(
        delete(Delivery).where(Delivery.webhook_id.in_(ids), _settled_before(cutoff)).execution_options(synchronize_session=False)
    ).rowcount
    orphaned = ~select(Delivery.webhook_id).where(Delivery.webhook_id == Attempt.webhook_id).exists()
    session.execute(
        delete(Attempt).where(Attempt.webhook_id.in_(ids), orphaned).execution_options(synchronize_session=False)
    )
    return deleted


def prune(
    cutoff: datetime,
    *,
    batch: int = BATCH,
    max_batches: int | None = None,
    pause: float = PAUSE,
    each: Callable[[int], object] | None = None,
) -> int:
    """
    Delete every settled delivery last updated before ``cutoff``, with its attempts, a batch at a
    time, each batch its own transaction (:func:`delete_batch`); return how many were deleted.

    :param batch: deliveries a batch deletes at the most.
    :param max_batches: stop after this many batches (the API server's loop prunes a bounded amount a pass).
    :param pause: seconds to wait between two batches, so that other writers get the database.
    :param each: called with each batch's count of deleted deliveries, as it commits.
    """
    from airflow.utils.session import create_session

    total = batches = 0
    while max_batches is None or batches < max_batches:
        if batches:
            time.sleep(pause)
        with create_session(scoped=False) as session:  # committed on leaving
            deleted = delete_batch(session, cutoff, batch)
        batches += 1
        total += deleted
        if each is not None:
            each(deleted)
        if deleted < batch:
            break
    return total
