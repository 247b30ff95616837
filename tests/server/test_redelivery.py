"""Redelivery as the API server runs it: a real receiver on loopback, a real SQLite database, the real loop thread."""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import text

from airflow_ordo_hooks._event_id import webhook_id
from airflow_ordo_hooks.hooks.webhook import DeliveryPolicy, deliver
from airflow_ordo_hooks.server.claims import due_ids, request_redelivery
from airflow_ordo_hooks.server.models import Delivery
from airflow_ordo_hooks.server.redelivery import Redeliverer
from airflow_ordo_hooks.server.schedule import utcnow
from airflow_ordo_hooks.testing.receiver import Respond
from tests.server.reported import record


@pytest.fixture(autouse=True)
def _quick_schedule(monkeypatch):
    monkeypatch.setenv("AIRFLOW__ORDO_HOOKS__REDELIVERY_SCHEDULE", "0, 0.2, 0.2")
    monkeypatch.setenv("AIRFLOW__ORDO_HOOKS__REDELIVERY_POLL_SECONDS", "0.05")


def wait_until(condition, timeout=20.0, what="the condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"no {what} within {timeout} s"
        time.sleep(0.02)


def state_of(session, webhook_id):
    session.expire_all()
    found = session.get(Delivery, webhook_id)
    return found.state if found else None


def item(target, *, event="on_error", task_id="brew", attempts=(), outcome="pending", source="callback"):
    wid = webhook_id("coffee_shop", "manual__1", task_id, -1, 1, event, target)
    return {
        "webhook_id": wid, "dag_id": "coffee_shop", "run_id": "manual__1", "task_id": task_id, "map_index": -1,
        "try_number": 1, "event": event, "action": "notify_webhook", "target": target, "target_masked": "",
        "payload": json.dumps({"name": task_id, "status": 1}), "source": source, "attempts": list(attempts),
        "outcome": outcome, "not_before": None,
    }


def test_a_receiver_failing_twice_gets_three_attempts_with_one_webhook_id_and_the_delivery_ends_delivered(ledger, receiver):
    path = f"/hooks/{uuid.uuid4().hex}"
    receiver.script(path, Respond(500), Respond(503))  # then 200
    target = receiver.url(path)
    given = item(target)
    # the callback's own attempt, inline in the worker, as the client side reports it
    started = utcnow()
    inline = deliver(target, given["payload"].encode(), policy=DeliveryPolicy(max_attempts=1), webhook_id=given["webhook_id"])
    assert inline.status_code == 500
    given.update(outcome="failed", attempts=[{"at": started.isoformat(), "status_code": inline.status_code, "error": inline.error,
                                              "elapsed_ms": inline.elapsed_ms, "by": "worker"}])
    record(ledger, [given], by="worker")
    ledger.commit()

    with Redeliverer(concurrency=2):
        wait_until(lambda: state_of(ledger, given["webhook_id"]) == "delivered", what="delivered state")
    requests = receiver.requests
    assert len(requests) == 3
    assert {r.header("webhook-id") for r in requests} == {given["webhook_id"]}
    assert all(r.body == given["payload"].encode() for r in requests)
    ledger.expire_all()
    got = ledger.get(Delivery, given["webhook_id"])
    assert [(a.number, a.status_code, a.by) for a in got.attempts] == [
        (1, 500, "worker"), (2, 503, "api-server"), (3, 200, "api-server")
    ]
    # attempt 3 came schedule[2] (0.2 s) after attempt 2 ended
    assert got.attempts[2].at >= got.attempts[1].at + timedelta(seconds=0.2)


def test_a_410_stops_redelivery(ledger, receiver):
    path = f"/gone/{uuid.uuid4().hex}"
    receiver.script(path, Respond(410), Respond(200), Respond(200))
    given = item(receiver.url(path))
    record(ledger, [given], by="worker")
    ledger.commit()
    with Redeliverer():
        wait_until(lambda: state_of(ledger, given["webhook_id"]) == "gone", what="gone state")
        # a delivery recorded afterwards goes through the same loop: once it is delivered, the
        # loop has polled again, and the gone one was not sent to again
        after = item(receiver.url("/after"), task_id="after")
        record(ledger, [after], by="worker")
        ledger.commit()
        wait_until(lambda: state_of(ledger, after["webhook_id"]) == "delivered", what="the later delivery")
    assert len(receiver.requests) == 2 and receiver.requests[0].path == path


def test_the_last_failure_marks_failed_with_one_error_line_and_no_secret_anywhere(ledger, receiver, caplog):
    secret = f"s3cr3t-{uuid.uuid4().hex}"
    path = f"/services/T000/{secret}"
    receiver.script(path, Respond(500), Respond(502), Respond(504), Respond(200))
    target = receiver.url(f"{path}?token=tok-{secret}")
    given = item(target)
    record(ledger, [given], by="worker")
    ledger.commit()
    with caplog.at_level(logging.INFO), Redeliverer():
        wait_until(lambda: state_of(ledger, given["webhook_id"]) == "failed", what="failed state")
    assert [r.path.split("?")[0] for r in receiver.requests] == [path] * 3  # the schedule has 3 entries: no fourth
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, [r.getMessage() for r in errors]
    line = errors[0].getMessage()
    assert "gave up delivering on_error of dag coffee_shop, run manual__1, task brew, try 1" in line
    assert "http://127.0.0.1:" in line and "3 attempt(s)" in line and "HTTP 504" in line
    dump = repr([tuple(r) for table in ("ordo_hooks_delivery", "ordo_hooks_delivery_attempt")
                 for r in ledger.execute(text(f"SELECT * FROM {table}"))])
    assert secret not in dump and secret not in caplog.text
    assert "T000" not in dump and "T000" not in caplog.text


def test_a_conn_target_is_resolved_in_the_api_server(ledger, receiver, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_LEDGER_RECEIVER", json.dumps(
        {"conn_type": "http", "host": "127.0.0.1", "port": receiver.port, "schema": "http"}))
    given = item("conn:ledger_receiver/hooks/conn-path")
    record(ledger, [given], by="worker")
    ledger.commit()
    with Redeliverer():
        wait_until(lambda: state_of(ledger, given["webhook_id"]) == "delivered", what="delivered state")
    (request,) = receiver.requests
    assert request.path == "/hooks/conn-path" and request.header("webhook-id") == given["webhook_id"]
    ledger.expire_all()
    assert ledger.get(Delivery, given["webhook_id"]).target_masked == "conn:ledger_receiver/…"


