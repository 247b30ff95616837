"""Following a redirect, decided a step at a time: where to, with which method, headers and session, or why not.

Only redirects that keep the request's method are followed (307 and 308, and any redirect of a GET
or HEAD), at most ``max_redirects`` of them, to http(s) only; with an egress policy each new
location is checked before it is followed. A redirect to another origin is sent on a session of its
own, with none of the connection's auth, headers and cookies: credentials stay with their origin.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING
from urllib.parse import urljoin

from airflow_ordo_hooks._egress import REFUSED_PREFIX, EgressPolicy
from airflow_ordo_hooks._targets import mask_text, mask_url
from airflow_ordo_hooks.exceptions import EgressRefused
from airflow_ordo_hooks.hooks._connections import _origin, _plain_session
from airflow_ordo_hooks.hooks._policy import DeliveryPolicy, _Outcome, _Request, _short

if TYPE_CHECKING:
    import requests

_CROSS_ORIGIN_HEADERS = frozenset(
    {"accept", "content-type", "user-agent", "webhook-id", "webhook-timestamp", "webhook-signature"}
)
"""The only headers a redirect to another origin carries on: none of a connection's, no credentials."""


def _build_redirect_request(
    request: _Request, status: int, hops: list[str], policy: DeliveryPolicy, egress: EgressPolicy | None
) -> _Request | _Outcome:
    """
    The request that follows ``request``'s redirect (an HTTP ``status``) to ``hops[-1]``, or the
    outcome of not following it. The new request has no query of the URL it leaves (the new
    location has its own).
    """
    location = hops[-1]
    method = _redirect_method(request.method, status)
    if method is None:
        return _not_followed(status, location, f"following it would turn the {request.method} into a GET; "
                             "point the target at the new address")
    if len(hops) - 1 > policy.max_redirects:
        return _not_followed(status, location, f"more than {policy.max_redirects} redirect(s)")
    if _origin(location)[0] not in ("http", "https"):
        return _not_followed(status, location, "only http:// and https:// are")
    refused = _refused_by_egress(egress, hops, status)
    if refused is not None:
        return refused
    cross_origin = _origin(location) != _origin(request.url)
    kwargs = {k: v for k, v in request.kwargs.items() if k != "params"}
    if cross_origin:
        kwargs["headers"] = _redirect_headers(kwargs.get("headers"))
    session = _plain_session(checked=egress is not None) if cross_origin else request.session
    return _Request(session, method, location, kwargs)


def _redirect_url(request: _Request, resp: requests.Response) -> str | None:
    """Where ``resp`` redirects ``request`` to (its ``Location``, read relative to the request's URL); ``None`` if nowhere."""
    status = resp.status_code
    if 300 <= status < 400 and status != 304 and "Location" in resp.headers:
        return urljoin(request.url, resp.headers["Location"])
    return None


def _redirect_method(method: str, status: int) -> str | None:
    """
    The method a redirect (an HTTP ``status``) of a ``method`` request is followed with: its own,
    on a 307 or 308 and on any redirect of a GET or HEAD. ``None`` for any other: requests would
    turn a POST into a GET on a 301, 302 or 303, and such a redirect is returned to the caller
    instead of followed.
    """
    return method if status in (307, 308) or method in ("GET", "HEAD") else None


def _redirect_headers(headers: Mapping[str, str] | None) -> dict[str, str]:
    """The ``headers`` a request carries on to another origin: those of :data:`_CROSS_ORIGIN_HEADERS`."""
    return {k: v for k, v in (headers or {}).items() if k.lower() in _CROSS_ORIGIN_HEADERS}


def _not_followed(status: int, location: str, why: str) -> _Outcome:
    return _Outcome(status_code=status, error=f"HTTP {status} redirect to {mask_url(location)} not followed: {why}")


def _refused_by_egress(egress: EgressPolicy | None, hops: list[str], status: int) -> _Outcome | None:
    """The outcome of a redirect to ``hops[-1]`` that ``egress`` refuses, a final one; ``None`` if it may be followed."""
    if egress is None:
        return None
    try:
        egress.check_url(hops[-1])
    except EgressRefused as exc:
        return _Outcome(error=_short(f"{REFUSED_PREFIX}{mask_text(str(exc), hops)} (an HTTP {status} redirect, not followed)"))
    return None


def _keep_method_on_redirects(session: requests.Session) -> requests.Session:
    """
    Make ``session`` follow only the redirects that keep the request's method (see
    :func:`_redirect_method`), when requests follows them itself.
    """
    follow = session.get_redirect_target

    def get_redirect_target(resp: requests.Response) -> str | None:
        if _redirect_method(resp.request.method, resp.status_code) is not None:
            return follow(resp)
        return None

    session.get_redirect_target = get_redirect_target  # requests' documented hook for this choice
    return session
