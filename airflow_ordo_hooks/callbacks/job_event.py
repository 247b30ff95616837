"""The one callback wrapper: every event this package sends, from a task, a DAG run or a notifier, goes through here.

Whatever fires it, an event is handled the same way (:func:`fire`): never raising into Airflow,
within the time the callback has (the supervisor kills a task process ``[core]
task_success_overtime`` after its state was reported), reading only what Airflow allows in the
DAG processor (where DAG-run callbacks and the callbacks of killed tasks run): the context,
connections, and the try's log file. Nothing here writes to Airflow. Which callback fires which
event is :mod:`airflow_ordo_hooks._events`'s table.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import time
from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from airflow_ordo_hooks import _events

if TYPE_CHECKING:
    from airflow_ordo_hooks.dag_file.job_events import JobEvents
    from airflow_ordo_hooks.callbacks.message import Message

# A DAG file that attaches hooks imports this module to build its callbacks; what they need when an
# event fires (settings, the try's log, payloads, the parent context, the HTTP layer) is imported by
# the function that uses it, so that parsing a DAG file does not pay for it.

log = logging.getLogger(__name__)

HAND_OFF_RESERVE = 0.25
"""Seconds of ``[ordo_hooks] inline_budget`` kept for handing the deliveries to the ledger."""


class EventCallback:
    """
    What every callback of this package does around its work: it never raises into Airflow, and
    its work gets a deadline, ``[core] task_success_overtime`` less a margin from now.

    Subclasses say what to do in :meth:`run`.
    """

    what = "event"

    def __call__(self, context: Mapping[str, Any]) -> None:
        from airflow_ordo_hooks import _settings

        try:
            with _settings.one_reading():  # one event, one configuration
                if not self.applies(context):
                    return
                deadline = time.monotonic() + _settings.task_callback_seconds()
                self.run(context, deadline)
        except Exception:
            log.exception("airflow-ordo-hooks: the %s could not be handled", self.what)

    def applies(self, context: Mapping[str, Any]) -> bool:
        """Whether there is anything to do for ``context``, decided before the callback's time is read."""
        return True

    def run(self, context: Mapping[str, Any], deadline: float) -> None:
        raise NotImplementedError


def is_run_context(context: Mapping[str, Any]) -> bool:
    """Whether ``context`` is a DAG callback's (a whole run's): only those carry a ``reason``."""
    return "reason" in context


class JobEventCallback(EventCallback):
    """
    The callback that fires cheek's events for one kind of state change of a task, or of a DAG run.

    ``attach_hooks`` puts one in each of a task's success, retry and failure callback lists, and
    ``attach_run_hooks`` one in each of a DAG's success and failure lists, beside the callbacks
    already there.

    :param change: ``success``, ``retry`` or ``failure``.
    :param job_events: the validated hooks to fire.
    """

    def __init__(self, change: str, job_events: JobEvents) -> None:
        self.change = change
        self.job_events = job_events

    @property
    def what(self) -> str:  # type: ignore[override]
        return f"{self.change} hooks"

    def __call__(self, context: Mapping[str, Any]) -> None:
        super().__call__(context)
        if not is_run_context(context):  # under dag.test(), a try whose events sent nothing has its output still copied
            from airflow_ordo_hooks.callbacks.task_log import StopTryOutputCopy

            StopTryOutputCopy()(context)

    def run(self, context: Mapping[str, Any], deadline: float) -> None:
        if is_run_context(context):
            events = _events.run_events(self.change)
        else:
            events = _events.task_events(self.change, context["task"].retries or 0)
        fire(events, self.job_events, context, per_attempt=self.change == "retry", deadline=deadline)

    def __repr__(self) -> str:
        return f"JobEventCallback({self.change!r}, {len(self.job_events.actions)} actions)"


