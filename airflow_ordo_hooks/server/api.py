"""The delivery ledger's HTTP API: a FastAPI app that the ``ordo_hooks`` plugin mounts at ``/ordo-hooks`` in the API server.

Routes, JSON in and out, under ``/ordo-hooks/api/v1`` (bodies and answers are
:mod:`~airflow_ordo_hooks.server.api_models`'):

- ``GET /webhooks`` (outside ``/api/v1``): the Webhooks view, a page the UI shows in a frame on the
  nav bar, a DAG, a DAG run and a task instance (``plugins/ledger.py`` registers it); it reads and
  redelivers through the routes below, as the logged-in user.
- ``POST /deliveries`` ``{"deliveries": [item, ...]}`` (at most 500): record what callbacks
  delivered or could not (:func:`~airflow_ordo_hooks.server.recording.record` and its merge rules);
  answers ``{"deliveries": [{"webhook_id", "state", "created"}, ...]}``.
- ``POST /deliveries/existing`` ``{"dag_id", "webhook_ids": [...]}`` (at most 5,000):
  ``{"existing": [...]}``, those the ledger holds as deliveries of that DAG.
- ``GET /deliveries?dag_id=&run_id=&task_id=&map_index=&event=&state=&target=&failing=&limit=&offset=&full=``:
  ``{"deliveries": [...], "total_entries": n}``, newest first; without ``dag_id``, of every DAG
  whose runs the caller may read; ``target``, to the target of that fingerprint; ``failing=true``,
  those not delivered after an attempt (given up on, gone, or waiting for their next attempt). A
  delivery shows every column but the encrypted target (the target masked only) and its last
  attempt's ``latency_ms``; with ``full=true`` (at most 100 a page, streamed one payload at a time)
  also its attempts and its payload.
- ``GET /deliveries/{webhook_id}``: one delivery with its attempts and payload, or 404.
- ``GET /targets?dag_id=&limit=``: ``{"targets": [...], "total_entries": n}``, each webhook target's
  health (:mod:`~airflow_ordo_hooks.server.health`), worst first, at most 200, counting only the
  deliveries the listing would show the caller.
- ``POST /deliveries/{webhook_id}/redeliver``: make it due now (the redelivery loop sends it again,
  with the same ``webhook-id``); answers the delivery, 409 while an attempt is under way.
- ``POST /deliveries/redeliver`` ``{"dag_id", "run_id"}``: the same for every failing delivery of
  that run; answers ``{"redelivered": [webhook_id, ...]}``.

**Who may do what** is :mod:`~airflow_ordo_hooks.server.auth`'s: Airflow's authentication
on every route, the auth manager's permission on the DAG runs of every DAG a route touches, the
task logs' read permission to see a payload (else ``payload`` is ``null`` and ``payload_hidden``
true), the connection's to record a ``conn:`` target; a delivery the caller may not read is
answered 404, as one the ledger does not hold; every ``POST`` JSON only, from this server's own
origin when a browser says where it comes from.

**What the server decides** (a caller reports what it did; the server checks what it can): each
item's ``webhook_id``, derived again from its facts, and the bounds of what it reports
(:mod:`~airflow_ordo_hooks.server.api_models`); the masked target every reader sees, a row's
state, schedule and target (:mod:`~airflow_ordo_hooks.server.recording`); where the API server
sends, by ``[ordo_hooks]``'s egress policy, whoever recorded it
(:mod:`~airflow_ordo_hooks.server.redelivery`); and the bounds of a request here: a body of at most
:data:`MAX_BODY_BYTES` bytes (413), at most :data:`MAX_INGEST` recording requests at once in a
process (more wait, then 503 with ``Retry-After``), and a listing holds one payload at a time.

The app's lifespan starts the redelivery loop (:mod:`airflow_ordo_hooks.server.redelivery` says
why there) unless ``[ordo_hooks] ledger`` is false.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

from airflow.api_fastapi.common.db.common import SessionDep
from airflow.api_fastapi.core_api.security import GetUserDep
from fastapi import APIRouter, FastAPI, HTTPException, Query, status
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from sqlalchemy.exc import IntegrityError

from airflow_ordo_hooks import _settings
from airflow_ordo_hooks.exceptions import LedgerConflict
from airflow_ordo_hooks.server import claims, health, queries, recording, shown
from airflow_ordo_hooks.server.schedule import utcnow
from airflow_ordo_hooks.server.auth import (
    GuardedWrites,
    authorize_connections,
    authorize_dags,
    may,
    may_read_logs,
)
from airflow_ordo_hooks.server.api_models import (
    MAX_IDS,
    DeliveriesIn,
    DeliveryListOut,
    DeliveryOut,
    Event,
    ExistingIn,
    ExistingOut,
    Fingerprint,
    Id,
    RecordedListOut,
    RedeliveredOut,
    RunIn,
    State,
    TargetListOut,
)

log = logging.getLogger(__name__)

PREFIX = "/ordo-hooks"
"""Where the plugin mounts the app in the API server."""
MAX_BODY_BYTES = 64 * 1024 * 1024
"""Bytes of one request's body: the client (``ledger_client.record``) sends an event's deliveries in
requests under it; one payload at its largest (:data:`MAX_PAYLOAD`, of ASCII) fits."""
MAX_INGEST = 4
"""Recording requests one API-server process parses at once; more wait for one to end."""
INGEST_WAIT = 10.0
"""Seconds a recording request waits for its turn before a 503 (the client retries it)."""
MAX_FULL_PAGE = 100
"""Deliveries a page may have with their payloads (``full=true``)."""


router = APIRouter(prefix="/api/v1")
_ingest = threading.BoundedSemaphore(MAX_INGEST)


@router.post("/deliveries", response_model=RecordedListOut)
def record_deliveries(body: DeliveriesIn, user: GetUserDep, session: SessionDep) -> Any:
    """Record deliveries callbacks made or could not make; the ledger redelivers what is pending."""
    authorize_dags(user, "POST", (d.dag_id for d in body.deliveries))
    authorize_connections(user, (d.target for d in body.deliveries))
    if not _ingest.acquire(timeout=INGEST_WAIT):
        return JSONResponse({"detail": "the ledger is busy recording; try again"}, status.HTTP_503_SERVICE_UNAVAILABLE,
                            headers={"Retry-After": "1"})
    try:  # the masked target every reader sees is derived by the ledger, not taken from the caller
        try:
            results = recording.record(session, body.deliveries, by="worker")
        except IntegrityError:  # another request inserted one of these ids meanwhile: now it merges
            session.rollback()
            results = recording.record(session, body.deliveries, by="worker")
    except LedgerConflict:
        session.rollback()  # ids are derived from their events: two events with one id is a hash collision
        raise HTTPException(status.HTTP_409_CONFLICT, "a webhook_id of this request is held for another event") from None
    finally:
        _ingest.release()
    return {"deliveries": results}


@router.post("/deliveries/existing", response_model=ExistingOut)
def existing_deliveries(body: ExistingIn, user: GetUserDep, session: SessionDep) -> dict[str, Any]:
    """Which of these webhook ids the ledger holds as deliveries of the DAG named (whose runs the caller may read)."""
    authorize_dags(user, "GET", [body.dag_id])
    return {"existing": sorted(queries.existing(session, body.webhook_ids, dag_id=body.dag_id))}


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
    target: Annotated[Fingerprint | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
    failing: Annotated[bool, Query()] = False,
    full: Annotated[bool, Query()] = False,
) -> Any:
    """
    Deliveries, newest first; without ``dag_id``, those of every DAG whose runs the caller may read.
    ``target``: to the target of this fingerprint; ``failing=true``: those not delivered after an
    attempt; ``full=true``: with payloads and attempts.
    """
    if full and limit > MAX_FULL_PAGE:
        raise HTTPException(422, f"limit: at most {MAX_FULL_PAGE} with full=true, got {limit}")
    rows, total = queries.query(
        session, dag_id=dag_id, run_id=run_id, task_id=task_id, map_index=map_index, event=event, state=state,
        target_fingerprint=target, dag_ids=_readable(user, session, dag_id), limit=limit, offset=offset,
        failing=failing, payloads=False,
    )
    if not full:
        return {"deliveries": [shown.as_dict(r, full=False) for r in rows], "total_entries": total}
    readable_logs = {d: may_read_logs(user, d) for d in {r.dag_id for r in rows}}
    page = [(shown.as_dict(r, full=False), shown.attempts_of(r), readable_logs[r.dag_id]) for r in rows]
    return StreamingResponse(_full_page(page, total), media_type="application/json")


def _readable(user: Any, session: Any, dag_id: str | None) -> list[str] | None:
    """
    The DAGs a listing counts: ``None`` (``dag_id`` alone) if one is named, 403 unless ``user`` may
    read its runs; else every DAG of the ledger whose runs ``user`` may read.
    """
    if dag_id is not None:
        authorize_dags(user, "GET", [dag_id])
        return None
    return [d for d in queries.dag_ids(session) if may(user, "GET", d)]


def _full_page(page: list[tuple[dict[str, Any], list[dict[str, Any]], bool]], total: int) -> Iterator[bytes]:
    """A page with payloads as JSON, read, masked and written one payload at a time."""
    from airflow.utils.session import create_session

    yield b'{"deliveries":['
    with create_session(scoped=False) as session:
        for n, (summary, attempts, may_read) in enumerate(page):
            text = queries.payload_of(session, summary["webhook_id"]) if may_read else None
            delivery = {
                **summary,
                "payload": shown.shown_payload(text) if text is not None else None,
                "payload_hidden": not may_read,
                "attempts": attempts,
            }
            yield (b"," if n else b"") + json.dumps(delivery, separators=(",", ":")).encode()
    yield b'],"total_entries":%d}' % total


@router.get("/deliveries/{webhook_id}", response_model=DeliveryOut)
def get_delivery(webhook_id: str, user: GetUserDep, session: SessionDep) -> dict[str, Any]:
    """One delivery with its attempts, and its payload for those who may read the DAG's task logs."""
    return _shown(user, _delivery(session, user, "GET", webhook_id))


