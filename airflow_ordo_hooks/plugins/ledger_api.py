"""The delivery ledger's HTTP API: a FastAPI app that the ``ordo_hooks`` plugin mounts at ``/ordo-hooks`` in the API server.

Routes, JSON in and out, under ``/ordo-hooks/api/v1``:

- ``GET /webhooks`` (outside ``/api/v1``): the Webhooks view, a page the UI shows in a frame on the
  nav bar, a DAG, a DAG run and a task instance (``plugins/ledger.py`` registers it); it reads and
  redelivers through the routes below, as the logged-in user.
- ``POST /deliveries`` ``{"deliveries": [item, ...]}`` (at most 500): record what callbacks
  delivered or could not (:func:`~airflow_ordo_hooks.ledger.store.record` and its merge rules);
  answers ``{"deliveries": [{"webhook_id", "state", "created"}, ...]}``.
- ``POST /deliveries/existing`` ``{"dag_id", "webhook_ids": [...]}`` (at most 5,000):
  ``{"existing": [...]}``, those the ledger holds as deliveries of that DAG.
- ``GET /deliveries?dag_id=&run_id=&task_id=&map_index=&event=&state=&failing=&limit=&offset=&full=``:
  ``{"deliveries": [...], "total_entries": n}``, newest first; without ``dag_id``, of every DAG
  whose runs the caller may read; ``failing=true``, those not delivered after an attempt (given up
  on, gone, or waiting for their next attempt). A delivery shows every column but the encrypted
  target (the target masked only) and its last attempt's ``latency_ms``; with ``full=true`` (at
  most 100 a page, streamed one payload at a time) also its attempts and its payload.
- ``GET /deliveries/{webhook_id}``: one delivery with its attempts and payload, or 404.
- ``POST /deliveries/{webhook_id}/redeliver``: make it due now (the redelivery loop sends it again,
  with the same ``webhook-id``); answers the delivery, 409 while an attempt is under way.
- ``POST /deliveries/redeliver`` ``{"dag_id", "run_id"}``: the same for every failing delivery of
  that run; answers ``{"redelivered": [webhook_id, ...]}``.

**Who may do what.** Every route needs Airflow's authentication (a JWT from ``/auth/token``, or the
UI's cookie: 401 without one, 403 with a bad one) and the auth manager's permission on the DAG
runs of every DAG it touches: ``POST`` to record, ``GET`` to read, ``PUT`` (edit) to redeliver.
A payload holds the try's log, so it is shown only with permission to read the DAG's task logs
(else ``payload`` is ``null`` and ``payload_hidden`` true), whichever route reads it. Recording a
``conn:<conn_id>`` target needs permission to read that connection, since the API server sends
to it with the connection's credentials. A delivery the caller may not read is answered 404, as
one the ledger does not hold. Every ``POST`` must be JSON (``Content-Type: application/json``) and,
when a browser says where it comes from (``Origin``), from this server's own origin: a page of
another site cannot make a logged-in user's browser redeliver.

**What the server decides** (a caller reports what it did; the server checks what it can):

- each item's ``webhook_id`` is derived again from its facts (DAG, run, task, map index, try,
  event, target) and an item whose id is not is refused (422): no caller can record an id that
  stands for another DAG's event, or for another target;
- the masked target that every reader sees is derived here from the target;
- a row's state, schedule and target are the server's (:mod:`~airflow_ordo_hooks.ledger.store`):
  a report adds attempts; ``not_before`` is taken at creation only, from now to a day ahead; an
  attempt's time is at most 10 minutes ahead of the server's clock and a day behind;
- what the API server sends goes where ``[ordo_hooks]``'s egress policy lets it
  (:mod:`~airflow_ordo_hooks.ledger.redelivery`), whoever recorded it;
- bounds: a request body of at most :data:`MAX_BODY_BYTES` bytes (413), at most
  :data:`MAX_INGEST` recording requests at once in a process (more wait, then 503 with
  ``Retry-After``), and a listing holds one payload at a time.

The app's lifespan starts the redelivery loop (:mod:`airflow_ordo_hooks.ledger.redelivery` says
why there) unless ``[ordo_hooks] ledger`` is false.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Annotated, Any, Literal

from airflow.api_fastapi.auth.managers.models.resource_details import (
    ConnectionDetails,
    DagAccessEntity,
    DagDetails,
)
from airflow.api_fastapi.common.db.common import SessionDep
from airflow.api_fastapi.core_api.security import GetUserDep
from fastapi import APIRouter, FastAPI, HTTPException, Query, status
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy.exc import IntegrityError

from airflow_ordo_hooks import _event_id, _settings
from airflow_ordo_hooks._targets import CONN_PREFIX, MAX_ID, MAX_TARGET, check_target
from airflow_ordo_hooks.ledger import store

log = logging.getLogger(__name__)

PREFIX = "/ordo-hooks"
"""Where the plugin mounts the app in the API server."""
MAX_ITEMS = 500
MAX_IDS = 5000
MAX_PAYLOAD = 16 * 1024 * 1024
"""Characters of one payload (a log of ``[ordo_hooks] log_max_chars`` at its largest fits)."""
MAX_PAYLOADS = 64 * 1024 * 1024
"""Characters of all the payloads of one request."""
MAX_BODY_BYTES = 64 * 1024 * 1024
"""Bytes of one request's body: the client (``_ledger.record``) sends an event's deliveries in
requests under it; one payload at its largest (:data:`MAX_PAYLOAD`, of ASCII) fits."""
MAX_INGEST = 4
"""Recording requests one API-server process parses at once; more wait for one to end."""
INGEST_WAIT = 10.0
"""Seconds a recording request waits for its turn before a 503 (the client retries it)."""
MAX_FULL_PAGE = 100
"""Deliveries a page may have with their payloads (``full=true``)."""
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
    model_config = ConfigDict(extra="forbid")

    deliveries: list[DeliveryIn] = Field(max_length=MAX_ITEMS)

    @model_validator(mode="after")
    def _bounded(self) -> DeliveriesIn:
        total = sum(len(d.payload) for d in self.deliveries)
        if total > MAX_PAYLOADS:
            raise ValueError(f"the payloads add up to {total} characters; at most {MAX_PAYLOADS} per request")
        return self


class RecordedOut(BaseModel):
    webhook_id: str
    state: State
    created: bool


class RecordedListOut(BaseModel):
    deliveries: list[RecordedOut]


class ExistingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dag_id: Id
    webhook_ids: list[WebhookId] = Field(max_length=MAX_IDS)


class ExistingOut(BaseModel):
    existing: list[str]


class AttemptOut(BaseModel):
    number: int
    at: str
    status_code: int | None
    error: str | None
    elapsed_ms: int
    by: str


class DeliverySummaryOut(BaseModel):
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
    payload: Any
    payload_hidden: bool = False
    """The caller may not read the DAG's task logs, which a payload holds: ``payload`` is ``null``."""
    attempts: list[AttemptOut]


