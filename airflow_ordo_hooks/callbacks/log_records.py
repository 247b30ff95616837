"""A try's log records read as text: one line a record, Airflow's own lines left out, the error found, secrets masked.

The records are JSON lines of the try's log file, as Airflow's supervisor writes them, or the
REST API's records. Exceptions the task logged are in them as structlog's dicts (under
``error_detail``); they are read back as Python prints a traceback.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

MARKER = "airflow-ordo-hooks: reading this try's log"
"""What a callback logs before it reads its try's log (see ``task_log._catch_up``), left out when it is read."""
_MARKER_LINE = re.escape(MARKER) + r" \[[0-9a-f]{12}\]"  # compiled (and cached by ``re``) on first use, not by every DAG file
_EXIT_FIELDS = ("signal", "signal_name", "exit_code")


def _traceback(stacks: Any) -> str:
    """structlog's dict traceback (the raised exception first, then its causes) as Python prints it."""
    from airflow_ordo_hooks.callbacks.payloads import RUNNER_FRAMES  # left out as failure_text leaves them out

    lines: list[str] = []
    cause = None
    for stack in reversed([s for s in stacks if isinstance(s, dict)]):  # the first cause first, as Python does
        if cause is not None:
            lines += [
                "",
                "The above exception was the direct cause of the following exception:"
                if cause
                else "During handling of the above exception, another exception occurred:",
                "",
            ]
        frames = [
            f for f in stack.get("frames") or () if isinstance(f, dict) and not any(p in str(f.get("filename")) for p in RUNNER_FRAMES)
        ]
        if frames:
            lines.append("Traceback (most recent call last):")
            lines += [f'  File "{f.get("filename")}", line {f.get("lineno")}, in {f.get("name")}' for f in frames]
        value = stack.get("exc_value")
        lines.append(f"{stack.get('exc_type')}: {value}" if value else str(stack.get("exc_type")))
        lines += [str(note) for note in stack.get("exc_notes") or ()]
        cause = bool(stack.get("is_cause"))
    return "\n".join(lines)


def _record(raw: Any) -> Any:
    """A log record: a line of the file parsed (JSON), a record as it came; a line that is not JSON as it is."""
    if isinstance(raw, str):
        try:
            return json.loads(raw)
        except ValueError:
            return raw
    return raw


def _exit_text(record: dict[str, Any]) -> str:
    """How the supervisor says the process ended, as `` signal=-9 signal_name=SIGKILL``; ``""`` if the record does not."""
    return "".join(f" {key}={record[key]}" for key in _EXIT_FIELDS if key in record)


def format_record(line: str | dict[str, Any]) -> str:
    """One line of a try's log file (a JSON record, as the supervisor writes them), or a record, as a line of text."""
    record = _record(line)
    if not isinstance(record, dict):
        return str(line)
    text = f"[{record.get('timestamp', '')}] {str(record.get('level', '')).upper()} - {record.get('event', '')}"
    # what the supervisor says of how the process ended ("Process terminated by signal." signal=-9)
    text += _exit_text(record)
    # structlog's dict tracebacks: the supervisor writes them under "error_detail", structlog under "exception"
    stacks = record.get("error_detail") or record.get("exception")
    if isinstance(stacks, list) and stacks:
        text += "\n" + _traceback(stacks)
    return text


_OUTPUT_LOGGERS = frozenset({"task.stdout", "task.stderr"})
"""What the task printed: it reaches the supervisor over sockets of its own, so it is often written
after Airflow's ``Post Execute`` group has begun; it is kept wherever it lands."""

_BOILERPLATE = ("Tmp dir root location:",)
"""The starts of lines Airflow's operators log on every try, outside its groups, that say nothing of the task."""


def readable_lines(records: Iterable[Any]) -> list[str]:
    """
    A try's log records (lines of its file, or the REST API's records) as lines of text, without
    what Airflow logs around every task: its ``::group::`` sections (loading the DAG bundle and
    parsing the DAG file before the task, its callbacks after it), the lines of :data:`_BOILERPLATE`,
    and our own marker. What the task printed and logged stays, its error, and the supervisor's
    line saying how the process ended: those two kept even inside a group (printed lines arrive
    late, inside ``Post Execute``; a try may be killed while it is parsed).
    """
    lines: list[str] = []
    in_group = False
    for raw in records:
        record = _record(raw)
        if not isinstance(record, dict):
            if not in_group:
                lines.append(str(raw))
            continue
        event = str(record.get("event", ""))
        if event.startswith("::group::"):
            in_group = True
        elif event.startswith("::endgroup::"):
            if not in_group:  # what was read began inside a group
                lines.clear()
            in_group = False
        elif any(key in record for key in _EXIT_FIELDS) or str(record.get("logger", "")) in _OUTPUT_LOGGERS:
            lines.append(format_record(record))
        elif not in_group and not event.startswith(_BOILERPLATE) and not re.search(_MARKER_LINE, event):
            lines.append(format_record(record))
    return lines


def error_of(records: Iterable[Any]) -> str | None:
    """
    What made a try fail, from its log records: the exception it raised (``Type: message``, as
    Python's last traceback line reads), else the last error line (how the supervisor says the
    process ended, with its signal); ``None`` if the log says neither.
    """
    error = None
    for raw in records:
        record = _record(raw)
        if not isinstance(record, dict):
            continue
        stacks = record.get("error_detail") or record.get("exception")
        if isinstance(stacks, list) and stacks and isinstance(stacks[0], dict):
            raised = stacks[0]  # the raised exception first, then its causes
            value = raised.get("exc_value")
            error = f"{raised.get('exc_type')}: {value}" if value else str(raised.get("exc_type"))
        elif str(record.get("level", "")).lower() in ("error", "critical"):
            error = str(record.get("event", "")) + _exit_text(record)
    return mask(error) if error else None


def mask(text: str) -> str:
    """``text`` with the secrets Airflow knows of replaced, by Airflow's own masker."""
    from airflow.sdk.log import redact

    return redact(text)
