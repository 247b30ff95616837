"""The delivery ledger's HTTP API: a FastAPI app that the ``ordo_hooks`` plugin mounts at ``/ordo-hooks`` in the API server.

Routes, JSON in and out, under ``/ordo-hooks/api/v1``:

- ``GET /webhooks`` (outside ``/api/v1``): the Webhooks view, a page the UI shows in a frame on the
  nav bar, a DAG, a DAG run and a task instance (``plugins/ledger.py`` registers it); it reads and
  redelivers through the routes below, as the logged-in user.
- ``POST /deliveries`` ``{"deliveries": [item, ...]}`` (at most 500): record what callbacks
  delivered or could not (:func:`~airflow_ordo_hooks.ledger.store.record` and its merge rules);
  answers ``{"deliveries": [{"webhook_id", "state", "created"}, ...]}``, 409 for an id held for
  another event.
- ``POST /deliveries/existing`` ``{"webhook_ids": [...]}`` (at most 5,000): ``{"existing": [...]}``,
  those the ledger holds, of DAGs the caller may read.
- ``GET /deliveries?dag_id=&run_id=&task_id=&map_index=&event=&state=&failing=&limit=&offset=&full=``:
  ``{"deliveries": [...], "total_entries": n}``, newest first; without ``dag_id``, of the DAGs the
  caller may read (Airflow's DAG-run listing does the same); ``failing=true``, those not delivered
  after an attempt (given up on, gone, or waiting for their next attempt). A delivery shows every column but the
  encrypted target (the target masked only), its last attempt's ``latency_ms``, and unless
  ``full=false`` its payload (parsed, masked by Airflow's secrets masker) and its ``attempts``.
- ``GET /deliveries/{webhook_id}``: one delivery, or 404.
- ``POST /deliveries/{webhook_id}/redeliver``: make it due now (the redelivery loop sends it again,
  with the same ``webhook-id``); answers the delivery, 409 while an attempt is under way.
- ``POST /deliveries/redeliver`` ``{"dag_id", "run_id"}``: the same for every failing delivery of
  that run; answers ``{"redelivered": [webhook_id, ...]}``.

Every route needs Airflow's authentication (a JWT from ``/auth/token``, or the UI's cookie: 401
without one, 403 with a bad one) and the auth manager's permission on the DAG runs of every DAG it
touches: ``POST`` to record, ``GET`` to read, ``PUT`` (edit) to redeliver. Recording a ``conn:<conn_id>`` target also needs
permission to read that connection, since the API server will send to it with the connection's
credentials. A URL target is sent to from the API server as from a worker: whoever may trigger a
DAG's runs may have it POST to a URL of their choosing, as that DAG's tasks may.

The app's lifespan starts the redelivery loop (:mod:`airflow_ordo_hooks.ledger.redelivery` says
why there) unless ``[ordo_hooks] ledger`` is false.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
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
from fastapi.responses import FileResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy.exc import IntegrityError

from airflow_ordo_hooks import _settings
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
    not_before: AwareDatetime | None = None

    @field_validator("target")
    @classmethod
    def _a_target(cls, target: str) -> str:
        return check_target(target, templates=False)  # a TargetError is a ValueError: a 422 naming the field

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


def _authorize_dags(user: Any, method: Literal["GET", "POST", "PUT"], dag_ids: Iterable[str]) -> None:
    """403 unless ``user`` may ``method`` the DAG runs of every one of ``dag_ids``."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.models.dag import DagModel

    auth_manager = get_auth_manager()
    for dag_id in sorted(set(dag_ids)):
        details = DagDetails(id=dag_id, team_name=DagModel.get_team_name(dag_id))
        if not auth_manager.is_authorized_dag(method=method, access_entity=DagAccessEntity.RUN, details=details, user=user):
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"Forbidden: you may not {_VERBS[method]} DAG {dag_id!r}")


def _may_read(user: Any, dag_id: str) -> bool:
    try:
        _authorize_dags(user, "GET", [dag_id])
    except HTTPException:
        return False
    return True


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


@router.post("/deliveries", response_model=RecordedListOut)
def record_deliveries(body: DeliveriesIn, user: GetUserDep, session: SessionDep) -> dict[str, Any]:
    """Record deliveries callbacks made or could not make; the ledger redelivers what is pending."""
    _authorize_dags(user, "POST", (d.dag_id for d in body.deliveries))
    _authorize_connections(user, (d.target for d in body.deliveries))
    items = [d.model_dump() for d in body.deliveries]
    try:
        try:
            results = store.record(session, items, by="worker")
        except IntegrityError:  # another request inserted one of these ids meanwhile: now it merges
            session.rollback()
            results = store.record(session, items, by="worker")
    except store.LedgerConflict as exc:
        session.rollback()
        # the message of the conflict names the other event: not for a caller who may not read its DAG
        raise HTTPException(status.HTTP_409_CONFLICT, f"webhook_id {exc.webhook_id!r} is held for another event") from None
    return {"deliveries": results}


@router.post("/deliveries/existing", response_model=ExistingOut)
def existing_deliveries(body: ExistingIn, user: GetUserDep, session: SessionDep) -> dict[str, Any]:
    """Which of these webhook ids the ledger holds (of DAGs the caller may read)."""
    held = store.dag_ids_of(session, body.webhook_ids)
    readable = {dag_id for dag_id in set(held.values()) if _may_read(user, dag_id)}
    return {"existing": sorted(w for w, dag_id in held.items() if dag_id in readable)}


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
    full: Annotated[bool, Query()] = True,
) -> dict[str, Any]:
    """
    Deliveries, newest first; without ``dag_id``, those of every DAG the caller may read.
    ``failing=true``: those not delivered after an attempt; ``full=false``: no payloads, no attempts.
    """
    dag_ids = None
    if dag_id is not None:
        _authorize_dags(user, "GET", [dag_id])
    else:
        from airflow.api_fastapi.app import get_auth_manager

        dag_ids = get_auth_manager().get_authorized_dag_ids(user=user, method="GET")
    rows, total = store.query(
        session, dag_id=dag_id, run_id=run_id, task_id=task_id, map_index=map_index, event=event, state=state,
        dag_ids=dag_ids, limit=limit, offset=offset, failing=failing, payloads=full,
    )
    return {"deliveries": [_shown(r, full=full) for r in rows], "total_entries": total}


@router.get("/deliveries/{webhook_id}", response_model=DeliveryOut)
def get_delivery(webhook_id: str, user: GetUserDep, session: SessionDep) -> dict[str, Any]:
    """One delivery with its attempts."""
    return _shown(_delivery(session, user, "GET", webhook_id))


def _delivery(session: Any, user: Any, method: Literal["GET", "PUT"], webhook_id: str) -> Any:
    """The delivery ``webhook_id``, if the ledger holds it (else 404) and ``user`` may ``method`` its DAG's runs (else 403)."""
    row = store.get(session, webhook_id)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no delivery {webhook_id[:100]!r} in the ledger")
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
    return _shown(row)


def _shown(row: Any, *, full: bool = True) -> dict[str, Any]:
    """A delivery as the API answers it: its payload masked by Airflow's secrets masker (secrets it knows, sensitive keys)."""
    shown = store.as_dict(row, full=full)
    if full:
        from airflow.sdk.log import redact

        shown["payload"] = redact(shown["payload"])
    return shown


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
    return app
