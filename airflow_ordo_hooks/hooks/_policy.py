"""What a request is (:class:`_Request`), what it may take (:class:`DeliveryPolicy`) and what it came to (:class:`_Outcome`).

The terms every step of the HTTP layer speaks in: :mod:`~airflow_ordo_hooks.hooks._http` sends a
request under the policy and classifies what happened as an outcome,
:mod:`~airflow_ordo_hooks.hooks._redirects` builds the request that follows a redirect or refuses
it as an outcome, and :mod:`~airflow_ordo_hooks.hooks._retries` decides from an outcome whether to
try again.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

from airflow_ordo_hooks import _settings
from airflow_ordo_hooks._targets import mask_text

if TYPE_CHECKING:
    import requests


@dataclass(frozen=True)
class DeliveryPolicy:
    """
    How long and how often one delivery may try.

    Defaults can be changed deployment-wide in the ``[ordo_hooks]`` section of Airflow's
    configuration (keys of the same names), or per call.

    :param connect_timeout: seconds to wait for the TCP/TLS connection, per request.
    :param read_timeout: seconds to wait for the receiver between bytes of its answer, per request.
    :param budget: total seconds one delivery may take, waits between retries included; it holds
        however slowly the receiver answers (a byte at a time included).
    :param max_attempts: requests at the most, the first one included.
    :param backoff_initial: first wait between retries, in seconds; it doubles on each retry.
    :param backoff_max: longest wait between retries, in seconds (a ``Retry-After`` may ask longer).
    :param backoff_jitter: up to this many seconds added at random to each wait.
    :param max_redirects: 307/308 redirects followed at the most.
    """

    connect_timeout: float = _settings.BY_NAME["connect_timeout"].default
    read_timeout: float = _settings.BY_NAME["read_timeout"].default
    budget: float = _settings.BY_NAME["budget"].default
    max_attempts: int = _settings.BY_NAME["max_attempts"].default
    backoff_initial: float = _settings.BY_NAME["backoff_initial"].default
    backoff_max: float = _settings.BY_NAME["backoff_max"].default
    backoff_jitter: float = _settings.BY_NAME["backoff_jitter"].default
    max_redirects: int = _settings.BY_NAME["max_redirects"].default

    def __post_init__(self) -> None:
        for name in _POLICY_KEYS:  # the same bounds as Airflow's configuration
            object.__setattr__(self, name, _settings.BY_NAME[name].convert(getattr(self, name)))

    @classmethod
    def from_airflow_config(cls) -> DeliveryPolicy:
        """The defaults, overridden by any key set in Airflow's ``[ordo_hooks]`` section."""
        return cls(**_settings.values(*_POLICY_KEYS))


_POLICY_KEYS = tuple(f.name for f in fields(DeliveryPolicy))
"""The policy's keys, each a key of ``[ordo_hooks]``."""


@dataclass(frozen=True)
class _Request:
    """One request of a redirect chain: ``kwargs`` are those of ``session.request`` (body, headers, query)."""

    session: requests.Session
    method: str
    url: str
    kwargs: dict[str, Any]


@dataclass
class _Outcome:
    """One request's result, classified: what to report and whether another attempt may help."""

    status_code: int | None = None
    error: str | None = None
    retryable: bool = False
    retry_after: float | None = None
    sent: bool = True  # False only when the connection failed before the request went out
    response: requests.Response | None = None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def _error(exc: BaseException, urls: Iterable[str]) -> str:
    """An exception as an error text: its type and message, shortened, every URL of ``urls`` masked."""
    return _short(mask_text(f"{type(exc).__name__}: {exc}", urls))  # masked first: a cut URL would not be found


def _short(text: str) -> str:
    return text if len(text) <= 300 else text[:297] + "..."
