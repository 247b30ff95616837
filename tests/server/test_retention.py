"""The ledger's retention on a real database created by Airflow (SQLite): what is deleted, what stays, in bounded batches."""

from __future__ import annotations

import contextlib
import threading
from datetime import timedelta

import pytest
from sqlalchemy import event, func, select, update
from sqlalchemy.orm import Session

from airflow_ordo_hooks.server import retention
from airflow_ordo_hooks.server.models import Attempt, Delivery
from tests.server.reported import SCHEDULE, T0, attempt, item, record

OLD = T0 - timedelta(days=40)
CUTOFF = T0 - timedelta(days=30)


def settled(session, n: int, *, state: str = "delivered", at=OLD, prefix: str = "t") -> list[str]:
    """``n`` deliveries recorded ``at`` as the API records them, each with its attempt, settled as ``state``; their ids."""
    answer, schedule = {"delivered": (200, SCHEDULE), "gone": (410, SCHEDULE), "failed": (503, (0,))}[state]
    items = [item(task_id=f"{prefix}{i}", outcome="delivered" if answer == 200 else "failed", attempts=[attempt(answer)])
             for i in range(n)]
    recorded = record(session, items, by="worker", schedule=schedule, now=at)
    assert {r["state"] for r in recorded} == {state}
    session.commit()
    return [r["webhook_id"] for r in recorded]


def unsettled(session, state: str, *, at=OLD) -> str:
    """A delivery waiting for its next attempt (``pending``) or being sent (``delivering``), last updated ``at``."""
    recorded = record(session, [item(task_id=f"waiting_{state}")], by="worker", schedule=SCHEDULE, now=at)
    webhook_id = recorded[0]["webhook_id"]
    session.execute(update(Delivery).where(Delivery.webhook_id == webhook_id).values(state=state))
    session.commit()
    return webhook_id


def held(session) -> set[str]:
    return set(session.scalars(select(Delivery.webhook_id)))


def attempts_of(session) -> set[str]:
    return set(session.scalars(select(Attempt.webhook_id)))


@contextlib.contextmanager
def deletes_of_deliveries():
    """The rows each ``DELETE`` of deliveries deleted, in order, on Airflow's engine."""
    from airflow import settings

    counts: list[int] = []

    def seen(conn, cursor, statement, *_):
        if statement.startswith("DELETE FROM ordo_hooks_delivery "):
            counts.append(cursor.rowcount)

    event.listen(settings.engine, "after_cursor_execute", seen)
    try:
        yield counts
    finally:
        event.remove(settings.engine, "after_cursor_execute", seen)


def test_settled_deliveries_older_than_the_cutoff_go_with_their_attempts_and_the_others_stay(ledger):
    old = [*settled(ledger, 2, state="delivered"), *settled(ledger, 1, state="gone", prefix="g"),
           *settled(ledger, 1, state="failed", prefix="f")]
    recent = settled(ledger, 1, at=CUTOFF + timedelta(minutes=1), prefix="recent")
    waiting = [unsettled(ledger, "pending", at=T0 - timedelta(days=3650)), unsettled(ledger, "delivering")]
    assert attempts_of(ledger) == {*old, *recent, *waiting}

    assert retention.prune(CUTOFF, pause=0) == 4
    assert held(ledger) == {*recent, *waiting}
    assert attempts_of(ledger) == {*recent, *waiting}
    assert retention.prune(CUTOFF, pause=0) == 0


def test_no_attempt_is_left_without_its_delivery_where_sqlite_enforces_no_foreign_keys(ledger):
    from airflow import settings

    old = settled(ledger, 3)
    kept = settled(ledger, 1, at=T0, prefix="kept")
    with settings.engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")  # no ON DELETE CASCADE on this connection
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 0
        assert retention.delete_batch(Session(bind=connection), CUTOFF) == 3
        connection.commit()
        connection.exec_driver_sql("PRAGMA foreign_keys=ON")  # as Airflow's engine sets it, before it goes back to the pool
    assert not set(old) & attempts_of(ledger)
    assert attempts_of(ledger) == set(kept) == held(ledger)


def test_1200_old_deliveries_go_in_three_batches_of_500_at_the_most(ledger):
    settled(ledger, 1200)
    batches = []
    with deletes_of_deliveries() as counts:
        assert retention.prune(CUTOFF, batch=500, max_batches=2, pause=0, each=batches.append) == 1000
        assert ledger.scalar(select(func.count()).select_from(Delivery)) == 200
        assert retention.prune(CUTOFF, batch=500, pause=0, each=batches.append) == 200
    assert counts == [500, 500, 200] and batches == [500, 500, 200]
    assert not held(ledger) and not attempts_of(ledger)


def test_a_dry_run_counts_per_state_and_deletes_nothing(ledger):
    settled(ledger, 2)
    settled(ledger, 1, state="failed", prefix="f")
    settled(ledger, 1, at=T0, prefix="recent")
    unsettled(ledger, "pending")
    before = held(ledger)
    assert retention.count(ledger, CUTOFF) == {"delivered": 2, "gone": 0, "failed": 1}
    assert held(ledger) == before


@pytest.mark.parametrize("days, kept", [(0, None), (30, CUTOFF)])
def test_the_cutoff_is_retention_days_back_from_now_and_none_keeps_everything(monkeypatch, days, kept):
    monkeypatch.setenv("AIRFLOW__ORDO_HOOKS__RETENTION_DAYS", str(days))
    assert retention.retention_cutoff(T0) == kept


def test_two_pruners_deleting_the_same_rows_at_once_do_not_fail(ledger):
    from airflow import settings

    old = settled(ledger, 300)
    first, second = Session(bind=settings.engine), Session(bind=settings.engine)
    got: dict[str, int] = {}
    try:
        got["first"] = retention.delete_batch(first, CUTOFF)  # not committed: it holds SQLite's write lock
        # the second reads the same rows (the first's deletion is not committed) and waits for the lock
        later = threading.Thread(target=lambda: got.update(second=retention.delete_batch(second, CUTOFF)))
        later.start()
        later.join(0.5)
        assert later.is_alive(), "the second did not wait for the first's lock: the test deletes nothing at once"
        first.commit()
        later.join(10)
        second.commit()
    finally:
        first.close()
        second.close()
    assert got == {"first": 300, "second": 0}
    assert not set(old) & (held(ledger) | attempts_of(ledger))


def test_concurrent_prunes_delete_everything_once_without_error(ledger):
    settled(ledger, 1200)
    totals, errors = [], []

    def prune():
        try:
            totals.append(retention.prune(CUTOFF, batch=100, pause=0))
        except Exception as error:  # noqa: BLE001 - the assertion below names it
            errors.append(error)

    threads = [threading.Thread(target=prune) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors and sum(totals) == 1200
    assert not held(ledger) and not attempts_of(ledger)
