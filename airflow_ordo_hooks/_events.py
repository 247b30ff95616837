"""cheek's job events on Airflow's callbacks.

==================================  ===============================================================
Airflow callback                    cheek events, in this order
==================================  ===============================================================
``on_success_callback``             ``on_success``
``on_retry_callback``               ``on_error`` (a failed try that will be retried)
``on_failure_callback``             ``on_error``, then ``on_retries_exhausted`` if the task has retries
==================================  ===============================================================

"Final" is decided by which callback Airflow fired, not by counting tries, so a task that fails
for good before using its retries (``AirflowFailException``) also fires ``on_retries_exhausted``.
A task that is skipped or ``upstream_failed`` never ran a try: Airflow calls no state-change
callback for it, and cheek has no event for it either.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
import time
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from airflow_ordo_hooks import _settings
from airflow_ordo_hooks._hooks_config import RUN_EVENTS, Hooks, parse_hooks

if TYPE_CHECKING:
    from airflow.sdk import DAG

log = logging.getLogger(__name__)

_CALLBACK_LISTS = {"success": "on_success_callback", "retry": "on_retry_callback", "failure": "on_failure_callback"}


class JobEventCallback:
    """
    The callback that fires cheek's events for one kind of task state change.

    :func:`attach_hooks` puts one in each of a task's success, retry and failure callback lists,
    beside the task's own callbacks; it never raises into Airflow.
    """

    def __init__(self, change: str, hooks: Hooks) -> None:
        self.change = change
        self.hooks = hooks

    def __call__(self, context: Mapping[str, Any]) -> None:
        try:
            fire(_events_for(self.change, context["task"].retries or 0), self.hooks, context, per_attempt=self.change == "retry")
        except Exception:
            log.exception("airflow-ordo-hooks: the %s hooks of this task could not run", self.change)

    def __repr__(self) -> str:
        return f"JobEventCallback({self.change!r}, {len(self.hooks.actions)} actions)"


def _events_for(change: str, retries: int) -> list[str]:
    if change == "success":
        return ["on_success"]
    if change == "failure" and retries > 0:
        return ["on_error", "on_retries_exhausted"]
    return ["on_error"]


def in_dag_processor() -> bool:
    """
    Whether this callback runs in Airflow's DAG processor (the callback of a task that was killed
    or lost its heartbeat), where only connections, variables, task states and XCom reads work:
    any other Task SDK call (an XCom write) hangs the processor until its timeout.
    """
    frame = sys._getframe(1)
    while frame is not None:
        code = frame.f_code
        if code.co_name == "_execute_task_callbacks" and "dag_processing" in code.co_filename:
            return True
        frame = frame.f_back
    return False


def event_log(context: Mapping[str, Any], max_chars: int, *, in_task_process: bool = True) -> str:
    """This try's log, masked and bounded; on failure never empty (the exception and its traceback at the least)."""
    from airflow_ordo_hooks._payloads import failure_text, keep_tail
    from airflow_ordo_hooks._task_log import mask, read_try_log

    text = read_try_log(context["ti"], max_chars, catch_up=in_task_process)
    exception = context.get("exception")
    if exception is not None:
        failure = failure_text(exception)
        last_line = failure.splitlines()[-1] if failure else ""
        if last_line and last_line not in text:
            text = f"{text}\n{failure}" if text else failure
    return keep_tail(mask(text), max_chars)


def event_payload(
    context: Mapping[str, Any], event: str, log_text: str | None = None, triggered: list[str] | None = None
) -> dict[str, Any]:
    """cheek's generic payload of ``event`` for a callback context: a task's, or a DAG run's (which has a ``reason``)."""
    from airflow_ordo_hooks._payloads import job_event_payload, run_event_payload

    now = datetime.now(timezone.utc)
    if "reason" in context:  # only DAG callbacks carry one
        return run_event_payload(context, now=now, triggered=triggered or ())
    if log_text is None:
        log_text = event_log(context, _settings.get("log_max_chars"))
    return job_event_payload(
        context, log=log_text, retries_exhausted=event == "on_retries_exhausted", now=now, triggered=triggered or ()
    )


