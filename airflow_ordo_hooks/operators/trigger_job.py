"""``TriggerJobOperator``: cheek's ``trigger_job`` of an outcome, as a task of the graph that starts the child run.

``attach_hooks`` adds one per outcome-level ``trigger_job`` (``on_success``; ``on_error`` of the
final failure; ``on_retries_exhausted``) as a teardown of the task it watches: it shows in the
graph, retries like any task, needs no credentials, and does not count for the run's state. It
checks that its event really fired (the watched task ended ``success`` / ``failed``) and skips
itself otherwise. It builds the event's payload itself, at once, from what it can read of the
ended task (the task's callback may never run: a killed task gets none): through the REST API on
``[ordo_hooks] api_conn_id`` when that connection exists (the try's details and log), else from
the task's state. What the child gets, and the cycle guard, are :mod:`airflow_ordo_hooks.callbacks.trigger`'s.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator

from airflow_ordo_hooks import _airflow, _settings
from airflow_ordo_hooks.callbacks.ended_try import EndedTry, payload
from airflow_ordo_hooks.callbacks.task_log import log_file, read_try_log, rest_try_log
from airflow_ordo_hooks.callbacks.trigger import child_conf, child_run_id, cycle, task_id_for

log = logging.getLogger(__name__)


class TriggerJobOperator(TriggerDagRunOperator):
    """
    Start a run of ``trigger_dag_id`` when ``event`` of task ``source_task_id`` has fired, with the
    parent's payload in the child's conf. ``attach_hooks`` creates these for outcome-level
    ``trigger_job`` actions; it skips itself when the event did not fire, and when the target is
    already in the chain of parents. It never waits: the payload is built from Airflow's REST API
    (connection ``[ordo_hooks] api_conn_id``) when it can be read, else from the task's state, and
    its log then says which fields are null or derived. The child's run id, unless
    ``trigger_run_id`` is given, is ``trigger_job__<event>__<hash>`` of this try: its context is
    signed for that run alone.

    :param source_task_id: the task whose event this trigger follows.
    :param event: ``on_success``, ``on_error`` (the final failure) or ``on_retries_exhausted``.
    :param trigger_dag_id: the DAG to start.
    """

    ui_color = "#fff4e5"

    def __init__(self, *, source_task_id: str, event: str, trigger_dag_id: str, **kwargs: Any) -> None:
        kwargs.setdefault("task_id", task_id_for(source_task_id, event, trigger_dag_id))
        kwargs.setdefault("retries", 1)
        super().__init__(trigger_dag_id=trigger_dag_id, wait_for_completion=False, **kwargs)
        self.source_task_id = source_task_id
        self.event = event

    def execute(self, context: Any) -> Any:
        from airflow.sdk.exceptions import AirflowSkipException

        ti, dag_run = context["ti"], context["dag_run"]
        states = {(t, m): st for t, m, st in _airflow.task_states(ti, {self.source_task_id}, ti.dag_id, ti.run_id)}
        state = states.get((self.source_task_id, -1))
        wanted = "success" if self.event == "on_success" else "failed"
        if state != wanted:
            raise AirflowSkipException(f"{self.source_task_id} ended {state}: its {self.event} did not fire")
        closed = cycle(self.trigger_dag_id, dag_run.conf, ti.dag_id, ti.run_id)
        if closed:
            log.error("trigger_job: not starting %s again, it would close the cycle %s", self.trigger_dag_id, " -> ".join(closed))
            raise AirflowSkipException(f"cycle {' -> '.join(closed)}")
        # the child's run id is chosen here, not by Airflow, so that its context is signed for that run
        if not self.trigger_run_id:
            self.trigger_run_id = child_run_id(self.event, ti.dag_id, ti.run_id, ti.task_id, ti.map_index, ti.try_number, self.trigger_dag_id)
        self.conf = child_conf(
            self.event, dag_run.conf, ti.dag_id, ti.run_id, self._parent_payload(context, state),
            target=self.trigger_dag_id, target_run_id=str(self.trigger_run_id),
        )
        log.info("trigger_job: starting %s (%s of %s)", self.trigger_dag_id, self.event, self.source_task_id)
        return super().execute(context)

    def _parent_payload(self, context: Any, state: str) -> dict[str, Any]:
        """
        The payload of the watched task's event, built here from what can be read once that task has
        ended: its callback may never run (a killed task), so nothing is waited for.
        """
        from airflow.sdk import BaseHook

        ti = context["ti"]
        retries = self.dag.get_task(self.source_task_id).retries or 0
        max_chars = _settings.get("log_max_chars")
        conn_id = _settings.get("api_conn_id")
        try:
            BaseHook.get_connection(conn_id)
        except Exception:
            ended, missing = None, f"there is no connection {conn_id!r} to Airflow's REST API"
        else:
            try:
                ended = _read_through_api(conn_id, ti.dag_id, ti.run_id, self.source_task_id, state, max_chars)
            except Exception as exc:
                ended, missing = None, f"Airflow's REST API (connection {conn_id!r}) failed: {exc}"
        if ended is None:
            ended = _read_locally(ti, self.source_task_id, state, retries, max_chars)
            log.info(
                "trigger_job: %s, so %s's %s payload is built from its state%s: its times, duration and max_tries are null%s",
                missing, self.source_task_id, self.event, " and its log file" if ended.log else "",
                ", try_number too, and retry_attempt is derived" if ended.try_number is None else "",
            )
        if state != "success":  # a failure's log is never empty
            ended = ended.logged("{task_id} ended {state}; its log could not be read")
        return payload(context["dag_run"], ended, event=self.event, retries=retries, triggered=[self.trigger_dag_id])


def _read_through_api(conn_id: str, dag_id: str, run_id: str, task_id: str, state: str, max_chars: int) -> EndedTry:
    """A task instance's last try and its log (tail, masked), through Airflow's REST API v2."""
    from airflow_ordo_hooks.hooks.airflow_api import AirflowApiHook

    api = AirflowApiHook(conn_id)
    path = f"/api/v2/dags/{quote(dag_id, safe='')}/dagRuns/{quote(run_id, safe='')}/taskInstances/{quote(task_id, safe='')}"
    ti = api.get(path)
    try_number = ti.get("try_number")
    log_text = rest_try_log(api, path, try_number, ti.get("map_index", -1), max_chars) if try_number else ""
    return EndedTry.from_rest(ti, state=state, log=log_text)


class _TryOf:
    """The watched task's try ``try_number``, as the log file name template sees a task instance."""

    def __init__(self, ti: Any, task_id: str, try_number: int) -> None:
        self._ti, self.task_id, self.try_number, self.map_index = ti, task_id, try_number, -1

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ti, name)


def _read_locally(ti: Any, task_id: str, state: str, retries: int, max_chars: int) -> EndedTry:
    """The watched task's last try and its log, when that log's file is on this machine (a worker that ran it, or a shared log folder)."""
    for try_number in range(retries + 1, 0, -1):
        attempt = _TryOf(ti, task_id, try_number)
        if log_file(attempt) is not None:
            return EndedTry(task_id, state, try_number=try_number, log=read_try_log(attempt, max_chars, catch_up=False))
    return EndedTry(task_id, state)
