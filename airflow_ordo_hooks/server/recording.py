"""Recording what callers report: a new delivery is inserted, a known one merged, by rules that keep the server's facts.

:func:`record` takes the deliveries the API's ``POST /deliveries`` validated (its ``DeliveryIn``).
It flushes, so that the caller sees what it did, but never commits: the route commits when the
request ends.

**What the server holds is the server's.** A caller (a callback, the recovery of a killed try, the
on_exit step) creates a delivery and reports the attempts it made; it cannot rewrite what a row
holds: its target and masked name (derived here), its outcome (``delivered`` only by a 2xx attempt
it reports, whatever the item's ``outcome`` says), its schedule (``not_before`` counts only when the
row is created; reported attempts never use up the API server's steps, see
:mod:`~airflow_ordo_hooks.server.schedule`). The one change a report makes to a row besides its
attempts: a recovery's placeholder, not yet attempted, takes the payload the callback of the same
event built (the same ``webhook_id``, so the same target).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from airflow_ordo_hooks import _metrics, _settings
from airflow_ordo_hooks._targets import fingerprint
from airflow_ordo_hooks.exceptions import LedgerConflict
from airflow_ordo_hooks.server import queries
from airflow_ordo_hooks.server.models import Attempt, Delivery
from airflow_ordo_hooks.server.schedule import SERVER, as_utc, ended, give_up, gone, next_due, steps_used, succeeded, utcnow
from airflow_ordo_hooks.server.shown import clean_error, shown_target

if TYPE_CHECKING:
    from airflow_ordo_hooks.server.api_models import DeliveryIn

MAX_REPORTED = 100
"""Attempts reported by callers that a delivery keeps at the most; the API server's own are all kept."""
_IDENTITY = ("dag_id", "run_id", "task_id", "map_index", "try_number", "event")
"""The event a delivery is of, which its ``webhook_id`` is derived from (with the target)."""


def record(
    session: Session,
    items: Iterable[DeliveryIn],
    *,
    by: str,
    schedule: Sequence[float] | None = None,
    now: datetime | None = None,
) -> list[dict[str, Any]]:
    """
    Record deliveries as the API's ``POST /deliveries`` receives them: insert new ones, merge the others.

    A new ``webhook_id`` becomes a row with the item's attempts: ``delivered`` if one of them got a
    2xx, ``gone`` if its last got HTTP 410, else ``pending`` until ``not_before`` or the schedule's
    next wait after its last attempt. A known one gets the item's attempts appended after its own
    (an attempt it already holds, as a client sending the same item again gives it, is not added
    twice; at most :data:`MAX_REPORTED` reported attempts a row), and a 2xx among them makes it
    ``delivered``; a ``delivered`` or ``gone`` row is never made pending again; ``not_before`` and
    ``outcome`` change nothing; a ``pending`` row without attempts recorded by a ``recovery`` takes
    the callback's payload; an item from a ``recovery`` changes nothing.

    :param items: the deliveries as the API validated them
        (:class:`~airflow_ordo_hooks.server.api_models.DeliveryIn`); their ``target_masked`` is
        ignored: what readers see of the target is derived from it here.
    :param by: who made an attempt whose ``by`` is neither ``worker`` nor ``dag-processor``.
    :param schedule: the redelivery schedule; ``[ordo_hooks] redelivery_schedule`` if not given.
    :return: per item, in order, ``{"webhook_id", "state", "created"}``.
    :raises LedgerConflict: an item's ``webhook_id`` is held for another event (in the ledger, or by
        an item before it); raised before anything is changed.
    """
    items = list(items)
    schedule = tuple(schedule) if schedule is not None else _settings.redelivery_schedule()
    now = now or utcnow()
    rows = {row.webhook_id: row for row in queries.rows(session, {item.webhook_id for item in items})}
    _check_conflicts(rows, items)
    results = []
    for item in items:
        row = rows.get(item.webhook_id)
        created = row is None
        before = None if created else row.state
        if created:
            row = rows[item.webhook_id] = _insert(session, item, by, schedule, now)
        else:
            _merge(row, item, by, schedule, now)
        # a reported delivery was counted delivered by whoever delivered it; gone and given up are the ledger's to say
        _metrics.settled_on_commit(session, row, before, counted=("gone", "failed"))
        results.append({"webhook_id": row.webhook_id, "state": row.state, "created": created})
    session.flush()
    return results


