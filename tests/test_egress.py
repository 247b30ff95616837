"""The egress policy against URLs that mean harm: one reading of a URL for the check and the
connection, the address checked being the address connected to (DNS rebinding, every hop, kept-alive
connections), embedded IPv4 forms, proxies, and the setting's former name. A real receiver listens
on 127.0.0.2, which is not allowed ([ordo_hooks] allowed_hosts is 127.0.0.1 in this suite): it must
receive nothing."""

from __future__ import annotations

import logging
import socket
import threading
import time

import pytest

from airflow_ordo_hooks import _settings
from airflow_ordo_hooks._egress import REFUSED_PREFIX, EgressPolicy
from airflow_ordo_hooks.exceptions import EgressRefused, TargetError
from airflow_ordo_hooks.hooks.webhook import DeliveryPolicy, check_target, deliver, mask_url
from airflow_ordo_hooks.testing.receiver import WebhookReceiver

POLICY = DeliveryPolicy(connect_timeout=1.0, read_timeout=1.0, budget=3.0, max_attempts=2, backoff_initial=0.05)
PUBLIC = "93.184.216.34"


@pytest.fixture(scope="module")
def _internal_server():
    with WebhookReceiver(host="127.0.0.2") as internal:
        yield internal


@pytest.fixture
def internal(_internal_server):
    """A receiver on 127.0.0.2: loopback, and not allowed."""
    _internal_server.reset()
    yield _internal_server
    time.sleep(0.05)  # a request in flight would have arrived by now
    assert _internal_server.requests == [], "the receiver on a refused address got a request"
    _internal_server.reset()


# -- 1. one reading: URLs that parsers read differently are refused where they are written and sent --


AMBIGUOUS = [
    # what urlsplit and urllib3 read differently (each reads 127.0.0.2:{port} somewhere)
    "http://127.0.0.2:{port}\\@example.com/SECRET",
    "http://example.com\\@127.0.0.2:{port}/SECRET",
    "http://127.0.0.2:{port}\\SECRET",
    "http:\\\\127.0.0.2:{port}/SECRET",
    "http:/\\127.0.0.2:{port}/SECRET",
    "http://a@b@127.0.0.2:{port}/SECRET",
    "http://example.com@127.0.0.2:{port}@evil.example/SECRET",
    "http://user@[::1]:80@127.0.0.2:{port}/SECRET",
    # white space, raw or not ASCII
    "http://127.0.0.2:{port} @example.com/SECRET",
    "http://127.0.0.2:{port}/SE CRET",
    "http://127.0.0.2:{port}/SECRET\u3000",
    "http://127.0.0.2:{port}/SECRET\u00a0",
    "http://user:pa ss@127.0.0.2:{port}/SECRET",
    # raw non-ASCII in the authority, which IDNA maps to what it looks like
    "http://127\uff0e0\uff0e0\uff0e2:{port}/SECRET",
    "http://127\u30020\u30020\u30022:{port}/SECRET",
    "http://127.0.0.2\uff1a{port}/SECRET",
    "http://ex\u00e4mple.com@127.0.0.2:{port}/SECRET",
    "http://127.0.0.2:{port}/SECRET\u00e9",
    # hosts that urllib3 decodes, or that a resolver reads as IPv4 in another base
    "http://%31%32%37.0.0.2:{port}/SECRET",
    "http://127.0.0.%32:{port}/SECRET",
    "http://2130706434:{port}/SECRET",
    "http://0x7f000002:{port}/SECRET",
    "http://0x7f.0.0.2:{port}/SECRET",
    "http://0177.0.0.2:{port}/SECRET",
    "http://0177.0.0.02:{port}/SECRET",
    "http://127.2:{port}/SECRET",
    "http://127.0.2:{port}/SECRET",
    "http://127.0.0.2.:{port}/SECRET",
    "http://[127.0.0.2]:{port}/SECRET",
    "http://[::ffff:127.0.0.2%25lo]:{port}/SECRET",
    "http://127.0.0.2%2e:{port}/SECRET",
    # ports
    "http://127.0.0.2:{port}:80/SECRET",
    "http://127.0.0.2:+{port}/SECRET",
    "http://127.0.0.2:{port}a/SECRET",
    "http://127.0.0.2:/SECRET",
    "http://127.0.0.2:99999/SECRET",
    # characters outside RFC 3986
    "http://127.0.0.2:{port}/%zzSECRET",
    "http://127.0.0.2:{port}/<SECRET>",
    "http://127.0.0.2:{port}/SECRET|x",
    'http://127.0.0.2:{port}/SECRET"',
    "http://127.0.0.2:{port}/SECRET^{{x}}",
    "http://:{port}/SECRET",
    "http://[::ffff:127.0.0.2:{port}/SECRET",
]


