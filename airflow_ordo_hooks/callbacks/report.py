"""Ordo's job report (``GET /ordo/jobs/{id}``) for an Airflow DAG run: pure functions, no I/O.

A :class:`RunSnapshot` is what was read of the run (from Airflow's REST API, or from what the
Task SDK gives a task); :func:`build_report` turns it into Ordo's shapes and vocabularies, with
Airflow's raw states kept beside them (``airflow_state``), and the run's params masked as Airflow
masks them (:func:`masked_params`). The JSON Schema of the report ships in
``airflow_ordo_hooks/schemas/on_exit_report.schema.json``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

FAILED_STATES = frozenset({"failed", "upstream_failed"})
SUCCESS_STATES = frozenset({"success", "skipped"})

_STEP_STATUS = {
    "success": "success",
    "failed": "failed",
    "upstream_failed": "skipped",  # never ran: its upstream failed
    "skipped": "skipped",
    "removed": "skipped",
    "running": "running",
    "restarting": "running",
    "deferred": "running",
}
"""Ordo's step statuses (pending, running, success, failed, skipped) for Airflow's task states; others are pending."""


@dataclass(slots=True)
class StepRecord:
    """One task instance of the run."""

    task_id: str
    map_index: int = -1
    state: str | None = None
    step_type: str | None = None
    try_number: int | None = None
    start_date: datetime | None = None
    end_date: datetime | None = None
    error: str | None = None
    """What made a failed step fail (the exception's type and message, or how its process ended), if known."""
    order: int | None = None
    """The task's place in the DAG's run order (upstream first), for steps that have no times."""

    @property
    def never_ran(self) -> bool:
        """Whether no try of it started (upstream_failed, skipped before it ran): Airflow still gives it times."""
        return self.try_number == 0

    @property
    def step_id(self) -> str:
        return self.task_id if self.map_index < 0 else f"{self.task_id}[{self.map_index}]"


@dataclass(slots=True)
class ArtifactRecord:
    """An XCom of the run."""

    task_id: str
    key: str
    map_index: int = -1
    value: Any = None
    created_at: datetime | None = None


@dataclass(slots=True)
class OutputRecord:
    """An asset event the run's tasks emitted."""

    uri: str
    name: str
    task_id: str | None = None
    created_at: datetime | None = None


@dataclass
class RunSnapshot:
    """What was read of a DAG run: the input of :func:`build_report`."""

    dag_id: str
    run_id: str
    status: str
    """The run's state once it settles, teardowns excluded (``success`` or ``failed``)."""
    source: str
    """``rest_api`` or ``task_sdk``: where the run was read from."""
    params: Mapping[str, Any] = field(default_factory=dict)
    created_at: datetime | None = None
    started_at: datetime | None = None
    steps: list[StepRecord] = field(default_factory=list)
    artifacts: list[ArtifactRecord] = field(default_factory=list)
    outputs: list[OutputRecord] = field(default_factory=list)


def settled_status(steps: Iterable[StepRecord], leaf_task_ids: set[str]) -> str:
    """
    The state Airflow gives a run once every task has ended, as ``DagRun.update_state`` decides it:
    ``failed`` if a leaf task failed or was upstream_failed, else ``success`` if every leaf
    succeeded or was skipped, else ``running``. ``leaf_task_ids`` are the effective leaves
    (teardowns that do not fail the run left out).
    """
    leaves = [s for s in steps if s.task_id in leaf_task_ids and s.state != "removed"]
    if any(s.state in FAILED_STATES for s in leaves):
        return "failed"
    if all(s.state in SUCCESS_STATES for s in leaves):
        return "success"
    return "running"


def ordo_time(value: datetime | None) -> str | None:
    """Ordo's timestamps: ISO 8601 in UTC with milliseconds, ``2026-02-24T18:09:31.276Z``."""
    if value is None:
        return None
    value = value.astimezone(timezone.utc)
    return f"{value:%Y-%m-%dT%H:%M:%S}.{value.microsecond // 1000:03d}Z"


def masked_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """
    The run's params as a report carries them: the value of every sensitive key (``password``,
    ``token``, ``api_key``…: Airflow's defaults and ``[core] sensitive_var_conn_names``, at any depth)
    and every secret Airflow's masker holds replaced by ``***``, as Airflow masks them in logs and
    the UI. A URL already shown masked (``https://host/…#3f9a1c``) is kept: it names no secret.
    """
    from airflow.sdk.log import redact

    params = dict(params)
    return _keep_masked_urls(redact(params), params)


def _keep_masked_urls(shown: Any, given: Any) -> Any:
    import re

    from airflow_ordo_hooks._targets import _MASKED

    if isinstance(shown, dict) and isinstance(given, dict):
        return {key: _keep_masked_urls(value, given.get(key)) for key, value in shown.items()}
    if isinstance(shown, list) and isinstance(given, list) and len(shown) == len(given):
        return [_keep_masked_urls(value, was) for value, was in zip(shown, given)]
    if isinstance(given, str) and shown != given and re.fullmatch(_MASKED, given):
        return given
    return shown


def _ms(start: datetime | None, end: datetime | None) -> int | None:
    return round((end - start).total_seconds() * 1000) if start and end else None


def build_report(snapshot: RunSnapshot, *, finished_at: datetime, on_exit: Mapping[str, Any]) -> dict[str, Any]:
    """
    Ordo's job report of a run.

    :param snapshot: what was read of the run.
    :param finished_at: when the report is sent (the run is still finishing: its on_exit step runs).
    :param on_exit: what the on_exit step reports of itself (its id, ``waits_for`` and whether it was met).
    """
    job_id = snapshot.run_id
    steps = sorted(snapshot.steps, key=lambda s: (s.task_id, s.map_index))
    statuses = [_STEP_STATUS.get(s.state or "", "pending") for s in steps]
    failed = [s.step_id for s, status in zip(steps, statuses) if status == "failed"]
    succeeded = statuses.count("success")
    return {
        "job": _job(snapshot, finished_at, failed),
        "progress": {
            "percentage": succeeded / len(steps) if steps else 1,
            "completed_steps": succeeded + len(failed),
            "total_steps": len(steps),
        },
        "duration_ms": _ms(snapshot.started_at, finished_at),
        "timeline": _timeline(steps, statuses),
        "steps": [_step_row(job_id, s, status) for s, status in zip(steps, statuses)],
        "artifacts": [
            _artifact(job_id, a) for a in sorted(snapshot.artifacts, key=lambda a: (a.task_id, a.map_index, a.key))
        ],
        "outputs": [_output(job_id, o) for o in snapshot.outputs],
        "on_exit": {**on_exit, "source": snapshot.source},
    }


def _job(snapshot: RunSnapshot, finished_at: datetime, failed: list[str]) -> dict[str, Any]:
    """The report's ``job``: the run as Ordo names a job, its failed steps named in ``error``, its params masked."""
    shown = ", ".join(failed[:20]) + (" …" if len(failed) > 20 else "")
    return {
        "id": snapshot.run_id,
        "recipe_id": snapshot.dag_id,
        "status": snapshot.status if snapshot.status in ("success", "failed") else "running",
        "airflow_state": snapshot.status,
        "created_at": ordo_time(snapshot.created_at),
        "started_at": ordo_time(snapshot.started_at),
        "finished_at": ordo_time(finished_at),
        "error": f"{len(failed)} step(s) failed: {shown}" if failed else None,
        "params": masked_params(snapshot.params),
    }


def _started_at(step: StepRecord) -> datetime | None:
    """When a step started: one that never ran has times from Airflow all the same (when it was marked), but no start."""
    return None if step.never_ran else step.start_date


def _step_row(job_id: str, step: StepRecord, status: str) -> dict[str, Any]:
    """A row of the report's ``steps``: Ordo's step status beside Airflow's state, its try, its times and why it failed."""
    return {
        "job_id": job_id,
        "step_id": step.step_id,
        "step_type": step.step_type,
        "status": status,
        "airflow_state": step.state,
        "attempt": None if step.never_ran else step.try_number,
        "map_index": step.map_index,
        "started_at": ordo_time(_started_at(step)),
        "finished_at": ordo_time(step.end_date),
        "error": (step.error or f"task ended {step.state}") if status == "failed" else None,
    }


def _timeline(steps: list[StepRecord], statuses: list[str]) -> list[dict[str, Any]]:
    """The report's ``timeline``: the steps that started, by when; then the others in the DAG's run order where it is known."""
    rows = [(step, _timeline_row(step, status)) for step, status in zip(steps, statuses)]
    started = sorted((row for _, row in rows if row["started_at"] is not None), key=lambda row: row["started_at"])
    never = sorted(((step, row) for step, row in rows if row["started_at"] is None), key=lambda pair: (pair[0].order is None, pair[0].order or 0))
    return started + [row for _, row in never]


def _timeline_row(step: StepRecord, status: str) -> dict[str, Any]:
    start = _started_at(step)
    return {
        "step": step.step_id,
        "type": step.step_type,
        "status": status,
        "started_at": ordo_time(start),
        "finished_at": ordo_time(step.end_date),
        "duration_ms": _ms(start, step.end_date),
    }


def _artifact(job_id: str, artifact: ArtifactRecord) -> dict[str, Any]:
    """An XCom as one of the report's ``artifacts``, named ``step:<task_id>.<key>`` as Ordo references an output."""
    return {
        "job_id": job_id,
        "name": artifact.key,
        "type": "xcom",
        "uri": f"step:{artifact.task_id}.{artifact.key}",
        "producer_step": artifact.task_id if artifact.map_index < 0 else f"{artifact.task_id}[{artifact.map_index}]",
        "metadata": {"value": artifact.value} if artifact.value is not None else {},
        "created_at": ordo_time(artifact.created_at),
    }


def _output(job_id: str, output: OutputRecord) -> dict[str, Any]:
    """An asset event as one of the report's ``outputs``: delivered where and when it was emitted."""
    return {
        "job_id": job_id,
        "artifact_name": output.name,
        "path": output.uri,
        "delivered_uri": output.uri,
        "delivered_at": ordo_time(output.created_at),
        "created_at": ordo_time(output.created_at),
        "producer_step": output.task_id,
    }
