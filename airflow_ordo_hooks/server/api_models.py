"""The ledger API's request and response models: what a caller may send, validated once at the edge, and what it gets back.

A request's body is validated here before any route sees it, with a 422 naming the field and the
value. **What the server decides** of a report (:class:`DeliveryIn`), beyond its types and bounds:

- each item's ``webhook_id`` is derived again from its facts (DAG, run, task, map index, try,
  event, target) and an item whose id is not is refused: no caller can record an id that stands
  for another DAG's event, or for another target;
- ``not_before`` is taken from now to a day ahead (:data:`NOT_BEFORE_AHEAD`); an attempt's time is
  at most :data:`CLOCK_SKEW` ahead of the server's clock and :data:`REPORT_AGE` behind;
- a payload is JSON text of at most :data:`MAX_PAYLOAD` characters, and a request's payloads add up
  to at most :data:`MAX_PAYLOADS`.

What the ledger then makes of a report is :mod:`~airflow_ordo_hooks.server.recording`'s.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from airflow_ordo_hooks import _event_id
from airflow_ordo_hooks._targets import MAX_ID, MAX_TARGET, check_target

MAX_ITEMS = 500
"""Deliveries one recording request may hold."""
MAX_IDS = 5000
"""Webhook ids one request may ask about, and failing deliveries one run's Redeliver makes due."""
MAX_PAYLOAD = 16 * 1024 * 1024
"""Characters of one payload (a log of ``[ordo_hooks] log_max_chars`` at its largest fits)."""
MAX_PAYLOADS = 64 * 1024 * 1024
"""Characters of all the payloads of one request."""
NOT_BEFORE_AHEAD = timedelta(days=1)
"""How far ahead a new delivery may ask not to be sent before."""
CLOCK_SKEW = timedelta(minutes=10)
"""How far ahead of the server's clock a reported attempt may be (a worker's clock may run ahead)."""
REPORT_AGE = timedelta(days=1)
"""How far behind the server's clock a reported attempt may be."""

Event = Literal["on_success", "on_error", "on_retries_exhausted", "on_exit"]
Action = Literal["notify_webhook", "notify_slack_webhook", "notify_discord_webhook", "call_webhook"]
State = Literal["pending", "delivering", "delivered", "gone", "failed"]
WebhookId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
Id = Annotated[str, Field(min_length=1, max_length=MAX_ID)]
Fingerprint = Annotated[str, Field(pattern=r"^[0-9a-f]{16}$")]
"""A target's fingerprint (:func:`~airflow_ordo_hooks._targets.fingerprint`): 16 hex digits."""


class AttemptIn(BaseModel):
    """One request a worker or the DAG processor made for a delivery."""

    model_config = ConfigDict(extra="forbid")

    at: AwareDatetime
    status_code: int | None = Field(default=None, ge=100, le=599)
    error: str | None = Field(default=None, max_length=10_000)
    elapsed_ms: int = Field(ge=0, le=86_400_000)
    by: Literal["worker", "dag-processor"]


class DeliveryIn(BaseModel):
    """One delivery as a callback (or the recovery of a killed try) reports it."""

    model_config = ConfigDict(extra="forbid")

    webhook_id: WebhookId
    dag_id: Id
    run_id: Id
    task_id: Id | None = None
    map_index: int = Field(default=-1, ge=-1, le=10_000_000)
    try_number: int = Field(default=0, ge=0, le=1_000_000)
    event: Event
    action: Action
    target: str = Field(min_length=1, max_length=MAX_TARGET)
    target_masked: str = Field(default="", max_length=300)
    payload: str = Field(max_length=MAX_PAYLOAD)
    source: Literal["callback", "recovery", "on_exit"]
    attempts: list[AttemptIn] = Field(default_factory=list, max_length=100)
    outcome: Literal["delivered", "failed", "pending"]
    """What the caller made of it; the server decides from the attempts (a 2xx among them: delivered)."""
    not_before: AwareDatetime | None = None

    @field_validator("target")
    @classmethod
    def _a_target(cls, target: str) -> str:
        return check_target(target, templates=False)  # a TargetError is a ValueError: a 422 naming the field

    @field_validator("attempts")
    @classmethod
    def _attempts_now(cls, attempts: list[AttemptIn]) -> list[AttemptIn]:
        now = datetime.now(timezone.utc)
        for attempt in attempts:
            if not now - REPORT_AGE <= attempt.at <= now + CLOCK_SKEW:
                raise ValueError(
                    f"an attempt at {attempt.at.isoformat()} is more than {CLOCK_SKEW} ahead of the server's clock "
                    f"or {REPORT_AGE} behind it ({now.isoformat(timespec='seconds')}): report attempts as they are made"
                )
        return attempts

    @field_validator("not_before")
    @classmethod
    def _not_before_bounded(cls, not_before: datetime | None) -> datetime | None:
        if not_before is None:
            return None
        now = datetime.now(timezone.utc)
        if not_before > now + NOT_BEFORE_AHEAD:
            raise ValueError(f"{not_before.isoformat()} is more than {NOT_BEFORE_AHEAD} ahead; at most a day")
        return max(not_before, now)  # not before the delivery exists: it never jumps the queue

    @model_validator(mode="after")
    def _id_of_its_event(self) -> DeliveryIn:
        derived = _event_id.webhook_id(
            self.dag_id, self.run_id, self.task_id, self.map_index, self.try_number, self.event, self.target
        )
        if self.webhook_id != derived:
            raise ValueError(
                f"webhook_id {self.webhook_id!r} is not the id of this event: a webhook_id is derived from dag_id, "
                "run_id, task_id, map_index, try_number, event and target (airflow_ordo_hooks._event_id.webhook_id)"
            )
        return self

    @field_validator("payload")
    @classmethod
    def _json(cls, payload: str) -> str:
        try:
            json.loads(payload)
        except ValueError as exc:
            raise ValueError(f"expected the JSON body to send, as text: {exc}") from None
        return payload


