"""The ledger's client side: what a callback hands over, and what it does when the ledger cannot take it."""

from __future__ import annotations

import json
import logging
import socket

from airflow_ordo_hooks.callbacks import ledger_client
from airflow_ordo_hooks.callbacks.message import Message
from airflow_ordo_hooks.hooks.webhook import DeliveryPolicy, deliver, encode


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_item_holds_the_body_sent_each_attempt_and_a_masked_target(receiver):
    secret_url = receiver.url("/hooks/T000/B000/XXXXsecretXXXX")
    body = encode({"status": 1, "name": "brew"})
    record = deliver(secret_url, body, policy=DeliveryPolicy(), webhook_id="msg_fixed")
    item = Message(
        webhook_id="msg_fixed", dag_id="coffee", run_id="r1", task_id="brew", map_index=-1, try_number=1,
        event="on_error", action="notify_webhook", target=secret_url, body=body, source="callback",
    ).attempted(record, by="worker").to_json()
    assert item["outcome"] == "delivered" and item["target"] == secret_url
    assert "target_masked" not in item  # the ledger derives what readers see of the target
    assert json.loads(item["payload"]) == {"status": 1, "name": "brew"}
    (attempt,) = item["attempts"]
    assert attempt["status_code"] == 200 and attempt["by"] == "worker" and attempt["at"].endswith("+00:00")
    assert receiver.requests[0].header("webhook-id") == "msg_fixed"


def test_a_recovered_item_is_pending_with_no_attempts_and_its_conn_target_shown_without_its_endpoint():
    from airflow_ordo_hooks.server.shown import shown_target

    item = Message(
        webhook_id="msg_x", dag_id="d", run_id="r", task_id=None, map_index=-1, try_number=0, event="on_success",
        action="notify_slack_webhook", target="conn:slack/services/T0/B0/secret", body=b"{}", source="recovery",
    ).to_json()
    assert item["outcome"] == "pending" and item["attempts"] == []
    assert shown_target(item["target"]) == "conn:slack/…"  # as the ledger names it to every reader


def test_without_the_api_connection_the_ledger_is_not_in_use(monkeypatch):
    monkeypatch.setenv("AIRFLOW__ORDO_HOOKS__API_CONN_ID", "no_such_connection_here")
    assert ledger_client.in_use() is False
    monkeypatch.setenv("AIRFLOW_CONN_NO_SUCH_CONNECTION_HERE", json.dumps({"conn_type": "http", "host": "127.0.0.1"}))
    assert ledger_client.in_use() is True
    monkeypatch.setenv("AIRFLOW__ORDO_HOOKS__LEDGER", "false")
    assert ledger_client.in_use() is False


def test_a_ledger_that_cannot_be_reached_is_reported_not_raised(monkeypatch, caplog):
    port = _free_port()  # nothing listens there: the connection is refused
    monkeypatch.setenv("AIRFLOW_CONN_LEDGER_DOWN", json.dumps(
        {"conn_type": "http", "host": "127.0.0.1", "port": port, "extra": {"token": "t"}}))
    monkeypatch.setenv("AIRFLOW__ORDO_HOOKS__API_CONN_ID", "ledger_down")
    monkeypatch.setenv("AIRFLOW__ORDO_HOOKS__BUDGET", "1")
    item = Message(
        webhook_id="msg_y", dag_id="d", run_id="r", task_id="t", map_index=-1, try_number=1, event="on_error",
        action="notify_webhook", target="https://example.com/x", body=b"{}", source="callback",
    )
    with caplog.at_level(logging.WARNING, logger="airflow_ordo_hooks.callbacks.ledger_client"):
        assert ledger_client.record([item]) is False
    assert "did not take 1 delivery" in caplog.text
    assert ledger_client.record([]) is True


