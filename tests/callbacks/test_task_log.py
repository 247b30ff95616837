"""Reading a try's log file: the tail, formatted, whatever the file holds; never an error."""

from __future__ import annotations

import json

import pytest

from airflow_ordo_hooks.callbacks import log_records, task_log


@pytest.fixture
def log_at(tmp_path, monkeypatch):
    path = tmp_path / "attempt=1.log"
    monkeypatch.setattr(task_log, "log_file", lambda ti: path)
    return path


def _record(event: str) -> str:
    return json.dumps({"timestamp": "2026-11-23T04:00:00Z", "level": "error", "event": event})


def test_a_last_line_longer_than_what_is_read_still_gives_its_tail(log_at):
    log_at.write_text(_record("start") + "\n" + "x" * 50_000 + "THE END\n")
    text = task_log.read_try_log(object(), 1_000, catch_up=False)
    assert text.endswith("THE END") and len(text) >= 1_000


def test_the_first_partial_line_is_dropped_when_whole_lines_follow(log_at):
    log_at.write_text("\n".join(_record(f"line {i} " + "y" * 50) for i in range(500)) + "\n")
    lines = task_log.read_try_log(object(), 1_000, catch_up=False).splitlines()
    assert lines[-1].endswith("line 499 " + "y" * 50)
    assert all(line.startswith("[2026-11-23T04:00:00Z] ERROR - line ") for line in lines)


def test_an_unreadable_log_gives_no_text_and_no_error(log_at):
    log_at.mkdir()  # a directory where the file should be
    assert task_log.read_try_log(object(), 1_000, catch_up=False) == ""


def test_how_the_supervisor_says_a_process_ended_is_kept():
    import json

    from airflow_ordo_hooks.callbacks.task_log import format_record
    from airflow_ordo_hooks.callbacks.payloads import kill_status

    line = json.dumps({
        "timestamp": "2026-11-23T07:00:00.000000Z", "level": "critical", "logger": "supervisor",
        "event": "Process terminated by signal. Likely out of memory error (OOM).", "signal": -9, "signal_name": "SIGKILL",
    })
    text = format_record(line)
    assert text.endswith("signal=-9 signal_name=SIGKILL") and kill_status(text) == -9


# A BashOperator's try that failed, as Airflow 3.3's supervisor wrote its log file on a real
# deployment (paths shortened): Airflow's own groups around the task, then our callback's lines.
_REAL_TRY = [
    {"timestamp": "2026-11-23T14:31:13.136332Z", "level": "info", "event": "::group::Pre Execute", "logger": "task"},
    {"timestamp": "2026-11-23T14:31:13.163704Z", "level": "info", "event": "DAG bundles loaded: dags-folder",
     "logger": "airflow.dag_processing.bundles.manager.DagBundlesManager"},
    {"timestamp": "2026-11-23T14:31:13.164977Z", "level": "info", "event": "Filling up the DagBag from /dags/example_cheek_yaml.py",
     "logger": "airflow.dag_processing.dagbag.BundleDagBag"},
    {"timestamp": "2026-11-23T14:31:13.497947Z", "level": "info", "event": "Worker startup parse complete", "logger": "task"},
    {"timestamp": "2026-11-23T14:31:13.697628Z", "level": "info", "event": "::endgroup::", "logger": "task"},
    {"timestamp": "2026-11-23T14:31:13.698546Z", "level": "info", "event": "Tmp dir root location: /tmp",
     "logger": "airflow.task.operators.airflow.providers.standard.operators.bash.BashOperator"},
    {"timestamp": "2026-11-23T14:31:13.699048Z", "level": "info", "event": "Running command: ['/usr/bin/bash', '-c', 'this fails']",
     "logger": "airflow.task.operators.airflow.providers.standard.operators.bash.BashOperator"},
    {"timestamp": "2026-11-23T14:31:13.716876Z", "level": "info", "event": "/usr/bin/bash: line 1: this: command not found",
     "logger": "airflow.task.operators.airflow.providers.standard.operators.bash.BashOperator"},
    {"timestamp": "2026-11-23T14:31:13.717124Z", "level": "info", "event": "Command exited with return code 127",
     "logger": "airflow.task.operators.airflow.providers.standard.operators.bash.BashOperator"},
    {"timestamp": "2026-11-23T14:31:13.721298Z", "level": "error", "event": "Task failed with exception", "logger": "task",
     "error_detail": [{"exc_type": "AirflowException", "is_cause": False, "exc_notes": [],
                       "exc_value": "Bash command failed. The command returned a non-zero exit code 127.",
                       "frames": [{"filename": "/venv/airflow/providers/standard/operators/bash.py", "lineno": 225, "name": "execute"}]}]},
    {"timestamp": "2026-11-23T14:31:13.722092Z", "level": "info", "event": "::group::Post Execute", "logger": "task"},
    # what the task printed comes over a socket of its own: it may be written inside Post Execute
    {"timestamp": "2026-11-23T14:31:13.730000Z", "level": "info", "event": "printed by the task", "logger": "task.stdout"},
    {"timestamp": "2026-11-23T14:31:14.100000Z", "level": "warning", "event": "Webhook http://127.0.0.1:46877/…#9d5ce6: not delivered",
     "logger": "airflow_ordo_hooks.hooks.webhook"},
    {"timestamp": "2026-11-23T14:31:14.200000Z", "level": "info", "event": "::endgroup::", "logger": "task"},
]


