"""Deployment-wide hooks in a real deployment: a DAG that does not mention the package gets them,
through the cluster policy in the DAG processor and in the worker."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from tests.system.deployments import VENV_BIN

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


def test_cheeks_own_schedule_yaml_runs_this_fails_with_bashs_message(airflow_deployment, system_receiver):
    """example_dags/cheek_schedule.yaml, loaded by a two-line DAG file: `this fails` gives status 127
    and the shell's message in the payload's log; once its retries are exhausted, cleanup_job runs."""
    airflow_deployment.request("PATCH", "/api/v2/dags/yaml_cleanup_job", json={"is_paused": False})
    run_id = airflow_deployment.trigger("yaml_coffee")
    run = airflow_deployment.wait_for_run("yaml_coffee", run_id)
    assert run["state"] == "failed"

    def of_run(path):
        return [r.json for r in system_receiver.requests if r.path == path and r.json["airflow"]["run_id"] == run_id]

    deadline = time.monotonic() + 30
    while not of_run("/yaml/critical-alerts"):
        assert time.monotonic() < deadline, "no on_retries_exhausted webhook from yaml_coffee"
        time.sleep(0.5)
    errors = of_run("/yaml/e33464a3-1a4f-4f1a-99d3-743364c6b10f")
    assert [e["retry_attempt"] for e in errors] == [0, 1, 2, 3]
    for payload in errors:
        assert payload["status"] == 127 and "this: command not found" in payload["log"]
        # what Airflow logs around every task is left out, and the error is there once
        for boilerplate in ("::group::", "DAG bundles loaded", "Worker startup parse complete", "Tmp dir root location"):
            assert boilerplate not in payload["log"], payload["log"]
        assert payload["log"].count("Bash command failed") == 1, payload["log"]
        assert payload["airflow"]["log_url"].startswith(f"{airflow_deployment.base_url}/dags/yaml_coffee/runs/")
    # `airflow ordo-hooks preview` builds the last try's on_error from the database and the log
    # file: the body the callback sent, apart from the time it took
    preview = subprocess.run(
        [str(VENV_BIN / "airflow"), "ordo-hooks", "preview", "yaml_coffee", "coffee", "on_error", "--run-id", run_id, "-o", "json"],
        env=airflow_deployment.environment(), capture_output=True, text=True, timeout=120,
    )
    assert preview.returncode == 0, preview.stderr[-3000:]
    (shown,) = json.loads(preview.stdout)
    (sent,) = [d["body"] for d in shown["deliveries"] if d["action"] == "notify_webhook"]
    last = errors[-1]
    assert {k: v for k, v in sent.items() if k != "duration"} == {k: v for k, v in last.items() if k != "duration"}
    (exhausted,) = of_run("/yaml/critical-alerts")
    assert exhausted["retries_exhausted"] is True and exhausted["triggered"] == ["yaml_cleanup_job"]

    def cleanup():  # by path first: other tests' requests share the receiver, some cut short by design
        return [r.json for r in system_receiver.requests if r.path.startswith(("/yaml/", "/deployment/"))
                and r.json.get("name") == "cleanup_job" and r.json.get("triggered_by") == "retries_exhausted[yaml_coffee]"]

    deadline = time.monotonic() + 90
    while not cleanup():
        assert time.monotonic() < deadline, "yaml_cleanup_job did not run"
        time.sleep(0.5)
