"""This try's task log, as Airflow recorded it, for cheek's ``log`` field.

A worker's supervisor writes each try's log to ``[logging] base_log_folder`` under
``[logging] log_filename_template``, as JSON lines, while the task runs; a callback runs in the
same task process afterwards and reads its tail from there. Where Airflow writes no such file
(``dag.test()`` runs tasks in its own process and logs to the console), :class:`CopyTryOutput`
has copied what the try wrote to the console (:mod:`airflow_ordo_hooks.callbacks.try_output`), and that is
read instead.

The supervisor writes the file from what the task process sends it over sockets, so it may still
be behind the task when a callback starts (a try that logs a burst of lines just before it ends):
before reading, the callback waits, bounded, until the supervisor has read its stdout and stderr,
then logs a marker line and waits until the supervisor has written it (:func:`_catch_up`). The
records read are turned into text by :mod:`airflow_ordo_hooks.callbacks.log_records`.
"""

from __future__ import annotations

import functools
import logging
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from airflow_ordo_hooks.callbacks.log_records import MARKER, error_of, format_record, mask, readable_lines

__all__ = [  # error_of, format_record, mask and readable_lines, of log_records, are read from here too
    "CATCH_UP_TIMEOUT",
    "CopyTryOutput",
    "StopTryOutputCopy",
    "error_of",
    "format_record",
    "log_file",
    "log_file_template",
    "mask",
    "read_try_log",
    "readable_lines",
    "rest_log_text",
    "rest_try_log",
    "rest_try_records",
]


log = logging.getLogger(__name__)

CATCH_UP_TIMEOUT = 2.0
"""Seconds a callback waits at most for the supervisor to write what the task process logged."""

_POLL = 0.02
_SETTLED_POLLS = 3  # the file has stopped growing once its size is the same this many polls in a row
_DRAIN_POLL = 0.0005  # while the supervisor reads what is left in a socket, and writes the marker (about 1 ms)


@functools.lru_cache(maxsize=8)
def _template(source: str) -> Any:
    from jinja2 import Template

    return Template(source)  # compiling costs a millisecond: once per process


def log_file_template() -> Any:
    """``[logging] log_filename_template``, compiled (once a process)."""
    from airflow.sdk import conf

    return _template(conf.get("logging", "log_filename_template"))


def log_file(ti: Any) -> Path | None:
    """Where Airflow's file task handler writes this try's log, if it has written one."""
    try:
        from airflow.sdk import conf

        base = conf.get("logging", "base_log_folder")
        relative = log_file_template().render(ti=ti, try_number=ti.try_number)
    except Exception:
        return None
    path = Path(base, relative)
    return path if path.is_file() else None


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return -1


def _catch_up(path: Path, timeout: float = CATCH_UP_TIMEOUT, streams: Sequence[Any] = ()) -> None:
    """
    Wait, at most ``timeout`` seconds, until the supervisor has written to ``path`` what this process logged.

    A marker logged now reaches the file behind every record logged before it (one socket, in
    order). stdout and stderr come over sockets of their own: the marker is logged only once the
    supervisor has read everything written to them (the kernel counts what a socket's reader has
    not read yet). The supervisor serves its sockets in one loop, so by the time the marker is in
    the file, so is every line read before it. Where that count cannot be had (stdout is not a
    socket), the wait goes on after the marker until the file stops growing.
    """
    streams = streams or (sys.stdout, sys.stderr)
    for stream in streams:
        try:
            stream.flush()
        except Exception:
            pass
    deadline = time.monotonic() + timeout
    fds = [_socket_fd(stream) for stream in streams]
    counted = all(fd is not None and _unread(fd) is not None for fd in fds)
    while counted and any(_unread(fd) for fd in fds) and time.monotonic() < deadline:
        time.sleep(_DRAIN_POLL)
    token = f"[{uuid.uuid4().hex[:12]}]".encode()
    offset = max(_size(path), 0)
    marker_seen = not log.isEnabledFor(logging.INFO)  # a marker that is filtered out never arrives
    if marker_seen:
        counted = False  # nothing to wait behind: wait for the file to settle
    else:
        log.info("%s %s", MARKER, token.decode())
    last_size, same = -1, 0
    while time.monotonic() < deadline:
        size = _size(path)
        if not marker_seen and size > offset:
            with path.open("rb") as f:
                f.seek(max(offset - len(token), 0))
                chunk = f.read(size - f.tell())
            marker_seen = token in chunk
            offset = size
        if marker_seen and counted:
            return
        same = same + 1 if size == last_size else 0
        if marker_seen and same >= _SETTLED_POLLS:
            return
        last_size = size
        time.sleep(_DRAIN_POLL if counted else _POLL)
    log.debug("airflow-ordo-hooks: %s not settled after %.1f s; reading it as it is", path, timeout)


def _socket_fd(stream: Any) -> int | None:
    """The file descriptor of ``stream`` if it is a socket (the supervisor's), else ``None``."""
    import os
    import stat

    try:
        fd = stream.fileno()
        return fd if stat.S_ISSOCK(os.fstat(fd).st_mode) else None
    except Exception:
        return None


