"""Every ``[ordo_hooks]`` key of Airflow's configuration, once: its type, default, bounds and meaning.

Values are read through the Task SDK's ``conf`` (so ``AIRFLOW__ORDO_HOOKS__<KEY>`` works as for
any Airflow setting) and checked when read: a value of the wrong type or out of bounds raises
:class:`~airflow_ordo_hooks.exceptions.SettingsError` naming the key, the value and what was
expected. The provider's ``config`` metadata (``get_provider_info``) is generated from here.
"""

from __future__ import annotations

import hashlib
from typing import Any, NamedTuple

from airflow_ordo_hooks.exceptions import SettingsError

SECTION = "ordo_hooks"


class Setting(NamedTuple):
    """One key of ``[ordo_hooks]``."""

    name: str
    kind: type
    default: Any
    description: str
    minimum: float | None = None
    maximum: float | None = None

    @property
    def airflow_type(self) -> str:
        return {float: "float", int: "integer", str: "string"}[self.kind]

    def convert(self, raw: Any) -> Any:
        """``raw`` (text from the configuration, or a value) as this setting's type, checked against its bounds."""
        where = f"[{SECTION}] {self.name}"
        expected = {float: "a number", int: "a whole number", str: "text"}[self.kind]
        if self.kind is str:
            return str(raw)
        try:
            value = self.kind(str(raw).strip()) if isinstance(raw, str) else self.kind(raw)
        except (TypeError, ValueError):
            raise SettingsError(f"{where}: expected {expected}, got {str(raw)[:100]!r}") from None
        if isinstance(raw, float) and self.kind is int and raw != int(raw):
            raise SettingsError(f"{where}: expected {expected}, got {raw!r}")
        if value != value or (self.minimum is not None and value < self.minimum) or (
            self.maximum is not None and value > self.maximum
        ):
            raise SettingsError(f"{where}: expected {expected} from {self.bounds}, got {raw!r}")
        return value

    @property
    def bounds(self) -> str:
        """``"<minimum> to <maximum>"``, as the README's table and the errors write them."""
        return f"{_number(self.minimum)} to {_number(self.maximum)}"


def _number(value: float | None) -> str:
    return str(int(value)) if value is not None and value == int(value) else str(value)


SETTINGS: tuple[Setting, ...] = (
    Setting("connect_timeout", float, 3.0, "Seconds to wait for a receiver's connection, per request.", 0.01, 300),
    Setting("read_timeout", float, 10.0, "Seconds to wait between bytes of a receiver's answer, per request.", 0.01, 3600),
    Setting("budget", float, 10.0, "Total seconds one delivery may take, retries and waits included.", 0.01, 3600),
    Setting("max_attempts", int, 5, "Requests per delivery at the most, the first included.", 1, 100),
    Setting("backoff_initial", float, 0.5, "First wait between retries, in seconds; doubles each retry.", 0, 3600),
    Setting("backoff_max", float, 8.0, "Longest wait between retries, in seconds.", 0, 3600),
    Setting("backoff_jitter", float, 0.5, "Up to this many seconds added at random to each wait.", 0, 3600),
    Setting("max_redirects", int, 5, "307/308 redirects followed at the most.", 0, 30),
    Setting(
        "allowed_conf_hosts", str, "",
        "Host names, addresses and CIDR blocks (comma-separated) that a URL taken from a run's conf may reach although "
        "they are not public (loopback, link-local, private); by default only public addresses are.",
    ),
    Setting(
        "api_conn_id", str, "airflow_api",
        "HTTP connection to Airflow's REST API, for on_exit reports and trigger_job from callbacks.",
    ),
    Setting("hooks_file", str, "", "A YAML file of cheek hooks applied to every task of every DAG (deployment-wide hooks)."),
    Setting(
        "context_secret", str, "",
        "Secret that signs the context a trigger_job parent passes to its child run; by default derived from "
        "[api] secret_key, else [core] fernet_key. Must be the same on every worker and DAG processor.",
    ),
    Setting("log_max_chars", int, 20_000, "Longest log a job event payload carries; its tail is kept.", 100, 10_000_000),
)
"""Every key, in the order the provider's metadata lists them."""

BY_NAME = {s.name: s for s in SETTINGS}

CALLBACK_MARGIN = 4.0
"""Seconds of ``[core] task_success_overtime`` kept back from a task callback's deliveries (reading the log, payloads)."""


def get(name: str) -> Any:
    """The value of ``[ordo_hooks] <name>``: as configured, else its default; checked.

    :raises SettingsError: the configured value is not of the key's type, or out of its bounds.
    """
    return values(name)[name]


def values(*names: str) -> dict[str, Any]:
    """
    ``{name: get(name)}`` for each of ``names``, in one pass over the section.

    One ``conf.getsection`` (about 30 µs) tells which keys are set to something other than their
    default; only those are read exactly with ``conf.get`` (about 50 µs each). An event reads
    eight keys, and this is most of what a callback costs besides its HTTP request.
    """
    from airflow.sdk import conf

    section = conf.getsection(SECTION) or {}
    result = {}
    for name in names:
        setting = BY_NAME[name]
        if name not in section or _same(section[name], setting.default):
            result[name] = setting.default
        else:
            raw = conf.get(SECTION, name, fallback=None)
            result[name] = setting.default if raw is None else setting.convert(raw)
    return result


def _same(sectioned: Any, default: Any) -> bool:
    """Whether ``conf.getsection``'s value (text made int, float or bool) is exactly ``default``."""
    if isinstance(sectioned, bool) or isinstance(default, bool):
        return type(sectioned) is type(default) and sectioned == default
    if isinstance(default, float):
        return isinstance(sectioned, (int, float)) and float(sectioned) == default
    return type(sectioned) is type(default) and sectioned == default


def task_callback_seconds() -> float:
    """
    Seconds all the deliveries of one callback may take: the supervisor kills a task process
    ``[core] task_success_overtime`` seconds (20 by default) after the task reported its state,
    callbacks or not; a margin is left for reading the log and building the payloads.
    """
    from airflow.sdk import conf

    return max(conf.getfloat("core", "task_success_overtime", fallback=20.0) - CALLBACK_MARGIN, 1.0)


def context_key() -> bytes | None:
    """
    The key that signs ``trigger_job`` contexts: from ``[ordo_hooks] context_secret``, else
    ``[api] secret_key``, else ``[core] fernet_key`` (a value Airflow left as its ``{PLACEHOLDER}``
    counts as unset); ``None`` when there is none.
    """
    from airflow.sdk import conf

    for section, key in ((SECTION, "context_secret"), ("api", "secret_key"), ("core", "fernet_key")):
        value = (conf.get(section, key, fallback="") or "").strip()
        if value and not (value.startswith("{") and value.endswith("}")):
            return hashlib.sha256(b"airflow-ordo-hooks trigger context\0" + value.encode()).digest()
    return None


def provider_config() -> dict[str, Any]:
    """The ``config`` section of the provider's metadata, for Airflow's configuration reference."""
    return {
        SECTION: {
            "description": "Webhook delivery defaults of airflow-ordo-hooks.",
            "options": {
                s.name: {
                    "description": s.description,
                    "version_added": "0.1.0",
                    "type": s.airflow_type,
                    "example": None,
                    "default": str(s.default),
                    **({"sensitive": True} if s.name == "context_secret" else {}),
                }
                for s in SETTINGS
            },
        }
    }

