"""Recording what callers report, on a real database created by Airflow (SQLite): inserting, merging, conflicts."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from airflow_ordo_hooks.exceptions import LedgerConflict
from airflow_ordo_hooks.server.queries import existing
from airflow_ordo_hooks.server.shown import as_dict
from tests.server.reported import SCHEDULE, T0, attempt, item, record, row, unvalidated


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
    # ahead of the clock whenever this runs (the edge takes a not_before already past as now), within its day
    later = T0 + timedelta(hours=1)
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
    # the route refuses this item first (its id is not its event's); the ledger's own check is tested behind it
    other = unvalidated(item(webhook_id=held["webhook_id"], dag_id="someone_elses_dag", outcome="delivered"))
    fresh = item(task_id="fresh")
    with pytest.raises(LedgerConflict, match=r"dag_id is 'coffee_shop', not 'someone_elses_dag'"):
        record(ledger, [fresh, other], by="worker", schedule=SCHEDULE)
    ledger.rollback()
    assert existing(ledger, [fresh["webhook_id"]]) == set()
    assert row(ledger, held["webhook_id"]).state == "pending"


def test_each_delivery_records_its_targets_fingerprint_and_targets_masked_alike_differ_in_it(ledger):
    from airflow_ordo_hooks._targets import fingerprint

    first = item(task_id="a", target="https://hooks.example.com/services/T000/B000/one")
    second = item(task_id="b", target="https://hooks.example.com/services/T000/B000/two")
    record(ledger, [first, second], by="worker", schedule=SCHEDULE, now=T0)
    one, two = row(ledger, first["webhook_id"]), row(ledger, second["webhook_id"])
    assert (one.target_fingerprint, two.target_fingerprint) == (fingerprint(first["target"]), fingerprint(second["target"]))
    assert one.target_masked.split("#")[0] == two.target_masked.split("#")[0] and one.target_fingerprint != two.target_fingerprint
