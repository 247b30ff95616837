"""Alerts about the alerts: the operations target hears when a delivery is given up, and when a target fails for long, then recovers.

``[ordo_hooks] operations_target`` (a URL or ``conn:<conn_id>``, the operator's own, so trusted
as a connection is) gets three events, each recorded in the ledger as a delivery of its own and
sent, signed and redelivered by the API server like any other:

- ``delivery.given_up``: a delivery failed every step of the redelivery schedule (or was refused);
- ``target.failing``: a target has failed every attempt for ``target_failing_seconds`` (a day by
  default), and deliveries to it still wait; once, until it recovers;
- ``target.recovered``: a target announced failing has delivered again; once.

The API server's loop runs :meth:`Watch.run` every :func:`check_every` seconds. Every process of every
API server may run it: each event's ``webhook-id`` is derived from what it is about (the given-up
delivery; the target and the event before it about that target), so two processes that find one
event record one delivery. The ledger's rows are the whole state: a target's latest event says
whether it was announced failing. Events about the operations target itself are never sent (no
loops), nor about its own deliveries. The rows are of no DAG (``dag_id`` empty), so only a user who
may read every DAG sees them in the view.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import and_, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from airflow_ordo_hooks import _event_id, _settings
from airflow_ordo_hooks._targets import check_target, fingerprint
from airflow_ordo_hooks.exceptions import SettingsError, TargetError
from airflow_ordo_hooks.server import queries
from airflow_ordo_hooks.server.models import Attempt, Delivery
from airflow_ordo_hooks.server.schedule import ATTEMPT_FAILED, ATTEMPT_SUCCEEDED
from airflow_ordo_hooks.server.shown import shown_target

log = logging.getLogger(__name__)

GIVEN_UP, FAILING, RECOVERED = "delivery.given_up", "target.failing", "target.recovered"
SOURCE = "operations"
ACTIONS = ("notify_webhook", "notify_slack_webhook", "notify_discord_webhook")
CHECK_SECONDS = 30.0
"""How often an API server process looks for events at the most seldom (:func:`check_every`)."""
LOOKBACK = timedelta(days=7)
"""How far back a process that has just started looks for deliveries given up."""
RECENT = timedelta(minutes=15)
"""A target is watched while it has an attempt this recent; a failing one is retried within the schedule's steps."""
MAX_PER_PASS = 200
"""Deliveries given up, and targets, looked at per pass at the most: the rest at the next."""


def check_every() -> float:
    """Seconds between an API server process's looks for events: a tenth of ``target_failing_seconds``, :data:`CHECK_SECONDS` at the most."""
    return min(CHECK_SECONDS, _settings.get("target_failing_seconds") / 10)


class OperationsTarget(NamedTuple):
    """``[ordo_hooks] operations_target`` and how it is sent to, read and checked."""

    target: str
    action: str
    fingerprint: str
    failing_after: timedelta

    @classmethod
    def configured(cls) -> OperationsTarget | None:
        """The configured operations target; ``None`` when there is none.

        :raises SettingsError: naming the key, when the target or the action is not one this package sends to.
        """
        values = _settings.values("operations_target", "operations_action", "target_failing_seconds")
        target, action = values["operations_target"].strip(), values["operations_action"].strip()
        if not target:
            return None
        try:
            check_target(target, templates=False)
        except TargetError as exc:
            raise SettingsError(f"[{_settings.SECTION}] operations_target: {exc}") from None
        if action not in ACTIONS:
            raise SettingsError(f"[{_settings.SECTION}] operations_action: expected one of {', '.join(ACTIONS)}, got {action[:100]!r}")
        return cls(target, action, fingerprint(target), timedelta(seconds=values["target_failing_seconds"]))

    def is_it(self, target: str) -> bool:
        """Whether ``target`` is this operations target (sent as trusted, never reported on)."""
        return target == self.target


class _Event(NamedTuple):
    about: str  # the given-up delivery's webhook-id, or the target's fingerprint
    event: str
    anchor: str  # what makes it one of its kind: the event before it about the same target
    data: dict[str, Any]


