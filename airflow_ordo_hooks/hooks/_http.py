"""The request-and-retry primitive every hook of this package sends through, bounded by the ``[ordo_hooks]`` policy.

One request (:func:`_send`) is bounded by the policy's connect and read timeouts and by a deadline
that holds whatever the receiver does (see :class:`_DeadlineSocket`); it follows redirects itself,
so that each hop can be checked and credentials stay with their origin. :func:`_with_retries`
retries connection errors, timeouts, 429 and 5xx with backoff and jitter, honouring
``Retry-After``, never past the deadline.

A request to a URL the operator did not choose carries an egress policy (:mod:`airflow_ordo_hooks._egress`):
it goes through connection pools of its own, whose connections check the address they reached
before sending a byte (TLS included), on every hop and every reuse, and go direct unless
``[ordo_hooks] egress_proxy`` lets them through the environment's proxy.
"""

from __future__ import annotations

import contextvars
import functools
import io
import logging
import os
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

from airflow_ordo_hooks import _settings
from airflow_ordo_hooks._egress import REFUSED_PREFIX, EgressPolicy
from airflow_ordo_hooks._targets import mask_text, mask_url, read_url
from airflow_ordo_hooks._version import __version__
from airflow_ordo_hooks.exceptions import EgressRefused, TargetError

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


_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar("ordo_hooks_deadline", default=None)
"""The ``time.monotonic()`` deadline of the request this thread is sending, set by :func:`_send`."""
_EGRESS: contextvars.ContextVar[EgressPolicy | None] = contextvars.ContextVar("ordo_hooks_egress", default=None)
"""The egress policy of the request this thread is sending, set by :func:`_send`; ``None`` for the operator's own targets."""
_STRICT = EgressPolicy()
"""The policy of a checked connection used outside :func:`_send`: public addresses only, no proxy."""


class _DeadlineSocket:
    """
    A connected socket (plain or TLS) whose every send and receive waits no longer than its own
    timeout and what is left until the current request's deadline, and fails past it: the read
    timeout bounds one socket read, so without this a receiver sending a byte every few seconds
    would hold a request for ever. Pooled connections keep the wrapper; outside :func:`_send`
    there is no deadline and it behaves as the socket it wraps.
    """

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._timeout = sock.gettimeout()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)

    def settimeout(self, timeout: float | None) -> None:
        self._timeout = timeout
        self._sock.settimeout(timeout)

    def gettimeout(self) -> float | None:
        return self._timeout

    def _arm(self) -> None:
        deadline = _DEADLINE.get()
        if deadline is None:
            self._sock.settimeout(self._timeout)
            return
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the time budget ran out")
        self._sock.settimeout(left if self._timeout is None else min(self._timeout, left))

    def recv(self, *args: Any) -> bytes:
        self._arm()
        return self._sock.recv(*args)

    def recv_into(self, *args: Any) -> int:
        self._arm()
        return self._sock.recv_into(*args)

    def send(self, data: Any, *args: Any) -> int:
        self._arm()
        return self._sock.send(data, *args)

    def sendall(self, data: Any) -> None:
        view = memoryview(data).cast("B")
        while view:
            view = view[self.send(view) :]

    def makefile(self, mode: str = "r", buffering: int | None = None, **_: Any) -> io.BufferedReader:
        # http.client reads an answer through sock.makefile("rb"): read through this wrapper too
        if mode.replace("b", "") != "r":
            raise ValueError(f"unsupported mode {mode!r}")
        return io.BufferedReader(socket.SocketIO(self, "rb"), buffering or io.DEFAULT_BUFFER_SIZE)  # type: ignore[arg-type]

    def _decref_socketios(self) -> None:
        pass  # closing the answer's file leaves the connection's socket to the connection


def _check_peer(conn: Any, sock: Any, checked: bool) -> None:
    """
    Raise :class:`EgressRefused` unless ``conn``, connected through ``sock``, may carry the
    request in flight: the address it reached (not the one a resolver gave earlier) is checked
    against the request's egress policy. A connection to a proxy is refused unless the policy lets
    the proxy through, which then resolves and connects on its own.
    """
    policy = _EGRESS.get()
    if policy is None:
        if not checked:
            return
        policy = _STRICT
    if conn.proxy is not None:
        if policy.proxy:
            return
        raise EgressRefused("the request would go through a proxy, which [ordo_hooks] egress_proxy does not allow")
    policy.check_peer(conn.host, sock.getpeername()[0])


