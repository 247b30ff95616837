"""Every error this package raises for a DAG author or an operator to catch: one tree, one base.

Each message names where the problem is (the config, the field), the value, and what was expected.
"""

from __future__ import annotations


class OrdoHooksError(ValueError):
    """The base of every error of airflow-ordo-hooks."""


class SettingsError(OrdoHooksError):
    """A key of Airflow's ``[ordo_hooks]`` section whose value cannot be used."""


class TargetError(OrdoHooksError):
    """A webhook target that is neither an http(s) URL nor ``conn:<conn_id>``."""


class EgressRefused(TargetError):
    """
    A request that the egress policy (``[ordo_hooks] allowed_hosts``) does not let through: a URL
    someone other than the operator chose (a run's conf, a delivery the API server sends) whose
    host, redirect or connected address is not public and not allowed.
    """


class ConfigError(OrdoHooksError):
    """A config a DAG author wrote (cheek's hooks or schedule, Ordo's on_exit step) that cannot be used."""


class HooksConfigError(ConfigError):
    """A cheek hooks config that cannot be used."""


class CheekScheduleError(ConfigError):
    """A cheek schedule that cannot be loaded; the message names the job and the field."""


class OnExitConfigError(ConfigError):
    """An Ordo on_exit step that cannot be used."""


class AirflowApiError(OrdoHooksError):
    """A request to Airflow's REST API that failed for good; the message names the request and why."""

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class LedgerConflict(OrdoHooksError):
    """An item names a ``webhook_id`` the ledger already holds for another event (DAG, run, task, try or event)."""

    def __init__(self, message: str, webhook_id: str) -> None:
        super().__init__(message)
        self.webhook_id = webhook_id