@router.get("/targets", response_model=TargetListOut)
def list_targets(
    user: GetUserDep,
    session: SessionDep,
    dag_id: Annotated[Id | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=health.MAX_TARGETS)] = health.MAX_TARGETS,
) -> dict[str, Any]:
    """
    Each webhook target's health, worst first: its numbers count only deliveries of the DAGs whose
    runs the caller may read (of ``dag_id`` alone, if named), and a target with none is not shown.
    """
    found, total = health.targets(session, dag_id=dag_id, dag_ids=_readable(user, session, dag_id), limit=limit)
    return {"targets": found, "total_entries": total}


def _delivery(session: Any, user: Any, method: Literal["GET", "PUT"], webhook_id: str) -> Any:
    """
    The delivery ``webhook_id``: 404 if the ledger does not hold it or ``user`` may not read its DAG's
    runs (the answer is the same, so it says nothing of other DAGs), 403 if ``method`` is ``PUT`` and
    the user may read but not edit them.
    """
    row = queries.get(session, webhook_id)
    if row is None or not may(user, "GET", row.dag_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no delivery {webhook_id[:100]!r} that you may read")
    if method != "GET":
        authorize_dags(user, method, [row.dag_id])
    return row


@router.post("/deliveries/redeliver", response_model=RedeliveredOut)
def redeliver_run(body: RunIn, user: GetUserDep, session: SessionDep) -> dict[str, Any]:
    """Send every failing delivery of a DAG run (not delivered after an attempt) again now, from the redelivery loop."""
    authorize_dags(user, "PUT", [body.dag_id])
    rows, _ = queries.query(session, dag_id=body.dag_id, run_id=body.run_id, failing=True, limit=MAX_IDS, payloads=False)
    made_due = claims.request_redelivery(session, [r.webhook_id for r in rows], utcnow())
    log.info("airflow-ordo-hooks: %d failing delivery(ies) of run %s of DAG %s made due by a user", len(made_due), body.run_id, body.dag_id)
    return {"redelivered": made_due}


@router.post("/deliveries/{webhook_id}/redeliver", response_model=DeliveryOut)
def redeliver(webhook_id: str, user: GetUserDep, session: SessionDep) -> dict[str, Any]:
    """Send one delivery again, whatever its state, from the redelivery loop; 409 while an attempt is under way."""
    row = _delivery(session, user, "PUT", webhook_id)
    if not claims.request_redelivery(session, [webhook_id], utcnow()):
        raise HTTPException(status.HTTP_409_CONFLICT, f"delivery {webhook_id!r} is being sent right now; try again when it is done")
    session.refresh(row)
    return _shown(user, row)


def _shown(user: Any, row: Any) -> dict[str, Any]:
    """One delivery as the API answers it: its payload (masked) only for a user who may read the DAG's task logs."""
    may_read = may_read_logs(user, row.dag_id)
    return {**shown.as_dict(row, payload=may_read), "payload_hidden": not may_read}



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
    """The view's script and style, with the page's headers."""
    media_type = "text/javascript" if name.endswith(".js") else "text/css"
    return FileResponse(_VIEW / name, media_type=media_type, headers=_VIEW_HEADERS)


def _start_redelivery() -> Any:
    """The redelivery loop of this API-server process, started; ``None`` when off or misconfigured (logged)."""
    try:
        if not _settings.get("ledger"):
            log.info("airflow-ordo-hooks: [ordo_hooks] ledger is false: this API server redelivers nothing")
            return None
        from airflow_ordo_hooks.server.redelivery import Redeliverer

        return Redeliverer().start()
    except Exception:  # a bad setting must not keep the API server from starting
        log.exception("airflow-ordo-hooks: the ledger's redelivery could not start in this API server")
        return None


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Redelivery runs while the API server does: entered by Airflow's app when the server starts."""
    from starlette.concurrency import run_in_threadpool

    from airflow_ordo_hooks.server import crypto

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
    app.add_middleware(GuardedWrites, limit=MAX_BODY_BYTES)
    return app
