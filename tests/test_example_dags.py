"""The example DAGs, run in a real Airflow against a real receiver."""

from __future__ import annotations

import pytest

from airflow_ordo_hooks.testing.receiver import Respond

pytestmark = pytest.mark.airflow


def test_flaky_task_reports_its_failed_try_then_its_success(run_dag, receiver):
    run = run_dag("example_flaky_task")

    assert str(run.state) == "success"
    events = receiver.wait_for(2)
    assert [(r.path, r.json["retry_attempt"], r.json["retries_exhausted"]) for r in events] == [
        ("/events/on_error", 0, False),
        ("/events/on_success", 1, False),
    ]
    error, success = (r.json for r in events)
    assert error["name"] == success["name"] == "brew"
    assert error["status"] == -1 and success["status"] == 0
    assert "The kettle is cold" in error["log"]
    assert error["triggered_at"] == success["triggered_at"]
    assert success["airflow"]["try_number"] == 2 and success["airflow"]["state"] == "success"


def test_a_receiver_answering_500_does_not_change_the_task_state(run_dag, receiver):
    receiver.script("/events/on_error", *[Respond(500)] * 20)
    receiver.script("/events/on_success", *[Respond(500)] * 20)

    run = run_dag("example_flaky_task")

    assert str(run.state) == "success"
    assert run_dag.task_states(run) == {"brew": "success"}
    paths = {r.path for r in receiver.requests}
    assert paths == {"/events/on_error", "/events/on_success"}
