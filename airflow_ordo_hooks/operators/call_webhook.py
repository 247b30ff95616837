"""Ordo's ``CALL_WEBHOOK`` executor as an Airflow operator: POST the run's report once it has settled."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from airflow.sdk import BaseOperator

from airflow_ordo_hooks import _settings
from airflow_ordo_hooks.callbacks.on_exit import send_report
from airflow_ordo_hooks.callbacks.report import RunSnapshot
from airflow_ordo_hooks.callbacks.run_state import read_run, with_artifact
from airflow_ordo_hooks.dag_file.on_exit_step import OnExitStep

log = logging.getLogger(__name__)


def _waits_for(step: OnExitStep, snapshot: RunSnapshot, params: Mapping[str, Any], pull: Any) -> dict[str, Any]:
    """Whether the artifact ``waits_for`` names exists; when it does not, why (its producer has finished without it)."""
    reference = step.waits_for
    if reference.kind == "job":
        met = reference.name in params
        note = None if met else f"run parameter {reference.name!r} was not given"
        return {"step_id": step.id, "waits_for": reference.text, "waits_for_met": met, "note": note}
    value = pull(task_ids=reference.name, key=reference.slot)
    if value is not None:
        with_artifact(snapshot, reference.name, reference.slot, value)
        return {"step_id": step.id, "waits_for": reference.text, "waits_for_met": True, "note": None}
    states = sorted({s.state or "not run" for s in snapshot.steps if s.task_id == reference.name})
    return {
        "step_id": step.id,
        "waits_for": reference.text,
        "waits_for_met": False,
        "note": f"{reference.name} finished {'/'.join(states) or 'without running'} without producing "
        f"{reference.slot!r}; the report is sent anyway",
    }


class CallWebhookOperator(BaseOperator):
    """
    Ordo's on_exit ``CALL_WEBHOOK`` step: POST a report of the whole run (job, progress, timeline,
    steps, artifacts, outputs) to the URL in the run's params, once every other task has ended.

    Prefer :func:`~airflow_ordo_hooks.attach_on_exit`, which validates Ordo's config, declares
    the params and wires this task as a teardown after every other task. A delivery that fails
    never fails this task; what happened is its return value (XCom ``return_value``):
    ``{"delivery": {status_code, attempts, elapsed_ms, error, ...}, "job_status", "source"}``.

    :param step: the validated on_exit step (``parse_on_exit``).
    :param api_conn_id: HTTP connection to Airflow's REST API used to read the run; when it does
        not exist, the run is read from what the Task SDK gives a task (fewer fields).
    """

    ui_color = "#e8f0fe"

    def __init__(self, *, step: OnExitStep, api_conn_id: str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("task_id", step.id)
        kwargs.setdefault("retries", 0)  # a report is sent once; delivery retries inside its budget
        super().__init__(**kwargs)
        self.step = step
        self.api_conn_id = api_conn_id

    def execute(self, context: Mapping[str, Any]) -> dict[str, Any]:
        step = self.step
        params = context["params"].get(step.id) or {}
        snapshot = read_run(
            self.api_conn_id or _settings.get("api_conn_id"), context["dag"], context["dag_run"], exclude=self.task_id, ti=context["ti"]
        )
        waits_for = _waits_for(step, snapshot, params, context["ti"].xcom_pull)
        if not waits_for["waits_for_met"]:
            log.warning("on_exit %s: %s", step.id, waits_for["note"])
        result = send_report(step, snapshot, params.get(step.url_key), waits_for)
        log.info("on_exit %s: report of a %s run, delivery %s", step.id, result["job_status"], result["delivery"])
        return result