class DeliveryListOut(BaseModel):
    deliveries: list[DeliveryOut] | list[DeliverySummaryOut]
    total_entries: int


class RunIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dag_id: Id
    run_id: Id


class RedeliveredOut(BaseModel):
    redelivered: list[str]


router = APIRouter(prefix="/api/v1")

_VERBS = {"GET": "read deliveries of", "POST": "record deliveries of", "PUT": "redeliver deliveries of"}


def _may(user: Any, method: Literal["GET", "POST", "PUT"], dag_id: str, entity: DagAccessEntity = DagAccessEntity.RUN) -> bool:
    """Whether ``user`` may ``method`` the DAG runs (or ``entity``) of ``dag_id``."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.models.dag import DagModel

    details = DagDetails(id=dag_id, team_name=DagModel.get_team_name(dag_id))
    return get_auth_manager().is_authorized_dag(method=method, access_entity=entity, details=details, user=user)


def _authorize_dags(user: Any, method: Literal["GET", "POST", "PUT"], dag_ids: Iterable[str]) -> None:
    """403 unless ``user`` may ``method`` the DAG runs of every one of ``dag_ids`` (which the caller named)."""
    for dag_id in sorted(set(dag_ids)):
        if not _may(user, method, dag_id):
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"Forbidden: you may not {_VERBS[method]} DAG {dag_id!r}")


def _may_read_logs(user: Any, dag_id: str) -> bool:
    """Whether ``user`` may read the task logs of ``dag_id``, which a payload holds."""
    return _may(user, "GET", dag_id, DagAccessEntity.TASK_LOGS)


def _authorize_connections(user: Any, targets: Iterable[str]) -> None:
    """403 unless ``user`` may read every connection a ``conn:`` target among ``targets`` names."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.models.connection import Connection

    conn_ids = {t[len(CONN_PREFIX) :].partition("/")[0] for t in targets if t.startswith(CONN_PREFIX)}
    auth_manager = get_auth_manager()
    for conn_id in sorted(conn_ids):
        details = ConnectionDetails(conn_id=conn_id, team_name=Connection.get_team_name(conn_id))
        if not auth_manager.is_authorized_connection(method="GET", details=details, user=user):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"Forbidden: a delivery to connection {conn_id!r} is sent with its credentials; you may not read it",
            )


