"""Events of tries whose callbacks never ran (the process killed, out of memory, its worker lost), recovered.

When a task process is killed, its supervisor reports the try ``failed`` or ``up_for_retry``
and no callback runs, so the try's ``on_error`` (and ``on_retries_exhausted``) would be lost.
``attach_hooks`` adds two recoveries, both of which hand what is missing to the delivery ledger
(the API server then sends it, with the ``webhook-id`` the callback would have used, so nothing
is sent twice):

- when a retry starts (``on_execute_callback``, in the worker): the events of the tries before it;
- when the run settles (the DAG's success and failure callbacks, in the DAG processor): the events
  of every try of every hooked task of the run.

An event is recovered only when the ledger holds no delivery of it, and is sent no earlier than
``[core] task_success_overtime`` (and a margin) after its try ended: a callback still running
then has been killed by its supervisor. The payload is cheek's, built from what Airflow's REST
API says of the try: its state, times and log; ``status`` is the signal that killed it as a
negative number (-9 for SIGKILL) where the log names one, else -1. Its ``triggered`` names the
outcome's ``trigger_job`` targets, which the graph's ``TriggerJobOperator`` tasks start; a retried
try's own ``trigger_job`` (started by its callback) is not started for it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import quote

from airflow_ordo_hooks.callbacks.job_event import EventCallback, JobEventCallback

if TYPE_CHECKING:
    from airflow_ordo_hooks.callbacks.ended_try import EndedTry
    from airflow_ordo_hooks.dag_file.job_events import JobEvents
    from airflow_ordo_hooks.callbacks.message import Message

# A DAG file that attaches hooks imports this module for its callbacks' classes; what recovering
# needs (dataclasses and the modules built on it) is imported when a recovery runs.

log = logging.getLogger(__name__)

GRACE_MARGIN = 5.0
"""Seconds added to ``[core] task_success_overtime`` before a recovered event may be sent."""

_CHANGE_OF_FINAL_STATE = {"success": "success", "failed": "failure"}


class RecoverEarlierTries(EventCallback):
    """
    A hooked task's ``on_execute_callback``: when a retry starts, the events of the tries before it
    that the ledger does not hold (their process was killed before its callbacks ran).

    :param job_events: the task's hooks.
    """

    what = "recovery of earlier tries' events"

    def __init__(self, job_events: JobEvents) -> None:
        self.job_events = job_events

    def applies(self, context: Mapping[str, Any]) -> bool:
        return (context["ti"].try_number or 0) > 1 and bool(self.job_events)  # a first try has no earlier one

    def run(self, context: Mapping[str, Any], deadline: float) -> None:
        from airflow_ordo_hooks.callbacks import ledger_client

        if not ledger_client.in_use():
            return
        ti = context["ti"]
        task = context["task"]
        map_index = -1 if getattr(ti, "map_index", None) is None else ti.map_index
        recover(
            ti.dag_id, ti.run_id, {task.task_id: (self.job_events, task.retries or 0)},
            only=[(task.task_id, map_index)], before_try=ti.try_number, deadline=deadline, dag_run=context["dag_run"],
        )

    def __repr__(self) -> str:
        return f"RecoverEarlierTries({len(self.job_events.actions)} actions)"


class RecoverRun(EventCallback):
    """A DAG's success and failure callback: once the run settles, the events of every try of its hooked tasks that the ledger does not hold."""

    what = "recovery of the run's events"

    def run(self, context: Mapping[str, Any], deadline: float) -> None:
        from airflow_ordo_hooks.callbacks import ledger_client

        dag, dag_run = context["dag"], context["dag_run"]
        hooked = {t.task_id: (h, t.retries or 0) for t in dag.tasks if (h := attached_hooks(t))}
        if not hooked or not ledger_client.in_use():
            return
        recover(dag_run.dag_id, dag_run.run_id, hooked, deadline=deadline, dag_run=dag_run)

    def __repr__(self) -> str:
        return "RecoverRun()"


def attached_hooks(task: Any) -> JobEvents | None:
    """The hooks ``attach_hooks`` gave ``task`` (task and DAG level combined), if any."""
    callbacks = getattr(task, "on_failure_callback", None)
    for callback in callbacks if isinstance(callbacks, (list, tuple)) else [callbacks]:
        if isinstance(callback, JobEventCallback):
            return callback.job_events
    return None


class _Wanted(NamedTuple):
    """An event of an ended try that should be in the ledger: the try, the event, the action, and whether the try was the task's last."""

    ended: EndedTry
    event: str
    action: Any
    final: bool