@pytest.mark.parametrize("form", AMBIGUOUS)
def test_a_url_that_parsers_read_differently_is_refused_when_written_and_when_sent(form, internal):
    url = form.format(port=internal.port)
    with pytest.raises(TargetError) as raised:
        check_target(url, templates=False)
    assert "SECRET" not in str(raised.value), raised.value

    for untrusted in (True, False):  # a URL written in a DAG file is read by the same rules
        record = deliver(url, {"x": 1}, policy=POLICY, untrusted=untrusted)
        assert (record.ok, record.status_code, record.attempts) == (False, None, 0), record
        assert "SECRET" not in record.error, record.error
    assert record.error.startswith("TargetError: ")
    untrusted_record = deliver(url, {"x": 1}, policy=POLICY, untrusted=True)
    assert untrusted_record.error.startswith(REFUSED_PREFIX), untrusted_record.error


def test_the_error_names_the_field_the_reason_and_the_host_connected_to():
    url = "http://127.0.0.1:8080\\@example.com/SECRET"
    with pytest.raises(TargetError) as raised:
        check_target(url)
    assert str(raised.value) == f"{mask_url(url)!r}: contains a backslash, which URL parsers read differently (urllib3 as '/', urlsplit as part of the host)"
    # every text names the host urllib3 would have connected to, not the one urlsplit reads
    assert mask_url(url).startswith("http://127.0.0.1:8080/…#") and "example.com" not in mask_url(url)
    with pytest.raises(TargetError, match="write the host in punycode"):
        check_target("https://b\u00fccher.example/x")
    assert check_target("https://xn--bcher-kva.example/x")
    with pytest.raises(TargetError, match="percent-encode it"):
        check_target("https://hooks.example/caf\u00e9")


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.slack.com/services/T000/B000/XXXX?x=1&y=%2F#frag",
        "http://user:p%40ss:word@hooks.example:8443/a;b=c/(d)*,e!$'~",
        "https://[2606:4700::6810:84e5]:443/x",
        "http://Hooks.Example./x",
        "http://under_score.example/x",
        "http://127.0.0.1:1/",
    ],
)
def test_urls_every_parser_reads_alike_pass(url):
    from urllib.parse import urlsplit

    from airflow_ordo_hooks._targets import read_checked

    assert check_target(url) == url
    read, plain = read_checked(url), urlsplit(url)
    assert (read.host.rstrip("."), read.port) == ((plain.hostname or "").rstrip("."), plain.port)


# -- 2. embedded IPv4 forms count as what they embed ---------------------------------------------


