"""``airflow ordo-hooks db-clean`` through Airflow's own CLI parser, on the real ledger (SQLite)."""

from __future__ import annotations

import builtins
from datetime import timedelta

from sqlalchemy import select

from airflow_ordo_hooks.server.models import Attempt, Delivery
from tests.cli.test_commands import cli
from tests.server.reported import SCHEDULE, T0, attempt, item, record

BEFORE = (T0 - timedelta(days=30)).isoformat()


def ledger_of(session) -> dict[str, str]:
    """``{task_id: state}`` of every delivery the ledger holds; each has the attempt it was recorded with."""
    session.expire_all()
    rows = dict(session.execute(select(Delivery.task_id, Delivery.state)).all())
    assert set(session.scalars(select(Attempt.webhook_id))) == set(session.scalars(select(Delivery.webhook_id)))
    return rows


def fill(session) -> dict[str, str]:
    """Two settled deliveries of 40 days ago, one pending of 40 days ago, one delivered within the 30 days."""
    long_ago, lately = T0 - timedelta(days=40), T0 - timedelta(days=29)
    record(session, [item(task_id="old_delivered", outcome="delivered", attempts=[attempt(200)])], by="worker", now=long_ago)
    record(session, [item(task_id="old_failed")], by="worker", schedule=(0,), now=long_ago)
    record(session, [item(task_id="old_pending")], by="worker", schedule=SCHEDULE, now=long_ago)
    record(session, [item(task_id="lately", outcome="delivered", attempts=[attempt(200)])], by="worker", now=lately)
    session.commit()
    return ledger_of(session)


def test_a_dry_run_counts_per_state_and_deletes_nothing(ledger):
    before = fill(ledger)
    code, out = cli("db-clean", "--clean-before-timestamp", BEFORE, "--dry-run")
    assert code == 0, out
    assert "  delivered: 1\n  gone: 0\n  failed: 1\n" in out and "Dry run: 2 deliveries would be deleted; nothing was" in out
    assert ledger_of(ledger) == before


def test_yes_deletes_only_settled_deliveries_before_the_timestamp_with_their_attempts(ledger):
    fill(ledger)
    code, out = cli("db-clean", "--clean-before-timestamp", BEFORE, "--yes", "--verbose")
    assert code == 0, out
    assert "  batch 1: 2 deleted" in out and "Deleted 2 settled deliveries, with their attempts, in 1 batch(es)" in out
    assert ledger_of(ledger) == {"old_pending": "pending", "lately": "delivered"}
    code, out = cli("db-clean", "--clean-before-timestamp", BEFORE, "-y")
    assert code == 0 and "Nothing to delete" in out


def test_without_yes_it_deletes_only_once_confirmed_as_airflow_db_clean_asks(ledger, monkeypatch):
    before = fill(ledger)
    monkeypatch.setattr(builtins, "input", lambda *_: "yes")
    code, out = cli("db-clean", "--clean-before-timestamp", BEFORE)
    assert code == 1 and "Enter 'delete rows' (without quotes) to proceed." in out and "User did not confirm; exiting." in out
    assert ledger_of(ledger) == before
    monkeypatch.setattr(builtins, "input", lambda *_: "delete rows")
    code, out = cli("db-clean", "--clean-before-timestamp", BEFORE)
    assert code == 0 and "Deleted 2 settled deliveries" in out
    assert set(ledger_of(ledger)) == {"old_pending", "lately"}


def test_a_timestamp_without_a_time_zone_is_read_as_airflow_db_clean_reads_it(ledger):
    fill(ledger)
    # Airflow's default time zone (UTC here), parsed by Airflow's own argument
    code, out = cli("db-clean", "--clean-before-timestamp", (T0 - timedelta(days=35)).strftime("%Y-%m-%d %H:%M:%S"), "--dry-run")
    assert code == 0 and f"before {(T0 - timedelta(days=35)).replace(microsecond=0).isoformat()}" in out
    assert "  delivered: 1\n  gone: 0\n  failed: 1\n" in out
