"""cheek's webhook payloads, built from an Airflow callback context: pure functions, no I/O.

The generic payload (``notify_webhook``) is cheek's documented JSON object; Slack's ``text`` and
Discord's ``content`` are ``"<name> (exitcode <status>):\\n<log>"`` cut to their limits, keeping
the header and the tail of the log (where the error is), with a visible marker.
"""

from __future__ import annotations

import re
import traceback
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote

from airflow_ordo_hooks.callbacks.trigger import parent_context

SLACK_LIMIT = 40_000
DISCORD_LIMIT = 2_000
_EXIT_CODE = re.compile(r"exit code (-?\d+)")
_KILLED = re.compile(r"Process terminated by signal\..*?\bsignal=(-?\d+)", re.S)
_TRIGGERED_BY_RUN_TYPE = {
    "scheduled": "cron",
    "manual": "manual",
    "backfill": "backfill",
    "asset_triggered": "asset",
    "asset_materialization": "asset",
    "operator_triggered": "job",
}


def exit_status(exception: BaseException | str | None) -> int:
    """cheek's ``status`` for a failure: the exit code when the failure carries one, else -1."""
    if exception is None:
        return -1
    for attr in ("returncode", "exit_code"):
        code = getattr(exception, attr, None)
        if isinstance(code, int):
            return code
    if isinstance(exception, SystemExit) and isinstance(exception.code, int):
        return exception.code
    found = _EXIT_CODE.search(str(exception))  # BashOperator: "...returned a non-zero exit code 3."
    return int(found.group(1)) if found else -1


def failure_status(exception: BaseException | str | None, log: str) -> int:
    """
    A failed try's ``status``: the exit code its failure carries; else, when the supervisor says in
    the try's log that it killed the process or saw it die (the DAG processor runs the callbacks of
    such a try, with no exit code in its context), minus the signal; else -1.
    """
    code = exit_status(exception)
    return code if code != -1 else (kill_status(log) or -1)


def kill_status(log: str) -> int | None:
    """The status cheek gives a process the supervisor says it killed or saw die: minus the signal (-9 for SIGKILL); ``None`` if the log names none."""
    found = _KILLED.search(log)
    return -abs(int(found.group(1))) if found else None


RUNNER_FRAMES = ("/airflow/sdk/execution_time/", "/airflow/sdk/bases/operator.py", "/airflow/sdk/bases/decorator.py")


def failure_text(exception: BaseException | str | None) -> str:
    """The exception and its traceback, as a log that is never empty on failure; Airflow's own task-runner frames left out."""
    if exception is None:
        return ""
    if isinstance(exception, str):
        return exception
    tb = traceback.TracebackException.from_exception(exception)
    tb.stack = traceback.StackSummary.from_list([f for f in tb.stack if not any(part in f.filename for part in RUNNER_FRAMES)])
    return "".join(tb.format()).rstrip("\n")


