"""The ledger's reads and writes: recording what callbacks report, claiming what is due, an attempt's outcome, queries.

Plain functions on a SQLAlchemy ``Session`` of Airflow's metadata database. They flush, so that
the caller sees what they did, but never commit: the caller owns the transaction. The API's routes
commit when the request ends; the redelivery loop commits right after :func:`claim_due`, so that
every other API server sees the claim before anything is sent.

A delivery's schedule is ``[ordo_hooks] redelivery_schedule`` (:func:`_settings.redelivery_schedule`):
its steps are the callback's inline attempts (step 0, however many requests they made) and then
each attempt of an API server; ``schedule[n]`` is the wait after step ``n`` ends before step
``n + 1``, and a delivery still failing after ``len(schedule)`` steps is marked ``failed``, with one
ERROR line. The real target is stored only encrypted with Airflow's Fernet key, as connection
passwords are; every text names it masked.

**What the server holds is the server's.** A caller (a callback, the recovery of a killed try, the
on_exit step) creates a delivery and reports the attempts it made; it cannot rewrite what a row
holds: its target and masked name (derived here), its outcome (``delivered`` only by a 2xx attempt
it reports, whatever the item's ``outcome`` says), its schedule (``not_before`` counts only when the
row is created; reported attempts never use up the API server's steps). The one change a report
makes to a row besides its attempts: a recovery's placeholder, not yet attempted, takes the payload
the callback of the same event built (the same ``webhook_id``, so the same target).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import and_, func, select, update
from sqlalchemy.orm import Session, defer

from airflow_ordo_hooks import _settings
from airflow_ordo_hooks._targets import CONN_PREFIX, mask_text
from airflow_ordo_hooks.exceptions import OrdoHooksError
from airflow_ordo_hooks.ledger.models import Attempt, Delivery

log = logging.getLogger(__name__)

MAX_ERROR = 2000
"""The longest error text kept per attempt (the delivery path writes at most 300)."""
MAX_REPORTED = 100
"""Attempts reported by callers that a delivery keeps at the most; the API server's own are all kept."""
SERVER = "api-server"
"""Who makes the attempts of the redelivery loop (``Attempt.by``)."""
_CHUNK = 500  # ids per IN (...): well under every database's limit on bound parameters


class LedgerConflict(OrdoHooksError):
    """An item names a ``webhook_id`` the ledger already holds for another event (DAG, run, task, try or event)."""

    def __init__(self, message: str, webhook_id: str) -> None:
        super().__init__(message)
        self.webhook_id = webhook_id


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


