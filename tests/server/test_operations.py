"""Alerts about the alerts: what the operations target hears of given-up deliveries and of targets that fail for long, once each."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select

from airflow_ordo_hooks._targets import fingerprint
from airflow_ordo_hooks.exceptions import SettingsError
from airflow_ordo_hooks.server.models import Delivery
from airflow_ordo_hooks.server.operations import FAILING, GIVEN_UP, RECOVERED, SOURCE, OperationsTarget, Watch, check_every
from tests.server.reported import SCHEDULE, T0, attempt, item, record

OPS = "https://ops.example.com/airflow-alerts?token=0ps"
SLACK = "https://hooks.slack.com/services/T000/B000/one"
OTHER = "https://hooks.slack.com/services/T000/B000/two"


@pytest.fixture
def ops(monkeypatch):
    monkeypatch.setenv("AIRFLOW__ORDO_HOOKS__OPERATIONS_TARGET", OPS)
    monkeypatch.setenv("AIRFLOW__ORDO_HOOKS__TARGET_FAILING_SECONDS", "120")


def _events(session):
    rows = session.scalars(select(Delivery).where(Delivery.source == SOURCE).order_by(Delivery.created_at, Delivery.event)).all()
    return [(r.event, r.run_id, json.loads(r.payload)) for r in rows]


def _failing_attempts(target, task_id, seconds_ago, status=503):
    """A delivery to ``target`` whose attempts (one per offset, in seconds before ``T0``) all failed; still pending."""
    attempts = [attempt(status, T0 - timedelta(seconds=s)) for s in seconds_ago]
    return item(task_id=task_id, target=target, attempts=attempts)


def test_without_an_operations_target_nothing_is_recorded(ledger):
    record(ledger, [item(attempts=[attempt(503)])], by="worker", schedule=(0,), now=T0)  # given up at once
    assert Watch().run(ledger, T0) == 0 and _events(ledger) == []


def test_a_given_up_delivery_is_told_once_and_the_operations_targets_own_never(ledger, ops):
    given_up = item(task_id="brew", target=SLACK, attempts=[attempt(404)])
    own = item(task_id="ops", target=OPS, attempts=[attempt(500)])
    record(ledger, [given_up, own], by="worker", schedule=(0,), now=T0)
    watch = Watch()

    assert watch.run(ledger, T0 + timedelta(seconds=1)) == 1
    assert watch.run(ledger, T0 + timedelta(seconds=2)) == 0  # once
    assert Watch().run(ledger, T0 + timedelta(seconds=3)) == 0  # and once from another API server
    ((event, about, body),) = _events(ledger)
    assert (event, about, body["type"]) == (GIVEN_UP, given_up["webhook_id"], GIVEN_UP)
    data = body["data"]
    assert (data["dag_id"], data["task_id"], data["event"], data["attempts"], data["last_status_code"]) == ("coffee_shop", "brew", "on_error", 1, 404)
    assert data["target"].startswith("https://hooks.slack.com/…#") and "B000" not in json.dumps(body)
    row = ledger.scalars(select(Delivery).where(Delivery.source == SOURCE)).one()
    assert (row.dag_id, row.state, row.target_fingerprint, row.action) == ("", "pending", fingerprint(OPS), "notify_webhook")


def test_a_target_failing_every_attempt_for_long_is_told_once_then_its_recovery_once(ledger, ops):
    # SLACK has failed since 200 s before T0 (longer than the 120 s set), OTHER only for 60 s
    record(ledger, [_failing_attempts(SLACK, "a", (200, 100, 10)), _failing_attempts(OTHER, "b", (60, 10))],
           by="worker", schedule=SCHEDULE, now=T0)
    assert Watch().run(ledger, T0) == 1
    assert Watch().run(ledger, T0 + timedelta(seconds=30)) == 0  # once, while it stays failing
    ((event, about, body),) = _events(ledger)
    assert (event, about) == (FAILING, fingerprint(SLACK))
    data = body["data"]
    assert (data["dags"], data["waiting"], data["last_status_code"], data["failing_for_seconds"]) == (["coffee_shop"], 1, 503, 120.0)
    assert data["failing_since"] == (T0 - timedelta(seconds=200)).isoformat()

    # it delivers again: told once
    record(ledger, [item(task_id="c", target=SLACK, attempts=[attempt(200, T0 + timedelta(seconds=40))])],
           by="worker", schedule=SCHEDULE, now=T0 + timedelta(seconds=40))
    assert Watch().run(ledger, T0 + timedelta(seconds=41)) == 1
    assert Watch().run(ledger, T0 + timedelta(seconds=42)) == 0
    assert [e[0] for e in _events(ledger)] == [FAILING, RECOVERED]
    assert _events(ledger)[1][2]["data"]["recovered_at"] == (T0 + timedelta(seconds=40)).isoformat()


def test_failing_counts_from_the_first_failure_after_the_last_success(ledger, ops):
    # SLACK succeeded 60 s ago between failures: not failing for 120 s; OTHER failed 200 s ago, succeeded 130 s
    # ago, and has failed since 125 s ago
    record(ledger, [
        _failing_attempts(OTHER, "e", (200,)),
        _failing_attempts(SLACK, "a", (200, 10)), item(task_id="b", target=SLACK, attempts=[attempt(200, T0 - timedelta(seconds=60))]),
        item(task_id="c", target=OTHER, attempts=[attempt(200, T0 - timedelta(seconds=130))]), _failing_attempts(OTHER, "d", (125, 10)),
    ], by="worker", schedule=SCHEDULE, now=T0)
    assert Watch().run(ledger, T0) == 1
    ((event, about, body),) = _events(ledger)
    assert (event, about, body["data"]["failing_since"]) == (FAILING, fingerprint(OTHER), (T0 - timedelta(seconds=125)).isoformat())


def test_a_target_that_fails_again_after_recovering_is_told_again_under_another_id(ledger, ops):
    record(ledger, [_failing_attempts(SLACK, "a", (400, 300))], by="worker", schedule=SCHEDULE, now=T0)
    assert Watch().run(ledger, T0 - timedelta(seconds=150)) == 1  # failing
    record(ledger, [item(task_id="b", target=SLACK, attempts=[attempt(200, T0 - timedelta(seconds=140))])],
           by="worker", schedule=SCHEDULE, now=T0)
    assert Watch().run(ledger, T0 - timedelta(seconds=139)) == 1  # recovered
    record(ledger, [_failing_attempts(SLACK, "c", (130, 5))], by="worker", schedule=SCHEDULE, now=T0)
    assert Watch().run(ledger, T0 - timedelta(seconds=100)) == 0  # failing for 30 s only since it recovered
    assert Watch().run(ledger, T0) == 1  # 125 s: failing again
    events = _events(ledger)
    assert [e[0] for e in events] == [FAILING, RECOVERED, FAILING]
    ids = ledger.scalars(select(Delivery.webhook_id).where(Delivery.source == SOURCE)).all()
    assert len(set(ids)) == 3


def test_slack_and_discord_operations_targets_get_one_line(ledger, monkeypatch, ops):
    monkeypatch.setenv("AIRFLOW__ORDO_HOOKS__OPERATIONS_ACTION", "notify_slack_webhook")
    record(ledger, [item(task_id="brew", target=SLACK, attempts=[attempt(404)])], by="worker", schedule=(0,), now=T0)
    Watch().run(ledger, T0)
    ((_, _, body),) = _events(ledger)
    assert list(body) == ["text"] and body["text"].startswith("airflow-ordo-hooks: gave up delivering on_error of coffee_shop.brew")


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("OPERATIONS_TARGET", "ftp://x.example/", "[ordo_hooks] operations_target: "),
        ("OPERATIONS_ACTION", "notify_pager", "[ordo_hooks] operations_action: expected one of notify_webhook, notify_slack_webhook, notify_discord_webhook, got 'notify_pager'"),
        ("TARGET_FAILING_SECONDS", "0", "[ordo_hooks] target_failing_seconds: expected a number from 1 to 31536000, got"),
    ],
)
def test_a_bad_operations_setting_is_refused_naming_it(monkeypatch, ops, key, value, message):
    monkeypatch.setenv(f"AIRFLOW__ORDO_HOOKS__{key}", value)
    with pytest.raises(SettingsError) as refused:
        OperationsTarget.configured()
    assert str(refused.value).startswith(message)


def test_a_target_with_nothing_waiting_is_not_told_failing_only_its_given_up_delivery(ledger, ops):
    given_up = item(task_id="a", target=SLACK, attempts=[attempt(503, T0 - timedelta(seconds=200)), attempt(503, T0 - timedelta(seconds=199))])
    record(ledger, [given_up], by="worker", schedule=(0,), now=T0 - timedelta(seconds=199))
    assert Watch().run(ledger, T0) == 1
    assert [e[0] for e in _events(ledger)] == [GIVEN_UP]


def test_the_watch_looks_at_a_tenth_of_the_failing_time_and_at_least_every_30_s(monkeypatch, ops):
    assert check_every() == 12.0  # 120 s set
    monkeypatch.setenv("AIRFLOW__ORDO_HOOKS__TARGET_FAILING_SECONDS", "86400")
    assert check_every() == 30.0
