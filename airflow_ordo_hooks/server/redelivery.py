"""Redelivery in the API server: a thread that sends, once each, the deliveries the ledger says are due.

**Why the API server.** It is the one component every Airflow 3 deployment runs that may use the
metadata database (workers and the DAG processor may not), it can read connections (a ``conn:``
target is resolved there), and it runs all the time: a redelivery hours later, per
``[ordo_hooks] redelivery_schedule``, needs no task, no worker slot and no scheduler loop.

**Why this hook.** The thread is started by the lifespan of the ledger's FastAPI app
(``server/api.py``). Airflow's API server enters the lifespan of every FastAPI app a plugin
mounts, from its own (``airflow/api_fastapi/app.py: lifespan``, in 3.3.0 and 3.3.2): when the
server starts, once in each of its worker processes (after gunicorn's fork, when that is used), and
leaves it when the server stops. No other component serves that app, so no other starts the thread;
importing the plugin (every component does) starts nothing. Starlette alone would not run a mounted
app's lifespan, and middleware is built lazily on the first request, which is why neither is used.

**Where it may send.** Whoever may record deliveries of a DAG (a DAG author, anyone with Airflow's
``user`` role) names the target, and the API server usually reaches networks that workers do not;
so every URL target, whatever its event, is sent as one that is not trusted: to public addresses
only, unless ``[ordo_hooks] allowed_hosts`` allows more, checked on the address connected to at
every hop (:func:`~airflow_ordo_hooks.hooks.webhook.deliver`'s ``untrusted``). A ``conn:`` target is
the operator's own connection, and recording one needs permission to read it. A send the policy
refuses is recorded as an attempt whose error says so, and the delivery is failed at once: an
operator who then allows the address can Redeliver it.

**Fair.** Due deliveries are claimed a DAG at a time, in turn (:func:`~airflow_ordo_hooks.server.claims.due_ids`),
so that no DAG's backlog, or a caller's flood of rows pointing at a receiver that never answers,
keeps another DAG's from being sent.

**Several at once.** Every process of every API server runs a loop on the same database: each
delivery is claimed by a conditional ``UPDATE`` (:func:`~airflow_ordo_hooks.server.claims.claim_due`),
so exactly one sends each attempt. A claim is a lease of the delivery's longest attempt (connect
and read timeouts) and 5 s more: when the process dies mid-attempt, another claims it once the
lease has passed. A receiver may so get an attempt twice, with the same ``webhook-id``.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any, NamedTuple

from airflow_ordo_hooks import _metrics, _settings
from airflow_ordo_hooks._egress import REFUSED_PREFIX
from airflow_ordo_hooks._targets import CONN_PREFIX
from airflow_ordo_hooks.hooks.webhook import DeliveryPolicy, deliver
from airflow_ordo_hooks.server import claims
from airflow_ordo_hooks.server.models import Delivery
from airflow_ordo_hooks.server.schedule import SERVER, utcnow
from airflow_ordo_hooks.server.shown import clean_error, target_of

log = logging.getLogger(__name__)

CANDIDATES = 32
"""Due deliveries the loop reads in turn (:func:`claims.due_ids`) at a time, to claim from over the next polls."""
CANDIDATES_SECONDS = 1.0
"""How long those are claimed from before they are read again: fairness keeps up with new deliveries within it."""
LEASE_MARGIN = 5.0
"""Seconds a claim outlasts its attempt's longest possible time."""
RECORD_WITHIN = LEASE_MARGIN
"""Seconds an attempt's outcome is offered to a database that refuses it for now: within its claim's lease."""
BACKLOG_SECONDS = 5.0
"""How often the loop measures the pending backlog (:meth:`Redeliverer._gauge_backlog`), at the most."""
PRUNE_SECONDS = 60.0
"""How often the loop deletes settled deliveries older than ``[ordo_hooks] retention_days``, at the most."""
PRUNE_BATCHES = 4
"""Batches of :data:`~.retention.BATCH` deliveries a pass deletes at the most, so that the loop goes on redelivering."""


class _Job(NamedTuple):
    webhook_id: str
    event: str
    target: str | None  # None: it could not be decrypted
    payload: bytes
    shown: str


