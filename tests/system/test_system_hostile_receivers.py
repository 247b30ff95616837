"""Hostile receivers in a real Airflow deployment: a receiver that trickles its answer a byte at a
time holds a task no longer than the delivery budget, and an on_exit URL from a run's conf that
redirects to an internal address is refused at that hop. Neither changes a task's or a run's state."""

from __future__ import annotations

import json
import re

import pytest

from airflow_ordo_hooks.testing.receiver import Respond, Trickle, WebhookReceiver
from tests.system.deployments import utc

pytestmark = pytest.mark.system

BUDGET = 3.0  # [ordo_hooks] budget of the deployments
SLACK = 1.0  # seconds between the request's arrival and the delivery's start, and for logging


@pytest.fixture(scope="module")
def internal():
    """A receiver on 127.0.0.2: an internal address the deployment does not allow (it allows 127.0.0.1 only)."""
    with WebhookReceiver(host="127.0.0.2") as receiver:
        yield receiver


@pytest.fixture(scope="module")
def runs(airflow_deployment, system_receiver, internal):
    system_receiver.script("/system_hostile_trickle/job/on_error", *[Trickle(0.25)] * 10)
    system_receiver.script("/system_hostile_redirect/report", Respond(307, headers={"Location": internal.url("/metadata")}))
    conf = {"call_webhook": {"webhook_url": system_receiver.url("/system_hostile_redirect/report")}}
    return {
        "system_hostile_trickle": airflow_deployment.trigger("system_hostile_trickle"),
        "system_hostile_redirect": airflow_deployment.trigger("system_hostile_redirect", conf),
    }


def test_a_trickling_receiver_holds_a_failing_task_no_longer_than_the_budget(airflow_deployment, system_receiver, runs):
    run_id = runs["system_hostile_trickle"]
    run = airflow_deployment.wait_for_run("system_hostile_trickle", run_id)

    assert run["state"] == "failed"
    assert airflow_deployment.task_states("system_hostile_trickle", run_id) == {"job": "failed"}
    # The first request is the callback's own; the ledger may already be redelivering the same event
    # from the API server (its first redelivery is at once), so there can be more, all of that event.
    request, *redelivered = system_receiver.wait_for(1, path="/system_hostile_trickle/job/on_error")
    assert {r.header("webhook-id") for r in redelivered} <= {request.header("webhook-id")}
    # The task process is held by its callback until the delivery lets go: the warning it logs then,
    # in the try's log, is when. (Not the task's end_date: the supervisor records that seconds later
    # on a loaded machine, which is Airflow's time, not the delivery's.)
    (log_file,) = [f for f in airflow_deployment.task_log_files("system_hostile_trickle") if f.name == "attempt=1.log"]
    records = [json.loads(line) for line in log_file.read_text().splitlines() if line.startswith("{")]
    (gave_up,) = [r for r in records if "not delivered" in str(r.get("event"))]
    held = utc(gave_up["timestamp"]).timestamp() - request.received_at
    assert held <= BUDGET + SLACK, f"the callback let go {held:.1f} s after its webhook reached a receiver trickling its answer"
    elapsed_ms = int(re.search(r"(\d+) ms", gave_up["event"]).group(1))
    assert elapsed_ms <= BUDGET * 1000 + 250, gave_up["event"]


def test_an_on_exit_url_redirecting_to_an_internal_address_is_refused_at_that_hop(airflow_deployment, system_receiver, internal, runs):
    run_id = runs["system_hostile_redirect"]
    run = airflow_deployment.wait_for_run("system_hostile_redirect", run_id)

    assert run["state"] == "success"
    assert set(airflow_deployment.task_states("system_hostile_redirect", run_id).values()) == {"success"}
    assert system_receiver.wait_for(1, path="/system_hostile_redirect/report")
    delivery = airflow_deployment.xcom("system_hostile_redirect", run_id, "call_webhook")["delivery"]
    assert internal.requests == [], "the delivery is over (its record is written) and nothing reached 127.0.0.2"
    assert (delivery["ok"], delivery["status_code"]) == (False, None), delivery  # refused: not an answer of the receiver's
    assert delivery["error"].startswith("refused by egress policy: "), delivery
    assert "redirect, not followed" in delivery["error"] and "127.0.0.2 is a loopback address" in delivery["error"]
    assert "/metadata" not in delivery["error"] and "/system_hostile_redirect" not in delivery["target"]