@functools.cache
def _pool_classes(checked: bool) -> dict[str, type]:
    """
    urllib3's pools with connections that keep :func:`_send`'s deadline and check the peer of a
    request with an egress policy: right after the TCP connect, before TLS or any byte (urllib3's
    ``connect`` of both classes opens the socket with ``_new_conn`` first), and again before each
    request on a reused connection. ``checked`` connections check with the strict policy when
    none is set.
    """
    from urllib3.connection import HTTPConnection, HTTPSConnection
    from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

    def bounded(base: type) -> type:
        def _new_conn(self: Any) -> Any:
            sock = base._new_conn(self)
            try:
                _check_peer(self, sock, checked)
            except BaseException:
                sock.close()
                raise
            return sock

        def connect(self: Any) -> None:
            base.connect(self)
            self.sock = _DeadlineSocket(self.sock)

        def request(self: Any, *args: Any, **kwargs: Any) -> None:
            if self.sock is not None:  # a kept-alive connection, for a request with a policy of its own
                _check_peer(self, self.sock, checked)
            base.request(self, *args, **kwargs)

        # the same name: errors read as urllib3's
        return type(base.__name__, (base,), {"_new_conn": _new_conn, "connect": connect, "request": request})

    return {
        "http": type("HTTPConnectionPool", (HTTPConnectionPool,), {"ConnectionCls": bounded(HTTPConnection)}),
        "https": type("HTTPSConnectionPool", (HTTPSConnectionPool,), {"ConnectionCls": bounded(HTTPSConnection)}),
    }


def _shared_adapter() -> requests.adapters.HTTPAdapter:
    """One connection pool for the process, as HttpNotifier's cached hook keeps one: a receiver's
    connection is reused across deliveries instead of opened for each (urllib3's pools are thread-safe).
    Its connections honour the deadline of :func:`_send` (see :class:`_DeadlineSocket`)."""
    return _adapter(False)


def _checked_adapter() -> requests.adapters.HTTPAdapter:
    """The process's pool of requests with an egress policy, apart from :func:`_shared_adapter`'s,
    so that a connection opened for the operator's own target is never reused for them unchecked;
    they go direct unless the policy lets them through the environment's proxy."""
    return _adapter(True)


@functools.cache
def _adapter(checked: bool) -> requests.adapters.HTTPAdapter:
    from requests.adapters import HTTPAdapter

    class DeadlineAdapter(HTTPAdapter):
        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            super().init_poolmanager(*args, **kwargs)
            self.poolmanager.pool_classes_by_scheme = _pool_classes(checked)

        def proxy_manager_for(self, proxy: str, **kwargs: Any) -> Any:
            manager = super().proxy_manager_for(proxy, **kwargs)
            if not proxy.lower().startswith("socks"):  # a SOCKS proxy brings connection classes of its own
                manager.pool_classes_by_scheme = _pool_classes(checked)
            return manager

        def send(self, request: Any, *args: Any, **kwargs: Any) -> Any:
            if checked and not (_EGRESS.get() or _STRICT).proxy:
                kwargs["proxies"] = {}  # whatever HTTP(S)_PROXY, ALL_PROXY or the session say
            return super().send(request, *args, **kwargs)

    return DeadlineAdapter()


def _plain_session(checked: bool = False) -> requests.Session:
    """A session with nothing of a connection's (no auth, headers or cookies), on the shared pool
    (``checked``: on the pool of requests with an egress policy)."""
    import requests

    session = requests.Session()
    adapter = _checked_adapter() if checked else _shared_adapter()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return _remember_environment(session)


_ENVIRONMENT = (
    "http_proxy", "https_proxy", "all_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY",
    "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "REQUEST_METHOD",
)
"""The environment variables requests reads for a request's proxies and CA bundle, as its documentation names them."""

_MERGED: dict[tuple, dict[str, Any]] = {}
"""requests' environment settings by origin, environment and session settings (see :func:`_remember_environment`)."""


def _frozen(value: Any) -> Any:
    return tuple(sorted(value.items())) if isinstance(value, dict) else value


