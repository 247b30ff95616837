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

import shlex
from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_ordo_hooks._attach import attach_hooks
from airflow_ordo_hooks._hooks_config import Hooks, hooks_of
from airflow_ordo_hooks.exceptions import CheekScheduleError

if TYPE_CHECKING:
    from airflow.sdk import DAG

RETRY_DELAY = timedelta(seconds=5)  # cheek's fixed wait between tries
LABELS = {"jobs": "job"}  # messages name a job as "job 'a'", not ".jobs.a"


def _load(path_or_text: str | Path) -> tuple[Any, str]:
    from airflow_ordo_hooks import _schema

    text = path_or_text
    where = "cheek schedule"
    if isinstance(path_or_text, Path) or (isinstance(path_or_text, str) and "\n" not in path_or_text and path_or_text.endswith((".yaml", ".yml"))):
        path = Path(path_or_text)
        where = f"cheek schedule {path.name}"
        text = _schema.read_text(path, where, CheekScheduleError)
    return _schema.load_yaml(str(text), where, CheekScheduleError, labels=LABELS), where


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
    import pendulum
    from airflow.providers.standard.operators.bash import BashOperator
    from airflow.sdk import DAG

    from airflow_ordo_hooks import _schema  # pydantic: paid only by a DAG file that loads a schedule

    spec, where = _load(path_or_text)
    schedule = _schema.validate(
        _schema.CheekSchedule,
        spec,
        where=where,
        error=CheekScheduleError,
        context={"known_dag_ids": set(known_dag_ids)},
        labels=LABELS,
    )
    for name in schedule.jobs:
        if len(dag_id_prefix + name) > _schema.MAX_ID:
            raise CheekScheduleError(
                f"{where}: job {_schema.echo(name)}: with dag_id_prefix {_schema.echo(dag_id_prefix)} its DAG id has "
                f"{len(dag_id_prefix + name)} characters; at most {_schema.MAX_ID} (Airflow's limit)"
            )
    timezone = pendulum.timezone(schedule.tz_location) if schedule.tz_location else None
    schedule_hooks = hooks_of(schedule)
    dags: dict[str, DAG] = {}
    for name, job in schedule.jobs.items():
        job_hooks = hooks_of(job)
        encoding = job.encoding or schedule.encoding or "utf-8"
        if dag_id_prefix:
            job_hooks, schedule_hooks_here = (_prefixed(h, set(schedule.jobs), dag_id_prefix) for h in (job_hooks, schedule_hooks))
        else:
            schedule_hooks_here = schedule_hooks

        timetable: Any = job.cron
        if job.cron is not None and timezone is not None:
            from airflow.sdk import CronTriggerTimetable

            timetable = CronTriggerTimetable(job.cron, timezone=timezone)
        with DAG(
            dag_id_prefix + name,
            schedule=timetable,
            start_date=datetime(2026, 1, 1, tzinfo=timezone) if timezone else datetime(2026, 1, 1),
            catchup=False,
            max_active_runs=1 if job.disable_concurrent_execution else 16,
            tags=["cheek"],
        ) as dag:
            BashOperator(
                task_id=name,
                bash_command=shlex.join(job.command),
                env={k: str(v) for k, v in (job.env or {}).items()} or None,
                append_env=True,
                cwd=job.working_directory,
                output_encoding=encoding,
                retries=job.retries,
                retry_delay=RETRY_DELAY,
            )
        attach_hooks(dag, schedule_hooks_here)
        attach_hooks(dag, job_hooks)
        dags[name] = dag
    return dags


def _prefixed(hooks: Hooks, jobs: set[str], prefix: str) -> Hooks:
    """The hooks with each ``trigger_job`` target that is a job of the schedule given the DAG id prefix."""
    return Hooks(tuple(
        a._replace(target=prefix + a.target) if a.action == "trigger_job" and a.target in jobs else a
        for a in hooks.actions
    ))
