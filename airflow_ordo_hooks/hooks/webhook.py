"""The one module that sends HTTP: POST a JSON body to a webhook target, bounded and retried.

Every webhook this package sends goes through :func:`deliver` (or :func:`deliver_all` for the
actions of one event). A delivery never raises: it returns a :class:`DeliveryRecord` saying what
happened, and a delivery that fails for good is logged once, at WARNING, with the URL's secret
parts masked.
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
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow_ordo_hooks import _settings
from airflow_ordo_hooks._version import __version__
from airflow_ordo_hooks.exceptions import TargetError

if TYPE_CHECKING:
    import requests

log = logging.getLogger(__name__)

CONN_PREFIX = "conn:"
"""A target written ``conn:<conn_id>`` or ``conn:<conn_id>/<endpoint>`` uses an Airflow HTTP connection."""

SIGNING_SECRET_EXTRA = "signing_secret"
"""Key in an HTTP connection's extra holding a Standard Webhooks secret (``whsec_…``)."""

_RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504}) | frozenset(range(505, 600))
_ERROR_SNIPPET_BYTES = 300
PAGE_SIZE = 100  # the API server's default [api] maximum_page_limit
_TIMEOUT = (3.0, 10.0)


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
    status_code: int | None = None
    error: str | None = None
    retryable: bool = False
    retry_after: float | None = None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


@dataclass
class _Target:
    url: str
    session: requests.Session
    signing_secret: str | None
    masked: str = field(init=False)
    environment: dict[str, Any] = field(init=False)

    def __post_init__(self) -> None:
        self.masked = mask_url(self.url)
        self.environment = _request_settings(self.session, self.url)


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
def _session_class() -> type[requests.Session]:
    import requests

    class PostKeepingSession(requests.Session):
        # requests turns a POST into a GET on 301/302/303; follow only 307/308, which keep it.
        def get_redirect_target(self, resp):
            return super().get_redirect_target(resp) if resp.status_code in (307, 308) else None

    return PostKeepingSession


def _new_session() -> requests.Session:
    return _session_class()()


@functools.lru_cache(maxsize=128)
def _environment_settings(origin: str) -> dict[str, Any]:
    """
    What requests reads from the environment for requests to ``origin``: proxies (``*_PROXY``,
    ``NO_PROXY``), a CA bundle (``REQUESTS_CA_BUNDLE``), ``.netrc`` credentials.

    requests reads them on every request, scanning all of ``os.environ`` twice, which costs more
    than a whole loopback delivery; a process's environment does not change, so read them once.
    """
    import requests
    from requests.utils import get_netrc_auth

    settings = requests.Session().merge_environment_settings(f"{origin}/", {}, None, None, None)
    return {"proxies": settings["proxies"], "verify": settings["verify"], "auth": get_netrc_auth(f"{origin}/")}


def _request_settings(session: requests.Session, url: str) -> dict[str, Any]:
    """The environment's settings for this request, as requests would apply them (request-level, session below)."""
    if not session.trust_env:
        return {}
    session.trust_env = False  # the settings are passed explicitly instead
    parts = urlsplit(url)
    settings = dict(_environment_settings(f"{parts.scheme}://{parts.netloc}"))
    if session.auth or settings["auth"] is None:
        del settings["auth"]
    if settings["verify"] is None:
        del settings["verify"]
    return settings


def _resolve(target: str) -> _Target:
    if not target.startswith(CONN_PREFIX):
        return _Target(url=target, session=_new_session(), signing_secret=None)
    from airflow.providers.http.hooks.http import HttpHook

    conn_id, _, endpoint = target[len(CONN_PREFIX) :].partition("/")
    hook = HttpHook(method="POST", http_conn_id=conn_id, tcp_keep_alive=False)  # our requests are short
    hook_session = hook.get_conn()
    # HttpHook sends every unknown extra key as a header: keep the secret out of them.
    secret = hook_session.headers.pop(SIGNING_SECRET_EXTRA, None)
    session = _new_session()
    session.__dict__.update(hook_session.__dict__)
    return _Target(url=hook.url_from_endpoint(endpoint or None), session=session, signing_secret=secret)


