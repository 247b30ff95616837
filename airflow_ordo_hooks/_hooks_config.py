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

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from airflow_ordo_hooks.exceptions import HooksConfigError

EVENTS = ("on_success", "on_error", "on_retries_exhausted")
RUN_EVENTS = ("on_success", "on_error")
NOTIFY_ACTIONS = ("notify_webhook", "notify_slack_webhook", "notify_discord_webhook")
ACTIONS = (*NOTIFY_ACTIONS, "trigger_job")
_DAG_ID = re.compile(r"^[A-Za-z0-9_.-]+$")  # Airflow's own rule for DAG ids


@dataclass(frozen=True)
class Action:
    """One thing to do when an event fires: ``action`` (e.g. ``notify_webhook``) towards ``target``."""

    event: str
    action: str
    target: str


@dataclass(frozen=True)
class Hooks:
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
    if isinstance(config, str):
        config = _load_yaml(config, where)
    allowed = tuple(events)
    if not isinstance(config, Mapping):
        raise HooksConfigError(f"{where}: expected a mapping of events ({', '.join(allowed)}), got {config!r}")
    from airflow_ordo_hooks.hooks.webhook import TargetError, check_target

    actions: list[Action] = []
    for event, by_action in config.items():
        if event not in allowed:
            extra = " (a DAG run is not retried: use on_error)" if event in EVENTS else ""
            raise HooksConfigError(f"{where}: unknown event {event!r}{extra}; expected one of {', '.join(allowed)}")
        if by_action is None:
            continue
        if not isinstance(by_action, Mapping):
            raise HooksConfigError(f"{where}.{event}: expected a mapping of actions ({', '.join(ACTIONS)}), got {by_action!r}")
        for action, targets in by_action.items():
            field = f"{where}.{event}.{action}"
            if action not in ACTIONS:
                raise HooksConfigError(f"{where}.{event}: unknown action {action!r}; expected one of {', '.join(ACTIONS)}")
            if targets is None:
                continue
            if isinstance(targets, str) or not isinstance(targets, Iterable) or isinstance(targets, Mapping):
                raise HooksConfigError(f"{field}: expected a list of targets, got {targets!r}")
            for index, target in enumerate(targets):
                if action == "trigger_job":
                    if not isinstance(target, str) or not _DAG_ID.match(target):
                        raise HooksConfigError(
                            f"{field}[{index}]: expected a DAG id (letters, digits, _ - .), got {target!r}"
                        )
                else:
                    try:
                        check_target(target)
                    except TargetError as exc:
                        raise HooksConfigError(f"{field}[{index}]: {exc}") from None
                actions.append(Action(event, action, target))
    return Hooks(tuple(dict.fromkeys(actions)))


def _load_yaml(text: str, where: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise HooksConfigError(f"{where}: not valid YAML: {exc}") from None
