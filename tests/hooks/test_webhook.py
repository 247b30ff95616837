"""SPEC §5: the one delivery path, against a real receiver on loopback that really misbehaves."""

from __future__ import annotations

import re

import base64
import logging
import socket
import time

import pytest
import requests

from airflow_ordo_hooks.hooks.webhook import DeliveryPolicy, check_target, deliver, deliver_all, mask_url, TargetError
from airflow_ordo_hooks.testing.receiver import Drop, NeverFinish, Respond

# A delivery's budget counts resolving its target: importing HttpHook for the first conn: target of a
# process is a cost of the process, not of the delivery under test, so it is paid here, once.
import airflow_ordo_hooks.hooks._http_hooks  # noqa: E402,F401

# Short enough for a test suite, long enough to tell a retry from a timeout.
POLICY = DeliveryPolicy(
    connect_timeout=1.0, read_timeout=1.0, budget=4.0, max_attempts=4,
    backoff_initial=0.1, backoff_max=0.4, backoff_jitter=0.05,
)
PAYLOAD = {"status": 0, "name": "coffee", "log": "brewed ☕"}
SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()


def _within_budget(record, policy=POLICY):
    assert record.elapsed_ms <= policy.budget * 1000 + 300, record


def test_success_posts_json_with_our_headers(receiver):
    record = deliver(receiver.url("/ok"), PAYLOAD, policy=POLICY)

    assert (record.ok, record.status_code, record.attempts, record.error) == (True, 200, 1, None)
    (req,) = receiver.wait_for(1)
    assert req.method == "POST" and req.path == "/ok"
    assert req.header("Content-Type") == "application/json"
    from airflow_ordo_hooks import __version__

    assert req.header("User-Agent") == f"airflow-ordo-hooks/{__version__}"
    assert req.json == PAYLOAD
    assert req.header("webhook-signature") is None


def test_500_is_retried_until_attempts_run_out(receiver):
    receiver.script("/500", *[Respond(500, body=b"kaput")] * 10)
    record = deliver(receiver.url("/500"), PAYLOAD, policy=POLICY)

    assert not record.ok and record.status_code == 500 and record.attempts == 4
    assert len(receiver.wait_for(4)) == 4
    assert "HTTP 500: kaput" in record.error and "gave up after 4 attempt(s)" in record.error
    _within_budget(record)


def test_503_then_200_succeeds_on_the_second_attempt(receiver):
    receiver.script("/flaky", Respond(503), Respond(200))
    record = deliver(receiver.url("/flaky"), PAYLOAD, policy=POLICY)

    assert (record.ok, record.status_code, record.attempts, record.error) == (True, 200, 2, None)
    first, second = receiver.wait_for(2)
    assert first.body == second.body
    _within_budget(record)


def test_429_retry_after_is_honoured(receiver):
    receiver.script("/busy", Respond(429, headers={"Retry-After": "1"}), Respond(200))
    record = deliver(receiver.url("/busy"), PAYLOAD, policy=POLICY)

    assert (record.ok, record.attempts) == (True, 2)
    first, second = receiver.wait_for(2)
    # our own backoff would have waited at most 0.15 s: the gap is the receiver's Retry-After
    assert 1.0 <= second.received_at - first.received_at < 1.5
    _within_budget(record)


def test_retry_after_longer_than_the_budget_gives_up_at_once(receiver):
    receiver.script("/later", Respond(503, headers={"Retry-After": "120"}))
    record = deliver(receiver.url("/later"), PAYLOAD, policy=POLICY)

    assert (record.ok, record.status_code, record.attempts) == (False, 503, 1)
    assert record.elapsed_ms < 500


