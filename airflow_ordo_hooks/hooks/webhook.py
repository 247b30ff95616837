"""The one HTTP path of this package: webhook deliveries and the client of Airflow's REST API.

Every webhook goes through :func:`deliver` (or :func:`deliver_all` for the actions of one event).
A delivery never raises: it returns a :class:`DeliveryRecord` saying what happened, and a delivery
that fails for good is logged once, at WARNING. Every text it writes names a URL by
:func:`mask_url` only (``https://hooks.slack.com/…#3f9a1c``).

Both :class:`WebhookHook` (a ``conn:`` target, an ``HttpHook``) and :class:`AirflowApiHook`
(Airflow's REST API) send through the one request-and-retry primitive here, bounded by the
``[ordo_hooks]`` timeouts and budget. They are defined in ``_http_hooks`` and ``airflow_api`` and
imported on first use, so that importing this module (a DAG file does, to check targets) stays cheap.
"""

from __future__ import annotations

import json
import logging
import math
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from airflow_ordo_hooks._egress import REFUSED_PREFIX, EgressPolicy
from airflow_ordo_hooks._targets import CONN_PREFIX, check_target, mask_text, mask_url
from airflow_ordo_hooks.exceptions import EgressRefused, TargetError
from airflow_ordo_hooks.hooks._http import (
    USER_AGENT,
    DeliveryPolicy,
    _error,
    _Outcome,
    _plain_session,
    _send,
    _short,
    _with_retries,
)
from airflow_ordo_hooks.hooks._signing import _mask_secret, _signature, _signing_key, sign

if TYPE_CHECKING:
    import requests
    import requests.adapters

    from airflow_ordo_hooks.hooks._http_hooks import WebhookHook
    from airflow_ordo_hooks.hooks.airflow_api import AirflowApiHook

log = logging.getLogger(__name__)

