"""Who may do what on the ledger's API, and what a page of another site cannot make a browser send: its trust boundary.

Every route needs Airflow's authentication (a JWT from ``/auth/token``, or the UI's cookie: 401
without one, 403 with a bad one; Airflow's ``GetUserDep``) and the auth manager's permission on
the DAG runs of every DAG it touches: ``POST`` to record, ``GET`` to read, ``PUT`` (edit) to
redeliver (:func:`authorize_dags`). A payload holds the try's log, so it is shown only with
permission to read the DAG's task logs (:func:`may_read_logs`), whichever route reads it.
Recording a ``conn:<conn_id>`` target needs permission to read that connection, since the API
server sends to it with the connection's credentials (:func:`authorize_connections`).

Before any route parses a request that changes state, :class:`GuardedWrites` takes only JSON and,
when a browser says where it comes from (``Origin``), only from this server's own origin, and
refuses a body over its limit.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

from airflow.api_fastapi.auth.managers.models.resource_details import (
    ConnectionDetails,
    DagAccessEntity,
    DagDetails,
)
from fastapi import HTTPException, status
from fastapi.responses import JSONResponse

from airflow_ordo_hooks._targets import CONN_PREFIX

_VERBS = {"GET": "read deliveries of", "POST": "record deliveries of", "PUT": "redeliver deliveries of"}


def may(user: Any, method: Literal["GET", "POST", "PUT"], dag_id: str, entity: DagAccessEntity = DagAccessEntity.RUN) -> bool:
    """Whether ``user`` may ``method`` the DAG runs (or ``entity``) of ``dag_id``."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.models.dag import DagModel

    details = DagDetails(id=dag_id, team_name=DagModel.get_team_name(dag_id))
    return get_auth_manager().is_authorized_dag(method=method, access_entity=entity, details=details, user=user)


def authorize_dags(user: Any, method: Literal["GET", "POST", "PUT"], dag_ids: Iterable[str]) -> None:
    """403 unless ``user`` may ``method`` the DAG runs of every one of ``dag_ids`` (which the caller named)."""
    for dag_id in sorted(set(dag_ids)):
        if not may(user, method, dag_id):
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"Forbidden: you may not {_VERBS[method]} DAG {dag_id!r}")


def may_read_logs(user: Any, dag_id: str) -> bool:
    """Whether ``user`` may read the task logs of ``dag_id``, which a payload holds."""
    return may(user, "GET", dag_id, DagAccessEntity.TASK_LOGS)


def authorize_connections(user: Any, targets: Iterable[str]) -> None:
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


class GuardedWrites:
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