def test_no_attempt_is_started_that_the_budget_cannot_fit(receiver):
    # each attempt takes 0.5 s; after two and their waits (about 0.4 s) 1.7 s leave room for no third:
    # started anyway, it would be cut at the deadline, half sent or unanswered
    receiver.script("/slow500", *[Respond(500, delay=0.5)] * 10)
    policy = DeliveryPolicy(
        connect_timeout=1.0, read_timeout=1.0, budget=1.7, max_attempts=4,
        backoff_initial=0.1, backoff_max=0.4, backoff_jitter=0.05,
    )
    record = deliver(receiver.url("/slow500"), PAYLOAD, policy=policy)

    assert (record.ok, record.status_code, record.attempts) == (False, 500, 2), record
    assert "budget ran out" not in record.error
    assert len(receiver.wait_for(3, timeout=0.5)) == 2
    assert record.elapsed_ms < 1700


@pytest.mark.parametrize("status", [404, 410, 400, 401])
def test_4xx_other_than_429_is_not_retried(receiver, status):
    receiver.script("/gone", Respond(status))
    record = deliver(receiver.url("/gone"), PAYLOAD, policy=POLICY)

    assert (record.ok, record.status_code, record.attempts) == (False, status, 1)
    assert record.error.startswith(f"HTTP {status}")
    assert len(receiver.wait_for(2, timeout=0.3)) == 1


def test_a_response_slower_than_the_read_timeout_is_retried_within_the_budget(receiver):
    receiver.script("/slow", *[Respond(200, delay=3)] * 10)
    record = deliver(receiver.url("/slow"), PAYLOAD, policy=POLICY)

    assert not record.ok and record.status_code is None
    assert "Timeout" in record.error
    # each attempt waits 1 s for an answer: 3 or 4 of them fit in the 4 s budget
    assert record.attempts in (3, 4)
    assert len(receiver.requests) == record.attempts
    _within_budget(record)


def test_connection_refused_is_retried_within_the_budget():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    record = deliver(f"http://127.0.0.1:{port}/hook", PAYLOAD, policy=POLICY)

    assert not record.ok and record.status_code is None and record.attempts == 4
    assert "ConnectionError" in record.error and "refused" in record.error.lower()
    _within_budget(record)


def test_a_dropped_connection_is_retried(receiver):
    receiver.script("/drop", Drop(), Respond(200))
    record = deliver(receiver.url("/drop"), PAYLOAD, policy=POLICY)

    assert (record.ok, record.attempts) == (True, 2)


def test_a_host_that_does_not_resolve_fails_within_the_budget():
    record = deliver("http://no-such-host.invalid/hook", PAYLOAD, policy=POLICY)

    assert not record.ok and record.status_code is None and record.attempts >= 1
    assert "ConnectionError" in record.error
    _within_budget(record)


@pytest.mark.parametrize("url", ["http://[::1/hook", "htp://example.com/x", "http:///nohost", "example.com/hook", ""])
def test_a_malformed_url_is_recorded_not_raised(url):
    record = deliver(url, PAYLOAD, policy=POLICY)

    assert not record.ok and record.attempts == 0 and record.status_code is None
    assert record.error.startswith("TargetError")


def test_302_is_not_followed_into_a_get(receiver):
    receiver.script("/moved", Respond(302, headers={"Location": "/elsewhere"}))
    record = deliver(receiver.url("/moved"), PAYLOAD, policy=POLICY)

    assert (record.ok, record.status_code, record.attempts) == (False, 302, 1)
    # named masked, as every URL: the fingerprint tells the new location from the old
    assert "not followed" in record.error and mask_url(receiver.url("/elsewhere")) in record.error
    assert "/elsewhere" not in record.error
    time.sleep(0.2)
    assert [(r.method, r.path) for r in receiver.requests] == [("POST", "/moved")]


def test_307_keeps_the_post_and_its_body(receiver):
    receiver.script("/old", Respond(307, headers={"Location": "/new"}))
    receiver.script("/new", Respond(201))
    record = deliver(receiver.url("/old"), PAYLOAD, policy=POLICY)

    assert (record.ok, record.status_code, record.attempts) == (True, 201, 1)
    old, new = receiver.wait_for(2)
    assert (new.method, new.path, new.body) == ("POST", "/new", old.body)