def sign(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    """The Standard Webhooks ``webhook-signature`` value: ``v1,`` + base64 HMAC-SHA256 of ``id.timestamp.body``."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


USER_AGENT = f"airflow-ordo-hooks/{__version__}"


def _error_snippet(resp: requests.Response) -> str:
    """The start of an error answer, read with the request's own timeout (a hung body cannot hold us)."""
    try:
        raw = resp.raw.read1(_ERROR_SNIPPET_BYTES)
    except Exception:  # a body that breaks off says nothing more than the status
        return ""
    text = raw.decode("utf-8", errors="replace").strip()
    return f": {text}" if text else ""


def _attempt(target: _Target, body: bytes, headers: dict[str, str], policy: DeliveryPolicy, deadline: float) -> _Outcome:
    import requests

    remaining = max(deadline - time.monotonic(), 0.001)
    if target.signing_secret:
        timestamp = int(time.time())
        headers = {
            **headers,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(target.signing_secret, headers["webhook-id"], timestamp, body),
        }
    try:
        resp = target.session.post(
            target.url,
            data=body,
            headers=headers,
            **target.environment,
            timeout=(min(policy.connect_timeout, remaining), min(policy.read_timeout, remaining)),
            stream=True,  # the status is all we need: never wait for a body that may not end
            allow_redirects=True,
        )
    except (requests.ConnectionError, requests.Timeout) as exc:
        return _Outcome(error=f"{type(exc).__name__}: {_short(exc)}", retryable=True)
    except requests.RequestException as exc:
        return _Outcome(error=f"{type(exc).__name__}: {_short(exc)}")
    with resp:
        status = resp.status_code
        if 200 <= status < 300:
            return _Outcome(status_code=status)
        if 300 <= status < 400:
            where = resp.headers.get("Location", "?")
            return _Outcome(
                status_code=status,
                error=f"HTTP {status} redirect to {mask_url(where) if '://' in where else where} not followed: "
                "following it would turn the POST into a GET; point the target at the new address",
            )
        outcome = _Outcome(status_code=status, error=f"HTTP {status}{_error_snippet(resp)}")
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


def _encode(payload: Mapping[str, Any] | bytes) -> bytes:
    if isinstance(payload, bytes):
        return payload
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), default=str).encode("utf-8")


def _retry(attempt: Callable[[], _Outcome], first: _Outcome, policy: DeliveryPolicy, deadline: float, masked: str) -> _Outcome:
    """Retry after a retryable first outcome: backoff with jitter or the receiver's Retry-After, never past the deadline."""
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
            "Webhook %s: attempt %d failed (%s); retrying in %.1f s",
            masked, state.attempt_number, state.outcome.result().error, state.upcoming_sleep,
        )

    return tenacity.Retrying(
        stop=stop,
        wait=wait,
        retry=tenacity.retry_if_result(lambda outcome: outcome.retryable),
        before_sleep=before_sleep,
        retry_error_callback=lambda state: state.outcome.result(),
    )(call)


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
        resolved = _resolve(target)
        masked = resolved.masked
        secret = signing_secret or resolved.signing_secret
        resolved.signing_secret = secret
        resolved.session.max_redirects = policy.max_redirects
        body = _encode(payload)
        send_headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            **(headers or {}),
        }
        if secret:
            send_headers["webhook-id"] = webhook_id
            signed = True
        deadline = start + policy.budget

        def attempt() -> _Outcome:
            nonlocal attempts
            attempts += 1
            return _attempt(resolved, body, send_headers, policy, deadline)

        outcome = attempt()
        if outcome.retryable and policy.max_attempts > 1:
            outcome = _retry(attempt, outcome, policy, deadline, masked)
        resolved.session.close()
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


class AirflowApiHook:
    """A small client of Airflow's public REST API v2 over an HTTP connection; every request bounded."""

    def __init__(self, conn_id: str) -> None:
        from airflow.providers.http.hooks.http import HttpHook

        hook = HttpHook(method="GET", http_conn_id=conn_id, tcp_keep_alive=False)
        self.session = hook.get_conn()
        self.base = hook.url_from_endpoint("").rstrip("/")
        conn = hook.get_connection(conn_id)
        token = conn.extra_dejson.get("token")
        self.session.headers.pop("token", None)  # HttpHook sends extra keys as headers
        if not token and conn.login:
            response = self.session.post(
                f"{self.base}/auth/token", json={"username": conn.login, "password": conn.password}, timeout=_TIMEOUT
            )
            response.raise_for_status()
            token = response.json()["access_token"]
        self.session.auth = None
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def get(self, path: str, **params: Any) -> Any:
        response = self.session.get(f"{self.base}{path}", params=params, timeout=_TIMEOUT)
        response.raise_for_status()
        return response.json()

    def post(self, path: str, body: Any) -> Any:
        response = self.session.post(f"{self.base}{path}", json=body, timeout=_TIMEOUT)
        if response.status_code >= 400:
            raise RuntimeError(f"POST {path}: HTTP {response.status_code}: {response.text[:300]}")
        return response.json()

    def text(self, path: str, **params: Any) -> str:
        """The body of a GET as text (a task log, for example)."""
        response = self.session.get(f"{self.base}{path}", params=params, headers={"Accept": "text/plain"}, timeout=_TIMEOUT)
        response.raise_for_status()
        return response.text

    def pages(self, path: str, key: str, **params: Any) -> Iterator[dict[str, Any]]:
        offset = 0
        while True:
            page = self.get(path, limit=PAGE_SIZE, offset=offset, **params)
            yield from page[key]
            offset += len(page[key])
            if not page[key] or offset >= page.get("total_entries", 0):
                return
