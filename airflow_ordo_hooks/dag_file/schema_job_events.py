"""cheek's hooks config as a pydantic model: ``{event: {action: [target, ...]}}``.

Read by :mod:`airflow_ordo_hooks.dag_file.job_events`; its :class:`EventActions` are also the hooks of a
cheek schedule and of each of its jobs (:mod:`airflow_ordo_hooks.dag_file.schema_cheek`).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, Field, PlainValidator, ValidationInfo

from airflow_ordo_hooks._events import EVENTS
from airflow_ordo_hooks.dag_file.schema_base import ID_PATTERN, MAX_ITEMS, ConfigModel, at_most, echo, expect, id_length, refusal
from airflow_ordo_hooks._targets import check_target
from airflow_ordo_hooks.exceptions import TargetError


def _webhook_target(value: Any) -> str:
    try:
        return check_target(value, templates=False)
    except TargetError as exc:
        raise refusal(str(exc)) from None


WebhookTargets = Annotated[
    list[Annotated[str, PlainValidator(_webhook_target)]], expect("a list of targets"), at_most(MAX_ITEMS, "targets")
]
DagIds = Annotated[
    list[Annotated[str, Field(strict=True, pattern=ID_PATTERN), expect("a DAG id (letters, digits, _ - .)"), AfterValidator(id_length)]],
    expect("a list of targets"),
    at_most(MAX_ITEMS, "targets"),
]


class EventActions(ConfigModel):
    """What one event does: each action with its targets (URLs or ``conn:<conn_id>``; DAG ids for ``trigger_job``)."""

    expected = "a mapping of actions ({known})"
    noun = "action"

    notify_webhook: WebhookTargets | None = None
    notify_slack_webhook: WebhookTargets | None = None
    notify_discord_webhook: WebhookTargets | None = None
    trigger_job: DagIds | None = None


class JobEventsConfig(ConfigModel):
    """
    A hooks config, ``{event: {action: [target, ...]}}``.

    Validation context: ``events``, the events allowed (default all; a DAG run has no ``on_retries_exhausted``).
    """

    expected = "a mapping of events ({known})"
    noun = "event"

    on_success: EventActions | None = None
    on_error: EventActions | None = None
    on_retries_exhausted: EventActions | None = None

    @classmethod
    def _known(cls, info: ValidationInfo) -> tuple[str, ...]:
        return tuple((info.context or {}).get("events", EVENTS))

    @classmethod
    def _unknown(cls, key: Any, info: ValidationInfo) -> str:
        why = " (a DAG run is not retried: use on_error)" if key in EVENTS else ""
        return f"unknown event {echo(key)}{why}; expected one of {', '.join(cls._known(info))}"
