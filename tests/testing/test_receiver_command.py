"""``python -m airflow_ordo_hooks.testing.receiver`` as a real process: real HTTP in, its printed lines and exit code out."""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone

import pytest
import requests
import standardwebhooks

from airflow_ordo_hooks.hooks.webhook import DeliveryPolicy, deliver

SECRET = "whsec_" + base64.b64encode(os.urandom(24)).decode()
OTHER_SECRET = "whsec_" + base64.b64encode(os.urandom(24)).decode()
PAYLOAD = {"event": "job_failed", "job": "nightly", "log": "brewed ☕"}
POLICY = DeliveryPolicy(connect_timeout=5.0, read_timeout=5.0, budget=20.0, max_attempts=1)
DEADLINE = 60.0
"""Seconds any wait on the command may take: generous, since each wait ends as soon as its condition holds."""


class Command:
    """The command running as a process; its stdout read line by line as it comes, its stderr kept."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "airflow_ordo_hooks.testing.receiver", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8",
            env={**os.environ, "PYTHONIOENCODING": "utf-8"},
        )
        self._changed = threading.Condition()
        self._lines: list[str] = []
        self._stderr: list[str] = []
        self._done = False
        self._readers = [
            threading.Thread(target=self._read_stdout, daemon=True),
            threading.Thread(target=lambda: self._stderr.append(self.process.stderr.read()), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read_stdout(self) -> None:
        for line in self.process.stdout:
            with self._changed:
                self._lines.append(line)
                self._changed.notify_all()
        with self._changed:
            self._done = True
            self._changed.notify_all()

    def wait_for_line(self, pattern: str) -> re.Match[str]:
        """The match of the first line of stdout matching ``pattern``, waiting for it until :data:`DEADLINE`."""
        deadline = time.monotonic() + DEADLINE
        with self._changed:
            while True:
                for line in self._lines:
                    if found := re.search(pattern, line):
                        return found
                left = deadline - time.monotonic()
                if self._done or left <= 0:
                    raise AssertionError(f"no line matching {pattern!r} in {self._lines!r}; exit code {self.process.poll()}")
                self._changed.wait(left)

    def url(self) -> str:
        """The receiver's URL, from the line saying where it listens."""
        return self.wait_for_line(r"^listening on (http://[^/\s]+)/")[1]

    def stop(self, signum: int = signal.SIGTERM) -> tuple[int, str, str]:
        """Send ``signum``; ``(exit code, stdout, stderr)`` once the process has ended."""
        self.process.send_signal(signum)
        code = self.process.wait(DEADLINE)
        for reader in self._readers:
            reader.join(DEADLINE)
        with self._changed:
            return code, "".join(self._lines), "".join(self._stderr)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(DEADLINE)


@pytest.fixture
def command():
    """Start the command with the given arguments; killed after the test if it still runs."""
    started: list[Command] = []

    def start(*args: str) -> Command:
        started.append(Command(*args))
        return started[-1]

    yield start
    for each in started:
        each.kill()


def requests_printed(stdout: str) -> dict[str, tuple[str, str]]:
    """Each request the command printed, by path: ``(its first line, its body as printed, unindented)``."""
    found: dict[str, tuple[str, str]] = {}
    path = None
    for line in stdout.splitlines():
        if line.startswith("  ") and path is not None:
            first, body = found[path]
            found[path] = (first, body + line[2:] + "\n")
        elif re.match(r"\d{4}-\d\d-\d\d ", line):
            path = line.split("  ")[2]
            found[path] = (line, "")
        else:
            path = None
    return found


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_the_command_prints_each_request_and_verifies_its_signature(command):
    port = free_port()
    receiver = command("--port", str(port), "--secret", SECRET)
    url = receiver.url()
    assert url == f"http://127.0.0.1:{port}"

    signed = deliver(f"{url}/hooks/signed", PAYLOAD, signing_secret=SECRET, policy=POLICY)
    other = deliver(f"{url}/hooks/other-secret", PAYLOAD, signing_secret=OTHER_SECRET, policy=POLICY)
    unsigned = requests.post(f"{url}/hooks/unsigned", json=PAYLOAD, timeout=DEADLINE)
    assert (signed.ok, signed.status_code, signed.signed) == (True, 200, True)
    assert (other.ok, other.status_code, unsigned.status_code) == (True, 200, 200)

    code, stdout, stderr = receiver.stop(signal.SIGTERM)

    assert code == 0, stderr
    assert stderr == ""
    printed = requests_printed(stdout)
    assert sorted(printed) == ["/hooks/other-secret", "/hooks/signed", "/hooks/unsigned"]
    first, body = printed["/hooks/signed"]
    assert f"  POST  /hooks/signed  webhook-id={signed.webhook_id}  signature OK" in first
    assert json.loads(body) == PAYLOAD
    assert '\n  "job": "nightly",\n' in body  # pretty-printed
    first, body = printed["/hooks/other-secret"]
    assert f"webhook-id={other.webhook_id}  signature BAD" in first and json.loads(body) == PAYLOAD
    first, body = printed["/hooks/unsigned"]
    assert "webhook-id" not in first.split("signature")[0] and "signature BAD" in first
    assert json.loads(body) == PAYLOAD
    assert stdout.endswith("stopped after 3 request(s)\n")