@pytest.mark.parametrize("source", ["file", "rest"])
def test_airflows_own_lines_are_left_out_and_the_tasks_output_and_error_kept(log_at, source):
    if source == "file":
        log_at.write_text("".join(json.dumps(r) + "\n" for r in _REAL_TRY))
        text = task_log.read_try_log(object(), 10_000, catch_up=False)
    else:
        text = task_log.rest_log_text(_REAL_TRY)
    assert text.splitlines() == [
        "[2026-11-23T14:31:13.699048Z] INFO - Running command: ['/usr/bin/bash', '-c', 'this fails']",
        "[2026-11-23T14:31:13.716876Z] INFO - /usr/bin/bash: line 1: this: command not found",
        "[2026-11-23T14:31:13.717124Z] INFO - Command exited with return code 127",
        "[2026-11-23T14:31:13.721298Z] ERROR - Task failed with exception",
        "Traceback (most recent call last):",
        '  File "/venv/airflow/providers/standard/operators/bash.py", line 225, in execute',
        "AirflowException: Bash command failed. The command returned a non-zero exit code 127.",
        "[2026-11-23T14:31:13.730000Z] INFO - printed by the task",
    ]


def test_a_tail_read_from_inside_a_group_drops_what_came_before_its_end_and_a_kill_is_kept_inside_one():
    tail = _REAL_TRY[2:6]  # starts inside Pre Execute
    assert task_log.rest_log_text(tail) == ""
    killed_while_parsing = [*_REAL_TRY[:3], {
        "timestamp": "2026-11-23T14:31:15Z", "level": "critical", "event": "Process terminated by signal.", "signal": -9,
    }]
    assert task_log.rest_log_text(killed_while_parsing) == "[2026-11-23T14:31:15Z] CRITICAL - Process terminated by signal. signal=-9"


def test_a_failure_the_log_already_shows_is_not_added_again(log_at):
    # the log names the exception's class without its module; the exception in the callback's
    # context is airflow.sdk.exceptions.AirflowException: the payload must carry it once
    from types import SimpleNamespace

    from airflow.sdk.exceptions import AirflowException

    from airflow_ordo_hooks.callbacks.job_event import event_log

    log_at.write_text("".join(json.dumps(r) + "\n" for r in _REAL_TRY))
    try:
        raise AirflowException("Bash command failed. The command returned a non-zero exit code 127.")
    except AirflowException as exc:
        context = {"ti": SimpleNamespace(), "exception": exc}
    text = event_log(context, 10_000)
    assert text.count("Bash command failed") == 1 and text.endswith("INFO - printed by the task")
    # one the log does not show is added, with its traceback
    context["exception"] = ValueError("something else")
    assert event_log(context, 10_000).endswith("ValueError: something else")


def test_the_error_of_a_try_is_its_exception_else_how_its_process_ended():
    assert task_log.error_of(_REAL_TRY) == "AirflowException: Bash command failed. The command returned a non-zero exit code 127."
    killed = [*_REAL_TRY[:5], {"timestamp": "2026-11-23T14:31:15Z", "level": "critical",
                                "event": "Process terminated by signal.", "signal": -9}]
    assert task_log.error_of(json.dumps(r) for r in killed) == "Process terminated by signal. signal=-9"
    assert task_log.error_of(_REAL_TRY[:5]) is None


