"""What ``airflow ordo-hooks deliveries``, ``redeliver``, ``preview``, ``test-fire`` and ``rotate-fernet-key`` do.

``deliveries``, ``redeliver`` and ``rotate-fernet-key`` read and write the delivery ledger in
Airflow's metadata database, as Airflow's own commands do (run them where ``airflow db`` commands
work). ``redeliver`` makes deliveries due; the API server's redelivery loop sends them, with their
``webhook-id``, within ``[ordo_hooks] redelivery_poll_seconds``. ``test-fire`` sends from where it
runs, through the same delivery path as a callback. ``preview`` parses the DAG file and reads the
task's latest try from the metadata database and its log file, and sends nothing. Errors end the
command with exit code 1 and a message, as Airflow's do.
"""

from __future__ import annotations

import json
import re
import time
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any

from airflow.cli.simple_table import AirflowConsole
from airflow.utils.cli import suppress_logs_and_warning

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
_SETTLED = ("delivered", "gone", "failed")


def _since(text: str, now: datetime) -> datetime:
    """``--failed-since``: an ISO 8601 time with a time zone, or ``30m`` / ``2h`` / ``1d`` back from ``now``."""
    if match := _DURATION.match(text):
        return now - timedelta(**{_UNITS[match[2]]: float(match[1])})
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise SystemExit(f"--failed-since: expected an ISO 8601 time or a duration like 30m, 2h, 1d; got {text!r}") from None
    if when.tzinfo is None:
        raise SystemExit(f"--failed-since: {text!r} has no time zone; add one (e.g. +00:00)")
    return when.astimezone(timezone.utc)


def _row(delivery: dict[str, Any]) -> dict[str, Any]:
    """A delivery as one line of the table."""
    task = delivery["task_id"] or "(run)"
    if delivery["task_id"] and delivery["map_index"] >= 0:
        task += f"[{delivery['map_index']}]"
    last = delivery["last_status_code"] or ""
    return {
        "webhook_id": delivery["webhook_id"],
        "dag_id": delivery["dag_id"],
        "run_id": delivery["run_id"],
        "task": task,
        "try": delivery["try_number"] or "",
        "event": delivery["event"],
        "target": delivery["target_masked"],
        "state": delivery["state"],
        "attempts": delivery["attempt_count"],
        "last": last if not delivery["last_error"] or last else (delivery["last_error"] or "")[:40],
        "next_attempt_at": (delivery["next_attempt_at"] or "")[:19],
    }


def _print(data: list[dict[str, Any]], output: str, row: Any = _row) -> None:
    """Print as ``airflow … --output`` does; JSON and YAML keep numbers, booleans and nulls (Airflow's make every value text)."""
    if output == "json":
        print(json.dumps(data, indent=2, ensure_ascii=False))
    elif output == "yaml":
        import yaml

        print(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), end="")
    else:
        AirflowConsole().print_as(data=[row(d) for d in data], output=output)


@suppress_logs_and_warning
def deliveries(args: Any) -> None:
    """``airflow ordo-hooks deliveries``: the ledger's deliveries, newest first; with their payloads and attempts as JSON or YAML."""
    from airflow.utils.session import create_session

    from airflow_ordo_hooks.server import queries, shown

    if args.limit < 1:
        raise SystemExit(f"--limit: expected a number of deliveries from 1, got {args.limit}")
    with create_session(scoped=False) as session:
        rows, _ = queries.query(
            session, dag_id=args.dag_id, run_id=args.run_id, task_id=args.task_id, event=args.event, state=args.state,
            limit=args.limit,
        )
        found = [shown.as_dict(r) for r in rows]
    _print(found, args.output)


