"""What a try run in this very process wrote, where Airflow writes no log file for it: ``dag.test()``, ``airflow dags test``.

There each task runs in the test's own process and everything it prints and logs goes to the
console: Airflow's console log lines, ``print()``, a subprocess's output, tracebacks. A hooked
task's execute callback starts copying the process's standard output and error (file descriptors
1 and 2, through a pipe each, every byte also passed on to where it was going) when the try has no
log file (and the descriptors ``sys.stdout`` and ``sys.stderr`` write to, if others: pytest's
capture files); the try's own callback stops it and reads what was copied, as the payload's ``log``,
as a deployment's callback reads the log file. Where the try has a log file nothing is copied.

Console lines are read back as log records (``time [level] event [logger]``), so that
:func:`airflow_ordo_hooks.callbacks.task_log.readable_lines` drops Airflow's boilerplate from them as it does
from a log file; ``dag.test()``'s own lines (its in-process API server, its runner) are left out.
"""

from __future__ import annotations

import atexit
import logging
import os
import re
import selectors
import sys
import threading
from typing import Any

log = logging.getLogger(__name__)

MAX_BYTES = 4 * 1024 * 1024
"""The most of a try's output kept (its tail); a payload's log is at most ``[ordo_hooks] log_max_chars`` of it."""
DRAIN_SECONDS = 0.5
"""How long stopping waits for the copy to pass on what was written (a child process still holding
the output may keep it open longer: what it wrote by then is read)."""

_CONSOLE = re.compile(
    r"^(?P<timestamp>\d{4}-\d\d-\d\dT[\d:.]+Z?) \[(?P<level>[a-z]+)\s*\] (?P<event>.*?)(?:\s+\[(?P<logger>[\w.]+)\](?: .*)?)?$"
)
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_TEST_RUNNER_LOGGERS = ("airflow.api_fastapi.", "airflow.sdk.definitions.dag")
"""dag.test()'s in-process execution API and its runner: in the console, not in a deployment's task log."""

_lock = threading.Lock()
_current: _Copy | None = None


def _key(ti: Any) -> tuple[Any, ...]:
    return (ti.dag_id, ti.run_id, ti.task_id, getattr(ti, "map_index", -1), ti.try_number)


class _Copy:
    """Copies of the console's file descriptors while a try runs: a pipe each, drained by one thread that passes every byte on."""

    def __init__(self, key: tuple[Any, ...]) -> None:
        self.key = key
        self.data = bytearray()
        self.text: str | None = None
        self._data_lock = threading.Lock()
        self._saved: dict[int, int] = {}  # fd -> a duplicate of what it was: where its bytes are passed on
        self._pipes: dict[int, int] = {}  # fd -> the pipe's inode, to know it is still ours
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        for stream in (sys.stdout, sys.stderr):
            _flush(stream)
        pairs = []
        try:
            for fd in _console_fds():
                read_end, write_end = os.pipe()
                self._saved[fd] = os.dup(fd)
                os.dup2(write_end, fd)
                os.close(write_end)
                self._pipes[fd] = os.fstat(fd).st_ino
                pairs.append((read_end, self._saved[fd]))
        finally:
            self._thread = threading.Thread(target=self._pass_on, args=(pairs,), name="ordo-hooks-try-output", daemon=True)
            self._thread.start()

    def _pass_on(self, pairs: list[tuple[int, int]]) -> None:
        """Until every pipe is closed at its other end: pass each chunk on to where its fd went before, and keep it."""
        with selectors.DefaultSelector() as selector:
            for read_end, to in pairs:
                selector.register(read_end, selectors.EVENT_READ, to)
            while selector.get_map():
                for key, _ in selector.select():
                    chunk = os.read(key.fd, 65536)
                    if not chunk:  # stopped: the fd is back to what it was
                        selector.unregister(key.fd)
                        os.close(key.fd)
                        os.close(key.data)
                        continue
                    try:
                        os.write(key.data, chunk)
                    except OSError:
                        pass
                    with self._data_lock:
                        self.data += chunk
                        if len(self.data) > 2 * MAX_BYTES:
                            del self.data[: len(self.data) - MAX_BYTES]

    def stop(self) -> str:
        """Put the file descriptors back (those still ours), wait for the copy to pass on what is left, and return what it holds."""
        if self.text is not None:
            return self.text
        for stream in (sys.stdout, sys.stderr):
            _flush(stream)
        for fd, saved in self._saved.items():
            try:
                if os.fstat(fd).st_ino == self._pipes.get(fd):  # nobody (a test runner's capture) replaced it since
                    os.dup2(saved, fd)  # closes our pipe's write end there: its reader sees the end
            except OSError:  # closed meanwhile: nothing of ours to put back
                pass
        if self._thread is not None:
            self._thread.join(DRAIN_SECONDS)
        with self._data_lock:
            self.text = bytes(self.data[-MAX_BYTES:]).decode("utf-8", errors="replace")
        return self.text


