"""airflow-ordo-hooks: cheek's job events and Ordo's on_exit webhook step for Apache Airflow 3.

Public names are imported on first use, so that ``import airflow_ordo_hooks`` in a DAG file
costs almost nothing at parse time.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_LAZY = {
    "__version__": "airflow_ordo_hooks._version",
    # authoring: cheek's hooks and schedule, Ordo's on_exit step
    "attach_hooks": "airflow_ordo_hooks.dag_file.attach",
    "attach_run_hooks": "airflow_ordo_hooks.dag_file.attach",
    "parse_hooks": "airflow_ordo_hooks.dag_file.job_events",
    "load_cheek_schedule": "airflow_ordo_hooks.dag_file.cheek_schedule",
    "attach_on_exit": "airflow_ordo_hooks.dag_file.attach",
    "parse_on_exit": "airflow_ordo_hooks.dag_file.on_exit_step",
    # notifiers, operators, hooks
    "JobEventWebhookNotifier": "airflow_ordo_hooks.notifications.job_event",
    "JobEventSlackWebhookNotifier": "airflow_ordo_hooks.notifications.job_event",
    "JobEventDiscordWebhookNotifier": "airflow_ordo_hooks.notifications.job_event",
    "CallWebhookOperator": "airflow_ordo_hooks.operators.call_webhook",
    "TriggerJobOperator": "airflow_ordo_hooks.operators.trigger_job",
    "deliver": "airflow_ordo_hooks.hooks.webhook",
    "deliver_all": "airflow_ordo_hooks.hooks.webhook",
    "DeliveryPolicy": "airflow_ordo_hooks.hooks.webhook",
    "DeliveryRecord": "airflow_ordo_hooks.hooks.webhook",
    # errors
    "OrdoHooksError": "airflow_ordo_hooks.exceptions",
    "SettingsError": "airflow_ordo_hooks.exceptions",
    "TargetError": "airflow_ordo_hooks.exceptions",
    "ConfigError": "airflow_ordo_hooks.exceptions",
    "HooksConfigError": "airflow_ordo_hooks.exceptions",
    "CheekScheduleError": "airflow_ordo_hooks.exceptions",
    "OnExitConfigError": "airflow_ordo_hooks.exceptions",
    "EgressRefused": "airflow_ordo_hooks.exceptions",
    "SigningSecretError": "airflow_ordo_hooks.exceptions",
    "AirflowApiError": "airflow_ordo_hooks.exceptions",
}

__all__ = list(_LAZY)

if TYPE_CHECKING:
    from airflow_ordo_hooks._version import __version__
    from airflow_ordo_hooks.dag_file.attach import attach_hooks, attach_on_exit, attach_run_hooks
    from airflow_ordo_hooks.dag_file.cheek_schedule import load_cheek_schedule
    from airflow_ordo_hooks.dag_file.job_events import parse_hooks
    from airflow_ordo_hooks.dag_file.on_exit_step import parse_on_exit
    from airflow_ordo_hooks.exceptions import (
        AirflowApiError,
        CheekScheduleError,
        ConfigError,
        EgressRefused,
        HooksConfigError,
        OnExitConfigError,
        OrdoHooksError,
        SettingsError,
        SigningSecretError,
        TargetError,
    )
    from airflow_ordo_hooks.hooks.webhook import DeliveryPolicy, DeliveryRecord, deliver, deliver_all
    from airflow_ordo_hooks.notifications.job_event import (
        JobEventDiscordWebhookNotifier,
        JobEventSlackWebhookNotifier,
        JobEventWebhookNotifier,
    )
    from airflow_ordo_hooks.operators.call_webhook import CallWebhookOperator
    from airflow_ordo_hooks.operators.trigger_job import TriggerJobOperator


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'airflow_ordo_hooks' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
