"""How a delivery is shown: the one dict every reader shows (the API, the view, the CLI), and its parts.

A delivery's real target is stored only encrypted with Airflow's Fernet key, as connection
passwords are (:mod:`~airflow_ordo_hooks.server.crypto`); :func:`target_of` is the one way back to
it, for the API server that sends. Every text shows it masked (:func:`shown_target`), and every
error stored is masked too (:func:`clean_error`). A payload is shown parsed and masked by Airflow's
secrets masker (:func:`shown_payload`).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from airflow_ordo_hooks._targets import CONN_PREFIX, mask_text
from airflow_ordo_hooks.server.models import Delivery

MAX_ERROR = 2000
"""The longest error text kept per attempt (the delivery path writes at most 300)."""


def as_dict(row: Delivery, *, full: bool = True, payload: bool = True) -> dict[str, Any]:
    """
    A delivery as every reader shows it (the API, the view, the CLI): every column but the encrypted
    target, and ``latency_ms`` (its last attempt's); when ``full``, also its attempts and its payload
    (:func:`shown_payload`), or ``None`` for it unless ``payload``.
    """
    shown = {
        "webhook_id": row.webhook_id,
        "dag_id": row.dag_id,
        "run_id": row.run_id,
        "task_id": row.task_id,
        "map_index": row.map_index,
        "try_number": row.try_number,
        "event": row.event,
        "action": row.action,
        "target_masked": row.target_masked,
        "source": row.source,
        "state": row.state,
        "attempt_count": row.attempt_count,
        "latency_ms": row.attempts[-1].elapsed_ms if row.attempts else None,
        "next_attempt_at": _iso(row.next_attempt_at),
        "last_status_code": row.last_status_code,
        "last_error": row.last_error,
        "created_at": _iso(row.created_at),
        "updated_at": _iso(row.updated_at),
    }
    if not full:
        return shown
    return {**shown, "payload": shown_payload(row.payload) if payload else None, "attempts": attempts_of(row)}


def attempts_of(row: Delivery) -> list[dict[str, Any]]:
    """A delivery's attempts as every reader shows them, first first."""
    return [
        {"number": a.number, "at": _iso(a.at), "status_code": a.status_code, "error": a.error,
         "elapsed_ms": a.elapsed_ms, "by": a.by}
        for a in row.attempts
    ]


def shown_payload(text: str) -> Any:
    """
    A stored payload as every reader shows it: parsed, and masked by Airflow's secrets masker
    (secrets it knows, values of keys such as ``password`` or ``token``).
    """
    from airflow.sdk.log import redact

    try:
        payload: Any = json.loads(text)
    except ValueError:  # recorded by a client that did not send JSON: shown as it is
        payload = text
    return redact(payload)


def describe(row: Delivery) -> str:
    """``dag D, run R, task T[3], try 2``: what event of what a delivery is, for log lines."""
    text = f"dag {row.dag_id}, run {row.run_id}"
    if row.task_id is not None:
        text += f", task {row.task_id}{f'[{row.map_index}]' if row.map_index >= 0 else ''}, try {row.try_number}"
    return text


def target_of(row: Delivery) -> str:
    """
    The real target of a delivery, decrypted (:func:`~airflow_ordo_hooks.server.crypto.decrypt`).

    :raises cryptography.fernet.InvalidToken: ``[core] fernet_key`` no longer holds the key it was encrypted with.
    """
    from airflow_ordo_hooks.server import crypto

    return crypto.decrypt(row.target_encrypted, row.target_is_encrypted)


def shown_target(target: str) -> str:
    """
    What any text may show of ``target``: every URL masked, and a ``conn:`` target's endpoint (a
    Slack path is a secret) left out; at most 300 characters. Derived here, never taken from a
    caller: a reader sees where the API server sends.
    """
    return _masked(target, target)[:300]


def clean_error(error: str | None, target: str | None = None) -> str | None:
    """An attempt's error as stored: every URL in it masked, at most :data:`MAX_ERROR` characters."""
    if not error:
        return None
    text = _masked(error, target) if target else mask_text(error, [])
    return text if len(text) <= MAX_ERROR else text[: MAX_ERROR - 3] + "..."


def _masked(text: str, target: str) -> str:
    """``text`` with every URL masked, ``target`` too, and the endpoint of a ``conn:`` ``target`` left out."""
    text = mask_text(text, [target])
    if target.startswith(CONN_PREFIX):
        endpoint = target[len(CONN_PREFIX) :].partition("/")[2]
        if len(endpoint) >= 4:
            text = text.replace(endpoint, "…")
    return text


def _iso(when: datetime | None) -> str | None:
    return when.isoformat() if when is not None else None
