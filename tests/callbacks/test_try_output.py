"""A payload's log under dag.test(): what the try printed and logged, copied from this process's console."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from airflow_ordo_hooks.callbacks import try_output

MARK = "7f3a"


def _console() -> tuple[int, int]:
    return os.fstat(1).st_ino, os.fstat(2).st_ino


def test_a_failed_python_try_carries_what_it_printed_and_logged_and_its_error_once(run_dag, receiver, capfd):
    before = _console()
    run_dag("try_output_python")
    (request,) = receiver.wait_for(1, path="/try_output_python/job/on_error")
    log = request.json["log"]
    lines = log.splitlines()
    assert f"printed to stdout {MARK}" in lines and f"printed to stderr {MARK}" in lines
    # (what the task logs through the standard library pytest's log capture takes: see the test of `airflow dags test`)
    assert log.count(f"RuntimeError: deliberate {MARK}") == 1, log
    # what dag.test() itself writes around the try, and Airflow's runner frames, are not the task's
    for noise in ("[DAG TEST]", "::group::", "::endgroup::", "task_runner.py", "Task instance state updated", "Filling up the DagBag"):
        assert noise not in log, (noise, log)
    # the console is as it was, and still got everything
    assert _console() == before and try_output._current is None
    out, err = capfd.readouterr()
    assert f"printed to stdout {MARK}" in out and f"printed to stderr {MARK}" in err


_DAGS_TEST = """
import shutil, sys
from pathlib import Path
from airflow_ordo_hooks.testing.embedded import isolate_airflow

home = Path(sys.argv[1])
(home / "dags").mkdir(parents=True)
shutil.copy(sys.argv[2], home / "dags")
isolate_airflow(home, home / "dags", ORDO_HOOKS__LEDGER="false")
from airflow.utils import db

db.initdb()  # what `airflow db migrate` does, quicker
from airflow.__main__ import main