def fire(events: list[str], hooks: Hooks, context: Mapping[str, Any], *, per_attempt: bool = False) -> None:
    """
    Run the actions of each event in turn: one event's actions concurrently, the next once they
    have finished (C3, C6).

    ``trigger_job`` of an outcome is a task in the graph (``TriggerJobOperator``), which reads the
    payload this callback leaves in an XCom; a per-attempt ``on_error`` and a DAG run's events have
    no such task and start their runs through the REST API.
    """
    from airflow_ordo_hooks.hooks.webhook import DeliveryPolicy, deliver_all
    from airflow_ordo_hooks._payloads import BUILDERS

    events = [e for e in events if hooks.for_event(e)]
    if not events:
        return
    policy = DeliveryPolicy.from_airflow_config()
    run_level = "reason" in context
    processor = not run_level and in_dag_processor()
    deadline = None if run_level or processor else time.monotonic() + _settings.task_callback_seconds()
    # read once for all events
    log_text = None if run_level else event_log(context, _settings.get("log_max_chars"), in_task_process=not processor)
    for event in events:
        if deadline is not None:  # the events of one callback share the time the supervisor gives it
            policy = dataclasses.replace(policy, budget=max(min(policy.budget, deadline - time.monotonic()), 0.5))
        actions = hooks.for_event(event)
        jobs = [a.target for a in actions if a.action == "trigger_job"]
        if not jobs:
            payload = event_payload(context, event, log_text=log_text)
        else:
            from airflow_ordo_hooks.operators.trigger_job import cycle, trigger_via_api

            dag_run = context["dag_run"]
            triggered = [j for j in jobs if not cycle(j, dag_run.dag_id, dag_run.conf)]
            payload = event_payload(context, event, log_text=log_text, triggered=triggered)
            if run_level or per_attempt:
                trigger_via_api(jobs, event, dag_run.dag_id, dag_run.conf, payload, _settings.get("api_conn_id"))
        deliver_all([(a.target, BUILDERS[a.action](payload)) for a in actions if a.action in BUILDERS], policy=policy)


def _as_list(callbacks: Any) -> list:
    if callbacks is None:
        return []
    return list(callbacks) if isinstance(callbacks, (list, tuple)) else [callbacks]


def _add_trigger_tasks(task: Any, hooks: Hooks) -> None:
    """A TriggerJobOperator teardown after ``task`` for each outcome-level trigger_job (once each)."""
    from airflow_ordo_hooks._hooks_config import HooksConfigError
    from airflow_ordo_hooks.operators.trigger_job import TriggerJobOperator, task_id_for

    for action in hooks.actions:
        if action.action != "trigger_job" or (action.event == "on_retries_exhausted" and not task.retries):
            continue
        if getattr(task, "is_mapped", False) or hasattr(task, "partial_kwargs"):
            raise HooksConfigError(f"hooks of task {task.task_id!r}.{action.event}.trigger_job: not supported on a mapped task")
        trigger_task_id = task_id_for(task.task_id, action.event, action.target)
        if task.dag is None or trigger_task_id in task.dag.task_dict:
            continue
        trigger = TriggerJobOperator(source_task_id=task.task_id, event=action.event, trigger_dag_id=action.target, dag=task.dag)
        trigger.as_teardown()
        task >> trigger


