"""Standard Webhooks signatures: the ``webhook-signature`` of a delivery, and its secret read and kept out of logs.

As ``standardwebhooks``' ``Webhook(secret)`` does, a delivery reads its secret's key once
(:func:`_signing_key`, which refuses a secret that is not one before anything is sent) and signs
each attempt with it (:func:`_signature`); :func:`sign` does both, for one message.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

from airflow_ordo_hooks.exceptions import SigningSecretError


def sign(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    """
    The Standard Webhooks ``webhook-signature`` value: ``v1,`` + base64 HMAC-SHA256 of ``id.timestamp.body``.

    :raises SigningSecretError: ``secret`` is not ``whsec_`` + base64 of at least one byte (the message does not quote it).
    """
    return _signature(_signing_key(secret), webhook_id, timestamp, body)


def _signature(key: bytes, webhook_id: str, timestamp: int, body: bytes) -> str:
    """:func:`sign`'s value, with the key already read from the secret (a delivery reads it once, for all its attempts)."""
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def _signing_key(secret: str) -> bytes:
    """The key of a Standard Webhooks secret (``whsec_`` + base64), or the :class:`~airflow_ordo_hooks.exceptions.SigningSecretError` :func:`sign` describes."""
    try:
        key = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if not key:
        raise SigningSecretError(
            f"the signing secret ({len(secret)} characters) is not a Standard Webhooks secret: "
            "expected 'whsec_' followed by the base64 of a key"
        )
    return key


def _mask_secret(secret: str | None) -> None:
    """Have Airflow's secrets masker hide ``secret`` in every log line of the task and its supervisor."""
    if secret:
        from airflow.sdk.log import mask_secret

        mask_secret(secret)
