"""Claims and attempts on a real database created by Airflow (SQLite): what is due, who claims it, what an attempt makes of it."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from airflow import settings

from airflow_ordo_hooks.server.claims import claim_due, due_ids, finish_attempt, take
from tests.server.reported import SCHEDULE, SECRET_URL, T0, item, record, row


def test_the_schedule_runs_to_failed_with_one_error_line(ledger, caplog):
    given = item(attempts=[])
    record(ledger, [given], by="worker", schedule=SCHEDULE, now=T0)
    ledger.commit()
    states = []
    with caplog.at_level(logging.ERROR, logger="airflow_ordo_hooks.server.schedule"):
        for n in range(3):
            at = T0 + timedelta(seconds=400 * n)
            states.append(finish_attempt(
                ledger, given["webhook_id"], status_code=502, error=f"HTTP 502 from {SECRET_URL}",
                elapsed_ms=100, at=at, by="api-server", schedule=SCHEDULE,
            ))
            ledger.commit()
            if n == 0:
                assert row(ledger, given["webhook_id"]).next_attempt_at == at + timedelta(milliseconds=100, seconds=5)
            if n == 1:
                assert row(ledger, given["webhook_id"]).next_attempt_at == at + timedelta(milliseconds=100, seconds=300)
    assert states == ["pending", "pending", "failed"]
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    line = errors[0].getMessage()
    for part in ("on_error", "dag coffee_shop, run manual__2026-11-23, task brew, try 1", "https://hooks.example.com/…#",
                 "3 attempt(s)", "HTTP 502"):
        assert part in line, line
    assert "s3cr3t" not in line and "t0k3n" not in line
    got = row(ledger, given["webhook_id"])
    assert (got.state, got.next_attempt_at, [a.by for a in got.attempts]) == ("failed", None, ["api-server"] * 3)


def test_410_means_gone_and_2xx_delivered(ledger):
    gone, ok = item(task_id="g", attempts=[]), item(task_id="o", attempts=[])
    record(ledger, [gone, ok], by="worker", schedule=SCHEDULE, now=T0)
    finish = {"elapsed_ms": 3, "at": T0, "by": "api-server", "schedule": SCHEDULE}
    assert finish_attempt(ledger, gone["webhook_id"], status_code=410, error="HTTP 410", **finish) == "gone"
    assert finish_attempt(ledger, ok["webhook_id"], status_code=204, error=None, **finish) == "delivered"
    ledger.commit()
    assert row(ledger, gone["webhook_id"]).last_status_code == 410


def test_of_two_processes_that_saw_one_due_delivery_only_one_claims_it(ledger):
    given = item(attempts=[])
    record(ledger, [given], by="worker", schedule=SCHEDULE, now=T0)
    ledger.commit()
    other = settings.NonScopedSession()
    try:
        now = T0 + timedelta(seconds=1)
        assert due_ids(ledger, now, 10) == due_ids(other, now, 10) == [given["webhook_id"]]
        assert take(ledger, given["webhook_id"], now, lease_seconds=30) is True
        ledger.commit()
        assert take(other, given["webhook_id"], now, lease_seconds=30) is False
        other.commit()
        assert claim_due(other, now, lease_seconds=30, limit=10) == []
    finally:
        other.close()
    got = row(ledger, given["webhook_id"])
    assert (got.state, got.next_attempt_at) == ("delivering", now + timedelta(seconds=30))


def test_concurrent_claimers_take_each_due_delivery_exactly_once(ledger):
    items = [item(task_id=f"t{i}", attempts=[]) for i in range(30)]
    record(ledger, items, by="worker", schedule=SCHEDULE, now=T0)
    ledger.commit()
    now, start, claims, errors = T0 + timedelta(seconds=1), threading.Barrier(5), [], []

    def claimer():
        session = settings.NonScopedSession()
        try:
            start.wait()
            while True:
                taken = [r.webhook_id for r in claim_due(session, now, lease_seconds=30, limit=4)]
                session.commit()
                if not taken:
                    return
                claims.extend(taken)
        except Exception as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)
        finally:
            session.close()

    threads = [threading.Thread(target=claimer) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert sorted(claims) == sorted(i["webhook_id"] for i in items)


def test_a_claim_whose_lease_has_passed_is_claimed_again(ledger):
    given = item(attempts=[])
    record(ledger, [given], by="worker", schedule=SCHEDULE, now=T0)
    assert [r.webhook_id for r in claim_due(ledger, T0, lease_seconds=20, limit=5)] == [given["webhook_id"]]
    ledger.commit()
    assert claim_due(ledger, T0 + timedelta(seconds=19), lease_seconds=20, limit=5) == []
    again = claim_due(ledger, T0 + timedelta(seconds=20), lease_seconds=20, limit=5)
    assert [(r.webhook_id, r.state, r.next_attempt_at) for r in again] == [
        (given["webhook_id"], "delivering", T0 + timedelta(seconds=40))
    ]
