"""The API server's trust boundary in a real Airflow deployment, crossed as a DAG author would cross it:
a user with Airflow's ``user`` role (not an admin) records deliveries through the ledger's REST route.

- A delivery to an address the deployment does not allow (a live receiver on 127.0.0.2, the cloud
  metadata address) is never sent by the API server's redelivery: the refusal is an attempt in the
  ledger, and the delivery is failed at once.
- A webhook-id that stands for another DAG's event is refused when recorded, and that DAG's real
  on_error still reaches its receiver with that id.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import pytest

from airflow_ordo_hooks._event_id import webhook_id
from airflow_ordo_hooks.testing.receiver import WebhookReceiver

pytestmark = pytest.mark.system

USER = "dag_author"
"""A user with Airflow's ``user`` role: may record deliveries of every DAG's runs, as DAG authors' tasks do."""
LEDGER = "/ordo-hooks/api/v1/deliveries"
RECORDER = "system_trust_recorder"
VICTIM = "system_trust_victim"
REFUSED = "refused by egress policy: "
METADATA = "http://169.254.169.254/latest/meta-data/"
DECOY = "https://hooks.slack.com/…#a1b2c3"
"""What the caller says its target is called: the server names the target itself."""
REFUSAL_TIMEOUT = 60.0  # the redelivery is due 5 s after the caller's attempt; its loop looks every second


@pytest.fixture(scope="module")
def internal():
    """A live receiver on 127.0.0.2: an internal address the deployment does not allow (it allows 127.0.0.1 only)."""
    with WebhookReceiver(host="127.0.0.2") as receiver:
        yield receiver


@pytest.fixture(scope="module")
def recorder_run(airflow_deployment) -> str:
    """A real run of the DAG the user records deliveries under."""
    return airflow_deployment.trigger(RECORDER)


def _item(run_id: str, task_id: str, target: str, **changes) -> dict:
    """A delivery of ``on_error`` as a worker's callback reports one it could not make, under the recorder's run."""
    facts = {"dag_id": RECORDER, "run_id": run_id, "task_id": task_id, "map_index": -1, "try_number": 1, "event": "on_error"}
    item = {
        **facts,
        "webhook_id": webhook_id(**facts, target=target),
        "action": "notify_webhook",
        "target": target,
        "target_masked": DECOY,
        "payload": json.dumps({"name": task_id, "status": 1}),
        "source": "callback",
        "outcome": "failed",
        "attempts": [{"at": datetime.now(timezone.utc).isoformat(), "status_code": 503, "error": "HTTP 503",
                      "elapsed_ms": 12, "by": "worker"}],
        "not_before": None,
    }
    return item | changes


def _deliveries(airflow_deployment, dag_id: str, run_id: str) -> dict[str, dict]:
    """The run's deliveries with their attempts, by webhook-id, as the user reads them."""
    params = {"dag_id": dag_id, "run_id": run_id, "full": "true"}
    found = airflow_deployment.get(LEDGER, params=params, user=USER)["deliveries"]
    return {d["webhook_id"]: d for d in found}