def _attach_to_task(task: Any, hooks: Hooks) -> None:
    from airflow_ordo_hooks.operators.trigger_job import TriggerJobOperator

    if isinstance(task, TriggerJobOperator):  # the hooks' own tasks get no hooks
        return
    ours = [cb for name in _CALLBACK_LISTS.values() for cb in _as_list(getattr(task, name)) if isinstance(cb, JobEventCallback)]
    if ours:  # hooks attached before (DAG level, task level): combine, never replace (C5)
        for callback in ours:
            callback.hooks = callback.hooks | hooks
    else:
        for change, name in _CALLBACK_LISTS.items():
            setattr(task, name, [*_as_list(getattr(task, name)), JobEventCallback(change, hooks)])
    if any(a.action == "trigger_job" for a in hooks.actions):
        _add_trigger_tasks(task, hooks)


def attach_hooks(target: Any, config: Mapping[str, Any] | str | Hooks) -> Any:
    """
    Attach cheek's job events to a task, or to every task of a DAG.

    On a DAG this is cheek's schedule level: each task gets these hooks in addition to its own,
    and an action with the same target at both levels is delivered once. Call it after the DAG's
    tasks are defined: tasks added later do not get the DAG's hooks.

    :param target: a task (an operator, a mapped operator, or what a ``@task`` call returns) or a DAG.
    :param config: cheek's hooks, as a mapping or YAML text, e.g.
        ``{"on_error": {"notify_webhook": ["https://example.com/hook"]}}``.
    :return: ``target``, so that it can wrap a task where it is defined.
    :raises HooksConfigError: when the config is not valid (checked when the DAG file is parsed).
    """
    from airflow.sdk import DAG

    task = getattr(target, "operator", target)  # a @task call gives its XComArg
    if isinstance(target, DAG):
        hooks = parse_hooks(config, where=f"hooks of DAG {target.dag_id!r}")
        for task in list(target.tasks):
            _attach_to_task(task, hooks)
    elif hasattr(task, "task_id") and hasattr(task, "on_failure_callback"):
        hooks = parse_hooks(config, where=f"hooks of task {task.task_id!r}")
        _attach_to_task(task, hooks)
    else:
        raise TypeError(f"attach_hooks: expected a task or a DAG, got {target!r}")
    return target


class RunEventCallback:
    """The DAG callback that fires cheek's ``on_success`` / ``on_error`` for a whole DAG run."""

    def __init__(self, change: str, hooks: Hooks) -> None:
        self.change = change
        self.hooks = hooks

    def __call__(self, context: Mapping[str, Any]) -> None:
        try:
            fire(["on_success" if self.change == "success" else "on_error"], self.hooks, context)
        except Exception:
            log.exception("airflow-ordo-hooks: the %s hooks of this DAG run could not run", self.change)


def attach_run_hooks(dag: DAG, config: Mapping[str, Any] | str | Hooks) -> DAG:
    """
    Attach cheek's ``on_success`` / ``on_error`` to a whole DAG run, through the DAG's own callbacks.

    The payload's ``name`` is the DAG id. These callbacks run in Airflow's DAG processor, so they
    only read their context and send webhooks, each bounded by the delivery budget.

    :param dag: the DAG.
    :param config: cheek's hooks for the run (``on_retries_exhausted`` is refused: a run is not retried).
    :return: ``dag``.
    """
    hooks = parse_hooks(config, where=f"run hooks of DAG {dag.dag_id!r}", events=RUN_EVENTS)
    for change, name in (("success", "on_success_callback"), ("failure", "on_failure_callback")):
        ours = [cb for cb in _as_list(getattr(dag, name)) if isinstance(cb, RunEventCallback)]
        if ours:
            ours[0].hooks = ours[0].hooks | hooks
        else:
            add_dag_callback(dag, name, RunEventCallback(change, hooks))
    return dag


def add_dag_callback(dag: Any, name: str, callback: Any) -> None:
    """Append ``callback`` to the DAG's ``name`` callbacks (``on_success_callback`` / ``on_failure_callback``)."""
    setattr(dag, name, [*_as_list(getattr(dag, name)), callback])
    setattr(dag, f"has_{name}", True)  # set by the DAG at creation; the scheduler reads it