def recover(
    dag_id: str,
    run_id: str,
    hooked: Mapping[str, tuple[JobEvents, int]],
    *,
    deadline: float,
    dag_run: Any,
    only: Sequence[tuple[str, int]] | None = None,
    before_try: int | None = None,
) -> int:
    """
    Hand the ledger the events of ended tries of ``hooked`` tasks that it does not hold.

    :param hooked: ``{task_id: (job_events, retries)}``.
    :param only: ``(task_id, map_index)`` of the task instances to look at; by default all of the run's.
    :param before_try: look only at tries before this one (a retry's own start).
    :return: how many deliveries were handed over.
    """
    from airflow_ordo_hooks import _metrics
    from airflow_ordo_hooks.callbacks import ledger_client, outbox

    api = ledger_client.new_client(deadline)
    base = f"/api/v2/dags/{quote(dag_id, safe='')}/dagRuns/{quote(run_id, safe='')}/taskInstances"
    if only is None:
        instances = [(ti["task_id"], ti.get("map_index", -1), ti.get("try_number") or 0)
                     for ti in api.pages(base, "task_instances") if ti["task_id"] in hooked]
    else:
        instances = [(task_id, map_index, before_try or 0) for task_id, map_index in only]
    wanted: dict[str, _Wanted] = {}
    for task_id, map_index, last_try in instances:
        if last_try >= 1 and (before_try is None or last_try >= 2):
            wanted.update(_wanted_of_task(api, base, dag_id, run_id, hooked[task_id], task_id, map_index, last_try, before_try))
    held = ledger_client.existing(wanted, dag_id=dag_id, api=api) if wanted else set()
    missing = [w for wid, w in wanted.items() if wid not in held]
    if not missing:
        return 0
    messages = _messages(api, base, dag_run, hooked, missing)
    if outbox.hand_over(messages, api=api):
        _metrics.recovered(messages, outbox.WORKER if before_try is not None else outbox.DAG_PROCESSOR)  # a retry's start, or the run's end
        log.warning(
            "airflow-ordo-hooks: %d event delivery(ies) of tries that ended without running their callbacks "
            "(killed, out of memory, worker lost) handed to the ledger: %s",
            len(messages), ", ".join(sorted({f"{m.task_id} try {m.try_number} {m.event}" for m in messages})),
        )
    return len(messages)


def _wanted_of_task(
    api: Any, base: str, dag_id: str, run_id: str, hooked: tuple[JobEvents, int], task_id: str, map_index: int,
    last_try: int, before_try: int | None,
) -> dict[str, _Wanted]:
    """The events, by ``webhook-id``, that the tries of one task instance fired, or would have had their callbacks run."""
    from airflow_ordo_hooks import _event_id, _events
    from airflow_ordo_hooks.callbacks import payloads
    from airflow_ordo_hooks.callbacks.ended_try import EndedTry

    job_events, retries = hooked
    tries = api.get(f"{base}/{quote(task_id, safe='')}{'' if map_index < 0 else f'/{map_index}'}/tries")["task_instances"]
    wanted = {}
    for t in tries:
        number, state = t.get("try_number") or 0, t.get("state")
        if before_try is not None and number >= before_try:
            continue
        final = not (number < last_try or state == "up_for_retry")
        if not final:
            events = ["on_error"] if state in ("failed", "up_for_retry") else []
        else:
            change = _CHANGE_OF_FINAL_STATE.get(state or "")
            events = _events.task_events(change, retries) if change else []
        for event in events:
            for action in job_events.for_event(event):
                if action.action in payloads.BUILDERS:
                    wid = _event_id.webhook_id(dag_id, run_id, task_id, map_index, number, event, action.target)
                    wanted[wid] = _Wanted(EndedTry.from_rest(t), event, action, final)
    return wanted


def _messages(api: Any, base: str, dag_run: Any, hooked: Mapping[str, tuple[JobEvents, int]], missing: Sequence[_Wanted]) -> list[Message]:
    """
    A message per missing event, its payload built from the try's log (read once a try), sent no
    earlier than ``[core] task_success_overtime`` (and a margin) after the try ended.
    """
    import dataclasses

    from airflow_ordo_hooks import _event_id, _settings

    from airflow_ordo_hooks.callbacks import payloads
    from airflow_ordo_hooks.callbacks.ended_try import NO_CALLBACKS, payload
    from airflow_ordo_hooks.callbacks.message import Message
    from airflow_ordo_hooks.hooks.webhook import encode

    overtime = _settings.task_success_overtime()
    logs: dict[tuple[str, int, int | None], str] = {}
    messages = []
    for ended, event, action, final in missing:
        key = (ended.task_id, ended.map_index, ended.try_number)
        if key not in logs:
            logs[key] = _try_log(api, base, ended.task_id, ended.map_index, ended.try_number or 0,
                                 max_chars=_settings.get("log_max_chars"))
        job_events, retries = hooked[ended.task_id]
        # a final try's trigger_job is a task of the graph (TriggerJobOperator), which ran; a retried
        # try's is started by its callback, which did not
        triggered = [a.target for a in job_events.for_event(event) if a.action == "trigger_job"] if final else []
        logged = dataclasses.replace(ended, log=logs[key]).logged(NO_CALLBACKS)
        body = encode(payloads.BUILDERS[action.action](payload(dag_run, logged, event=event, retries=retries, triggered=triggered)))
        not_before = max((ended.end_date or datetime.now(timezone.utc)) + timedelta(seconds=overtime + GRACE_MARGIN),
                         datetime.now(timezone.utc))
        messages.append(Message(
            webhook_id=_event_id.webhook_id(dag_run.dag_id, dag_run.run_id, ended.task_id, ended.map_index, ended.try_number or 0,
                                            event, action.target),
            dag_id=dag_run.dag_id, run_id=dag_run.run_id, task_id=ended.task_id, map_index=ended.map_index,
            try_number=ended.try_number or 0, event=event, action=action.action, target=action.target, body=body,
            source="recovery", not_before=not_before.isoformat(timespec="milliseconds"),
        ))
    return messages


def _try_log(api: Any, base: str, task_id: str, map_index: int, try_number: int, *, max_chars: int) -> str:
    from airflow_ordo_hooks.callbacks.task_log import rest_try_log

    try:
        return rest_try_log(api, f"{base}/{quote(task_id, safe='')}", try_number, map_index, max_chars)
    except Exception as exc:
        return f"the log of try {try_number} could not be read: {exc}"
