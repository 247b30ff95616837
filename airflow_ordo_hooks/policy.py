"""Deployment-wide hooks: cheek's schedule level for every DAG of an Airflow deployment.

Name a YAML file of cheek hooks in Airflow's configuration::

    [ordo_hooks]
    hooks_file = /opt/airflow/ordo-hooks.yaml      # or AIRFLOW__ORDO_HOOKS__HOOKS_FILE

and every task of every DAG gets those hooks, combined with its DAG's and its own, without
editing any DAG file. The package registers this module as an Airflow cluster policy (entry
point ``airflow.policy``), which Airflow applies wherever it parses DAG files: the DAG processor
and the workers. A file that cannot be used, for any reason (malformed, too large, not UTF-8, a
directory, a YAML bomb), is logged as an error (once per version of the file) and DAG files are
parsed as if it were not there. ``trigger_job`` is refused there: it would add tasks to
every DAG.
"""

from __future__ import annotations

import functools
import logging
import os
from typing import Any

from airflow.policies import hookimpl

from airflow_ordo_hooks import _settings
from airflow_ordo_hooks.dag_file.job_events import JobEvents, parse_hooks
from airflow_ordo_hooks.exceptions import HooksConfigError

log = logging.getLogger(__name__)


_MAX_LOGGED = 2_000  # characters of an unexpected error's message that the log repeats


@functools.lru_cache(maxsize=4)
def _parse(path: str, version: int) -> JobEvents | None:
    where = f"[ordo_hooks] hooks_file {path}"
    try:
        from airflow_ordo_hooks.dag_file import schema

        job_events = parse_hooks(schema.read_text(path, where, HooksConfigError) or "{}", where=where)
        if any(a.action == "trigger_job" for a in job_events.actions):
            raise HooksConfigError(f"{where}: trigger_job is not allowed in deployment-wide hooks (it would add tasks to every DAG)")
    except HooksConfigError as exc:
        log.error("airflow-ordo-hooks: deployment-wide hooks not applied: %s", exc)
        return None
    except Exception as exc:  # noqa: BLE001 - one operator's file must never stop every DAG from parsing
        message = f"{type(exc).__name__}: {exc}"[:_MAX_LOGGED]
        log.error("airflow-ordo-hooks: deployment-wide hooks not applied: %s: %s", where, message)
        return None
    return job_events


def deployment_hooks() -> JobEvents | None:
    """The hooks of ``[ordo_hooks] hooks_file``, read again when the file changes; ``None`` when there are none."""
    path = _settings.get("hooks_file")
    if not path:
        return None
    try:
        version = os.stat(path).st_mtime_ns
    except (OSError, ValueError):  # ValueError: a NUL in the path
        version = -1  # _parse reports the missing file, once
    return _parse(path, version)


@hookimpl
def dag_policy(dag: Any) -> None:
    job_events = deployment_hooks()
    if job_events:
        # Airflow loads this policy in every process that parses DAGs: the operators attach_hooks
        # brings are imported only where a hooks file is in force
        from airflow_ordo_hooks.dag_file.attach import attach_hooks

        attach_hooks(dag, job_events)
