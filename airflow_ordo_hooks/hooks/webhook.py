"""The one HTTP path of this package: webhook deliveries and the client of Airflow's REST API.

Every webhook goes through :func:`deliver` (or :func:`deliver_all` for the actions of one event).
A delivery never raises: it returns a :class:`DeliveryRecord` saying what happened, and a delivery
that fails for good is logged once, at WARNING, with the URL's secret parts masked.

Both :class:`WebhookHook` (a ``conn:`` target) and :class:`AirflowApiHook` (Airflow's REST API)
are ``HttpHook`` subclasses sending through the one request-and-retry primitive here, bounded by
the ``[ordo_hooks]`` timeouts and budget. They are defined in ``_http_hooks`` and imported on
first use, so that importing this module (a DAG file does, to check targets) stays cheap.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import logging
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow_ordo_hooks import _settings
from airflow_ordo_hooks._version import __version__
from airflow_ordo_hooks.exceptions import TargetError

if TYPE_CHECKING:
    import requests
    import requests.adapters

    from airflow_ordo_hooks.hooks._http_hooks import AirflowApiHook, WebhookHook

log = logging.getLogger(__name__)

CONN_PREFIX = "conn:"
"""A target written ``conn:<conn_id>`` or ``conn:<conn_id>/<endpoint>`` uses an Airflow HTTP connection."""

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


@dataclass(frozen=True)
class DeliveryRecord:
    """What happened to one delivery; ``to_dict()`` is what callers report."""

    target: str
    ok: bool
    status_code: int | None
    attempts: int
    elapsed_ms: int
    error: str | None = None
    webhook_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


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


def mask_url(url: str) -> str:
    """The URL with what may be secret replaced by ``***``: credentials, query, and the path past its first segment."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "<malformed URL>"
    host = parts.hostname or ""
    if port:
        host = f"{host}:{port}"
    if parts.username or parts.password:
        host = f"***@{host}"
    segments = [s for s in parts.path.split("/") if s]
    path = f"/{segments[0]}" if segments else "/"
    if len(segments) > 1:
        path += "/***"
    query = "?***" if parts.query else ""
    return f"{parts.scheme}://{host}{path}{query}"


