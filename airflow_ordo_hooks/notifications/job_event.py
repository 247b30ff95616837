"""Notifiers for authors who prefer code to cheek's config: one per cheek notify action::

    BashOperator(
        task_id="brew",
        bash_command="make coffee",
        retries=3,
        on_retry_callback=[JobEventWebhookNotifier("https://example.com/hooks/errors")],
        on_failure_callback=[
            JobEventWebhookNotifier("https://example.com/hooks/errors"),
            JobEventSlackWebhookNotifier("conn:slack_alerts", event="on_retries_exhausted"),
        ],
    )

Each is a one-action cheek hook: it fires its event the way ``attach_hooks`` does (same payload,
same delivery path, same time limits). Unlike ``attach_hooks``, a notifier does not decide which
event a callback stands for: say it with ``event`` when it matters (``retries_exhausted`` in the
payload).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow.sdk import BaseNotifier

from airflow_ordo_hooks._events import EVENTS
from airflow_ordo_hooks.dag_file.job_events import Action, JobEvents
from airflow_ordo_hooks.callbacks.job_event import fire, is_run_context
from airflow_ordo_hooks.exceptions import HooksConfigError
from airflow_ordo_hooks._targets import check_target


class JobEventWebhookNotifier(BaseNotifier):
    """
    Send cheek's generic JSON payload (``notify_webhook``) for a task or DAG run event.

    :param target: an ``http(s)://`` URL or ``conn:<conn_id>[/<endpoint>]`` (templated).
    :param event: the cheek event this callback stands for: ``on_success``, ``on_error`` or
        ``on_retries_exhausted`` (sets ``retries_exhausted``); by default ``on_error``, or
        ``on_success`` when the task succeeded.
    """

    template_fields = ("target",)
    action = "notify_webhook"

    def __init__(self, target: str, *, event: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.target = check_target(target)
        if event is not None and event not in EVENTS:
            raise HooksConfigError(f"{type(self).__name__}: unknown event {event!r}; expected one of {', '.join(EVENTS)}")
        self.event = event

    def notify(self, context: Mapping[str, Any]) -> None:
        event = self.event or ("on_success" if _succeeded(context) else "on_error")
        fire([event], JobEvents((Action(event, self.action, self.target),)), context)


class JobEventSlackWebhookNotifier(JobEventWebhookNotifier):
    """Send cheek's Slack body (``notify_slack_webhook``): ``{"text": "<name> (exitcode <status>):\\n<log>"}``, at most 40,000 characters."""

    action = "notify_slack_webhook"


class JobEventDiscordWebhookNotifier(JobEventWebhookNotifier):
    """Send cheek's Discord body (``notify_discord_webhook``): ``{"content": "<name> (exitcode <status>):\\n<log>"}``, at most 2,000 characters."""

    action = "notify_discord_webhook"


def _succeeded(context: Mapping[str, Any]) -> bool:
    holder = context.get("dag_run") if is_run_context(context) else context.get("ti")
    state = getattr(holder, "state", None)
    return str(getattr(state, "value", state)) == "success"


send_job_event_webhook = JobEventWebhookNotifier
send_job_event_slack_webhook = JobEventSlackWebhookNotifier
send_job_event_discord_webhook = JobEventDiscordWebhookNotifier