def _unread(fd: int) -> int | None:
    """How many bytes written to socket ``fd`` its reader has not read yet (Linux's ``SIOCOUTQ``); ``None`` where unknown."""
    try:
        import fcntl
        import struct
        import termios

        return struct.unpack("i", fcntl.ioctl(fd, termios.TIOCOUTQ, b"\0" * 4))[0]  # SIOCOUTQ is TIOCOUTQ's number
    except Exception:
        return None


def read_try_log(ti: Any, max_chars: int, *, catch_up: bool = True) -> str:
    """
    The tail of a try's log file, formatted one record a line, masked; ``""`` when there is none
    or it cannot be read (the payload then carries the exception only).

    :param catch_up: this process is the try's own (a callback): first wait for the supervisor
        to write what it logged. The wait ends as soon as this process's marker line reaches the
        file; where the callback runs elsewhere (the DAG processor, for a killed try) it never
        does, and the file is read as it is after :data:`CATCH_UP_TIMEOUT`.
    """
    from airflow_ordo_hooks.callbacks import try_output

    try:
        # a copy is started only where the try has no log file: then there is no path to render
        path = None if try_output.copying(ti) else log_file(ti)
        if path is None:
            return _copied_output(ti, max_chars)
        try:
            if catch_up:
                _catch_up(path)
        except Exception:  # waiting is a courtesy: read what is there
            log.debug("airflow-ordo-hooks: could not wait for %s", path, exc_info=True)
        with path.open("rb") as f:
            size = f.seek(0, 2)
            f.seek(max(size - max_chars * 4, 0))  # a UTF-8 character is at most 4 bytes
            raw = f.read().decode("utf-8", errors="replace")
        lines = raw.splitlines()
        if size > max_chars * 4 and len(lines) > 1:
            lines = lines[1:]  # the first line read may start mid-record; a single huge line is kept, cut
        return mask("\n".join(readable_lines(lines)))
    except Exception:  # the log's format or place changed under us: the payload goes without it
        log.warning("airflow-ordo-hooks: could not read this try's log; the payload carries the exception only", exc_info=True)
        return ""


def _copied_output(ti: Any, max_chars: int) -> str:
    """What try ``ti`` wrote to this process's console, if it was copied (``dag.test()``), as :func:`read_try_log` reads a file."""
    from airflow_ordo_hooks.callbacks import try_output

    text = try_output.stop(ti)
    if text is None:
        return ""
    return mask("\n".join(readable_lines(try_output.records(text[-max_chars * 2 :]))))


class CopyTryOutput:
    """
    A hooked task's first execute callback: where Airflow writes no log file for the try (it runs in
    this process, under ``dag.test()``), copy what it writes to the console for its payload's ``log``
    (:mod:`airflow_ordo_hooks.callbacks.try_output`); the try's own callback stops the copy when it reads it.
    """

    def __call__(self, context: Any) -> None:
        try:
            ti = context["ti"]
            if log_file(ti) is None:
                from airflow_ordo_hooks.callbacks import try_output

                try_output.start(ti)
        except Exception:  # the payload then carries the exception only
            log.warning("airflow-ordo-hooks: could not copy this try's output", exc_info=True)

    def __repr__(self) -> str:
        return "CopyTryOutput()"


class StopTryOutputCopy:
    """
    Stops a try's output copy where nothing read it: a hooked task's skipped callback (a skipped try
    runs none of the callbacks that read its output), and its event callbacks when they sent nothing.
    The console is then put back at once rather than when the next hooked try starts (a test runner
    checks its capture files between tests).
    """

    def __call__(self, context: Any) -> None:
        try:
            from airflow_ordo_hooks.callbacks import try_output

            try_output.stop(context["ti"])
        except Exception:
            log.exception("airflow-ordo-hooks: could not stop copying this try's output")

    def __repr__(self) -> str:
        return "StopTryOutputCopy()"


def rest_log_text(records: Sequence[Any]) -> str:
    """The REST API's log records, one a line as in the task's log file, without Airflow's own (see :func:`~airflow_ordo_hooks.callbacks.log_records.readable_lines`)."""
    return "\n".join(readable_lines(records))


def rest_try_log(api: Any, ti_path: str, try_number: int, map_index: int, max_chars: int) -> str:
    """
    A try's log through Airflow's REST API v2 (``ti_path``: the task instance's path, without its
    map index), as a payload carries it: masked, its tail kept. The log endpoint answers JSON
    (``{"content": [records]}``) or NDJSON, never text/plain.
    """
    from airflow_ordo_hooks.callbacks.payloads import keep_tail

    return keep_tail(mask(rest_log_text(rest_try_records(api, ti_path, try_number, map_index))), max_chars)


def rest_try_records(api: Any, ti_path: str, try_number: int, map_index: int) -> list[Any]:
    """A try's log records through Airflow's REST API v2 (``ti_path``: the task instance's path, without its map index)."""
    return api.get(f"{ti_path}/logs/{try_number}", map_index=map_index)["content"]