@pytest.mark.parametrize("event", ["on_error", "on_success", "on_retries_exhausted", "on_exit"])
def test_every_url_the_api_server_sends_to_passes_its_egress_policy(ledger, receiver, monkeypatch, caplog, event):
    # whoever may record deliveries of a DAG names their targets: a receiver on an address the
    # operator has not allowed (loopback here) gets nothing, whatever the event, and the refusal is
    # a recorded attempt, the delivery failed at once, with one ERROR line
    monkeypatch.setenv("AIRFLOW__ORDO_HOOKS__ALLOWED_HOSTS", "")
    given = item(receiver.url(f"/internal/{event}"), event=event, task_id=None if event == "on_exit" else "brew")
    if event == "on_exit":
        given["action"] = "call_webhook"
    record(ledger, [given], by="worker")
    ledger.commit()
    with caplog.at_level(logging.ERROR, logger="airflow_ordo_hooks.server.schedule"), Redeliverer():
        wait_until(lambda: state_of(ledger, given["webhook_id"]) == "failed", what="failed state")
    assert receiver.requests == []
    ledger.expire_all()
    row = ledger.get(Delivery, given["webhook_id"])
    (attempt,) = row.attempts
    assert (attempt.by, attempt.status_code) == ("api-server", None)
    assert attempt.error.startswith("refused by egress policy: ") and "loopback" in attempt.error
    assert [r.getMessage() for r in caplog.records if "gave up" in r.getMessage()] != []

    # the operator allows the address, and a person's Redeliver sends it
    monkeypatch.setenv("AIRFLOW__ORDO_HOOKS__ALLOWED_HOSTS", "127.0.0.1")
    request_redelivery(ledger, [given["webhook_id"]], utcnow())
    ledger.commit()
    with Redeliverer():
        wait_until(lambda: state_of(ledger, given["webhook_id"]) == "delivered", what="delivered state")
    assert [r.path for r in receiver.requests] == [f"/internal/{event}"]


