"""The delivery ledger's client side: how the delivery pipeline (:mod:`airflow_ordo_hooks.callbacks.outbox`) reaches it.

The ledger lives in Airflow's metadata database, behind this provider's endpoint on the API
server (``airflow_ordo_hooks.server``); workers and the DAG processor have no database access and
reach it through Airflow's REST API connection (``[ordo_hooks] api_conn_id``). A callback
delivers briefly (``[ordo_hooks] inline_budget``), then records every delivery here, failed ones
as ``pending``: the API server redelivers those on ``[ordo_hooks] redelivery_schedule``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from airflow_ordo_hooks import _settings

if TYPE_CHECKING:
    from concurrent.futures import Future

    from airflow_ordo_hooks.callbacks.message import Message
    from airflow_ordo_hooks.hooks.airflow_api import AirflowApiHook, DeliveryPolicy

log = logging.getLogger(__name__)

MAX_ITEMS = 500
"""Deliveries per request to the ledger (the endpoint's own bound)."""
MAX_REQUEST_CHARS = 48 * 1024 * 1024
"""About how long a request to the ledger may grow before the rest go in another (the endpoint takes 64 MiB)."""


_CONNECTION_CHECK_SECONDS = 60.0
_connection_seen: dict[tuple[str, str | None], tuple[bool, float]] = {}
"""Whether each API connection id (and its ``AIRFLOW_CONN_`` variable, if any) was found, and when it was looked up."""


def in_use() -> bool:
    """
    Whether the ledger is to be used: ``[ordo_hooks] ledger`` and the API connection exists.

    Every event asks, and looking a connection up goes through the secrets backends (a round trip
    to the supervisor in a task): a process looks each
    id up once a minute at the most, so that a long-lived DAG processor still sees a connection
    created after it started (one defined in the environment is seen at once).
    """
    if not _settings.get("ledger"):
        return False
    import os

    conn_id = _settings.get("api_conn_id")
    key = (conn_id, os.environ.get(f"AIRFLOW_CONN_{conn_id.upper()}"))  # a connection in the environment is seen at once
    found, checked = _connection_seen.get(key, (False, -_CONNECTION_CHECK_SECONDS))
    if time.monotonic() - checked < _CONNECTION_CHECK_SECONDS:
        return found
    from airflow.sdk import BaseHook

    try:
        BaseHook.get_connection(conn_id)
        found = True
    except Exception:
        found = False
    _connection_seen[key] = (found, time.monotonic())
    return found


PREPARE_AFTER = 1.0
"""
Seconds into a try before its API connection is looked up and its ledger client made
(:func:`prepare_client`). A try that ends sooner does both itself, the client once its webhooks are
sent: done while the try ends, they would compete with the try's own state report (for the one
channel to the supervisor, the API server, and the process) and delay the webhook; a longer try
has them ready, and records its deliveries with one request.
"""
PREPARED_MAX_AGE = 300.0
"""Seconds a client made while the try ran is used for: its token is fresh enough."""
_prepared: list[tuple[Future[AirflowApiHook | None], float]] = []


def prepare_client(after: float = PREPARE_AFTER, *, client: bool = True) -> Callable[[], None]:
    """
    Say that this try's ledger client is to be made, and return what makes it ``after`` seconds
    from now (to run in a thread while the try runs) unless :func:`prepared_client` has been asked
    for it by then: that hands it over (waiting for it if it is being made) rather than another
    being made. It looks the API connection up first (:func:`in_use`), and is ``None`` if the
    ledger is not in use, or if ``client`` is false (then only the connection is looked up).
    """
    from concurrent.futures import Future

    future: Future[AirflowApiHook | None] = Future()
    began = time.monotonic()
    _prepared[:] = [(future, began)]

    def make() -> None:
        time.sleep(max(began + after - time.monotonic(), 0.0))
        if not future.set_running_or_notify_cancel():  # the try ended first
            return
        try:
            future.set_result(new_client(None) if in_use() and client else None)
        except BaseException as exc:
            future.set_exception(exc)

    return make


def forget_prepared() -> None:
    """No client is to be made for this try after all (:func:`prepare_client`'s maker will not run)."""
    _prepared.clear()


def prepared_client() -> Future[AirflowApiHook | None] | None:
    """
    The client :func:`prepare_client` is making, or made (once), to pass to :func:`record` or
    :func:`existing` as ``api``, which wait for it; ``None`` if there is none, if it was not begun
    yet (it then never is), or if it was begun more than :data:`PREPARED_MAX_AGE` ago.
    """
    if not _prepared:
        return None
    future, when = _prepared.pop()
    if future.cancel():  # not begun: the caller makes its own once it has sent its webhooks
        return None
    return future if time.monotonic() - when <= PREPARED_MAX_AGE + PREPARE_AFTER else None


def client(deadline: float | None, api: AirflowApiHook | Future[AirflowApiHook | None] | None = None) -> AirflowApiHook:
    """
    The ledger's client, every request bounded by ``deadline``: ``api`` itself; or, for one being
    made (:func:`prepared_client`), it once made, if that worked; else a new one (the API
    connection read and its token got). Raises what the API raises.
    """
    if api is not None and hasattr(api, "result"):
        try:
            made = api.result(timeout=None if deadline is None else max(deadline - time.monotonic(), 0.0))
        except Exception as exc:  # make one here
            log.info("airflow-ordo-hooks: the ledger's client made beforehand failed (%s); making another", exc)
            made = None
        if made is not None:
            made.deadline, made.policy = deadline, _bounded(made.policy, deadline)
        api = made
    return api or new_client(deadline)


def _bounded(policy: DeliveryPolicy, deadline: float | None) -> DeliveryPolicy:
    """``policy`` with its budget cut to what is left until ``deadline``."""
    if deadline is None:
        return policy
    import dataclasses

    return dataclasses.replace(policy, budget=max(min(policy.budget, deadline - time.monotonic()), 0.01))


def new_client(deadline: float | None) -> AirflowApiHook:
    """A new client of the ledger, through ``[ordo_hooks] api_conn_id``, every request bounded by ``deadline``."""
    from airflow_ordo_hooks.hooks.airflow_api import AirflowApiHook, DeliveryPolicy

    return AirflowApiHook(_settings.get("api_conn_id"), policy=_bounded(DeliveryPolicy.from_airflow_config(), deadline), deadline=deadline)


def record(
    messages: Sequence[Message],
    *,
    deadline: float | None = None,
    api: AirflowApiHook | Future[AirflowApiHook | None] | None = None,
) -> bool:
    """
    Hand ``messages`` to the ledger; never raises.

    :param api: the client to use, or one being made (:func:`prepared_client`), waited for; a new
        one if ``None``.

    :return: whether the ledger took them all (``False``: not in use, or the API server could not
        be reached in time; the caller then keeps what failed to itself).
    """
    if not messages:
        return True
    try:
        api = client(deadline, api)
        for batch in _batches(messages):
            api.record_deliveries(batch)
    except Exception as exc:
        log.warning(
            "airflow-ordo-hooks: the delivery ledger did not take %d delivery(ies) (%s); they are not recorded",
            len(messages), exc,
        )
        return False
    return True


def _batches(messages: Sequence[Message]) -> list[list[dict[str, Any]]]:
    """``messages`` as the ledger takes them, in requests of at most :data:`MAX_ITEMS`, each of about :data:`MAX_REQUEST_CHARS` at the most."""
    batches: list[list[dict[str, Any]]] = [[]]
    size = 0
    for message in messages:
        length = len(message.body) + 2_000
        if batches[-1] and (len(batches[-1]) >= MAX_ITEMS or size + length > MAX_REQUEST_CHARS):
            batches.append([])
            size = 0
        batches[-1].append(message.to_json())
        size += length
    return batches


def existing(
    webhook_ids: Iterable[str],
    *,
    dag_id: str,
    deadline: float | None = None,
    api: AirflowApiHook | Future[AirflowApiHook | None] | None = None,
) -> set[str]:
    """The ids among ``webhook_ids`` that the ledger holds as deliveries of ``dag_id``. Raises what the API raises."""
    ids = list(dict.fromkeys(webhook_ids))
    api = client(deadline, api)
    found: set[str] = set()
    for start in range(0, len(ids), 5000):
        found |= api.existing_deliveries(ids[start : start + 5000], dag_id=dag_id)
    return found
