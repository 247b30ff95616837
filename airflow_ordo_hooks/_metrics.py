"""What the delivery pipeline does, as metrics through Airflow's own ``Stats`` (StatsD, DogStatsD or OpenTelemetry, as ``[metrics]`` says).

Every name begins ``ordo_hooks.`` (after ``[metrics] statsd_prefix``) and is one dotted name on
every side; what varies is a tag, as in Airflow's own ``ti.finish`` (tagged ``dag_id``,
``task_id``, ``state``): ``component`` (``worker``, ``dag-processor``, ``api-server``: who made
an attempt or settled a delivery), ``outcome`` (an answer's status class, or the kind of error),
``event``, ``action``, ``source``, and ``dag_id`` on counts of one DAG's deliveries and events
(not on attempts, timers or gauges); a tag without a value (the DAG of an operations delivery) is
left out. Never a run id, a URL or a time. The names, their types and tags: ``docs/operators.md``,
"Metrics".

**Where Stats is initialized.** Airflow initializes it from ``[metrics]`` in every process it
starts: the Task SDK's ``serde`` module on import (in a task process, the DAG processor and the
API server alike), and the task runner again as a task process starts. Where nothing has, the
first metric initializes it the same way (:func:`_stats`). Where metrics are off (Airflow's
``NoStatsLogger``) nothing more is done: not even Airflow's registry of its own names is read.

**Never raises.** A backend that is down, refuses a name or raises costs the metric only: the
first failure in a process is logged at WARNING, later ones at DEBUG. Airflow is imported only
when a metric is emitted.
"""

from __future__ import annotations

import functools
import logging
import sys
import threading
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import Any, TypeVar

log = logging.getLogger(__name__)

PREFIX = "ordo_hooks."
"""Every name's first part, after Airflow's ``[metrics] statsd_prefix``."""
API_SERVER = "api-server"
"""The API server as a ``component`` (the worker and the DAG processor are named where they send, in ``callbacks/outbox.py``)."""
SETTLED = {"delivered": "delivery.delivered", "gone": "delivery.gone", "failed": "delivery.given_up"}
"""A delivery's final states, and the counter of each."""

_lock = threading.Lock()
_warned = False
_UNKNOWN = object()
_WAITING = "airflow_ordo_hooks.metrics"
"""The key, in a SQLAlchemy session's ``info``, of what its commit is to emit."""
_F = TypeVar("_F", bound=Callable[..., None])


def _stats() -> Any:
    """Airflow's ``Stats``, initialized as Airflow does where nothing in this process has; ``None`` where metrics are off."""
    from airflow.sdk.observability import stats

    state = sys.modules[stats.initialize.__module__]  # where Stats keeps the factory it was initialized with
    factory = getattr(state, "_factory", _UNKNOWN)  # unknown (another Airflow): Stats as Airflow left it
    if factory is None:
        with _lock:
            if state._factory is None:
                from airflow.sdk.configuration import conf
                from airflow.sdk.observability.metrics import stats_utils

                stats.initialize(factory=stats_utils.get_stats_factory(),
                                 export_legacy_names=conf.getboolean("metrics", "legacy_names_on", fallback=True))
            factory = state._factory
    return None if factory is getattr(state, "NoStatsLogger", None) else stats.Stats


def enabled() -> bool:
    """Whether metrics are on in this process (``[metrics]``): what only a metric needs can be skipped when not; never raises."""
    try:
        return _stats() is not None
    except Exception:
        _lost("this process")
        return False


def _lost(what: str) -> None:
    global _warned
    log.log(logging.DEBUG if _warned else logging.WARNING, "airflow-ordo-hooks: metrics of %s not emitted", what, exc_info=True)
    _warned = True


def _never_raises(emit: _F) -> _F:
    """``emit``, whose failure costs its metrics only."""

    @functools.wraps(emit)
    def quiet(*args: Any, **kwargs: Any) -> None:
        try:
            emit(*args, **kwargs)
        except Exception:
            _lost(emit.__name__)

    return quiet  # type: ignore[return-value]


def _emit(kind: str, name: str, value: float, tags: dict[str, Any]) -> None:
    try:
        stats = _stats()
        if stats is not None:
            getattr(stats, kind)(PREFIX + name, value, tags={k: v for k, v in tags.items() if v not in (None, "")})
    except Exception:
        _lost(PREFIX + name)


def incr(name: str, count: int = 1, **tags: Any) -> None:
    """Add ``count`` to the counter ``ordo_hooks.<name>``; never raises."""
    if count:
        _emit("incr", name, count, tags)


def timing(name: str, ms: float, **tags: Any) -> None:
    """Time ``ordo_hooks.<name>`` at ``ms`` milliseconds; never raises."""
    _emit("timing", name, max(ms, 0.0), tags)


def gauge(name: str, value: float, **tags: Any) -> None:
    """Set the gauge ``ordo_hooks.<name>`` to ``value``; never raises."""
    _emit("gauge", name, value, tags)


def outcome(status_code: int | None, error: str | None) -> str:
    """An attempt's ``outcome`` tag: ``2xx`` to ``5xx``, else its error's kind: ``timeout``, ``connection``, ``refused`` (the egress policy) or ``error``."""
    from airflow_ordo_hooks._egress import REFUSED_PREFIX

    if status_code is not None:
        return f"{status_code // 100}xx"
    if error and error.startswith(REFUSED_PREFIX):
        return "refused"
    kind = (error or "").partition(":")[0]  # the exception's type, as the HTTP layer writes it
    if "Timeout" in kind:
        return "timeout"
    return "connection" if "Connection" in kind or "SSL" in kind else "error"