class Watch:
    """
    One API server process's watch for operations events. It keeps only how far it has looked for
    deliveries given up; everything else is read from the ledger at each :meth:`run`.
    """

    def __init__(self) -> None:
        self._given_up_since: datetime | None = None

    def run(self, session: Session, now: datetime) -> int:
        """Record the operations events due now; return how many were recorded (none without a target)."""
        ops = OperationsTarget.configured()
        if ops is None:
            return 0
        events = self._given_up(session, ops, now) + _targets(session, ops, now)
        return sum(_record(session, ops, event, now) for event in events)

    def _given_up(self, session: Session, ops: OperationsTarget, now: datetime) -> list[_Event]:
        since = self._given_up_since or now - LOOKBACK
        rows = session.execute(
            select(Delivery).where(Delivery.state == "failed", Delivery.updated_at >= since, _not_about_operations(ops))
            .order_by(Delivery.updated_at, Delivery.webhook_id).limit(MAX_PER_PASS)
        ).scalars().all()
        # a full page: the rest from the last one seen (a row settled in the same instant is looked at twice: its id dedupes)
        self._given_up_since = rows[-1].updated_at if len(rows) == MAX_PER_PASS else now - timedelta(seconds=CHECK_SECONDS)
        return [_Event(row.webhook_id, GIVEN_UP, "", _given_up_data(row)) for row in rows]


def _not_about_operations(ops: OperationsTarget) -> Any:
    """Rows that are not the operations target's own: events are never about it."""
    return and_(
        Delivery.source != SOURCE,
        or_(Delivery.target_fingerprint.is_(None), Delivery.target_fingerprint != ops.fingerprint),
    )


def _given_up_data(row: Delivery) -> dict[str, Any]:
    return {
        "webhook_id": row.webhook_id, "dag_id": row.dag_id, "run_id": row.run_id, "task_id": row.task_id,
        "map_index": row.map_index, "try_number": row.try_number, "event": row.event, "action": row.action,
        "target": row.target_masked, "target_fingerprint": row.target_fingerprint, "attempts": row.attempt_count,
        "last_status_code": row.last_status_code, "last_error": row.last_error,
    }


def _targets(session: Session, ops: OperationsTarget, now: datetime) -> list[_Event]:
    """
    The ``target.failing`` and ``target.recovered`` events due now: a target may be failing while
    deliveries to it wait, and may have recovered when it had attempts lately.
    """
    def fingerprints(candidates: Any) -> set[str]:
        return set(session.scalars(
            candidates.where(Delivery.target_fingerprint.is_not(None), _not_about_operations(ops)).distinct().limit(MAX_PER_PASS)
        ))

    waiting = fingerprints(select(Delivery.target_fingerprint).where(Delivery.state.in_(("pending", "delivering"))))
    lately = fingerprints(
        select(Delivery.target_fingerprint).join(Attempt, Attempt.webhook_id == Delivery.webhook_id).where(Attempt.at >= now - RECENT)
    )
    events = []
    for print_ in sorted(waiting | lately):
        latest = _latest_event(session, print_)
        if latest is not None and latest.event == FAILING:
            recovered = _succeeded_since(session, print_, latest.created_at)
            if recovered is not None:
                events.append(_Event(print_, RECOVERED, latest.webhook_id, {**_state(session, print_), "recovered_at": recovered.isoformat()}))
            continue
        since = _failing_since(session, print_, now, ops.failing_after, after=latest.created_at if latest else None) if print_ in waiting else None
        if since is not None:
            anchor = latest.webhook_id if latest is not None else ""
            data = {**_state(session, print_), "failing_since": since.isoformat(), "failing_for_seconds": ops.failing_after.total_seconds()}
            events.append(_Event(print_, FAILING, anchor, data))
    return events


def _latest_event(session: Session, print_: str) -> Delivery | None:
    """The latest ``target.failing`` or ``target.recovered`` about the target: whether it stands announced failing."""
    return session.scalars(
        select(Delivery).where(Delivery.dag_id == "", Delivery.run_id == print_, Delivery.event.in_((FAILING, RECOVERED)))
        .order_by(Delivery.created_at.desc(), Delivery.webhook_id.desc()).limit(1)
    ).first()


def _attempts_of(print_: str, *conditions: Any) -> Any:
    return (
        select(Attempt.at).join(Delivery, Attempt.webhook_id == Delivery.webhook_id)
        .where(Delivery.target_fingerprint == print_, Delivery.source != SOURCE, *conditions)
    )


def _succeeded_since(session: Session, print_: str, since: datetime) -> datetime | None:
    return session.scalar(_attempts_of(print_, Attempt.at > since, ATTEMPT_SUCCEEDED).order_by(Attempt.at).limit(1))