def test_a_response_that_never_ends_does_not_hold_the_delivery(receiver):
    receiver.script("/endless", NeverFinish(200))
    record = deliver(receiver.url("/endless"), PAYLOAD, policy=POLICY)

    # the status line and headers say 200: the receiver has the payload; its endless body is not awaited
    assert (record.ok, record.status_code, record.attempts) == (True, 200, 1)
    assert record.elapsed_ms < 900


def test_an_error_response_that_never_ends_is_bounded(receiver):
    receiver.script("/endless500", *[NeverFinish(500)] * 10)
    record = deliver(receiver.url("/endless500"), PAYLOAD, policy=POLICY)

    assert not record.ok and record.status_code == 500 and record.attempts == 4
    _within_budget(record)


def test_final_failure_is_logged_once_at_warning_with_the_url_masked(receiver, caplog):
    receiver.script("/services/T000/B000/s3cr3t", *[Respond(500)] * 10)
    with caplog.at_level(logging.INFO, logger="airflow_ordo_hooks.hooks.webhook"):
        record = deliver(receiver.url("/services/T000/B000/s3cr3t?token=abc"), PAYLOAD, policy=POLICY)

    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1
    text = caplog.text
    assert "s3cr3t" not in text and "token=abc" not in text
    assert record.target == mask_url(receiver.url("/services/T000/B000/s3cr3t?token=abc"))


def test_signed_deliveries_verify_with_standardwebhooks_and_keep_their_id_across_retries(receiver):
    from standardwebhooks import Webhook

    verifier = Webhook(SECRET)

    def verify(request):
        try:
            verifier.verify(request.body, request.headers)
        except Exception:
            return Respond(401)
        return Respond(204)

    receiver.script("/signed", Respond(503), Respond(503), verify)
    record = deliver(receiver.url("/signed"), PAYLOAD, policy=POLICY, signing_secret=SECRET)

    assert (record.ok, record.status_code, record.attempts) == (True, 204, 3)
    requests_ = receiver.wait_for(3)
    ids = {r.header("webhook-id") for r in requests_}
    assert ids == {record.webhook_id} and record.webhook_id.startswith("msg_")
    for r in requests_:
        verifier.verify(r.body, r.headers)  # each retry is signed afresh and verifies

    # the same headers with a changed body are rejected by the same verifying receiver
    tampered = dict(requests_[-1].headers)
    receiver.script("/signed", verify)
    resp = requests.post(receiver.url("/signed"), data=requests_[-1].body.replace(b"coffee", b"tea"),
                         headers={k: v for k, v in tampered.items() if k.lower().startswith("webhook-")}, timeout=5)
    assert resp.status_code == 401


def test_a_connection_target_uses_its_host_auth_headers_and_signing_secret(receiver, monkeypatch):
    import json

    from standardwebhooks import Webhook

    monkeypatch.setenv("AIRFLOW_CONN_ALERTS_HOOK", json.dumps({
        "conn_type": "http", "host": "127.0.0.1", "port": receiver.port, "schema": "http",
        "login": "bot", "password": "hunter2",
        "extra": {"X-Team": "data", "signing_secret": SECRET},
    }))
    record = deliver("conn:alerts_hook/events/in", PAYLOAD, policy=POLICY)

    assert record.ok, record
    (req,) = receiver.wait_for(1)
    assert req.path == "/events/in"
    assert req.header("Authorization") == "Basic " + base64.b64encode(b"bot:hunter2").decode()
    assert req.header("X-Team") == "data"
    assert req.header("signing_secret") is None and SECRET not in str(req.headers)
    Webhook(SECRET).verify(req.body, req.headers)


def test_a_missing_connection_is_recorded_not_raised():
    record = deliver("conn:no_such_connection", PAYLOAD, policy=POLICY)

    assert not record.ok and record.attempts == 0
    assert "no_such_connection" in record.error