def event_log(context: Mapping[str, Any], max_chars: int) -> str:
    """This try's log, masked and bounded; on failure never empty (the exception and its traceback at the least)."""
    from airflow_ordo_hooks.callbacks import payloads, task_log

    text = task_log.read_try_log(context["ti"], max_chars)
    exception = context.get("exception")
    if exception is not None:
        failure = payloads.failure_text(exception)
        last_line = failure.splitlines()[-1] if failure else ""
        # the log names the exception's class without its module: the error is there once already
        short = f"{type(exception).__name__}: {exception}".splitlines()[0] if isinstance(exception, BaseException) else last_line
        if last_line and last_line not in text and short not in text:
            text = f"{text}\n{failure}" if text else failure
    return payloads.keep_tail(task_log.mask(text), max_chars)


def failed_tasks(context: Mapping[str, Any]) -> list[str] | None:
    """The failed task instances of a DAG callback's run (``task``, ``task[3]``), through the Task SDK; ``None`` if unknown."""
    from airflow_ordo_hooks import _airflow

    dag_run, dag = context["dag_run"], context.get("dag")
    if str(getattr(dag_run.state, "value", dag_run.state)) == "success":
        return []
    if dag is None:
        return None
    try:
        states = _airflow.task_states(context.get("ti"), dag.task_dict, dag_run.dag_id, dag_run.run_id)
    except Exception as exc:  # the payload goes without them
        log.info("airflow-ordo-hooks: could not read the task states of run %s (%s)", dag_run.run_id, exc)
        return None
    return [t if i < 0 else f"{t}[{i}]" for t, i, state in sorted(states) if state == "failed"]


def event_payload(
    context: Mapping[str, Any], event: str, log_text: str | None = None, triggered: list[str] | None = None
) -> dict[str, Any]:
    """cheek's generic payload of ``event`` for a callback context: a task's, or a DAG run's."""
    from airflow_ordo_hooks import _settings
    from airflow_ordo_hooks.callbacks import payloads

    now = datetime.now(timezone.utc)
    if is_run_context(context):
        return payloads.run_event_payload(context, now=now, triggered=triggered or (), failed_tasks=failed_tasks(context))
    if log_text is None:
        log_text = event_log(context, _settings.get("log_max_chars"))
    return payloads.job_event_payload(
        context, log=log_text, retries_exhausted=event == "on_retries_exhausted", now=now, triggered=triggered or ()
    )


def fire(
    events: list[str],
    job_events: JobEvents,
    context: Mapping[str, Any],
    *,
    per_attempt: bool = False,
    deadline: float | None = None,
) -> None:
    """
    Run the actions of each event in turn: one event's actions concurrently, the next once they
    have finished, all of them by ``deadline`` (``time.monotonic()``; by default the time a task
    callback has).

    ``trigger_job`` of an outcome is a task in the graph (``TriggerJobOperator``); a per-attempt
    ``on_error`` and a DAG run's events have no such task and start their runs through the REST API.
    """
    events = [e for e in events if job_events.for_event(e)]
    if not events:
        return
    from airflow_ordo_hooks import _settings

    with _settings.one_reading(), _collector_paused():  # one event, one configuration (a callback's own reading, if it has one)
        _fire(events, job_events, context, per_attempt, deadline)


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """
    Python's garbage collector off while the events are sent, back as it was after: at a try's end
    a collection of the older generations, which the payload's few allocations can set off, scans
    every object the process has made (``python -m bench live`` saw it inside the webhook's
    encoding) and holds the webhook up. What the events leave is collected after, as before.
    """
    import gc

    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _fire(events: list[str], job_events: JobEvents, context: Mapping[str, Any], per_attempt: bool, deadline: float | None) -> None:
    from airflow_ordo_hooks import _settings
    from airflow_ordo_hooks.callbacks import ledger_client, outbox
    from airflow_ordo_hooks.hooks.webhook import DeliveryPolicy

    if deadline is None:
        deadline = time.monotonic() + _settings.task_callback_seconds()
    configured = DeliveryPolicy.from_airflow_config()
    # whether the ledger is in use (its connection looked up) is asked once it matters: after a
    # success's webhooks are sent, before a failure's (which asks the ledger what it holds)
    wanted = _settings.get("ledger")
    ledger = functools.cache(ledger_client.in_use) if wanted else lambda: False
    # with the ledger, what a try's slot pays for its events is bounded by the inline budget, the hand-off included
    inline_end = time.monotonic() + _settings.get("inline_budget") - HAND_OFF_RESERVE if wanted else deadline
    run_level = is_run_context(context)
    log_text = None if run_level else event_log(context, _settings.get("log_max_chars"))  # read once for all events
    for event in events:
        payload = _event_payload_and_runs(context, event, job_events, log_text, per_attempt or run_level, deadline)
        messages = _messages(context, event, job_events, payload)
        # a task's on_success runs once, in its process; a failure's or a run's event may run twice
        outbox.send(
            messages, policy=configured, by=outbox.DAG_PROCESSOR if run_level else outbox.WORKER, deadline=deadline,
            inline_end=inline_end, ledger=ledger, drop_held=event != "on_success" or run_level,
        )