__all__ = [
    "CONN_PREFIX",
    "AirflowApiHook",
    "DeliveryPolicy",
    "DeliveryRecord",
    "EgressPolicy",
    "EgressRefused",
    "REFUSED_PREFIX",
    "TargetError",
    "WebhookHook",
    "check_target",
    "deliver",
    "deliver_all",
    "encode",
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
    attempt_log: tuple[dict[str, Any], ...] = ()
    """Each attempt: ``at`` (ISO 8601 UTC), ``status_code``, ``error`` (masked), ``elapsed_ms``."""
    signed: bool = False
    """Whether the requests carried a Standard Webhooks signature (a secret given, or the connection's)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _resolve(target: str, checked: bool) -> tuple[str, requests.Session, str | None]:
    """``(url, session, signing secret)`` for a target; a ``conn:`` target goes through :class:`WebhookHook`;
    ``checked``: a URL on the pool of requests with an egress policy."""
    if not target.startswith(CONN_PREFIX):
        return target, _plain_session(checked), None
    from airflow_ordo_hooks.hooks._http_hooks import WebhookHook

    conn_id, _, endpoint = target[len(CONN_PREFIX) :].partition("/")
    hook = WebhookHook(conn_id)
    session = hook.get_conn()
    return hook.url_from_endpoint(endpoint or None), session, hook.signing_secret


def _clean(value: Any) -> Any:
    """``value`` with text that is not Unicode made so (U+FFFD) and non-finite numbers made null, throughout."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
            return value
        except UnicodeEncodeError:  # lone surrogates, as os.fsdecode makes of undecodable bytes
            return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):  # keys as json.dumps writes them, cleaned the same way
        return {_clean(k if isinstance(k, (str, int, float)) or k is None else str(k)): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def encode(payload: Mapping[str, Any] | bytes) -> bytes:
    """The JSON body of ``payload`` (bytes as they are): always valid UTF-8 JSON, never ``NaN``."""
    if isinstance(payload, bytes):
        return payload
    text = json.dumps(_clean(payload), ensure_ascii=False, separators=(",", ":"), allow_nan=False,
                      default=lambda o: _clean(str(o)))
    return text.encode("utf-8")


def deliver(
    target: str,
    payload: Mapping[str, Any] | bytes,
    *,
    policy: DeliveryPolicy | None = None,
    signing_secret: str | None = None,
    headers: Mapping[str, str] | None = None,
    untrusted: bool = False,
    webhook_id: str | None = None,
) -> DeliveryRecord:
    """
    POST ``payload`` as JSON to ``target``, within the policy's time budget; never raises.

    :param target: an ``http(s)://`` URL, or ``conn:<conn_id>[/<endpoint>]`` for an Airflow HTTP
        connection (its host, auth and extra headers are used; its extra ``signing_secret`` signs).
    :param payload: a JSON-serialisable mapping, or the exact bytes to send. Text that is not
        valid Unicode is sent as U+FFFD, NaN and infinities as ``null``.
    :param policy: timeouts, budget and retries; ``DeliveryPolicy.from_airflow_config()`` if not given.
    :param signing_secret: a Standard Webhooks secret (``whsec_…``): adds ``webhook-id``,
        ``webhook-timestamp`` and ``webhook-signature`` headers.
    :param headers: more headers to send (not sent on past a redirect to another origin).
    :param webhook_id: the delivery's ``webhook-id`` header, the same on every attempt (and on every
        redelivery of the same event to the same target, so that a receiver can drop duplicates);
        a new random one if not given.
    :param untrusted: ``target`` comes from someone who may not choose where we connect (a run's
        conf, a delivery the API server sends): it must be an ``http(s)://`` URL that every parser
        reads alike, and every address connected to, on every redirect, must be public or allowed
        by ``[ordo_hooks] allowed_hosts`` (the egress policy, checked on the address the connection
        reached); it goes through the environment's proxy only with ``[ordo_hooks] egress_proxy``.
        Else the delivery is refused and not retried: ``ok`` false, no status code, an error
        beginning with ``"refused by egress policy: "`` (``_egress.REFUSED_PREFIX``).
    :return: the record of what happened (status code, attempts, elapsed ms, error).
    """
    delivery = _Delivery(target, webhook_id or f"msg_{uuid.uuid4().hex}")
    try:
        prepared = _prepare(delivery, payload, policy, signing_secret, headers, untrusted)
        outcome = _with_retries(
            lambda: _attempt(prepared, delivery), prepared.policy, prepared.deadline, f"Webhook {delivery.masked}"
        )
        error = outcome.error
        if outcome.retryable:
            error = f"{error}; gave up after {delivery.attempts} attempt(s) within the {prepared.policy.budget:g} s budget"
    except EgressRefused as exc:
        outcome, error = _Outcome(), _short(REFUSED_PREFIX + mask_text(str(exc), delivery.urls))
    except Exception as exc:  # a delivery must never raise into Airflow
        outcome, error = _Outcome(), _error(exc, delivery.urls)
    return _record(delivery, outcome, error)


class _Delivery:
    """One delivery as it goes: what its texts name it by, and its attempts, for its record."""

    def __init__(self, target: str, webhook_id: str) -> None:
        self.start = time.monotonic()
        self.target = target
        self.urls = [target] if isinstance(target, str) else []  # every URL its texts mask
        self.masked = mask_url(target) if isinstance(target, str) and "://" in target else mask_text(str(target))
        self.webhook_id = webhook_id
        self.signed = False
        self.attempts = 0
        self.attempt_log: list[dict[str, Any]] = []


@dataclass(frozen=True)
class _Prepared:
    """What every attempt of a delivery sends, and where: ``key`` signs it (``None``: unsigned)."""

    url: str
    session: requests.Session
    policy: DeliveryPolicy
    deadline: float
    egress: EgressPolicy | None
    body: bytes
    headers: dict[str, str]
    key: bytes | None


def _prepare(
    delivery: _Delivery,
    payload: Mapping[str, Any] | bytes,
    policy: DeliveryPolicy | None,
    signing_secret: str | None,
    headers: Mapping[str, str] | None,
    untrusted: bool,
) -> _Prepared:
    """The delivery checked and made ready to send, nothing sent: its target resolved, its body, headers and signing key."""
    policy = policy or DeliveryPolicy.from_airflow_config()
    egress = _check(delivery.target, delivery.masked, untrusted)
    url, session, conn_secret = _resolve(delivery.target, checked=untrusted)
    delivery.urls.append(url)
    delivery.masked = mask_url(url)
    secret = signing_secret or conn_secret
    delivery.signed = bool(secret)
    _mask_secret(signing_secret)
    body = encode(payload)
    send_headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        **(headers or {}),
        "webhook-id": delivery.webhook_id,  # signed or not: a receiver drops duplicates by it
    }
    key = _signing_key(secret) if secret else None  # a secret that is not one is refused before anything is sent
    # the budget is the whole delivery's, resolving the target included: a callback's time is counted
    deadline = delivery.start + policy.budget
    return _Prepared(url, session, policy, deadline, egress, body, send_headers, key)


