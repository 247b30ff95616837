"""Each target's health, aggregated by the database Airflow creates (SQLite) from deliveries recorded as the API records them."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import update

from airflow_ordo_hooks._targets import fingerprint
from airflow_ordo_hooks.server.health import MAX_DAGS, MAX_TARGETS, targets
from airflow_ordo_hooks.server.models import Delivery
from tests.server.reported import SCHEDULE, SECRET_URL, T0, attempt, item, record

NOW = T0 + timedelta(hours=1)
"""When the health is read: an attempt before ``NOW - 24 h`` (``T0 - 23 h``) is out of the failure rate's window."""
OLD = T0 - timedelta(hours=23, minutes=30)
"""Still an attempt the API's edge takes (at most a day behind), but out of the window."""


def deliver(session, target, task_id, *attempts, dag_id="coffee_shop", outcome="failed"):
    """Record one delivery of ``dag_id``'s ``task_id`` to ``target`` with ``attempts`` (``(status_code, at)``, first first)."""
    record(session, [item(dag_id=dag_id, task_id=task_id, target=target, outcome=outcome,
                          attempts=[attempt(code, at, error=None if code else "connection refused") for code, at in attempts])],
           by="worker", schedule=SCHEDULE, now=T0)
    session.commit()


def by_target(found):
    return {t["target_masked"]: t for t in found}


def test_a_targets_last_success_and_failure_its_24h_failure_rate_and_what_waits(ledger):
    deliver(ledger, SECRET_URL, "old", (503, OLD), (200, OLD + timedelta(seconds=1)))  # out of the window
    deliver(ledger, SECRET_URL, "refused", (None, T0 - timedelta(hours=2)))  # no answer: a failure, still pending
    deliver(ledger, SECRET_URL, "recovered", (503, T0 - timedelta(minutes=30)), (200, T0 - timedelta(minutes=29)))
    deliver(ledger, SECRET_URL, "waits", outcome="pending")  # recorded, not yet attempted
    deliver(ledger, SECRET_URL, "busy", dag_id="tea_shop", outcome="pending")
    ledger.execute(update(Delivery).where(Delivery.task_id == "busy").values(state="delivering"))
    ledger.commit()

    (health,), total = targets(ledger, now=NOW)
    assert total == 1
    assert health["target_fingerprint"] == fingerprint(SECRET_URL) and health["target_masked"].endswith(f"#{fingerprint(SECRET_URL)[:6]}")
    assert health["last_success_at"] == (T0 - timedelta(minutes=29)).isoformat()
    assert health["last_failure_at"] == (T0 - timedelta(minutes=30)).isoformat()
    assert health["last_error"] == "HTTP 503"
    assert health["failing"] is False  # its last attempt was delivered
    # three attempts in the last 24 h (the two at OLD are not), two of which failed
    assert (health["attempts_24h"], health["failed_24h"], health["failure_rate_24h"]) == (3, 2, 0.6667)
    assert health["pending"] == 3  # pending (refused, waits) and being sent (busy)
    assert (health["deliveries"], health["dag_ids"], health["dag_count"], health["actions"]) == (
        5, ["coffee_shop", "tea_shop"], 2, ["notify_webhook"])

    deliver(ledger, SECRET_URL, "fails_again", (502, T0))
    (health,), _ = targets(ledger, now=NOW)
    assert health["failing"] is True and health["last_failure_at"] == T0.isoformat() and health["last_error"] == "HTTP 502"
    # a window that holds none of its attempts has no rate, rather than a rate of 0
    (later,), _ = targets(ledger, now=T0 + timedelta(days=2))
    assert (later["attempts_24h"], later["failed_24h"], later["failure_rate_24h"]) == (0, 0, None)


def test_the_last_error_is_the_last_failed_attempts_masked(ledger):
    leaked = f"ConnectionError: could not reach {SECRET_URL}"
    record(ledger, [item(task_id="a", attempts=[attempt(None, T0 - timedelta(minutes=5), error="an older error"),
                                                 attempt(None, T0, error=leaked)])], by="worker", schedule=SCHEDULE, now=T0)
    ledger.commit()
    (health,), _ = targets(ledger, now=NOW)
    assert health["last_error"].startswith("ConnectionError: could not reach https://hooks.example.com/…#")
    assert "s3cr3t" not in json.dumps(health) and "t0k3n" not in json.dumps(health)


def test_two_targets_masked_alike_are_kept_apart_by_their_fingerprint(ledger):
    one, two = "conn:slack_alerts/services/T0/B0/one", "conn:slack_alerts/services/T0/B0/two"
    deliver(ledger, one, "a", (200, T0))
    deliver(ledger, two, "b", (500, T0))
    found, total = targets(ledger, now=NOW)
    assert total == 2 and {t["target_masked"] for t in found} == {"conn:slack_alerts/…"}
    assert [(t["target_fingerprint"], t["failing"]) for t in found] == [(fingerprint(two), True), (fingerprint(one), False)]


