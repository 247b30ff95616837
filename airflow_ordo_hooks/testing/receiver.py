"""A real webhook receiver on loopback, for tests and the demo: it records every request and can misbehave.

    with WebhookReceiver() as receiver:
        receiver.script("/flaky", Respond(503), Respond(200))
        ...  # send to receiver.url("/flaky")
        first, second = receiver.wait_for(2)

Each request to a path takes the next behaviour scripted for it; when none is left it gets the
receiver's ``default`` (a 200 unless told).

Run as a command, it is a local receiver for a DAG author: it prints every request as it arrives
and verifies its Standard Webhooks signature (``--help`` says how)::

    python -m airflow_ordo_hooks.testing.receiver [--host 127.0.0.1] [--port 8765] [--secret whsec_...] [--status 200]
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from datetime import datetime
from http.server import ThreadingHTTPServer
from typing import TYPE_CHECKING

from airflow_ordo_hooks.testing._behaviours import (
    Behaviour,
    Drop,
    NeverFinish,
    ReceivedRequest,
    Respond,
    Trickle,
    handler_class,
)

if TYPE_CHECKING:
    import argparse

__all__ = ["Behaviour", "Drop", "NeverFinish", "ReceivedRequest", "Respond", "Trickle", "WebhookReceiver", "main"]


class WebhookReceiver:
    """
    An HTTP/1.1 server on loopback that records requests; start with ``with`` or :meth:`start`.

    :param host: the address to listen on: ``127.0.0.1``, or another of 127/8 to stand for a second host.
    :param default: what a request gets when nothing is scripted for its path.
    """

    def __init__(
        self,
        port: int = 0,
        on_request: Callable[[ReceivedRequest], None] | None = None,
        host: str = "127.0.0.1",
        default: Behaviour = Respond(200),
    ) -> None:
        self._host = host
        self._port = port
        self._on_request = on_request
        self._default = default
        self._lock = threading.Condition()
        self._requests: list[ReceivedRequest] = []
        self._scripts: dict[str, deque[Behaviour]] = defaultdict(deque)
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> WebhookReceiver:
        self._stopping.clear()
        self._server = ThreadingHTTPServer((self._host, self._port), handler_class(self._record, self._stopping))
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
            behaviour = script.popleft() if script else self._default
            self._lock.notify_all()
        if self._on_request:
            self._on_request(request)
        return behaviour


# -- the command: python -m airflow_ordo_hooks.testing.receiver -----------------------------------
_SIGNATURE_TOLERANCE = 5 * 60
"""Seconds a ``webhook-timestamp`` may be away from the time a request arrives (Standard Webhooks' five minutes)."""

_SHOWN_CHARACTERS = 4000
"""Characters of a body the command prints at the most."""

_PARSED_BYTES = 1 << 20
"""A body longer than this is shown as text, never parsed as JSON."""


def _signature_verdict(request: ReceivedRequest, secret: str | None) -> str:
    """
    What the command says of a request's Standard Webhooks signature.

    With ``secret``: ``signature OK``, or ``signature BAD`` and why (headers missing, a timestamp
    more than five minutes from when the request arrived, no ``v1`` signature matching). Without:
    whether the request was signed at all.
    """
    signatures = (request.header("webhook-signature") or "").split()
    if secret is None:
        return "signed (not verified: no --secret)" if signatures else "not signed"
    import hmac

    from airflow_ordo_hooks.hooks.webhook import sign

    webhook_id, timestamp = request.header("webhook-id"), request.header("webhook-timestamp")
    missing = [name for name, value in (("webhook-id", webhook_id), ("webhook-timestamp", timestamp),
                                        ("webhook-signature", signatures)) if not value]
    if missing:
        names = ", ".join(missing[:-1]) + " or " + missing[-1] if len(missing) > 1 else missing[0]
        return f"signature BAD: no {names} header"
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
        return "signature BAD: webhook-timestamp is not a time in whole seconds"
    seconds = int(timestamp)
    away = seconds - request.received_at
    if abs(away) > _SIGNATURE_TOLERANCE:
        return f"signature BAD: webhook-timestamp is {abs(away):.0f} s in the {'future' if away > 0 else 'past'}"
    expected = sign(secret, webhook_id, seconds, request.body).encode()
    # bytes, not str: compare_digest refuses text that is not ASCII, which a header may hold
    if any(hmac.compare_digest(given.encode("utf-8", "replace"), expected) for given in signatures):
        return "signature OK"
    if len(signatures) > 1:
        return f"signature BAD: none of the {len(signatures)} signatures matches"
    return "signature BAD: the signature does not match"


def _printable(text: str) -> str:
    """``text`` with every character a terminal could act on (escapes, controls) written as a Python escape."""
    return "".join(c if c.isprintable() or c in "\n\t" else repr(c)[1:-1] for c in text)


def _show_body(body: bytes) -> str:
    """A body as the command prints it: pretty-printed JSON if it is JSON, else its text; cut after a few KB."""
    if not body:
        return "(empty body)"
    text = None
    if len(body) <= _PARSED_BYTES:
        try:
            text = json.dumps(json.loads(body), indent=2, ensure_ascii=False)
        except (ValueError, RecursionError):
            pass
    if text is None:
        text = body[: _SHOWN_CHARACTERS * 4].decode("utf-8", "replace").replace("\r\n", "\n")
    if len(text) > _SHOWN_CHARACTERS:
        text = text[:_SHOWN_CHARACTERS] + f"\n... (cut: the body is {len(body):,} bytes)"
    return _printable(text)


def _show(request: ReceivedRequest, secret: str | None) -> str:
    """The lines the command prints for one request: what arrived, then its body indented."""
    at = datetime.fromtimestamp(request.received_at).isoformat(sep=" ", timespec="milliseconds")
    webhook_id = request.header("webhook-id")
    first = [at, request.method, _printable(request.path[:500])]
    if webhook_id is not None:
        first.append(f"webhook-id={_printable(webhook_id[:200])}")
    first.append(_signature_verdict(request, secret))
    body = "\n".join("  " + line for line in _show_body(request.body).split("\n"))
    return "  ".join(first) + "\n" + body + "\n"


def _parser() -> argparse.ArgumentParser:
    import argparse

    def ranged(low: int, high: int) -> Callable[[str], int]:
        def convert(text: str) -> int:
            if not (text.isascii() and text.isdigit() and low <= int(text) <= high):
                raise argparse.ArgumentTypeError(f"expected a whole number from {low} to {high}, got {text!r}")
            return int(text)

        return convert

    parser = argparse.ArgumentParser(
        prog="python -m airflow_ordo_hooks.testing.receiver",
        description="A local webhook receiver: prints every request as it arrives and verifies its "
        "Standard Webhooks signature. Runs until Ctrl-C or SIGTERM.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="the address to listen on (default: %(default)s)")
    parser.add_argument("--port", type=ranged(0, 65535), default=8765,
                        help="the port to listen on; 0 for any free one (default: %(default)s, the example DAGs' receiver)")
    parser.add_argument("--secret", help="a Standard Webhooks signing secret (whsec_...): each request's signature "
                        "is verified with it; without it, the command says only whether a request was signed")
    parser.add_argument("--status", type=ranged(200, 599), default=200,
                        help="the HTTP status every request is answered with (default: %(default)s)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """The command: listen, print each request until Ctrl-C or SIGTERM, then stop; the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    _check_secret(parser, args.secret)
    if hasattr(sys.stdout, "reconfigure"):  # a body's text is printed whatever the terminal's encoding
        sys.stdout.reconfigure(errors="backslashreplace")
    lock = threading.Lock()
    count = 0

    def on_request(request: ReceivedRequest) -> None:
        nonlocal count
        text = _show(request, args.secret)
        with lock:
            count += 1
            sys.stdout.write(text)
            sys.stdout.flush()
        receiver.reset()  # the command keeps nothing: a receiver left running for days does not grow

    receiver = WebhookReceiver(args.port, on_request=on_request, host=args.host, default=Respond(args.status))
    if not _serve(receiver, args, parser.prog):
        return 1
    with lock:
        print(f"stopped after {count} request(s)", flush=True)
    return 0


def _check_secret(parser: argparse.ArgumentParser, secret: str | None) -> None:
    """Refuse, as argparse refuses an argument, a ``--secret`` that is not a Standard Webhooks secret."""
    if secret is None:
        return
    from airflow_ordo_hooks.hooks.webhook import _signing_key

    try:
        _signing_key(secret)
    except ValueError as exc:
        parser.error(f"argument --secret: {exc}")


def _serve(receiver: WebhookReceiver, args: argparse.Namespace, prog: str) -> bool:
    """Serve until Ctrl-C or SIGTERM, then stop; false if the receiver cannot listen (said on stderr)."""
    import signal

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    started = False
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, interrupt)
    try:
        try:
            receiver.start()
        except OSError as exc:
            print(f"{prog}: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
            return False
        started = True
        checked = "verifying signatures with --secret" if args.secret else "not verifying signatures (no --secret)"
        print(f"listening on {receiver.url()}: {checked}, answering every request HTTP {args.status}; "
              "Ctrl-C to stop", flush=True)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):  # a second Ctrl-C does not interrupt stopping
            signal.signal(signum, signal.SIG_IGN)
        if started:  # a receiver interrupted while starting is left to the process's exit
            receiver.stop()
    return True


if __name__ == "__main__":
    sys.exit(main())