def _context(dag_id: str = "coffee"):
    from datetime import datetime, timezone
    from types import SimpleNamespace

    now = datetime.now(timezone.utc)
    ti = SimpleNamespace(dag_id=dag_id, task_id="brew", run_id="r1", map_index=-1, try_number=1, max_tries=0,
                         state="failed", start_date=now, log_url="http://localhost:8080/log")
    return {"ti": ti, "task": SimpleNamespace(retries=0), "exception": RuntimeError("boom"),
            "dag_run": SimpleNamespace(run_type="manual", conf={}, start_date=now, run_after=now, dag_id=dag_id, run_id="r1")}


def _ledger_at(receiver, monkeypatch) -> None:
    """The receiver stands for the API server: the ledger's endpoints answer what a test scripts."""
    monkeypatch.setenv("AIRFLOW_CONN_LEDGER_HERE", json.dumps(
        {"conn_type": "http", "host": "127.0.0.1", "port": receiver.port, "extra": {"token": "t"}}))
    monkeypatch.setenv("AIRFLOW__ORDO_HOOKS__API_CONN_ID", "ledger_here")


def test_a_failure_reported_twice_is_sent_once_when_the_ledger_holds_it(receiver, monkeypatch):
    """The scheduler asks the DAG processor to run a dead try's failure callbacks twice (heartbeat timeout, executor report)."""
    from airflow_ordo_hooks import _event_id
    from airflow_ordo_hooks.dag_file.job_events import parse_hooks
    from airflow_ordo_hooks.callbacks.job_event import event_facts, fire
    from airflow_ordo_hooks.testing.receiver import Respond

    _ledger_at(receiver, monkeypatch)
    target = receiver.url("/event")
    job_events = parse_hooks({"on_error": {"notify_webhook": [target]}})
    context = _context()
    wid = _event_id.webhook_id(**event_facts(context), event="on_error", target=target)
    existing = "/ordo-hooks/api/v1/deliveries/existing"
    recorded = json.dumps({"deliveries": [{"webhook_id": wid, "state": "delivered", "new": True}]}).encode()
    receiver.script(existing, Respond(body=b'{"existing": []}'), Respond(body=json.dumps({"existing": [wid]}).encode()))
    receiver.script("/ordo-hooks/api/v1/deliveries", Respond(body=recorded))

    fire(["on_error"], job_events, context)  # the first report: not in the ledger, sent and recorded
    fire(["on_error"], job_events, context)  # the second: the ledger holds it
    paths = [r.path for r in receiver.requests]
    assert paths == [existing, "/event", "/ordo-hooks/api/v1/deliveries", existing]
    assert receiver.requests[1].header("webhook-id") == wid


def test_when_the_ledger_cannot_say_what_it_holds_the_event_is_sent(receiver, monkeypatch):
    from airflow_ordo_hooks.dag_file.job_events import parse_hooks
    from airflow_ordo_hooks.callbacks.job_event import fire
    from airflow_ordo_hooks.testing.receiver import Respond

    _ledger_at(receiver, monkeypatch)
    monkeypatch.setenv("AIRFLOW__ORDO_HOOKS__MAX_ATTEMPTS", "1")
    receiver.script("/ordo-hooks/api/v1/deliveries/existing", Respond(status=404))
    receiver.script("/ordo-hooks/api/v1/deliveries", Respond(status=404))
    fire(["on_error"], parse_hooks({"on_error": {"notify_webhook": [receiver.url("/event")]}}), _context())
    assert [r.path for r in receiver.requests].count("/event") == 1


