"""How a DAG author attaches hooks: cheek's events to tasks and DAG runs, Ordo's on_exit step to a DAG.

Each function validates its config when the DAG file is parsed (a bad config fails the DAG file,
naming the field) and wires Airflow's callbacks and tasks; what then happens when an event
fires is :mod:`airflow_ordo_hooks.callbacks.job_event`'s.
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_ordo_hooks import _airflow
from airflow_ordo_hooks._events import RUN_EVENTS
from airflow_ordo_hooks.dag_file.job_events import JobEvents, parse_hooks
from airflow_ordo_hooks.callbacks.job_event import JobEventCallback
from airflow_ordo_hooks.callbacks.prepare import PrepareEvents, import_early_in_task_process
from airflow_ordo_hooks.callbacks.recovery import RecoverEarlierTries, RecoverRun
from airflow_ordo_hooks.callbacks.task_log import CopyTryOutput, StopTryOutputCopy
from airflow_ordo_hooks.exceptions import HooksConfigError, OnExitConfigError

if TYPE_CHECKING:
    from airflow.sdk import DAG

    from airflow_ordo_hooks.operators.call_webhook import CallWebhookOperator

_TASK_CALLBACKS = {"success": "on_success_callback", "retry": "on_retry_callback", "failure": "on_failure_callback"}
_RUN_CALLBACKS = {"success": "on_success_callback", "failure": "on_failure_callback"}
_TASK_CALLBACK_NAMES = (*_TASK_CALLBACKS.values(), "on_execute_callback", "on_skipped_callback")
"""Every task callback attribute attach_hooks adds to (see :func:`_callbacks_for`)."""


def _as_list(callbacks: Any) -> list:
    if callbacks is None:
        return []
    return list(callbacks) if isinstance(callbacks, (list, tuple)) else [callbacks]


def _add_trigger_tasks(task: Any, job_events: JobEvents) -> None:
    """A TriggerJobOperator teardown after ``task`` for each outcome-level trigger_job (once each)."""
    # Airflow's TriggerDagRunOperator is slow to import (bench imports): paid only by DAGs that trigger jobs
    from airflow_ordo_hooks.callbacks.trigger import task_id_for
    from airflow_ordo_hooks.operators.trigger_job import TriggerJobOperator

    for action in job_events.actions:
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


def _is_trigger_task(task: Any) -> bool:
    """Whether ``task`` is a ``TriggerJobOperator`` (none can exist before its module is imported)."""
    module = sys.modules.get("airflow_ordo_hooks.operators.trigger_job")
    return module is not None and isinstance(task, module.TriggerJobOperator)


_OURS = (JobEventCallback, RecoverEarlierTries, PrepareEvents)


def _callbacks_for(job_events: JobEvents) -> dict[str, Any]:
    """
    The callbacks a task with no hooks yet gets, by attribute: one instance each, shared by every
    task a DAG-level ``attach_hooks`` reaches (they hold nothing but ``hooks``).
    """
    import_early_in_task_process()
    callbacks: dict[str, Any] = {name: [JobEventCallback(change, job_events)] for change, name in _TASK_CALLBACKS.items()}
    # first, while the try runs, import what its events will need; then, under dag.test(), copy
    # what the try writes to the console for its payloads' log; then the events of a try killed
    # before its callbacks ran: recovered when the next try starts (and when the run settles)
    callbacks["on_execute_callback"] = [PrepareEvents(job_events), CopyTryOutput(), RecoverEarlierTries(job_events)]
    # a skipped try runs none of the callbacks above that stop the copy
    callbacks["on_skipped_callback"] = [StopTryOutputCopy()]
    return callbacks


def _combined(callback: Any, job_events: JobEvents) -> Any:
    """A copy of ``callback`` with ``hooks`` added: the original may be shared with other tasks."""
    combined = copy.copy(callback)
    combined.job_events = callback.job_events | job_events
    return combined


def _attach_to_task(task: Any, job_events: JobEvents, callbacks: dict[str, Any]) -> None:
    """Add ``callbacks`` (:func:`_callbacks_for` ``hooks``) to ``task``'s, or ``hooks`` to those of ours it has."""
    lists = {name: _as_list(getattr(task, name, None)) for name in _TASK_CALLBACK_NAMES}
    if any(isinstance(cb, _OURS) for cbs in lists.values() for cb in cbs):
        # hooks attached before (DAG level, task level): combine, never replace
        for name, cbs in lists.items():
            if any(isinstance(cb, _OURS) for cb in cbs):
                setattr(task, name, [_combined(cb, job_events) if isinstance(cb, _OURS) else cb for cb in cbs])
    else:
        for name, ours in callbacks.items():
            setattr(task, name, [*lists[name], *ours])


