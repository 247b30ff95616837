"""cheek's schedule as pydantic models: ``{jobs: {name: job}, on_*, tz_location, encoding}``.

Read by :mod:`airflow_ordo_hooks.dag_file.cheek_schedule`, which builds a DAG of each job. A job's and the
schedule's hooks are :class:`~airflow_ordo_hooks.dag_file.schema_job_events.EventActions`, their targets with
``${NAME}`` expanded from the environment first.
"""

from __future__ import annotations

import codecs
import os
import re
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, PlainValidator, ValidationInfo, model_validator

from airflow_ordo_hooks._events import EVENTS
from airflow_ordo_hooks.dag_file.schema_base import (
    ID_PATTERN,
    MAX_ITEMS,
    ConfigModel,
    at_most,
    cut,
    echo,
    expect,
    id_length,
    refusal,
    reword,
)
from airflow_ordo_hooks.dag_file.schema_job_events import EventActions

CRON_SHORTCUTS = {
    "@yearly": "@yearly", "@annually": "@yearly", "@monthly": "@monthly", "@weekly": "@weekly",
    "@daily": "@daily", "@midnight": "@daily", "@hourly": "@hourly",
    "@5minutes": "*/5 * * * *", "@10minutes": "*/10 * * * *", "@15minutes": "*/15 * * * *", "@30minutes": "*/30 * * * *",
}
"""cheek's (gronx's) cron shortcuts that Airflow can run, as Airflow writes them; others (``@always``) it cannot."""
MAX_JOBS = 1_000
"""The most jobs of a cheek schedule (each becomes a DAG)."""
MAX_ENV = 1_000
"""The most variables of a job's ``env``."""
MAX_RETRIES = 100
"""The most retries of a cheek job: Airflow 3.3 sets no bound; 100 tries 5 s apart is over 8 minutes."""

_VARIABLE = re.compile(r"\$\{([^}]*)\}")


def _expand(config: Any) -> Any:
    """``${NAME}`` in hook targets, from the environment of the process that parses the DAG file; an unset one is refused."""
    if not isinstance(config, Mapping):
        return config
    expanded: dict[Any, Any] = {}
    for action, targets in config.items():
        if not isinstance(targets, list) or len(targets) > MAX_ITEMS:
            expanded[action] = targets  # refused as it is
            continue
        expanded[action] = []
        for index, target in enumerate(targets):
            if isinstance(target, str):
                for variable in _VARIABLE.finditer(target):
                    if variable.group(1) not in os.environ:
                        raise refusal(f"environment variable {cut(variable.group(1))} is not set", got=target, at=(action, index))
                target = os.path.expandvars(target)
            expanded[action].append(target)
    return expanded


ScheduleEventActions = Annotated[EventActions | None, BeforeValidator(_expand)]


