"""Deliveries as the ledger's tests write them (dicts, the API's item), recorded as the API's route hands them over."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from airflow_ordo_hooks.server import recording
from airflow_ordo_hooks.server.api_models import AttemptIn, DeliveryIn


def reported(item: Mapping[str, Any]) -> DeliveryIn:
    """
    ``item`` as a ``DeliveryIn``, built without the route's checks: the tests report attempts at
    times of their own (``T0``), and one an id held for another event, which the route refuses first.
    """
    attempts = [AttemptIn.model_construct(**a) for a in item.get("attempts") or ()]
    return DeliveryIn.model_construct(**{**item, "attempts": attempts})


def record(session: Any, items: Iterable[Mapping[str, Any]], **options: Any) -> list[dict[str, Any]]:
    """:func:`~airflow_ordo_hooks.server.recording.record` of ``items`` written as the API's JSON items."""
    return recording.record(session, [reported(item) for item in items], **options)