EMBEDDED = [
    ("http://127.0.0.2:{port}/SECRET", "127.0.0.2 is a loopback address"),
    ("HTTP://127.0.0.2:{port}/SECRET", "127.0.0.2 is a loopback address"),
    ("http://127.0.0.2:0{port}/SECRET", "127.0.0.2 is a loopback address"),
    ("http://[::ffff:127.0.0.2]:{port}/SECRET", "::ffff:127.0.0.2 embeds 127.0.0.2, which is a loopback address"),
    ("http://[::ffff:7f00:2]:{port}/SECRET", "embeds 127.0.0.2, which is a loopback address"),
    ("http://[::ffff:0:7f00:2]:{port}/SECRET", "embeds 127.0.0.2, which is a loopback address"),
    ("http://[::127.0.0.2]:{port}/SECRET", "::127.0.0.2 embeds 127.0.0.2, which is a loopback address"),
    ("http://[::127.0.0.1]/SECRET", "embeds 127.0.0.1, which is a loopback address"),
    ("http://[64:ff9b::7f00:1]/SECRET", "64:ff9b::7f00:1 embeds 127.0.0.1, which is a loopback address"),
    ("http://[64:ff9b::7f00:2]:{port}/SECRET", "embeds 127.0.0.2, which is a loopback address"),
    ("http://[64:ff9b::a9fe:a9fe]/latest/SECRET", "embeds 169.254.169.254, which is a link-local address"),
    ("http://[64:ff9b::a00:1]/SECRET", "embeds 10.0.0.1, which is a private address"),
    ("http://[64:ff9b:1::7f00:2]:{port}/SECRET", "embeds 127.0.0.2, which is a loopback address"),
    ("http://[2002:7f00:2::1]:{port}/SECRET", "embeds 127.0.0.2, which is a loopback address"),
    ("http://[2002:a9fe:a9fe::]/SECRET", "embeds 169.254.169.254, which is a link-local address"),
    ("http://[2001:0:4136:e378:8000:63bf:80ff:fffd]:{port}/SECRET", "embeds 127.0.0.2, which is a loopback address"),
    ("http://[::]:{port}/SECRET", ":: is an unspecified address"),
    ("http://0.0.0.0:{port}/SECRET", "0.0.0.0 is an unspecified address"),
    ("http://224.0.0.1/SECRET", "224.0.0.1 is a multicast address"),
    ("http://100.64.0.1/SECRET", "100.64.0.1 is not a public address"),
]


@pytest.mark.parametrize(("form", "why"), EMBEDDED)
def test_an_address_that_embeds_ipv4_counts_as_what_it_embeds(form, why, internal, monkeypatch):
    url = form.format(port=internal.port)
    assert check_target(url) == url  # a well-formed URL: refused for where it goes, not how it is written
    monkeypatch.setenv("AIRFLOW__ORDO_HOOKS__ALLOWED_HOSTS", "::/0, 0.0.0.0/32")  # IPv6 wholesale allows no IPv4 inside it
    with pytest.raises(EgressRefused) as raised:
        EgressPolicy.from_settings().check_url(url)
    assert f"{why}; allow it with [ordo_hooks] allowed_hosts" in str(raised.value)

    record = deliver(url, {"x": 1}, policy=POLICY, untrusted=True)
    assert (record.ok, record.status_code, record.attempts) == (False, None, 0), record
    assert record.error.startswith(f"{REFUSED_PREFIX}{mask_url(url)}: ") and why in record.error, record.error
    assert "SECRET" not in record.error


def test_an_embedded_address_that_is_public_or_allowed_passes():
    policy = EgressPolicy.parse("127.0.0.2, 10.0.0.0/8")
    for url in ("http://[64:ff9b::808:808]/", "http://[2002:808:808::1]/", "http://[::ffff:8.8.8.8]/",
                "http://[::ffff:127.0.0.2]/", "http://[64:ff9b::a00:1]/"):
        assert policy.check_url(url) == url


# -- 3. the address checked is the address connected to -------------------------------------------


@pytest.fixture
def rebinding(monkeypatch):
    """``rebind.example`` resolves to a public address the first time it is asked, then to 127.0.0.2."""
    real = socket.getaddrinfo
    answers = []

    def getaddrinfo(host, port, *args, **kwargs):
        if host != "rebind.example":
            return real(host, port, *args, **kwargs)
        address = PUBLIC if not answers else "127.0.0.2"
        answers.append(address)
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, int(port)))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return answers


