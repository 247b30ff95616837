"""Each webhook target's health: what it serves, when it last worked and last failed, how often it fails, what waits for it.

Read by ``GET /ordo-hooks/api/v1/targets``, the Webhooks view's Targets page and ``airflow ordo-hooks
targets``. A target is its fingerprint (:func:`~airflow_ordo_hooks._targets.fingerprint` of the real
target: two targets masked alike, such as two Slack webhooks of one connection, differ in it); a
delivery without one (recorded before the ledger kept it, with a target no key decrypts) counts
under its masked name.

Everything is counted by the database, in three queries whatever the ledger's size (grouped by
target; no delivery is loaded), and at most :data:`MAX_TARGETS` targets are answered, worst first:
those failing now (their last attempt failed), then by their failure rate over the last
:data:`WINDOW`, then by how many deliveries wait for them.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Float, and_, case, cast, distinct, func, or_, select
from sqlalchemy.orm import Session

from airflow_ordo_hooks.server.models import ACTIONS, Attempt, Delivery
from airflow_ordo_hooks.server.schedule import ATTEMPT_FAILED, ATTEMPT_SUCCEEDED, utcnow
from airflow_ordo_hooks.server.shown import clean_error

MAX_TARGETS = 200
"""Targets one answer holds at the most, the worst first."""
MAX_DAGS = 5
"""DAG ids a target shows at the most (the first by name); ``dag_count`` says how many it serves."""
WINDOW = timedelta(hours=24)
"""The span a failure rate counts attempts over, back from now."""
_BUSY = ("pending", "delivering")

# one value to group by: the fingerprint, or a row without one its masked name (which holds a ':', no fingerprint does)
_KEY = func.coalesce(Delivery.target_fingerprint, Delivery.target_masked)
_OK, _FAILED = ATTEMPT_SUCCEEDED, ATTEMPT_FAILED


def targets(
    session: Session,
    *,
    dag_ids: Collection[str] | None = None,
    dag_id: str | None = None,
    limit: int = MAX_TARGETS,
    now: datetime | None = None,
) -> tuple[list[dict[str, Any]], int]:
    """
    The health of each target the ledger holds deliveries to, the worst first.

    :param dag_ids: count only deliveries of these DAGs (those a user may read), if given: a target
        none of whose deliveries is of them is left out.
    :param dag_id: count only deliveries of this DAG, if given.
    :param limit: at most this many targets (at most :data:`MAX_TARGETS`).
    :return: ``(up to limit targets, how many there are in all)``; each target a dict: ``target_masked``,
        ``target_fingerprint`` (``None`` for those counted by masked name), ``actions``, ``dag_ids`` (at most
        :data:`MAX_DAGS`), ``dag_count``, ``deliveries``, ``pending`` (pending or being sent),
        ``last_success_at``, ``last_failure_at`` and ``last_error`` (masked), ``failing`` (its last attempt
        failed), ``attempts_24h``, ``failed_24h`` and ``failure_rate_24h`` (``None`` without attempts then).
    """
    where = []
    if dag_ids is not None:
        where.append(Delivery.dag_id.in_(sorted(dag_ids)))
    if dag_id is not None:
        where.append(Delivery.dag_id == dag_id)
    since = (now or utcnow()) - WINDOW
    page = _worst_first(session, where, since, min(limit, MAX_TARGETS))
    if not page:
        return [], 0
    of_page = _of(page)
    dags = _first_dags(session, [*where, of_page])
    errors = _last_errors(session, [*where, of_page])
    return [_shown(found, dags.get(found.key, []), errors.get(found.key)) for found in page], page[0].total


def _worst_first(session: Session, where: Sequence[Any], since: datetime, limit: int) -> list[Any]:
    """One row per target, its deliveries' numbers and its attempts', the worst first."""
    deliveries, attempts = _per_delivery(where), _per_attempt(where, since)
    last_success, last_failure = attempts.c.last_success, attempts.c.last_failure
    failing = case((and_(last_failure.is_not(None), or_(last_success.is_(None), last_failure > last_success)), 1), else_=0)
    rate = cast(attempts.c.failed, Float) / func.nullif(attempts.c.attempts, 0)
    stmt = (
        select(
            deliveries,
            last_success,
            last_failure,
            failing.label("failing"),
            func.coalesce(attempts.c.attempts, 0).label("attempts"),
            func.coalesce(attempts.c.failed, 0).label("failed"),
            func.count().over().label("total"),  # the targets in all, counted before the limit
        )
        .outerjoin(attempts, attempts.c.key == deliveries.c.key)
        .order_by(failing.desc(), func.coalesce(rate, -1.0).desc(), deliveries.c.pending.desc(), deliveries.c.key)
        .limit(limit)
    )
    return list(session.execute(stmt))


def _per_delivery(where: Sequence[Any]) -> Any:
    """Per target: its name, the actions and DAGs it serves, its deliveries and those that wait."""
    return (
        select(
            _KEY.label("key"),
            func.max(Delivery.target_fingerprint).label("fingerprint"),
            func.max(Delivery.target_masked).label("masked"),
            *(func.max(case((Delivery.action == action, 1), else_=0)).label(action) for action in ACTIONS),
            func.count(distinct(Delivery.dag_id)).label("dag_count"),
            func.count().label("deliveries"),
            func.count(case((Delivery.state.in_(_BUSY), 1))).label("pending"),
        )
        .where(*where)
        .group_by(_KEY)
        .subquery()
    )


def _per_attempt(where: Sequence[Any], since: datetime) -> Any:
    """Per target with an attempt: its last success and last failure, its attempts since ``since`` and those that failed."""
    recent = Attempt.at >= since
    return (
        select(
            _KEY.label("key"),
            func.max(case((_OK, Attempt.at))).label("last_success"),
            func.max(case((_FAILED, Attempt.at))).label("last_failure"),
            func.count(case((recent, 1))).label("attempts"),
            func.count(case((and_(recent, _FAILED), 1))).label("failed"),
        )
        .select_from(Attempt)
        .join(Delivery, Attempt.webhook_id == Delivery.webhook_id)
        .where(*where)
        .group_by(_KEY)
        .subquery()
    )


def _of(page: Sequence[Any]) -> Any:
    """The deliveries of the targets of ``page``: by fingerprint (the index's), or by masked name for those without."""
    fingerprints = sorted(r.fingerprint for r in page if r.fingerprint is not None)
    masked = sorted(r.masked for r in page if r.fingerprint is None)
    return or_(
        Delivery.target_fingerprint.in_(fingerprints),
        and_(Delivery.target_fingerprint.is_(None), Delivery.target_masked.in_(masked)),
    )


def _first_dags(session: Session, where: Sequence[Any]) -> dict[str, list[str]]:
    """``{target: its first DAG ids by name}``, at most :data:`MAX_DAGS` a target, however many it serves."""
    ranked = (
        select(
            _KEY.label("key"),
            Delivery.dag_id,
            func.row_number().over(partition_by=_KEY, order_by=Delivery.dag_id).label("n"),
        )
        .where(*where)
        .group_by(_KEY, Delivery.dag_id)
        .subquery()
    )
    found: dict[str, list[str]] = {}
    for key, dag_id in session.execute(select(ranked.c.key, ranked.c.dag_id).where(ranked.c.n <= MAX_DAGS).order_by(ranked.c.n)):
        found.setdefault(key, []).append(dag_id)
    return found


def _last_errors(session: Session, where: Sequence[Any]) -> dict[str, str | None]:
    """``{target: the error of its last failed attempt}``, masked; ``HTTP <status>`` where none was stored."""
    ranked = (
        select(
            _KEY.label("key"),
            Attempt.error,
            Attempt.status_code,
            func.row_number().over(partition_by=_KEY, order_by=(Attempt.at.desc(), Attempt.id.desc())).label("n"),
        )
        .select_from(Attempt)
        .join(Delivery, Attempt.webhook_id == Delivery.webhook_id)
        .where(_FAILED, *where)
        .subquery()
    )
    rows = session.execute(select(ranked.c.key, ranked.c.error, ranked.c.status_code).where(ranked.c.n == 1))
    return {key: clean_error(error) or (f"HTTP {status_code}" if status_code else None) for key, error, status_code in rows}


def _shown(found: Any, dag_ids: list[str], last_error: str | None) -> dict[str, Any]:
    """A target's health as every reader shows it."""
    return {
        "target_masked": found.masked,
        "target_fingerprint": found.fingerprint,
        "actions": [action for action in ACTIONS if getattr(found, action)],
        "dag_ids": dag_ids,
        "dag_count": found.dag_count,
        "deliveries": found.deliveries,
        "pending": found.pending,
        "last_success_at": _iso(found.last_success),
        "last_failure_at": _iso(found.last_failure),
        "last_error": last_error,
        "failing": bool(found.failing),
        "attempts_24h": found.attempts,
        "failed_24h": found.failed,
        "failure_rate_24h": round(found.failed / found.attempts, 4) if found.attempts else None,
    }


def _iso(when: datetime | None) -> str | None:
    return when.isoformat() if when is not None else None
