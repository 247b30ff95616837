"""The delivery path against receivers and URLs that mean harm, or merely misbehave: trickling
answers, secrets in URLs and redirects, redirects across origins and into internal addresses,
text that is not Unicode, secrets that are not secrets. Real receivers on loopback throughout."""

from __future__ import annotations

import base64
import json
import logging
import math
import os
import socket
import time

import pytest

from airflow_ordo_hooks.hooks.webhook import REFUSED_PREFIX, DeliveryPolicy, encode, deliver, mask_url, sign
from airflow_ordo_hooks.testing.receiver import Respond, Trickle, WebhookReceiver

POLICY = DeliveryPolicy(
    connect_timeout=1.0, read_timeout=1.0, budget=4.0, max_attempts=3,
    backoff_initial=0.1, backoff_max=0.2, backoff_jitter=0.01,
)
SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
LOGGER = "airflow_ordo_hooks.hooks.webhook"


@pytest.fixture
def second_host():
    """A second receiver on 127.0.0.2: another host as far as origins and address checks go (Linux routes 127/8 to lo)."""
    with WebhookReceiver(host="127.0.0.2") as other:
        yield other


def _timed(call):
    start = time.monotonic()
    result = call()
    return result, time.monotonic() - start


# -- 1. a deadline that holds whatever the receiver does -----------------------------------------


@pytest.mark.parametrize("behaviour", [Trickle(0.25), Trickle(0.25, status=500, part="body")], ids=["headers", "body"])
def test_a_trickling_receiver_holds_a_delivery_no_longer_than_its_budget(receiver, behaviour):
    # each byte comes well within the read timeout: only a deadline on the whole answer stops it
    assert deliver(receiver.url("/warm"), {}, policy=POLICY).ok  # lazy imports are not the receiver's time
    receiver.script("/slow", *[behaviour] * 3)
    policy = DeliveryPolicy(connect_timeout=1.0, read_timeout=1.0, budget=2.0, max_attempts=3, backoff_initial=0.1)
    record, took = _timed(lambda: deliver(receiver.url("/slow"), {"x": 1}, policy=policy))

    assert not record.ok and record.attempts >= 1, record
    assert took < 2.5, (took, record)
    assert "budget" in record.error, record.error


@pytest.fixture
def tls_receiver(tmp_path, monkeypatch):
    """A receiver speaking TLS with a self-signed certificate for 127.0.0.1, trusted through REQUESTS_CA_BUNDLE."""
    import datetime
    import ipaddress
    import ssl

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "cert.pem"))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    with WebhookReceiver() as tls:
        tls._server.socket = context.wrap_socket(tls._server.socket, server_side=True)
        yield tls


def test_the_deadline_holds_over_tls_too(tls_receiver):
    url = tls_receiver.url("/slow").replace("http://", "https://")
    assert deliver(url.replace("/slow", "/ok"), {}, policy=POLICY).ok  # the certificate is trusted
    tls_receiver.script("/slow", *[Trickle(0.25)] * 3)
    policy = DeliveryPolicy(connect_timeout=1.0, read_timeout=1.0, budget=2.0, max_attempts=3, backoff_initial=0.1)
    record, took = _timed(lambda: deliver(url, {"x": 1}, policy=policy))

    assert not record.ok and took < 2.5, (took, record)


def test_a_pooled_connection_outside_a_delivery_keeps_its_own_timeouts(receiver):
    # the wrapper stays on pooled connections: a later delivery with a larger budget is not cut short
    receiver.script("/later", Respond(200, delay=1.2))
    assert deliver(receiver.url("/quick"), {}, policy=POLICY).ok
    record = deliver(receiver.url("/later"), {}, policy=DeliveryPolicy(read_timeout=3.0, budget=5.0, max_attempts=1))
    assert record.ok, record


# -- 2. one masking rule for every text ---------------------------------------------------------


def _assert_secret_free(texts, *secrets):
    for text in texts:
        for secret in secrets:
            assert secret not in text, (secret, text)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_mask_url_keeps_scheme_and_host_and_tells_urls_apart_by_a_fingerprint():
    import hashlib

    url = "https://hooks.slack.com/services/T0/B0/SECRET?token=x"
    assert mask_url(url) == f"https://hooks.slack.com/…#{hashlib.sha256(url.encode()).hexdigest()[:6]}"
    assert mask_url("https://u:p@[::1]:8443/a?b") .startswith("https://[::1]:8443/…#")
    assert mask_url("http://h/flaky/export/error") != mask_url("http://h/flaky/verify/error")


