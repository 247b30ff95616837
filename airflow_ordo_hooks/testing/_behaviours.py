"""What a test receiver does with a request: the request as recorded, the behaviours a test scripts, and the handler that plays them.

:class:`~airflow_ordo_hooks.testing.receiver.WebhookReceiver` serves with the handler
:func:`handler_class` makes, and is where these names are imported from.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any, ClassVar


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


def handler_class(record: Callable[[ReceivedRequest], Behaviour], stopping: threading.Event) -> type[BaseHTTPRequestHandler]:
    """
    The HTTP handler of one receiver.

    :param record: keeps a request and returns the behaviour scripted for it.
    :param stopping: set when the receiver stops: it releases the behaviours that wait.
    """
    return type("Handler", (_Handler,), {"record": staticmethod(record), "stopping": stopping})


class _Handler(BaseHTTPRequestHandler):
    """Records each request, then plays the behaviour scripted for it."""

    protocol_version = "HTTP/1.1"
    record: ClassVar[Callable[[ReceivedRequest], Behaviour]]
    stopping: ClassVar[threading.Event]

    def log_message(self, *args: object) -> None:  # keep test output quiet
        pass

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = ReceivedRequest(self.command, self.path, dict(self.headers.items()), body, time.time())
        behaviour = self.record(request)
        if callable(behaviour) and not isinstance(behaviour, (Respond, Drop, NeverFinish, Trickle)):
            behaviour = behaviour(request)
        if isinstance(behaviour, Drop):
            self._drop()
        elif isinstance(behaviour, NeverFinish):
            self._never_finish(behaviour)
        elif isinstance(behaviour, Trickle):
            self._trickle(behaviour)
        else:
            self._respond(behaviour)

    do_POST = do_GET = do_PUT = _handle

    def _respond(self, behaviour: Respond) -> None:
        if behaviour.delay and self.stopping.wait(behaviour.delay):
            self.close_connection = True
            return
        self.send_response(behaviour.status)
        for name, value in behaviour.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(behaviour.body)))
        self.end_headers()
        self.wfile.write(behaviour.body)

    def _drop(self) -> None:
        self.close_connection = True
        self.connection.shutdown(socket.SHUT_RDWR)

    def _never_finish(self, behaviour: NeverFinish) -> None:
        self.send_response(behaviour.status)
        self.send_header("Content-Length", "1000000")
        self.end_headers()
        self.wfile.write(b"{")
        self.wfile.flush()
        self.stopping.wait()
        self.close_connection = True

    def _trickle(self, behaviour: Trickle) -> None:
        self.close_connection = True
        start = f"HTTP/1.1 {behaviour.status} Slow\r\n"
        if behaviour.part == "body":
            start += "Content-Length: 1000000\r\n\r\n"
        else:
            start += "X-Trickle: "
        try:
            self.wfile.write(start.encode())
            while not self.stopping.wait(behaviour.interval):
                self.wfile.write(b"x")
        except OSError:  # the client gave up: what a trickle is for
            pass
