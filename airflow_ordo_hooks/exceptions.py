"""Every error this package raises for a DAG author or an operator to catch: one tree, one base.

Each message names where the problem is (the config, the field), the value, and what was expected.
An error is also a ``ValueError`` where the caller passed a value that cannot be used (a config,
a setting, a target, a secret, a delivery record); an API that failed, or a key that cannot do
its work, is not::

    OrdoHooksError
    ├── ConfigError                 (ValueError)  a config a DAG author wrote
    │   ├── HooksConfigError                      cheek's hooks
    │   ├── CheekScheduleError                    cheek's schedule
    │   └── OnExitConfigError                     Ordo's on_exit step
    ├── SettingsError               (ValueError)  a key of [ordo_hooks]
    ├── TargetError                 (ValueError)  a webhook target
    │   └── EgressRefused                         a target the egress policy does not let through
    ├── SigningSecretError          (ValueError)  a Standard Webhooks secret
    ├── LedgerConflict              (ValueError)  a delivery held for another event
    ├── AirflowApiError                           a request to Airflow's REST API
    └── FernetKeyError                            [core] fernet_key and the ledger's targets
        └── UndecryptableTargets                  targets no key decrypts
"""

from __future__ import annotations


class OrdoHooksError(Exception):
    """The base of every error of airflow-ordo-hooks."""


class SettingsError(OrdoHooksError, ValueError):
    """A key of Airflow's ``[ordo_hooks]`` section whose value cannot be used."""


class TargetError(OrdoHooksError, ValueError):
    """A webhook target that is neither an http(s) URL nor ``conn:<conn_id>``."""


class EgressRefused(TargetError):
    """
    A request that the egress policy (``[ordo_hooks] allowed_hosts``) does not let through: a URL
    someone other than the operator chose (a run's conf, a delivery the API server sends) whose
    host, redirect or connected address is not public and not allowed.
    """


class ConfigError(OrdoHooksError, ValueError):
    """A config a DAG author wrote (cheek's hooks or schedule, Ordo's on_exit step) that cannot be used."""


class HooksConfigError(ConfigError):
    """A cheek hooks config that cannot be used."""


class CheekScheduleError(ConfigError):
    """A cheek schedule that cannot be loaded; the message names the job and the field."""


class OnExitConfigError(ConfigError):
    """An Ordo on_exit step that cannot be used."""


class SigningSecretError(OrdoHooksError, ValueError):
    """A signing secret that is not a Standard Webhooks secret (``whsec_`` + base64 of a key); the message does not quote it."""


class AirflowApiError(OrdoHooksError):
    """A request to Airflow's REST API that failed for good; the message names the request and why."""

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class LedgerConflict(OrdoHooksError, ValueError):
    """An item names a ``webhook_id`` the ledger already holds for another event (DAG, run, task, try or event)."""

    def __init__(self, message: str, webhook_id: str) -> None:
        super().__init__(message)
        self.webhook_id = webhook_id


class FernetKeyError(OrdoHooksError):
    """``[core] fernet_key`` cannot do what was asked: it is empty, or it cannot be read as Fernet keys."""


class UndecryptableTargets(FernetKeyError):
    """Deliveries whose target no key of ``[core] fernet_key`` decrypts; ``airflow ordo-hooks rotate-fernet-key`` left them as they are."""

    def __init__(self, changed: int, webhook_ids: list[str]) -> None:
        shown = ", ".join(webhook_ids[:20]) + (f" and {len(webhook_ids) - 20} more" if len(webhook_ids) > 20 else "")
        super().__init__(
            f"no key of [core] fernet_key decrypts the target of {len(webhook_ids)} deliveries, left as they are "
            f"(was a key they were encrypted with dropped from it?): {shown}"
        )
        self.changed = changed
        self.webhook_ids = webhook_ids
