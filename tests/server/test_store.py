"""The ledger's store on a real database created by Airflow (SQLite): recording, merging, the schedule, claims, encryption."""

from __future__ import annotations

import json
import logging
import threading
from datetime import datetime, timedelta, timezone

import pytest
from airflow import settings
from sqlalchemy import select, text

from airflow_ordo_hooks._event_id import webhook_id
from airflow_ordo_hooks.exceptions import LedgerConflict
from airflow_ordo_hooks.server.claims import claim_due, due_ids, finish_attempt, take
from airflow_ordo_hooks.server.models import Delivery
from airflow_ordo_hooks.server.queries import existing, query
from airflow_ordo_hooks.server.shown import as_dict, target_of
from tests.server.reported import record

SCHEDULE = (0, 5, 300)
SECRET_URL = "https://hooks.example.com/services/T000/B000/s3cr3t-path?token=t0k3n"
T0 = datetime(2026, 11, 23, 8, 0, 0, 123456, tzinfo=timezone.utc)


def attempt(status_code, at=T0, *, by="worker", elapsed_ms=40, error=None):
    """One attempt as a client reports it."""
    error = error if error is not None else (None if status_code == 200 else f"HTTP {status_code}")
    return {"at": at.isoformat(), "status_code": status_code, "error": error, "elapsed_ms": elapsed_ms, "by": by}


def item(**changes):
    """An item as the API's POST receives it: a task's on_error, delivered once inline and failed."""
    base = {
        "dag_id": "coffee_shop", "run_id": "manual__2026-11-23", "task_id": "brew", "map_index": -1,
        "try_number": 1, "event": "on_error", "action": "notify_webhook", "target": SECRET_URL,
        "target_masked": "https://hooks.example.com/…#abcdef", "payload": json.dumps({"name": "brew", "status": 3}),
        "source": "callback", "outcome": "failed", "not_before": None,
        "attempts": [attempt(503)],
    }
    base.update(changes)
    base.setdefault("webhook_id", webhook_id(base["dag_id"], base["run_id"], base["task_id"], base["map_index"],
                                             base["try_number"], base["event"], base["target"]))
    return base


def row(session, webhook_id) -> Delivery:
    session.expire_all()
    return session.get(Delivery, webhook_id)


def test_a_failed_callback_delivery_is_inserted_pending_until_the_schedules_next_wait(ledger):
    given = item()
    assert record(ledger, [given], by="worker", schedule=SCHEDULE) == [
        {"webhook_id": given["webhook_id"], "state": "pending", "created": True}
    ]
    ledger.commit()
    got = row(ledger, given["webhook_id"])
    assert (got.state, got.attempt_count, got.last_status_code, got.source) == ("pending", 1, 503, "callback")
    # attempt 1 ended 40 ms after it started; attempt 2 is schedule[1] = 5 s after that
    assert got.next_attempt_at == T0 + timedelta(milliseconds=40, seconds=5)
    assert [(a.number, a.status_code, a.by) for a in got.attempts] == [(1, 503, "worker")]
    assert existing(ledger, [given["webhook_id"], "msg_unknown"]) == {given["webhook_id"]}


def test_outcomes_of_a_new_row(ledger):
    delivered = item(task_id="a", outcome="delivered", attempts=[attempt(200)])
    gone = item(task_id="b", attempts=[attempt(410)])
    later = T0 + timedelta(minutes=10)
    waiting = item(task_id="c", outcome="pending", attempts=[], not_before=later.isoformat())
    recovery = item(task_id="d", source="recovery", outcome="pending", attempts=[])
    # an inline burst of retries is the schedule's first step, however many requests it made: the
    # API server's own steps (5 s, 5 min) are still to come, not spent within a second
    burst = item(task_id="e", attempts=[attempt(500, T0 + timedelta(seconds=i), by="dag-processor") for i in range(3)])
    now = T0 + timedelta(seconds=1)
    recorded = record(ledger, [delivered, gone, waiting, recovery, burst], by="worker", schedule=SCHEDULE, now=now)
    states = [r["state"] for r in recorded]
    assert states == ["delivered", "gone", "pending", "pending", "pending"]
    assert row(ledger, burst["webhook_id"]).next_attempt_at == T0 + timedelta(seconds=2, milliseconds=40) + timedelta(seconds=5)
    assert row(ledger, waiting["webhook_id"]).next_attempt_at == later
    # with a schedule of one step, the reported attempts were all of it
    only_inline = item(task_id="f", attempts=[attempt(500)])
    assert record(ledger, [only_inline], by="worker", schedule=(0,), now=now)[0]["state"] == "failed"
    assert row(ledger, recovery["webhook_id"]).next_attempt_at == now  # schedule[0]: at once (or when not_before says)
    assert row(ledger, delivered["webhook_id"]).next_attempt_at is None


