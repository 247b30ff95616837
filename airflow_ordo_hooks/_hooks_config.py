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

"""cheek's events; here, not in ``_schema``, because the callbacks need them without pydantic."""
"""The events of a DAG run, which is not retried."""


class Action(NamedTuple):
    """One thing to do when an event fires: ``action`` (e.g. ``notify_webhook``) towards ``target``."""

    event: str
    action: str
    target: str


class Hooks(NamedTuple):
    """A validated hooks config: the actions of each event, without duplicates, in the order written."""

    actions: tuple[Action, ...] = ()

    def for_event(self, event: str) -> tuple[Action, ...]:
        return tuple(a for a in self.actions if a.event == event)

    def __or__(self, other: Hooks) -> Hooks:
        """Both configs combined (cheek's schedule level plus job level): an action in both is kept once."""
        return Hooks(tuple(dict.fromkeys((*self.actions, *other.actions))))

    def __bool__(self) -> bool:
        return bool(self.actions)


def parse_hooks(config: Mapping[str, Any] | str | Hooks | None, *, where: str = "hooks", events: Iterable[str] = EVENTS) -> Hooks:
    """
    Validate a cheek hooks config and return it as :class:`Hooks`.

    :param config: a mapping, or YAML text, shaped like cheek's (``{event: {action: [target, ...]}}``).
    :param where: how the error messages name this config (e.g. the DAG or task it is for).
    :param events: the events allowed here (a DAG run has no ``on_retries_exhausted``).
    :raises HooksConfigError: naming the field, the value and what was expected.
    """
    if isinstance(config, Hooks):
        return config
    if config is None:
        return Hooks()
    from airflow_ordo_hooks import _schema  # pydantic: paid only by a DAG file that validates a config

    if isinstance(config, str):
        config = _schema.load_yaml(config, where, HooksConfigError)

    model = _schema.validate(_schema.HooksConfig, config, where=where, error=HooksConfigError, context={"events": tuple(events)})
    return hooks_of(model)


def hooks_of(config: Any) -> Hooks:
    """
    The :class:`Hooks` of a validated config that sets cheek's events (a hooks config, a cheek schedule or job).

    :param config: a model of :mod:`airflow_ordo_hooks._schema` with the event fields.
    """
    actions = [
        Action(event, action, target)
        for event, by_action in config.written()
        if event in EVENTS and by_action is not None
        for action, targets in by_action.written()
        for target in targets or ()
    ]
    return Hooks(tuple(dict.fromkeys(actions)))