def test_deliver_all_sends_concurrently_and_keeps_order(receiver):
    receiver.script("/a", Respond(200, delay=0.8))
    receiver.script("/b", Respond(200, delay=0.8))
    start = time.monotonic()
    records = deliver_all([(receiver.url("/a"), PAYLOAD), (receiver.url("/b"), {"x": 1})], policy=POLICY)

    assert [r.ok for r in records] == [True, True]
    assert [r.target for r in records] == [mask_url(receiver.url("/a")), mask_url(receiver.url("/b"))]
    assert time.monotonic() - start < 1.5  # both waited 0.8 s, side by side


@pytest.mark.parametrize(
    "value, fragment",
    [
        (None, "expected a URL"), (42, "expected a URL"), ("", "expected a URL"),
        (" http://x.org", "white space"), ("ftp://x.org/a", "http:// or https://"),
        ("http://", "no host"), ("http://x.org:99999/", "not a valid URL"), ("conn:", "conn:<conn_id>"),
        ("conn:bad id", "conn:<conn_id>"),
    ],
)
def test_check_target_names_the_value_and_the_expectation(value, fragment):
    with pytest.raises(TargetError) as err:
        check_target(value)
    # a URL with a path, query or credentials is named masked, as every text of the package names one
    shown = mask_url(value) if value == "ftp://x.org/a" else value
    assert fragment in str(err.value) and repr(shown) in str(err.value)
    assert "/a'" not in str(err.value)




# -- the HttpHook subclasses ----------------------------------------------------------------------


def test_webhook_hook_is_an_http_hook_for_http_connections_and_keeps_the_secret_out_of_headers(receiver, monkeypatch):
    import json

    from airflow.providers.http.hooks.http import HttpHook

    from airflow_ordo_hooks.hooks.webhook import WebhookHook

    monkeypatch.setenv("AIRFLOW_CONN_SIGNED_HOOK", json.dumps({
        "conn_type": "http", "host": "127.0.0.1", "port": receiver.port,
        "extra": {"X-Team": "data", "signing_secret": SECRET},
    }))
    hook = WebhookHook("signed_hook")
    session = hook.get_conn()

    assert isinstance(hook, HttpHook) and (WebhookHook.conn_type, WebhookHook.conn_name_attr) == ("http", "http_conn_id")
    assert hook.signing_secret == SECRET
    assert session.headers["X-Team"] == "data" and "signing_secret" not in session.headers
    assert hook.url_from_endpoint("/in") == f"http://127.0.0.1:{receiver.port}/in"


def test_a_connection_target_keeps_the_post_through_a_307_and_does_not_follow_a_303(receiver, monkeypatch):
    import json

    monkeypatch.setenv("AIRFLOW_CONN_MOVING_HOOK", json.dumps({
        "conn_type": "http", "host": "127.0.0.1", "port": receiver.port, "extra": {"X-Team": "data"},
    }))
    receiver.script("/old", Respond(307, headers={"Location": "/new"}))
    receiver.script("/new", Respond(200))
    receiver.script("/other", Respond(303, headers={"Location": "/new"}))

    moved = deliver("conn:moving_hook/old", PAYLOAD, policy=POLICY)
    other = deliver("conn:moving_hook/other", PAYLOAD, policy=POLICY)

    assert (moved.ok, moved.status_code) == (True, 200)
    assert (other.ok, other.status_code) == (False, 303) and "not followed" in other.error
    time.sleep(0.2)
    assert [(r.method, r.path, r.header("X-Team")) for r in receiver.requests] == [
        ("POST", "/old", "data"), ("POST", "/new", "data"), ("POST", "/other", "data"),
    ]


@pytest.fixture
def airflow_api(receiver, monkeypatch):
    """A connection to a fake Airflow API server (the loopback receiver): login exchanged for a token."""
    import json

    monkeypatch.setenv("AIRFLOW_CONN_TEST_AIRFLOW_API", json.dumps({
        "conn_type": "http", "host": "127.0.0.1", "port": receiver.port, "login": "admin", "password": "s3cret",
    }))
    receiver.script("/auth/token", Respond(201, body=b'{"access_token": "tok-123"}'))
    return receiver


