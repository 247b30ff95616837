"""A real webhook receiver on loopback, for tests and the demo: it records every request and can misbehave.

    with WebhookReceiver() as receiver:
        receiver.script("/flaky", Respond(503), Respond(200))
        ...  # send to receiver.url("/flaky")
        first, second = receiver.wait_for(2)

Each request to a path takes the next behaviour scripted for it; when none is left it gets a 200.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class ReceivedRequest:
    """One request as the receiver got it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    received_at: float

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    def header(self, name: str) -> str | None:
        """A header by case-insensitive name."""
        wanted = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == wanted), None)


@dataclass(frozen=True)
class Respond:
    """Answer with ``status`` after ``delay`` seconds."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    delay: float = 0.0


@dataclass(frozen=True)
class Drop:
    """Close the connection without answering."""


@dataclass(frozen=True)
class NeverFinish:
    """Send ``status`` and headers announcing a body, then a few bytes of it, then nothing, ever."""

    status: int = 200


@dataclass(frozen=True)
class Trickle:
    """
    Send the status line, then one byte every ``interval`` seconds until the receiver stops: of a
    header that never ends (``part="headers"``), or of a body announced long (``part="body"``, the
    headers complete). Each byte keeps a per-read timeout from firing.
    """

    interval: float = 0.25
    status: int = 200
    part: str = "headers"

    def __post_init__(self) -> None:
        if self.part not in ("headers", "body"):
            raise ValueError(f"Trickle part: expected 'headers' or 'body', got {self.part!r}")


_Script = Respond | Drop | NeverFinish | Trickle
Behaviour = _Script | Callable[[ReceivedRequest], _Script]


class WebhookReceiver:
    """
    An HTTP/1.1 server on loopback that records requests; start with ``with`` or :meth:`start`.

    :param host: the address to listen on: ``127.0.0.1``, or another of 127/8 to stand for a second host.
    """

    def __init__(
        self, port: int = 0, on_request: Callable[[ReceivedRequest], None] | None = None, host: str = "127.0.0.1"
    ) -> None:
        self._host = host
        self._port = port
        self._on_request = on_request
        self._lock = threading.Condition()
        self._requests: list[ReceivedRequest] = []
        self._scripts: dict[str, deque[Behaviour]] = defaultdict(deque)
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> WebhookReceiver:
        self._stopping.clear()
        self._server = ThreadingHTTPServer((self._host, self._port), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="webhook-receiver", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # releases handlers that delay or never finish
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> WebhookReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server, "receiver not started"
        return self._server.server_address[1]

    def url(self, path: str = "/") -> str:
        return f"http://{self._host}:{self.port}{path}"

    # -- behaviour and records -------------------------------------------------------------------
    def script(self, path: str, *behaviours: Behaviour) -> None:
        """Queue behaviours for the next requests to ``path`` (its query string aside)."""
        with self._lock:
            self._scripts[path].extend(behaviours)

    def reset(self) -> None:
        """Forget recorded requests and scripts."""
        with self._lock:
            self._requests.clear()
            self._scripts.clear()

    @property
    def requests(self) -> list[ReceivedRequest]:
        with self._lock:
            return list(self._requests)

    def wait_for(self, count: int, timeout: float = 10.0, path: str | None = None) -> list[ReceivedRequest]:
        """Wait until ``count`` requests (to ``path``, if given) have arrived; return them."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                got = [r for r in self._requests if path is None or r.path == path]
                if len(got) >= count or not self._lock.wait(max(deadline - time.monotonic(), 0)):
                    return got

    def _record(self, request: ReceivedRequest) -> Behaviour:
        with self._lock:
            self._requests.append(request)
            script = self._scripts.get(request.path.split("?", 1)[0])
            behaviour = script.popleft() if script else Respond(200)
            self._lock.notify_all()
        if self._on_request:
            self._on_request(request)
        return behaviour

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # keep test output quiet
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                request = ReceivedRequest(self.command, self.path, dict(self.headers.items()), body, time.time())
                behaviour = receiver._record(request)
                if callable(behaviour) and not isinstance(behaviour, (Respond, Drop, NeverFinish, Trickle)):
                    behaviour = behaviour(request)
                if isinstance(behaviour, Drop):
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if isinstance(behaviour, NeverFinish):
                    self.send_response(behaviour.status)
                    self.send_header("Content-Length", "1000000")
                    self.end_headers()
                    self.wfile.write(b"{")
                    self.wfile.flush()
                    receiver._stopping.wait()
                    self.close_connection = True
                    return
                if isinstance(behaviour, Trickle):
                    self._trickle(behaviour)
                    return
                if behaviour.delay and receiver._stopping.wait(behaviour.delay):
                    self.close_connection = True
                    return
                self.send_response(behaviour.status)
                for name, value in behaviour.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(behaviour.body)))
                self.end_headers()
                self.wfile.write(behaviour.body)

            def _trickle(self, behaviour: Trickle) -> None:
                self.close_connection = True
                start = f"HTTP/1.1 {behaviour.status} Slow\r\n"
                if behaviour.part == "body":
                    start += "Content-Length: 1000000\r\n\r\n"
                else:
                    start += "X-Trickle: "
                try:
                    self.wfile.write(start.encode())
                    while not receiver._stopping.wait(behaviour.interval):
                        self.wfile.write(b"x")
                except OSError:  # the client gave up: what a trickle is for
                    pass

            do_POST = do_GET = do_PUT = _handle

        return Handler