# -- recording what callbacks report ---------------------------------------------------------------
def record(
    session: Session,
    items: Iterable[Mapping[str, Any]],
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

    :param items: mappings with the keys of the API's item (``webhook_id``, ``dag_id``, ``run_id``,
        ``task_id``, ``map_index``, ``try_number``, ``event``, ``action``, ``target``,
        ``payload``, ``source``, ``attempts``, ``outcome``, ``not_before``; a ``target_masked`` is ignored:
        what readers see of the target is derived from it here);
        times are aware ``datetime`` objects or ISO-8601 text.
    :param by: who made an attempt that does not say (``worker``, ``dag-processor``).
    :param schedule: the redelivery schedule; ``[ordo_hooks] redelivery_schedule`` if not given.
    :return: per item, in order, ``{"webhook_id", "state", "created"}``.
    :raises LedgerConflict: an item's ``webhook_id`` is held for another event (in the ledger, or by
        an item before it); raised before anything is changed.
    """
    items = list(items)
    schedule = tuple(schedule) if schedule is not None else _settings.redelivery_schedule()
    now = now or utcnow()
    rows = {row.webhook_id: row for row in _rows(session, {item["webhook_id"] for item in items})}
    first: dict[str, Mapping[str, Any]] = {}
    for item in items:  # every conflict before any change
        webhook_id = item["webhook_id"]
        if webhook_id in rows:
            if item["source"] != "recovery":  # which changes nothing
                _check_same_event(webhook_id, _identity(rows[webhook_id]), item)
        elif webhook_id in first:
            _check_same_event(webhook_id, _identity(first[webhook_id]), item)
        else:
            first[webhook_id] = item
    results = []
    for item in items:
        row = rows.get(item["webhook_id"])
        created = row is None
        if created:
            row = rows[item["webhook_id"]] = _insert(session, item, by, schedule, now)
        else:
            _merge(row, item, by, schedule, now)
        results.append({"webhook_id": row.webhook_id, "state": row.state, "created": created})
    session.flush()
    return results


def _rows(session: Session, webhook_ids: Collection[str]) -> list[Delivery]:
    ids, found = sorted(webhook_ids), []
    for start in range(0, len(ids), _CHUNK):
        found += session.scalars(select(Delivery).where(Delivery.webhook_id.in_(ids[start : start + _CHUNK]))).all()
    return found


_IDENTITY = ("dag_id", "run_id", "task_id", "map_index", "try_number", "event")
_DEFAULTS = {"task_id": None, "map_index": -1, "try_number": 0}


def _identity(source: Delivery | Mapping[str, Any]) -> tuple[Any, ...]:
    """The event a delivery is of, which its ``webhook_id`` is derived from (with the target)."""
    if isinstance(source, Delivery):
        return tuple(getattr(source, key) for key in _IDENTITY)
    return tuple(source.get(key, _DEFAULTS.get(key)) for key in _IDENTITY)


def _check_same_event(webhook_id: str, held: tuple[Any, ...], item: Mapping[str, Any]) -> None:
    given = _identity(item)
    differ = [(key, a, b) for key, a, b in zip(_IDENTITY, held, given) if a != b]
    if differ:
        raise LedgerConflict(
            f"webhook_id {webhook_id!r} is held for another event: its "
            + ", ".join(f"{key} is {a!r}, not {b!r}" for key, a, b in differ),
            webhook_id,
        )


def _insert(session: Session, item: Mapping[str, Any], by: str, schedule: Sequence[float], now: datetime) -> Delivery:
    from airflow_ordo_hooks.ledger import crypto

    target = item["target"]
    stored, encrypted = crypto.encrypt(target)
    row = Delivery(
        webhook_id=item["webhook_id"],
        dag_id=item["dag_id"],
        run_id=item["run_id"],
        task_id=item.get("task_id"),
        map_index=item.get("map_index", -1),
        try_number=item.get("try_number", 0),
        event=item["event"],
        action=item["action"],
        target_masked=shown_target(target),
        target_encrypted=stored,
        target_is_encrypted=encrypted,
        payload=item["payload"],
        source=item["source"],
        state="pending",
        attempt_count=0,
        created_at=now,
        updated_at=now,
    )
    new = _append(row, item, by)
    session.add(row)
    _settle(row, new, item, schedule, now)
    return row


def _merge(row: Delivery, item: Mapping[str, Any], by: str, schedule: Sequence[float], now: datetime) -> None:
    if item["source"] == "recovery":
        return
    if row.state == "pending" and row.attempt_count == 0 and row.source == "recovery":
        row.payload, row.source = item["payload"], item["source"]  # the callback built the event's real payload
    new = _append(row, item, by)
    if not new:
        return
    row.updated_at = now
    if row.state in ("delivered", "gone"):
        return
    if row.state == "delivering" and not any(_ok(a.status_code) for a in new) and not _gone(new):
        return  # an API server is sending it: its outcome decides, counting these attempts
    _settle(row, new, {**item, "not_before": None}, schedule, now)  # a row's schedule is the server's


def _append(row: Delivery, item: Mapping[str, Any], by: str) -> list[Attempt]:
    """Append the item's attempts not already held; return them."""
    target = item["target"]
    held = {(a.at, a.by, a.status_code) for a in row.attempts}
    room = MAX_REPORTED - sum(a.by != SERVER for a in row.attempts)
    new = []
    for given in list(item.get("attempts") or ())[: max(room, 0)]:
        attempt = Attempt(
            at=_when(given["at"]),
            status_code=given.get("status_code"),
            error=clean_error(given.get("error"), target),
            elapsed_ms=int(given.get("elapsed_ms") or 0),
            by=given.get("by") if given.get("by") in ("worker", "dag-processor") else by,
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


def _gone(attempts: Sequence[Attempt]) -> bool:
    return bool(attempts) and attempts[-1].status_code == 410


def _settle(row: Delivery, new: Sequence[Attempt], item: Mapping[str, Any], schedule: Sequence[float], now: datetime) -> None:
    """The state of a row that is not being sent, after ``new`` attempts reported with ``item``."""
    last = new[-1] if new else None
    if any(_ok(a.status_code) for a in new):
        row.state, row.next_attempt_at = "delivered", None
    elif _gone(new):
        row.state, row.next_attempt_at = "gone", None
    elif row.state == "failed":
        pass
    elif _step(row) >= len(schedule):
        _give_up(row)
    elif new or row.next_attempt_at is None or item.get("not_before"):
        not_before = item.get("not_before")
        if not_before:
            row.next_attempt_at = _when(not_before)
        else:
            after = _ended(last) if last is not None else now
            row.next_attempt_at = after + timedelta(seconds=schedule[_step(row)])
        row.state = "pending"


def _step(row: Delivery) -> int:
    """
    The steps of the schedule a delivery has used: its reported attempts, however many, are the
    first (an inline burst of retries within seconds is one step, not several), then one per
    attempt of an API server.
    """
    server = sum(a.by == SERVER for a in row.attempts)
    return server + (row.attempt_count > server)


def _ok(status_code: int | None) -> bool:
    return status_code is not None and 200 <= status_code < 300


def _ended(attempt: Attempt) -> datetime:
    return attempt.at + timedelta(milliseconds=attempt.elapsed_ms or 0)


def _when(value: datetime | str) -> datetime:
    when = datetime.fromisoformat(value) if isinstance(value, str) else value
    if when.tzinfo is None:
        raise ValueError(f"a time without a time zone: {value!r}")
    return when.astimezone(timezone.utc)


def _give_up(row: Delivery) -> None:
    row.state, row.next_attempt_at = "failed", None
    log.error(
        "airflow-ordo-hooks: gave up delivering %s of %s to %s after %d attempt(s), the last: %s (webhook-id %s)",
        row.event, describe(row), row.target_masked, row.attempt_count,
        row.last_error or (f"HTTP {row.last_status_code}" if row.last_status_code else "no answer"), row.webhook_id,
    )


def describe(row: Delivery) -> str:
    """``dag D, run R, task T[3], try 2``: what event of what a delivery is, for log lines."""
    text = f"dag {row.dag_id}, run {row.run_id}"
    if row.task_id is not None:
        text += f", task {row.task_id}{f'[{row.map_index}]' if row.map_index >= 0 else ''}, try {row.try_number}"
    return text


# -- the target: encrypted at rest, masked in every text -------------------------------------------
def target_of(row: Delivery) -> str:
    """
    The real target of a delivery, decrypted (:func:`~airflow_ordo_hooks.ledger.crypto.decrypt`).

    :raises cryptography.fernet.InvalidToken: ``[core] fernet_key`` no longer holds the key it was encrypted with.
    """
    from airflow_ordo_hooks.ledger import crypto

    return crypto.decrypt(row.target_encrypted, row.target_is_encrypted)


def shown_target(target: str) -> str:
    """
    What any text may show of ``target``: every URL masked, and a ``conn:`` target's endpoint (a
    Slack path is a secret) left out; at most 300 characters. Derived here, never taken from a
    caller: a reader sees where the API server sends.
    """
    text = mask_text(target, [target])
    if target.startswith(CONN_PREFIX):
        endpoint = target[len(CONN_PREFIX) :].partition("/")[2]
        if len(endpoint) >= 4:
            text = text.replace(endpoint, "…")
    return text[:300]


def clean_error(error: str | None, target: str | None = None) -> str | None:
    """An attempt's error as stored: every URL in it masked, at most :data:`MAX_ERROR` characters."""
    if not error:
        return None
    text = mask_text(error, [target] if target else [])
    if target and target.startswith(CONN_PREFIX):
        endpoint = target[len(CONN_PREFIX) :].partition("/")[2]
        if len(endpoint) >= 4:
            text = text.replace(endpoint, "…")
    return text if len(text) <= MAX_ERROR else text[: MAX_ERROR - 3] + "..."


# -- redelivery --------------------------------------------------------------------------------------
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
    ended (``n`` the steps used, see :func:`_step`), or ``failed`` after the schedule's last, logged
    as one ERROR line naming the masked target, the event, the DAG, run and task, and the attempts.
    A delivery another path has meanwhile settled as ``delivered`` or ``gone`` stays so.

    :param refused: nothing was sent, by the API server's own decision (its egress policy): the
        delivery is ``failed`` at once, with the ERROR line; a person's Redeliver tries again
        (after an operator allowed the address, say).

    :return: the delivery's new state.
    :raises LookupError: there is no such delivery (the ledger was reset meanwhile).
    """
    row = session.get(Delivery, webhook_id, populate_existing=True)
    if row is None:
        raise LookupError(f"no delivery {webhook_id!r} in the ledger")
    now = utcnow()
    row.attempt_count = (row.attempt_count or 0) + 1
    attempt = Attempt(
        number=row.attempt_count, at=_when(at), status_code=status_code, error=clean_error(error),
        elapsed_ms=int(elapsed_ms), by=by,
    )
    row.attempts.append(attempt)
    row.last_status_code, row.last_error, row.updated_at = status_code, attempt.error, now
    if row.state in ("delivered", "gone"):
        pass
    elif _ok(status_code):
        row.state, row.next_attempt_at = "delivered", None
    elif status_code == 410:
        row.state, row.next_attempt_at = "gone", None
    elif refused or _step(row) >= len(schedule):
        _give_up(row)
    else:
        row.state, row.next_attempt_at = "pending", _ended(attempt) + timedelta(seconds=schedule[_step(row)])
    session.flush()
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
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
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


def failed_since(session: Session, since: datetime, *, dag_id: str | None = None) -> list[str]:
    """The ids of the deliveries given up (``failed``) at or after ``since``, of ``dag_id`` if given, oldest first."""
    stmt = select(Delivery.webhook_id).where(Delivery.state == "failed", Delivery.updated_at >= since)
    if dag_id is not None:
        stmt = stmt.where(Delivery.dag_id == dag_id)
    return list(session.scalars(stmt.order_by(Delivery.updated_at, Delivery.webhook_id)))


# -- reads -----------------------------------------------------------------------------------------
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
    for start in range(0, len(ids), _CHUNK):
        stmt = select(Delivery.webhook_id, Delivery.dag_id).where(Delivery.webhook_id.in_(ids[start : start + _CHUNK]))
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
    dag_ids: Collection[str] | None = None,
    limit: int = 100,
    offset: int = 0,
    failing: bool = False,
    payloads: bool = True,
) -> tuple[list[Delivery], int]:
    """
    Deliveries matching every filter given, newest first, with their attempts (one more query for the page).

    :param dag_ids: only deliveries of these DAGs (those a user may read), if given.
    :param failing: only those not delivered after at least one attempt: given up on, gone, or waiting
        for their next attempt.
    :param payloads: read their payloads too; without, a page of deliveries with long logs reads fast.
    :return: ``(up to limit rows from offset, how many match in all)``.
    """
    stmt = select(Delivery)
    for column, value in ((Delivery.dag_id, dag_id), (Delivery.run_id, run_id), (Delivery.task_id, task_id),
                          (Delivery.map_index, map_index), (Delivery.event, event), (Delivery.state, state)):
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


def as_dict(row: Delivery, *, full: bool = True, payload: bool = True) -> dict[str, Any]:
    """
    A delivery as every reader shows it (the API, the view, the CLI): every column but the encrypted
    target, and ``latency_ms`` (its last attempt's); when ``full``, also its attempts and its payload
    (:func:`shown_payload`), or ``None`` for it unless ``payload``.
    """
    shown = {
        "webhook_id": row.webhook_id,
        "dag_id": row.dag_id,
        "run_id": row.run_id,
        "task_id": row.task_id,
        "map_index": row.map_index,
        "try_number": row.try_number,
        "event": row.event,
        "action": row.action,
        "target_masked": row.target_masked,
        "source": row.source,
        "state": row.state,
        "attempt_count": row.attempt_count,
        "latency_ms": row.attempts[-1].elapsed_ms if row.attempts else None,
        "next_attempt_at": _iso(row.next_attempt_at),
        "last_status_code": row.last_status_code,
        "last_error": row.last_error,
        "created_at": _iso(row.created_at),
        "updated_at": _iso(row.updated_at),
    }
    if not full:
        return shown
    return {**shown, "payload": shown_payload(row.payload) if payload else None, "attempts": attempts_of(row)}


def attempts_of(row: Delivery) -> list[dict[str, Any]]:
    return [
        {"number": a.number, "at": _iso(a.at), "status_code": a.status_code, "error": a.error,
         "elapsed_ms": a.elapsed_ms, "by": a.by}
        for a in row.attempts
    ]


def shown_payload(text: str) -> Any:
    """
    A stored payload as every reader shows it: parsed, and masked by Airflow's secrets masker
    (secrets it knows, values of keys such as ``password`` or ``token``).
    """
    from airflow.sdk.log import redact

    try:
        payload: Any = json.loads(text)
    except ValueError:  # recorded by a client that did not send JSON: shown as it is
        payload = text
    return redact(payload)


def payload_of(session: Session, webhook_id: str) -> str | None:
    """One delivery's stored payload alone: a reader of many reads them one at a time, never all at once."""
    return session.scalar(select(Delivery.payload).where(Delivery.webhook_id == webhook_id))


def _iso(when: datetime | None) -> str | None:
    return when.isoformat() if when is not None else None