def _api_requests(receiver, path):
    return [r for r in receiver.requests if r.path.split("?", 1)[0] == path]


def test_airflow_api_hook_exchanges_the_login_and_sends_the_token(airflow_api):
    from airflow.sdk import BaseHook

    from airflow_ordo_hooks.hooks.webhook import AirflowApiHook

    airflow_api.script("/api/v2/dags/d/dagRuns/r", Respond(200, body=b'{"state": "running"}'))
    hook = AirflowApiHook("test_airflow_api")

    assert isinstance(hook, BaseHook)
    assert hook.get("/api/v2/dags/d/dagRuns/r") == {"state": "running"}
    (token,) = _api_requests(airflow_api, "/auth/token")
    assert token.method == "POST" and token.json == {"username": "admin", "password": "s3cret"}
    (run,) = _api_requests(airflow_api, "/api/v2/dags/d/dagRuns/r")
    assert run.header("Authorization") == "Bearer tok-123"


def test_airflow_api_hook_uses_a_token_from_the_extra_without_exchanging(receiver, monkeypatch):
    import json

    from airflow_ordo_hooks.hooks.webhook import AirflowApiHook

    monkeypatch.setenv("AIRFLOW_CONN_TOKEN_API", json.dumps({
        "conn_type": "http", "host": "127.0.0.1", "port": receiver.port, "extra": {"token": "jwt-xyz"},
    }))
    receiver.script("/api/v2/x", Respond(200, body=b"log line\n"))

    assert AirflowApiHook("token_api").text("/api/v2/x") == "log line\n"
    (req,) = receiver.requests
    assert req.header("Authorization") == "Bearer jwt-xyz" and req.header("token") is None
    assert req.header("Accept") == "text/plain"


def test_airflow_api_hook_reads_the_connection_as_http_hook_does(receiver, monkeypatch):
    """A host given with its scheme, the port, and the extra: options set the session, other keys are headers."""
    import json

    from airflow_ordo_hooks.hooks.webhook import AirflowApiHook

    monkeypatch.setenv("AIRFLOW_CONN_HEADED_API", json.dumps({
        "conn_type": "http", "host": "http://127.0.0.1", "port": receiver.port,
        "extra": {"token": "jwt-1", "X-Tenant": "blue", "verify": False, "timeout": 3},
    }))
    receiver.script("/api/v2/x", Respond(200, body=b"{}"))

    hook = AirflowApiHook("headed_api")
    assert hook.get("/api/v2/x") == {} and hook.session.verify is False
    (req,) = receiver.requests
    assert req.header("X-Tenant") == "blue" and req.header("Authorization") == "Bearer jwt-1"
    assert req.header("verify") is None and req.header("timeout") is None and req.header("token") is None