def _check(target: str, masked: str, untrusted: bool) -> EgressPolicy | None:
    """
    Refuse a target the delivery may not send to, before anything is sent; an ``untrusted`` one's
    egress policy, which its connections check again at every hop.
    """
    if not untrusted:
        check_target(target)
        return None
    egress = EgressPolicy.from_settings()
    if isinstance(target, str) and target.startswith(CONN_PREFIX):
        raise EgressRefused(f"{masked}: a target that the operator did not choose must be an http:// or https:// URL")
    egress.check_url(target)
    return egress


def _attempt(prepared: _Prepared, delivery: _Delivery) -> _Outcome:
    """One POST of the delivery, within its deadline, entered in its attempt log."""
    delivery.attempts += 1
    headers = prepared.headers
    if prepared.key is not None:  # each attempt signed afresh: the timestamp is part of the signature
        timestamp = int(time.time())
        headers = {
            **headers,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": _signature(prepared.key, delivery.webhook_id, timestamp, prepared.body),
        }
    at, began = datetime.now(timezone.utc), time.monotonic()
    outcome = _send(prepared.session, "POST", prepared.url, prepared.policy, prepared.deadline, stream=True,
                    egress=prepared.egress, data=prepared.body, headers=headers)
    delivery.attempt_log.append({
        "at": at.isoformat(timespec="milliseconds"),
        "status_code": outcome.status_code,
        "error": None if outcome.ok else mask_text(outcome.error or "", delivery.urls),
        "elapsed_ms": round((time.monotonic() - began) * 1000),
    })
    return outcome


def _record(delivery: _Delivery, outcome: _Outcome, error: str | None) -> DeliveryRecord:
    """The delivery's record, logged once: at INFO if delivered, else at WARNING."""
    record = DeliveryRecord(
        target=delivery.masked,
        ok=outcome.ok,
        status_code=outcome.status_code,
        attempts=delivery.attempts,
        elapsed_ms=round((time.monotonic() - delivery.start) * 1000),
        error=None if outcome.ok else mask_text(error or "", delivery.urls),
        webhook_id=delivery.webhook_id,
        attempt_log=tuple(delivery.attempt_log),
        signed=delivery.signed and delivery.attempts > 0,
    )
    masked, attempts = delivery.masked, delivery.attempts
    if record.ok:
        log.info("Webhook %s: delivered, HTTP %d, %d attempt(s), %d ms", masked, record.status_code, attempts, record.elapsed_ms)
    else:
        log.warning("Webhook %s: not delivered after %d attempt(s), %d ms: %s", masked, attempts, record.elapsed_ms, record.error)
    return record


def deliver_all(
    deliveries: Sequence[tuple[str, Mapping[str, Any] | bytes] | tuple[str, Mapping[str, Any] | bytes, str]],
    *,
    policy: DeliveryPolicy | None = None,
) -> list[DeliveryRecord]:
    """
    Deliver several payloads concurrently (the actions of one event); each is bounded by the budget.

    :param deliveries: ``(target, payload)`` pairs, or ``(target, payload, webhook_id)``.
    :return: one record per pair, in the same order.
    """
    policy = policy or DeliveryPolicy.from_airflow_config()

    def one(item: tuple[Any, ...]) -> DeliveryRecord:
        return deliver(item[0], item[1], policy=policy, webhook_id=item[2] if len(item) > 2 else None)

    if len(deliveries) <= 1:
        return [one(d) for d in deliveries]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(len(deliveries), 8), thread_name_prefix="ordo-hooks") as pool:
        return list(pool.map(one, deliveries))


def __getattr__(name: str) -> Any:
    # The hooks live apart: importing Airflow's HttpHook is slow, and even BaseHook is more than a DAG
    # file importing check_target, or a delivery to a plain URL, should pay.
    if name == "WebhookHook":
        from airflow_ordo_hooks.hooks._http_hooks import WebhookHook

        return WebhookHook
    if name == "AirflowApiHook":
        from airflow_ordo_hooks.hooks.airflow_api import AirflowApiHook

        return AirflowApiHook
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