def test_a_hanging_receiver_costs_a_callback_at_most_the_inline_budget_for_all_its_events(receiver, monkeypatch):
    """A try's final failure fires on_error and on_retries_exhausted: the inline budget bounds them both, hand-off included."""
    import time

    from airflow_ordo_hooks.dag_file.job_events import parse_hooks
    from airflow_ordo_hooks.callbacks.job_event import fire
    from airflow_ordo_hooks.testing.receiver import Respond

    _ledger_at(receiver, monkeypatch)
    monkeypatch.setenv("AIRFLOW__ORDO_HOOKS__INLINE_BUDGET", "1.0")
    receiver.script("/hang", *[Respond(200, delay=30)] * 10)
    receiver.script("/ordo-hooks/api/v1/deliveries/existing", *[Respond(body=b'{"existing": []}')] * 2)
    receiver.script("/ordo-hooks/api/v1/deliveries", *[Respond(body=b'{"deliveries": []}')] * 2)
    job_events = parse_hooks({"on_error": {"notify_webhook": [receiver.url("/hang")]},
                         "on_retries_exhausted": {"notify_webhook": [receiver.url("/hang")]}})

    start = time.monotonic()
    fire(["on_error", "on_retries_exhausted"], job_events, _context())
    elapsed = time.monotonic() - start

    assert elapsed < 1.0 + 0.2, f"{elapsed:.2f} s: each event spent the whole inline budget"
    handed = [r.json["deliveries"] for r in receiver.requests if r.path == "/ordo-hooks/api/v1/deliveries"]
    assert [d["event"] for batch in handed for d in batch] == ["on_error", "on_retries_exhausted"]
    assert all(d["attempts"] and d["attempts"][0]["status_code"] is None for batch in handed for d in batch), handed


def _ledger_with_login_at(receiver, monkeypatch) -> None:
    """As :func:`_ledger_at`, with a login and password: the client gets a token from ``/auth/token`` first."""
    monkeypatch.setenv("AIRFLOW_CONN_LEDGER_LOGIN", json.dumps(
        {"conn_type": "http", "host": "127.0.0.1", "port": receiver.port, "login": "admin", "password": "pw"}))
    monkeypatch.setenv("AIRFLOW__ORDO_HOOKS__API_CONN_ID", "ledger_login")


def test_a_success_sends_its_webhook_before_asking_for_the_ledgers_token(receiver, monkeypatch):
    """With no client made while the try ran, the token is asked for once the webhook has its answer: nothing competes with it."""
    from airflow_ordo_hooks.dag_file.job_events import parse_hooks
    from airflow_ordo_hooks.callbacks.job_event import fire
    from airflow_ordo_hooks.testing.receiver import Respond

    _ledger_with_login_at(receiver, monkeypatch)
    receiver.script("/slow", Respond(200, delay=0.5))
    receiver.script("/auth/token", Respond(201, body=b'{"access_token": "tok"}'))
    receiver.script("/ordo-hooks/api/v1/deliveries", Respond(body=b'{"deliveries": []}'))
    context = _context()
    context["ti"].state, context["exception"] = "success", None

    fire(["on_success"], parse_hooks({"on_success": {"notify_webhook": [receiver.url("/slow")]}}), context)

    assert [r.path for r in receiver.requests] == ["/slow", "/auth/token", "/ordo-hooks/api/v1/deliveries"]
    slow, token, recorded = receiver.requests
    assert token.received_at >= slow.received_at + 0.5
    assert recorded.header("authorization") == "Bearer tok"
    assert recorded.json["deliveries"][0]["outcome"] == "delivered"


def test_a_failure_asks_for_one_token_for_what_the_ledger_holds_and_for_recording(receiver, monkeypatch):
    from airflow_ordo_hooks.dag_file.job_events import parse_hooks
    from airflow_ordo_hooks.callbacks.job_event import fire
    from airflow_ordo_hooks.testing.receiver import Respond

    _ledger_with_login_at(receiver, monkeypatch)
    receiver.script("/auth/token", *[Respond(201, body=b'{"access_token": "tok"}')] * 3)
    receiver.script("/ordo-hooks/api/v1/deliveries/existing", Respond(body=b'{"existing": []}'))
    receiver.script("/ordo-hooks/api/v1/deliveries", Respond(body=b'{"deliveries": []}'))

    fire(["on_error"], parse_hooks({"on_error": {"notify_webhook": [receiver.url("/event")]}}), _context())

    assert [r.path for r in receiver.requests] == [
        "/auth/token", "/ordo-hooks/api/v1/deliveries/existing", "/event", "/ordo-hooks/api/v1/deliveries"]