def test_one_dags_backlog_does_not_keep_another_dags_delivery_waiting(ledger):
    # 50 deliveries of one DAG waiting since 1970 (had a caller been able to write such a time)
    # and one of another DAG due now: each poll takes the DAGs in turn
    flood = [item(f"https://tarpit.example/{n}", task_id=f"t{n}") for n in range(50)]
    other = {**item("https://hooks.example/real", task_id="real"), "dag_id": "another_dag"}
    other["webhook_id"] = webhook_id("another_dag", "manual__1", "real", -1, 1, "on_error", other["target"])
    record(ledger, [*flood, other], by="worker")
    ledger.execute(text("UPDATE ordo_hooks_delivery SET next_attempt_at = '1970-01-01 00:00:00' WHERE dag_id = 'coffee_shop'"))
    ledger.commit()
    due = due_ids(ledger, utcnow(), 2)
    assert other["webhook_id"] in due and len(due) == 2
    assert due_ids(ledger, utcnow(), 4).count(other["webhook_id"]) == 1


def test_the_loop_survives_an_undecryptable_target_and_stops_cleanly(ledger, receiver):
    broken, fine = item("https://example.invalid/x", task_id="broken"), item(receiver.url("/fine"), task_id="fine")
    record(ledger, [broken, fine], by="worker")
    ledger.execute(text("UPDATE ordo_hooks_delivery SET target_encrypted = 'not-a-fernet-token' WHERE webhook_id = :id"),
                   {"id": broken["webhook_id"]})
    ledger.commit()
    redeliverer = Redeliverer().start()
    try:
        wait_until(lambda: state_of(ledger, fine["webhook_id"]) == "delivered", what="the other delivery")
        wait_until(lambda: state_of(ledger, broken["webhook_id"]) == "failed", what="the broken one failing")
    finally:
        redeliverer.stop()
    assert redeliverer._thread is None
    ledger.expire_all()
    assert "cannot be decrypted" in ledger.get(Delivery, broken["webhook_id"]).last_error


def test_the_loop_goes_on_when_the_database_fails(ledger, receiver, caplog):
    given = item(receiver.url("/after-an-outage"))
    record(ledger, [given], by="worker")
    ledger.execute(text("ALTER TABLE ordo_hooks_delivery RENAME TO ordo_hooks_delivery_away"))
    ledger.commit()
    with caplog.at_level(logging.ERROR, logger="airflow_ordo_hooks.server.redelivery"), Redeliverer():
        wait_until(lambda: "could not claim due deliveries" in caplog.text, what="the failure logged")
        ledger.execute(text("ALTER TABLE ordo_hooks_delivery_away RENAME TO ordo_hooks_delivery"))
        ledger.commit()
        wait_until(lambda: state_of(ledger, given["webhook_id"]) == "delivered", what="delivered state")
    assert [r.path for r in receiver.requests] == ["/after-an-outage"]


@pytest.fixture()
def short_lock_wait():
    """Every new connection of Airflow's engine waits 0.2 s for SQLite's write lock rather than sqlite3's 5 s."""
    from airflow import settings
    from sqlalchemy import event

    def short(dbapi_connection, _record):
        dbapi_connection.execute("PRAGMA busy_timeout = 200")

    event.listen(settings.engine, "connect", short)
    settings.engine.dispose()
    try:
        yield settings.engine.url.database
    finally:
        event.remove(settings.engine, "connect", short)
        settings.engine.dispose()


def test_an_attempt_made_while_the_database_is_locked_is_recorded_once_the_lock_is_gone(ledger, receiver, short_lock_wait):
    import sqlite3
    import threading

    path = f"/hooks/{uuid.uuid4().hex}"
    receiver.script(path, Respond(200, delay=1.0))  # time to take the lock once it has arrived
    given = item(receiver.url(path))
    record(ledger, [given], by="worker")
    ledger.commit()
    ledger.close()  # its connection holds no lock while the other writer does

    holder = sqlite3.connect(short_lock_wait, timeout=10, isolation_level=None, check_same_thread=False)
    released = threading.Event()
    # a short lease (1 + 2 + 5 s): an attempt whose record is lost would be sent again within the wait below
    with Redeliverer(policy=DeliveryPolicy(connect_timeout=1, read_timeout=2)):
        wait_until(lambda: receiver.requests, what="the attempt")
        holder.execute("BEGIN IMMEDIATE")  # another process writing: the attempt's record meets "database is locked"
        threading.Timer(2.0, lambda: (holder.execute("COMMIT"), released.set())).start()  # 1 s past the answer
        wait_until(lambda: state_of(ledger, given["webhook_id"]) == "delivered", timeout=12, what="delivered state")
        assert released.is_set(), "recorded while the lock was held: the test did not lock anything"
    holder.close()
    assert len(receiver.requests) == 1, "the attempt was sent again: its record was lost"
    ledger.expire_all()
    got = ledger.get(Delivery, given["webhook_id"])
    assert [(a.number, a.status_code, a.by) for a in got.attempts] == [(1, 200, "api-server")]


