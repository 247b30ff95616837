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

from airflow_ordo_hooks.dag_file.attach import attach_hooks
from airflow_ordo_hooks.dag_file.job_events import JobEvents, job_events_of
from airflow_ordo_hooks.exceptions import CheekScheduleError

if TYPE_CHECKING:
    from airflow.sdk import DAG
    from pendulum import Timezone

    from airflow_ordo_hooks.dag_file.schema import CheekJob, CheekSchedule

RETRY_DELAY = timedelta(seconds=5)  # cheek's fixed wait between tries
LABELS = {"jobs": "job"}  # messages name a job as "job 'a'", not ".jobs.a"


def _load(path_or_text: str | Path) -> tuple[Any, str]:
    from airflow_ordo_hooks.dag_file import schema

    text = path_or_text
    where = "cheek schedule"
    if isinstance(path_or_text, Path) or (isinstance(path_or_text, str) and "\n" not in path_or_text and path_or_text.endswith((".yaml", ".yml"))):
        path = Path(path_or_text)
        where = f"cheek schedule {path.name}"
        text = schema.read_text(path, where, CheekScheduleError)
    return schema.load_yaml(str(text), where, CheekScheduleError, labels=LABELS), where


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

    schedule, where = _validated(path_or_text, known_dag_ids)
    _check_dag_ids(schedule, where, dag_id_prefix)
    timezone = pendulum.timezone(schedule.tz_location) if schedule.tz_location else None
    schedule_hooks = job_events_of(schedule)
    dags: dict[str, DAG] = {}
    for name, job in schedule.jobs.items():
        dag = _job_dag(dag_id_prefix + name, name, job, timezone, job.encoding or schedule.encoding or "utf-8")
        # the schedule's hooks first, then the job's own: both levels fire
        for job_events in (schedule_hooks, job_events_of(job)):
            attach_hooks(dag, _prefixed(job_events, set(schedule.jobs), dag_id_prefix) if dag_id_prefix else job_events)
        dags[name] = dag
    return dags


def _validated(path_or_text: str | Path, known_dag_ids: Iterable[str]) -> tuple[CheekSchedule, str]:
    """The schedule, read and validated, and how messages name it; or :class:`CheekScheduleError`."""
    from airflow_ordo_hooks.dag_file import schema  # pydantic: paid only by a DAG file that loads a schedule

    spec, where = _load(path_or_text)
    schedule = schema.validate(
        schema.CheekSchedule,
        spec,
        where=where,
        error=CheekScheduleError,
        context={"known_dag_ids": set(known_dag_ids)},
        labels=LABELS,
    )
    return schedule, where


def _check_dag_ids(schedule: CheekSchedule, where: str, dag_id_prefix: str) -> None:
    """Refuse a job whose DAG id, the prefix before its name, is longer than Airflow allows."""
    from airflow_ordo_hooks.dag_file import schema

    for name in schedule.jobs:
        if len(dag_id_prefix + name) > schema.MAX_ID:
            raise CheekScheduleError(
                f"{where}: job {schema.echo(name)}: with dag_id_prefix {schema.echo(dag_id_prefix)} its DAG id has "
                f"{len(dag_id_prefix + name)} characters; at most {schema.MAX_ID} (Airflow's limit)"
            )


def _job_dag(dag_id: str, name: str, job: CheekJob, timezone: Timezone | None, encoding: str) -> DAG:
    """One job's DAG: a single BashOperator task named after the job, run as cheek runs it."""
    from airflow.providers.standard.operators.bash import BashOperator
    from airflow.sdk import DAG

    with DAG(
        dag_id,
        schedule=_timetable(job.cron, timezone),
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
    return dag


def _timetable(cron: str | None, timezone: Timezone | None) -> Any:
    """A job's schedule: its cron as it is, or a cron timetable in the schedule's ``tz_location``."""
    if cron is None or timezone is None:
        return cron
    from airflow.sdk import CronTriggerTimetable

    return CronTriggerTimetable(cron, timezone=timezone)


def _prefixed(job_events: JobEvents, jobs: set[str], prefix: str) -> JobEvents:
    """The hooks with each ``trigger_job`` target that is a job of the schedule given the DAG id prefix."""
    return JobEvents(tuple(
        a._replace(target=prefix + a.target) if a.action == "trigger_job" and a.target in jobs else a
        for a in job_events.actions
    ))
