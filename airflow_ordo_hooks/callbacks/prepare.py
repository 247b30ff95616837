"""What a hooked try does while it runs so that its events, when they fire, pay only for sending.

A task process imports the package's event machinery, looks the ledger's connection up and gets a
token: done when the try ends, that is time its slot holds after its state is reported. So a
hooked task's first execute callback (:class:`PrepareEvents`) does it in a thread while the try
runs, and the DAG file's parse at a task process's start (:func:`import_early_in_task_process`)
begins the imports even earlier. Neither runs in the DAG processor, which parses constantly.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_ordo_hooks.dag_file.job_events import JobEvents

log = logging.getLogger(__name__)


WHEN_FIRED = (
    "airflow_ordo_hooks.callbacks.ledger_client",
    "airflow_ordo_hooks.callbacks.outbox",
    "airflow_ordo_hooks._metrics",
    "airflow_ordo_hooks.callbacks.payloads",
    "airflow_ordo_hooks._event_id",
    "airflow_ordo_hooks.callbacks.trigger",
    "airflow_ordo_hooks.callbacks.try_output",
    "airflow_ordo_hooks.hooks.webhook",
    "airflow_ordo_hooks.hooks.airflow_api",
)
"""What a task's event callbacks import when they fire: imported beforehand, as the task process starts (:func:`import_early_in_task_process`) or while the try runs (:class:`PrepareEvents`)."""


_REQUESTS_IMPORTS_WHEN_SENDING = ("netrc",)
"""What ``requests`` imports at a session's first request (``trust_env``'s netrc lookup): imported with :data:`WHEN_FIRED`."""

_TASK_RUNNER_FILE = os.path.join("execution_time", "task_runner.py")
_TASK_RUNNER_PARSE = "parse"
"""Airflow's task runner's parse of the DAG file, at the start of a task process: the function, in :data:`_TASK_RUNNER_FILE`."""

_imports_started: int | None = None
"""The process (pid) in which :func:`import_early_in_task_process` has started its thread."""


def import_early_in_task_process() -> None:
    """
    Where the DAG file is being parsed by a task process's start (not by the DAG processor, nor
    under ``dag.test()``), start importing what the try's events will need, once a process: it
    then overlaps the rest of the process's start, not the try's end, where a short try would
    wait on it for the interpreter. The DAG processor parses constantly, and is not slowed.
    """
    global _imports_started
    if _imports_started == os.getpid():
        return
    _imports_started = os.getpid()
    frame = sys._getframe(1)
    while frame is not None and not (frame.f_code.co_name == _TASK_RUNNER_PARSE and frame.f_code.co_filename.endswith(_TASK_RUNNER_FILE)):
        frame = frame.f_back
    if frame is not None:
        import threading

        threading.Thread(target=_import_quietly, name="ordo-hooks-import", daemon=True).start()


def _import_when_fired() -> None:
    import importlib

    for name in (*WHEN_FIRED, *_REQUESTS_IMPORTS_WHEN_SENDING):
        importlib.import_module(name)


def _import_quietly() -> None:
    try:
        _import_when_fired()
    except Exception:  # the callbacks then import for themselves
        log.debug("airflow-ordo-hooks: could not import what this try's events need", exc_info=True)


class PrepareEvents:
    """
    A hooked task's first execute callback: while the try runs, a thread imports what its event
    callbacks will need (:data:`WHEN_FIRED`; in a task process, already begun while the DAG file
    was parsed: :func:`import_early_in_task_process`) and, where the try runs under a supervisor and still
    runs a second in (``ledger_client.PREPARE_AFTER``), looks the ledger's connection up and, for a task
    with ``on_success`` webhooks (the outcome most tries have), makes the ledger's client (a token
    from the API server), so that when the try ends its webhook leaves at once and its delivery is
    recorded with one request.
    Importing twice is safe: a callback that fires first waits for the thread's import of the same
    module.

    :param job_events: the task's hooks.
    """

    def __init__(self, job_events: JobEvents) -> None:
        self.job_events = job_events

    def __call__(self, context: Mapping[str, Any]) -> None:
        import threading

        from airflow_ordo_hooks.callbacks import ledger_client

        try:
            make_client = None
            supervised = _supervised()
            if supervised:
                success_sends = any(a.action != "trigger_job" for a in self.job_events.for_event("on_success"))
                make_client = ledger_client.prepare_client(client=success_sends)
            threading.Thread(target=_prepare, args=(supervised, make_client), name="ordo-hooks-prepare", daemon=True).start()
        except Exception:  # the callbacks then import, and make the ledger's client, for themselves
            log.debug("airflow-ordo-hooks: could not prepare this try's events", exc_info=True)
            ledger_client.forget_prepared()

    def __repr__(self) -> str:
        return f"PrepareEvents({len(self.job_events.actions)} actions)"


def _supervised() -> bool:
    """Whether the try runs in a task process of its own, under Airflow's supervisor (not ``dag.test()``): its stdout is a socket to it."""
    from airflow_ordo_hooks.callbacks.task_log import _socket_fd

    return _socket_fd(sys.stdout) is not None


PREPARING_SWITCH_INTERVAL = 0.0005
"""
Seconds the preparing thread holds the interpreter at a time (Python's default is 0.005): a short
try ends while it still imports, and the try's own thread, reporting its state and running its
callbacks, then waits for the interpreter a tenth as long.
"""


def _prepare(supervised: bool, make_client: Callable[[], None] | None) -> None:
    interval = sys.getswitchinterval()
    sys.setswitchinterval(min(interval, PREPARING_SWITCH_INTERVAL))
    try:
        _import_when_fired()
        if supervised:
            from airflow_ordo_hooks.callbacks import task_log

            task_log.log_file_template()  # compiled once a process
    except Exception:
        log.debug("airflow-ordo-hooks: could not prepare this try's events", exc_info=True)
    finally:
        if sys.getswitchinterval() == min(interval, PREPARING_SWITCH_INTERVAL):  # unless someone else set it meanwhile
            sys.setswitchinterval(interval)
    if make_client is not None:  # the connection, then a token, if the try still runs a second in; never raises
        make_client()
