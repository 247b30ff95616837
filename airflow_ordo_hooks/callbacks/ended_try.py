"""A try that has ended, as whoever reads it afterwards sees it, and cheek's payload of its event.

A try's own callback builds its event's payload from the callback's context. Three others build
it later, from what they can read of the ended try, and all through :func:`payload`:

- the recovery of a killed try's events, from Airflow's REST API (:meth:`EndedTry.from_rest`);
- ``TriggerJobOperator``, from the REST API, or without it from the task's state and the log file
  on this machine;
- ``airflow ordo-hooks preview``, from the metadata database (:meth:`EndedTry.from_orm`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

NO_CALLBACKS = "{task_id} try {try_number} ended {state} without running its callbacks"
"""The log of a try whose log cannot be read, when its callbacks never ran (:meth:`EndedTry.logged`)."""


def parse_time(value: datetime | str | None) -> datetime | None:
    """A time as the REST API gives it (ISO 8601, ``Z`` for UTC), or as the ORM does; ``None`` if unknown."""
    if isinstance(value, datetime) or not value:
        return value or None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@dataclasses.dataclass(frozen=True)
class EndedTry:
    """
    What can be read of a try once it has ended; a field not read is ``None`` (the payload then
    derives or nulls what depends on it).

    :param state: ``success`` or ``failed``, as the event has it.
    :param log: the try's log, bounded and masked ("" when unknown).
    """

    task_id: str
    state: str
    try_number: int | None = None
    max_tries: int | None = None
    map_index: int = -1
    start_date: datetime | None = None
    end_date: datetime | None = None
    log: str = ""

    @classmethod
    def from_rest(cls, ti: Mapping[str, Any], *, state: str | None = None, log: str = "") -> EndedTry:
        """A task instance (or one of its tries) as Airflow's REST API v2 gives it; ``state`` overrides its own."""
        map_index = ti.get("map_index", -1)
        return cls(
            task_id=ti["task_id"], state=state or ti.get("state") or "failed", try_number=ti.get("try_number"),
            max_tries=ti.get("max_tries"), map_index=-1 if map_index is None else map_index,
            start_date=parse_time(ti.get("start_date")), end_date=parse_time(ti.get("end_date")), log=log,
        )

    @classmethod
    def from_orm(cls, ti: Any, *, state: str, log: str = "") -> EndedTry:
        """A task instance of the metadata database (Airflow's ``TaskInstance`` model)."""
        return cls(
            task_id=ti.task_id, state=state, try_number=ti.try_number, max_tries=ti.max_tries, map_index=ti.map_index,
            start_date=ti.start_date, end_date=ti.end_date, log=log,
        )

    def logged(self, template: str) -> EndedTry:
        """This try, with ``template`` (its fields by name) as its log when none could be read."""
        if self.log:
            return self
        return dataclasses.replace(self, log=template.format(task_id=self.task_id, try_number=self.try_number, state=self.state))


def payload(dag_run: Any, ended: EndedTry, *, event: str, retries: int, triggered: Sequence[str]) -> dict[str, Any]:
    """
    cheek's payload of ``event`` for ``ended``, a try of a task of ``dag_run``.

    :param retries: the task's ``retries``, from which ``retry_attempt`` is derived when the try's
        number is unknown.
    :param triggered: the ``trigger_job`` targets the event starts.
    """
    from airflow.sdk import conf

    from airflow_ordo_hooks.callbacks.payloads import log_url, watched_task_payload

    base_url = conf.get("api", "base_url", fallback="http://localhost:8080/")
    return watched_task_payload(
        dag_run,
        task_id=ended.task_id,
        state=ended.state,
        log=ended.log,
        retries_exhausted=event == "on_retries_exhausted",
        retries=retries,
        triggered=triggered,
        try_number=ended.try_number,
        max_tries=ended.max_tries,
        map_index=ended.map_index,
        start_date=ended.start_date,
        end_date=ended.end_date,
        log_url=log_url(base_url, dag_run.dag_id, dag_run.run_id, ended.task_id, ended.map_index, ended.try_number),
    )