def check_target(target: object) -> str:
    """
    Return ``target`` if it is a usable webhook target, else raise :class:`TargetError` saying why.

    A target is an ``http://`` or ``https://`` URL with a host, or ``conn:<conn_id>[/<endpoint>]``
    naming an Airflow HTTP connection (so that secrets stay in connections, not in DAG files).
    """
    if not isinstance(target, str) or not target.strip():
        raise TargetError(f"expected a URL or 'conn:<conn_id>', got {target!r}")
    if target != target.strip():
        raise TargetError(f"{target!r} has leading or trailing white space")
    if target.startswith(CONN_PREFIX):
        conn_id = target[len(CONN_PREFIX) :].split("/", 1)[0]
        if not conn_id or not all(c.isalnum() or c in "_-." for c in conn_id):
            raise TargetError(f"{target!r}: expected 'conn:<conn_id>' with a connection id of letters, digits, _ - .")
        return target
    if "{{" in target:  # templated: checked once rendered, when it is sent
        return target
    try:
        parts = urlsplit(target)
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError as exc:
        raise TargetError(f"{target!r} is not a valid URL: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise TargetError(f"{target!r}: expected an http:// or https:// URL, or 'conn:<conn_id>'")
    if not parts.hostname:
        raise TargetError(f"{target!r}: the URL has no host")
    if any(c.isspace() for c in target):
        raise TargetError(f"{target!r}: a URL cannot contain white space")
    return target


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


def _url_session() -> requests.Session:
    import requests

    session = requests.Session()
    session.mount("http://", _shared_adapter())
    session.mount("https://", _shared_adapter())
    return _keep_method_on_redirects(session)


def _resolve(target: str) -> tuple[str, requests.Session, str | None]:
    """``(url, session, signing secret)`` for a target; a ``conn:`` target goes through :class:`WebhookHook`."""
    if not target.startswith(CONN_PREFIX):
        return target, _url_session(), None
    from airflow_ordo_hooks.hooks._http_hooks import WebhookHook

    conn_id, _, endpoint = target[len(CONN_PREFIX) :].partition("/")
    hook = WebhookHook(conn_id)
    session = hook.get_conn()
    return hook.url_from_endpoint(endpoint or None), session, hook.signing_secret


def sign(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    """The Standard Webhooks ``webhook-signature`` value: ``v1,`` + base64 HMAC-SHA256 of ``id.timestamp.body``."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


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


def _encode(payload: Mapping[str, Any] | bytes) -> bytes:
    if isinstance(payload, bytes):
        return payload
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), default=str).encode("utf-8")


def deliver(
    target: str,
    payload: Mapping[str, Any] | bytes,
    *,
    policy: DeliveryPolicy | None = None,
    signing_secret: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> DeliveryRecord:
    """
    POST ``payload`` as JSON to ``target``, within the policy's time budget; never raises.

    :param target: an ``http(s)://`` URL, or ``conn:<conn_id>[/<endpoint>]`` for an Airflow HTTP
        connection (its host, auth and extra headers are used; its extra ``signing_secret`` signs).
    :param payload: a JSON-serialisable mapping, or the exact bytes to send.
    :param policy: timeouts, budget and retries; ``DeliveryPolicy.from_airflow_config()`` if not given.
    :param signing_secret: a Standard Webhooks secret (``whsec_…``): adds ``webhook-id``,
        ``webhook-timestamp`` and ``webhook-signature`` headers.
    :param headers: more headers to send.
    :return: the record of what happened (status code, attempts, elapsed ms, error).
    """
    start = time.monotonic()
    masked = mask_url(target) if isinstance(target, str) and "://" in target else str(target)
    webhook_id = f"msg_{uuid.uuid4().hex}"
    attempts = 0
    signed = False
    try:
        policy = policy or DeliveryPolicy.from_airflow_config()
        check_target(target)
        url, session, conn_secret = _resolve(target)
        masked = mask_url(url)
        secret = signing_secret or conn_secret
        session.max_redirects = policy.max_redirects
        body = _encode(payload)
        send_headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            **(headers or {}),
        }
        if secret:
            send_headers["webhook-id"] = webhook_id
            signed = True
        # The budget is the receiver's: it starts once the target is resolved (the first conn: target
        # of a process imports HttpHook, which took seconds on a loaded machine).
        deadline = time.monotonic() + policy.budget

        def attempt() -> _Outcome:
            nonlocal attempts
            attempts += 1
            sent_headers = send_headers
            if secret:  # each attempt signed afresh: the timestamp is part of the signature
                timestamp = int(time.time())
                sent_headers = {
                    **send_headers,
                    "webhook-timestamp": str(timestamp),
                    "webhook-signature": sign(secret, webhook_id, timestamp, body),
                }
            return _send(session, "POST", url, policy, deadline, stream=True, data=body, headers=sent_headers)

        outcome = _with_retries(attempt, policy, deadline, f"Webhook {masked}")
        error = outcome.error
        if outcome.retryable:
            error = f"{error}; gave up after {attempts} attempt(s) within the {policy.budget:g} s budget"
    except Exception as exc:  # a delivery must never raise into Airflow
        outcome, error = _Outcome(), f"{type(exc).__name__}: {_short(exc)}"
    record = DeliveryRecord(
        target=masked,
        ok=outcome.ok,
        status_code=outcome.status_code,
        attempts=attempts,
        elapsed_ms=round((time.monotonic() - start) * 1000),
        error=None if outcome.ok else error,
        webhook_id=webhook_id if signed else None,
    )
    if record.ok:
        log.info("Webhook %s: delivered, HTTP %d, %d attempt(s), %d ms", masked, record.status_code, attempts, record.elapsed_ms)
    else:
        log.warning("Webhook %s: not delivered after %d attempt(s), %d ms: %s", masked, attempts, record.elapsed_ms, record.error)
    return record


def deliver_all(
    deliveries: Sequence[tuple[str, Mapping[str, Any] | bytes]],
    *,
    policy: DeliveryPolicy | None = None,
) -> list[DeliveryRecord]:
    """
    Deliver several payloads concurrently (the actions of one event); each is bounded by the budget.

    :param deliveries: ``(target, payload)`` pairs.
    :return: one record per pair, in the same order.
    """
    policy = policy or DeliveryPolicy.from_airflow_config()
    if len(deliveries) <= 1:
        return [deliver(t, p, policy=policy) for t, p in deliveries]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(len(deliveries), 8), thread_name_prefix="ordo-hooks") as pool:
        return list(pool.map(lambda pair: deliver(pair[0], pair[1], policy=policy), deliveries))


_HOOKS = {"WebhookHook", "AirflowApiHook"}


def __getattr__(name: str) -> Any:
    # The HttpHook subclasses live apart: importing Airflow's HttpHook costs ~0.4 s, which a DAG
    # file importing check_target, or a delivery to a plain URL, should not pay.
    if name in _HOOKS:
        from airflow_ordo_hooks.hooks import _http_hooks

        return getattr(_http_hooks, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
