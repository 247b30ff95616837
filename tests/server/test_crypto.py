"""Targets at rest: encrypted with Airflow's Fernet key, recorded as such, re-encrypted after a key rotation; the migration that records it."""

from __future__ import annotations

import logging

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select, text

from airflow_ordo_hooks.exceptions import FernetKeyError, UndecryptableTargets
from airflow_ordo_hooks.server import crypto
from airflow_ordo_hooks.server.models import Delivery

SECRET_URL = "https://hooks.slack.com/services/T000/B000/s3cr3t-path"
OLD, NEW, LOST = Fernet.generate_key().decode(), Fernet.generate_key().decode(), Fernet.generate_key().decode()


def delivery(webhook_id: str, target: str, *, encrypted: bool | None) -> Delivery:
    """A row of the ledger with ``target`` stored as ``[core] fernet_key`` stores it now; ``encrypted`` is what the row records."""
    from airflow_ordo_hooks.server.schedule import utcnow

    stored, _ = crypto.encrypt(target)
    return Delivery(
        webhook_id=webhook_id, dag_id="coffee_shop", run_id="manual__1", task_id="brew", map_index=-1, try_number=1,
        event="on_error", action="notify_slack_webhook", target_masked="https://hooks.slack.com/…#abcdef",
        target_encrypted=stored, target_is_encrypted=encrypted, payload="{}", source="callback", state="failed",
        attempt_count=1, created_at=utcnow(), updated_at=utcnow(),
    )


def test_with_a_key_a_target_is_stored_encrypted_and_says_so(fernet_key):
    fernet_key(NEW)
    stored, encrypted = crypto.encrypt(SECRET_URL)
    assert encrypted is True and stored != SECRET_URL and "s3cr3t" not in stored
    assert Fernet(NEW.encode()).decrypt(stored.encode()).decode() == SECRET_URL
    assert crypto.decrypt(stored, True) == crypto.decrypt(stored, None) == SECRET_URL


def test_without_a_key_a_target_is_stored_plain_says_so_and_the_process_warns_once(fernet_key, monkeypatch, caplog):
    fernet_key("")
    monkeypatch.setattr(crypto, "_warned", False)
    assert crypto.encrypt(SECRET_URL) == (SECRET_URL, False)
    assert crypto.decrypt(SECRET_URL, False) == crypto.decrypt(SECRET_URL, None) == SECRET_URL
    with caplog.at_level(logging.WARNING, logger="airflow_ordo_hooks.server.crypto"):
        crypto.warn_if_no_key()
        crypto.warn_if_no_key()
    (warning,) = [r for r in caplog.records if r.name == "airflow_ordo_hooks.server.crypto"]
    assert warning.levelno == logging.WARNING
    assert warning.getMessage().startswith("empty cryptography key - delivery targets of the airflow-ordo-hooks ledger")
    for said in ("stored in plain text", "[core] fernet_key", "airflow ordo-hooks rotate-fernet-key"):
        assert said in warning.getMessage()


def test_with_a_key_the_process_does_not_warn(fernet_key, monkeypatch, caplog):
    fernet_key(NEW)
    monkeypatch.setattr(crypto, "_warned", False)
    with caplog.at_level(logging.WARNING, logger="airflow_ordo_hooks.server.crypto"):
        crypto.warn_if_no_key()
    assert not [r for r in caplog.records if r.name == "airflow_ordo_hooks.server.crypto"]


@pytest.mark.parametrize("key", [NEW, ""])
def test_a_recorded_delivery_says_whether_its_target_is_encrypted(ledger, fernet_key, key):
    from airflow_ordo_hooks._event_id import webhook_id
    from airflow_ordo_hooks.server.shown import target_of
    from tests.server.reported import record

    fernet_key(key)
    wid = webhook_id("coffee_shop", "manual__1", "brew", -1, 1, "on_error", SECRET_URL)
    record(ledger, [{
        "webhook_id": wid, "dag_id": "coffee_shop", "run_id": "manual__1", "task_id": "brew", "map_index": -1, "try_number": 1,
        "event": "on_error", "action": "notify_slack_webhook", "target": SECRET_URL, "payload": "{}", "source": "callback",
        "outcome": "failed", "not_before": None, "attempts": [],
    }], by="worker")
    ledger.commit()
    ledger.expire_all()
    row = ledger.get(Delivery, wid)
    assert row.target_is_encrypted is bool(key)
    assert (row.target_encrypted != SECRET_URL and "s3cr3t" not in row.target_encrypted) if key else row.target_encrypted == SECRET_URL
    assert target_of(row) == SECRET_URL


def test_an_encrypted_target_is_not_read_without_the_key_nor_with_another(fernet_key):
    from cryptography.fernet import InvalidToken

    fernet_key(OLD)
    stored, _ = crypto.encrypt(SECRET_URL)
    fernet_key("")
    with pytest.raises(FernetKeyError, match=r"stored encrypted, but \[core\] fernet_key is empty"):
        crypto.decrypt(stored, True)
    fernet_key(NEW)
    with pytest.raises(InvalidToken):
        crypto.decrypt(stored, True)