@suppress_logs_and_warning
def redeliver(args: Any) -> None:
    """``airflow ordo-hooks redeliver``: make deliveries due again; with ``--wait``, show how each ended."""
    from airflow.utils.session import create_session

    from airflow_ordo_hooks import _settings
    from airflow_ordo_hooks.server import claims, queries, shown
    from airflow_ordo_hooks.server.schedule import utcnow

    if not args.webhook_ids and not args.failed_since:
        raise SystemExit("redeliver: name the webhook-id of each delivery, or give --failed-since")
    if not _settings.get("ledger"):
        raise SystemExit("redeliver: [ordo_hooks] ledger is false: no API server redelivers anything")
    now = utcnow()
    with create_session(scoped=False) as session:
        wanted = list(args.webhook_ids)
        if args.failed_since:
            wanted += queries.failed_since(session, _since(args.failed_since, now), dag_id=args.dag_id)
        made_due = claims.request_redelivery(session, wanted, now)
    missing = [w for w in dict.fromkeys(wanted) if w not in made_due]
    if args.wait > 0 and made_due:
        deadline = time.monotonic() + args.wait
        while True:
            with create_session(scoped=False) as session:
                found = [shown.as_dict(r) for r in (queries.get(session, w) for w in made_due) if r is not None]
            # settled, and by an attempt made after the request (a delivered one is made pending first)
            if all(d["state"] in _SETTLED for d in found) or time.monotonic() >= deadline:
                break
            time.sleep(0.2)
    else:
        with create_session(scoped=False) as session:
            found = [shown.as_dict(r) for r in (queries.get(session, w) for w in made_due) if r is not None]
    if found:
        _print(found, args.output)
    elif not missing:
        print("No failed delivery since then: nothing to redeliver")
    if missing:
        raise SystemExit(
            f"redeliver: not in the ledger, or being sent right now: {', '.join(missing[:20])}"
            + (f" and {len(missing) - 20} more" if len(missing) > 20 else "")
        )
    undelivered = [d["webhook_id"] for d in found if d["state"] != "delivered"]
    if args.wait > 0 and undelivered:
        raise SystemExit(f"redeliver: not delivered (failed, or not settled within {args.wait:g} s): {', '.join(undelivered[:20])}")


@suppress_logs_and_warning
def rotate_fernet_key(args: Any) -> None:
    """
    ``airflow ordo-hooks rotate-fernet-key``: re-encrypt every delivery's target with the first key of
    ``[core] fernet_key``, as ``airflow rotate-fernet-key`` does connections and variables; targets
    stored in plain text (while there was no key) are encrypted. Exit code 1 if some target no key decrypts.
    """
    from airflow.utils.session import create_session

    from airflow_ordo_hooks.exceptions import FernetKeyError, UndecryptableTargets
    from airflow_ordo_hooks.server import crypto

    left = None
    try:
        with create_session(scoped=False) as session:  # committed on leaving, also with targets left
            try:
                changed = crypto.reencrypt(session)
            except UndecryptableTargets as error:
                changed, left = error.changed, error
    except FernetKeyError as error:
        raise SystemExit(f"rotate-fernet-key: {error}") from None
    print(f"Re-encrypted the targets of {changed} deliveries with the first key of [core] fernet_key")
    if left is not None:
        raise SystemExit(f"rotate-fernet-key: {left}")


def _latest_try(dag_id: str, task_id: str, run_id: str | None, map_index: int) -> tuple[Any, Any] | None:
    """``(dag run, task instance)`` of the task's latest try (in ``run_id`` if given), from the metadata database; ``None`` if it has none."""
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session(scoped=False) as session:
        stmt = select(TaskInstance, DagRun).join(
            DagRun, (DagRun.dag_id == TaskInstance.dag_id) & (DagRun.run_id == TaskInstance.run_id)
        ).where(TaskInstance.dag_id == dag_id, TaskInstance.task_id == task_id, TaskInstance.map_index == map_index,
                TaskInstance.try_number > 0)
        if run_id:
            stmt = stmt.where(TaskInstance.run_id == run_id)
        found = session.execute(stmt.order_by(DagRun.run_after.desc()).limit(1)).first()
        if found is None:
            return None
        ti, dag_run = found
        session.expunge_all()
        return dag_run, ti


@suppress_logs_and_warning
def preview(args: Any) -> None:
    """
    ``airflow ordo-hooks preview DAG_ID TASK_ID EVENT``: the exact body each action of the task's
    ``EVENT`` would send, built from its latest try (its state, times and log) as the package builds
    an event it recovers afterwards; sending nothing. Without a try, from a made-up one.
    """
    from airflow.utils.cli import get_bagged_dag

    from airflow_ordo_hooks.callbacks.payloads import BUILDERS
    from airflow_ordo_hooks.callbacks.ended_try import NO_CALLBACKS, payload
    from airflow_ordo_hooks.callbacks.recovery import attached_hooks
    from airflow_ordo_hooks.hooks.webhook import encode, mask_url

    dag = get_bagged_dag(None, args.dag_id)
    if args.task_id not in dag.task_dict:
        raise SystemExit(f"preview: DAG {args.dag_id!r} has no task {args.task_id!r}")
    task = dag.task_dict[args.task_id]
    hooks = attached_hooks(task)
    actions = hooks.for_event(args.event) if hooks else ()
    if not actions:
        raise SystemExit(f"preview: task {args.task_id!r} of DAG {args.dag_id!r} has no action on {args.event}")
    dag_run, ended, source = _preview_try(args, task.retries or 0)
    jobs = [a.target for a in actions if a.action == "trigger_job"]
    built = payload(dag_run, ended.logged(NO_CALLBACKS), event=args.event, retries=task.retries or 0, triggered=jobs)
    sends = [
        {"action": a.action, "target": mask_url(a.target) if "://" in a.target else a.target,
         "body": json.loads(encode(BUILDERS[a.action](built)))}
        for a in actions if a.action in BUILDERS
    ]
    if args.output in ("json", "yaml"):
        _print([{"source": source, "event": args.event, "deliveries": sends, "trigger_job": jobs}], args.output)
        return
    print(f"{args.event} of {args.dag_id}.{args.task_id}, from {source}; nothing is sent")
    for send in sends:
        print(f"\n{send['action']} -> {send['target']}")
        print(json.dumps(send["body"], indent=2, ensure_ascii=False))
    if jobs:
        print(f"\ntrigger_job: {', '.join(jobs)}")