sys.argv = ["airflow", "dags", "test", "try_output_python"]
main()
"""


def test_airflow_dags_test_payloads_carry_the_tries_output_and_the_console_keeps_it(receiver, tmp_path):
    """The author's command, in a process (and an Airflow) of its own: print, the standard library's logging, and the error."""
    dag_file = Path(__file__).parents[1] / "dags" / "try_output.py"
    env = {**os.environ, "ORDO_HOOKS_RECEIVER": receiver.url("").rstrip("/")}
    done = subprocess.run([sys.executable, "-c", _DAGS_TEST, str(tmp_path / "home"), str(dag_file)],
                          capture_output=True, text=True, timeout=300, env=env)
    assert f"printed to stdout {MARK}" in done.stdout and f"printed to stderr {MARK}" in done.stderr, done.stderr[-3000:]
    (request,) = receiver.wait_for(1, path="/try_output_python/job/on_error")
    lines = request.json["log"].splitlines()
    assert f"printed to stdout {MARK}" in lines and f"printed to stderr {MARK}" in lines
    assert any(line.endswith(f"WARNING - a stdlib warning {MARK}") for line in lines), lines
    assert [line for line in lines if line.startswith("RuntimeError")] == [f"RuntimeError: deliberate {MARK}"]
    assert not any("[DAG TEST]" in line or "::group::" in line for line in lines)


def test_a_bash_tries_output_and_exit_code(run_dag, receiver):
    run_dag("try_output_bash")
    (request,) = receiver.wait_for(1, path="/try_output_bash/job/on_error")
    log = request.json["log"]
    assert f"INFO - from bash {MARK}" in log and f"INFO - to stderr {MARK}" in log
    assert "Bash command failed. The command returned a non-zero exit code 3." in log
    assert log.index(f"from bash {MARK}") < log.index("exit code 3")


def test_a_successful_tries_output_and_a_try_that_sends_nothing(run_dag, receiver):
    before = _console()
    run_dag("try_output_quiet")  # its on_success has nothing to send for a failure: its copy is stopped all the same
    assert try_output._current is None and _console() == before
    run_dag("try_output_success")
    (request,) = receiver.wait_for(1, path="/try_output_success/job/on_success")
    assert [line for line in request.json["log"].splitlines() if MARK in line] == [f"line {i} {MARK}" for i in range(3)]
    assert "nobody reads this" not in request.json["log"]
    assert [r.path for r in receiver.requests] == ["/try_output_success/job/on_success"]


def test_a_copied_try_looks_for_its_log_file_once(run_dag, receiver, monkeypatch):
    from airflow_ordo_hooks.callbacks import task_log

    looked = []
    log_file = task_log.log_file
    monkeypatch.setattr(task_log, "log_file", lambda ti: looked.append(ti.task_id) or log_file(ti))
    run_dag("try_output_success")

    (request,) = receiver.wait_for(1, path="/try_output_success/job/on_success")
    assert f"line 0 {MARK}" in request.json["log"]
    assert looked == ["job"], "when its copy starts; its callback then knows the copy is the log"


def test_a_skipped_try_puts_the_console_back_when_it_ends(run_dag, receiver, capfd):
    # the only task, so no later hooked try stops its copy: the skipped callback must, or the test
    # runner's capture file stays replaced by a pipe and every later test fails reading it
    before = _console()
    run = run_dag("try_output_skipped")
    assert run_dag.task_states(run) == {"job": "skipped"}
    assert try_output._current is None and _console() == before
    out, _ = capfd.readouterr()
    assert f"skipping {MARK}" in out
    assert receiver.requests == []


def test_console_lines_read_back_as_records():
    text = "\n".join([
        "\x1b[2m2026-11-23T19:06:15.857820Z\x1b[0m [\x1b[33mwarning  \x1b[0m] a warning                [my.module] loc=x.py:3",
        "2026-11-23T19:06:15.000000Z [info     ] ::endgroup::                   [task] loc=task_runner.py:2232",
        "plain text",
        "2026-11-23T19:06:15.100000Z [info     ] Task started [airflow.api_fastapi.execution_api.routes.task_instances] ti_id=1",
        "2026-11-23T19:06:15.200000Z [error    ] Task failed with exception     [task] loc=task_runner.py:1676",
        "Traceback (most recent call last):",
        '  File "/venv/airflow/sdk/execution_time/task_runner.py", line 1579, in _run_task_and_map_outcome',
        "    result = _execute_task(context=context, ti=ti, log=log)",
        "             ^^^^^^^^^^^^",
        '  File "/dags/mine.py", line 12, in job',
        '    raise RuntimeError("boom")',
        "RuntimeError: boom",
        "2026-11-23T19:06:15.300000Z [info     ] ::group::Post Execute          [task] loc=task_runner.py:1677",
        "2026-11-23T19:06:15.350000Z [info     ] Airflow's own line in its group [task] loc=task_runner.py:1680",
        "printed, passed on late",
        "2026-11-23T19:06:15.400000Z [info     ] ::endgroup::                   [task] loc=task_runner.py:2379",
    ])
    assert try_output.records(text) == [
        {"timestamp": "2026-11-23T19:06:15.857820Z", "level": "warning", "event": "a warning", "logger": "my.module"},
        "plain text",
        {"timestamp": "2026-11-23T19:06:15.200000Z", "level": "error", "event": "Task failed with exception", "logger": "task"},
        "Traceback (most recent call last):",
        '  File "/dags/mine.py", line 12, in job',
        '    raise RuntimeError("boom")',
        "RuntimeError: boom",
        "printed, passed on late",  # by a buffered stream: inside Airflow's group, kept
    ]


def _ti(try_number: int = 1):
    from types import SimpleNamespace

    return SimpleNamespace(dag_id="d", run_id="r", task_id="t", map_index=-1, try_number=try_number)


def test_a_large_output_passes_through_and_its_tail_is_kept(capfd):
    opened = len(os.listdir("/proc/self/fd"))
    try_output.start(_ti())
    block = (b"x" * 1023 + b"\n") * 300  # 300 KB: more than a pipe holds, so it must be drained while written
    os.write(1, block + b"THE END\n")
    text = try_output.stop(_ti())
    assert text.endswith("THE END\n") and len(text) == len(block) + 8
    assert capfd.readouterr().out.endswith("THE END\n")
    assert len(os.listdir("/proc/self/fd")) == opened  # every pipe and duplicate closed


def test_a_child_still_holding_the_console_does_not_hold_the_callback(capfd):
    import time

    try_output.start(_ti())
    child = subprocess.Popen(["sleep", "5"])  # inherits the copied stdout and keeps it open
    try:
        os.write(1, b"before the end\n")
        started = time.monotonic()
        text = try_output.stop(_ti())
        assert time.monotonic() - started < try_output.DRAIN_SECONDS + 0.5
        assert "before the end" in text
    finally:
        child.kill()
        child.wait()


def test_stopping_another_tries_copy_does_nothing_and_a_new_try_stops_the_last():
    try_output.start(_ti(1))
    assert try_output.stop(_ti(2)) is None and try_output._current is not None
    try_output.start(_ti(2))  # the copy of try 1 (whose callback never came) is stopped
    assert try_output._current.key[-1] == 2
    assert try_output.stop(_ti(2)) == "" and try_output._current is None
