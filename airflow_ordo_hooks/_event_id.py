"""The ``webhook-id`` of an event's delivery to one target: the same from every path that sends it.

A task's callback, the recovery of a try that was killed before its callbacks ran, the API
server's redelivery and a person's Redeliver all derive it from the same facts, so a receiver
can drop duplicates by it, and the delivery ledger holds one entry per id. Pure functions.
"""

from __future__ import annotations

import base64
import hashlib

PREFIX = "msg_"


def webhook_id(
    dag_id: str, run_id: str, task_id: str | None, map_index: int, try_number: int, event: str, target: str
) -> str:
    """
    The id of ``event`` of one try (or of a DAG run: ``task_id`` ``None``) delivered to ``target``.

    ``msg_`` and 26 base32 characters (130 bits of a SHA-256), as Standard Webhooks ids look. The
    target is part of the id as written in the config, so that two targets of one event get two ids.
    """
    digest = event_digest(dag_id, run_id, task_id, map_index, try_number, event, target)
    return PREFIX + base64.b32encode(digest).decode("ascii").lower()[:26]


def event_digest(
    dag_id: str, run_id: str, task_id: str | None, map_index: int, try_number: int, event: str, target: str
) -> bytes:
    """The SHA-256 of what identifies one event of one try sent to one target: the ``webhook-id``'s and a child run id's source."""
    facts = "\0".join((dag_id, run_id, task_id or "", str(map_index), str(try_number), event, target))
    return hashlib.sha256(facts.encode("utf-8", "surrogatepass")).digest()