def _command(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        words = value.split()  # cheek splits on white space (Go's strings.Fields), it runs no shell
    elif isinstance(value, list) and all(isinstance(w, str) for w in value):
        words = value
    else:
        raise refusal("expected a string or a list of strings", got=value)
    if not words:
        raise refusal("expected a command", got=value)
    return tuple(words)


def _cron(value: Any) -> str | None:
    if value is None or value == "":
        return None  # cheek: a job without cron only runs when triggered
    if not isinstance(value, str):
        raise refusal("expected a cron string", got=value)
    text = value.strip()
    if text.startswith("@"):
        if text.lower() not in CRON_SHORTCUTS:
            raise refusal(f"{echo(value)} has no Airflow equivalent; expected a 5-field cron or one of {', '.join(CRON_SHORTCUTS)}")
        return CRON_SHORTCUTS[text.lower()]
    from croniter import croniter

    if len(text.split()) != 5 or not croniter.is_valid(text):
        raise refusal(f"{echo(value)} is not a valid 5-field cron expression")
    return text


def _encoding(value: Any) -> str | None:
    if value is None or value == "":
        return None
    try:
        codecs.lookup(value)
    except (LookupError, TypeError):
        raise refusal(f"unknown encoding {echo(value)}") from None
    return value


def _time_zone(value: Any) -> str | None:
    if value in (None, "", "Local"):
        return None  # cheek's default: the time zone of the machine, as Airflow's default is
    import pendulum

    try:
        pendulum.timezone(str(value))
    except Exception:  # pendulum raises several kinds for a name it does not know
        raise refusal(f"unknown time zone {echo(value)}") from None
    return str(value)


JobName = Annotated[
    str,
    Field(strict=True, pattern=ID_PATTERN),
    reword("a job name must be letters, digits, _ - . (it becomes a DAG id)", got=False),
    AfterValidator(id_length),
]


def _retries(value: int) -> int:
    if value > MAX_RETRIES:
        raise refusal(f"at most {MAX_RETRIES} (tries 5 s apart: a longer outage is a job for the receiver)", got=value)
    return value


class CheekJob(ConfigModel):
    """One job of a cheek schedule: a command, when to run it, and its hooks (``${NAME}`` in targets expanded)."""

    expected = "a mapping with at least 'command'"
    required = {"command": "missing; every cheek job runs a command"}

    command: Annotated[tuple[str, ...], PlainValidator(_command)]
    """The command's words."""
    cron: Annotated[str | None, PlainValidator(_cron)] = None
    """The Airflow schedule: a 5-field cron or one of Airflow's ``@`` shortcuts."""
    env: Annotated[
        dict[str, str | int | float | bool], expect("a mapping", items="names mapped to plain values"), at_most(MAX_ENV, "variables")
    ] | None = None
    working_directory: Annotated[str, Field(min_length=1), expect("a path")] | None = None
    retries: Annotated[int, Field(strict=True, ge=0), expect("a whole number 0 or more"), AfterValidator(_retries)] = 0
    disable_concurrent_execution: Annotated[bool, Field(strict=True), expect("true or false")] = False
    encoding: Annotated[str | None, PlainValidator(_encoding)] = None
    on_success: ScheduleEventActions = None
    on_error: ScheduleEventActions = None
    on_retries_exhausted: ScheduleEventActions = None


class CheekSchedule(ConfigModel):
    """
    A cheek schedule: its jobs, the hooks of every job, the time zone of every cron, the default encoding.

    Validation context: ``known_dag_ids``, DAGs defined elsewhere that ``trigger_job`` may name
    besides the schedule's jobs.
    """

    expected = "a mapping with 'jobs'"
    required = {"jobs": "expected a mapping of job names to jobs, got None"}  # as if written ``jobs:`` and nothing

    jobs: Annotated[
        dict[JobName, CheekJob], Field(min_length=1), expect("a mapping of job names to jobs"), at_most(MAX_JOBS, "jobs")
    ]
    tz_location: Annotated[str | None, PlainValidator(_time_zone)] = None
    encoding: Annotated[str | None, PlainValidator(_encoding)] = None
    on_success: ScheduleEventActions = None
    on_error: ScheduleEventActions = None
    on_retries_exhausted: ScheduleEventActions = None

    @model_validator(mode="after")
    def _triggered_jobs_exist(self, info: ValidationInfo) -> CheekSchedule:
        targets = set(self.jobs) | set((info.context or {}).get("known_dag_ids", ()))
        levels: list[tuple[tuple[str, ...], ConfigModel]] = [((), self)]
        levels += [(("jobs", name), job) for name, job in self.jobs.items()]
        for at, level in levels:
            for event in EVENTS:
                actions = getattr(level, event)
                for target in (actions and actions.trigger_job) or ():
                    if target not in targets:
                        jobs = ", ".join(sorted(self.jobs))
                        raise refusal(
                            f"no job {echo(target)} in the schedule (jobs: {cut(jobs)}); define it, or pass known_dag_ids",
                            at=(*at, event, "trigger_job"),
                        )
        return self
