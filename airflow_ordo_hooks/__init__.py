"""airflow-ordo-hooks: cheek's job events and Ordo's on_exit webhook step for Apache Airflow 3.

Public names are imported on first use, so that ``import airflow_ordo_hooks`` in a DAG file
costs almost nothing at parse time.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_LAZY = {
    "attach_hooks": "airflow_ordo_hooks.events",
    "attach_run_hooks": "airflow_ordo_hooks.events",
    "parse_hooks": "airflow_ordo_hooks.config",
    "HooksConfigError": "airflow_ordo_hooks.config",
    "JobEventWebhookNotifier": "airflow_ordo_hooks.notifications",
    "JobEventSlackWebhookNotifier": "airflow_ordo_hooks.notifications",
    "JobEventDiscordWebhookNotifier": "airflow_ordo_hooks.notifications",
    "load_cheek_schedule": "airflow_ordo_hooks.cheek_schedule",
    "CheekScheduleError": "airflow_ordo_hooks.cheek_schedule",
    "attach_on_exit": "airflow_ordo_hooks.on_exit",
    "parse_on_exit": "airflow_ordo_hooks.on_exit",
    "OnExitConfigError": "airflow_ordo_hooks.on_exit",
    "CallWebhookOperator": "airflow_ordo_hooks.call_webhook",
    "deliver": "airflow_ordo_hooks.delivery",
    "deliver_all": "airflow_ordo_hooks.delivery",
    "DeliveryPolicy": "airflow_ordo_hooks.delivery",
    "DeliveryRecord": "airflow_ordo_hooks.delivery",
}

__all__ = ["__version__", *_LAZY]

if TYPE_CHECKING:
    from airflow_ordo_hooks.call_webhook import CallWebhookOperator
    from airflow_ordo_hooks.cheek_schedule import CheekScheduleError, load_cheek_schedule
    from airflow_ordo_hooks.config import HooksConfigError, parse_hooks
    from airflow_ordo_hooks.delivery import DeliveryPolicy, DeliveryRecord, deliver, deliver_all
    from airflow_ordo_hooks.events import attach_hooks, attach_run_hooks
    from airflow_ordo_hooks.on_exit import OnExitConfigError, attach_on_exit, parse_on_exit
    from airflow_ordo_hooks.notifications import (
        JobEventDiscordWebhookNotifier,
        JobEventSlackWebhookNotifier,
        JobEventWebhookNotifier,
    )


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'airflow_ordo_hooks' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
