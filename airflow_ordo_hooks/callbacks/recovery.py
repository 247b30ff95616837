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
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from airflow_ordo_hooks.callbacks.job_event import EventCallback, JobEventCallback

if TYPE_CHECKING:
    from airflow_ordo_hooks._hooks_config import Hooks

log = logging.getLogger(__name__)

GRACE_MARGIN = 5.0
"""Seconds added to ``[core] task_success_overtime`` before a recovered event may be sent."""

_CHANGE_OF_FINAL_STATE = {"success": "success", "failed": "failure"}


class RecoverEarlierTries(EventCallback):
    """
    A hooked task's ``on_execute_callback``: when a retry starts, the events of the tries before it
    that the ledger does not hold (their process was killed before its callbacks ran).

    :param hooks: the task's hooks.
    """

    what = "recovery of earlier tries' events"

    def __init__(self, hooks: Hooks) -> None:
        self.hooks = hooks

    def applies(self, context: Mapping[str, Any]) -> bool:
        return (context["ti"].try_number or 0) > 1 and bool(self.hooks)  # a first try has no earlier one

    def run(self, context: Mapping[str, Any], deadline: float) -> None:
        from airflow_ordo_hooks import _ledger

        if not _ledger.in_use():
            return
        ti = context["ti"]
        task = context["task"]
        map_index = -1 if getattr(ti, "map_index", None) is None else ti.map_index
        recover(
            ti.dag_id, ti.run_id, {task.task_id: (self.hooks, task.retries or 0)},
            only=[(task.task_id, map_index)], before_try=ti.try_number, deadline=deadline, dag_run=context["dag_run"],
        )

    def __repr__(self) -> str:
        return f"RecoverEarlierTries({len(self.hooks.actions)} actions)"


class RecoverRun(EventCallback):
    """A DAG's success and failure callback: once the run settles, the events of every try of its hooked tasks that the ledger does not hold."""

    what = "recovery of the run's events"

    def run(self, context: Mapping[str, Any], deadline: float) -> None:
        from airflow_ordo_hooks import _ledger

        dag, dag_run = context["dag"], context["dag_run"]
        hooked = {t.task_id: (h, t.retries or 0) for t in dag.tasks if (h := hooks_of(t))}
        if not hooked or not _ledger.in_use():
            return
        recover(dag_run.dag_id, dag_run.run_id, hooked, deadline=deadline, dag_run=dag_run)

    def __repr__(self) -> str:
        return "RecoverRun()"


def hooks_of(task: Any) -> Hooks | None:
    """The hooks ``attach_hooks`` gave ``task`` (task and DAG level combined), if any."""
    callbacks = getattr(task, "on_failure_callback", None)
    for callback in callbacks if isinstance(callbacks, (list, tuple)) else [callbacks]:
        if isinstance(callback, JobEventCallback):
            return callback.hooks
    return None


