"""Redelivery as the API server runs it: a real receiver on loopback, a real SQLite database, the real loop thread."""

from __future__ import annotations

import json
import logging
import time
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import text

from airflow_ordo_hooks._event_id import webhook_id
from airflow_ordo_hooks.hooks.webhook import DeliveryPolicy, deliver
from airflow_ordo_hooks.ledger import store
from airflow_ordo_hooks.ledger.models import Delivery
from airflow_ordo_hooks.ledger.redelivery import Redeliverer
from airflow_ordo_hooks.testing.receiver import Respond


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
    started = store.utcnow()
    inline = deliver(target, given["payload"].encode(), policy=DeliveryPolicy(max_attempts=1), webhook_id=given["webhook_id"])
    assert inline.status_code == 500
    given.update(outcome="failed", attempts=[{"at": started.isoformat(), "status_code": inline.status_code, "error": inline.error,
                                              "elapsed_ms": inline.elapsed_ms, "by": "worker"}])
    store.record(ledger, [given], by="worker")
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
    store.record(ledger, [given], by="worker")
    ledger.commit()
    with Redeliverer():
        wait_until(lambda: state_of(ledger, given["webhook_id"]) == "gone", what="gone state")
        # a delivery recorded afterwards goes through the same loop: once it is delivered, the
        # loop has polled again, and the gone one was not sent to again
        after = item(receiver.url("/after"), task_id="after")
        store.record(ledger, [after], by="worker")
        ledger.commit()
        wait_until(lambda: state_of(ledger, after["webhook_id"]) == "delivered", what="the later delivery")
    assert len(receiver.requests) == 2 and receiver.requests[0].path == path


def test_the_last_failure_marks_failed_with_one_error_line_and_no_secret_anywhere(ledger, receiver, caplog):
    secret = f"s3cr3t-{uuid.uuid4().hex}"
    path = f"/services/T000/{secret}"
    receiver.script(path, Respond(500), Respond(502), Respond(504), Respond(200))
    target = receiver.url(f"{path}?token=tok-{secret}")
    given = item(target)
    store.record(ledger, [given], by="worker")
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
    store.record(ledger, [given], by="worker")
    ledger.commit()
    with Redeliverer():
        wait_until(lambda: state_of(ledger, given["webhook_id"]) == "delivered", what="delivered state")
    (request,) = receiver.requests
    assert request.path == "/hooks/conn-path" and request.header("webhook-id") == given["webhook_id"]
    ledger.expire_all()
    assert ledger.get(Delivery, given["webhook_id"]).target_masked == "conn:ledger_receiver/…"


def test_an_on_exit_url_is_checked_as_untrusted(ledger, receiver, monkeypatch):
    monkeypatch.setenv("AIRFLOW__ORDO_HOOKS__ALLOWED_CONF_HOSTS", "")  # loopback is then refused
    given = item(receiver.url("/report"), event="on_exit", task_id=None)
    given["action"] = "call_webhook"
    store.record(ledger, [given], by="worker")
    ledger.commit()
    with Redeliverer():
        wait_until(lambda: state_of(ledger, given["webhook_id"]) == "failed", what="failed state")
    assert receiver.requests == []
    ledger.expire_all()
    assert "loopback" in ledger.get(Delivery, given["webhook_id"]).last_error


def test_the_loop_survives_an_undecryptable_target_and_stops_cleanly(ledger, receiver):
    broken, fine = item("https://example.invalid/x", task_id="broken"), item(receiver.url("/fine"), task_id="fine")
    store.record(ledger, [broken, fine], by="worker")
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
    store.record(ledger, [given], by="worker")
    ledger.execute(text("ALTER TABLE ordo_hooks_delivery RENAME TO ordo_hooks_delivery_away"))
    ledger.commit()
    with caplog.at_level(logging.ERROR, logger="airflow_ordo_hooks.ledger.redelivery"), Redeliverer():
        wait_until(lambda: "could not claim due deliveries" in caplog.text, what="the failure logged")
        ledger.execute(text("ALTER TABLE ordo_hooks_delivery_away RENAME TO ordo_hooks_delivery"))
        ledger.commit()
        wait_until(lambda: state_of(ledger, given["webhook_id"]) == "delivered", what="delivered state")
    assert [r.path for r in receiver.requests] == ["/after-an-outage"]
