"""Reading a try's log file: the tail, formatted, whatever the file holds; never an error."""

from __future__ import annotations

import json

import pytest

from airflow_ordo_hooks import _task_log


@pytest.fixture
def log_at(tmp_path, monkeypatch):
    path = tmp_path / "attempt=1.log"
    monkeypatch.setattr(_task_log, "log_file", lambda ti: path)
    return path


def _record(event: str) -> str:
    return json.dumps({"timestamp": "2026-11-23T04:00:00Z", "level": "error", "event": event})


def test_a_last_line_longer_than_what_is_read_still_gives_its_tail(log_at):
    log_at.write_text(_record("start") + "\n" + "x" * 50_000 + "THE END\n")
    text = _task_log.read_try_log(object(), 1_000, catch_up=False)
    assert text.endswith("THE END") and len(text) >= 1_000


def test_the_first_partial_line_is_dropped_when_whole_lines_follow(log_at):
    log_at.write_text("\n".join(_record(f"line {i} " + "y" * 50) for i in range(500)) + "\n")
    lines = _task_log.read_try_log(object(), 1_000, catch_up=False).splitlines()
    assert lines[-1].endswith("line 499 " + "y" * 50)
    assert all(line.startswith("[2026-11-23T04:00:00Z] ERROR - line ") for line in lines)


def test_an_unreadable_log_gives_no_text_and_no_error(log_at):
    log_at.mkdir()  # a directory where the file should be
    assert _task_log.read_try_log(object(), 1_000, catch_up=False) == ""


def test_how_the_supervisor_says_a_process_ended_is_kept():
    import json

    from airflow_ordo_hooks._task_log import format_record
    from airflow_ordo_hooks._payloads import kill_status

    line = json.dumps({
        "timestamp": "2026-11-23T07:00:00.000000Z", "level": "critical", "logger": "supervisor",
        "event": "Process terminated by signal. Likely out of memory error (OOM).", "signal": -9, "signal_name": "SIGKILL",
    })
    text = format_record(line)
    assert text.endswith("signal=-9 signal_name=SIGKILL") and kill_status(text) == -9