def test_status_answers_every_request_with_it_and_ctrl_c_stops_the_command(command):
    receiver = command("--port", "0", "--status", "500")
    url = receiver.url()

    record = deliver(f"{url}/flaky", PAYLOAD, policy=DeliveryPolicy(
        connect_timeout=5.0, read_timeout=5.0, budget=20.0, max_attempts=2, backoff_initial=0.05, backoff_jitter=0.0,
    ))
    code, stdout, stderr = receiver.stop(signal.SIGINT)

    assert (record.ok, record.status_code, record.attempts) == (False, 500, 2)
    assert "HTTP 500" in record.error
    assert code == 0, stderr
    assert "answering every request HTTP 500" in stdout and "not verifying signatures" in stdout
    assert stdout.count("  POST  /flaky  webhook-id=") == 2
    assert stdout.count("not signed") == 2
    assert stdout.endswith("stopped after 2 request(s)\n")


def test_a_body_that_is_not_json_is_printed_as_text_cut_after_a_few_kb_with_control_characters_escaped(command):
    receiver = command("--port", "0")
    url = receiver.url()
    text = "\x1b]0;a terminal title\x07" + "x" * 100_000

    answer = requests.post(f"{url}/text", data=text.encode(), timeout=DEADLINE)
    signed = deliver(f"{url}/signed", PAYLOAD, signing_secret=SECRET, policy=POLICY)
    code, stdout, stderr = receiver.stop()

    assert (answer.status_code, signed.ok, code) == (200, True, 0), stderr
    printed = requests_printed(stdout)
    first, body = printed["/text"]
    assert first.endswith("  POST  /text  not signed")
    assert body.startswith("\\x1b]0;a terminal title\\x07xxx") and "\x1b" not in stdout and "\x07" not in stdout
    assert body.endswith(f"\n... (cut: the body is {len(text.encode()):,} bytes)\n") and len(body) < 5000
    assert printed["/signed"][0].endswith("  signed (not verified: no --secret)")


@pytest.mark.parametrize(
    ("option", "value"),
    [("--secret", "whsec_@@@not-base64"), ("--secret", "whsec_"), ("--status", "99"), ("--port", "65536")],
)
def test_a_bad_option_exits_2_naming_it(option, value):
    done = subprocess.run(
        [sys.executable, "-m", "airflow_ordo_hooks.testing.receiver", "--port", "0", option, value],
        capture_output=True, text=True, timeout=DEADLINE,
    )

    assert done.returncode == 2
    assert f"error: argument {option}: " in done.stderr
    assert done.stdout == ""
    if option == "--secret":
        assert "@@@" not in done.stderr and "not a Standard Webhooks secret" in done.stderr


def _sign(secret: str, webhook_id: str, seconds: int, body: bytes) -> str:
    """A signature made by the ``standardwebhooks`` library, not by this package."""
    return standardwebhooks.Webhook(secret).sign(webhook_id, datetime.fromtimestamp(seconds, timezone.utc), body.decode())


def test_what_the_command_calls_ok_standardwebhooks_accepts_and_what_it_calls_bad_it_rejects(command, receiver):
    # the package's own signed delivery, recorded as it arrived by the in-process receiver
    recorded = deliver(receiver.url("/recorded"), PAYLOAD, signing_secret=SECRET, policy=POLICY)
    assert recorded.ok
    (delivered,) = receiver.wait_for(1)
    webhook_headers = {k: v for k, v in delivered.headers.items() if k.lower().startswith("webhook-")}
    body = delivered.body
    now = int(time.time())

    def signed(seconds: int, secret: str = SECRET, webhook_id: str = "msg_case") -> dict[str, str]:
        return {"webhook-id": webhook_id, "webhook-timestamp": str(seconds),
                "webhook-signature": _sign(secret, webhook_id, seconds, body)}

    cases = {  # path: (headers, body, what standardwebhooks says)
        "/delivered": (webhook_headers, body, True),
        "/tampered": (webhook_headers, body.replace(b"nightly", b"daily"), False),
        "/other-secret": (signed(now, OTHER_SECRET), body, False),
        "/several": ({**signed(now), "webhook-signature": "v1,AAAA v2,BBBB " + signed(now)["webhook-signature"]}, body, True),
        "/4-minutes-old": (signed(now - 240), body, True),
        "/6-minutes-old": (signed(now - 360), body, False),
        "/4-minutes-ahead": (signed(now + 240), body, True),
        "/6-minutes-ahead": (signed(now + 360), body, False),
        "/no-timestamp": ({k: v for k, v in signed(now).items() if k != "webhook-timestamp"}, body, False),
        "/timestamp-not-a-number": ({**signed(now), "webhook-timestamp": "soon"}, body, False),
        "/unsigned": ({}, body, False),
    }
    verifier = standardwebhooks.Webhook(SECRET)
    for path, (headers, data, expected) in cases.items():
        try:
            verifier.verify(data, headers)
            accepted = True
        except standardwebhooks.WebhookVerificationError:
            accepted = False
        assert accepted is expected, path

    process = command("--port", "0", "--secret", SECRET)
    url = process.url()
    for path, (headers, data, _) in cases.items():
        answer = requests.post(url + path, data=data, headers={"Content-Type": "application/json", **headers}, timeout=DEADLINE)
        assert answer.status_code == 200
    code, stdout, stderr = process.stop()

    assert code == 0, stderr
    printed = requests_printed(stdout)
    verdicts = {path: first.split("  signature ")[1] for path, (first, _) in printed.items()}
    assert {path: verdict == "OK" for path, verdict in verdicts.items()} == {p: c[2] for p, c in cases.items()}, verdicts
    assert verdicts["/6-minutes-old"].startswith("BAD: webhook-timestamp is 36")
    assert verdicts["/6-minutes-old"].endswith(" s in the past")
    assert verdicts["/6-minutes-ahead"].endswith(" s in the future")
    assert verdicts["/no-timestamp"] == "BAD: no webhook-timestamp header"
    assert verdicts["/unsigned"] == "BAD: no webhook-id, webhook-timestamp or webhook-signature header"