def _preview_try(args: Any, retries: int) -> tuple[Any, Any, str]:
    """``(dag_run, ended try, where it comes from)``: the task's latest try in the database, or a made-up one."""
    from airflow_ordo_hooks import _settings
    from airflow_ordo_hooks.callbacks.ended_try import EndedTry
    from airflow_ordo_hooks.callbacks.task_log import read_try_log

    state = "success" if args.event == "on_success" else "failed"
    found = _latest_try(args.dag_id, args.task_id, args.run_id, args.map_index)
    if found is not None:
        dag_run, ti = found
        ended = EndedTry.from_orm(ti, state=state, log=read_try_log(ti, _settings.get("log_max_chars"), catch_up=False))
        return dag_run, ended, f"run {dag_run.run_id}, try {ti.try_number} ({ti.state})"
    now = datetime.now(timezone.utc)
    dag_run = SimpleNamespace(dag_id=args.dag_id, run_id=args.run_id or f"manual__{now.isoformat()}", run_type="manual",
                              conf={}, start_date=now, run_after=now)
    ended = EndedTry(args.task_id, state, try_number=1, max_tries=retries, map_index=args.map_index, start_date=now, end_date=now)
    return dag_run, ended, "a made-up try (the task has none in the database)"


def sample_payload(now: datetime) -> dict[str, Any]:
    """cheek's ``on_error`` payload of a made-up task, as a real event of it would carry."""
    from airflow_ordo_hooks.callbacks.payloads import job_event_payload

    started = now - timedelta(seconds=3)
    ti = SimpleNamespace(
        dag_id="ordo_hooks_test_fire", task_id="test_fire", run_id=f"manual__{now.isoformat()}", map_index=-1,
        try_number=1, max_tries=0, state="failed", start_date=started, log_url=None,
    )
    dag_run = SimpleNamespace(dag_id=ti.dag_id, run_id=ti.run_id, run_type="manual", conf={}, start_date=started, run_after=started)
    log = "airflow ordo-hooks test-fire: a sample on_error event; no task failed."
    context = {"ti": ti, "dag_run": dag_run, "exception": None}
    return job_event_payload(context, log=log, retries_exhausted=False, now=now)


@suppress_logs_and_warning
def test_fire(args: Any) -> None:
    """``airflow ordo-hooks test-fire TARGET``: a sample event through the real delivery path; exit code 1 if not delivered."""
    from airflow_ordo_hooks.callbacks.payloads import BUILDERS
    from airflow_ordo_hooks.hooks.webhook import deliver, encode

    body = encode(BUILDERS[args.action](sample_payload(datetime.now(timezone.utc))))
    record = deliver(args.target, body, signing_secret=args.signing_secret)
    request = {"method": "POST", "target": record.target, "webhook_id": record.webhook_id, "signed": record.signed,
               "body": json.loads(body)}
    answer = {"delivered": record.ok, "status_code": record.status_code, "attempts": record.attempts,
              "elapsed_ms": record.elapsed_ms, "error": record.error}
    if args.output in ("json", "yaml"):
        _print([{"request": request, "answer": answer}], args.output)
    else:
        print(f"POST {record.target}")
        print(f"webhook-id: {record.webhook_id}")
        print(f"webhook-signature: {'yes (Standard Webhooks, v1)' if record.signed else 'none (no signing secret)'}")
        print(json.dumps(request["body"], indent=2, ensure_ascii=False))
        print()
        if record.ok:
            print(f"Answer: HTTP {record.status_code}, {record.attempts} attempt(s), {record.elapsed_ms} ms: delivered")
        else:
            print(f"Answer: {record.error} ({record.attempts} attempt(s), {record.elapsed_ms} ms)")
    if not record.ok:
        raise SystemExit(1)