def test_the_rest_api_client_does_not_import_http_hook():
    """A task process records its deliveries through this client: importing HttpHook (aiohttp) would cost it more than the request."""
    import subprocess
    import sys

    code = ("import sys; import airflow_ordo_hooks.hooks.airflow_api, airflow_ordo_hooks.callbacks.ledger_client; "
            "print('airflow.providers.http.hooks.http' in sys.modules, 'aiohttp' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]


def test_airflow_api_hook_retries_a_503_on_a_get(airflow_api):
    from airflow_ordo_hooks.hooks.webhook import AirflowApiHook

    airflow_api.script("/api/v2/flaky", Respond(503), Respond(200, body=b'{"ok": 1}'))

    assert AirflowApiHook("test_airflow_api", policy=POLICY).get("/api/v2/flaky") == {"ok": 1}
    assert len(_api_requests(airflow_api, "/api/v2/flaky")) == 2


def test_airflow_api_hook_pages_through_a_collection(airflow_api):
    from airflow_ordo_hooks.hooks.webhook import AirflowApiHook

    first = json_body({"items": [{"i": i} for i in range(100)], "total_entries": 101})
    airflow_api.script("/api/v2/items", Respond(200, body=first), Respond(200, body=json_body({"items": [{"i": 100}], "total_entries": 101})))

    items = list(AirflowApiHook("test_airflow_api").pages("/api/v2/items", "items", state="success"))

    assert [x["i"] for x in items] == list(range(101))
    assert [r.path for r in _api_requests(airflow_api, "/api/v2/items")] == [
        "/api/v2/items?limit=100&offset=0&state=success", "/api/v2/items?limit=100&offset=100&state=success",
    ]


def json_body(value):
    import json

    return json.dumps(value).encode()


def test_airflow_api_hook_takes_its_timeouts_and_budget_from_the_settings(airflow_api, monkeypatch):
    from airflow_ordo_hooks.hooks.webhook import AirflowApiHook

    monkeypatch.setenv("AIRFLOW__ORDO_HOOKS__READ_TIMEOUT", "0.3")
    monkeypatch.setenv("AIRFLOW__ORDO_HOOKS__MAX_ATTEMPTS", "2")
    monkeypatch.setenv("AIRFLOW__ORDO_HOOKS__BUDGET", "20")
    airflow_api.script("/api/v2/slow", *[Respond(200, body=b"{}", delay=3)] * 2)
    hook = AirflowApiHook("test_airflow_api")

    start = time.monotonic()
    with pytest.raises(Exception, match="ReadTimeout") as err:
        hook.get("/api/v2/slow")

    # two attempts of 0.3 s each and a short backoff; fixed (3, 10) s timeouts would take 6 s or more
    assert time.monotonic() - start < 2.0, err.value
    assert (hook.policy.read_timeout, hook.policy.max_attempts, hook.policy.budget) == (0.3, 2, 20.0)
    assert len(_api_requests(airflow_api, "/api/v2/slow")) == 2


def test_trigger_dag_run_posts_a_run_and_is_not_retried_once_the_server_may_have_acted(airflow_api):
    from airflow_ordo_hooks.hooks.webhook import AirflowApiHook

    airflow_api.script("/api/v2/dags/child/dagRuns", Respond(200, body=b'{"dag_run_id": "manual__1"}'), Respond(503))
    hook = AirflowApiHook("test_airflow_api", policy=POLICY)

    assert hook.trigger_dag_run("child", {"k": [1]}) == {"dag_run_id": "manual__1"}
    with pytest.raises(Exception, match="HTTP 503"):
        hook.trigger_dag_run("child", {"k": [2]})

    posts = _api_requests(airflow_api, "/api/v2/dags/child/dagRuns")
    assert [(r.method, r.json) for r in posts] == [
        ("POST", {"logical_date": None, "conf": {"k": [1]}}), ("POST", {"logical_date": None, "conf": {"k": [2]}}),
    ]  # the 503 was not retried: the run may have been created
    assert posts[0].header("Authorization") == "Bearer tok-123"


def test_trigger_dag_run_with_a_run_id_is_asked_again_after_a_5xx_and_never_starts_a_second_run(airflow_api):
    from airflow_ordo_hooks.hooks.webhook import AirflowApiHook

    path = "/api/v2/dags/child/dagRuns"
    # SQLite's "Database error" 500, then the run is created; later the same event again: 409
    airflow_api.script(path, Respond(500), Respond(200, body=b'{"dag_run_id": "trigger_job__on_error__ab"}'),
                       Respond(409, body=b'{"detail": "exists"}'))
    airflow_api.script(f"{path}/trigger_job__on_error__ab", Respond(200, body=b'{"dag_run_id": "trigger_job__on_error__ab", "state": "running"}'))
    hook = AirflowApiHook("test_airflow_api", policy=POLICY)

    assert hook.trigger_dag_run("child", {"k": 1}, run_id="trigger_job__on_error__ab") == {"dag_run_id": "trigger_job__on_error__ab"}
    again = hook.trigger_dag_run("child", {"k": 1}, run_id="trigger_job__on_error__ab")
    assert again == {"dag_run_id": "trigger_job__on_error__ab", "state": "running"}

    posts = [r for r in _api_requests(airflow_api, path) if r.method == "POST"]
    assert [r.json for r in posts] == [{"logical_date": None, "conf": {"k": 1}, "dag_run_id": "trigger_job__on_error__ab"}] * 3


def test_a_child_run_id_is_the_same_for_the_same_event_and_differs_otherwise():
    from airflow_ordo_hooks.callbacks.trigger import child_run_id

    facts = ("on_error", "coffee", "manual__1", "brew", -1, 1, "cleanup")
    assert child_run_id(*facts) == child_run_id(*facts)
    assert re.fullmatch(r"trigger_job__on_error__[0-9a-f]{24}", child_run_id(*facts))  # [scheduler] allowed_run_id_pattern
    for i, other in enumerate(("on_success", "tea", "manual__2", "pour", 0, 2, "other")):
        changed = list(facts)
        changed[i] = other
        assert child_run_id(*changed) != child_run_id(*facts)


def test_trigger_dag_run_is_retried_when_the_connection_failed_before_sending(airflow_api, monkeypatch):
    from airflow_ordo_hooks.hooks import airflow_api as api_module
    from airflow_ordo_hooks.hooks.webhook import AirflowApiHook, _Outcome

    hook = AirflowApiHook("test_airflow_api", policy=POLICY)
    real_send, calls = api_module._send, []

    def refused_once(*args, **kwargs):
        calls.append(args[1])
        if len(calls) == 1:  # as a refused connection is classified
            return _Outcome(error="ConnectionError: refused", retryable=True, sent=False)
        return real_send(*args, **kwargs)

    monkeypatch.setattr(api_module, "_send", refused_once)
    airflow_api.script("/api/v2/dags/child/dagRuns", Respond(200, body=b'{"dag_run_id": "manual__2"}'))

    assert hook.trigger_dag_run("child", {}) == {"dag_run_id": "manual__2"}
    assert calls == ["POST", "POST"] and len(_api_requests(airflow_api, "/api/v2/dags/child/dagRuns")) == 1


def test_a_refused_connection_is_classified_as_not_sent():
    from airflow_ordo_hooks.hooks._http import _plain_session, _send

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    outcome = _send(_plain_session(), "POST", f"http://127.0.0.1:{port}/x", POLICY, time.monotonic() + 2, stream=True)

    assert outcome.retryable and not outcome.sent and "refused" in outcome.error.lower()


def test_the_proxy_environment_is_honoured_as_it_changes(receiver, monkeypatch):
    # requests reads HTTP_PROXY and NO_PROXY; we remember what it made of them per origin, so a
    # change of either must be seen at the next delivery
    target = "http://no-such-host.invalid/through-the-proxy"
    monkeypatch.setenv("HTTP_PROXY", receiver.url("").rstrip("/"))
    via_proxy = deliver(target, PAYLOAD, policy=POLICY)
    assert (via_proxy.ok, via_proxy.attempts) == (True, 1), via_proxy
    (req,) = receiver.wait_for(1)
    assert req.path == target and req.json == PAYLOAD  # an HTTP proxy is asked for the absolute URL

    monkeypatch.setenv("NO_PROXY", "no-such-host.invalid")
    bypassed = deliver(target, PAYLOAD, policy=DeliveryPolicy(budget=1.0, max_attempts=1))
    monkeypatch.delenv("NO_PROXY")
    monkeypatch.delenv("HTTP_PROXY")
    direct = deliver(target, PAYLOAD, policy=DeliveryPolicy(budget=1.0, max_attempts=1))
    for record in (bypassed, direct):
        assert not record.ok and "ConnectionError" in record.error, record
    assert len(receiver.wait_for(2, timeout=0.3)) == 1
