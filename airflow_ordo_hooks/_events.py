"""cheek's events, and which of Airflow's callbacks fires which: the vocabulary every other module uses.

==================================  ===============================================================
Airflow callback                    cheek events, in this order
==================================  ===============================================================
``on_success_callback``             ``on_success``
``on_retry_callback``               ``on_error`` (a failed try that will be retried)
``on_failure_callback``             ``on_error``, then ``on_retries_exhausted`` if the task has retries
a DAG's ``on_success_callback``     ``on_success`` of the run
a DAG's ``on_failure_callback``     ``on_error`` of the run
==================================  ===============================================================

"Final" is decided by which callback Airflow fired, not by counting tries, so a task that fails
for good before using its retries (``AirflowFailException``) also fires ``on_retries_exhausted``.
A task that is skipped or ``upstream_failed`` never ran a try: Airflow calls no state-change
callback for it, and cheek has no event for it either.
"""

from __future__ import annotations

EVENTS = ("on_success", "on_error", "on_retries_exhausted")
"""cheek's job events."""

RUN_EVENTS = ("on_success", "on_error")
"""The events of a whole DAG run (a run is not retried)."""


def task_events(change: str, retries: int) -> list[str]:
    """The cheek events a task's state change (``success``, ``retry``, ``failure``) fires, in order."""
    if change == "success":
        return ["on_success"]
    if change == "failure" and retries > 0:
        return ["on_error", "on_retries_exhausted"]
    return ["on_error"]


def run_events(change: str) -> list[str]:
    """The cheek event a DAG run's state change (``success``, ``failure``) fires."""
    return ["on_success" if change == "success" else "on_error"]
