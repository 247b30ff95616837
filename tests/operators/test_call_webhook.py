"""SPEC §6 (O4-O13): the on_exit step in real runs (dag.test), delivering to a real receiver."""

from __future__ import annotations

import pytest

from airflow_ordo_hooks._targets import mask_url
from airflow_ordo_hooks.testing.receiver import Respond

pytestmark = pytest.mark.airflow


def _xcom(run, task_id="call_webhook"):
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = session.query(XComModel).filter_by(dag_id=run.dag_id, run_id=run.run_id, task_id=task_id, key="return_value").one()
        return XComModel.deserialize_value(row)


def _steps_match_task_instances(report, states):
    assert {s["step_id"]: s["airflow_state"] for s in report["steps"]} == {k: v for k, v in states.items() if k != "call_webhook"}
    assert [s["step_id"] for s in report["steps"]] == sorted(s["step_id"] for s in report["steps"])
    assert {t["step"]: t["status"] for t in report["timeline"]} == {s["step_id"]: s["status"] for s in report["steps"]}
    done = [s for s in report["steps"] if s["status"] in ("success", "failed")]
    assert report["progress"]["completed_steps"] == len(done)
    assert report["progress"]["total_steps"] == len(report["steps"]) == len(states) - 1
    succeeded = sum(s["status"] == "success" for s in report["steps"])
    assert report["progress"]["percentage"] == pytest.approx(succeeded / len(report["steps"]))


@pytest.mark.parametrize(
    "outcome, final, met, failed_step",
    [("all_ok", "success", True, None), ("main_fails", "failed", True, "convert"), ("info_fails", "failed", False, "dataset_info")],
)
def test_one_report_per_run_whatever_its_outcome(run_dag, receiver, valid_report, outcome, final, met, failed_step):
    plain = run_dag(f"ordo_{outcome}_plain")
    receiver.reset()
    run = run_dag(f"ordo_{outcome}")

    assert str(run.state) == str(plain.state) == final, "the on_exit step does not change the run's final state"
    (request,) = receiver.requests
    assert request.path == f"/ordo_{outcome}/report"
    report = valid_report(request.json)
    job = report["job"]
    assert job["status"] == job["airflow_state"] == str(run.state)
    assert (job["id"], job["recipe_id"]) == (run.run_id, f"ordo_{outcome}")
    # the params in effect (the DAG's default URL here), the step's URL masked
    assert job["params"] == {"call_webhook": {"webhook_url": mask_url(receiver.url(f"/ordo_{outcome}/report"))}}
    assert job["started_at"].endswith("Z") and job["finished_at"] >= job["started_at"]
    states = run_dag.task_states(run)
    _steps_match_task_instances(report, states)
    assert report["on_exit"]["waits_for_met"] is met and report["on_exit"]["source"] == "task_sdk"
    if met:
        assert {(a["producer_step"], a["name"], a["metadata"]["value"]["rows"]) for a in report["artifacts"]} == {("dataset_info", "metadata", 3)}
        assert report["on_exit"]["note"] is None
    else:
        assert "dataset_info finished failed without producing 'metadata'" in report["on_exit"]["note"]
    outputs = [(o["artifact_name"], o["producer_step"]) for o in report["outputs"]]
    assert outputs == ([] if outcome == "main_fails" else [(f"ordo_{outcome}_out", "convert")])
    assert job["error"] == (f"1 step(s) failed: {failed_step}" if failed_step else None)
    record = _xcom(run)
    assert record["delivery"]["ok"] and record["delivery"]["status_code"] == 200 and record["job_status"] == final


@pytest.mark.parametrize("down", ["500", "refused"])
def test_a_failed_delivery_changes_no_state_and_is_recorded(run_dag, receiver, down, monkeypatch):
    if down == "500":
        receiver.script("/ordo_all_ok/report", *[Respond(500)] * 10)
        conf = None
    else:
        conf = {"call_webhook": {"webhook_url": "http://127.0.0.1:9/report"}}
    run = run_dag("ordo_all_ok", conf=conf)

    assert str(run.state) == "success"
    assert run_dag.task_states(run)["call_webhook"] == "success"
    delivery = _xcom(run)["delivery"]
    assert delivery["ok"] is False and delivery["attempts"] == 3
    assert ("HTTP 500" if down == "500" else "ConnectionError") in delivery["error"]


@pytest.mark.parametrize("conf", [{}, {"call_webhook": {}}, {"call_webhook": {"webhook_url": ""}}])
def test_a_run_without_the_required_url_is_refused_naming_the_step_and_the_key(run_dag, receiver, conf):
    from airflow.sdk.exceptions import ParamValidationError

    with pytest.raises(ParamValidationError) as refused:
        run_dag("ordo_url_required", conf=conf)
    message = str(refused.value)
    assert message.startswith("Invalid input for param call_webhook: ")
    assert "'webhook_url' is a required property" in message or "'' should be non-empty" in message
    assert receiver.requests == []


def test_the_url_comes_from_the_runs_conf(run_dag, receiver, valid_report):
    run = run_dag("ordo_url_required", conf={"call_webhook": {"webhook_url": receiver.url("/from-conf")}})

    (request,) = receiver.requests
    assert request.path == "/from-conf"
    report = valid_report(request.json)
    assert report["job"]["params"] == {"call_webhook": {"webhook_url": mask_url(receiver.url("/from-conf"))}}
    assert str(run.state) == "success"


def test_a_mapped_task_of_1000_instances_gives_one_report_with_every_step(run_dag, receiver, valid_report):
    run = run_dag("ordo_mapped")

    (request,) = receiver.requests
    report = valid_report(request.json)
    assert report["progress"] == {"percentage": 1, "completed_steps": 1001, "total_steps": 1001}
    mapped = [s for s in report["steps"] if s["step_id"].startswith("square[")]
    assert [s["map_index"] for s in mapped] == list(range(1000))
    assert str(run.state) == "success"


def test_the_api_connection_named_in_the_settings_is_read_and_a_failing_api_still_gives_a_report(run_dag, receiver, monkeypatch):
    # attach_on_exit without api_conn_id: [ordo_hooks] api_conn_id decides, where the step runs
    monkeypatch.setenv("AIRFLOW__ORDO_HOOKS__API_CONN_ID", "ordo_api_from_settings")
    monkeypatch.setenv("AIRFLOW_CONN_ORDO_API_FROM_SETTINGS", receiver.url("").rstrip("/"))
    run = run_dag("ordo_all_ok", conf={"call_webhook": {"webhook_url": receiver.url("/ordo_all_ok/report")}})

    assert str(run.state) == "success"
    asked = [r.path for r in receiver.requests if r.method == "GET"]
    assert asked and asked[0].startswith("/api/v2/dags/ordo_all_ok/dagRuns/"), asked
    # that "API" answers no JSON: the report is still sent, built from what the Task SDK gives
    (report,) = [r.json for r in receiver.requests if r.method == "POST" and r.path == "/ordo_all_ok/report"]
    assert report["on_exit"]["source"] == "task_sdk" and report["job"]["status"] == "success"
    assert run_dag.task_states(run)["call_webhook"] == "success"