def test_a_ledger_client_made_beforehand_that_failed_is_reported_not_raised(monkeypatch, caplog):
    port = _free_port()  # nothing listens there: the token cannot be had, beforehand or then
    monkeypatch.setattr(ledger_client, "_prepared", [])
    monkeypatch.setenv("AIRFLOW_CONN_LEDGER_DOWN", json.dumps(
        {"conn_type": "http", "host": "127.0.0.1", "port": port, "login": "admin", "password": "pw"}))
    monkeypatch.setenv("AIRFLOW__ORDO_HOOKS__API_CONN_ID", "ledger_down")
    monkeypatch.setenv("AIRFLOW__ORDO_HOOKS__BUDGET", "1")
    import time

    item = Message(
        webhook_id="msg_z", dag_id="d", run_id="r", task_id="t", map_index=-1, try_number=1, event="on_success",
        action="notify_webhook", target="https://example.com/x", body=b"{}", source="callback",
    )
    ledger_client.prepare_client(after=0)()
    with caplog.at_level(logging.INFO, logger="airflow_ordo_hooks.callbacks.ledger_client"):
        assert ledger_client.record([item], deadline=time.monotonic() + 5, api=ledger_client.prepared_client()) is False
    assert "made beforehand failed" in caplog.text and "did not take 1 delivery" in caplog.text


def test_a_success_looks_the_ledgers_connection_up_only_after_its_webhook_left(receiver, monkeypatch):
    """In a task process, looking a connection up is a round trip through the supervisor: not before the webhook."""
    import time

    from airflow_ordo_hooks.dag_file.job_events import parse_hooks
    from airflow_ordo_hooks.callbacks.job_event import fire
    from airflow_ordo_hooks.testing.receiver import Respond

    _ledger_at(receiver, monkeypatch)
    receiver.script("/ordo-hooks/api/v1/deliveries", Respond(body=b'{"deliveries": []}'))
    looked_up = []
    in_use = ledger_client.in_use
    monkeypatch.setattr(ledger_client, "in_use", lambda: looked_up.append(time.time()) or in_use())
    context = _context()
    context["ti"].state, context["exception"] = "success", None

    fire(["on_success"], parse_hooks({"on_success": {"notify_webhook": [receiver.url("/event")]}}), context)

    assert [r.path for r in receiver.requests] == ["/event", "/ordo-hooks/api/v1/deliveries"]
    assert len(looked_up) == 1 and looked_up[0] > receiver.requests[0].received_at


def test_without_the_ledgers_connection_a_failed_delivery_is_retried_within_the_delivery_budget(receiver, monkeypatch):
    """The ledger is on by default; without its connection, the inline budget does not cut a delivery's own retries short."""
    from airflow_ordo_hooks.dag_file.job_events import parse_hooks
    from airflow_ordo_hooks.callbacks.job_event import fire
    from airflow_ordo_hooks.testing.receiver import Respond

    monkeypatch.setenv("AIRFLOW__ORDO_HOOKS__API_CONN_ID", "no_such_connection_here")
    monkeypatch.setenv("AIRFLOW__ORDO_HOOKS__INLINE_BUDGET", "0.3")
    monkeypatch.setenv("AIRFLOW__ORDO_HOOKS__BUDGET", "5")
    receiver.script("/event", Respond(500, delay=0.4), Respond(200))
    context = _context()
    context["ti"].state, context["exception"] = "success", None

    fire(["on_success"], parse_hooks({"on_success": {"notify_webhook": [receiver.url("/event")]}}), context)

    assert [r.path for r in receiver.requests] == ["/event", "/event"]
