"""The per-try slot figure of ``python -m bench burst``, from a failed try's log as Airflow writes it."""

from __future__ import annotations

import json

from bench.burst import state_and_last
from tests.system.deployments import utc


def line(timestamp: str, event: str, level: str = "info") -> str:
    return json.dumps({"timestamp": timestamp, "level": level, "event": event, "logger": "task"})


def test_a_failed_tries_slot_runs_from_its_failure_line_to_its_last_line():
    log = "\n".join([
        line("2026-12-07T09:39:47.100000Z", "Task failed with exception", "error"),
        line("2026-12-07T09:39:47.333036Z", "::group::Post Execute"),
        "a line that is not JSON",
        line("2026-12-07T09:39:48.314102Z", "::endgroup::"),
        line("2026-12-07T09:39:48.000000Z", "written late, stamped earlier"),
    ])
    state, last = state_and_last(log)
    assert state == utc("2026-12-07T09:39:47.100000Z")
    assert last == utc("2026-12-07T09:39:48.314102Z")
    assert round((last - state).total_seconds() * 1000) == 1214


def test_a_log_without_the_failure_line_gives_no_state():
    state, last = state_and_last(line("2026-12-07T09:39:47.333036Z", "Done. Returned value was: 3"))
    assert state is None
    assert last == utc("2026-12-07T09:39:47.333036Z")