def test_reencrypt_after_a_rotation_leaves_every_target_readable_with_the_new_key_alone(ledger, fernet_key):
    targets = {f"msg_{i}": f"{SECRET_URL}/{i}" for i in range(7)}
    fernet_key(OLD)
    rows = [delivery(w, t, encrypted=True) for w, t in list(targets.items())[:3]]
    rows.append(delivery("msg_3", targets["msg_3"], encrypted=None))  # written before the column
    fernet_key("")  # written while the deployment had no key
    rows += [delivery("msg_4", targets["msg_4"], encrypted=False), delivery("msg_5", targets["msg_5"], encrypted=None)]
    fernet_key(NEW)
    rows.append(delivery("msg_6", targets["msg_6"], encrypted=True))  # already under the new key
    ledger.add_all(rows)
    ledger.commit()

    fernet_key(f"{NEW},{OLD}")  # as after `airflow rotate-fernet-key`
    assert crypto.reencrypt(ledger, batch=2) == 6
    ledger.commit()

    fernet_key(NEW)
    ledger.expire_all()
    stored = ledger.scalars(select(Delivery)).all()
    assert {r.webhook_id: crypto.decrypt(r.target_encrypted, r.target_is_encrypted) for r in stored} == targets
    assert {r.target_is_encrypted for r in stored} == {True}
    assert all("s3cr3t" not in r.target_encrypted for r in stored)
    assert crypto.reencrypt(ledger) == 0, "every target is under the first key already"


def test_reencrypt_leaves_what_no_key_decrypts_and_names_it(ledger, fernet_key):
    fernet_key(LOST)
    lost = delivery("msg_lost", SECRET_URL, encrypted=True)
    fernet_key(OLD)
    ledger.add_all([lost, delivery("msg_old", SECRET_URL, encrypted=True)])
    ledger.commit()
    lost_text = lost.target_encrypted

    fernet_key(f"{NEW},{OLD}")
    with pytest.raises(UndecryptableTargets, match="decrypts the target of 1 deliveries") as refused:
        crypto.reencrypt(ledger)
    assert refused.value.changed == 1 and refused.value.webhook_ids == ["msg_lost"]
    ledger.commit()
    ledger.expire_all()
    assert ledger.get(Delivery, "msg_lost").target_encrypted == lost_text
    fernet_key(NEW)
    assert crypto.decrypt(ledger.get(Delivery, "msg_old").target_encrypted, True) == SECRET_URL


@pytest.mark.parametrize("key, message", [("", "is empty"), ("not-a-key", "cannot be read as Fernet keys")])
def test_reencrypt_without_a_usable_key_changes_nothing(ledger, fernet_key, key, message):
    fernet_key("")
    ledger.add(delivery("msg_plain", SECRET_URL, encrypted=False))
    ledger.commit()
    fernet_key(key)
    with pytest.raises(FernetKeyError, match=message):
        crypto.reencrypt(ledger)
    ledger.expire_all()
    assert ledger.get(Delivery, "msg_plain").target_encrypted == SECRET_URL


# -- the migration that records it -----------------------------------------------------------------
def test_airflow_db_migrate_upgrades_a_ledger_from_its_first_revision_keeping_its_rows(tmp_path, monkeypatch, fernet_key):
    """A database whose ledger is at the first revision, with rows: ``airflow db migrate`` (the db-manager's initdb) upgrades it."""
    from airflow import settings
    from alembic import command
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    from airflow_ordo_hooks._targets import fingerprint
    from airflow_ordo_hooks.server.db_manager import OrdoHooksDBManager
    from airflow_ordo_hooks.server.models import metadata

    url = f"sqlite:///{tmp_path / 'airflow.db'}"
    engine = create_engine(url)
    monkeypatch.setattr(settings, "engine", engine)  # the migrations' env.py connects to Airflow's engine
    monkeypatch.setattr(settings, "SQL_ALCHEMY_CONN", url)
    fernet_key(OLD)
    encrypted, _ = crypto.encrypt(SECRET_URL)
    with Session(engine) as session:
        manager = OrdoHooksDBManager(session)
        command.upgrade(manager.get_alembic_config(), "5d1e7a3c9b20")
        session.execute(text(
            "INSERT INTO ordo_hooks_delivery (webhook_id, dag_id, run_id, task_id, map_index, try_number, event, action, "
            "target_masked, target_encrypted, payload, source, state, attempt_count, created_at, updated_at) VALUES "
            "(:id, 'coffee_shop', 'manual__1', 'brew', -1, 1, 'on_error', 'notify_webhook', 'https://hooks.slack.com/…#abcdef', "
            ":stored, '{\"status\": 3}', 'callback', 'failed', 1, '2026-11-23 08:00:00', '2026-11-23 08:00:00')"
        ), [{"id": "msg_encrypted", "stored": encrypted}, {"id": "msg_plain", "stored": SECRET_URL}])
        session.commit()
        assert manager.get_current_revision() == "5d1e7a3c9b20"

        manager.initdb()  # what `airflow db migrate` runs for every db-manager
        session.commit()

        (head,) = manager.get_script_object().get_heads()
        assert manager.get_current_revision() == head != "5d1e7a3c9b20"
        rows = {r.webhook_id: r for r in session.scalars(select(Delivery))}
        assert {w: (r.target_is_encrypted, r.payload) for w, r in rows.items()} == {
            "msg_encrypted": (True, '{"status": 3}'), "msg_plain": (False, '{"status": 3}'),
        }
        assert {w: crypto.decrypt(r.target_encrypted, r.target_is_encrypted) for w, r in rows.items()} == {
            "msg_encrypted": SECRET_URL, "msg_plain": SECRET_URL,
        }
        # each row's target fingerprint, from its decrypted target: both name the same target
        assert {w: r.target_fingerprint for w, r in rows.items()} == {
            "msg_encrypted": fingerprint(SECRET_URL), "msg_plain": fingerprint(SECRET_URL),
        }
        with engine.connect() as connection:  # the migrated tables are those the ORM creates on a new database
            ours = {"include_object": lambda _o, name, type_, *_: type_ != "table" or name in metadata.tables}
            assert compare_metadata(MigrationContext.configure(connection, opts=ours), metadata) == []
    engine.dispose()
