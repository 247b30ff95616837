"""``airflow ordo-hooks …`` through Airflow's own CLI parser: the real ledger (SQLite), the real redelivery loop, a real receiver."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid

import pytest
import standardwebhooks

from airflow_ordo_hooks._event_id import webhook_id
from airflow_ordo_hooks.server.models import Delivery
from airflow_ordo_hooks.server.redelivery import Redeliverer
from airflow_ordo_hooks.server.schedule import utcnow
from airflow_ordo_hooks.server.shown import as_dict, target_of
from airflow_ordo_hooks.testing.receiver import Respond
from tests.server.reported import record

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.fixture(autouse=True)
def _quick_schedule(monkeypatch):
    monkeypatch.setenv("AIRFLOW__ORDO_HOOKS__REDELIVERY_SCHEDULE", "0, 0.1")
    monkeypatch.setenv("AIRFLOW__ORDO_HOOKS__REDELIVERY_POLL_SECONDS", "0.05")


def cli(*argv: str) -> tuple[int, str]:
    """Run ``airflow ordo-hooks <argv>`` as the ``airflow`` command parses it, in this process: ``(exit code, stdout)``."""
    import contextlib
    import io

    from airflow.cli import cli_parser

    args = cli_parser.get_parser().parse_args(["ordo-hooks", *argv])
    out = io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out):
        try:
            args.func(args)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
            if not isinstance(exc.code, int):
                print(exc.code)
    return code, out.getvalue()


def item(target: str, *, task_id: str = "brew", state_attempts=(503,), dag_id: str = "coffee_shop") -> dict:
    """A delivery as a callback reports it: failed inline with ``state_attempts``."""
    wid = webhook_id(dag_id, "manual__1", task_id, -1, 1, "on_error", target)
    return {
        "webhook_id": wid, "dag_id": dag_id, "run_id": "manual__1", "task_id": task_id, "map_index": -1,
        "try_number": 1, "event": "on_error", "action": "notify_webhook", "target": target, "target_masked": "",
        "payload": json.dumps({"name": task_id, "status": 1}), "source": "callback", "outcome": "failed",
        "not_before": None,
        "attempts": [{"at": utcnow().isoformat(), "status_code": s, "error": f"HTTP {s}", "elapsed_ms": 5, "by": "worker"}
                     for s in state_attempts],
    }


def state_of(session, wid):
    session.expire_all()
    return session.get(Delivery, wid).state


def test_deliveries_lists_and_filters_the_ledger_with_targets_masked(ledger):
    secret_url = "https://hooks.example.com/services/T000/B000/s3cr3t-path"
    failed = item(secret_url, state_attempts=(503, 503))
    pending = item("https://other.example/hook", task_id="grind")
    record(ledger, [failed], by="worker", schedule=(0,))  # a schedule of the inline step only: given up
    record(ledger, [pending], by="worker")
    ledger.commit()

    code, out = cli("deliveries", "--state", "failed", "-o", "json")
    assert code == 0
    (shown,) = json.loads(out)
    assert shown["webhook_id"] == failed["webhook_id"] and shown["state"] == "failed" and shown["attempt_count"] == 2
    assert [a["status_code"] for a in shown["attempts"]] == [503, 503]

    code, table = cli("deliveries", "--dag-id", "coffee_shop")
    assert code == 0 and failed["webhook_id"] in table and pending["webhook_id"] in table
    assert "hooks.example.com/…#" in table
    code, out = cli("deliveries", "--task-id", "grind", "-o", "json")
    assert [d["webhook_id"] for d in json.loads(out)] == [pending["webhook_id"]]
    for text in (out, table):
        assert "s3cr3t" not in text and "T000" not in text


def test_redeliver_sends_a_given_up_delivery_again_with_its_webhook_id(ledger, receiver):
    path = f"/hooks/{uuid.uuid4().hex}"
    given = item(receiver.url(path), state_attempts=(503, 503))
    record(ledger, [given], by="worker", schedule=(0,))  # a schedule of the inline step only: given up
    ledger.commit()
    assert state_of(ledger, given["webhook_id"]) == "failed"

    with Redeliverer():
        code, out = cli("redeliver", given["webhook_id"], "--wait", "20", "-o", "json")
    assert code == 0, out
    (shown,) = json.loads(out)
    assert shown["state"] == "delivered" and shown["attempt_count"] == 3
    (request,) = receiver.wait_for(1)
    assert request.path == path and request.header("webhook-id") == given["webhook_id"]
    assert request.body == given["payload"].encode()


def test_redeliver_failed_since_takes_only_those_given_up_and_says_when_one_fails_again(ledger, receiver):
    receiver.script("/still-down", *[Respond(500)] * 5)
    down = item(receiver.url("/still-down"), state_attempts=(503, 503))
    other_dag = item(receiver.url("/other"), state_attempts=(503, 503), dag_id="tea_house")
    waiting = item(receiver.url("/waiting"), task_id="grind")  # pending: not given up
    record(ledger, [down, other_dag], by="worker", schedule=(0,))  # a schedule of the inline step only: given up
    record(ledger, [waiting], by="worker")
    ledger.commit()

    with Redeliverer():
        code, out = cli("redeliver", "--failed-since", "1h", "--dag-id", "coffee_shop", "--wait", "20")
        # the pending one is sent by its schedule meanwhile: wait for it before the loop stops
        deadline = time.monotonic() + 20
        while state_of(ledger, waiting["webhook_id"]) != "delivered":
            assert time.monotonic() < deadline
            time.sleep(0.05)
    assert code == 1 and f"not delivered (failed, or not settled within 20 s): {down['webhook_id']}" in out
    assert [r.path for r in receiver.requests if r.path != "/waiting"] == ["/still-down"]
    assert state_of(ledger, down["webhook_id"]) == "failed" and state_of(ledger, other_dag["webhook_id"]) == "failed"


def test_redeliver_refuses_what_it_cannot_do_naming_it(ledger):
    code, out = cli("redeliver")
    assert code == 1 and "name the webhook-id of each delivery, or give --failed-since" in out
    code, out = cli("redeliver", "msg_not_there")
    assert code == 1 and "not in the ledger, or being sent right now: msg_not_there" in out
    code, out = cli("redeliver", "--failed-since", "yesterday")
    assert code == 1 and "--failed-since: expected an ISO 8601 time or a duration like 30m, 2h, 1d; got 'yesterday'" in out
    code, out = cli("redeliver", "--failed-since", "2026-11-23T08:00:00")
    assert code == 1 and "has no time zone" in out


def test_rotate_fernet_key_reencrypts_the_ledger_so_that_the_new_key_alone_reads_it(ledger, fernet_key):
    from cryptography.fernet import Fernet

    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    fernet_key(old)
    given = [item("https://hooks.example.com/services/T000/B000/s3cr3t-path"), item("conn:slack/services/x", task_id="grind")]
    record(ledger, given, by="worker")
    ledger.commit()

    fernet_key("")
    assert cli("rotate-fernet-key") == (1, "rotate-fernet-key: [core] fernet_key is empty: there is no key to encrypt targets with\n")
    fernet_key(f"{new},{old}")  # `airflow rotate-fernet-key` is run with it too
    assert cli("rotate-fernet-key") == (0, "Re-encrypted the targets of 2 deliveries with the first key of [core] fernet_key\n")
    assert cli("rotate-fernet-key")[1].startswith("Re-encrypted the targets of 0 deliveries")

    fernet_key(new)  # the old key dropped: the redelivery loop reads targets as target_of does
    ledger.expire_all()
    assert [target_of(ledger.get(Delivery, g["webhook_id"])) for g in given] == [g["target"] for g in given]


def test_rotate_fernet_key_names_what_no_key_decrypts_and_keeps_the_rest_reencrypted(ledger, fernet_key):
    from cryptography.fernet import Fernet

    lost, old, new = (Fernet.generate_key().decode() for _ in range(3))
    fernet_key(lost)
    gone = item("https://lost.example/hook", task_id="lost")
    record(ledger, [gone], by="worker")
    fernet_key(old)
    kept = item("https://kept.example/hook", task_id="kept")
    record(ledger, [kept], by="worker")
    ledger.commit()

    fernet_key(f"{new},{old}")
    code, out = cli("rotate-fernet-key")
    assert code == 1
    assert out.startswith("Re-encrypted the targets of 1 deliveries with the first key of [core] fernet_key\n")
    assert "no key of [core] fernet_key decrypts the target of 1 deliveries" in out and gone["webhook_id"] in out
    fernet_key(new)
    ledger.expire_all()
    assert target_of(ledger.get(Delivery, kept["webhook_id"])) == "https://kept.example/hook"


def test_test_fire_sends_a_signed_sample_event_that_standard_webhooks_verifies(receiver):
    code, out = cli("test-fire", receiver.url("/check"), "--signing-secret", SECRET, "-o", "json")
    assert code == 0, out
    (shown,) = json.loads(out)
    (request,) = receiver.wait_for(1)
    verified = standardwebhooks.Webhook(SECRET).verify(request.body, request.headers)
    assert verified == shown["request"]["body"] == request.json
    assert verified["name"] == "test_fire" and verified["airflow"]["state"] == "failed"
    assert shown["request"]["signed"] is True and shown["request"]["webhook_id"] == request.header("webhook-id")
    assert shown["answer"] == {"delivered": True, "status_code": 200, "attempts": 1, "elapsed_ms": shown["answer"]["elapsed_ms"],
                               "error": None}


def test_test_fire_through_a_connection_uses_its_secret_and_slacks_body(receiver, monkeypatch):
    conn = {"conn_type": "http", "host": receiver.url("").rstrip("/"), "extra": {"signing_secret": SECRET}}
    monkeypatch.setenv("AIRFLOW_CONN_TEST_FIRE_SLACK", json.dumps(conn))
    code, out = cli("test-fire", "conn:test_fire_slack/services/x", "--action", "notify_slack_webhook")
    assert code == 0, out
    (request,) = receiver.wait_for(1)
    body = standardwebhooks.Webhook(SECRET).verify(request.body, request.headers)
    assert request.path == "/services/x" and set(body) == {"text"} and "test_fire" in body["text"]
    assert "webhook-signature: yes" in out and "Answer: HTTP 200" in out and SECRET not in out


def test_test_fire_exits_1_with_the_receivers_answer_when_it_is_refused(receiver):
    receiver.script("/refuse", Respond(403, body=b"no such hook"))
    code, out = cli("test-fire", receiver.url("/refuse"))
    assert code == 1
    assert "Answer: HTTP 403: no such hook (1 attempt(s)" in out and "webhook-signature: none" in out


def test_the_airflow_command_lists_the_providers_commands():
    # the real `airflow` executable finds them through the provider's metadata
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    out = subprocess.run([os.path.join(os.path.dirname(sys.executable), "airflow"), "ordo-hooks", "--help"],
                         capture_output=True, text=True, env=env, timeout=120, check=True).stdout
    for command in ("deliveries", "redeliver", "test-fire", "rotate-fernet-key"):
        assert command in out


def test_deliveries_shows_payloads_masked_as_the_api_and_the_view_do(ledger):
    # one masking for every reader of payloads: a conf's password kept in a payload never prints
    given = {**item("https://hooks.example.com/x", task_id="secretive"),
             "payload": json.dumps({"name": "secretive", "params": {"password": "hunter2", "api_token": "tok-123", "rows": 3}})}
    record(ledger, [given], by="worker")
    ledger.commit()
    code, out = cli("deliveries", "--task-id", "secretive", "-o", "json")
    assert code == 0
    (shown,) = json.loads(out)
    assert shown["payload"] == {"name": "secretive", "params": {"password": "***", "api_token": "***", "rows": 3}}
    assert "hunter2" not in out and "tok-123" not in out
    row = ledger.get(Delivery, given["webhook_id"])
    assert shown["payload"] == as_dict(row)["payload"]  # what the API's routes answer