def answered(status_code):
    """One inline attempt, made just now, as a callback reports it."""
    error = None if status_code == 200 else f"HTTP {status_code}"
    return {"at": utcnow().isoformat(), "status_code": status_code, "error": error, "elapsed_ms": 5, "by": "worker"}


def attempted(session):
    """The ids of the deliveries the ledger holds attempts of."""
    return {r[0] for r in session.execute(text("SELECT DISTINCT webhook_id FROM ordo_hooks_delivery_attempt"))}


def test_the_loop_deletes_settled_deliveries_past_the_retention_and_keeps_pending_ones(ledger, monkeypatch):
    monkeypatch.setenv("AIRFLOW__ORDO_HOOKS__RETENTION_DAYS", str(10 / 86400))  # 10 s, as a fraction of a day
    long_ago = utcnow() - timedelta(minutes=5)
    old = item("https://hooks.example/old", task_id="old", outcome="delivered", attempts=[answered(200)])
    waiting = item("https://hooks.example/waiting", task_id="waiting", outcome="failed", attempts=[answered(503)])
    recent = item("https://hooks.example/recent", task_id="recent", outcome="delivered", attempts=[answered(200)])
    record(ledger, [old], by="worker", now=long_ago)
    record(ledger, [waiting], by="worker", schedule=(0, 3600), now=long_ago)  # pending: its next attempt in an hour
    record(ledger, [recent], by="worker")
    ledger.commit()
    with Redeliverer(prune_seconds=0.05):
        wait_until(lambda: state_of(ledger, old["webhook_id"]) is None, what="the old delivery deleted")
    assert state_of(ledger, waiting["webhook_id"]) == "pending" and state_of(ledger, recent["webhook_id"]) == "delivered"
    assert attempted(ledger) == {waiting["webhook_id"], recent["webhook_id"]}


def test_a_retention_of_0_days_keeps_every_delivery(ledger, monkeypatch):
    from airflow_ordo_hooks.server import retention

    monkeypatch.setenv("AIRFLOW__ORDO_HOOKS__RETENTION_DAYS", "0")
    passes, cutoff = [], retention.retention_cutoff
    monkeypatch.setattr(retention, "retention_cutoff", lambda: passes.append(utcnow()) or cutoff())
    old = item("https://hooks.example/old", task_id="old", outcome="delivered", attempts=[answered(200)])
    record(ledger, [old], by="worker", now=utcnow() - timedelta(days=36500))
    ledger.commit()
    with Redeliverer(prune_seconds=0.05):
        wait_until(lambda: len(passes) >= 3, what="three pruning passes")
        assert state_of(ledger, old["webhook_id"]) == "delivered"
        # the same loop deletes it once a retention is set: it was 0 that kept it
        monkeypatch.setenv("AIRFLOW__ORDO_HOOKS__RETENTION_DAYS", "1")
        wait_until(lambda: state_of(ledger, old["webhook_id"]) is None, what="the delivery deleted once retention_days is 1")


def test_the_loop_goes_on_redelivering_when_pruning_fails(ledger, receiver, monkeypatch, caplog):
    monkeypatch.setenv("AIRFLOW__ORDO_HOOKS__RETENTION_DAYS", "-1")  # out of bounds: every pass fails
    given = item(receiver.url("/while-pruning-fails"))
    record(ledger, [given], by="worker")
    ledger.commit()
    with caplog.at_level(logging.ERROR, logger="airflow_ordo_hooks.server.redelivery"), Redeliverer(prune_seconds=0.05):
        wait_until(lambda: caplog.text.count("could not delete settled deliveries") >= 2, what="two failed passes logged")
        wait_until(lambda: state_of(ledger, given["webhook_id"]) == "delivered", what="delivered state")
    assert "retention_days" in caplog.text


