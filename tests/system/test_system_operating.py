"""Running the ledger for a year, on a real deployment with its times shortened to seconds: the operations
target told of a failing target once, of its recovery once, of a given-up delivery once; retention that
prunes settled deliveries and keeps pending ones; ``db-clean --dry-run`` that counts and deletes nothing."""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
from datetime import datetime, timezone

import pytest

from airflow_ordo_hooks._targets import fingerprint
from airflow_ordo_hooks.testing.receiver import Respond

from tests.system.deployments import AIRFLOW, OperatingDeployment

pytestmark = [pytest.mark.system, pytest.mark.deployments("operating")]

LEDGER = "/ordo-hooks/api/v1/deliveries"
FLAKY = "/system_ops/flaky"
FAILURES = 9
"""Answers of 503 before the flaky target answers 200: its inline attempts, then the API server's every 3 s, about 20 s in all."""


@pytest.fixture(scope="module")
def statsd(airflow_deployment):
    """A StatsD server on the deployment's ``statsd_port``: every metric line it receives, as ``(name, tags, value, type)``."""
    received: list[tuple[str, dict[str, str], str, str]] = []
    stop = threading.Event()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", airflow_deployment.statsd_port))
        sock.settimeout(0.2)

        def read():
            while not stop.is_set():
                try:
                    datagram = sock.recv(65535)
                except TimeoutError:
                    continue
                for line in datagram.decode(errors="replace").splitlines():  # name,tag=value,...:value|type
                    head, _, rest = line.partition(":")
                    name, *tags = head.split(",")
                    value, _, kind = rest.partition("|")
                    received.append((name, dict(t.split("=", 1) for t in tags if "=" in t), value, kind))

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        yield received
        stop.set()
        reader.join()


def _operations(receiver) -> list[dict]:
    return [json.loads(r.body) for r in receiver.requests if r.path == "/operations"]


def _wait(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        found = condition()
        if found:
            return found
        assert time.monotonic() < deadline, f"not within {timeout:g} s: {what}"
        time.sleep(0.5)


def test_the_operations_target_hears_a_failing_target_and_its_recovery_once_and_a_given_up_delivery(airflow_deployment, system_receiver, statsd):
    system_receiver.script(FLAKY, *[Respond(503)] * FAILURES)
    flaky = fingerprint(f"{airflow_deployment.receiver_url}{FLAKY}")
    runs = {dag_id: airflow_deployment.trigger(dag_id) for dag_id in ("system_ops_flaky", "system_ops_refused")}
    for dag_id, run_id in runs.items():
        assert airflow_deployment.wait_for_run(dag_id, run_id)["state"] == "success"

    def about_flaky(kind):
        return [e for e in _operations(system_receiver) if e["type"] == kind and e["data"].get("target_fingerprint") == flaky]

    failing = _wait(lambda: about_flaky("target.failing"), 90, "target.failing about the flaky target")
    recovered = _wait(lambda: about_flaky("target.recovered"), 90, "target.recovered about the flaky target")
    given_up = _wait(lambda: [e for e in _operations(system_receiver) if e["type"] == "delivery.given_up"
                              and e["data"]["dag_id"] == "system_ops_refused"], 90, "delivery.given_up of the refused delivery")
    # each once, also after further passes of every API server process's watch
    time.sleep(3 * OperatingDeployment.FAILING_SECONDS / 10 + 2)
    assert (len(about_flaky("target.failing")), len(about_flaky("target.recovered")), len(given_up)) == (1, 1, 1)
    data = failing[0]["data"]
    assert data["dags"] == ["system_ops_flaky"] and data["last_status_code"] == 503 and data["target"].startswith("http://127.0.0.1:")
    assert recovered[0]["data"]["recovered_at"] > data["failing_since"]
    assert given_up[0]["data"]["last_error"].startswith("refused by egress policy") and "system_ops/refused" not in json.dumps(given_up[0])
    # never about the operations target itself
    assert not [e for e in _operations(system_receiver) if e["data"].get("target", "").endswith("/operations")]

    # and Airflow's StatsD got the metrics the operators' guide names, with their tags
    def seen(name, kind, **tags):
        return [m for m in statsd if m[0] == f"airflow.ordo_hooks.{name}" and m[3] == kind and tags.items() <= m[1].items()]

    expected = {
        "the worker's failed attempts": seen("attempt", "c", component="worker", outcome="5xx"),
        "the API server's failed attempts": seen("attempt", "c", component="api-server", outcome="5xx"),
        "the API server's delivering attempt": seen("attempt", "c", component="api-server", outcome="2xx"),
        "the API server's refusal": seen("attempt", "c", component="api-server", outcome="refused"),
        "handed to the ledger": seen("ledger.handed_over", "c", component="worker", event="on_success", dag_id="system_ops_flaky"),
        "delivered by the API server": seen("delivery.delivered", "c", component="api-server", event="on_success", dag_id="system_ops_flaky"),
        "given up": seen("delivery.given_up", "c", event="on_success", dag_id="system_ops_refused"),
        "time to deliver": seen("delivery.time_to_deliver", "ms", component="api-server"),
        "the backlog": seen("ledger.pending", "g"),
        "its oldest's age": seen("ledger.oldest_pending_age", "g"),
    }
    assert not [what for what, found in expected.items() if not found], sorted({m[0] for m in statsd if "ordo_hooks" in m[0]})


def test_retention_prunes_settled_deliveries_and_keeps_pending_ones_and_db_clean_dry_run_deletes_nothing(airflow_deployment):
    run_id = airflow_deployment.trigger("system_ops_retention")
    assert airflow_deployment.wait_for_run("system_ops_retention", run_id)["state"] == "success"

    def rows():
        return {r["target_masked"].split("/")[2]: r for r in airflow_deployment.get(LEDGER, params={"dag_id": "system_ops_retention"})["deliveries"]}

    # the one to the receiver delivered (by the try, or by the API server when the run's sweep got there first),
    # the one to a receiver that is down pending, its next attempt an hour away after half a minute of them
    _wait(lambda: sorted(r["state"] for r in rows().values()) == ["delivered", "pending"], 60, "one delivered, one pending")

    dry = subprocess.run(
        [str(AIRFLOW), "ordo-hooks", "db-clean", "--dry-run", "--clean-before-timestamp", datetime.now(timezone.utc).isoformat()],
        env=airflow_deployment.environment(), capture_output=True, text=True, timeout=120,
    )
    assert dry.returncode == 0, dry.stderr
    assert "Dry run: " in dry.stdout and "  delivered: " in dry.stdout, dry.stdout
    assert len(rows()) == 2  # counted, not deleted

    # settled 20 s ago and more: pruned by the API server's loop; the pending one stays, however old
    _wait(lambda: [r["state"] for r in rows().values()] == ["pending"], 120, "the delivered row pruned, the pending one kept")
