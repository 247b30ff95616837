"""The record of one delivery, the same from the callback that makes it to the ledger's endpoint that takes it.

:class:`Message` is what the delivery pipeline (:mod:`airflow_ordo_hooks.callbacks.outbox`) sends and hands
over, and :meth:`Message.to_json` is the body the ledger's endpoint validates (its ``DeliveryIn``).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_ordo_hooks.hooks.webhook import DeliveryRecord


@dataclasses.dataclass(frozen=True)
class Message:
    """
    One event's payload for one target, with the ``webhook-id`` every path derives for it: what is
    sent, and the record the ledger keeps of it (:meth:`to_json` is its wire form).

    :param task_id: ``None`` for a DAG run's event.
    :param target: as written in the config; the ledger keeps it encrypted and shows it masked.
    :param body: the exact JSON body sent, or to send.
    :param source: ``callback``, ``on_exit`` or ``recovery``.
    :param not_before: ISO 8601 time before which the API server must not send it.
    :param attempts: each attempt made, with who made it (``by``).
    :param delivered: what the attempts made of it; ``None`` when none was made.
    """

    webhook_id: str
    dag_id: str
    run_id: str
    task_id: str | None
    map_index: int
    try_number: int
    event: str
    action: str
    target: str
    body: bytes
    source: str
    not_before: str | None = None
    attempts: tuple[dict[str, Any], ...] = ()
    delivered: bool | None = None

    def attempted(self, record: DeliveryRecord, by: str) -> Message:
        """This message with what ``record`` says its attempts were, made by ``by``."""
        return dataclasses.replace(self, attempts=tuple({**a, "by": by} for a in record.attempt_log), delivered=record.ok)

    def to_json(self) -> dict[str, Any]:
        """The message as the ledger's endpoint takes it; the ledger derives the masked name every reader sees."""
        outcome = "pending" if self.delivered is None else "delivered" if self.delivered else "failed"
        return {
            "webhook_id": self.webhook_id, "dag_id": self.dag_id, "run_id": self.run_id, "task_id": self.task_id,
            "map_index": self.map_index, "try_number": self.try_number, "event": self.event, "action": self.action,
            "target": self.target, "payload": self.body.decode("utf-8"), "source": self.source,
            "attempts": list(self.attempts), "outcome": outcome, "not_before": self.not_before,
        }
