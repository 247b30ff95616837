"""Ordo's on_exit report sent: by the step's task, or by the DAG failure callback when a run timed out before the step ran."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from airflow_ordo_hooks import _settings
from airflow_ordo_hooks.callbacks.job_event import EventCallback
from airflow_ordo_hooks.callbacks.report import RunSnapshot, build_report
from airflow_ordo_hooks.callbacks.run_state import read_run
from airflow_ordo_hooks.dag_file.on_exit_step import OnExitStep, shown_params
from airflow_ordo_hooks.hooks.webhook import DeliveryPolicy, encode

log = logging.getLogger(__name__)


def send_report(
    step: OnExitStep, snapshot: RunSnapshot, url: Any, waits_for: Mapping[str, Any], *, by: str = "worker"
) -> dict[str, Any]:
    """
    Build the report and deliver it; return what the step records (never raises).

    With the delivery ledger, the report is delivered briefly (``[ordo_hooks] inline_budget``) and
    then handed to the ledger, which redelivers it from the API server if it failed: the step
    never holds its worker slot for a receiver that is down. The ``webhook-id`` is the run's and
    the step's, the same from this task and from the timed-out run's fallback.
    """
    import dataclasses
    import time

    from airflow_ordo_hooks import _event_id
    from airflow_ordo_hooks.callbacks import ledger_client, outbox

    snapshot = dataclasses.replace(snapshot, params=shown_params(step, snapshot.params))
    report = build_report(snapshot, finished_at=datetime.now(timezone.utc), on_exit=waits_for)
    target = url if isinstance(url, str) else ""
    message = outbox.Message(
        webhook_id=_event_id.webhook_id(snapshot.dag_id, snapshot.run_id, step.id, -1, 0, "on_exit", target),
        dag_id=snapshot.dag_id, run_id=snapshot.run_id, task_id=step.id, map_index=-1, try_number=0, event="on_exit",
        action="call_webhook", target=target, body=encode(report), source="on_exit",
    )
    ledger = bool(target) and ledger_client.in_use()
    inline_end = time.monotonic() + _settings.get("inline_budget") if ledger else None
    # the URL comes from the run's conf: the egress policy checks it
    sent = outbox.send([message], policy=DeliveryPolicy.from_airflow_config(), by=by, inline_end=inline_end,
                        ledger=lambda: ledger, untrusted=True)
    (record,) = sent.records
    result = {"delivery": record.to_dict(), "job_status": report["job"]["status"], "source": snapshot.source}
    if sent.ledger:  # a URL refused before sending is not redelivered either
        result["ledger"] = ("recorded" if record.ok else "redelivery") if sent.ledger == "recorded" else "unavailable"
    return result


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
