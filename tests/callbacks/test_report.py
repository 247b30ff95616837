"""SPEC §6 (O7-O12): the report builder, without Airflow or HTTP, checked against the shipped JSON Schema; its params masked, also in a real run."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from airflow_ordo_hooks._targets import mask_url

from airflow_ordo_hooks.callbacks.report import ArtifactRecord, OutputRecord, RunSnapshot, StepRecord, build_report, ordo_time, settled_status

T0 = datetime(2026, 2, 24, 18, 9, 31, 276543, tzinfo=timezone.utc)
ON_EXIT = {"step_id": "call_webhook", "waits_for": "step:info.metadata", "waits_for_met": True, "note": None}


def _at(seconds):
    return T0 + timedelta(seconds=seconds)


def test_ordo_timestamps_are_utc_with_milliseconds():
    assert ordo_time(T0) == "2026-02-24T18:09:31.276Z"
    assert ordo_time(T0.astimezone(timezone(timedelta(hours=-5)))) == "2026-02-24T18:09:31.276Z"
    assert ordo_time(None) is None


@pytest.mark.parametrize(
    "leaf_states, expected",
    [
        (["success", "skipped"], "success"),
        (["success", "failed"], "failed"),
        (["success", "upstream_failed"], "failed"),
        (["success", "removed"], "success"),
        (["success", "running"], "running"),
    ],
)
def test_settled_status_is_airflows_rule_on_the_leaves(leaf_states, expected):
    steps = [StepRecord("inner", state="failed")] + [StepRecord(f"leaf{i}", state=s) for i, s in enumerate(leaf_states)]
    assert settled_status(steps, {f"leaf{i}" for i in range(len(leaf_states))}) == expected


def test_the_report_in_ordos_shapes(valid_report):
    snapshot = RunSnapshot(
        dag_id="pipeline",
        run_id="manual__1",
        status="failed",
        source="rest_api",
        params={"call_webhook": {"webhook_url": "https://x/…#abcdef"}},  # as send_report masks it
        created_at=_at(-1),
        started_at=T0,
        steps=[
            StepRecord("publish", state="upstream_failed", step_type="PythonOperator", try_number=0),
            StepRecord("convert", state="failed", step_type="PythonOperator", try_number=2, start_date=_at(2), end_date=_at(3.5)),
            StepRecord("info", state="success", step_type="PythonOperator", try_number=1, start_date=_at(1), end_date=_at(1.25)),
            StepRecord("square", 10, "success", "PythonOperator", 1, _at(4), _at(5)),
            StepRecord("square", 2, "running", "PythonOperator", 1, _at(4), None),
        ],
        artifacts=[ArtifactRecord("info", "metadata", value={"rows": 3}, created_at=_at(1.2))],
        outputs=[OutputRecord("file:///out.csv", "out", "convert", _at(3))],
    )
    report = valid_report(build_report(snapshot, finished_at=_at(10), on_exit=ON_EXIT))

    assert report["job"] == {
        "id": "manual__1", "recipe_id": "pipeline", "status": "failed", "airflow_state": "failed",
        "created_at": "2026-02-24T18:09:30.276Z", "started_at": "2026-02-24T18:09:31.276Z",
        "finished_at": "2026-02-24T18:09:41.276Z", "error": "1 step(s) failed: convert",
        "params": {"call_webhook": {"webhook_url": "https://x/…#abcdef"}},
    }
    assert report["progress"] == {"percentage": 2 / 5, "completed_steps": 3, "total_steps": 5}
    assert report["duration_ms"] == 10_000
    assert [s["step_id"] for s in report["steps"]] == ["convert", "info", "publish", "square[2]", "square[10]"]
    assert [(s["status"], s["airflow_state"]) for s in report["steps"]] == [
        ("failed", "failed"), ("success", "success"), ("skipped", "upstream_failed"), ("running", "running"), ("success", "success")
    ]
    assert [(t["step"], t["duration_ms"]) for t in report["timeline"]] == [
        ("info", 250), ("convert", 1500), ("square[2]", None), ("square[10]", 1000), ("publish", None)
    ]
    assert report["artifacts"] == [{
        "job_id": "manual__1", "name": "metadata", "type": "xcom", "uri": "step:info.metadata",
        "producer_step": "info", "metadata": {"value": {"rows": 3}}, "created_at": "2026-02-24T18:09:32.476Z",
    }]
    assert report["outputs"][0]["path"] == "file:///out.csv" and report["outputs"][0]["producer_step"] == "convert"
    assert report["on_exit"] == {**ON_EXIT, "source": "rest_api"}


def test_the_schema_refuses_what_ordo_would_not_send(valid_report):
    import jsonschema

    report = build_report(RunSnapshot("d", "r", "success", "task_sdk"), finished_at=T0, on_exit=ON_EXIT)
    valid_report(report)
    for broken in (
        {**report, "job": {**report["job"], "status": "ok"}},
        {**report, "progress": {**report["progress"], "percentage": 100}},
        {**report, "job": {**report["job"], "finished_at": "2026-02-24 18:09:31"}},
        {k: v for k, v in report.items() if k != "timeline"},
    ):
        with pytest.raises(jsonschema.ValidationError):
            valid_report(broken)


def test_a_step_that_never_ran_has_no_start_and_no_attempt_and_a_failure_says_why(valid_report):
    snapshot = RunSnapshot(
        dag_id="pipeline", run_id="manual__1", status="failed", source="rest_api", started_at=T0,
        steps=[
            # Airflow gives a step it marks upstream_failed a start and an end, the same, and try 0
            StepRecord("publish", state="upstream_failed", step_type="PythonOperator", try_number=0,
                       start_date=_at(6), end_date=_at(6), order=2),
            StepRecord("convert", state="failed", step_type="PythonOperator", try_number=2, start_date=_at(2), end_date=_at(3.5),
                       error="ValueError: no column 'price'", order=1),
            StepRecord("archive", state="upstream_failed", try_number=0, order=3),
            StepRecord("audit", state="upstream_failed", try_number=0, order=0),
        ],
    )
    report = valid_report(build_report(snapshot, finished_at=_at(10), on_exit=ON_EXIT))

    publish = next(s for s in report["steps"] if s["step_id"] == "publish")
    assert (publish["started_at"], publish["attempt"], publish["finished_at"]) == (None, None, "2026-02-24T18:09:37.276Z")
    convert = next(s for s in report["steps"] if s["step_id"] == "convert")
    assert convert["error"] == "ValueError: no column 'price'" and convert["attempt"] == 2
    # what started, by time; what never did, in the DAG's run order (not alphabetically)
    assert [(t["step"], t["duration_ms"]) for t in report["timeline"]] == [
        ("convert", 1500), ("audit", None), ("publish", None), ("archive", None)
    ]


def test_the_params_a_report_carries_are_masked_as_airflow_masks_them_its_url_shown_masked(valid_report):
    url = mask_url("https://hooks.example.com/services/T000/B000/s3cr3t-path")
    params = {
        "call_webhook": {"webhook_url": url},
        "password": "hunter2",
        "warehouse": {"user": "loader", "db_password": "hunter2", "api_key": "k3y-hunter2", "tables": ["orders", "items"]},
        "steps": [{"name": "load", "token": "tok-hunter2"}],
        "slack_webhook_url": "https://hooks.slack.com/services/T000/B000/s3cr3t-path",
        "rows": 3,
    }
    report = valid_report(build_report(RunSnapshot("d", "r", "success", "task_sdk", params=params), finished_at=T0, on_exit=ON_EXIT))

    assert report["job"]["params"] == {
        "call_webhook": {"webhook_url": url},
        "password": "***",
        "warehouse": {"user": "loader", "db_password": "***", "api_key": "***", "tables": ["orders", "items"]},
        "steps": [{"name": "load", "token": "***"}],
        "slack_webhook_url": "***",
        "rows": 3,
    }
    assert params["password"] == "hunter2", "the run's params themselves are not changed"


@pytest.mark.airflow
def test_a_runs_report_sent_and_kept_carries_no_password_of_its_conf(dagbag, receiver, valid_report):
    import copy

    conf = {"call_webhook": {"webhook_url": receiver.url("/masked")}, "warehouse": {"user": "loader", "password": "hunter2"}}
    # a copy: dag.test() leaves a run's conf in the params of the DAG it runs, where other tests run it without
    run = copy.deepcopy(dagbag.get_dag("ordo_url_required")).test(run_conf=conf)

    (request,) = receiver.requests
    assert b"hunter2" not in request.body
    params = valid_report(request.json)["job"]["params"]
    assert params == {"call_webhook": {"webhook_url": mask_url(receiver.url("/masked"))}, "warehouse": {"user": "loader", "password": "***"}}
    assert str(run.state) == "success"
