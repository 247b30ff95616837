"""A delivery's real target at rest: encrypted with Airflow's Fernet key, as Airflow keeps connection passwords.

A target is a URL (a Slack webhook's path is its secret) or ``conn:<conn_id>[/<endpoint>]``. It is
stored encrypted with ``[core] fernet_key`` and ``target_is_encrypted`` records that it is, as
``Connection.is_encrypted`` does. Without a key Airflow encrypts nothing, and neither does the
ledger: the target is then stored as it is, the row says so, and :func:`warn_if_no_key` says it
once per process. After ``airflow rotate-fernet-key``, :func:`reencrypt` (``airflow ordo-hooks
rotate-fernet-key``) does for the ledger what that command does for connections and variables.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from airflow_ordo_hooks.exceptions import FernetKeyError, UndecryptableTargets

if TYPE_CHECKING:
    from collections.abc import Iterator

    from cryptography.fernet import Fernet, MultiFernet
    from sqlalchemy import Row
    from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

BATCH = 500
"""Deliveries read and re-encrypted at a time by :func:`reencrypt` (their targets only, never their payloads)."""
_warned = False


def encrypt(target: str) -> tuple[str, bool]:
    """
    ``target`` as the ledger stores it.

    :return: ``(stored text, whether it is encrypted)``: encrypted with ``[core] fernet_key``, or,
        when it is empty, the target itself and ``False``, as Airflow stores a connection's password.
    """
    from airflow.models.crypto import get_fernet

    fernet = get_fernet()
    return fernet.encrypt(target.encode("utf-8")).decode("utf-8"), fernet.is_encrypted


def decrypt(stored: str, encrypted: bool | None) -> str:
    """
    The real target of a delivery stored as ``stored``.

    :param encrypted: the row's ``target_is_encrypted``; ``None`` for a row written without it (by an
        API server of an earlier version), told apart by its form.
    :raises FernetKeyError: the target is encrypted and ``[core] fernet_key`` is empty.
    :raises cryptography.fernet.InvalidToken: ``[core] fernet_key`` no longer holds the key it was encrypted with.
    """
    if encrypted is None:
        encrypted = _is_token(stored)
    if not encrypted:
        return stored
    from airflow.models.crypto import get_fernet

    fernet = get_fernet()
    if not fernet.is_encrypted:
        raise FernetKeyError("the target is stored encrypted, but [core] fernet_key is empty: it cannot be decrypted")
    return fernet.decrypt(stored.encode("utf-8")).decode("utf-8")


def _is_token(stored: str) -> bool:
    # Every target holds a colon (https://…, conn:…); a Fernet token, URL-safe base64, never does.
    return ":" not in stored


def warn_if_no_key() -> None:
    """Log one WARNING per process if ``[core] fernet_key`` is empty: targets are then stored in plain text."""
    global _warned
    if _warned:
        return
    _warned = True
    from airflow.configuration import conf

    if not conf.get("core", "fernet_key", fallback=""):
        log.warning(
            "empty cryptography key - delivery targets of the airflow-ordo-hooks ledger (webhook URLs, which may hold "
            "their secret in their path) will be stored in plain text. Set [core] fernet_key "
            "(AIRFLOW__CORE__FERNET_KEY) on every Airflow component, then run `airflow ordo-hooks rotate-fernet-key` "
            "to encrypt those already stored."
        )


def _keys() -> tuple[Fernet, MultiFernet]:
    """The first key of ``[core] fernet_key``, and all of them, read as Airflow reads them."""
    from airflow.configuration import conf
    from cryptography.fernet import Fernet, MultiFernet

    text = conf.get("core", "fernet_key", fallback="")
    if not text:
        raise FernetKeyError("[core] fernet_key is empty: there is no key to encrypt targets with")
    try:
        keys = [Fernet(part.encode("utf-8")) for part in text.split(",")]
    except (ValueError, TypeError) as error:
        raise FernetKeyError(f"[core] fernet_key cannot be read as Fernet keys: {error}") from None
    return keys[0], MultiFernet(keys)


def reencrypt(session: Session, *, batch: int = BATCH) -> int:
    """
    Re-encrypt every delivery's target with the first key of ``[core] fernet_key``, as ``airflow
    rotate-fernet-key`` does connections (``MultiFernet.rotate``); a target stored in plain text is
    encrypted. Those already encrypted with the first key are left. Run it with ``[core] fernet_key``
    set to ``new,old``; afterwards ``new`` alone decrypts them all.

    Reads ``batch`` targets at a time, and changes a row only if its target is still what was read
    (an API server may write meanwhile). Flushes, never commits: the caller owns the transaction.

    :return: how many deliveries were re-encrypted.
    :raises FernetKeyError: ``[core] fernet_key`` is empty or unreadable (nothing changed).
    :raises UndecryptableTargets: after re-encrypting every other target, naming those no key decrypts
        (its ``changed`` says how many were re-encrypted).
    """
    from cryptography.fernet import InvalidToken

    first, every = _keys()
    changed, undecryptable = 0, []
    for webhook_id, stored, encrypted in _stored_targets(session, batch):
        try:
            new = _rotated(first, every, stored, encrypted)
        except InvalidToken:
            undecryptable.append(webhook_id)
            continue
        if new is not None:
            changed += _replace_target(session, webhook_id, stored, new)
    session.flush()
    if undecryptable:
        raise UndecryptableTargets(changed, undecryptable)
    return changed


def _stored_targets(session: Session, batch: int) -> Iterator[Row[tuple[str, str, bool | None]]]:
    """Every delivery's ``(webhook_id, stored target, target_is_encrypted)``, read ``batch`` rows at a time in webhook_id order."""
    from sqlalchemy import select

    from airflow_ordo_hooks.server.models import Delivery

    after = ""
    while True:
        rows = session.execute(
            select(Delivery.webhook_id, Delivery.target_encrypted, Delivery.target_is_encrypted)
            .where(Delivery.webhook_id > after)
            .order_by(Delivery.webhook_id)
            .limit(batch)
        ).all()
        if not rows:
            return
        after = rows[-1].webhook_id
        yield from rows


def _rotated(first: Fernet, every: MultiFernet, stored: str, encrypted: bool | None) -> bytes | None:
    """
    ``stored`` encrypted with the first key: a plain target encrypted, a token rotated; ``None`` if
    it already is.

    :raises cryptography.fernet.InvalidToken: no key decrypts it.
    """
    token = _is_token(stored) if encrypted is None else encrypted
    if not token:
        return first.encrypt(stored.encode("utf-8"))
    if encrypted and _decrypts(first, stored):
        return None
    return every.rotate(stored.encode("utf-8"))


def _replace_target(session: Session, webhook_id: str, stored: str, new: bytes) -> int:
    """Store ``new`` as the delivery's target if its target is still ``stored`` (an API server may write meanwhile); rows changed."""
    from sqlalchemy import update

    from airflow_ordo_hooks.server.models import Delivery

    result = session.execute(
        update(Delivery)
        .where(Delivery.webhook_id == webhook_id, Delivery.target_encrypted == stored)
        .values(target_encrypted=new.decode("utf-8"), target_is_encrypted=True)
        .execution_options(synchronize_session="fetch")
    )
    return result.rowcount


def _decrypts(key: Fernet, token: str) -> bool:
    from cryptography.fernet import InvalidToken

    try:
        key.decrypt(token.encode("utf-8"))
    except InvalidToken:
        return False
    return True