def _recover_runs(dag: Any) -> None:
    """Give ``dag`` (once) the callbacks that recover the events of tries killed before theirs ran, when its run settles."""
    if dag is not None and not any(isinstance(cb, RecoverRun) for cb in _as_list(dag.on_failure_callback)):
        for name in _RUN_CALLBACKS.values():
            _airflow.add_dag_callback(dag, name, RecoverRun())


def attach_hooks(target: Any, config: Mapping[str, Any] | str | JobEvents) -> Any:
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
        job_events = parse_hooks(config, where=f"hooks of DAG {target.dag_id!r}")
        tasks = target.tasks
    elif hasattr(task, "task_id") and hasattr(task, "on_failure_callback"):
        job_events = parse_hooks(config, where=f"hooks of task {task.task_id!r}")
        tasks = [task]
    else:
        raise TypeError(f"attach_hooks: expected a task or a DAG, got {target!r}")
    tasks = [t for t in tasks if not _is_trigger_task(t)]  # the hooks' own tasks get no hooks
    callbacks = _callbacks_for(job_events)  # shared by the tasks: they hold nothing but hooks
    for task in tasks:
        _attach_to_task(task, job_events, callbacks)
    if tasks:
        _recover_runs(target if isinstance(target, DAG) else getattr(tasks[0], "dag", None))
    if any(a.action == "trigger_job" for a in job_events.actions):
        for task in tasks:
            _add_trigger_tasks(task, job_events)
    return target


def attach_run_hooks(dag: DAG, config: Mapping[str, Any] | str | JobEvents) -> DAG:
    """
    Attach cheek's ``on_success`` / ``on_error`` to a whole DAG run, through the DAG's own callbacks.

    The payload's ``name`` is the DAG id. These callbacks run in Airflow's DAG processor, so they
    only read their context and send webhooks, each bounded by the delivery budget.

    :param dag: the DAG.
    :param config: cheek's hooks for the run (``on_retries_exhausted`` is refused: a run is not retried).
    :return: ``dag``.
    """
    job_events = parse_hooks(config, where=f"run hooks of DAG {dag.dag_id!r}", events=RUN_EVENTS)
    for change, name in _RUN_CALLBACKS.items():
        ours = [cb for cb in _as_list(getattr(dag, name)) if isinstance(cb, JobEventCallback)]
        if ours:
            ours[0].job_events = ours[0].job_events | job_events
        else:
            _airflow.add_dag_callback(dag, name, JobEventCallback(change, job_events))
    return dag


def attach_on_exit(
    dag: DAG,
    step: Mapping[str, Any] | str | Path,
    *,
    defaults: Mapping[str, Any] | None = None,
    api_conn_id: str | None = None,
) -> CallWebhookOperator:
    """
    Add Ordo's on_exit step to ``dag``: a teardown task after every task the DAG has now.

    Call it once all the DAG's tasks are defined: a task added later is not upstream of the step,
    so the report may be sent before that task ends (and will show it as not yet finished).

    :param dag: the DAG.
    :param step: the ``on_exit`` object, or a whole Ordo recipe with one (its ``steps`` are not
        turned into tasks), as a mapping, JSON text, or the path of a ``.json`` file.
    :param defaults: default values of the step's ``param_keys`` (e.g. ``{"webhook_url": ...}``);
        a key without one must be given in the run's conf.
    :param api_conn_id: the HTTP connection to Airflow's REST API used to read the run; by
        default ``[ordo_hooks] api_conn_id`` (``airflow_api``) where the step runs; see
        :class:`~airflow_ordo_hooks.operators.call_webhook.CallWebhookOperator`.
    :return: the step's task.
    """
    # the operator and its fallback import Airflow's BaseOperator and the report: paid only by DAGs with an on_exit step
    from airflow_ordo_hooks.dag_file.on_exit_step import params_for, parse_on_exit
    from airflow_ordo_hooks.callbacks.on_exit import OnExitFallback
    from airflow_ordo_hooks.operators.call_webhook import CallWebhookOperator

    parsed = parse_on_exit(step, task_ids={t.task_id for t in dag.tasks})
    if parsed.id in dag.task_dict:
        raise OnExitConfigError(f"on_exit.id: {parsed.id!r} is already a task of DAG {dag.dag_id!r}")
    dag.params.update(params_for(parsed, defaults))
    others = list(dag.tasks)
    operator = CallWebhookOperator(step=parsed, api_conn_id=api_conn_id, dag=dag)
    operator.as_teardown()
    others >> operator
    _airflow.add_dag_callback(dag, "on_failure_callback", OnExitFallback(parsed, api_conn_id))
    return operator