class _Supervisor:
    """Airflow's supervisor in small: one loop serving the task's stdout, stderr and log sockets, writing each line to the log file.

    Of the sockets ready at once, it serves the log socket first (nothing in Airflow's says in which order
    they are served); ``slow`` seconds pass between reading a stdout chunk and writing it, as when the
    supervisor is preempted.
    """

    def __init__(self, path, slow: float = 0.0) -> None:
        import selectors
        import socket
        import threading

        self.path, self.slow = path, slow
        self.pairs = {name: socket.socketpair() for name in ("stdout", "stderr", "logs")}
        self.selector = selectors.DefaultSelector()
        for name, (_, supervisor_end) in self.pairs.items():
            self.selector.register(supervisor_end, selectors.EVENT_READ, name)
        self.streams = [self.pairs[n][0].makefile("w", encoding="utf-8") for n in ("stdout", "stderr")]
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        import time

        while not self.stopped.is_set():
            ready = self.selector.select(timeout=0.05)
            for key, _ in sorted(ready, key=lambda event: event[0].data != "logs"):
                data = key.fileobj.recv(65536)
                if key.data != "logs":
                    time.sleep(self.slow)
                with self.path.open("ab") as f:
                    f.write(data)

    def log_handler(self):
        import logging

        logs = self.pairs["logs"][0]

        class ToSupervisor(logging.Handler):
            def emit(self, record):
                logs.sendall(record.getMessage().encode() + b"\n")

        return ToSupervisor()

    def close(self) -> None:
        self.stopped.set()
        self.thread.join()
        for a, b in self.pairs.values():
            a.close()
            b.close()


@pytest.fixture
def supervisor(tmp_path, monkeypatch):
    import logging

    sup = _Supervisor(tmp_path / "attempt=1.log")
    sup.path.write_bytes(b"")
    handler = sup.log_handler()
    logger = logging.getLogger(task_log.__name__)
    monkeypatch.setattr(logger, "level", logging.INFO)
    logger.addHandler(handler)
    yield sup
    logger.removeHandler(handler)
    sup.close()


@pytest.mark.parametrize("slow", [0.0, 0.3])
def test_catching_up_waits_for_what_stdout_and_stderr_sent_before_the_marker(supervisor, monkeypatch, slow):
    """The last lines printed before the callback are in the file when it is read, however slowly the supervisor writes them."""
    supervisor.slow = slow
    monkeypatch.setattr(task_log, "_SETTLED_POLLS", 10**6)  # the file settling is not what ends the wait
    out, err = supervisor.streams
    out.write("printed last\n")
    err.write("warned last\n")

    task_log._catch_up(supervisor.path, timeout=10, streams=supervisor.streams)

    text = supervisor.path.read_text()
    assert "printed last" in text and "warned last" in text
    assert text.rstrip().splitlines()[-1].startswith(log_records.MARKER), "the marker comes after the output it waited for"


def test_catching_up_ends_when_the_marker_is_written_not_after_settling_polls(supervisor, monkeypatch):
    import time

    monkeypatch.setattr(task_log, "_SETTLED_POLLS", 10**6)
    start = time.monotonic()
    task_log._catch_up(supervisor.path, timeout=10, streams=supervisor.streams)
    assert time.monotonic() - start < 5, "waited out the timeout instead of returning on the marker"


def test_only_a_socket_says_how_much_its_reader_has_not_read():
    """stdout as a pipe or a StringIO (not the supervisor's socket): the wait falls back to the file settling."""
    import io
    import os
    import socket

    read_end, write_end = os.pipe()
    a, b = socket.socketpair()
    try:
        with os.fdopen(write_end, "w") as pipe:
            assert task_log._socket_fd(pipe) is None and task_log._unread(write_end) is None
        assert task_log._socket_fd(io.StringIO()) is None
        assert task_log._socket_fd(a) == a.fileno()
        a.sendall(b"x" * 100)
        assert task_log._unread(a.fileno()) > 0
        b.recv(1000)
        assert task_log._unread(a.fileno()) == 0
    finally:
        os.close(read_end)
        a.close()
        b.close()