def keep_tail(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, keeping its end, with a marker saying what was cut."""
    if len(text) <= limit:
        return text
    cut = len(text) - limit
    while True:
        marker = f"[… {cut} characters cut …]\n"
        new_cut = len(text) - max(limit - len(marker), 0)
        if new_cut == cut:
            return marker + text[cut:] if limit >= len(marker) else text[len(text) - limit :]
        cut = new_cut


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def triggered_by(dag_run: Any) -> str:
    """cheek's ``triggered_by`` for a run: ``job[<parent>]`` / ``retries_exhausted[<parent>]`` when a
    trigger_job started it, else what started the run (``cron``, ``manual``, ``asset``, ``backfill``)."""
    parent = parent_context(getattr(dag_run, "conf", None), dag_run.dag_id, dag_run.run_id)
    if isinstance(parent.get("triggered_by"), str):
        return parent["triggered_by"]
    run_type = getattr(getattr(dag_run, "run_type", None), "value", getattr(dag_run, "run_type", None))
    return _TRIGGERED_BY_RUN_TYPE.get(str(run_type), str(run_type))


def job_event_payload(
    context: Mapping[str, Any],
    *,
    log: str,
    retries_exhausted: bool,
    now: datetime,
    triggered: Sequence[str] = (),
) -> dict[str, Any]:
    """
    cheek's generic payload for a task event.

    :param context: the Airflow callback context of the task instance.
    :param log: this try's log, already bounded and masked.
    :param retries_exhausted: true only for ``on_retries_exhausted``.
    :param now: when the event fired (ends ``duration``).
    :param triggered: the DAG ids this event's ``trigger_job`` actions start.
    """
    ti = context["ti"]
    state = _state(ti.state)
    start = getattr(ti, "start_date", None)
    return _payload(
        context["dag_run"],
        status=0 if state == "success" else failure_status(context.get("exception"), log),
        log=log,
        name=ti.task_id,
        retry_attempt=max(ti.try_number - 1, 0),
        retries_exhausted=retries_exhausted,
        duration=_duration_ms(start, now),
        triggered=triggered,
        airflow=_task_fields(
            ti.dag_id, ti.task_id, ti.run_id,
            map_index=ti.map_index, try_number=ti.try_number, max_tries=ti.max_tries, state=state, log_url=_log_url(ti),
        ),
    )


def watched_task_payload(
    dag_run: Any,
    *,
    task_id: str,
    state: str,
    log: str,
    retries_exhausted: bool,
    retries: int,
    triggered: Sequence[str] = (),
    try_number: int | None = None,
    max_tries: int | None = None,
    map_index: int = -1,
    start_date: datetime | None = None,
    end_date: datetime | None = None,
    log_url: str | None = None,
) -> dict[str, Any]:
    """
    cheek's generic payload for a task event, from what another task can read of that task once
    it has ended (a ``trigger_job`` task: the event's callback may never have run).

    Fields that were not read are derived: ``status`` is minus the signal the supervisor says
    killed the process (-9), else the exit code the log names, else -1 (0 on success); ``retry_attempt`` is ``try_number - 1``, else ``retries`` for a failure
    (the last try), else 0; ``duration`` is null without both times.

    :param dag_run: the run of the task.
    :param state: the task's state: ``success`` or ``failed``.
    :param log: its try's log, already bounded and masked ("" when unknown).
    :param retries: the task's ``retries``, for ``retry_attempt`` when ``try_number`` is unknown.
    """
    if try_number is not None:
        retry_attempt = max(try_number - 1, 0)
    else:
        retry_attempt = 0 if state == "success" else retries
    return _payload(
        dag_run,
        status=0 if state == "success" else kill_status(log) or exit_status(log),
        log=log,
        name=task_id,
        retry_attempt=retry_attempt,
        retries_exhausted=retries_exhausted,
        duration=_duration_ms(start_date, end_date),
        triggered=triggered,
        airflow=_task_fields(
            dag_run.dag_id, task_id, dag_run.run_id,
            map_index=map_index, try_number=try_number, max_tries=max_tries, state=state, log_url=log_url,
        ),
    )


def log_url(base_url: str, dag_id: str, run_id: str, task_id: str, map_index: int = -1, try_number: int | None = None) -> str:
    """The UI's page of a try's log, as the Task SDK's ``ti.log_url`` builds it."""
    mapped = f"/mapped/{map_index}" if map_index >= 0 else ""
    try_part = f"?try_number={try_number}" if try_number else ""
    return f"{base_url.rstrip('/')}/dags/{dag_id}/runs/{quote(run_id)}/tasks/{task_id}{mapped}{try_part}"


def run_event_payload(
    context: Mapping[str, Any], *, now: datetime, triggered: Sequence[str] = (), failed_tasks: Sequence[str] | None = None
) -> dict[str, Any]:
    """
    cheek's generic payload for a whole DAG run's event: ``name`` is the DAG id.

    Reads only the DAG callback's own context (the run and the reason), as Airflow's DAG
    processor allows.

    :param failed_tasks: the run's failed task instances (``task`` or ``task[3]``), named in its
        ``log`` and ``airflow.failed_tasks``; ``None`` when they could not be read (left out).
    """
    dag_run = context["dag_run"]
    state = _state(dag_run.state)
    reason = context.get("reason")
    start = dag_run.start_date
    log = f"DAG run {dag_run.run_id} ended {state}" + (f": {reason}" if reason else "")
    airflow: dict[str, Any] = {"dag_id": dag_run.dag_id, "run_id": dag_run.run_id, "state": state}
    if failed_tasks is not None:
        airflow["failed_tasks"] = list(failed_tasks)
        if failed_tasks:
            shown = ", ".join(failed_tasks[:20]) + (f" and {len(failed_tasks) - 20} more" if len(failed_tasks) > 20 else "")
            log += f"\nfailed: {shown}"
    return _payload(
        dag_run,
        status=0 if state == "success" else -1,
        log=log,
        name=dag_run.dag_id,
        retry_attempt=0,
        retries_exhausted=False,
        duration=_duration_ms(start, dag_run.end_date or now),
        triggered=triggered,
        airflow=airflow,
    )


def _state(value: Any) -> str:
    return str(getattr(value, "value", value))


def _duration_ms(start: datetime | None, end: datetime | None) -> int | None:
    """cheek's ``duration``: whole milliseconds from ``start`` to ``end``; ``None`` without both."""
    return round((end - start).total_seconds() * 1000) if start and end else None


def _task_fields(
    dag_id: str, task_id: str, run_id: str, *, map_index: int, try_number: int | None, max_tries: int | None, state: str, log_url: str | None
) -> dict[str, Any]:
    """A task event's ``airflow`` object: which try of which task instance, its state, and where its log is."""
    return {
        "dag_id": dag_id,
        "task_id": task_id,
        "run_id": run_id,
        "map_index": map_index,
        "try_number": try_number,
        "max_tries": max_tries,
        "state": state,
        "log_url": log_url,
    }


def _payload(dag_run: Any, *, triggered: Sequence[str], airflow: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """cheek's field order, the run's fields (when and by what it was started) and the parent's payload if any."""
    payload: dict[str, Any] = {
        "status": fields["status"],
        "log": fields["log"],
        "name": fields["name"],
        "triggered_at": _iso(dag_run.start_date or dag_run.run_after),
        "triggered_by": triggered_by(dag_run),
        "triggered": list(triggered),
        "retry_attempt": fields["retry_attempt"],
        "retries_exhausted": fields["retries_exhausted"],
        "duration": fields["duration"],
    }
    parent = parent_context(dag_run.conf, dag_run.dag_id, dag_run.run_id).get("triggered_by_job_run")
    if isinstance(parent, Mapping):
        payload["triggered_by_job_run"] = dict(parent)
    payload["airflow"] = airflow
    return payload


def _log_url(ti: Any) -> str | None:
    try:
        return ti.log_url
    except Exception:  # the URL needs [api] base_url; a payload is still worth sending without it
        return None


def chat_text(name: str, status: int, log: str, limit: int) -> str:
    """``"<name> (exitcode <status>):\\n<log>"`` in at most ``limit`` characters, header kept, log tail kept."""
    header = f"{name} (exitcode {status}):\n"
    return header + keep_tail(log, max(limit - len(header), 0))


def slack_payload(payload: Mapping[str, Any]) -> dict[str, str]:
    """Slack's incoming-webhook body for a generic payload."""
    return {"text": chat_text(payload["name"], payload["status"], payload["log"], SLACK_LIMIT)}


def discord_payload(payload: Mapping[str, Any]) -> dict[str, str]:
    """Discord's webhook body for a generic payload."""
    return {"content": chat_text(payload["name"], payload["status"], payload["log"], DISCORD_LIMIT)}


BUILDERS = {
    "notify_webhook": dict,
    "notify_slack_webhook": slack_payload,
    "notify_discord_webhook": discord_payload,
}
"""For each notify action, the body it sends, from the generic payload."""
