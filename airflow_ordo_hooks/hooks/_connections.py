"""The connections every request goes through: sockets that keep its deadline, pools that check where they connect.

Every connection's socket keeps the deadline of the request it carries (:class:`_DeadlineSocket`),
so that the policy's budget holds whatever the receiver does. A request to a URL the operator did
not choose carries an egress policy (:mod:`airflow_ordo_hooks._egress`): it goes through connection
pools of its own, whose connections check the address they reached before sending a byte (TLS
included), on every hop and every reuse, and go direct unless ``[ordo_hooks] egress_proxy`` lets
them through the environment's proxy. A request is sent within :func:`_sending`, which says both.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import io
import os
import socket
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from airflow_ordo_hooks._egress import EgressPolicy
from airflow_ordo_hooks._targets import read_url
from airflow_ordo_hooks.exceptions import EgressRefused, TargetError

if TYPE_CHECKING:
    import requests
    import requests.adapters

_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar("ordo_hooks_deadline", default=None)
"""The ``time.monotonic()`` deadline of the request this thread is sending, set by :func:`_sending`."""
_EGRESS: contextvars.ContextVar[EgressPolicy | None] = contextvars.ContextVar("ordo_hooks_egress", default=None)
"""The egress policy of the request this thread is sending, set by :func:`_sending`; ``None`` for the operator's own targets."""
_STRICT = EgressPolicy()
"""The policy of a checked connection used outside :func:`_sending`: public addresses only, no proxy."""


@contextlib.contextmanager
def _sending(deadline: float, egress: EgressPolicy | None) -> Iterator[None]:
    """Send this thread's request within: every socket it uses keeps ``deadline``, every connection checks ``egress``."""
    token, egress_token = _DEADLINE.set(deadline), _EGRESS.set(egress)
    try:
        yield
    finally:
        _EGRESS.reset(egress_token)
        _DEADLINE.reset(token)


class _DeadlineSocket:
    """
    A connected socket (plain or TLS) whose every send and receive waits no longer than its own
    timeout and what is left until the current request's deadline, and fails past it: the read
    timeout bounds one socket read, so without this a receiver sending a byte every few seconds
    would hold a request for ever. Pooled connections keep the wrapper; outside :func:`_sending`
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
    urllib3's pools with connections that keep the deadline of :func:`_sending` and check the peer of a
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
    Its connections honour the deadline of :func:`_sending` (see :class:`_DeadlineSocket`)."""
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
    request for it.
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


def _origin(url: str) -> tuple[str, str, int | None]:
    """``(scheme, host, port)`` as the connection reads ``url``; ``("", url, None)`` for one it cannot read."""
    try:
        return read_url(url).origin
    except TargetError:
        return "", url, None