def test_deliveries_without_a_fingerprint_count_under_their_masked_name(ledger):
    """Rows recorded before the ledger kept fingerprints, whose target no key decrypts (the migration left them empty)."""
    deliver(ledger, SECRET_URL, "a", (503, T0))
    deliver(ledger, SECRET_URL, "b", outcome="pending")
    deliver(ledger, "https://other.example.com/hook", "c", (200, T0))
    ledger.execute(update(Delivery).where(Delivery.task_id.in_(["a", "b"])).values(target_fingerprint=None))
    ledger.commit()
    found, total = targets(ledger, now=NOW)
    assert total == 2
    unnamed = found[0]
    assert unnamed["target_fingerprint"] is None and unnamed["target_masked"].startswith("https://hooks.example.com/…#")
    assert (unnamed["deliveries"], unnamed["pending"], unnamed["failing"], unnamed["last_error"]) == (2, 2, True, "HTTP 503")
    assert found[1]["target_fingerprint"] == fingerprint("https://other.example.com/hook")


def test_the_worst_first_failing_now_then_by_failure_rate_then_by_what_waits(ledger):
    def url(name):
        return f"https://{name}.example.com/hook"

    deliver(ledger, url("quiet"), "a", (200, OLD))  # no attempt in the window: no rate
    deliver(ledger, url("waiting"), "a", (200, T0))
    deliver(ledger, url("waiting"), "b", outcome="pending")
    deliver(ledger, url("flaky"), "a", (503, T0 - timedelta(seconds=3)), (503, T0 - timedelta(seconds=2)), (200, T0))
    deliver(ledger, url("down"), "a", (200, T0 - timedelta(hours=2)))
    deliver(ledger, url("down"), "b", (503, T0 - timedelta(hours=1)))  # its last attempt failed: failing now
    deliver(ledger, url("fine"), "a", (200, T0))
    found, total = targets(ledger, now=NOW)
    hosts = [t["target_masked"].split("/")[2].split(".")[0] for t in found]
    assert hosts == ["down", "flaky", "waiting", "fine", "quiet"] and total == 5
    assert [t["failure_rate_24h"] for t in found] == [0.5, 0.6667, 0.0, 0.0, None]


def test_only_the_dags_a_reader_may_read_count(ledger):
    shared, hidden_only = "https://shared.example.com/hook", "https://hidden.example.com/hook"
    deliver(ledger, shared, "a", (200, T0), dag_id="readable")
    deliver(ledger, shared, "b", (503, T0 + timedelta(seconds=1)), dag_id="hidden")
    deliver(ledger, hidden_only, "c", (503, T0), dag_id="hidden")
    (health,), total = targets(ledger, dag_ids={"readable"}, now=NOW)
    assert total == 1 and health["target_fingerprint"] == fingerprint(shared)
    assert (health["dag_ids"], health["dag_count"], health["deliveries"]) == (["readable"], 1, 1)
    assert (health["failing"], health["failed_24h"], health["last_failure_at"], health["last_error"]) == (False, 0, None, None)
    assert targets(ledger, dag_ids=set(), now=NOW) == ([], 0)
    of_dag, _ = targets(ledger, dag_id="hidden", now=NOW)
    assert {t["target_fingerprint"] for t in of_dag} == {fingerprint(shared), fingerprint(hidden_only)}
    assert all(t["dag_ids"] == ["hidden"] and t["failing"] and t["failure_rate_24h"] == 1.0 for t in of_dag)


def test_the_answer_is_bounded_in_targets_and_in_dags_a_target_shows(ledger):
    many = [item(task_id="t", target=f"https://h{i}.example.com/hook", attempts=[]) for i in range(MAX_TARGETS + 5)]
    many += [item(dag_id=f"dag_{i}", task_id="t", target="https://h0.example.com/hook", attempts=[]) for i in range(MAX_DAGS + 2)]
    record(ledger, many, by="worker", schedule=SCHEDULE, now=T0)
    ledger.commit()
    found, total = targets(ledger, now=NOW)
    assert (len(found), total) == (MAX_TARGETS, MAX_TARGETS + 5)
    first = found[0]  # the most pending
    assert first["target_masked"].startswith("https://h0.example.com/") and first["pending"] == MAX_DAGS + 3
    assert first["dag_ids"] == ["coffee_shop", *(f"dag_{i}" for i in range(MAX_DAGS - 1))] and first["dag_count"] == MAX_DAGS + 3
    assert len(targets(ledger, limit=3, now=NOW)[0]) == 3
    assert len(targets(ledger, limit=10_000, now=NOW)[0]) == MAX_TARGETS
