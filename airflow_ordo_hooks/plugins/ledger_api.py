"""The delivery ledger's HTTP API: a FastAPI app that the ``ordo_hooks`` plugin mounts at ``/ordo-hooks`` in the API server.

Routes, JSON in and out, under ``/ordo-hooks/api/v1``:

- ``POST /deliveries`` ``{"deliveries": [item, ...]}`` (at most 500): record what callbacks
  delivered or could not (:func:`~airflow_ordo_hooks.ledger.store.record` and its merge rules);
  answers ``{"deliveries": [{"webhook_id", "state", "created"}, ...]}``, 409 for an id held for
  another event.
- ``POST /deliveries/existing`` ``{"webhook_ids": [...]}`` (at most 5,000): ``{"existing": [...]}``,
  those the ledger holds, of DAGs the caller may read.
- ``GET /deliveries?dag_id=&run_id=&task_id=&event=&state=&limit=&offset=``: ``{"deliveries":
  [...], "total_entries": n}``, newest first; without ``dag_id``, of the DAGs the caller may read
  (Airflow's DAG-run listing does the same). A delivery shows every column but the encrypted target
  (the target masked only), its payload parsed, and its ``attempts``.
- ``GET /deliveries/{webhook_id}``: one delivery, or 404.

Every route needs Airflow's authentication (a JWT from ``/auth/token``, or the UI's cookie: 401
without one, 403 with a bad one) and the auth manager's permission on the DAG runs of every DAG it
touches: ``POST`` to record, ``GET`` to read. Recording a ``conn:<conn_id>`` target also needs
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
from typing import Annotated, Any, Literal

from airflow.api_fastapi.auth.managers.models.resource_details import (
    ConnectionDetails,
    DagAccessEntity,
    DagDetails,
)
from airflow.api_fastapi.common.db.common import SessionDep
from airflow.api_fastapi.core_api.security import GetUserDep
from fastapi import APIRouter, FastAPI, HTTPException, Query, status
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


class DeliveryOut(BaseModel):
    webhook_id: str
    dag_id: str
    run_id: str
    task_id: str | None
    map_index: int
    try_number: int
    event: str
    action: str
    target_masked: str
    payload: Any
    source: str
    state: State
    attempt_count: int
    next_attempt_at: str | None
    last_status_code: int | None
    last_error: str | None
    created_at: str
    updated_at: str
    attempts: list[AttemptOut]


class DeliveryListOut(BaseModel):
    deliveries: list[DeliveryOut]
    total_entries: int


router = APIRouter(prefix="/api/v1")


def _authorize_dags(user: Any, method: Literal["GET", "POST"], dag_ids: Iterable[str]) -> None:
    """403 unless ``user`` may ``method`` the DAG runs of every one of ``dag_ids``."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.models.dag import DagModel

    auth_manager = get_auth_manager()
    for dag_id in sorted(set(dag_ids)):
        details = DagDetails(id=dag_id, team_name=DagModel.get_team_name(dag_id))
        if not auth_manager.is_authorized_dag(method=method, access_entity=DagAccessEntity.RUN, details=details, user=user):
            verb = "record deliveries of" if method == "POST" else "read deliveries of"
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"Forbidden: you may not {verb} DAG {dag_id!r}")


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
    event: Annotated[Event | None, Query()] = None,
    state: Annotated[State | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    """Deliveries, newest first; without ``dag_id``, those of every DAG the caller may read."""
    dag_ids = None
    if dag_id is not None:
        _authorize_dags(user, "GET", [dag_id])
    else:
        from airflow.api_fastapi.app import get_auth_manager

        dag_ids = get_auth_manager().get_authorized_dag_ids(user=user, method="GET")
    rows, total = store.query(
        session, dag_id=dag_id, run_id=run_id, task_id=task_id, event=event, state=state, dag_ids=dag_ids,
        limit=limit, offset=offset,
    )
    return {"deliveries": [store.as_dict(r) for r in rows], "total_entries": total}


@router.get("/deliveries/{webhook_id}", response_model=DeliveryOut)
def get_delivery(webhook_id: str, user: GetUserDep, session: SessionDep) -> dict[str, Any]:
    """One delivery with its attempts."""
    row = store.get(session, webhook_id)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no delivery {webhook_id[:100]!r} in the ledger")
    _authorize_dags(user, "GET", [row.dag_id])
    return store.as_dict(row)


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
    return app
