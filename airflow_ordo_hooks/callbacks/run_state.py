"""Reading a DAG run for the on_exit report, the way Ordo reads a job: from the orchestrator's API.

Two sources, best first:

- **Airflow's public REST API v2**, through ``HttpHook`` on an HTTP connection (default id
  ``airflow_api``: host and port of the API server, login and password of a user who may read
  the DAG, or ``{"token": "<JWT>"}`` in its extra). It gives everything: task instances with
  tries and times, XCom entries, asset events.
- **What the Task SDK gives a task** when that connection does not exist: task states, XComs by
  key, the DAG's own structure. Fields it cannot know (task times and tries, creation time, XComs
  other than the one ``waits_for`` names, asset event times) are null, and one log line says so.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any
from urllib.parse import quote

from airflow_ordo_hooks import _airflow
from airflow_ordo_hooks.callbacks.report import ArtifactRecord, OutputRecord, RunSnapshot, StepRecord, settled_status

log = logging.getLogger(__name__)



def effective_leaves(dag: Any) -> set[str]:
    """The tasks whose states decide the run's state, as Airflow picks them (teardowns that do not fail the run left out)."""

    def ignorable(task: Any) -> bool:
        return task.is_teardown and not task.on_failure_fail_dagrun

    leaves = {
        t.task_id
        for t in dag.tasks
        if not ignorable(t) and all(ignorable(dag.get_task(d)) for d in t.downstream_task_ids)
    }
    return leaves or {t.task_id for t in dag.tasks if not t.downstream_task_ids}


def run_order(dag: Any) -> dict[str, int]:
    """Each task's place in an order the run could have taken: every task after its upstream tasks."""
    from graphlib import TopologicalSorter

    graph = {task_id: sorted(task.upstream_task_ids) for task_id, task in sorted(dag.task_dict.items())}
    return {task_id: i for i, task_id in enumerate(TopologicalSorter(graph).static_order())}


def params_in_effect(dag: Any, conf: Any) -> dict[str, Any]:
    """The run's params as its tasks see them: the DAG's defaults, each replaced by the run's conf where it gives one."""
    params = dict(conf or {})
    for key in getattr(dag, "params", None) or {}:
        if key not in params:
            try:
                params[key] = dag.params[key]
            except Exception:  # a param without a default, not given: left out
                continue
    return params


_ERRORS_READ = 20
"""Failed steps whose error is read from their log, at most (one REST request each)."""


def _read_errors(api: Any, run_path: str, steps: list[StepRecord], seconds: float = 5.0) -> None:
    """Give each failed step (the first :data:`_ERRORS_READ`) its error, from its last try's log, within ``seconds``."""
    import time

    from airflow_ordo_hooks.callbacks.task_log import error_of, rest_try_records

    deadline = time.monotonic() + seconds
    for step in [s for s in steps if s.state == "failed" and s.try_number][:_ERRORS_READ]:
        if time.monotonic() >= deadline:
            return
        try:
            ti_path = f"{run_path}/taskInstances/{quote(step.task_id, safe='')}"
            step.error = error_of(rest_try_records(api, ti_path, step.try_number, step.map_index))
        except Exception as exc:  # the report says "task ended failed" for it
            log.info("airflow-ordo-hooks: could not read the error of %s from its log (%s)", step.step_id, exc)


def _parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def _state(value: Any) -> str | None:
    return None if value is None else str(getattr(value, "value", value))