_ingest = threading.BoundedSemaphore(MAX_INGEST)


@router.post("/deliveries", response_model=RecordedListOut)
def record_deliveries(body: DeliveriesIn, user: GetUserDep, session: SessionDep) -> Any:
    """Record deliveries callbacks made or could not make; the ledger redelivers what is pending."""
    _authorize_dags(user, "POST", (d.dag_id for d in body.deliveries))
    _authorize_connections(user, (d.target for d in body.deliveries))
    # the masked name every reader sees is derived here, not taken from the caller
    items = [d.model_dump(exclude={"target_masked"}) for d in body.deliveries]
    if not _ingest.acquire(timeout=INGEST_WAIT):
        return JSONResponse({"detail": "the ledger is busy recording; try again"}, status.HTTP_503_SERVICE_UNAVAILABLE,
                            headers={"Retry-After": "1"})
    try:
        try:
            results = store.record(session, items, by="worker")
        except IntegrityError:  # another request inserted one of these ids meanwhile: now it merges
            session.rollback()
            results = store.record(session, items, by="worker")
    except store.LedgerConflict:
        session.rollback()  # ids are derived from their events: two events with one id is a hash collision
        raise HTTPException(status.HTTP_409_CONFLICT, "a webhook_id of this request is held for another event") from None
    finally:
        _ingest.release()
    return {"deliveries": results}


@router.post("/deliveries/existing", response_model=ExistingOut)
def existing_deliveries(body: ExistingIn, user: GetUserDep, session: SessionDep) -> dict[str, Any]:
    """Which of these webhook ids the ledger holds as deliveries of the DAG named (whose runs the caller may read)."""
    _authorize_dags(user, "GET", [body.dag_id])
    return {"existing": sorted(store.existing(session, body.webhook_ids, dag_id=body.dag_id))}