class DeliveriesIn(BaseModel):
    """The body of ``POST /deliveries``: an event's deliveries, their payloads bounded together."""

    model_config = ConfigDict(extra="forbid")

    deliveries: list[DeliveryIn] = Field(max_length=MAX_ITEMS)

    @model_validator(mode="after")
    def _bounded(self) -> DeliveriesIn:
        total = sum(len(d.payload) for d in self.deliveries)
        if total > MAX_PAYLOADS:
            raise ValueError(f"the payloads add up to {total} characters; at most {MAX_PAYLOADS} per request")
        return self


class RecordedOut(BaseModel):
    """What the ledger made of one recorded delivery."""

    webhook_id: str
    state: State
    created: bool


class RecordedListOut(BaseModel):
    """The answer of ``POST /deliveries``, one per delivery, in order."""

    deliveries: list[RecordedOut]


class ExistingIn(BaseModel):
    """The body of ``POST /deliveries/existing``: which of these ids does the ledger hold as deliveries of this DAG."""

    model_config = ConfigDict(extra="forbid")

    dag_id: Id
    webhook_ids: list[WebhookId] = Field(max_length=MAX_IDS)


class ExistingOut(BaseModel):
    """Those of the ids asked about that the ledger holds."""

    existing: list[str]


class AttemptOut(BaseModel):
    """One attempt of a delivery, as every reader shows it."""

    number: int
    at: str
    status_code: int | None
    error: str | None
    elapsed_ms: int
    by: str


class DeliverySummaryOut(BaseModel):
    """A delivery in a listing: every column but the encrypted target, and its last attempt's ``latency_ms``."""

    webhook_id: str
    dag_id: str
    run_id: str
    task_id: str | None
    map_index: int
    try_number: int
    event: str
    action: str
    target_masked: str
    source: str
    state: State
    attempt_count: int
    latency_ms: int | None
    next_attempt_at: str | None
    last_status_code: int | None
    last_error: str | None
    created_at: str
    updated_at: str


class DeliveryOut(DeliverySummaryOut):
    """A delivery with its attempts and its payload (masked), as one delivery is answered and ``full=true`` lists them."""

    payload: Any
    payload_hidden: bool = False
    """The caller may not read the DAG's task logs, which a payload holds: ``payload`` is ``null``."""
    attempts: list[AttemptOut]


class DeliveryListOut(BaseModel):
    """A page of deliveries, newest first, and how many match in all."""

    deliveries: list[DeliveryOut] | list[DeliverySummaryOut]
    total_entries: int


class RunIn(BaseModel):
    """The body of ``POST /deliveries/redeliver``: the DAG run whose failing deliveries to send again."""

    model_config = ConfigDict(extra="forbid")

    dag_id: Id
    run_id: Id


class RedeliveredOut(BaseModel):
    """The ids made due by a run's Redeliver."""

    redelivered: list[str]



class TargetHealthOut(BaseModel):
    """
    A webhook target's health (:func:`~airflow_ordo_hooks.server.health.targets`), counting only
    deliveries of DAGs whose runs the caller may read.
    """

    target_masked: str
    target_fingerprint: Fingerprint | None
    """``null`` for deliveries recorded before the ledger kept fingerprints whose target no key decrypts."""
    actions: list[Action]
    dag_ids: list[str]
    """The first DAG ids it serves, by name (at most :data:`~airflow_ordo_hooks.server.health.MAX_DAGS`)."""
    dag_count: int
    deliveries: int
    pending: int
    """Its deliveries waiting for an attempt or being sent (``pending``, ``delivering``)."""
    last_success_at: str | None
    last_failure_at: str | None
    last_error: str | None
    """The error of its last failed attempt, masked."""
    failing: bool
    """Its last attempt failed."""
    attempts_24h: int
    failed_24h: int
    failure_rate_24h: float | None
    """``failed_24h / attempts_24h``; ``null`` without an attempt in the last 24 hours."""


class TargetListOut(BaseModel):
    """Targets' health, worst first (failing now, then by failure rate, then by what waits), and how many there are in all."""

    targets: list[TargetHealthOut]
    total_entries: int
