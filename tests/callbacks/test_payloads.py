"""SPEC §3: cheek's payloads, built without HTTP or Airflow runs (pure functions)."""

from __future__ import annotations

import subprocess
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest

from airflow_ordo_hooks.hooks.webhook import encode, deliver
from airflow_ordo_hooks.callbacks.trigger import child_conf
from airflow_ordo_hooks.callbacks.payloads import (
    DISCORD_LIMIT,
    SLACK_LIMIT,
    chat_text,
    discord_payload,
    exit_status,
    job_event_payload,
    keep_tail,
    slack_payload,
    triggered_by,
)

TEAPOT = {"name": "TeapotTask", "status": 0, "log": "I'm a teapot, not a coffee machine!"}
START = datetime(2026, 11, 22, 12, 0, tzinfo=timezone.utc)


def test_slack_and_discord_bodies_match_cheeks_documented_example_byte_for_byte(receiver):
    slack = b'{"text":"TeapotTask (exitcode 0):\\nI\'m a teapot, not a coffee machine!"}'
    discord = b'{"content":"TeapotTask (exitcode 0):\\nI\'m a teapot, not a coffee machine!"}'
    assert encode(slack_payload(TEAPOT)) == slack
    assert encode(discord_payload(TEAPOT)) == discord

    deliver(receiver.url("/slack"), slack_payload(TEAPOT))
    deliver(receiver.url("/discord"), discord_payload(TEAPOT))
    assert [r.body for r in receiver.wait_for(2)] == [slack, discord]


@pytest.mark.parametrize("build, key, limit", [(slack_payload, "text", SLACK_LIMIT), (discord_payload, "content", DISCORD_LIMIT)])
def test_a_100kb_multibyte_log_is_cut_to_the_limit_keeping_header_and_tail(build, key, limit):
    log = "".join(f"ligne {i}: café ☕ überlauf 🚀\n" for i in range(4000)) + "FINAL ERROR: kettle exploded 💥"
    assert len(log.encode()) > 100_000
    text = build({"name": "coffee", "status": 127, "log": log})[key]

    assert len(text) <= limit
    assert text.startswith("coffee (exitcode 127):\n[… ")
    assert " characters cut …]\n" in text
    assert text.endswith("FINAL ERROR: kettle exploded 💥")
    cut = int(text.split("[… ")[1].split(" ")[0])
    assert text.endswith(log[cut:]) and len(log) - cut == len(text) - text.index("]\n") - 2
    text.encode("utf-8")  # every character whole


def test_keep_tail_is_exact_at_the_limit_and_leaves_short_text_alone():
    assert keep_tail("short", 10) == "short"
    for limit in (40, 41, 99, 100, 101, 1000):
        cut = keep_tail("x" * 5000, limit)
        assert limit - 1 <= len(cut) <= limit
    assert chat_text("n", 0, "", 2000) == "n (exitcode 0):\n"


@pytest.mark.parametrize(
    "exception, status",
    [
        (None, -1),
        (RuntimeError("boom"), -1),
        (Exception("Bash command failed. The command returned a non-zero exit code 3."), 3),
        (subprocess.CalledProcessError(127, "this fails"), 127),
        (SystemExit(4), 4),
    ],
)
def test_exit_status(exception, status):
    assert exit_status(exception) == status


def _context(run_type="manual", conf=None, state="up_for_retry", try_number=2, exception=None):
    ti = SimpleNamespace(
        dag_id="d", task_id="t", run_id="r", map_index=-1, try_number=try_number, max_tries=3,
        state=state, start_date=START + timedelta(seconds=5), log_url="http://airflow/log",
    )
    dag_run = SimpleNamespace(dag_id="d", run_id="r", run_type=run_type, conf=conf or {}, start_date=START, run_after=START)
    return {"ti": ti, "dag_run": dag_run, "exception": exception}


def test_the_generic_payload_field_by_field():
    payload = job_event_payload(
        _context(exception=RuntimeError("exit code 2")), log="the log", retries_exhausted=False,
        now=START + timedelta(seconds=6, milliseconds=250), triggered=["cleanup_job"],
    )
    assert payload == {
        "status": 2,
        "log": "the log",
        "name": "t",
        "triggered_at": "2026-11-22T12:00:00+00:00",
        "triggered_by": "manual",
        "triggered": ["cleanup_job"],
        "retry_attempt": 1,
        "retries_exhausted": False,
        "duration": 1250,
        "airflow": {
            "dag_id": "d", "task_id": "t", "run_id": "r", "map_index": -1, "try_number": 2,
            "max_tries": 3, "state": "up_for_retry", "log_url": "http://airflow/log",
        },
    }


@pytest.mark.parametrize(
    "run_type, expected",
    [("scheduled", "cron"), ("manual", "manual"), ("backfill", "backfill"), ("asset_triggered", "asset")],
)
def test_triggered_by_follows_the_run_type(run_type, expected):
    assert triggered_by(SimpleNamespace(dag_id="d", run_id="r", run_type=run_type, conf={})) == expected


def test_a_run_started_by_trigger_job_carries_its_parent():
    parent = {"status": 1, "log": "x", "name": "coffee", "triggered_at": "t", "triggered_by": "cron"}
    # as a parent (run p of coffee) writes it for run r of d
    conf = {**child_conf("on_retries_exhausted", None, "coffee", "p", parent, target="d", target_run_id="r"), "user": 1}
    payload = job_event_payload(_context(run_type="manual", conf=conf, state="success"), log="", retries_exhausted=False, now=START)

    assert payload["triggered_by"] == "retries_exhausted[coffee]"
    assert payload["triggered_by_job_run"] == parent
    assert payload["status"] == 0


@pytest.mark.parametrize("dag_id, run_id", [("e", "r"), ("d", "r2")], ids=["another DAG", "another run of the DAG"])
def test_a_parent_context_copied_into_another_runs_conf_names_no_parent(dag_id, run_id):
    parent = {"status": 1, "log": "x", "name": "coffee", "triggered_at": "t", "triggered_by": "cron"}
    conf = child_conf("on_retries_exhausted", None, "coffee", "p", parent, target="d", target_run_id="r")
    context = _context(run_type="manual", conf=conf, state="success")
    context["dag_run"].dag_id, context["dag_run"].run_id = dag_id, run_id
    payload = job_event_payload(context, log="", retries_exhausted=False, now=START)

    assert payload["triggered_by"] == "manual"
    assert "triggered_by_job_run" not in payload
