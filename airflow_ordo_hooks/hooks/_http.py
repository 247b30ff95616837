"""The request-and-retry primitive every hook of this package sends through, bounded by the ``[ordo_hooks]`` policy.

One request (:func:`_send`) is bounded by the policy's connect and read timeouts and by what is
left of the budget; :func:`_with_retries` retries connection errors, timeouts, 429 and 5xx with
backoff and jitter, honouring ``Retry-After``, never past the deadline.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from airflow_ordo_hooks import _settings
from airflow_ordo_hooks._targets import mask_url
from airflow_ordo_hooks._version import __version__

if TYPE_CHECKING:
    import requests
    import requests.adapters

log = logging.getLogger("airflow_ordo_hooks.hooks.webhook")  # one logger name for every delivery line

SIGNING_SECRET_EXTRA = "signing_secret"
"""Key in an HTTP connection's extra holding a Standard Webhooks secret (``whsec_…``)."""

_RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504}) | frozenset(range(505, 600))
_ERROR_SNIPPET_BYTES = 300


@dataclass(frozen=True)
class DeliveryPolicy:
    """
    How long and how often one delivery may try.

    Defaults can be changed deployment-wide in the ``[ordo_hooks]`` section of Airflow's
    configuration (keys of the same names), or per call.

    :param connect_timeout: seconds to wait for the TCP/TLS connection, per request.
    :param read_timeout: seconds to wait for the receiver between bytes of its answer, per request.
    :param budget: total seconds one delivery may take, waits between retries included.
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
        for name, value in asdict(self).items():  # the same bounds as Airflow's configuration
            object.__setattr__(self, name, _settings.BY_NAME[name].convert(value))

    @classmethod
    def from_airflow_config(cls) -> DeliveryPolicy:
        """The defaults, overridden by any key set in Airflow's ``[ordo_hooks]`` section."""
        return cls(**{name: _settings.get(name) for name in asdict(cls())})


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


@functools.cache
def _shared_adapter() -> requests.adapters.HTTPAdapter:
    """One connection pool for the process, as HttpNotifier's cached hook keeps one: a receiver's
    connection is reused across deliveries instead of opened for each (urllib3's pools are thread-safe)."""
    from requests.adapters import HTTPAdapter

    return HTTPAdapter()


def _keep_method_on_redirects(session: requests.Session) -> requests.Session:
    """
    Make ``session`` follow only the redirects that keep the request's method: 307 and 308, and
    any redirect of a GET or HEAD. requests turns a POST into a GET on 301/302/303; such a
    redirect is returned to the caller instead of followed.
    """
    follow = session.get_redirect_target

    def get_redirect_target(resp: requests.Response) -> str | None:
        if resp.status_code in (307, 308) or resp.request.method in ("GET", "HEAD"):
            return follow(resp)
        return None

    session.get_redirect_target = get_redirect_target  # requests' documented hook for this choice
    return session


USER_AGENT = f"airflow-ordo-hooks/{__version__}"


def _error_snippet(resp: requests.Response, streamed: bool) -> str:
    """The start of an error answer; a streamed one is read with the request's own timeout (a hung body cannot hold us)."""
    try:
        raw = resp.raw.read1(_ERROR_SNIPPET_BYTES) if streamed else resp.content[:_ERROR_SNIPPET_BYTES]
    except Exception:  # a body that breaks off says nothing more than the status
        return ""
    text = raw.decode("utf-8", errors="replace").strip()
    return f": {text}" if text else ""


def _before_sending(exc: BaseException) -> bool:
    """Whether a connection error happened before the request went out (so the server cannot have acted on it)."""
    import requests
    from urllib3.exceptions import NewConnectionError

    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, NewConnectionError)  # refused, unreachable, name not resolved