@router.get("/deliveries", response_model=DeliveryListOut)
def list_deliveries(
    user: GetUserDep,
    session: SessionDep,
    dag_id: Annotated[Id | None, Query()] = None,
    run_id: Annotated[Id | None, Query()] = None,
    task_id: Annotated[Id | None, Query()] = None,
    map_index: Annotated[int | None, Query(ge=-1)] = None,
    event: Annotated[Event | None, Query()] = None,
    state: Annotated[State | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
    failing: Annotated[bool, Query()] = False,
    full: Annotated[bool, Query()] = False,
) -> Any:
    """
    Deliveries, newest first; without ``dag_id``, those of every DAG whose runs the caller may read.
    ``failing=true``: those not delivered after an attempt; ``full=true``: with payloads and attempts.
    """
    if full and limit > MAX_FULL_PAGE:
        raise HTTPException(422, f"limit: at most {MAX_FULL_PAGE} with full=true, got {limit}")
    dag_ids = None
    if dag_id is not None:
        _authorize_dags(user, "GET", [dag_id])
    else:
        dag_ids = [d for d in store.dag_ids(session) if _may(user, "GET", d)]
    rows, total = store.query(
        session, dag_id=dag_id, run_id=run_id, task_id=task_id, map_index=map_index, event=event, state=state,
        dag_ids=dag_ids, limit=limit, offset=offset, failing=failing, payloads=False,
    )
    if not full:
        return {"deliveries": [store.as_dict(r, full=False) for r in rows], "total_entries": total}
    readable_logs = {d: _may_read_logs(user, d) for d in {r.dag_id for r in rows}}
    shown = [(store.as_dict(r, full=False), store.attempts_of(r), readable_logs[r.dag_id]) for r in rows]
    return StreamingResponse(_full_page(shown, total), media_type="application/json")


def _full_page(shown: list[tuple[dict[str, Any], list[dict[str, Any]], bool]], total: int) -> Iterator[bytes]:
    """A page with payloads as JSON, read, masked and written one payload at a time."""
    from airflow.utils.session import create_session

    yield b'{"deliveries":['
    with create_session(scoped=False) as session:
        for n, (summary, attempts, may_read) in enumerate(shown):
            text = store.payload_of(session, summary["webhook_id"]) if may_read else None
            delivery = {
                **summary,
                "payload": store.shown_payload(text) if text is not None else None,
                "payload_hidden": not may_read,
                "attempts": attempts,
            }
            yield (b"," if n else b"") + json.dumps(delivery, separators=(",", ":")).encode()
    yield b'],"total_entries":%d}' % total


@router.get("/deliveries/{webhook_id}", response_model=DeliveryOut)
def get_delivery(webhook_id: str, user: GetUserDep, session: SessionDep) -> dict[str, Any]:
    """One delivery with its attempts, and its payload for those who may read the DAG's task logs."""
    return _shown(user, _delivery(session, user, "GET", webhook_id))


def _delivery(session: Any, user: Any, method: Literal["GET", "PUT"], webhook_id: str) -> Any:
    """
    The delivery ``webhook_id``: 404 if the ledger does not hold it or ``user`` may not read its DAG's
    runs (the answer is the same, so it says nothing of other DAGs), 403 if ``method`` is ``PUT`` and
    the user may read but not edit them.
    """
    row = store.get(session, webhook_id)
    if row is None or not _may(user, "GET", row.dag_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no delivery {webhook_id[:100]!r} that you may read")
    if method != "GET":
        _authorize_dags(user, method, [row.dag_id])
    return row


@router.post("/deliveries/redeliver", response_model=RedeliveredOut)
def redeliver_run(body: RunIn, user: GetUserDep, session: SessionDep) -> dict[str, Any]:
    """Send every failing delivery of a DAG run (not delivered after an attempt) again now, from the redelivery loop."""
    _authorize_dags(user, "PUT", [body.dag_id])
    rows, _ = store.query(session, dag_id=body.dag_id, run_id=body.run_id, failing=True, limit=MAX_IDS, payloads=False)
    made_due = store.request_redelivery(session, [r.webhook_id for r in rows], store.utcnow())
    log.info("airflow-ordo-hooks: %d failing delivery(ies) of run %s of DAG %s made due by a user", len(made_due), body.run_id, body.dag_id)
    return {"redelivered": made_due}


@router.post("/deliveries/{webhook_id}/redeliver", response_model=DeliveryOut)
def redeliver(webhook_id: str, user: GetUserDep, session: SessionDep) -> dict[str, Any]:
    """Send one delivery again, whatever its state, from the redelivery loop; 409 while an attempt is under way."""
    row = _delivery(session, user, "PUT", webhook_id)
    if not store.request_redelivery(session, [webhook_id], store.utcnow()):
        raise HTTPException(status.HTTP_409_CONFLICT, f"delivery {webhook_id!r} is being sent right now; try again when it is done")
    session.refresh(row)
    return _shown(user, row)


def _shown(user: Any, row: Any) -> dict[str, Any]:
    """One delivery as the API answers it: its payload (masked) only for a user who may read the DAG's task logs."""
    may_read = _may_read_logs(user, row.dag_id)
    return {**store.as_dict(row, payload=may_read), "payload_hidden": not may_read}


class _GuardedWrites:
    """
    ASGI middleware in front of every route that changes state (any method but ``GET``, ``HEAD``,
    ``OPTIONS``), before any route parses the request:

    - what a page of another site can make a logged-in browser send without a CORS preflight is
      refused: only JSON is taken (a form or ``text/plain`` is a "simple" request; 415), and a
      request whose ``Origin`` is not this server's own is refused (403);
    - a body longer than ``limit`` bytes is answered 413, whether it says its length or is chunked.
    """

    def __init__(self, app: Any, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or ())
        refusal = _cross_site(headers)
        if refusal is not None:
            await JSONResponse({"detail": refusal[1]}, refusal[0])(scope, receive, send)
            return
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) <= self.limit:
            await self.app(scope, receive, send)  # the server reads no more than the declared length
            return
        too_long = declared is not None
        chunks, size, more = [], 0, not too_long
        while more:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, receive, send)  # the client went away: the app sees it as it would
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                too_long = True
                break
            chunks.append(chunk)
            more = message.get("more_body", False)
        if too_long:
            answer = JSONResponse({"detail": f"the request body is longer than {self.limit} bytes"}, 413)
            await answer(scope, receive, send)
            return
        body, replayed = b"".join(chunks), False

        async def replay() -> Any:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