@_never_raises
def attempt(component: str, status_code: int | None, error: str | None) -> None:
    """Count one attempt (``ordo_hooks.attempt``) by its outcome."""
    incr("attempt", component=component, outcome=outcome(status_code, error))


def _attempts(record: Any, component: str) -> None:
    """Count a delivery's attempts (a ``DeliveryRecord``'s); one refused before any request went out counts as one."""
    for made in record.attempt_log:
        attempt(component, made["status_code"], made["error"])
    if not record.attempt_log and record.error:
        attempt(component, None, record.error)


def _of(delivery: Any, component: str) -> dict[str, Any]:
    """The tags of a count of one delivery (a ``Message``, or a row of the ledger: the same names)."""
    return {"component": component, "event": delivery.event, "action": delivery.action, "source": delivery.source,
            "dag_id": delivery.dag_id}


def _delivered(tags: dict[str, Any], ms: float) -> None:
    """Count a delivery delivered (``tags``: :func:`_of`'s), ``ms`` after it was first attempted or recorded."""
    incr(SETTLED["delivered"], **tags)
    timing("delivery.time_to_deliver", ms, component=tags["component"], source=tags["source"])


@_never_raises
def first_attempts(messages: Sequence[Any], records: Sequence[Any], component: str, *, budget_ran_out: bool = False) -> None:
    """
    What an event's first attempts came to (a record per message): each attempt, the first one's
    time, what was delivered, and whether the inline budget ran out first (once an event).
    """
    for message, record in zip(messages, records):
        _attempts(record, component)
        if record.attempt_log:
            first = record.attempt_log[0]
            timing("delivery.first_attempt", first["elapsed_ms"], component=component,
                   outcome=outcome(first["status_code"], first["error"]))
        if record.ok:
            _delivered(_of(message, component), record.elapsed_ms)
    if budget_ran_out and messages:
        incr("inline.budget_exhausted", component=component, event=messages[0].event, dag_id=messages[0].dag_id)


@_never_raises
def retried_here(messages: Sequence[Any], records: Sequence[Any], component: str, started: float) -> None:
    """
    What became of an event's deliveries that no ledger took, once retried in the caller's own time
    (``messages`` as attempted; ``records`` one per message not delivered, in order, or none when
    none was retried): each is delivered, or given up by ``component`` (gone, on an HTTP 410).
    """
    import time

    undelivered = [m for m in messages if not m.delivered]
    for i, message in enumerate(undelivered):
        record = records[i] if i < len(records) else None
        if record is not None:
            _attempts(record, component)
            if record.ok:
                _delivered(_of(message, component), (time.monotonic() - started) * 1000)
                continue
        last = record.status_code if record is not None and record.attempts else _last_status(message)
        incr(SETTLED["gone" if last == 410 else "failed"], **_of(message, component))


def _last_status(message: Any) -> int | None:
    return message.attempts[-1]["status_code"] if message.attempts else None


@_never_raises
def handed_over(messages: Sequence[Any], component: str, took: bool) -> None:
    """The ledger took an event's deliveries (those not delivered are counted: the API server's now), or could not take them."""
    if not messages:
        return
    if took:
        incr("ledger.handed_over", sum(not m.delivered for m in messages), component=component,
             event=messages[0].event, dag_id=messages[0].dag_id)
    else:
        incr("ledger.unavailable", component=component)


@_never_raises
def recovered(messages: Sequence[Any], component: str) -> None:
    """Count the recovered events of killed tries that the ledger took, by event."""
    for event in sorted({m.event for m in messages}):
        of_event = [m for m in messages if m.event == event]
        incr("event.recovered", len(of_event), component=component, event=event, dag_id=of_event[0].dag_id)


@_never_raises
def settled_on_commit(session: Any, row: Any, before: str | None, *, counted: Sequence[str] = tuple(SETTLED)) -> None:
    """
    Count a row of the ledger that came to a final state (one of ``counted``) from ``before``, once
    ``session`` commits it: what the database did not keep is not counted. Its ``component`` is who
    made its last attempt (the API server, if none did); a delivered one is timed from its first
    attempt or its creation, whichever came first.
    """
    state = row.state
    if state == before or state not in counted or not enabled():  # off: no listener on the session either
        return
    tags = _of(row, row.attempts[-1].by if row.attempts else API_SERVER)
    since = min([row.created_at, *(a.at for a in row.attempts)])
    _on_commit(session, lambda: _settled(state, tags, since))


def _on_commit(session: Any, emit: Callable[[], None]) -> None:
    """Call ``emit`` when ``session``'s transaction commits; forget it when it rolls back."""
    waiting = session.info.get(_WAITING)
    if waiting is None:
        from sqlalchemy import event

        waiting = session.info[_WAITING] = []
        event.listen(session, "after_commit", lambda _session: [emit() for emit in _taken(waiting)])
        event.listen(session, "after_rollback", lambda _session: _taken(waiting))
    waiting.append(emit)


def _taken(waiting: list[Callable[[], None]]) -> list[Callable[[], None]]:
    taken = waiting[:]
    waiting.clear()
    return taken


@_never_raises
def _settled(state: str, tags: dict[str, Any], since: datetime) -> None:
    if state == "delivered":
        _delivered(tags, (datetime.now(timezone.utc) - since).total_seconds() * 1000)
    else:
        incr(SETTLED[state], **tags)


@_never_raises
def backlog(pending: int, oldest: datetime | None) -> None:
    """The ledger's pending deliveries (``ledger.pending``), and how long, in seconds, the oldest has been (``ledger.oldest_pending_age``)."""
    gauge("ledger.pending", pending)
    age = (datetime.now(timezone.utc) - oldest).total_seconds() if oldest is not None else 0.0
    gauge("ledger.oldest_pending_age", max(age, 0.0))
