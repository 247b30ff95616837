"""The one delivery pipeline: an event's messages, from their webhook-ids and bodies to what the ledger holds.

Every path that sends hands its deliveries here, each a :class:`Message`: a task's or a DAG run's
event callbacks, the on_exit step and its timed-out run's fallback (:func:`send`), and the
recovery of a killed try's events (:func:`hand_over`). :func:`send` takes them through four steps:

1. what the ledger already holds is dropped, when asked (:func:`_not_held`): a failure's callbacks
   can run twice, and a run's recovery may have been first;
2. each is attempted at once, within the inline budget (:func:`_attempt`);
3. all are handed to the ledger, what failed as ``pending`` for the API server's redelivery
   (:func:`_hand_over`);
4. without the ledger, or when it cannot take them, what failed is retried within the time the
   caller has (:func:`_retry_here`).

Nothing here raises into a callback for a receiver's or the ledger's sake: a failure is recorded,
left to redelivery, or logged. What each step came to is counted in Airflow's metrics
(:mod:`~airflow_ordo_hooks._metrics`).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from airflow_ordo_hooks import _metrics
from airflow_ordo_hooks.callbacks.message import Message

if TYPE_CHECKING:
    from concurrent.futures import Future

    from airflow_ordo_hooks.hooks.airflow_api import AirflowApiHook
    from airflow_ordo_hooks.hooks.webhook import DeliveryPolicy, DeliveryRecord

__all__ = ["DAG_PROCESSOR", "WORKER", "Message", "Sent", "hand_over", "send"]

log = logging.getLogger(__name__)

MIN_INLINE_BUDGET = 0.1
"""Seconds every event gets for its first attempts, even when the inline budget is spent."""
MIN_RETRY_HERE = 0.5
"""Seconds left to the caller, at the least, for what the ledger could not take to be retried in it."""

WORKER, DAG_PROCESSOR = "worker", "dag-processor"
"""Who attempted a delivery, as the ledger shows it."""


@dataclasses.dataclass(frozen=True)
class Sent:
    """
    What :func:`send` made of an event's messages.

    :param records: one per message attempted (held ones dropped), in order.
    :param ledger: ``"recorded"`` (the ledger took them), ``"unavailable"`` (it could not), or
        ``None`` (not in use, or nothing to hand over).
    """

    records: list[DeliveryRecord]
    ledger: str | None = None


def send(
    messages: Sequence[Message],
    *,
    policy: DeliveryPolicy,
    by: str = WORKER,
    deadline: float | None = None,
    inline_end: float | None = None,
    ledger: Callable[[], bool] = lambda: False,
    drop_held: bool = False,
    untrusted: bool = False,
) -> Sent:
    """
    Deliver ``messages`` (one event's) and hand them to the ledger; never raises for a receiver's or the ledger's sake.

    :param policy: the configured delivery policy; its budget is cut to what ``inline_end`` and
        ``deadline`` leave for the first attempts.
    :param deadline: ``time.monotonic()`` by which the caller must be done; ``None``: no retry
        here beyond the first attempts' budget.
    :param inline_end: when, with the ledger, the first attempts must end (what ``[ordo_hooks]
        inline_budget`` leaves): the rest is the API server's.
    :param ledger: whether the ledger is in use, asked once it matters.
    :param drop_held: first ask the ledger which of them it holds, and send only the others.
    :param untrusted: the targets come from a run's conf: the egress policy checks them, and a
        target it refuses is not handed to the ledger (the API server would refuse it too).
    """
    from airflow_ordo_hooks.callbacks import ledger_client

    api: Any = None  # the ledger's client: one for the event, its connection and token got once
    if drop_held and messages and ledger():
        api, messages = _not_held(messages, deadline)
    if not messages:
        return Sent([])
    started = time.monotonic()
    records = _attempt(messages, policy, deadline, inline_end, untrusted)
    ran_out = _inline_budget_ran_out(records, policy, started, deadline, inline_end)
    _metrics.first_attempts(messages, records, by, budget_ran_out=ran_out)
    attempted = [m.attempted(r, by) for m, r in zip(messages, records)]
    if not ledger():
        _metrics.retried_here(attempted, _retry_here(attempted, policy, deadline, budget_from=started), by, started)
        return Sent(records)
    handed = [m for m, r in zip(attempted, records) if r.attempts or not untrusted]
    if not handed:
        return Sent(records)
    if api is None:  # made while the try ran, or made now
        api = ledger_client.prepared_client()
    took = _hand_over(handed, deadline, api)
    _metrics.handed_over(handed, by, took)
    if not took:
        _metrics.retried_here(attempted, _retry_here(attempted, policy, deadline), by, started)
    return Sent(records, "recorded" if took else "unavailable")


def _not_held(messages: Sequence[Message], deadline: float | None) -> tuple[Any, list[Message]]:
    """
    The ledger's client, and the messages it does not hold: what it holds was sent, or will be, by
    another path (the DAG processor runs a try's failure callbacks both on a heartbeat timeout and
    on the executor's report; a run's sweep may have recovered the event). Unasked, all are sent.
    """
    from airflow_ordo_hooks.callbacks import ledger_client

    first = messages[0]
    try:
        api = ledger_client.client(deadline, ledger_client.prepared_client())
        held = ledger_client.existing([m.webhook_id for m in messages], dag_id=first.dag_id, deadline=deadline, api=api)
    except Exception as exc:  # cannot ask: send, at least once
        log.info("airflow-ordo-hooks: could not ask the ledger what %s already holds (%s)", first.event, exc)
        return None, list(messages)
    if held:
        log.info("airflow-ordo-hooks: %d delivery(ies) of %s already in the ledger (another path fired them): not sent again",
                 len(held), first.event)
    return api, [m for m in messages if m.webhook_id not in held]


def _attempt(
    messages: Sequence[Message], policy: DeliveryPolicy, deadline: float | None, inline_end: float | None, untrusted: bool
) -> list[DeliveryRecord]:
    """The first attempts, concurrently, within the policy's budget cut to what ``inline_end`` and ``deadline`` leave."""
    from airflow_ordo_hooks.hooks.webhook import deliver, deliver_all

    now = time.monotonic()
    budget = min([policy.budget, *(end - now for end in (deadline, inline_end) if end is not None)])
    first = dataclasses.replace(policy, budget=max(budget, MIN_INLINE_BUDGET))
    if untrusted:
        return [deliver(m.target, m.body, policy=first, webhook_id=m.webhook_id, untrusted=True) for m in messages]
    return deliver_all([(m.target, m.body, m.webhook_id) for m in messages], policy=first)


def _inline_budget_ran_out(
    records: Sequence[DeliveryRecord], policy: DeliveryPolicy, started: float, deadline: float | None, inline_end: float | None
) -> bool:
    """
    Whether the inline budget, shorter than what the policy and ``deadline`` allowed, ended the first
    attempts of a delivery that another attempt might have delivered: one that gave up on time
    (an error the HTTP layer retries), its attempts not all used.
    """
    if inline_end is None or inline_end >= min(started + policy.budget, math.inf if deadline is None else deadline):
        return False
    return any(not r.ok and r.attempts < policy.max_attempts and "; gave up after " in (r.error or "") for r in records)


def _hand_over(messages: Sequence[Message], deadline: float | None, api: Any) -> bool:
    """Record ``messages`` in the ledger; whether it took them (it logs why not)."""
    from airflow_ordo_hooks.callbacks import ledger_client

    if not ledger_client.record(messages, deadline=deadline, api=api):
        return False
    failed = sum(not m.delivered for m in messages)
    if failed:
        log.info("airflow-ordo-hooks: %d delivery(ies) of %s left to the API server's redelivery", failed, messages[0].event)
    return True


def _retry_here(
    messages: Sequence[Message],
    policy: DeliveryPolicy,
    deadline: float | None,
    *,
    budget_from: float | None = None,
) -> list[DeliveryRecord]:
    """
    Retry what failed within the caller's own time: up to the delivery budget counted from
    ``budget_from`` (without the ledger, the first attempts spent part of it), or, when the ledger
    could not take them, whatever the budget and ``deadline`` leave. The records of the retries,
    one per message not delivered (none when no time is left).
    """
    from airflow_ordo_hooks.hooks.webhook import deliver_all

    retry = [(m.target, m.body, m.webhook_id) for m in messages if not m.delivered]
    if not retry or deadline is None:
        return []
    now = time.monotonic()
    if budget_from is not None:
        left, enough = min(policy.budget - (now - budget_from), deadline - now), MIN_INLINE_BUDGET
    else:
        left, enough = min(policy.budget, deadline - now), MIN_RETRY_HERE
    if left > enough:
        return deliver_all(retry, policy=dataclasses.replace(policy, budget=left))
    return []


def hand_over(messages: Sequence[Message], *, api: AirflowApiHook | Future[AirflowApiHook | None] | None = None) -> bool:
    """Hand the ledger messages not attempted here (recovered events), for the API server to send; whether it took them."""
    from airflow_ordo_hooks.callbacks import ledger_client

    return ledger_client.record(messages, api=api)