def test_a_refused_connection_to_a_secret_url_says_nothing_of_its_secrets(caplog):
    url = f"http://hookuser:pa55word@127.0.0.1:{_free_port()}/services/T0/B0/SECRETPATH?token=SECRETQUERY"
    with caplog.at_level(logging.INFO, logger=LOGGER):
        record = deliver(url, {"x": 1}, policy=POLICY)

    assert not record.ok and "refused" in record.error.lower(), record
    assert mask_url(url) in record.error  # requests' "with url: /services/…" is named by the masked URL
    _assert_secret_free([repr(record), caplog.text], "SECRETPATH", "SECRETQUERY", "pa55word", "hookuser")


def test_a_301_to_a_relative_secret_location_is_named_masked(receiver, caplog):
    receiver.script("/moved", Respond(301, headers={"Location": "/new/SECRETPATH?token=SECRETQUERY"}))
    with caplog.at_level(logging.INFO, logger=LOGGER):
        record = deliver(receiver.url("/moved"), {"x": 1}, policy=POLICY)

    assert (record.ok, record.status_code) == (False, 301)
    assert mask_url(receiver.url("/new/SECRETPATH?token=SECRETQUERY")) in record.error
    _assert_secret_free([repr(record), caplog.text], "SECRETPATH", "SECRETQUERY")


def test_a_307_to_another_scheme_is_not_followed_and_named_masked(receiver, caplog):
    location = "ftp://ftpuser:ftppass@files.example/SECRETPATH"
    receiver.script("/moved", Respond(307, headers={"Location": location}))
    with caplog.at_level(logging.INFO, logger=LOGGER):
        record = deliver(receiver.url("/moved"), {"x": 1}, policy=POLICY)

    assert (record.ok, record.status_code) == (False, 307) and "only http:// and https://" in record.error, record
    assert mask_url(location) in record.error
    _assert_secret_free([repr(record), caplog.text], "SECRETPATH", "ftpuser", "ftppass")


def test_a_failed_hop_after_a_redirect_names_that_hop_masked(receiver, caplog):
    hop = f"http://127.0.0.1:{_free_port()}/hop/SECRETPATH?token=SECRETQUERY"
    receiver.script("/moved", *[Respond(307, headers={"Location": hop})] * 3)
    with caplog.at_level(logging.INFO, logger=LOGGER):
        record = deliver(receiver.url("/moved"), {"x": 1}, policy=POLICY)

    assert not record.ok and mask_url(hop) in record.error, record
    _assert_secret_free([repr(record), caplog.text], "SECRETPATH", "SECRETQUERY")


def test_signing_secrets_and_connection_passwords_go_to_airflows_secrets_masker(receiver, monkeypatch):
    from airflow.sdk._shared.secrets_masker import redact

    from airflow_ordo_hooks.hooks.webhook import WebhookHook

    assert deliver(receiver.url("/signed"), {"x": 1}, policy=POLICY, signing_secret=SECRET).ok
    monkeypatch.setenv("AIRFLOW_CONN_MASKED_HOOK", json.dumps({
        "conn_type": "http", "host": "127.0.0.1", "port": receiver.port, "password": "conn-pa55-word",
        "extra": {"signing_secret": "whsec_c2lnbmluZy1zZWNyZXQtb2YtY29ubg=="},
    }))
    WebhookHook("masked_hook").get_conn()

    text = redact(f"{SECRET} conn-pa55-word whsec_c2lnbmluZy1zZWNyZXQtb2YtY29ubg==")
    _assert_secret_free([text], SECRET, "conn-pa55-word", "c2lnbmluZy1zZWNyZXQtb2YtY29ubg")


# -- 3. redirects across origins drop credentials and custom headers ----------------------------