def _console_fds() -> list[int]:
    """
    File descriptors 1 and 2, and those ``sys.stdout`` and ``sys.stderr`` write to if others (a test
    runner's capture files, which Airflow's console logging also writes to when it was set up under one).
    """
    fds = {1, 2}
    for stream in (sys.stdout, sys.stderr):
        try:
            fds.add(stream.fileno())
        except Exception:  # an in-memory stream: what is written to it is not copied
            pass
    return sorted(fds)


def _flush(stream: Any) -> None:
    try:
        stream.flush()
    except Exception:
        pass


def start(ti: Any) -> None:
    """Start copying this try's output (any copy of an earlier try is stopped first)."""
    global _current
    with _lock:
        if _current is not None:
            _current.stop()
        _current = _Copy(_key(ti))
        try:
            _current.start()
        except OSError:  # no file descriptors to spare: the payload carries the exception only, as before
            log.warning("airflow-ordo-hooks: could not copy this try's output for its payload's log", exc_info=True)
            _current.stop()
            _current = None


def copying(ti: Any) -> bool:
    """Whether the output of try ``ti`` is being copied (it then has no log file: a copy starts only where there is none)."""
    current = _current
    return current is not None and current.key == _key(ti)


def stop(ti: Any) -> str | None:
    """Stop copying the output of try ``ti`` and return it; ``None`` if it was not being copied."""
    global _current
    with _lock:
        if _current is None or _current.key != _key(ti):
            return None
        copy, _current = _current, None
    return copy.stop()


@atexit.register
def _stop_at_exit() -> None:
    """A try whose state runs no callback of ours (skipped, deferred) leaves its copy running: put the console back."""
    global _current
    with _lock:
        copy, _current = _current, None
    if copy is not None:
        copy.stop()


def records(text: str) -> list[Any]:
    """
    Console output as log records (dicts) where a line is Airflow's console log line, else the line
    as it is; colours taken off, and a traceback's frames in Airflow's task runner left out (as a
    log file's tracebacks are read). Airflow's ``::group::`` sections (its work before and after the
    task) are left out here, with their markers, but for plain lines: those are what the try wrote,
    whenever a buffered stream passed them on (a deployment's log keeps its printed lines the same way).
    """
    from airflow_ordo_hooks.callbacks.payloads import RUNNER_FRAMES

    found: list[Any] = []
    in_runner_frame = in_group = False
    for line in _ANSI.sub("", text).splitlines():
        if line.startswith('  File "'):
            in_runner_frame = any(p in line for p in RUNNER_FRAMES)
        elif not line.startswith("    "):
            in_runner_frame = False
        if in_runner_frame:
            continue
        match = _CONSOLE.match(line)
        if match is None:
            found.append(line)
            continue
        record = {k: v for k, v in match.groupdict().items() if v is not None}
        event = record.get("event", "")
        if event.startswith("::group::"):
            in_group = True
        elif event.startswith("::endgroup::"):  # also the end of the group open when the copy started
            in_group = False
        elif not in_group and not str(record.get("logger", "")).startswith(_TEST_RUNNER_LOGGERS):
            found.append(record)
    return found