def _cross_site(headers: dict[bytes, bytes]) -> tuple[int, str] | None:
    """``(status, why)`` if a request with these headers could come from another site's page, else ``None``."""
    media_type = headers.get(b"content-type", b"").partition(b";")[0].strip().lower()
    if media_type != b"application/json":
        return 415, "send JSON, with Content-Type: application/json"
    origin = headers.get(b"origin")
    if origin is not None:
        from urllib.parse import urlsplit

        hosts = {headers.get(b"host", b""), *headers.get(b"x-forwarded-host", b"").split(b",")}
        try:
            netloc = urlsplit(origin.decode("latin-1")).netloc.lower()
        except ValueError:
            netloc = ""
        if not netloc or netloc not in {h.strip().decode("latin-1").lower() for h in hosts if h.strip()}:
            return 403, "Forbidden: a request from another site's page"
    return None


_VIEW = Path(__file__).with_name("webhooks_view")
_VIEW_HEADERS = {
    # the page shows hostile text (payloads, errors): only its own script runs, and only the UI may frame it
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'self'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}

view_router = APIRouter()


@view_router.get("/webhooks", include_in_schema=False)
def webhooks_view() -> FileResponse:
    """The Webhooks view: a static page; what it shows it reads from the API as the logged-in user."""
    return FileResponse(_VIEW / "index.html", media_type="text/html", headers=_VIEW_HEADERS)


@view_router.get("/webhooks/{name}", include_in_schema=False)
def webhooks_view_file(name: Literal["view.js", "view.css"]) -> FileResponse:
    media_type = "text/javascript" if name.endswith(".js") else "text/css"
    return FileResponse(_VIEW / name, media_type=media_type, headers=_VIEW_HEADERS)


def _start_redelivery() -> Any:
    """The redelivery loop of this API-server process, started; ``None`` when off or misconfigured (logged)."""
    try:
        if not _settings.get("ledger"):
            log.info("airflow-ordo-hooks: [ordo_hooks] ledger is false: this API server redelivers nothing")
            return None
        from airflow_ordo_hooks.ledger.redelivery import Redeliverer

        return Redeliverer().start()
    except Exception:  # a bad setting must not keep the API server from starting
        log.exception("airflow-ordo-hooks: the ledger's redelivery could not start in this API server")
        return None


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Redelivery runs while the API server does: entered by Airflow's app when the server starts."""
    from starlette.concurrency import run_in_threadpool

    from airflow_ordo_hooks.ledger import crypto

    crypto.warn_if_no_key()  # as Airflow warns for connections: targets would be stored in plain text
    redeliverer = _start_redelivery()
    try:
        yield
    finally:
        if redeliverer is not None:
            await run_in_threadpool(redeliverer.stop)


def create_app() -> FastAPI:
    """The ledger's app, for the plugin to mount at :data:`PREFIX`."""
    app = FastAPI(
        title="airflow-ordo-hooks delivery ledger",
        description="Webhook deliveries of cheek's job events and Ordo's on_exit reports, and their redelivery.",
        version="1",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.include_router(router)
    app.include_router(view_router)
    app.add_middleware(_GuardedWrites, limit=MAX_BODY_BYTES)
    return app
