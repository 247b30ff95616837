"""Deliveries as the ledger's tests write them (dicts, the API's items), validated and recorded as the API's route hands them over."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any

from airflow_ordo_hooks._event_id import webhook_id
from airflow_ordo_hooks.server import recording
from airflow_ordo_hooks.server.api_models import AttemptIn, DeliveryIn
from airflow_ordo_hooks.server.models import Delivery

SCHEDULE = (0, 5, 300)
SECRET_URL = "https://hooks.example.com/services/T000/B000/s3cr3t-path?token=t0k3n"
T0 = datetime.now(timezone.utc).replace(microsecond=123456)
"""The second these tests were imported, at a fixed fraction of it: recent, as the API's edge requires of an attempt
(at most a day behind and 10 minutes ahead), and with microseconds that the database must keep."""


def attempt(status_code, at=T0, *, by="worker", elapsed_ms=40, error=None):
    """One attempt as a client reports it."""
    error = error if error is not None else (None if status_code == 200 else f"HTTP {status_code}")
    return {"at": at.isoformat(), "status_code": status_code, "error": error, "elapsed_ms": elapsed_ms, "by": by}


def item(**changes):
    """An item as the API's POST receives it: a task's on_error, delivered once inline and failed; its id derived from its facts."""
    base = {
        "dag_id": "coffee_shop", "run_id": "manual__2026-11-23", "task_id": "brew", "map_index": -1,
        "try_number": 1, "event": "on_error", "action": "notify_webhook", "target": SECRET_URL,
        "target_masked": "https://hooks.example.com/…#abcdef", "payload": json.dumps({"name": "brew", "status": 3}),
        "source": "callback", "outcome": "failed", "not_before": None,
        "attempts": [attempt(503)],
    }
    base.update(changes)
    base.setdefault("webhook_id", webhook_id(base["dag_id"], base["run_id"], base["task_id"], base["map_index"],
                                             base["try_number"], base["event"], base["target"]))
    return base


def row(session, webhook_id) -> Delivery:
    """The delivery the database holds now (nothing the session remembers)."""
    session.expire_all()
    return session.get(Delivery, webhook_id)


def reported(item: Mapping[str, Any]) -> DeliveryIn:
    """``item`` as a ``DeliveryIn``, validated as the API's route validates it: what the edge refuses raises here."""
    return DeliveryIn.model_validate(dict(item))


def unvalidated(item: Mapping[str, Any]) -> DeliveryIn:
    """
    ``item`` as a ``DeliveryIn`` built without the route's checks, for the one report the edge refuses
    before the ledger sees it: an id held for another event (its id is not derived from its facts).
    The ledger refuses it too, as its own defence behind the route; this is how a test reaches that.
    """
    attempts = [AttemptIn.model_construct(**a) for a in item.get("attempts") or ()]
    return DeliveryIn.model_construct(**{**item, "attempts": attempts})


def record(session: Any, items: Iterable[Mapping[str, Any] | DeliveryIn], **options: Any) -> list[dict[str, Any]]:
    """
    :func:`~airflow_ordo_hooks.server.recording.record` of ``items`` written as the API's JSON items,
    each validated (:func:`reported`); an item already a ``DeliveryIn`` (:func:`unvalidated`) is recorded as it is.
    """
    given = [i if isinstance(i, DeliveryIn) else reported(i) for i in items]
    return recording.record(session, given, **options)