def _remember_environment(session: requests.Session) -> requests.Session:
    """
    Have ``session`` resolve the environment's settings for a request (proxies and ``no_proxy``, CA
    bundle) with requests' own ``merge_environment_settings``, once per origin and value of the
    variables that decide them, not on every request: requests scans the whole environment twice a
    request for it, a third of a loopback delivery's time.
    """
    if getattr(session, "_ordo_remembers_environment", False) or not session.trust_env:
        return session
    merge = session.merge_environment_settings

    def merge_environment_settings(url: str, proxies: Any, stream: Any, verify: Any, cert: Any) -> dict[str, Any]:
        key = (
            _origin(url), tuple(map(os.environ.get, _ENVIRONMENT)), _frozen(proxies), stream, verify, _frozen(cert),
            _frozen(session.proxies), session.stream, session.verify, _frozen(session.cert), session.trust_env,
        )
        try:
            settings = _MERGED[key]
        except TypeError:  # a setting that cannot be a key: nothing to remember
            return merge(url, proxies, stream, verify, cert)
        except KeyError:
            if len(_MERGED) >= 256:
                _MERGED.clear()
            settings = _MERGED[key] = merge(url, proxies, stream, verify, cert)
        return {**settings, "proxies": dict(settings["proxies"])}

    session.merge_environment_settings = merge_environment_settings
    session._ordo_remembers_environment = True
    return session


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


_CROSS_ORIGIN_HEADERS = frozenset(
    {"accept", "content-type", "user-agent", "webhook-id", "webhook-timestamp", "webhook-signature"}
)
"""The only headers a redirect to another origin carries on: none of a connection's, no credentials."""


def _origin(url: str) -> tuple[str, str, int | None]:
    """``(scheme, host, port)`` as the connection reads ``url``; ``("", url, None)`` for one it cannot read."""
    try:
        return read_url(url).origin
    except TargetError:
        return "", url, None


def _send(
    session: requests.Session,
    method: str,
    url: str,
    policy: DeliveryPolicy,
    deadline: float,
    *,
    stream: bool,
    egress: EgressPolicy | None = None,
    **kwargs: Any,
) -> _Outcome:
    """
    One request, bounded by the policy's timeouts and, whatever the receiver does, by ``deadline``; classified.

    With ``stream`` the body is never read on success (a delivery needs the status only); without
    it the body is read and the response is in the outcome. Redirects are followed here, at most
    ``policy.max_redirects``: 307 and 308 (and any of a GET), which keep the method; each new
    location must be http(s); one on another origin is sent with a session of its own, without
    the connection's auth, headers and cookies. Every error text is masked (:func:`mask_text`)
    with every URL of the chain. The environment (proxies, CA bundle, .netrc) is applied by
    requests itself (see :func:`_remember_environment`).

    With ``egress`` (a URL the operator did not choose; ``session`` must be on the checked pool,
    :func:`_plain_session`), every location is checked before it is followed and every connection
    checks the address it reached; a refusal is a final outcome whose error begins
    :data:`~airflow_ordo_hooks._egress.REFUSED_PREFIX`.
    """
    token, egress_token = _DEADLINE.set(deadline), _EGRESS.set(egress)
    hops = [url]
    _remember_environment(session)
    try:
        return _follow(session, method, hops, policy, deadline, stream, egress, kwargs)
    finally:
        _EGRESS.reset(egress_token)
        _DEADLINE.reset(token)


