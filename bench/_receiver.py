"""A loopback webhook receiver in a process of its own, for the benchmarks.

A receiver in the benchmark's own process would bill its work (parsing each request, answering)
to whoever sends, through the GIL: a real receiver runs elsewhere. This one runs
:class:`~airflow_ordo_hooks.testing.receiver.WebhookReceiver` in a child interpreter, and says on
exit how many requests it got, so that a benchmark can check every delivery arrived.
"""

from __future__ import annotations

import subprocess
import sys

_SERVE = """
import sys
from airflow_ordo_hooks.testing.receiver import WebhookReceiver
with WebhookReceiver() as receiver:
    print(receiver.port, flush=True)
    sys.stdin.read()  # until the benchmark closes it
    print(len(receiver.requests), flush=True)
"""


class ReceiverProcess:
    """``with ReceiverProcess() as receiver: ... receiver.url("/x") ...``; then ``receiver.received``."""

    def __init__(self) -> None:
        self.received: int | None = None

    def __enter__(self) -> ReceiverProcess:
        self._process = subprocess.Popen(
            [sys.executable, "-c", _SERVE], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        self.port = int(self._process.stdout.readline())
        return self

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def __exit__(self, *exc: object) -> None:
        out, _ = self._process.communicate(timeout=60)
        self.received = int(out.strip())
