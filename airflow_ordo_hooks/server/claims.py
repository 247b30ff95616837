"""Claiming what is due, and what an attempt makes of a delivery: the redelivery loop's writes, and a person's Redeliver.

Plain functions on a SQLAlchemy ``Session`` of Airflow's metadata database. They flush, so that
the caller sees what they did, but never commit: the caller owns the transaction. The redelivery
loop (:mod:`~airflow_ordo_hooks.server.redelivery`) commits right after :func:`claim_due`, so
that every other API server sees the claim before anything is sent.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from sqlalchemy import and_, func, select, update
from sqlalchemy.orm import Session

from airflow_ordo_hooks import _metrics
from airflow_ordo_hooks.server.models import Attempt, Delivery
from airflow_ordo_hooks.server.queries import CHUNK
from airflow_ordo_hooks.server.schedule import as_utc, ended, give_up, next_due, steps_used, succeeded, utcnow
from airflow_ordo_hooks.server.shown import clean_error


def _due(now: datetime):
    """Due: pending and its time has come, or being sent by an API server whose lease has passed (it died)."""
    return and_(Delivery.state.in_(("pending", "delivering")), Delivery.next_attempt_at <= now)


def due_ids(session: Session, now: datetime, limit: int) -> list[str]:
    """
    The ids of up to ``limit`` deliveries due at ``now``, fairly between DAGs: the DAGs whose
    longest-waiting delivery has waited longest come first, and each gives its longest-waiting one
    in turn, so that the deliveries of one DAG (a receiver that is down, or a caller's flood of
    rows pointing at a tarpit) never keep another DAG's from being sent.
    """
    # one statement: each DAG's due deliveries numbered by how long they have waited; all the firsts
    # (longest waiting first), then all the seconds...
    turn = func.row_number().over(partition_by=Delivery.dag_id, order_by=(Delivery.next_attempt_at, Delivery.webhook_id))
    ranked = select(Delivery.webhook_id, Delivery.next_attempt_at, turn.label("turn")).where(_due(now)).subquery()
    stmt = select(ranked.c.webhook_id).order_by(ranked.c.turn, ranked.c.next_attempt_at, ranked.c.webhook_id).limit(limit)
    return list(session.scalars(stmt))


def take(session: Session, webhook_id: str, now: datetime, *, lease_seconds: float) -> bool:
    """
    Claim one delivery if it is still due: a conditional ``UPDATE``, so that of several API servers
    (or processes of one) that saw it due, exactly one gets ``True``.
    """
    result = session.execute(
        update(Delivery)
        .where(Delivery.webhook_id == webhook_id, _due(now))
        .values(state="delivering", next_attempt_at=now + timedelta(seconds=lease_seconds), updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def claim_due(
    session: Session, now: datetime, *, lease_seconds: float, limit: int, candidates: list[str] | None = None
) -> list[Delivery]:
    """
    Claim up to ``limit`` deliveries due at ``now`` for one attempt each: they become ``delivering``
    until ``now + lease_seconds``, after which any API server may claim them again. Commit at once,
    before sending, so that every other API server sees the claim.

    :param candidates: ids to claim from, in order (a longer list :func:`due_ids` gave recently,
        taken from the front); those no longer due are dropped. ``None``: ask :func:`due_ids` now.
    """
    claimed: list[str] = []
    due = due_ids(session, now, limit) if candidates is None else candidates
    while due and len(claimed) < limit:
        webhook_id = due.pop(0)
        if take(session, webhook_id, now, lease_seconds=lease_seconds):
            claimed.append(webhook_id)
    if not claimed:
        return []
    stmt = select(Delivery).where(Delivery.webhook_id.in_(claimed)).order_by(Delivery.next_attempt_at)
    return list(session.scalars(stmt.execution_options(populate_existing=True)))


def finish_attempt(
    session: Session,
    webhook_id: str,
    *,
    status_code: int | None,
    error: str | None,
    elapsed_ms: int,
    at: datetime,
    by: str,
    schedule: Sequence[float],
    refused: bool = False,
) -> str:
    """
    Record one attempt and what it makes of the delivery: a 2xx ``delivered``; a 410 ``gone`` (the
    receiver asks not to be sent to again); otherwise ``pending`` until ``schedule[n]`` after it
    ended (``n`` the steps used, :func:`~airflow_ordo_hooks.server.schedule.steps_used`), or ``failed``
    after the schedule's last (:func:`~airflow_ordo_hooks.server.schedule.give_up`). A delivery
    another path has meanwhile settled as ``delivered`` or ``gone`` stays so.

    :param refused: nothing was sent, by the API server's own decision (its egress policy): the
        delivery is ``failed`` at once, with the ERROR line; a person's Redeliver tries again
        (after an operator allowed the address, say).
    :return: the delivery's new state.
    :raises LookupError: there is no such delivery (the ledger was reset meanwhile).
    """
    row = session.get(Delivery, webhook_id, populate_existing=True)
    if row is None:
        raise LookupError(f"no delivery {webhook_id!r} in the ledger")
    before = row.state
    row.attempt_count = (row.attempt_count or 0) + 1
    attempt = Attempt(
        number=row.attempt_count, at=as_utc(at), status_code=status_code, error=clean_error(error),
        elapsed_ms=int(elapsed_ms), by=by,
    )
    row.attempts.append(attempt)
    row.last_status_code, row.last_error, row.updated_at = status_code, attempt.error, utcnow()
    if row.state in ("delivered", "gone"):
        pass
    elif succeeded(status_code):
        row.state, row.next_attempt_at = "delivered", None
    elif status_code == 410:
        row.state, row.next_attempt_at = "gone", None
    elif refused or steps_used(row) >= len(schedule):
        give_up(row)
    else:
        row.state, row.next_attempt_at = "pending", next_due(row, ended(attempt), schedule)
    session.flush()
    _metrics.settled_on_commit(session, row, before)
    return row.state


def request_redelivery(session: Session, webhook_ids: Iterable[str], now: datetime) -> list[str]:
    """
    Make each of ``webhook_ids`` due at ``now``, whatever its state but ``delivering`` (an attempt
    is under way): a redelivery asked for by a person. The API server's loop then makes one more
    attempt with the same ``webhook-id``; a delivery whose schedule has run out is ``failed`` again
    after it if it fails.

    :return: the ids made due, in the order given; those the ledger does not hold, or that are being sent, are left out.
    """
    wanted = list(dict.fromkeys(webhook_ids))
    made_due = []
    for start in range(0, len(wanted), CHUNK):
        chunk = wanted[start : start + CHUNK]
        stmt = select(Delivery.webhook_id).where(Delivery.webhook_id.in_(chunk), Delivery.state != "delivering")
        held = set(session.scalars(stmt))
        if held:
            session.execute(
                update(Delivery)
                .where(Delivery.webhook_id.in_(sorted(held)), Delivery.state != "delivering")
                .values(state="pending", next_attempt_at=now, updated_at=now)
                .execution_options(synchronize_session=False)
            )
        made_due += [w for w in chunk if w in held]
    session.flush()
    return made_due