def test_the_loops_attempts_and_what_they_settle_are_counted_as_airflows_statsd_client_sends_them(ledger, receiver):
    from tests.test_metrics import StatsdReceiver

    flaky, down = f"/flaky/{uuid.uuid4().hex}", f"/down/{uuid.uuid4().hex}"
    receiver.script(flaky, Respond(500))  # then 200
    receiver.script(down, *[Respond(503)] * 3)  # every step of the schedule (3)
    delivered, given_up = item(receiver.url(flaky), task_id="flaky"), item(receiver.url(down), task_id="down")
    with StatsdReceiver() as statsd:
        record(ledger, [delivered, given_up], by="worker")
        ledger.commit()
        with Redeliverer(concurrency=2):
            wait_until(lambda: {state_of(ledger, d["webhook_id"]) for d in (delivered, given_up)} == {"delivered", "failed"},
                       what="both settled")
        lines = statsd.lines(until=lambda got: sum(".delivery." in line for line in got) == 3)

    tags = "event=on_error,action=notify_webhook,source=callback,dag_id=coffee_shop"
    attempt = "airflow.ordo_hooks.attempt,component=api-server,outcome={}:1|c".format
    assert sorted(line for line in lines if not line.endswith("|g")) == sorted([
        attempt("5xx"), attempt("2xx"),
        f"airflow.ordo_hooks.delivery.delivered,component=api-server,{tags}:1|c",
        "airflow.ordo_hooks.delivery.time_to_deliver,component=api-server,source=callback:T|ms",
        *[attempt("5xx")] * 3,
        f"airflow.ordo_hooks.delivery.given_up,component=api-server,{tags}:1|c",
    ])


def test_the_loop_gauges_the_pending_backlog_and_the_age_of_its_oldest(ledger):
    from tests.test_metrics import StatsdReceiver

    later = (utcnow() + timedelta(hours=1)).isoformat()
    waiting = [{**item(f"https://hooks.example/{n}", task_id=f"t{n}"), "not_before": later} for n in range(2)]
    with StatsdReceiver() as statsd:
        record(ledger, waiting, by="worker")
        ledger.commit()
        time.sleep(0.2)
        with Redeliverer():  # polling every 0.05 s here
            statsd.lines(until=lambda got: any("oldest_pending_age" in line for line in got))
            time.sleep(0.5)
            lines = statsd.lines()

    assert len(lines) == 2, f"once in BACKLOG_SECONDS at the most: {lines}"
    assert lines[0] == "airflow.ordo_hooks.ledger.pending:2|g"
    age = float(re.fullmatch(r"airflow\.ordo_hooks\.ledger\.oldest_pending_age:([0-9.]+)\|g", lines[1]).group(1))
    assert 0.2 <= age < 10


def test_a_backlog_that_cannot_be_read_costs_the_loop_nothing(monkeypatch):
    from types import SimpleNamespace

    from airflow_ordo_hooks.server import redelivery
    from tests.test_metrics import StatsdReceiver

    monkeypatch.setattr(redelivery, "Delivery", SimpleNamespace())  # no table to read
    with StatsdReceiver() as statsd:
        Redeliverer()._gauge_backlog()
        assert statsd.lines() == []


def test_the_loop_tells_the_operations_target_of_a_given_up_delivery_once_sent_to_it_though_no_one_allowed_its_address(ledger, receiver, monkeypatch):
    # loopback is allowed to no URL a DAG names; the operations target is the operator's own, so it is sent to all the same
    monkeypatch.setenv("AIRFLOW__ORDO_HOOKS__ALLOWED_HOSTS", "")
    monkeypatch.setenv("AIRFLOW__ORDO_HOOKS__OPERATIONS_TARGET", receiver.url("/operations"))
    monkeypatch.setenv("AIRFLOW__ORDO_HOOKS__TARGET_FAILING_SECONDS", "2")  # looked at every 0.2 s
    given = item(receiver.url("/internal/refused"))
    record(ledger, [given], by="worker")
    ledger.commit()
    with Redeliverer():
        (told,) = receiver.wait_for(1, timeout=20, path="/operations")
        time.sleep(1.0)  # five more looks: still told once
    assert [r.path for r in receiver.requests] == ["/operations"]  # the refused delivery itself reached nothing
    body = json.loads(told.body)
    assert (body["type"], body["data"]["webhook_id"], body["data"]["task_id"]) == ("delivery.given_up", given["webhook_id"], "brew")
    assert body["data"]["last_error"].startswith("refused by egress policy")
    assert told.header("webhook-id").startswith("msg_") and told.header("webhook-id") != given["webhook_id"]