class Redeliverer:
    """
    The loop that sends due deliveries: every ``poll_seconds`` it claims as many as it has free
    senders, sends each once (a few at a time), and records the attempt. It never raises out of its
    loop: an error is logged and the next poll goes on. Start with :meth:`start`, stop with :meth:`stop`.

    :param poll_seconds: how often to look for due deliveries (``[ordo_hooks] redelivery_poll_seconds``).
    :param schedule: the waits between attempts (``[ordo_hooks] redelivery_schedule``).
    :param policy: timeouts of an attempt (``[ordo_hooks]``'s by default); an attempt is one request,
        its budget the connect and read timeouts.
    :param concurrency: deliveries sent at once, at the most.
    :param prune_seconds: how often to delete settled deliveries past their retention, at the most (:meth:`_prune`).
    :raises SettingsError: a setting read from Airflow's configuration is invalid.
    """

    def __init__(
        self,
        *,
        poll_seconds: float | None = None,
        schedule: tuple[float, ...] | None = None,
        policy: DeliveryPolicy | None = None,
        concurrency: int = 4,
        prune_seconds: float = PRUNE_SECONDS,
    ) -> None:
        self.poll_seconds = poll_seconds if poll_seconds is not None else _settings.get("redelivery_poll_seconds")
        self.schedule = schedule if schedule is not None else _settings.redelivery_schedule()
        base = policy or DeliveryPolicy.from_airflow_config()
        longest = base.connect_timeout + base.read_timeout
        self.policy = dataclasses.replace(base, max_attempts=1, budget=min(longest, 3600.0))
        self.lease_seconds = longest + LEASE_MARGIN
        self.concurrency = concurrency
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._in_flight = 0
        self._thread: threading.Thread | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._candidates: list[str] = []
        self._candidates_read = -CANDIDATES_SECONDS
        self.prune_seconds = prune_seconds
        self._last: dict[str, float] = {}  # when each of the loop's periodic chores last ran (_time_for)
        self._watch: Any = None  # operations.Watch, made at the first look
        self._operations_target = (_settings.get("operations_target") or "").strip()

    def start(self) -> Redeliverer:
        """Start the loop in a daemon thread; return ``self``."""
        if self._thread is not None:
            return self
        self._stopping.clear()
        self._pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="ordo-hooks-redeliver")
        self._thread = threading.Thread(target=self._loop, name="ordo-hooks-redelivery", daemon=True)
        self._thread.start()
        log.info(
            "airflow-ordo-hooks: redelivering due webhook deliveries, looking every %g s, %d at a time",
            self.poll_seconds, self.concurrency,
        )
        return self

    def stop(self, timeout: float | None = None) -> None:
        """Stop looking for due deliveries and wait for those being sent (each is bounded by its timeouts)."""
        self._stopping.set()
        thread, pool, self._thread, self._pool = self._thread, self._pool, None, None
        if thread is not None:
            thread.join(timeout)
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> Redeliverer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _loop(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            try:
                claimed = self.run_once()
                failures = 0
            except Exception:  # the database is away, a lock timed out...: a later poll tries again
                failures += 1
                claimed = 0
                log.exception(
                    "airflow-ordo-hooks: redelivery could not claim due deliveries (%d time(s) in a row); trying again in %g s",
                    failures, self._pause(failures),
                )
            self._prune()
            self._gauge_backlog()
            self._watch_operations()
            if not claimed:  # when it found work, it looks again at once
                self._stopping.wait(self._pause(failures))

    def _watch_operations(self) -> None:
        """
        Record the operations target's events due now (:mod:`~airflow_ordo_hooks.server.operations`),
        every :func:`~airflow_ordo_hooks.server.operations.check_every` seconds, when there is such a
        target. Never raises: an error is logged and the next look tries again.
        """
        if not self._operations_target:
            return
        from airflow.utils.session import create_session

        from airflow_ordo_hooks.server import operations

        try:
            if not self._time_for("operations", operations.check_every()):
                return
            self._watch = self._watch or operations.Watch()
            with create_session(scoped=False) as session:
                self._watch.run(session, utcnow())
        except Exception:  # the database is away, a setting is invalid...: the next look tries again
            log.exception("airflow-ordo-hooks: could not look for the operations target's events; trying again later")

    def _prune(self) -> None:
        """
        Every ``prune_seconds`` at the most, delete up to :data:`PRUNE_BATCHES` batches of settled
        deliveries older than ``[ordo_hooks] retention_days`` (none when it is 0), each batch its own
        transaction (:mod:`~airflow_ordo_hooks.server.retention`). Never raises: an error is logged
        and the next pass tries again.
        """
        if not self._time_for("prune", self.prune_seconds):
            return
        from airflow_ordo_hooks.server import retention

        try:
            cutoff = retention.retention_cutoff()
            deleted = retention.prune(cutoff, max_batches=PRUNE_BATCHES) if cutoff is not None else 0
        except Exception:  # the database is away, retention_days is invalid...: the next pass tries again
            log.exception(
                "airflow-ordo-hooks: could not delete settled deliveries past [ordo_hooks] retention_days; trying again in %g s",
                self.prune_seconds,
            )
            return
        if deleted:
            log.info("airflow-ordo-hooks: deleted %d settled deliveries past [ordo_hooks] retention_days", deleted)

    def _time_for(self, chore: str, every: float) -> bool:
        """Whether ``chore`` is due (it last ran ``every`` seconds ago or more, or never), and if so, that it runs now."""
        now = time.monotonic()
        if now - self._last.get(chore, -math.inf) < every:
            return False
        self._last[chore] = now
        return True

    def _gauge_backlog(self) -> None:
        """
        Every :data:`BACKLOG_SECONDS` at the most, the ledger's pending deliveries and the age of the
        oldest, as gauges (:func:`_metrics.backlog`), from one query. Never raises: a database that
        is away costs the gauges, and the claims say so.
        """
        if not _metrics.enabled() or not self._time_for("backlog", BACKLOG_SECONDS):
            return
        from airflow.utils.session import create_session
        from sqlalchemy import func, select

        try:
            with create_session(scoped=False) as session:
                pending, oldest = session.execute(
                    select(func.count(), func.min(Delivery.created_at)).where(Delivery.state == "pending")
                ).one()
        except Exception:
            log.debug("airflow-ordo-hooks: the pending backlog could not be measured", exc_info=True)
            return
        _metrics.backlog(pending, oldest)

    def _pause(self, failures: int) -> float:
        """The poll interval, doubled after each failure in a row up to a minute, so that a database that is away floods the log less."""
        return min(self.poll_seconds * 2**failures, max(self.poll_seconds, 60.0))

    def run_once(self, now: datetime | None = None) -> int:
        """Claim as many due deliveries as there are free senders and hand them to them; return how many."""
        with self._lock:
            free = self.concurrency - self._in_flight
        if free <= 0 or self._pool is None:
            return 0
        from airflow.utils.session import create_session

        now = now or utcnow()
        with create_session(scoped=False) as session:  # committed on leaving: the claims are visible before sending
            # reading who is due, in turn, costs a scan of what is due: in a backlog, read a few polls' worth at once
            if not self._candidates or time.monotonic() - self._candidates_read >= CANDIDATES_SECONDS:
                self._candidates = claims.due_ids(session, now, max(CANDIDATES, free))
                self._candidates_read = time.monotonic()
            rows = claims.claim_due(session, now, lease_seconds=self.lease_seconds, limit=free, candidates=self._candidates)
            jobs = [self._job(row) for row in rows]
        for job in jobs:
            with self._lock:
                self._in_flight += 1
            self._pool.submit(self._send, job)
        return len(jobs)

    @staticmethod
    def _job(row: Delivery) -> _Job:
        try:
            target: str | None = target_of(row)
        except Exception:  # a changed [core] fernet_key: recorded as the attempt's error
            target = None
        return _Job(row.webhook_id, row.event, target, row.payload.encode("utf-8"), row.target_masked)

    def _send(self, job: _Job) -> None:
        try:
            started = utcnow()
            if job.target is None:
                status_code, error, elapsed_ms = None, "the target cannot be decrypted: was [core] fernet_key changed?", 0
            else:
                # whoever recorded it chose the URL: the egress policy decides (a conn: target, and the
                # operations target, are the operator's)
                trusted = job.target.startswith(CONN_PREFIX) or job.target == self._operations_target
                record = deliver(job.target, job.payload, policy=self.policy, webhook_id=job.webhook_id, untrusted=not trusted)
                status_code, error, elapsed_ms = record.status_code, record.error, record.elapsed_ms
            refused = bool(error) and error.startswith(REFUSED_PREFIX)
            _metrics.attempt(SERVER, status_code, error)
            self._record(
                job.webhook_id, status_code=status_code, error=clean_error(error, job.target),
                elapsed_ms=elapsed_ms, at=started, by=SERVER, schedule=self.schedule, refused=refused,
            )
        except Exception:  # its lease passes and it is claimed again
            log.exception("airflow-ordo-hooks: redelivery of %s (webhook-id %s) could not be recorded", job.shown, job.webhook_id)
        finally:
            with self._lock:
                self._in_flight -= 1

    @staticmethod
    def _record(webhook_id: str, **attempt: object) -> None:
        """
        Record an attempt (:func:`claims.finish_attempt`), asking again for up to :data:`RECORD_WITHIN`
        while the database refuses it for now (SQLite's lock, a PostgreSQL failover): an attempt
        made is an attempt the ledger shows, and one whose record failed would be sent again only
        once its lease had passed, late by that lease.
        """
        import tenacity
        from airflow.utils.session import create_session
        from sqlalchemy.exc import OperationalError

        for trying in tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(OperationalError),
            stop=tenacity.stop_after_delay(RECORD_WITHIN),
            wait=tenacity.wait_exponential(multiplier=0.1, max=1.0),
            reraise=True,
        ):
            with trying, create_session(scoped=False) as session:
                claims.finish_attempt(session, webhook_id, **attempt)