def recover(
    dag_id: str,
    run_id: str,
    hooked: Mapping[str, tuple[Hooks, int]],
    *,
    deadline: float,
    dag_run: Any,
    only: Sequence[tuple[str, int]] | None = None,
    before_try: int | None = None,
) -> int:
    """
    Hand the ledger the events of ended tries of ``hooked`` tasks that it does not hold.

    :param hooked: ``{task_id: (hooks, retries)}``.
    :param only: ``(task_id, map_index)`` of the task instances to look at; by default all of the run's.
    :param before_try: look only at tries before this one (a retry's own start).
    :return: how many deliveries were handed over.
    """
    from airflow_ordo_hooks import _event_id, _events, _ledger, _outbox, _payloads, _settings
    from airflow_ordo_hooks.hooks.webhook import encode

    api = _ledger.new_client(deadline)
    base = f"/api/v2/dags/{quote(dag_id, safe='')}/dagRuns/{quote(run_id, safe='')}/taskInstances"
    if only is None:
        instances = [(ti["task_id"], ti.get("map_index", -1), ti.get("try_number") or 0)
                     for ti in api.pages(base, "task_instances") if ti["task_id"] in hooked]
    else:
        instances = [(task_id, map_index, before_try or 0) for task_id, map_index in only]
    wanted: dict[str, tuple[dict[str, Any], str, Any, bool]] = {}
    for task_id, map_index, last_try in instances:
        if last_try < 1 or (before_try is not None and last_try < 2):
            continue
        hooks, retries = hooked[task_id]
        tries = api.get(f"{base}/{quote(task_id, safe='')}{'' if map_index < 0 else f'/{map_index}'}/tries")["task_instances"]
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
                for action in hooks.for_event(event):
                    if action.action in _payloads.BUILDERS:
                        wid = _event_id.webhook_id(dag_id, run_id, task_id, map_index, number, event, action.target)
                        wanted[wid] = (t, event, action, final)
    if not wanted:
        return 0
    missing = [wid for wid in wanted if wid not in _ledger.existing(wanted, dag_id=dag_id, api=api)]
    if not missing:
        return 0
    overtime = _settings.task_success_overtime()
    logs: dict[tuple[str, int, int], str] = {}
    items = []
    for wid in missing:
        t, event, action, final = wanted[wid]
        key = (t["task_id"], t.get("map_index", -1), t["try_number"])
        if key not in logs:
            logs[key] = _try_log(api, base, *key, max_chars=_settings.get("log_max_chars"))
        hooks, retries = hooked[t["task_id"]]
        # a final try's trigger_job is a task of the graph (TriggerJobOperator), which ran; a retried
        # try's is started by its callback, which did not
        triggered = [a.target for a in hooks.for_event(event) if a.action == "trigger_job"] if final else []
        payload = try_payload(dag_run, t, event, logs[key], retries, triggered)
        ended = _time(t.get("end_date")) or datetime.now(timezone.utc)
        not_before = max(ended + timedelta(seconds=overtime + GRACE_MARGIN), datetime.now(timezone.utc))
        items.append(_outbox.Message(
            webhook_id=wid, dag_id=dag_id, run_id=run_id, task_id=t["task_id"], map_index=key[1], try_number=key[2],
            event=event, action=action.action, target=action.target, body=encode(_payloads.BUILDERS[action.action](payload)),
            source="recovery", not_before=not_before.isoformat(timespec="milliseconds"),
        ))
    if _outbox.hand_over(items, api=api):
        log.warning(
            "airflow-ordo-hooks: %d event delivery(ies) of tries that ended without running their callbacks "
            "(killed, out of memory, worker lost) handed to the ledger: %s",
            len(items), ", ".join(sorted({f"{i.task_id} try {i.try_number} {i.event}" for i in items})),
        )
    return len(items)


def _time(value: datetime | str | None) -> datetime | None:
    if isinstance(value, datetime) or not value:
        return value or None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _try_log(api: Any, base: str, task_id: str, map_index: int, try_number: int, *, max_chars: int) -> str:
    from airflow_ordo_hooks._task_log import rest_try_log

    try:
        return rest_try_log(api, f"{base}/{quote(task_id, safe='')}", try_number, map_index, max_chars)
    except Exception as exc:
        return f"the log of try {try_number} could not be read: {exc}"


def try_payload(
    dag_run: Any, t: Mapping[str, Any], event: str, log_text: str, retries: int, triggered: Sequence[str]
) -> dict[str, Any]:
    """
    cheek's payload of ``event`` for a try that has ended, from what can be read of it afterwards.

    :param t: the try as the REST API gives a task instance: ``task_id``, ``state``, ``try_number``,
        ``max_tries``, ``map_index``, ``start_date`` and ``end_date`` (ISO 8601, or datetimes).
    :param log_text: its log, bounded and masked ("" when unknown).
    """
    from airflow.sdk import conf

    from airflow_ordo_hooks._payloads import log_url, watched_task_payload

    state = t.get("state") or "failed"
    payload = watched_task_payload(
        dag_run,
        task_id=t["task_id"],
        state=state,
        log=log_text or f"{t['task_id']} try {t.get('try_number')} ended {state} without running its callbacks",
        retries_exhausted=event == "on_retries_exhausted",
        retries=retries,
        triggered=triggered,
        try_number=t.get("try_number"),
        max_tries=t.get("max_tries"),
        map_index=t.get("map_index", -1),
        start_date=_time(t.get("start_date")),
        end_date=_time(t.get("end_date")),
        log_url=log_url(conf.get("api", "base_url", fallback="http://localhost:8080/"), dag_run.dag_id, dag_run.run_id,
                        t["task_id"], t.get("map_index", -1), t.get("try_number")),
    )
    return payload