def _check_conflicts(rows: dict[str, Delivery], items: list[DeliveryIn]) -> None:
    """Every conflict, before any change: an item of another event than the row, or the item before it, of its id."""
    first: dict[str, DeliveryIn] = {}
    for item in items:
        webhook_id = item.webhook_id
        if webhook_id in rows:
            if item.source != "recovery":  # which changes nothing
                _check_same_event(webhook_id, rows[webhook_id], item)
        elif webhook_id in first:
            _check_same_event(webhook_id, first[webhook_id], item)
        else:
            first[webhook_id] = item


def _check_same_event(webhook_id: str, held: Delivery | DeliveryIn, item: DeliveryIn) -> None:
    differ = [(key, a, b) for key in _IDENTITY if (a := getattr(held, key)) != (b := getattr(item, key))]
    if differ:
        raise LedgerConflict(
            f"webhook_id {webhook_id!r} is held for another event: its "
            + ", ".join(f"{key} is {a!r}, not {b!r}" for key, a, b in differ),
            webhook_id,
        )


def _insert(session: Session, item: DeliveryIn, by: str, schedule: Sequence[float], now: datetime) -> Delivery:
    from airflow_ordo_hooks.server import crypto

    stored, encrypted = crypto.encrypt(item.target)
    row = Delivery(
        webhook_id=item.webhook_id,
        dag_id=item.dag_id,
        run_id=item.run_id,
        task_id=item.task_id,
        map_index=item.map_index,
        try_number=item.try_number,
        event=item.event,
        action=item.action,
        target_masked=shown_target(item.target),
        target_encrypted=stored,
        target_is_encrypted=encrypted,
        target_fingerprint=fingerprint(item.target),
        payload=item.payload,
        source=item.source,
        state="pending",
        attempt_count=0,
        created_at=now,
        updated_at=now,
    )
    new = _append(row, item, by)
    session.add(row)
    _settle(row, new, item.not_before, schedule, now)
    return row


def _merge(row: Delivery, item: DeliveryIn, by: str, schedule: Sequence[float], now: datetime) -> None:
    if item.source == "recovery":
        return
    if row.state == "pending" and row.attempt_count == 0 and row.source == "recovery":
        row.payload, row.source = item.payload, item.source  # the callback built the event's real payload
    new = _append(row, item, by)
    if not new:
        return
    row.updated_at = now
    if row.state in ("delivered", "gone"):
        return
    if row.state == "delivering" and not any(succeeded(a.status_code) for a in new) and not gone(new):
        return  # an API server is sending it: its outcome decides, counting these attempts
    _settle(row, new, None, schedule, now)  # a row's schedule is the server's: not_before counts at creation only


def _append(row: Delivery, item: DeliveryIn, by: str) -> list[Attempt]:
    """Append the item's attempts not already held; return them."""
    held = {(a.at, a.by, a.status_code) for a in row.attempts}
    room = MAX_REPORTED - sum(a.by != SERVER for a in row.attempts)
    new = []
    for given in item.attempts[: max(room, 0)]:
        attempt = Attempt(
            at=as_utc(given.at),
            status_code=given.status_code,
            error=clean_error(given.error, item.target),
            elapsed_ms=int(given.elapsed_ms or 0),
            by=given.by if given.by in ("worker", "dag-processor") else by,
        )
        if (attempt.at, attempt.by, attempt.status_code) in held:
            continue
        held.add((attempt.at, attempt.by, attempt.status_code))
        row.attempt_count = (row.attempt_count or 0) + 1
        attempt.number = row.attempt_count
        row.attempts.append(attempt)
        new.append(attempt)
    if new:
        row.last_status_code, row.last_error = new[-1].status_code, new[-1].error
    return new


def _settle(
    row: Delivery, new: Sequence[Attempt], not_before: datetime | None, schedule: Sequence[float], now: datetime
) -> None:
    """The state of a row that is not being sent, after ``new`` attempts reported (with ``not_before``, at creation)."""
    if any(succeeded(a.status_code) for a in new):
        row.state, row.next_attempt_at = "delivered", None
    elif gone(new):
        row.state, row.next_attempt_at = "gone", None
    elif row.state == "failed":
        pass
    elif steps_used(row) >= len(schedule):
        give_up(row)
    elif new or row.next_attempt_at is None or not_before:
        if not_before:
            row.next_attempt_at = as_utc(not_before)
        else:
            row.next_attempt_at = next_due(row, ended(new[-1]) if new else now, schedule)
        row.state = "pending"
