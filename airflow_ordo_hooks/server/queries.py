"""The ledger's reads: which deliveries it holds and of which DAGs, one delivery, a filtered page, a payload alone.

Plain functions on a SQLAlchemy ``Session`` of Airflow's metadata database; what a reader shows
of a row is :mod:`~airflow_ordo_hooks.server.shown`'s.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session, defer

from airflow_ordo_hooks.server.models import Delivery

CHUNK = 500
"""Ids per ``IN (...)``: well under every database's limit on bound parameters."""


def rows(session: Session, webhook_ids: Collection[str]) -> list[Delivery]:
    """The deliveries of those of ``webhook_ids`` the ledger holds, in no particular order."""
    ids, found = sorted(webhook_ids), []
    for start in range(0, len(ids), CHUNK):
        found += session.scalars(select(Delivery).where(Delivery.webhook_id.in_(ids[start : start + CHUNK]))).all()
    return found


def existing(session: Session, webhook_ids: Iterable[str], *, dag_id: str | None = None) -> set[str]:
    """Which of ``webhook_ids`` the ledger holds (as deliveries of ``dag_id``, if given)."""
    held = dag_ids_of(session, webhook_ids)
    return {w for w, d in held.items() if dag_id is None or d == dag_id}


def dag_ids(session: Session) -> list[str]:
    """The DAGs the ledger holds deliveries of."""
    return sorted(session.scalars(select(Delivery.dag_id).distinct()))


def dag_ids_of(session: Session, webhook_ids: Iterable[str]) -> dict[str, str]:
    """``{webhook_id: dag_id}`` of those of ``webhook_ids`` the ledger holds."""
    ids, found = sorted(set(webhook_ids)), {}
    for start in range(0, len(ids), CHUNK):
        stmt = select(Delivery.webhook_id, Delivery.dag_id).where(Delivery.webhook_id.in_(ids[start : start + CHUNK]))
        found.update((webhook_id, dag_id) for webhook_id, dag_id in session.execute(stmt))
    return found


def get(session: Session, webhook_id: str) -> Delivery | None:
    """One delivery, with its attempts; ``None`` if the ledger does not hold it."""
    return session.get(Delivery, webhook_id)


def query(
    session: Session,
    *,
    dag_id: str | None = None,
    run_id: str | None = None,
    task_id: str | None = None,
    map_index: int | None = None,
    event: str | None = None,
    state: str | None = None,
    target_fingerprint: str | None = None,
    dag_ids: Collection[str] | None = None,
    limit: int = 100,
    offset: int = 0,
    failing: bool = False,
    payloads: bool = True,
) -> tuple[list[Delivery], int]:
    """
    Deliveries matching every filter given, newest first, with their attempts (one more query for the page).

    :param target_fingerprint: only deliveries to the target of this fingerprint (:func:`~airflow_ordo_hooks._targets.fingerprint`).
    :param dag_ids: only deliveries of these DAGs (those a user may read), if given.
    :param failing: only those not delivered after at least one attempt: given up on, gone, or waiting
        for their next attempt.
    :param payloads: read their payloads too; without, a page of deliveries with long logs reads fast.
    :return: ``(up to limit rows from offset, how many match in all)``.
    """
    stmt = select(Delivery)
    for column, value in ((Delivery.dag_id, dag_id), (Delivery.run_id, run_id), (Delivery.task_id, task_id),
                          (Delivery.map_index, map_index), (Delivery.event, event), (Delivery.state, state),
                          (Delivery.target_fingerprint, target_fingerprint)):
        if value is not None:
            stmt = stmt.where(column == value)
    if dag_ids is not None:
        stmt = stmt.where(Delivery.dag_id.in_(sorted(dag_ids)))
    if failing:
        stmt = stmt.where(Delivery.state != "delivered", Delivery.attempt_count > 0)
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    page = stmt.order_by(Delivery.created_at.desc(), Delivery.webhook_id.desc()).limit(limit).offset(offset)
    if not payloads:
        page = page.options(defer(Delivery.payload), defer(Delivery.target_encrypted))
    return list(session.scalars(page)), total


def payload_of(session: Session, webhook_id: str) -> str | None:
    """One delivery's stored payload alone: a reader of many reads them one at a time, never all at once."""
    return session.scalar(select(Delivery.payload).where(Delivery.webhook_id == webhook_id))


def failed_since(session: Session, since: datetime, *, dag_id: str | None = None) -> list[str]:
    """The ids of the deliveries given up (``failed``) at or after ``since``, of ``dag_id`` if given, oldest first."""
    stmt = select(Delivery.webhook_id).where(Delivery.state == "failed", Delivery.updated_at >= since)
    if dag_id is not None:
        stmt = stmt.where(Delivery.dag_id == dag_id)
    return list(session.scalars(stmt.order_by(Delivery.updated_at, Delivery.webhook_id)))