def _wait(found: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    """What ``found()`` returns once it is truthy; fails the test, naming ``what``, after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not (value := found()):
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} within {timeout:.0f} s")
        time.sleep(0.5)
    return value


def _record_and_wait_for_the_refusal(airflow_deployment, item: dict, internal: WebhookReceiver | None = None) -> dict:
    """Record ``item`` as the user; the delivery once the API server has refused to send it (fails the test if it sent it)."""
    recorded = airflow_deployment.request("POST", LEDGER, user=USER, json={"deliveries": [item]})["deliveries"]
    assert [(r["webhook_id"], r["created"]) for r in recorded] == [(item["webhook_id"], True)], recorded
    deadline = time.monotonic() + REFUSAL_TIMEOUT
    while True:
        delivery = _deliveries(airflow_deployment, RECORDER, item["run_id"]).get(item["webhook_id"])
        assert delivery is not None, f"the ledger lost delivery {item['webhook_id']} after recording it"
        if internal is not None and internal.requests:
            pytest.fail(f"the API server sent the delivery to {internal.url('')}: {internal.requests[0].path}; "
                        f"the delivery is {delivery['state']}, last error {delivery['last_error']!r}")
        if delivery["state"] == "delivered":
            pytest.fail(f"the API server delivered to a target that is not allowed: {delivery}")
        if delivery["attempt_count"] >= 2:  # the caller's attempt, then the API server's
            return delivery
        if time.monotonic() > deadline:
            pytest.fail(f"the API server made no attempt of its own within {REFUSAL_TIMEOUT:.0f} s: {delivery}")
        time.sleep(0.5)


def _assert_refused(delivery: dict) -> None:
    caller, server = delivery["attempts"][-2:]
    assert server["by"] == "api-server" and (server["error"] or "").startswith(REFUSED), (
        f"the API server's attempt is not a refusal by its egress policy: {server}")
    assert server["status_code"] is None, server
    assert caller["by"] == "worker" and caller["status_code"] == 503, caller
    assert (delivery["state"], delivery["attempt_count"]) == ("failed", 2), (
        f"a refused delivery is failed at once, never tried again: {delivery['state']} after {delivery['attempt_count']} attempts")
    assert delivery["last_error"].startswith(REFUSED), delivery["last_error"]
    assert delivery["next_attempt_at"] is None, delivery
    assert "hooks.slack.com" not in delivery["target_masked"], f"the caller named the target: {delivery['target_masked']!r}"


def test_a_users_delivery_to_a_live_internal_receiver_is_refused_and_nothing_reaches_it(airflow_deployment, internal, recorder_run):
    target = internal.url("/internal/admin")
    delivery = _record_and_wait_for_the_refusal(airflow_deployment, _item(recorder_run, "probe_internal", target), internal)

    _assert_refused(delivery)
    assert "127.0.0.2" in delivery["target_masked"], delivery["target_masked"]
    assert internal.requests == [], "the refusal is recorded (nothing sent before it) and nothing reached 127.0.0.2"


def test_a_users_delivery_to_the_cloud_metadata_address_is_refused(airflow_deployment, recorder_run):
    delivery = _record_and_wait_for_the_refusal(airflow_deployment, _item(recorder_run, "probe_metadata", METADATA))

    _assert_refused(delivery)
    assert "169.254.169.254" in delivery["target_masked"], delivery["target_masked"]


def test_a_forged_webhook_id_does_not_stop_another_dags_real_on_error(airflow_deployment, system_receiver, recorder_run):
    """
    The user records, under its own DAG and marked delivered, the id the victim DAG's on_error will
    have in a run not started yet: refused. The victim's run then fails and its on_error is sent.
    """
    victim_run = f"manual__trust_{uuid.uuid4().hex[:12]}"
    path = f"/{VICTIM}/job/on_error"
    target = f"{airflow_deployment.receiver_url}{path}"  # as the victim's DAG file writes it
    victims_id = webhook_id(VICTIM, victim_run, "job", -1, 1, "on_error", target)
    delivered = [{"at": datetime.now(timezone.utc).isoformat(), "status_code": 200, "error": None, "elapsed_ms": 5, "by": "worker"}]
    forged = _item(recorder_run, "job", target, webhook_id=victims_id, outcome="delivered", attempts=delivered)

    answer = airflow_deployment.call("POST", LEDGER, user=USER, json={"deliveries": [forged]})
    assert answer.status_code == 422, f"a webhook-id of another DAG's event was answered {answer.status_code}: {answer.text}"
    # the same item under its own id is recorded: the id alone was refused
    honest = forged | {"webhook_id": _item(recorder_run, "job", target)["webhook_id"]}
    (recorded,) = airflow_deployment.request("POST", LEDGER, user=USER, json={"deliveries": [honest]})["deliveries"]
    assert (recorded["webhook_id"], recorded["created"]) == (honest["webhook_id"], True), recorded
    assert victims_id not in _deliveries(airflow_deployment, RECORDER, recorder_run)

    airflow_deployment.trigger(VICTIM, run_id=victim_run)
    run = airflow_deployment.wait_for_run(VICTIM, victim_run)
    assert run["state"] == "failed", run

    def sent():
        return [r for r in system_receiver.requests if r.path == path and r.json["airflow"]["run_id"] == victim_run]

    _wait(sent, f"the victim's on_error of run {victim_run} at the system receiver ({path})")
    assert {r.header("webhook-id") for r in sent()} == {victims_id}, [r.header("webhook-id") for r in sent()]

    def held():
        delivery = _deliveries(airflow_deployment, VICTIM, victim_run).get(victims_id)
        return delivery if delivery and delivery["state"] == "delivered" else None

    delivery = _wait(held, f"the victim's on_error delivered in the ledger under webhook-id {victims_id}")
    assert (delivery["dag_id"], delivery["run_id"], delivery["task_id"]) == (VICTIM, victim_run, "job"), delivery