def test_merging_appends_attempts_and_never_makes_a_settled_delivery_pending_again(ledger):
    first = item()
    record(ledger, [first], by="worker", schedule=SCHEDULE)
    ledger.commit()
    # the same item again (a client retrying its POST) adds nothing; a later attempt is appended after it
    again = item(attempts=[*first["attempts"], attempt(200, T0 + timedelta(seconds=6))], outcome="delivered")
    assert record(ledger, [again], by="worker", schedule=SCHEDULE) == [
        {"webhook_id": first["webhook_id"], "state": "delivered", "created": False}
    ]
    ledger.commit()
    got = row(ledger, first["webhook_id"])
    assert [(a.number, a.status_code) for a in got.attempts] == [(1, 503), (2, 200)]
    assert got.attempt_count == 2 and got.next_attempt_at is None
    # a failure reported afterwards is recorded, and the delivery stays delivered
    late = item(attempts=[attempt(500, T0 + timedelta(seconds=60), by="dag-processor")])
    assert record(ledger, [late], by="worker", schedule=SCHEDULE)[0]["state"] == "delivered"
    assert row(ledger, first["webhook_id"]).attempt_count == 3


def test_a_recovery_row_takes_the_callbacks_payload_and_a_recovery_item_changes_nothing(ledger):
    recovered = item(source="recovery", outcome="pending", attempts=[], payload=json.dumps({"rebuilt": True}),
                     not_before=(T0 + timedelta(seconds=30)).isoformat())
    record(ledger, [recovered], by="worker", schedule=SCHEDULE)
    ledger.commit()
    callback = item()
    assert record(ledger, [callback], by="worker", schedule=SCHEDULE)[0] == {
        "webhook_id": callback["webhook_id"], "state": "pending", "created": False
    }
    ledger.commit()
    got = row(ledger, callback["webhook_id"])
    assert (json.loads(got.payload), got.source, got.attempt_count) == ({"name": "brew", "status": 3}, "callback", 1)
    assert got.next_attempt_at == T0 + timedelta(milliseconds=40, seconds=5)
    # a recovery that comes after the callback changes nothing at all
    before = as_dict(got)
    assert record(ledger, [recovered], by="worker", schedule=SCHEDULE)[0]["created"] is False
    ledger.commit()
    assert as_dict(row(ledger, callback["webhook_id"])) == before


def test_an_id_held_for_another_event_is_a_conflict_and_changes_nothing(ledger):
    held = item()
    record(ledger, [held], by="worker", schedule=SCHEDULE)
    ledger.commit()
    other = item(webhook_id=held["webhook_id"], dag_id="someone_elses_dag", outcome="delivered")
    fresh = item(task_id="fresh")
    with pytest.raises(LedgerConflict, match=r"dag_id is 'coffee_shop', not 'someone_elses_dag'"):
        record(ledger, [fresh, other], by="worker", schedule=SCHEDULE)
    ledger.rollback()
    assert existing(ledger, [fresh["webhook_id"]]) == set()
    assert row(ledger, held["webhook_id"]).state == "pending"


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


def test_the_target_is_encrypted_at_rest_and_every_text_is_masked(ledger):
    conn_target = "conn:slack_alerts/services/T000/B000/XXXXsecret"
    given = [
        item(attempts=[attempt(None, error=f"ConnectionError: {SECRET_URL} refused")], target_masked=SECRET_URL),
        item(target=conn_target, target_masked=conn_target, attempts=[]),
    ]
    record(ledger, given, by="worker", schedule=SCHEDULE, now=T0)
    ledger.commit()
    dump = repr([tuple(r) for table in ("ordo_hooks_delivery", "ordo_hooks_delivery_attempt")
                 for r in ledger.execute(text(f"SELECT * FROM {table}"))])
    for secret in ("s3cr3t-path", "t0k3n", "XXXXsecret", "/services/"):
        assert secret not in dump
    rows = {r.webhook_id: r for r in ledger.scalars(select(Delivery))}
    assert target_of(rows[given[0]["webhook_id"]]) == SECRET_URL
    assert target_of(rows[given[1]["webhook_id"]]) == conn_target
    assert rows[given[1]["webhook_id"]].target_masked == "conn:slack_alerts/…"


def test_query_filters_and_pages_newest_first(ledger):
    for i in range(5):
        record(ledger, [item(task_id=f"t{i}")], by="worker", schedule=SCHEDULE, now=T0 + timedelta(seconds=i))
    record(ledger, [item(dag_id="other", task_id="x")], by="worker", schedule=SCHEDULE, now=T0 + timedelta(seconds=10))
    ledger.commit()
    rows, total = query(ledger, dag_id="coffee_shop", limit=2, offset=1)
    assert total == 5 and [r.task_id for r in rows] == ["t3", "t2"]
    rows, total = query(ledger, dag_ids={"other"})
    assert total == 1 and rows[0].dag_id == "other"
    shown = as_dict(rows[0])
    assert "target_encrypted" not in shown and shown["payload"] == {"name": "brew", "status": 3}
    assert shown["attempts"][0]["number"] == 1
