"""cheek's hooks config, as a DAG author writes it, validated once when the DAG file is parsed.

    on_error:
      notify_webhook: [https://example.com/hook]
    on_retries_exhausted:
      trigger_job: [cleanup_job]

Events: ``on_success``, ``on_error``, ``on_retries_exhausted``. Actions: ``notify_webhook``,
``notify_slack_webhook``, ``notify_discord_webhook`` (each a list of targets: URLs or
``conn:<conn_id>``) and ``trigger_job`` (a list of DAG ids).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from airflow_ordo_hooks._events import EVENTS
from airflow_ordo_hooks.exceptions import HooksConfigError

"""cheek's events; here, not in ``schema``, because the callbacks need them without pydantic."""
"""The events of a DAG run, which is not retried."""


class Action(NamedTuple):
    """One thing to do when an event fires: ``action`` (e.g. ``notify_webhook``) towards ``target``."""

    event: str
    action: str
    target: str


class JobEvents(NamedTuple):
    """A validated hooks config: the actions of each event, without duplicates, in the order written."""

    actions: tuple[Action, ...] = ()

    def for_event(self, event: str) -> tuple[Action, ...]:
        return tuple(a for a in self.actions if a.event == event)

    def __or__(self, other: JobEvents) -> JobEvents:
        """Both configs combined (cheek's schedule level plus job level): an action in both is kept once."""
        return JobEvents(tuple(dict.fromkeys((*self.actions, *other.actions))))

    def __bool__(self) -> bool:
        return bool(self.actions)


def parse_hooks(config: Mapping[str, Any] | str | JobEvents | None, *, where: str = "hooks", events: Iterable[str] = EVENTS) -> JobEvents:
    """
    Validate a cheek hooks config and return it as :class:`JobEvents`.

    :param config: a mapping, or YAML text, shaped like cheek's (``{event: {action: [target, ...]}}``).
    :param where: how the error messages name this config (e.g. the DAG or task it is for).
    :param events: the events allowed here (a DAG run has no ``on_retries_exhausted``).
    :raises HooksConfigError: naming the field, the value and what was expected.
    """
    if isinstance(config, JobEvents):
        return config
    if config is None:
        return JobEvents()
    from airflow_ordo_hooks.dag_file import schema  # pydantic: paid only by a DAG file that validates a config

    if isinstance(config, str):
        config = schema.load_yaml(config, where, HooksConfigError)

    model = schema.validate(schema.JobEventsConfig, config, where=where, error=HooksConfigError, context={"events": tuple(events)})
    return job_events_of(model)


def job_events_of(config: Any) -> JobEvents:
    """
    The :class:`JobEvents` of a validated config that sets cheek's events (a hooks config, a cheek schedule or job).

    :param config: a model of :mod:`airflow_ordo_hooks.dag_file.schema` with the event fields.
    """
    actions = [
        Action(event, action, target)
        for event, by_action in config.written()
        if event in EVENTS and by_action is not None
        for action, targets in by_action.written()
        for target in targets or ()
    ]
    return JobEvents(tuple(dict.fromkeys(actions)))