def test_a_name_that_resolves_public_when_checked_and_internal_when_connecting_is_refused(rebinding, internal):
    url = f"http://rebind.example:{internal.port}/SECRET"
    record = deliver(url, {"x": 1}, policy=POLICY, untrusted=True)

    assert rebinding[:2] == [PUBLIC, "127.0.0.2"], "the check saw the public address, the connection the other"
    assert (record.ok, record.status_code, record.attempts) == (False, None, 1), record
    assert record.error == (
        f"{REFUSED_PREFIX}{mask_url(url)}: rebind.example connected to 127.0.0.2, which is a loopback address; "
        "allow it with [ordo_hooks] allowed_hosts"
    ), record.error


class _Listener:
    """A TCP listener that records the bytes each connection sends, and may answer every request with one response."""

    def __init__(self, host: str, answer: bytes | None = None) -> None:
        self.sock = socket.create_server((host, 0))
        self.port = self.sock.getsockname()[1]
        self.answer = answer
        self.received: list[bytes] = []
        self.connections = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        data = b""
        with conn:
            conn.settimeout(2)
            try:
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                if data and self.answer is not None:
                    conn.sendall(self.answer)
            except OSError:
                pass
        self.received.append(data)

    def close(self) -> None:
        self.sock.close()


def test_over_tls_the_peer_is_checked_before_the_handshake(rebinding):
    listener = _Listener("127.0.0.2")
    try:
        url = f"https://rebind.example:{listener.port}/SECRET"
        record = deliver(url, {"x": 1}, policy=POLICY, untrusted=True)
        time.sleep(0.1)
    finally:
        listener.close()
    assert record.error.startswith(f"{REFUSED_PREFIX}{mask_url(url)}: rebind.example connected to 127.0.0.2"), record
    assert listener.connections == 1 and listener.received in ([], [b""]), "not a byte, not even a TLS ClientHello"


def test_a_redirect_to_a_name_that_rebinds_is_refused_at_that_hop(receiver, rebinding, internal):
    from airflow_ordo_hooks.testing.receiver import Respond

    hop = f"http://rebind.example:{internal.port}/SECRET"
    receiver.script("/report", Respond(307, headers={"Location": hop}))
    record = deliver(receiver.url("/report"), {"x": 1}, policy=POLICY, untrusted=True)

    assert (record.ok, record.status_code, record.attempts) == (False, None, 1), record
    assert record.error.startswith(f"{REFUSED_PREFIX}{mask_url(hop)}: rebind.example connected to 127.0.0.2"), record.error
    assert len(receiver.requests) == 1


def _send_checked(url: str, policy: EgressPolicy):
    """One request with an egress policy, past the check by resolution: only the connection's own check stands."""
    from airflow_ordo_hooks.hooks._http import _plain_session, _send

    return _send(_plain_session(checked=True), "POST", url, POLICY, time.monotonic() + 3, stream=True,
                 egress=policy, data=b"{}")


@pytest.mark.parametrize("host", ["127.0.0.2", "[::ffff:127.0.0.2]"])
def test_the_connection_refuses_its_peer_without_the_check_by_resolution(host, internal):
    url = f"http://{host}:{internal.port}/SECRET"
    outcome = _send_checked(url, EgressPolicy.parse("127.0.0.1"))
    assert (outcome.status_code, outcome.retryable, outcome.sent) == (None, False, False), outcome
    assert outcome.error.startswith(f"{REFUSED_PREFIX}{mask_url(url)}: "), outcome.error
    assert "127.0.0.2, which is a loopback address" in outcome.error or "127.0.0.2 is a loopback" in outcome.error