def test_a_redirect_to_another_origin_carries_no_credentials_or_custom_headers(receiver, second_host, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_KEYED_HOOK", json.dumps({
        "conn_type": "http", "host": "127.0.0.1", "port": receiver.port, "login": "user", "password": "pw",
        "extra": {"X-Api-Key": "api-key-1", "signing_secret": SECRET},
    }))
    receiver.script("/first", Respond(307, headers={"Location": "/second", "Set-Cookie": "sid=cookie-1; Path=/"}))
    receiver.script("/second", Respond(307, headers={"Location": second_host.url("/third")}))
    record = deliver("conn:keyed_hook/first", {"x": 1}, policy=POLICY, headers={"X-Custom": "custom-1"})

    assert record.ok and record.attempts == 1, record
    first, second = receiver.wait_for(2)
    (third,) = second_host.wait_for(1)
    for same_origin in (first, second):  # the connection's own host gets everything
        assert same_origin.header("X-Api-Key") == "api-key-1" and same_origin.header("X-Custom") == "custom-1"
        assert same_origin.header("Authorization").startswith("Basic ")
    assert second.header("Cookie") == "sid=cookie-1"
    for name in ("X-Api-Key", "X-Custom", "Authorization", "Cookie", "signing_secret"):
        assert third.header(name) is None, (name, third.headers)
    assert third.header("Content-Type") == "application/json" and third.header("webhook-signature")
    assert third.body == first.body


# -- 4. URLs from a run's conf reach public addresses only --------------------------------------


def test_an_untrusted_loopback_url_is_refused_unless_allowed(receiver, monkeypatch, caplog):
    url = receiver.url("/report/SECRETPATH")
    monkeypatch.setenv("AIRFLOW__ORDO_HOOKS__ALLOWED_HOSTS", "")
    with caplog.at_level(logging.INFO, logger=LOGGER):
        refused = deliver(url, {"x": 1}, policy=POLICY, untrusted=True)

    assert (refused.ok, refused.attempts, refused.status_code) == (False, 0, None)
    assert refused.error.startswith(REFUSED_PREFIX + mask_url(url)), refused.error
    assert "loopback" in refused.error and "allowed_hosts" in refused.error, refused.error
    assert receiver.requests == []
    _assert_secret_free([repr(refused), caplog.text], "SECRETPATH")

    monkeypatch.setenv("AIRFLOW__ORDO_HOOKS__ALLOWED_HOSTS", "10.0.0.0/8, 127.0.0.1/32")
    assert deliver(url, {"x": 1}, policy=POLICY, untrusted=True).ok
    assert deliver(url, {"x": 1}, policy=POLICY).ok  # a URL from a DAG file is not checked


@pytest.mark.parametrize("target", ["conn:airflow_api", "ftp://127.0.0.1/x"])
def test_an_untrusted_target_must_be_an_http_url(monkeypatch, target):
    monkeypatch.setenv("AIRFLOW__ORDO_HOOKS__ALLOWED_HOSTS", "127.0.0.1")
    record = deliver(target, {"x": 1}, policy=POLICY, untrusted=True)
    assert not record.ok and record.attempts == 0 and "http://" in record.error, record


def test_an_allowed_url_redirecting_to_an_internal_address_is_refused_at_that_hop(receiver, second_host, monkeypatch):
    monkeypatch.setenv("AIRFLOW__ORDO_HOOKS__ALLOWED_HOSTS", "127.0.0.1/32")
    receiver.script("/report", Respond(307, headers={"Location": second_host.url("/internal")}))
    record = deliver(receiver.url("/report"), {"x": 1}, policy=POLICY, untrusted=True)

    assert (record.ok, record.status_code, record.attempts) == (False, None, 1), record
    assert record.error.startswith(f"{REFUSED_PREFIX}{mask_url(second_host.url('/internal'))}: 127.0.0.2 is a loopback address")
    assert "redirect, not followed" in record.error, record.error
    assert len(receiver.requests) == 1 and second_host.requests == []


def test_a_host_allowed_by_name_may_redirect_only_where_the_list_allows(receiver, second_host, monkeypatch):
    monkeypatch.setenv("AIRFLOW__ORDO_HOOKS__ALLOWED_HOSTS", "localhost")
    receiver.script("/report", Respond(307, headers={"Location": second_host.url("/internal")}))
    record = deliver(f"http://localhost:{receiver.port}/report", {"x": 1}, policy=POLICY, untrusted=True)

    assert record.status_code is None and record.error.startswith(REFUSED_PREFIX) and "loopback" in record.error, record
    assert second_host.requests == []


