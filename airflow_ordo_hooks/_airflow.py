"""What this package needs of Airflow that no public interface offers, kept in one place, each failing safe.

Every function here leans on something Airflow does not document as an interface; each has a test
in ``tests/test_airflow.py`` that fails the day Airflow changes it, and each, when what it leans
on is gone, does less rather than something wrong (the README's development section lists them).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

log = logging.getLogger(__name__)


def add_dag_callback(dag: Any, name: str, callback: Callable[..., Any]) -> None:
    """
    Append ``callback`` to the DAG's ``name`` callbacks (``on_success_callback`` / ``on_failure_callback``).

    A DAG records whether it has such callbacks (``has_on_<...>``) once, when it is created, and
    the scheduler only asks the DAG processor to run them when that flag is set; no public call
    adds a callback later, so the flag is set with it. Where a DAG has no such flag, Airflow
    derives it otherwise and nothing more is done.
    """
    current = getattr(dag, name)
    callbacks = [] if current is None else list(current) if isinstance(current, (list, tuple)) else [current]
    setattr(dag, name, [*callbacks, callback])
    flag = f"has_{name}"
    if hasattr(dag, flag):
        setattr(dag, flag, True)


def task_states(ti: Any, task_ids: Any, dag_id: str, run_id: str) -> list[tuple[str, int, str | None]]:
    """
    ``(task_id, map_index, state)`` of each task instance of a run, through the Task SDK (which
    tasks and the DAG processor may call), for the tasks named in ``task_ids``.

    The Task SDK keys a mapped instance ``<task_id>_<map_index>``; a key is matched against the
    DAG's task ids, longest first, so that task ids with underscores and digits are not misread.
    A key that matches none is left out, with a log line.

    :param ti: the callback's or task's ``context["ti"]``; ``None`` in a DAG callback without one.
    """
    if ti is not None and hasattr(ti, "get_task_states"):
        raw = ti.get_task_states(dag_id=dag_id, run_ids=[run_id])
    else:  # a DAG callback whose context has no task instance: the Task SDK's own class
        from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

        raw = RuntimeTaskInstance.get_task_states(dag_id=dag_id, run_ids=[run_id])
    states: Mapping[str, Any] = raw.get(run_id, {}) if isinstance(raw, Mapping) else {}
    known = sorted(task_ids, key=len, reverse=True)
    found = []
    for key, state in states.items():
        state = None if state is None else str(getattr(state, "value", state))
        if key in task_ids:
            found.append((key, -1, state))
            continue
        match = next((t for t in known if key.startswith(f"{t}_") and key[len(t) + 1 :].isdigit()), None)
        if match is None:
            log.warning("airflow-ordo-hooks: task state key %r names no task of DAG %r; left out", key, dag_id)
            continue
        found.append((match, int(key[len(match) + 1 :]), state))
    return found