def test_a_connection_kept_alive_for_a_trusted_target_is_not_reused_for_an_untrusted_one(internal):
    url = internal.url("/SECRET")
    assert deliver(url, {"x": 1}, policy=POLICY).ok  # the operator's own URL: not checked, kept alive
    internal.reset()
    outcome = _send_checked(url, EgressPolicy.parse("127.0.0.1"))
    assert outcome.error and outcome.error.startswith(REFUSED_PREFIX), outcome


def test_a_kept_alive_checked_connection_is_checked_again_for_each_request(internal):
    url = internal.url("/SECRET")
    assert _send_checked(url, EgressPolicy.parse("127.0.0.2")).ok
    internal.reset()
    outcome = _send_checked(url, EgressPolicy.parse("127.0.0.1"))  # the same pool, a narrower policy
    assert outcome.error and outcome.error.startswith(REFUSED_PREFIX), outcome


# -- 4. a proxy carries an untrusted URL only where the operator says so ---------------------------


@pytest.mark.parametrize("variable", ["HTTP_PROXY", "http_proxy", "ALL_PROXY"])
def test_a_proxy_carries_an_untrusted_url_only_with_egress_proxy(monkeypatch, variable):
    proxy = _Listener("127.0.0.1", answer=b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
    try:
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "all_proxy", "no_proxy"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv(variable, f"http://127.0.0.1:{proxy.port}")
        monkeypatch.setenv("AIRFLOW__ORDO_HOOKS__ALLOWED_HOSTS", "hooks.internal")  # by name: only a proxy can resolve it
        url = "http://hooks.internal/SECRET"

        direct = deliver(url, {"x": 1}, policy=POLICY, untrusted=True)
        assert not direct.ok and "hooks.internal" in direct.error, direct  # direct: the name does not resolve
        assert proxy.connections == 0, "the proxy got an untrusted request"

        assert deliver(url, {"x": 1}, policy=POLICY).ok, "the operator's own URL goes through the proxy"
        assert proxy.connections == 1

        monkeypatch.setenv("AIRFLOW__ORDO_HOOKS__EGRESS_PROXY", "true")
        assert deliver(url, {"x": 1}, policy=POLICY, untrusted=True).ok
        assert proxy.connections == 2 and proxy.received[-1].startswith(b"POST http://hooks.internal/SECRET ")
    finally:
        proxy.close()


def test_with_egress_proxy_an_address_the_check_can_see_is_still_refused(monkeypatch, internal):
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("AIRFLOW__ORDO_HOOKS__EGRESS_PROXY", "true")
    record = deliver(internal.url("/SECRET"), {"x": 1}, policy=POLICY, untrusted=True)
    assert record.attempts == 0 and record.error.startswith(REFUSED_PREFIX) and "loopback" in record.error, record


# -- 5. one setting, its former name still read ------------------------------------------------------


def test_the_former_name_allowed_conf_hosts_is_read_when_allowed_hosts_is_not_set(monkeypatch, caplog, internal):
    monkeypatch.setattr(_settings, "_ALIAS_WARNED", False)
    monkeypatch.setenv("AIRFLOW__ORDO_HOOKS__ALLOWED_HOSTS", "")
    monkeypatch.setenv("AIRFLOW__ORDO_HOOKS__ALLOWED_CONF_HOSTS", "127.0.0.2")
    with caplog.at_level(logging.WARNING, logger="airflow_ordo_hooks"):
        assert _settings.allowed_hosts() == "127.0.0.2"
        assert deliver(internal.url("/report"), {"x": 1}, policy=POLICY, untrusted=True).ok
    warnings = [r for r in caplog.records if "allowed_conf_hosts is deprecated" in r.getMessage()]
    assert len(warnings) == 1, "one warning per process"
    internal.reset()

    monkeypatch.setenv("AIRFLOW__ORDO_HOOKS__ALLOWED_HOSTS", "127.0.0.1")  # the new name wins
    assert _settings.allowed_hosts() == "127.0.0.1"
    assert deliver(internal.url("/report"), {"x": 1}, policy=POLICY, untrusted=True).error.startswith(REFUSED_PREFIX)
