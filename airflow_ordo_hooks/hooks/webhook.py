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
import hashlib
import hmac
import json
import logging
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from airflow_ordo_hooks._targets import CONN_PREFIX, check_target, mask_url
from airflow_ordo_hooks.exceptions import TargetError
from airflow_ordo_hooks.hooks._http import (
    USER_AGENT,
    DeliveryPolicy,
    _keep_method_on_redirects,
    _Outcome,
    _send,
    _shared_adapter,
    _short,
    _with_retries,
)

if TYPE_CHECKING:
    import requests
    import requests.adapters

    from airflow_ordo_hooks.hooks._http_hooks import AirflowApiHook, WebhookHook

log = logging.getLogger(__name__)

__all__ = [
    "CONN_PREFIX",
    "AirflowApiHook",
    "DeliveryPolicy",
    "DeliveryRecord",
    "TargetError",
    "WebhookHook",
    "check_target",
    "deliver",
    "deliver_all",
    "mask_url",
    "sign",
]

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
