"""cheek's schedule YAML, as cheek users write it, turned into Airflow DAGs: one DAG per cheek job.

A DAG file of two lines, next to ``schedule.yaml``::

    from airflow_ordo_hooks import load_cheek_schedule
    load_cheek_schedule(__file__.replace(".py", ".yaml"))

=============================  ==============================================================
cheek                          Airflow
=============================  ==============================================================
job ``<name>``                 DAG ``<name>`` with one BashOperator task ``<name>``
``command``                    the task's command: a string is split on white space as cheek
                               splits it, a list is taken as it is; each word is shell-quoted
``cron``                       the DAG's schedule (cheek's ``@`` shortcuts where Airflow has one)
``tz_location``                the time zone of every job's cron
``env`` / ``working_directory``  the command's extra environment / working directory
``retries``                    the task's retries, 5 s apart as in cheek
``disable_concurrent_execution``  ``max_active_runs=1``
``encoding``                   the task's ``output_encoding``
``on_*`` (job and schedule)    ``attach_hooks`` on the job's DAG: both levels, combined
=============================  ==============================================================
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_ordo_hooks.exceptions import CheekScheduleError

if TYPE_CHECKING:
    from airflow.sdk import DAG

_SCHEDULE_KEYS = ("jobs", "on_success", "on_error", "on_retries_exhausted", "tz_location", "encoding")
_JOB_KEYS = (
    "command", "cron", "env", "working_directory", "retries", "disable_concurrent_execution", "encoding",
    "on_success", "on_error", "on_retries_exhausted",
)
_EVENTS = ("on_success", "on_error", "on_retries_exhausted")
_JOB_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
_SHORTCUTS = {
    "@yearly": "@yearly", "@annually": "@yearly", "@monthly": "@monthly", "@weekly": "@weekly",
    "@daily": "@daily", "@midnight": "@daily", "@hourly": "@hourly",
    "@5minutes": "*/5 * * * *", "@10minutes": "*/10 * * * *", "@15minutes": "*/15 * * * *", "@30minutes": "*/30 * * * *",
}
"""cheek's (gronx's) cron shortcuts that Airflow can run; others (``@always``, ``@everysecond``) it cannot."""
RETRY_DELAY = timedelta(seconds=5)  # cheek's fixed wait between tries


def _cron(value: Any, where: str) -> str | None:
    if value is None or value == "":
        return None  # cheek: a job without cron only runs when triggered
    if not isinstance(value, str):
        raise CheekScheduleError(f"{where}.cron: expected a cron string, got {value!r}")
    text = value.strip()
    if text.startswith("@"):
        if text.lower() not in _SHORTCUTS:
            raise CheekScheduleError(
                f"{where}.cron: {value!r} has no Airflow equivalent; expected a 5-field cron or one of {', '.join(_SHORTCUTS)}"
            )
        return _SHORTCUTS[text.lower()]
    from croniter import croniter

    if len(text.split()) != 5 or not croniter.is_valid(text):
        raise CheekScheduleError(f"{where}.cron: {value!r} is not a valid 5-field cron expression")
    return text


def _command(value: Any, where: str) -> str:
    if isinstance(value, str):
        words = value.split()  # cheek splits on white space (Go's strings.Fields), it runs no shell
    elif isinstance(value, list) and all(isinstance(w, str) for w in value):
        words = value
    else:
        raise CheekScheduleError(f"{where}.command: expected a string or a list of strings, got {value!r}")
    if not words:
        raise CheekScheduleError(f"{where}.command: expected a command, got {value!r}")
    return shlex.join(words)


def _mapping(value: Any, where: str, field: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise CheekScheduleError(f"{where}.{field}: expected a mapping, got {value!r}")
    return value


def _load(path_or_text: str | Path) -> Any:
    import yaml

    text = path_or_text
    where = "cheek schedule"
    if isinstance(path_or_text, Path) or (isinstance(path_or_text, str) and "\n" not in path_or_text and path_or_text.endswith((".yaml", ".yml"))):
        path = Path(path_or_text)
        where = f"cheek schedule {path.name}"
        try:
            text = path.read_text()
        except OSError as exc:
            raise CheekScheduleError(f"{where}: cannot read it: {exc}") from None
    try:
        return yaml.safe_load(text), where
    except yaml.YAMLError as exc:
        raise CheekScheduleError(f"{where}: not valid YAML: {exc}") from None


def _expand(config: Any) -> Any:
    """``${NAME}`` in hook targets, from the environment of the process that parses the DAG file."""
    if isinstance(config, str):
        return os.path.expandvars(config)
    if isinstance(config, list):
        return [_expand(v) for v in config]
    if isinstance(config, Mapping):
        return {k: _expand(v) for k, v in config.items()}
    return config


def load_cheek_schedule(
    path_or_text: str | Path, *, known_dag_ids: Iterable[str] = (), dag_id_prefix: str = ""
) -> dict[str, DAG]:
    """
    Build one DAG per job of a cheek schedule (see the module's table).

    Hook targets may name environment variables as ``${NAME}`` (an addition to cheek), so that
    one file serves several deployments.

    :param path_or_text: the schedule: a ``.yaml`` / ``.yml`` path, or YAML text.
    :param known_dag_ids: DAGs defined elsewhere that ``trigger_job`` may name; any other target
        must be a job of the schedule.
    :param dag_id_prefix: put before every job's name to make its DAG id (and before the jobs
        that ``trigger_job`` names), so that two schedules with the same job names can share a
        deployment.
    :return: ``{job name: DAG}``; the DAGs are registered with the DAG file that calls this.
    :raises CheekScheduleError: naming the job and the field, when the schedule is not valid.
    """
    from airflow.sdk import DAG
    from airflow.providers.standard.operators.bash import BashOperator

    from airflow_ordo_hooks._hooks_config import HooksConfigError, parse_hooks
    from airflow_ordo_hooks._attach import attach_hooks

    spec, where = _load(path_or_text)
    if not isinstance(spec, Mapping):
        raise CheekScheduleError(f"{where}: expected a mapping with 'jobs', got {spec!r}")
    unknown = [k for k in spec if k not in _SCHEDULE_KEYS]
    if unknown:
        raise CheekScheduleError(f"{where}: unknown field {unknown[0]!r}; expected {', '.join(_SCHEDULE_KEYS)}")
    jobs = spec.get("jobs")
    if not isinstance(jobs, Mapping) or not jobs:
        raise CheekScheduleError(f"{where}.jobs: expected a mapping of job names to jobs, got {jobs!r}")

    timezone = None
    if spec.get("tz_location") not in (None, "", "Local"):
        import pendulum

        try:
            timezone = pendulum.timezone(str(spec["tz_location"]))
        except Exception:
            raise CheekScheduleError(f"{where}.tz_location: unknown time zone {spec['tz_location']!r}") from None
    try:
        schedule_hooks = parse_hooks(_expand({e: spec[e] for e in _EVENTS if e in spec}), where=f"{where} (schedule level)")
    except HooksConfigError as exc:
        raise CheekScheduleError(str(exc)) from None

    targets = set(jobs) | set(known_dag_ids)
    dags: dict[str, DAG] = {}
    for name, job in jobs.items():
        job_where = f"{where}: job {name!r}"
        if not isinstance(name, str) or not _JOB_NAME.match(name):
            raise CheekScheduleError(f"{job_where}: a job name must be letters, digits, _ - . (it becomes a DAG id)")
        if not isinstance(job, Mapping):
            raise CheekScheduleError(f"{job_where}: expected a mapping with at least 'command', got {job!r}")
        unknown = [k for k in job if k not in _JOB_KEYS]
        if unknown:
            raise CheekScheduleError(f"{job_where}: unknown field {unknown[0]!r}; expected {', '.join(_JOB_KEYS)}")
        if "command" not in job:
            raise CheekScheduleError(f"{job_where}.command: missing; every cheek job runs a command")
        command = _command(job["command"], job_where)
        cron = _cron(job.get("cron"), job_where)
        retries = job.get("retries", 0)
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise CheekScheduleError(f"{job_where}.retries: expected a whole number 0 or more, got {retries!r}")
        env = _mapping(job.get("env"), job_where, "env")
        if not all(isinstance(k, str) and isinstance(v, (str, int, float, bool)) for k, v in env.items()):
            raise CheekScheduleError(f"{job_where}.env: expected names mapped to plain values, got {dict(env)!r}")
        cwd = job.get("working_directory")
        if cwd is not None and (not isinstance(cwd, str) or not cwd):
            raise CheekScheduleError(f"{job_where}.working_directory: expected a path, got {cwd!r}")
        exclusive = job.get("disable_concurrent_execution", False)
        if not isinstance(exclusive, bool):
            raise CheekScheduleError(f"{job_where}.disable_concurrent_execution: expected true or false, got {exclusive!r}")
        encoding = job.get("encoding", spec.get("encoding")) or "utf-8"
        try:
            "".encode(encoding)
        except (LookupError, TypeError):
            raise CheekScheduleError(f"{job_where}.encoding: unknown encoding {encoding!r}") from None
        try:
            job_hooks = parse_hooks(_expand({e: job[e] for e in _EVENTS if e in job}), where=f"{job_where}")
        except HooksConfigError as exc:
            raise CheekScheduleError(str(exc)) from None
        for action in (job_hooks | schedule_hooks).actions:
            if action.action == "trigger_job" and action.target not in targets:
                raise CheekScheduleError(
                    f"{job_where}.{action.event}.trigger_job: no job {action.target!r} in the schedule "
                    f"(jobs: {', '.join(sorted(map(str, jobs)))}); define it, or pass known_dag_ids"
                )
        if dag_id_prefix:
            job_hooks, schedule_hooks_here = (_prefixed(h, set(jobs), dag_id_prefix) for h in (job_hooks, schedule_hooks))
        else:
            schedule_hooks_here = schedule_hooks

        schedule: Any = cron
        if cron is not None and timezone is not None:
            from airflow.sdk import CronTriggerTimetable

            schedule = CronTriggerTimetable(cron, timezone=timezone)
        with DAG(
            dag_id_prefix + name,
            schedule=schedule,
            start_date=datetime(2026, 1, 1, tzinfo=timezone) if timezone else datetime(2026, 1, 1),
            catchup=False,
            max_active_runs=1 if exclusive else 16,
            tags=["cheek"],
        ) as dag:
            BashOperator(
                task_id=name,
                bash_command=command,
                env={k: str(v) for k, v in env.items()} or None,
                append_env=True,
                cwd=cwd,
                output_encoding=encoding,
                retries=retries,
                retry_delay=RETRY_DELAY,
            )
        attach_hooks(dag, schedule_hooks_here)
        attach_hooks(dag, job_hooks)
        dags[name] = dag
    return dags


def _prefixed(hooks: Any, jobs: set[str], prefix: str) -> Any:
    """The hooks with each ``trigger_job`` target that is a job of the schedule given the DAG id prefix."""
    from dataclasses import replace

    from airflow_ordo_hooks._hooks_config import Hooks

    return Hooks(tuple(
        replace(a, target=prefix + a.target) if a.action == "trigger_job" and a.target in jobs else a
        for a in hooks.actions
    ))
