"""The request-and-retry primitive every hook of this package sends through, bounded by the ``[ordo_hooks]`` policy.

One request (:func:`_send`) is bounded by the policy's connect and read timeouts and by a deadline
that holds whatever the receiver does; it follows redirects itself, so that each hop can be checked
and credentials stay with their origin. :func:`_with_retries` retries connection errors, timeouts,
429 and 5xx with backoff and jitter, honouring ``Retry-After``, never past the deadline.

Each step has a module of its own, and the hooks import what they use of them from here:
:mod:`~airflow_ordo_hooks.hooks._policy` (a request, its policy and its outcome),
:mod:`~airflow_ordo_hooks.hooks._connections` (sockets that keep the deadline, pools that check
where they connect, sessions on them), :mod:`~airflow_ordo_hooks.hooks._redirects` (following a
redirect, or not) and :mod:`~airflow_ordo_hooks.hooks._retries` (trying again).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from airflow_ordo_hooks._egress import REFUSED_PREFIX, EgressPolicy
from airflow_ordo_hooks._targets import mask_text, mask_url
from airflow_ordo_hooks._version import __version__
from airflow_ordo_hooks.exceptions import EgressRefused
from airflow_ordo_hooks.hooks._connections import _plain_session, _remember_environment, _sending, _shared_adapter
from airflow_ordo_hooks.hooks._policy import DeliveryPolicy, _error, _Outcome, _Request, _short
from airflow_ordo_hooks.hooks._redirects import _build_redirect_request, _keep_method_on_redirects, _redirect_url
from airflow_ordo_hooks.hooks._retries import _with_retries

if TYPE_CHECKING:
    import requests

# what the hooks use of the HTTP layer, imported from here wherever it lives
__all__ = [
    "SIGNING_SECRET_EXTRA", "USER_AGENT", "DeliveryPolicy", "_Outcome", "_error", "_keep_method_on_redirects",
    "_plain_session", "_send", "_shared_adapter", "_short", "_with_retries",
]

SIGNING_SECRET_EXTRA = "signing_secret"
"""Key in an HTTP connection's extra holding a Standard Webhooks secret (``whsec_…``)."""

USER_AGENT = f"airflow-ordo-hooks/{__version__}"

_RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504}) | frozenset(range(505, 600))
_ERROR_SNIPPET_BYTES = 300


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
    _remember_environment(session)
    with _sending(deadline, egress):
        return _follow(_Request(session, method, url, kwargs), policy, deadline, stream, egress)


def _follow(
    request: _Request, policy: DeliveryPolicy, deadline: float, stream: bool, egress: EgressPolicy | None
) -> _Outcome:
    """Send ``request``, and the request following each redirect it gets that may be followed: the last one's outcome."""
    hops = [request.url]
    while True:
        resp = _request_once(request, policy, deadline, stream, hops)
        if isinstance(resp, _Outcome):
            return resp
        with resp:
            location = _redirect_url(request, resp)
            if location is None:
                return _answer(resp, stream, hops)
            hops.append(location)
            followed = _build_redirect_request(request, resp.status_code, hops, policy, egress)
            if isinstance(followed, _Outcome):
                return followed
            request = followed


def _request_once(
    request: _Request, policy: DeliveryPolicy, deadline: float, stream: bool, hops: list[str]
) -> requests.Response | _Outcome:
    """
    ``request``'s response, its redirect not followed, within the policy's timeouts cut to the time
    left; or the outcome of its failure (masked with every URL of the chain, ``hops``).
    """
    import requests

    remaining = max(deadline - time.monotonic(), 0.001)
    try:
        return request.session.request(
            request.method,
            request.url,
            timeout=(min(policy.connect_timeout, remaining), min(policy.read_timeout, remaining)),
            stream=stream,
            allow_redirects=False,
            **request.kwargs,
        )
    except EgressRefused as exc:  # raised by the connection, before a byte was sent
        return _Outcome(error=_short(f"{REFUSED_PREFIX}{mask_url(request.url)}: {exc}"), sent=len(hops) > 1)
    except (requests.ConnectionError, requests.Timeout) as exc:
        sent = len(hops) > 1 or not _before_sending(exc)
        return _Outcome(error=_error(exc, hops), retryable=True, sent=sent)
    except requests.RequestException as exc:
        return _Outcome(error=_error(exc, hops), sent=len(hops) > 1)


def _answer(resp: requests.Response, stream: bool, hops: Iterable[str]) -> _Outcome:
    """The outcome of a response that is not a redirect to follow: a success, or an error that may be retried."""
    status = resp.status_code
    if 200 <= status < 300:
        if stream and resp.headers.get("Content-Length") == "0":
            resp.content  # noqa: B018 - nothing to wait for: the connection goes back to the pool, not closed
        return _Outcome(status_code=status, response=resp)
    snippet = mask_text(_error_snippet(resp, stream), hops)
    retryable = status in _RETRYABLE_STATUS
    return _Outcome(
        status_code=status,
        error=f"HTTP {status}{snippet}",
        retryable=retryable,
        retry_after=_retry_after(resp) if retryable else None,
        response=resp,
    )


def _retry_after(resp: requests.Response) -> float | None:
    """The seconds the response's ``Retry-After`` asks to wait; ``None`` without one, or for one that cannot be read
    (our own backoff then applies)."""
    if "Retry-After" not in resp.headers:
        return None
    from urllib3.util import Retry

    try:
        return Retry().parse_retry_after(resp.headers["Retry-After"])
    except Exception:  # an unreadable Retry-After falls back to our own backoff
        return None


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
