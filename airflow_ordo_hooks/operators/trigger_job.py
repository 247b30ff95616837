"""cheek's ``trigger_job``: start a run of another DAG when an event fires, with the parent's context.

- **Outcome-level** triggers (``on_success``; ``on_error`` of the final failure;
  ``on_retries_exhausted``) are :class:`TriggerJobOperator` tasks that ``attach_hooks`` adds to the
  DAG as teardowns of the task they watch: they show in the graph, retry like any task, need no
  credentials, and do not count for the run's state. Each checks that its event really fired
  (the watched task ended ``success`` / ``failed``) and skips itself otherwise.
- **Per-attempt** triggers (``on_error`` of a try that will be retried, and the events of a whole
  DAG run, whose callbacks run in the DAG processor) cannot be tasks: they go through Airflow's
  public REST API (``POST /api/v2/dags/{dag_id}/dagRuns``) on the HTTP connection ``airflow_api``.

The child's ``conf`` carries, under the key ``airflow_ordo_hooks``, ``triggered_by``
(``job[<parent>]`` or ``retries_exhausted[<parent>]``), ``triggered_by_job_run`` (the parent's
payload for that event) and ``chain`` (the DAG ids that led to it). A DAG already in the chain is
not triggered again: cheek has no such guard and recurses forever.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator

from airflow_ordo_hooks._payloads import CONF_KEY, parent_context

log = logging.getLogger(__name__)

PAYLOAD_XCOM_KEY = "airflow_ordo_hooks.payload.{event}"
"""The XCom under which a task's callback leaves its event's payload for the trigger tasks."""
_PAYLOAD_WAIT = 30.0  # the callback pushes the payload first thing; the trigger task may start before it has


def triggered_by(event: str, parent: str) -> str:
    """cheek's ``triggered_by`` of a child: ``retries_exhausted[<parent>]`` or ``job[<parent>]``."""
    return f"retries_exhausted[{parent}]" if event == "on_retries_exhausted" else f"job[{parent}]"


def chain_of(conf: Mapping[str, Any] | None, dag_id: str) -> list[str]:
    """The DAG ids from the first parent down to ``dag_id``, as the run's conf records them."""
    chain = parent_context(conf).get("chain")
    return [*(chain if isinstance(chain, list) else []), dag_id]


def child_conf(event: str, dag_id: str, parent_conf: Mapping[str, Any] | None, payload: Mapping[str, Any]) -> dict[str, Any]:
    """The conf of a run started by ``trigger_job``: the parent's context under one reserved key."""
    return {
        CONF_KEY: {
            "triggered_by": triggered_by(event, dag_id),
            "triggered_by_job_run": dict(payload),
            "chain": chain_of(parent_conf, dag_id),
        }
    }


def cycle(target: str, dag_id: str, parent_conf: Mapping[str, Any] | None) -> list[str] | None:
    """The chain that ``target`` would close, if it is already in it (``None`` when starting it is safe)."""
    chain = chain_of(parent_conf, dag_id)
    return [*chain, target] if target in chain else None


def task_id_for(source_task_id: str, event: str, target: str) -> str:
    return f"{source_task_id}__{event}__trigger_{target}"


class TriggerJobOperator(TriggerDagRunOperator):
    """
    Start a run of ``trigger_dag_id`` when ``event`` of task ``source_task_id`` has fired, with the
    parent's payload in the child's conf. ``attach_hooks`` creates these for outcome-level
    ``trigger_job`` actions; it skips itself when the event did not fire, and when the target is
    already in the chain of parents.

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

        from airflow_ordo_hooks._run_state import task_states

        ti, dag_run = context["ti"], context["dag_run"]
        state = task_states(ti.dag_id, ti.run_id).get(self.source_task_id)
        wanted = "success" if self.event == "on_success" else "failed"
        if state != wanted:
            raise AirflowSkipException(f"{self.source_task_id} ended {state}: its {self.event} did not fire")
        closed = cycle(self.trigger_dag_id, ti.dag_id, dag_run.conf)
        if closed:
            log.error("trigger_job: not starting %s again, it would close the cycle %s", self.trigger_dag_id, " -> ".join(closed))
            raise AirflowSkipException(f"cycle {' -> '.join(closed)}")
        self.conf = child_conf(self.event, ti.dag_id, dag_run.conf, self._parent_payload(ti))
        log.info("trigger_job: starting %s (%s of %s)", self.trigger_dag_id, self.event, self.source_task_id)
        return super().execute(context)

    def _parent_payload(self, ti: Any) -> Mapping[str, Any]:
        key = PAYLOAD_XCOM_KEY.format(event=self.event)
        deadline = time.monotonic() + _PAYLOAD_WAIT
        while True:
            payload = ti.xcom_pull(task_ids=self.source_task_id, key=key)
            if payload is not None or time.monotonic() >= deadline:
                break
            time.sleep(0.5)
        if payload is None:
            log.warning("trigger_job: %s left no %s payload; the child gets a shorter parent context", self.source_task_id, self.event)
            return {"name": self.source_task_id, "status": 0 if self.event == "on_success" else -1,
                    "retries_exhausted": self.event == "on_retries_exhausted"}
        return payload


def trigger_via_api(
    targets: Sequence[str], event: str, dag_id: str, parent_conf: Mapping[str, Any] | None, payload: Mapping[str, Any], conn_id: str
) -> list[str]:
    """
    Start runs through Airflow's REST API (from a callback, where no task can do it); never raises.

    :return: the DAG ids a run was created for.
    """
    from airflow_ordo_hooks.hooks.webhook import AirflowApiHook

    started: list[str] = []
    todo = []
    for target in targets:
        closed = cycle(target, dag_id, parent_conf)
        if closed:
            log.error("trigger_job: not starting %s again, it would close the cycle %s", target, " -> ".join(closed))
        else:
            todo.append(target)
    if not todo:
        return started
    try:
        api = AirflowApiHook(conn_id)
    except Exception as exc:
        log.error(
            "trigger_job: cannot start %s from %s: Airflow's REST API is not reachable through connection %r (%s). "
            "Create an HTTP connection %r to the API server (login and password, or a token in its extra).",
            ", ".join(todo), event, conn_id, exc, conn_id,
        )
        return started
    conf = child_conf(event, dag_id, parent_conf, payload)
    for target in todo:
        try:
            api.trigger_dag_run(target, conf)
            started.append(target)
            log.info("trigger_job: started a run of %s (%s of %s)", target, event, dag_id)
        except Exception as exc:
            log.error("trigger_job: could not start %s: %s", target, exc)
    return started
