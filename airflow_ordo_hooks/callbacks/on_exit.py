"""The DAG failure callback that still sends Ordo's on_exit report when a run timed out before its on_exit step ran."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from airflow_ordo_hooks import _settings
from airflow_ordo_hooks._on_exit import OnExitStep
from airflow_ordo_hooks._run_state import read_run
from airflow_ordo_hooks.callbacks.job_event import EventCallback
from airflow_ordo_hooks.operators.call_webhook import send_report

log = logging.getLogger(__name__)


class OnExitFallback(EventCallback):
    """
    A run that hits its ``dagrun_timeout`` has its on_exit teardown skipped by the scheduler; this
    DAG failure callback sends the report instead. It runs in the DAG processor, so it reads only
    task states (or the REST API) and the callback's context.

    :param step: the validated on_exit step.
    :param api_conn_id: the HTTP connection to Airflow's REST API; by default ``[ordo_hooks] api_conn_id``.
    """

    what = "on_exit report of a timed-out run"

    def __init__(self, step: OnExitStep, api_conn_id: str | None = None) -> None:
        self.step = step
        self.api_conn_id = api_conn_id

    def run(self, context: Mapping[str, Any], deadline: float) -> None:
        if context.get("reason") != "timed_out":  # otherwise the on_exit task itself runs
            return
        dag, dag_run = context["dag"], context["dag_run"]
        conn_id = self.api_conn_id or _settings.get("api_conn_id")
        snapshot = read_run(conn_id, dag, dag_run, exclude=self.step.id, ti=context.get("ti"))
        snapshot.status = "failed"  # a timed-out run is failed, whatever its tasks say
        param = dag.params.get(self.step.id)
        defaults = getattr(param, "value", param) or {}
        params = {**defaults, **((dag_run.conf or {}).get(self.step.id) or {})}
        note = {
            "step_id": self.step.id,
            "waits_for": self.step.waits_for.text,
            "waits_for_met": False,
            "note": "the run hit its dagrun_timeout; the on_exit step was skipped and the report sent by the DAG's failure callback",
        }
        result = send_report(self.step, snapshot, params.get(self.step.url_key), note, by="dag-processor")
        log.info("on_exit %s (timed-out run): delivery %s", self.step.id, result["delivery"])
