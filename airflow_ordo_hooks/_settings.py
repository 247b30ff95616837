"""Every ``[ordo_hooks]`` key of Airflow's configuration, once: its type, default, bounds and meaning.

Values are read through the Task SDK's ``conf`` (so ``AIRFLOW__ORDO_HOOKS__<KEY>`` works as for
any Airflow setting) and checked when read: a value of the wrong type or out of bounds raises
:class:`~airflow_ordo_hooks.exceptions.SettingsError` naming the key, the value and what was
expected. The provider's ``config`` metadata (``get_provider_info``) is generated from here.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
from collections.abc import Callable, Iterator
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
        return {bool: "boolean", float: "float", int: "integer", str: "string"}[self.kind]

    def convert(self, raw: Any) -> Any:
        """``raw`` (text from the configuration, or a value) as this setting's type, checked against its bounds."""
        where = f"[{SECTION}] {self.name}"
        expected = {bool: "true or false", float: "a number", int: "a whole number", str: "text"}[self.kind]
        if self.kind is str:
            return str(raw)
        if self.kind is bool:
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in ("true", "t", "1", "yes", "on"):
                return True
            if text in ("false", "f", "0", "no", "off"):
                return False
            raise SettingsError(f"{where}: expected {expected}, got {str(raw)[:100]!r}")
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
        "allowed_hosts", str, "",
        "Host names, addresses and CIDR blocks (comma-separated) that a URL chosen by someone other than the operator "
        "may reach although they are not public (loopback, link-local, private): a URL from a run's conf, and every URL "
        "the API server sends to (redelivery, Redeliver). By default only public addresses are; an address that embeds "
        "an IPv4 address (IPv4-mapped, NAT64, 6to4, Teredo) counts as that IPv4 address.",
    ),
    Setting(
        "allowed_conf_hosts", str, "",
        "Deprecated: the former name of allowed_hosts, read only when allowed_hosts is not set.",
    ),
    Setting(
        "egress_proxy", bool, False,
        "Whether a URL that allowed_hosts governs may be sent through the environment's proxy (HTTP_PROXY, "
        "HTTPS_PROXY, ALL_PROXY). The proxy then resolves the host and chooses the address, which this package can no "
        "longer check; by default such requests go direct, whatever the proxy variables say.",
    ),
    Setting(
        "api_conn_id", str, "airflow_api",
        "HTTP connection to Airflow's REST API, for on_exit reports and trigger_job from callbacks.",
    ),
    Setting("hooks_file", str, "", "A YAML file of cheek hooks applied to every task of every DAG (deployment-wide hooks)."),
    Setting(
        "operations_target", str, "",
        "A URL or conn:<conn_id> that hears about the deliveries themselves: a delivery given up, a target that has "
        "failed every attempt for target_failing_seconds, and its recovery. The operator's own, so not subject to "
        "allowed_hosts; signed and redelivered like every delivery; never told about itself. Empty: no such events.",
    ),
    Setting(
        "operations_action", str, "notify_webhook",
        "How the operations target is sent to: notify_webhook (the event as JSON), notify_slack_webhook or "
        "notify_discord_webhook (one line of text).",
    ),
    Setting(
        "target_failing_seconds", float, 86400.0,
        "Seconds a target must fail every attempt before the operations target hears that it is failing.", 1, 31_536_000,
    ),
    Setting(
        "context_secret", str, "",
        "Secret that signs the context a trigger_job parent passes to its child run; by default derived from "
        "[api] secret_key, else [core] fernet_key. Must be the same on every worker and DAG processor.",
    ),
    Setting("log_max_chars", int, 20_000, "Longest log a job event payload carries; its tail is kept.", 100, 10_000_000),
    Setting(
        "ledger", bool, True,
        "Record every event and delivery attempt in the delivery ledger (in Airflow's database, through the API server "
        "and connection api_conn_id) and redeliver what failed from the API server; when false, or when the API server "
        "cannot be reached, a callback retries within its own time only.",
    ),
    Setting(
        "inline_budget", float, 2.0,
        "Seconds a callback spends on its events' first deliveries, handing them to the ledger included: what "
        "failed by then is redelivered by the API server. Bounds what a receiver that is down costs a try's slot.",
        0.1, 60,
    ),
    Setting(
        "redelivery_schedule", str, "0, 5, 300, 1800, 7200, 18000, 36000, 36000",
        "Seconds before each step of a delivery, after the step before it: the first step is the callback's own "
        "attempts (however many it made within its inline budget), each later one an attempt of the API server; "
        "comma-separated; after the last the delivery is given up and marked failed.",
    ),
    Setting(
        "redelivery_poll_seconds", float, 1.0,
        "How often the API server looks for deliveries that are due, in seconds.", 0.05, 300,
    ),
    Setting(
        "retention_days", float, 30.0,
        "Days the delivery ledger keeps a settled delivery (delivered, gone or failed) and its attempts after it "
        "settled; the API server deletes older ones in small batches. Pending deliveries are kept however old; "
        "0 keeps every delivery forever.",
        0, 36500,
    ),
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
    ``{name: get(name)}`` for each of ``names``, in one pass over the section; within
    :func:`one_reading`, each key is read once and kept.

    One ``conf.getsection`` tells which keys are set to something other than their default; only
    those are read exactly with ``conf.get``, which costs more a key.
    """
    kept = _READING.get()
    if kept is None:
        return _read(names, _section())
    missing = [n for n in names if n not in kept]
    if missing:
        kept.update(_read(missing, _once(_SECTION_KEY, _section)))
    return {n: kept[n] for n in names}


_READING: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("ordo_hooks_reading", default=None)
"""What :func:`one_reading` has read so far in this context: keys of ``[ordo_hooks]``, the section, ``[core]`` values."""
_SECTION_KEY = "[ordo_hooks]"
_OVERTIME_KEY = "[core] task_success_overtime"


@contextlib.contextmanager
def one_reading() -> Iterator[None]:
    """
    Within: every key is read from Airflow's configuration the first time it is asked for, and
    then kept, so that one event sees one configuration (an event asks for about ten keys, and
    reading them is most of what it costs besides its HTTP request). Threads started within
    read afresh; within another reading, this is that one.
    """
    if _READING.get() is not None:
        yield
        return
    token = _READING.set({})
    try:
        yield
    finally:
        _READING.reset(token)


def _once(key: str, read: Callable[[], Any]) -> Any:
    """``read()``; within :func:`one_reading`, only the first time ``key`` is asked for."""
    kept = _READING.get()
    if kept is None:
        return read()
    if key not in kept:
        kept[key] = read()
    return kept[key]


def _section() -> Any:
    from airflow.sdk import conf

    return conf.getsection(SECTION)


def _read(names: Any, section: Any) -> dict[str, Any]:
    from airflow.sdk import conf

    result = {}
    for name in names:
        setting = BY_NAME[name]
        # None: Airflow does not know the section (before 3.3.2, when the provider's configuration is
        # not loaded, it ignores the environment too): read every key exactly
        if section is not None and (name not in section or _same(section[name], setting.default)):
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


def redelivery_schedule() -> tuple[float, ...]:
    """``[ordo_hooks] redelivery_schedule`` as seconds: 1 to 50 non-negative numbers, the first 0 for an attempt at once.

    :raises SettingsError: an entry is not a number from 0 to 30 days, or there are none or too many.
    """
    raw = get("redelivery_schedule")
    where = f"[{SECTION}] redelivery_schedule"
    parts = [p.strip() for p in raw.split(",")]
    try:
        delays = tuple(float(p) for p in parts)
    except ValueError:
        raise SettingsError(f"{where}: expected comma-separated seconds (e.g. '0, 5, 300'), got {raw[:100]!r}") from None
    if not 1 <= len(delays) <= 50 or any(not 0 <= d <= 30 * 86400 for d in delays):
        raise SettingsError(f"{where}: expected 1 to 50 numbers of seconds from 0 to 2592000, got {raw[:100]!r}")
    return delays


_ALIAS_WARNED = False


def allowed_hosts() -> str:
    """
    ``[ordo_hooks] allowed_hosts``; when it is not set, its former name ``allowed_conf_hosts``,
    with one deprecation warning per process.
    """
    global _ALIAS_WARNED

    read = values("allowed_hosts", "allowed_conf_hosts")
    if read["allowed_hosts"].strip() or not read["allowed_conf_hosts"].strip():
        return read["allowed_hosts"]
    if not _ALIAS_WARNED:
        _ALIAS_WARNED = True
        import logging

        logging.getLogger("airflow_ordo_hooks").warning(
            "[%s] allowed_conf_hosts is deprecated: rename it allowed_hosts, which now also governs every URL the "
            "API server sends to", SECTION,
        )
    return read["allowed_conf_hosts"]


def task_callback_seconds() -> float:
    """
    Seconds all the deliveries of one callback may take: the supervisor kills a task process
    ``[core] task_success_overtime`` seconds (20 by default) after the task reported its state,
    callbacks or not; a margin is left for reading the log and building the payloads.
    """
    return max(task_success_overtime() - CALLBACK_MARGIN, 1.0)


def task_success_overtime() -> float:
    """``[core] task_success_overtime``: how long after a try reported its state its process (and callbacks) may live."""
    from airflow.sdk import conf

    return _once(_OVERTIME_KEY, lambda: conf.getfloat("core", "task_success_overtime", fallback=20.0))


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

