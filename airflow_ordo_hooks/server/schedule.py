"""The redelivery schedule's arithmetic: the step a delivery is at, when its next attempt is due, giving up after the last.

A delivery's schedule is ``[ordo_hooks] redelivery_schedule`` (:func:`_settings.redelivery_schedule`):
its steps are the callback's inline attempts (step 0, however many requests they made) and then
each attempt of an API server; ``schedule[n]`` is the wait after step ``n`` ends before step
``n + 1``, and a delivery still failing after ``len(schedule)`` steps is marked ``failed``, with one
ERROR line (:func:`give_up`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone

from sqlalchemy import and_, or_

from airflow_ordo_hooks.server.models import Attempt, Delivery
from airflow_ordo_hooks.server.shown import describe

log = logging.getLogger(__name__)

SERVER = "api-server"
"""Who makes the attempts of the redelivery loop (``Attempt.by``)."""


def utcnow() -> datetime:
    """Now, in UTC: every time the ledger writes is aware."""
    return datetime.now(timezone.utc)


def steps_used(row: Delivery) -> int:
    """
    The steps of the schedule a delivery has used: its reported attempts, however many, are the
    first (an inline burst of retries within seconds is one step, not several), then one per
    attempt of an API server.
    """
    server = sum(a.by == SERVER for a in row.attempts)
    return server + (row.attempt_count > server)


def next_due(row: Delivery, after: datetime, schedule: Sequence[float]) -> datetime:
    """When the delivery's next step is due: the schedule's wait for the steps it has used, from ``after``."""
    return after + timedelta(seconds=schedule[steps_used(row)])


def give_up(row: Delivery) -> None:
    """Mark the delivery ``failed``, with one ERROR line naming its event, its target (masked) and its last attempt."""
    row.state, row.next_attempt_at = "failed", None
    log.error(
        "airflow-ordo-hooks: gave up delivering %s of %s to %s after %d attempt(s), the last: %s (webhook-id %s)",
        row.event, describe(row), row.target_masked, row.attempt_count,
        row.last_error or (f"HTTP {row.last_status_code}" if row.last_status_code else "no answer"), row.webhook_id,
    )


def succeeded(status_code: int | None) -> bool:
    """Whether an answer delivers: a 2xx."""
    return status_code is not None and 200 <= status_code < 300


ATTEMPT_SUCCEEDED = and_(Attempt.status_code >= 200, Attempt.status_code < 300)
""":func:`succeeded`, as a query reads it of the attempts."""
ATTEMPT_FAILED = or_(Attempt.status_code.is_(None), Attempt.status_code < 200, Attempt.status_code >= 300)
""":func:`succeeded`'s opposite, as a query reads it: no answer fails too."""


def gone(attempts: Sequence[Attempt]) -> bool:
    """Whether the last of ``attempts`` got HTTP 410: the receiver asks not to be sent to again."""
    return bool(attempts) and attempts[-1].status_code == 410


def ended(attempt: Attempt) -> datetime:
    """When an attempt ended: a step's wait runs from there."""
    return attempt.at + timedelta(milliseconds=attempt.elapsed_ms or 0)


def as_utc(value: datetime | str) -> datetime:
    """An aware time (or its ISO-8601 text) in UTC; a time without a time zone is a ``ValueError``."""
    when = datetime.fromisoformat(value) if isinstance(value, str) else value
    if when.tzinfo is None:
        raise ValueError(f"a time without a time zone: {value!r}")
    return when.astimezone(timezone.utc)