def _follow(
    session: requests.Session,
    method: str,
    hops: list[str],
    policy: DeliveryPolicy,
    deadline: float,
    stream: bool,
    egress: EgressPolicy | None,
    kwargs: dict[str, Any],
) -> _Outcome:
    import requests
    from urllib.parse import urljoin

    while True:
        url = hops[-1]
        remaining = max(deadline - time.monotonic(), 0.001)
        try:
            resp = session.request(
                method,
                url,
                timeout=(min(policy.connect_timeout, remaining), min(policy.read_timeout, remaining)),
                stream=stream,
                allow_redirects=False,
                **kwargs,
            )
        except EgressRefused as exc:  # raised by the connection, before a byte was sent
            return _Outcome(error=_short(f"{REFUSED_PREFIX}{mask_url(url)}: {exc}"), sent=len(hops) > 1)
        except (requests.ConnectionError, requests.Timeout) as exc:
            sent = len(hops) > 1 or not _before_sending(exc)
            return _Outcome(error=_error(exc, hops), retryable=True, sent=sent)
        except requests.RequestException as exc:
            return _Outcome(error=_error(exc, hops), sent=len(hops) > 1)
        with resp:
            status = resp.status_code
            if 300 <= status < 400 and status != 304 and "Location" in resp.headers:
                hops.append(urljoin(url, resp.headers["Location"]))
                where = mask_url(hops[-1])
                if status not in (307, 308) and method not in ("GET", "HEAD"):
                    return _Outcome(
                        status_code=status,
                        error=f"HTTP {status} redirect to {where} not followed: "
                        f"following it would turn the {method} into a GET; point the target at the new address",
                    )
                if len(hops) - 1 > policy.max_redirects:
                    return _Outcome(status_code=status, error=f"HTTP {status} redirect to {where} not followed: "
                                    f"more than {policy.max_redirects} redirect(s)")
                if _origin(hops[-1])[0] not in ("http", "https"):
                    return _Outcome(status_code=status, error=f"HTTP {status} redirect to {where} not followed: "
                                    "only http:// and https:// are")
                if egress is not None:
                    try:
                        egress.check_url(hops[-1])
                    except EgressRefused as exc:
                        return _Outcome(error=_short(f"{REFUSED_PREFIX}{mask_text(str(exc), hops)} "
                                                     f"(an HTTP {status} redirect, not followed)"))
                kwargs.pop("params", None)  # the new location has its own query
                if _origin(hops[-1]) != _origin(url):
                    session = _plain_session(checked=egress is not None)
                    headers = kwargs.get("headers") or {}
                    kwargs["headers"] = {k: v for k, v in headers.items() if k.lower() in _CROSS_ORIGIN_HEADERS}
                continue
            if 200 <= status < 300:
                if stream and resp.headers.get("Content-Length") == "0":
                    resp.content  # noqa: B018 - nothing to wait for: the connection goes back to the pool, not closed
                return _Outcome(status_code=status, response=resp)
            snippet = mask_text(_error_snippet(resp, stream), hops)
            outcome = _Outcome(status_code=status, error=f"HTTP {status}{snippet}", response=resp)
            outcome.retryable = status in _RETRYABLE_STATUS
            if outcome.retryable and "Retry-After" in resp.headers:
                from urllib3.util import Retry

                try:
                    outcome.retry_after = Retry().parse_retry_after(resp.headers["Retry-After"])
                except Exception:  # an unreadable Retry-After falls back to our own backoff
                    outcome.retry_after = None
            return outcome


def _error(exc: BaseException, urls: Iterable[str]) -> str:
    """An exception as an error text: its type and message, shortened, every URL of ``urls`` masked."""
    return _short(mask_text(f"{type(exc).__name__}: {exc}", urls))  # masked first: a cut URL would not be found


def _short(text: str) -> str:
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
    Retry-After, at most ``policy.max_attempts`` calls. An attempt is not started unless the time
    left after its wait is at least what the last attempt took: one that cannot finish would be cut
    by the deadline, and its receiver would get half a request.
    """
    took = [0.0]  # seconds the last attempt took

    def timed() -> _Outcome:
        started = time.monotonic()
        try:
            return attempt()
        finally:
            took[0] = time.monotonic() - started

    first = timed()
    if not should_retry(first) or policy.max_attempts <= 1 or time.monotonic() + took[0] >= deadline:
        return first  # nothing more to do: tenacity is not even imported
    import tenacity

    backoff = tenacity.wait_exponential_jitter(
        multiplier=policy.backoff_initial, max=policy.backoff_max, jitter=policy.backoff_jitter
    )
    outcomes = [first]

    def call() -> _Outcome:
        return outcomes.pop() if outcomes else timed()

    def wait(state: tenacity.RetryCallState) -> float:
        retry_after = state.outcome.result().retry_after
        return retry_after if retry_after is not None else backoff(state)

    def stop(state: tenacity.RetryCallState) -> bool:
        # an attempt that would end past the deadline is not waited for: give up now
        ends = time.monotonic() + state.upcoming_sleep + took[0]
        return state.attempt_number >= policy.max_attempts or ends >= deadline

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
