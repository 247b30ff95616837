"""Deployment-wide hooks in a real deployment: a DAG that does not mention the package gets them,
through the cluster policy in the DAG processor and in the worker."""

from __future__ import annotations

import time

import pytest

pytestmark = pytest.mark.system


def test_a_dag_that_does_not_mention_the_package_gets_the_deployments_hooks(airflow_deployment, system_receiver):
    run_id = airflow_deployment.trigger("system_plain")
    run = airflow_deployment.wait_for_run("system_plain", run_id)
    assert run["state"] == "success"

    def ours():
        return [r.json for r in system_receiver.requests
                if r.path == "/deployment/on_success" and r.json["airflow"]["dag_id"] == "system_plain"]

    deadline = time.monotonic() + 30
    while not ours():
        assert time.monotonic() < deadline, "no deployment-wide on_success webhook for system_plain"
        time.sleep(0.5)
    (body,) = ours()
    assert body["name"] == "plain_task" and body["status"] == 0 and "plain" in body["log"]