def _send(
    session: requests.Session, method: str, url: str, policy: DeliveryPolicy, deadline: float, *, stream: bool, **kwargs: Any
) -> _Outcome:
    """
    One request, bounded by the policy's timeouts and what is left of the budget, classified.

    With ``stream`` the body is never read on success (a delivery needs the status only); without
    it the body is read and the response is in the outcome. Redirects are followed as the session
    allows (see :func:`_keep_method_on_redirects`); the environment (proxies, CA bundle, .netrc)
    is applied by requests itself.
    """
    import requests

    remaining = max(deadline - time.monotonic(), 0.001)
    try:
        resp = session.request(
            method,
            url,
            timeout=(min(policy.connect_timeout, remaining), min(policy.read_timeout, remaining)),
            stream=stream,
            allow_redirects=True,
            **kwargs,
        )
    except (requests.ConnectionError, requests.Timeout) as exc:
        return _Outcome(error=f"{type(exc).__name__}: {_short(exc)}", retryable=True, sent=not _before_sending(exc))
    except requests.RequestException as exc:
        return _Outcome(error=f"{type(exc).__name__}: {_short(exc)}")
    with resp:
        status = resp.status_code
        if 200 <= status < 300:
            if stream and resp.headers.get("Content-Length") == "0":
                resp.content  # noqa: B018 - nothing to wait for: the connection goes back to the pool, not closed
            return _Outcome(status_code=status, response=resp)
        if 300 <= status < 400:
            where = resp.headers.get("Location", "?")
            return _Outcome(
                status_code=status,
                error=f"HTTP {status} redirect to {mask_url(where) if '://' in where else where} not followed: "
                f"following it would turn the {method} into a GET; point the target at the new address",
            )
        outcome = _Outcome(status_code=status, error=f"HTTP {status}{_error_snippet(resp, stream)}", response=resp)
        outcome.retryable = status in _RETRYABLE_STATUS
        if outcome.retryable and "Retry-After" in resp.headers:
            from urllib3.util import Retry

            try:
                outcome.retry_after = Retry().parse_retry_after(resp.headers["Retry-After"])
            except Exception:  # an unreadable Retry-After falls back to our own backoff
                outcome.retry_after = None
        return outcome


def _short(exc: BaseException) -> str:
    text = str(exc)
    return text if len(text) <= 300 else text[:297] + "..."


def _with_retries(
    attempt: Callable[[], _Outcome],
    policy: DeliveryPolicy,
    deadline: float,
    what: str,
    should_retry: Callable[[_Outcome], bool] = lambda outcome: outcome.retryable,
) -> _Outcome:
    """
    Call ``attempt`` and again while ``should_retry`` says so: backoff with jitter or the server's
    Retry-After, at most ``policy.max_attempts`` calls, never a wait that ends past the deadline.
    """
    first = attempt()
    if not should_retry(first) or policy.max_attempts <= 1:
        return first
    import tenacity

    backoff = tenacity.wait_exponential_jitter(
        multiplier=policy.backoff_initial, max=policy.backoff_max, jitter=policy.backoff_jitter
    )
    outcomes = [first]

    def call() -> _Outcome:
        return outcomes.pop() if outcomes else attempt()

    def wait(state: tenacity.RetryCallState) -> float:
        retry_after = state.outcome.result().retry_after
        return retry_after if retry_after is not None else backoff(state)

    def stop(state: tenacity.RetryCallState) -> bool:
        # a wait that would end past the deadline is not started: give up now
        return state.attempt_number >= policy.max_attempts or time.monotonic() + state.upcoming_sleep >= deadline

    def before_sleep(state: tenacity.RetryCallState) -> None:
        log.info(
            "%s: attempt %d failed (%s); retrying in %.1f s",
            what, state.attempt_number, state.outcome.result().error, state.upcoming_sleep,
        )

    return tenacity.Retrying(
        stop=stop,
        wait=wait,
        retry=tenacity.retry_if_result(should_retry),
        before_sleep=before_sleep,
        retry_error_callback=lambda state: state.outcome.result(),
    )(call)