def _event_payload_and_runs(
    context: Mapping[str, Any], event: str, job_events: JobEvents, log_text: str | None, starts_runs: bool, deadline: float
) -> dict[str, Any]:
    """
    ``event``'s payload; its ``triggered`` names the ``trigger_job`` targets that close no cycle.
    Where no task of the graph starts them (a per-attempt ``on_error``, a DAG run's events), they
    are started here, and ``triggered`` names those that were.
    """
    from airflow_ordo_hooks import _settings
    from airflow_ordo_hooks.callbacks.trigger import cycle, start_runs

    jobs = [a.target for a in job_events.for_event(event) if a.action == "trigger_job"]
    if not jobs:
        return event_payload(context, event, log_text=log_text)
    dag_run = context["dag_run"]
    closing = {j: chain for j in jobs if (chain := cycle(j, dag_run.conf, dag_run.dag_id, dag_run.run_id))}
    triggered = [j for j in jobs if j not in closing]
    payload = event_payload(context, event, log_text=log_text, triggered=triggered)
    if not starts_runs:  # an outcome's trigger_job is a task of the graph, which says so itself
        return payload
    for target, chain in closing.items():
        log.error("trigger_job: not starting %s again, it would close the cycle %s", target, " -> ".join(chain))
    started = start_runs(
        triggered, event, dag_run.dag_id, dag_run.conf, payload, _settings.get("api_conn_id"), deadline=deadline,
        parent=_parent_try(context),
    )
    return {**payload, "triggered": [j for j in triggered if j in started]}


def _messages(context: Mapping[str, Any], event: str, job_events: JobEvents, payload: Mapping[str, Any]) -> list[Message]:
    """One message per webhook action of ``event``: the action's body built from ``payload``, with its ``webhook-id``."""
    from airflow_ordo_hooks import _event_id
    from airflow_ordo_hooks.callbacks import outbox, payloads
    from airflow_ordo_hooks.hooks.webhook import encode

    facts = event_facts(context)
    return [
        outbox.Message(
            webhook_id=_event_id.webhook_id(**facts, event=event, target=a.target), **facts, event=event, action=a.action,
            target=a.target, body=encode(payloads.BUILDERS[a.action](payload)), source="callback",
        )
        for a in job_events.for_event(event)
        if a.action in payloads.BUILDERS
    ]


def event_facts(context: Mapping[str, Any]) -> dict[str, Any]:
    """What identifies an event's try (or run): ``dag_id``, ``run_id``, ``task_id`` (``None`` for a run), ``map_index``, ``try_number``."""
    dag_run = context["dag_run"]
    if is_run_context(context):
        return {"dag_id": dag_run.dag_id, "run_id": dag_run.run_id, "task_id": None, "map_index": -1, "try_number": 0}
    ti = context["ti"]
    map_index = getattr(ti, "map_index", -1)
    return {
        "dag_id": ti.dag_id, "run_id": ti.run_id, "task_id": ti.task_id,
        "map_index": -1 if map_index is None else map_index, "try_number": ti.try_number,
    }


def _parent_try(context: Mapping[str, Any]) -> tuple[str, str | None, int, int]:
    """``(run_id, task_id, map_index, try_number)`` of the try (or the run: no task, try 0) an event is of."""
    facts = event_facts(context)
    return facts["run_id"], facts["task_id"], facts["map_index"], facts["try_number"]
