"""Ordo's ``CALL_WEBHOOK`` executor as an Airflow operator: POST the run's report once it has settled."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_ordo_hooks import _settings

if TYPE_CHECKING:
    from airflow_ordo_hooks._on_exit import OnExitStep
    from airflow_ordo_hooks._report import RunSnapshot

log = logging.getLogger(__name__)


def _waits_for(step: OnExitStep, snapshot: RunSnapshot, params: Mapping[str, Any], pull: Any) -> dict[str, Any]:
    """Whether the artifact ``waits_for`` names exists; when it does not, why (its producer has finished without it)."""
    from airflow_ordo_hooks._run_state import with_artifact

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


def send_report(step: OnExitStep, snapshot: RunSnapshot, url: Any, waits_for: Mapping[str, Any]) -> dict[str, Any]:
    """Build the report and deliver it; return what the step records (never raises)."""
    from airflow_ordo_hooks.hooks.webhook import deliver
    from airflow_ordo_hooks._report import build_report

    report = build_report(snapshot, finished_at=datetime.now(timezone.utc), on_exit=waits_for)
    record = deliver(url if isinstance(url, str) else "", report)
    return {"delivery": record.to_dict(), "job_status": report["job"]["status"], "source": snapshot.source}


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
        from airflow_ordo_hooks._run_state import read_run

        step = self.step
        params = context["params"].get(step.id) or {}
        snapshot = read_run(self.api_conn_id or _settings.get("api_conn_id"), context["dag"], context["dag_run"], exclude=self.task_id)
        waits_for = _waits_for(step, snapshot, params, context["ti"].xcom_pull)
        if not waits_for["waits_for_met"]:
            log.warning("on_exit %s: %s", step.id, waits_for["note"])
        result = send_report(step, snapshot, params.get(step.url_key), waits_for)
        log.info("on_exit %s: report of a %s run, delivery %s", step.id, result["job_status"], result["delivery"])
        return result


class OnExitFallback:
    """
    The DAG failure callback that still sends the report when a run timed out (``dagrun_timeout``):
    the scheduler then skips the on_exit teardown. It runs in the DAG processor, so it reads only
    task states (or the REST API) and the callback's context.
    """

    def __init__(self, step: OnExitStep, api_conn_id: str | None = None) -> None:
        self.step = step
        self.api_conn_id = api_conn_id

    def __call__(self, context: Mapping[str, Any]) -> None:
        if context.get("reason") != "timed_out":  # otherwise the on_exit task itself runs
            return
        try:
            from airflow_ordo_hooks._run_state import read_run

            dag, dag_run = context["dag"], context["dag_run"]
            snapshot = read_run(self.api_conn_id or _settings.get("api_conn_id"), dag, dag_run, exclude=self.step.id)
            snapshot.status = "failed"  # a timed-out run is failed, whatever its tasks say
            param = dag.params.get(self.step.id)
            defaults = getattr(param, "value", param) or {}
            params = {**defaults, **((dag_run.conf or {}).get(self.step.id) or {})}
            note = {"step_id": self.step.id, "waits_for": self.step.waits_for.text, "waits_for_met": False,
                    "note": "the run hit its dagrun_timeout; the on_exit step was skipped and the report sent by the DAG's failure callback"}
            result = send_report(self.step, snapshot, params.get(self.step.url_key), note)
            log.info("on_exit %s (timed-out run): delivery %s", self.step.id, result["delivery"])
        except Exception:
            log.exception("on_exit %s: the report of a timed-out run could not be sent", self.step.id)