def _failing_since(session: Session, print_: str, now: datetime, failing_after: timedelta, *, after: datetime | None) -> datetime | None:
    """
    When the target began to fail every attempt, if that was ``failing_after`` ago or more: its
    first failed attempt after its last success, looked for within ``failing_after`` before that
    (and after ``after``, its last event), so that each query reads a window of the attempts' index.
    """
    start = now - failing_after
    floor = start - failing_after if after is None else max(after, start - failing_after)
    last_ok = session.scalar(
        select(func.max(Attempt.at)).join(Delivery, Attempt.webhook_id == Delivery.webhook_id)
        .where(Delivery.target_fingerprint == print_, Delivery.source != SOURCE, Attempt.at > floor, ATTEMPT_SUCCEEDED)
    )
    if last_ok is not None and last_ok > start:
        return None
    return session.scalar(_attempts_of(print_, Attempt.at > max(floor, last_ok or floor), Attempt.at <= start, ATTEMPT_FAILED).order_by(Attempt.at).limit(1))


def _state(session: Session, print_: str) -> dict[str, Any]:
    """What the target's event says of it: its masked name, the DAGs it serves lately, its last error, what waits."""
    rows = Delivery.target_fingerprint == print_
    masked = session.scalar(select(Delivery.target_masked).where(rows).order_by(Delivery.created_at.desc()).limit(1))
    dags = session.scalars(
        select(Delivery.dag_id).where(rows, Delivery.source != SOURCE).group_by(Delivery.dag_id)
        .order_by(func.max(Delivery.created_at).desc()).limit(20)
    ).all()
    last = session.execute(
        select(Attempt.status_code, Attempt.error, Attempt.at).join(Delivery, Attempt.webhook_id == Delivery.webhook_id)
        .where(rows).order_by(Attempt.at.desc()).limit(1)
    ).first()
    waiting = session.scalar(select(func.count()).select_from(Delivery).where(rows, Delivery.state.in_(("pending", "delivering")))) or 0
    return {
        "target": masked, "target_fingerprint": print_, "dags": sorted(dags), "waiting": waiting,
        "last_status_code": last.status_code if last else None, "last_error": last.error if last else None,
        "last_attempt_at": last.at.isoformat() if last else None,
    }


def _record(session: Session, ops: OperationsTarget, event: _Event, now: datetime) -> int:
    """Record ``event`` as a delivery to the operations target, due at once; 0 when the ledger holds it already."""
    webhook_id = _event_id.webhook_id("", event.about, None, -1, 0, event.event, f"{event.anchor}\0{ops.target}")
    if queries.existing(session, [webhook_id]):
        return 0
    from airflow_ordo_hooks.server import crypto

    body = {"type": event.event, "timestamp": now.isoformat(), "data": event.data}
    stored, encrypted = crypto.encrypt(ops.target)
    row = Delivery(
        webhook_id=webhook_id, dag_id="", run_id=event.about, task_id=None, map_index=-1, try_number=0,
        event=event.event, action=ops.action, target_masked=shown_target(ops.target), target_encrypted=stored,
        target_is_encrypted=encrypted, target_fingerprint=ops.fingerprint, payload=json.dumps(_shaped(ops.action, body)),
        source=SOURCE, state="pending", attempt_count=0, next_attempt_at=now, created_at=now, updated_at=now,
    )
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:  # another API server recorded it in the same instant
        return 0
    log.warning("airflow-ordo-hooks: %s about %s, sent to the operations target %s", event.event, event.about, row.target_masked)
    return 1


def _shaped(action: str, body: dict[str, Any]) -> dict[str, Any]:
    """The event's body as ``action`` sends it: as it is, or one line for Slack (``text``) or Discord (``content``)."""
    if action == "notify_webhook":
        return body
    line = _line(body)
    return {"text": line} if action == "notify_slack_webhook" else {"content": line[:2000]}


def _line(body: dict[str, Any]) -> str:
    data = body["data"]
    if body["type"] == GIVEN_UP:
        what = f"{data['event']} of {data['dag_id']}.{data['task_id'] or '(run)'} ({data['run_id']})"
        return f"airflow-ordo-hooks: gave up delivering {what} to {data['target']} after {data['attempts']} attempt(s): {data['last_error'] or data['last_status_code']}"
    dags = ", ".join(data["dags"][:5]) + (" …" if len(data["dags"]) > 5 else "")
    if body["type"] == FAILING:
        hours = data["failing_for_seconds"] / 3600
        return (f"airflow-ordo-hooks: {data['target']} has failed every attempt for {hours:g} h (DAGs: {dags}; "
                f"{data['waiting']} waiting): {data['last_error'] or data['last_status_code']}")
    return f"airflow-ordo-hooks: {data['target']} delivers again (DAGs: {dags}; {data['waiting']} waiting)"