# -- 5. any text becomes a valid payload --------------------------------------------------------


def test_text_that_is_not_unicode_and_numbers_that_are_not_finite_are_sent_as_valid_json(receiver):
    payload = {
        "path": os.fsdecode(b"caf\xe9"),
        "raw": b"\xff\xfeok",
        os.fsdecode(b"k\xe9y"): [math.nan, {"deep": [math.inf, -math.inf, 1.5]}],
    }
    body = encode(payload)
    assert json.loads(body) == {
        "path": "caf\ufffd", "raw": "\ufffd\ufffdok", "k\ufffdy": [None, {"deep": [None, None, 1.5]}],
    }
    assert b"NaN" not in body and b"Infinity" not in body

    record = deliver(receiver.url("/text"), payload, policy=POLICY)
    assert record.ok, record
    (req,) = receiver.wait_for(1)
    assert req.json["path"] == "caf\ufffd" and req.json["k\ufffdy"][0] is None


# -- 6. a secret that is not one is refused -----------------------------------------------------


@pytest.mark.parametrize("secret", ["whsec_@@@", "whsec_", "whsec_====", "not-base64!"])
def test_a_signing_secret_that_is_not_base64_is_refused_without_echoing_it(receiver, secret, caplog):
    with caplog.at_level(logging.INFO, logger=LOGGER):
        record = deliver(receiver.url("/signed"), {"x": 1}, policy=POLICY, signing_secret=secret)

    assert (record.ok, record.attempts) == (False, 0) and "not a Standard Webhooks secret" in record.error, record
    assert receiver.requests == []
    with pytest.raises(ValueError, match="not a Standard Webhooks secret") as raised:
        sign(secret, "msg_1", 1, b"{}")
    quoted = "'whsec_'"  # the message says what a secret looks like
    _assert_secret_free([repr(record).replace(quoted, ""), caplog.text.replace(quoted, ""), str(raised.value).replace(quoted, "")], secret)


# -- 7. the REST API client keeps its caller's deadline -----------------------------------------


@pytest.fixture
def api_conns(receiver, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_DEADLINE_LOGIN", json.dumps({
        "conn_type": "http", "host": "127.0.0.1", "port": receiver.port, "login": "admin", "password": "pw",
    }))
    monkeypatch.setenv("AIRFLOW_CONN_DEADLINE_TOKEN", json.dumps({
        "conn_type": "http", "host": "127.0.0.1", "port": receiver.port, "extra": {"token": "tok"},
    }))
    return receiver


def test_the_api_hooks_token_request_keeps_the_deadline(api_conns):
    from airflow_ordo_hooks.hooks.airflow_api import AirflowApiError, AirflowApiHook

    api_conns.script("/auth/token", Respond(201, body=b'{"access_token": "t"}', delay=5))
    policy = DeliveryPolicy(read_timeout=10, budget=10, max_attempts=1)
    start = time.monotonic()
    with pytest.raises(AirflowApiError, match="POST /auth/token"):
        AirflowApiHook("deadline_login", policy=policy, deadline=time.monotonic() + 1.0)
    assert time.monotonic() - start < 1.6


@pytest.mark.parametrize("behaviour", [Respond(200, body=b"{}", delay=5), Trickle(0.2, part="body")], ids=["delay", "trickle"])
def test_the_api_hooks_requests_keep_the_deadline_and_none_starts_past_it(api_conns, behaviour):
    from airflow_ordo_hooks.hooks.airflow_api import AirflowApiError, AirflowApiHook

    api_conns.script("/api/v2/slow", behaviour)
    policy = DeliveryPolicy(read_timeout=10, budget=10, max_attempts=3)
    hook = AirflowApiHook("deadline_token", policy=policy, deadline=time.monotonic() + 1.0)
    start = time.monotonic()
    with pytest.raises(AirflowApiError, match="GET /api/v2/slow"):
        hook.get("/api/v2/slow")
    assert time.monotonic() - start < 1.6

    before = len(api_conns.requests)
    with pytest.raises(AirflowApiError, match="deadline has passed"):
        hook.get("/api/v2/fast")
    assert len(api_conns.requests) == before
