"""This try's task log, as Airflow recorded it, for cheek's ``log`` field.

A worker's supervisor writes each try's log to ``[logging] base_log_folder`` under
``[logging] log_filename_template``, as JSON lines, while the task runs; a callback runs in the
same task process afterwards and reads its tail from there. Where Airflow writes no such file
(``dag.test()`` runs tasks in its own process and logs to the console), the log is what the
callback knows itself: on failure, the exception and its traceback.
"""

from __future__ import annotations

import functools
import json
import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

DEFAULT_MAX_CHARS = 20_000


@functools.lru_cache(maxsize=8)
def _template(source: str) -> Any:
    from jinja2 import Template

    return Template(source)  # compiling costs a millisecond: once per process


def log_file(ti: Any) -> Path | None:
    """Where Airflow's file task handler writes this try's log, if it has written one."""
    try:
        from airflow.configuration import conf

        base = conf.get("logging", "base_log_folder")
        relative = _template(conf.get("logging", "log_filename_template")).render(ti=ti, try_number=ti.try_number)
    except Exception:
        return None
    path = Path(base, relative)
    return path if path.is_file() else None


def _format(line: str) -> str:
    try:
        record = json.loads(line)
    except ValueError:
        return line
    if not isinstance(record, dict):
        return line
    text = f"[{record.get('timestamp', '')}] {str(record.get('level', '')).upper()} - {record.get('event', '')}"
    for frame in record.get("exception") or ():  # structlog's dict tracebacks
        if isinstance(frame, dict):
            text += f"\n{frame.get('exc_type', '')}: {frame.get('exc_value', '')}"
    return text


def read_try_log(ti: Any, max_chars: int = DEFAULT_MAX_CHARS) -> str:
    """The tail of this try's log file, formatted one record a line, masked; ``""`` when there is none."""
    path = log_file(ti)
    if path is None:
        return ""
    with path.open("rb") as f:
        size = f.seek(0, 2)
        f.seek(max(size - max_chars * 4, 0))  # a UTF-8 character is at most 4 bytes
        raw = f.read().decode("utf-8", errors="replace")
    lines = raw.splitlines()
    if size > max_chars * 4 and lines:
        lines = lines[1:]  # the first line read may start mid-record
    return mask("\n".join(_format(line) for line in lines))


def mask(text: str) -> str:
    """``text`` with the secrets Airflow knows of replaced, by Airflow's own masker."""
    from airflow.sdk.log import redact

    return redact(text)