def from_rest_api(conn_id: str, dag: Any, dag_id: str, run_id: str, exclude: str) -> RunSnapshot:
    """Read the run through Airflow's REST API (see the module's doc for the connection)."""
    from airflow_ordo_hooks.hooks.airflow_api import AirflowApiHook

    api = AirflowApiHook(conn_id)
    run_path = f"/api/v2/dags/{quote(dag_id, safe='')}/dagRuns/{quote(run_id, safe='')}"
    run = api.get(run_path)
    order = run_order(dag)
    steps = [
        StepRecord(
            task_id=ti["task_id"],
            map_index=ti.get("map_index", -1),
            state=ti.get("state"),
            step_type=ti.get("operator_name") or ti.get("operator"),
            try_number=ti.get("try_number"),
            start_date=_parse_time(ti.get("start_date")),
            end_date=_parse_time(ti.get("end_date")),
            order=order.get(ti["task_id"]),
        )
        for ti in api.pages(f"{run_path}/taskInstances", "task_instances")
        if ti["task_id"] != exclude
    ]
    _read_errors(api, run_path, steps)
    artifacts = [
        ArtifactRecord(x["task_id"], x["key"], x.get("map_index", -1), None, _parse_time(x.get("timestamp")))
        for x in api.pages(f"{run_path}/taskInstances/~/xcomEntries", "xcom_entries")
        if x["task_id"] != exclude
    ]
    outputs = [
        OutputRecord(e.get("uri") or "", e.get("name") or e.get("uri") or "", e.get("source_task_id"), _parse_time(e.get("timestamp")))
        for e in api.pages("/api/v2/assets/events", "asset_events", source_dag_id=dag_id, source_run_id=run_id)
    ]
    return RunSnapshot(
        dag_id=dag_id,
        run_id=run_id,
        status=settled_status(steps, effective_leaves(dag)),
        source="rest_api",
        params=params_in_effect(dag, run.get("conf")),
        created_at=_parse_time(run.get("queued_at")),
        started_at=_parse_time(run.get("start_date")),
        steps=steps,
        artifacts=artifacts,
        outputs=outputs,
    )


def from_task_sdk(dag: Any, dag_run: Any, exclude: str, ti: Any = None) -> RunSnapshot:
    """Read the run from what the Task SDK gives: states and the DAG's structure; times and tries are unknown (null)."""
    order = run_order(dag)
    steps = [
        StepRecord(task_id, map_index, state, dag.task_dict[task_id].operator_name, order=order.get(task_id))
        for task_id, map_index, state in _airflow.task_states(ti, dag.task_dict, dag.dag_id, dag_run.run_id)
        if task_id != exclude
    ]
    # A task that succeeds emits an asset event for each of its outlets.
    outputs = [
        OutputRecord(getattr(asset, "uri", str(asset)), getattr(asset, "name", None) or str(asset), s.task_id)
        for s in steps
        if s.state == "success"
        for asset in getattr(dag.task_dict[s.task_id], "outlets", ()) or ()
    ]
    return RunSnapshot(
        dag_id=dag.dag_id,
        run_id=dag_run.run_id,
        status=settled_status(steps, effective_leaves(dag)),
        source="task_sdk",
        params=params_in_effect(dag, dag_run.conf),
        created_at=None,
        started_at=dag_run.start_date,
        steps=steps,
        outputs=outputs,
    )


def read_run(conn_id: str, dag: Any, dag_run: Any, exclude: str, ti: Any = None) -> RunSnapshot:
    """
    The run, from the REST API when connection ``conn_id`` exists, else from the Task SDK.

    :param ti: the task's (or callback's) ``context["ti"]``, through which the Task SDK is asked.
    """
    from airflow.sdk import BaseHook

    try:
        BaseHook.get_connection(conn_id)
    except Exception:
        log.info(
            "No connection %r to Airflow's REST API: the on_exit report is built from task states only; "
            "task times and tries, creation time, other XComs and asset event times are null",
            conn_id,
        )
        return from_task_sdk(dag, dag_run, exclude, ti)
    try:
        return from_rest_api(conn_id, dag, dag.dag_id, dag_run.run_id, exclude)
    except Exception as exc:  # a report from fewer fields beats no report
        log.warning(
            "Airflow's REST API (connection %r) could not be read (%s): the on_exit report is built from task states only",
            conn_id, f"{type(exc).__name__}: {str(exc)[:300]}",
        )
        return from_task_sdk(dag, dag_run, exclude, ti)


def with_artifact(snapshot: RunSnapshot, task_id: str, key: str, value: Any) -> None:
    """Put the value of the artifact ``waits_for`` names into the snapshot (the REST API lists XComs without values)."""
    for artifact in snapshot.artifacts:
        if artifact.task_id == task_id and artifact.key == key:
            artifact.value = value
            return
    snapshot.artifacts.append(ArtifactRecord(task_id, key, -1, value))
