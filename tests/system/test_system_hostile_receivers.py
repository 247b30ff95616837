"""Hostile receivers in a real Airflow deployment: a receiver that trickles its answer a byte at a
time holds a task no longer than the delivery budget, and an on_exit URL from a run's conf that
redirects to an internal address is refused at that hop. Neither changes a task's or a run's state."""

from __future__ import annotations

import time

import pytest

from airflow_ordo_hooks.testing.receiver import Respond, Trickle, WebhookReceiver
from tests.system.deployments import utc

pytestmark = pytest.mark.system

BUDGET = 3.0  # [ordo_hooks] budget of the deployments
SLACK = 3.0  # seconds for the supervisor to record the failure once the callback has returned


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
    (request,) = system_receiver.wait_for(1, path="/system_hostile_trickle/job/on_error")
    (attempt,) = airflow_deployment.tries("system_hostile_trickle", run_id, "job")
    # A failure is recorded once the callbacks have returned: the task's end is when the delivery let go.
    # (Measured from the request, not the task's start: a worker's start-up takes 10 s on a loaded machine.)
    held = utc(attempt["end_date"]).timestamp() - request.received_at
    assert held <= BUDGET + SLACK, f"the task ended {held:.1f} s after its webhook reached a receiver trickling its answer"


def test_an_on_exit_url_redirecting_to_an_internal_address_is_refused_at_that_hop(airflow_deployment, system_receiver, internal, runs):
    run_id = runs["system_hostile_redirect"]
    run = airflow_deployment.wait_for_run("system_hostile_redirect", run_id)

    assert run["state"] == "success"
    assert set(airflow_deployment.task_states("system_hostile_redirect", run_id).values()) == {"success"}
    assert system_receiver.wait_for(1, path="/system_hostile_redirect/report")
    time.sleep(1)
    assert internal.requests == []
    delivery = airflow_deployment.xcom("system_hostile_redirect", run_id, "call_webhook")["delivery"]
    assert (delivery["ok"], delivery["status_code"]) == (False, 307), delivery
    assert "redirect not followed" in delivery["error"] and "127.0.0.2 is a loopback address" in delivery["error"]
    assert "/metadata" not in delivery["error"] and "/system_hostile_redirect" not in delivery["target"]
