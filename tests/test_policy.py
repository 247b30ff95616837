"""Deployment-wide hooks through Airflow's cluster policy: DAGs that do not mention the package get them."""

from __future__ import annotations

import logging

import pytest

from airflow_ordo_hooks.callbacks.job_event import JobEventCallback


def _parse_plain(dags_folder):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(dags_folder / "plain_dag.py"))
    assert not bag.import_errors, bag.import_errors
    return bag.get_dag("plain_dag")


def _ours(task):
    return [cb for cb in task.on_failure_callback if isinstance(cb, JobEventCallback)]


@pytest.mark.airflow
def test_every_task_gets_the_deployments_hooks_and_they_fire(dagbag, receiver, tmp_path, monkeypatch):
    from tests.conftest import DAGS_FOLDER

    hooks_file = tmp_path / "hooks.yaml"
    hooks_file.write_text(f"on_success:\n  notify_webhook: [{receiver.url('/deployment/on_success')}]\n")
    monkeypatch.setenv("AIRFLOW__ORDO_HOOKS__HOOKS_FILE", str(hooks_file))

    dag = _parse_plain(DAGS_FOLDER)
    (callback,) = _ours(dag.get_task("plain_task"))
    assert [(a.event, a.target) for a in callback.job_events.actions] == [("on_success", receiver.url("/deployment/on_success"))]

    run = dag.test()
    assert str(run.state) == "success"
    (request,) = receiver.requests
    assert request.path == "/deployment/on_success" and request.json["name"] == "plain_task"


@pytest.mark.airflow
@pytest.mark.parametrize(
    "content, message",
    [
        ("on_error: [not, a, mapping]", "on_error: expected a mapping of actions"),
        ("on_success: {trigger_job: [x]}", "trigger_job is not allowed in deployment-wide hooks"),
        ("on_success: {notify_webhook: [ftp://x]}", "'ftp://x': expected an http:// or https:// URL"),
        (": : :", "not valid YAML"),
    ],
)
def test_a_malformed_hooks_file_is_reported_and_does_not_break_parsing(dagbag, tmp_path, monkeypatch, caplog, content, message):
    from tests.conftest import DAGS_FOLDER

    hooks_file = tmp_path / "hooks.yaml"
    hooks_file.write_text(content)
    monkeypatch.setenv("AIRFLOW__ORDO_HOOKS__HOOKS_FILE", str(hooks_file))
    with caplog.at_level(logging.ERROR, logger="airflow_ordo_hooks.policy"):
        dag = _parse_plain(DAGS_FOLDER)

    assert _ours(dag.get_task("plain_task")) == []
    assert f"deployment-wide hooks not applied: [ordo_hooks] hooks_file {hooks_file}" in caplog.text
    assert message in caplog.text


@pytest.mark.airflow
def test_a_missing_hooks_file_is_reported(dagbag, tmp_path, monkeypatch, caplog):
    from tests.conftest import DAGS_FOLDER

    monkeypatch.setenv("AIRFLOW__ORDO_HOOKS__HOOKS_FILE", str(tmp_path / "nowhere.yaml"))
    with caplog.at_level(logging.ERROR, logger="airflow_ordo_hooks.policy"):
        dag = _parse_plain(DAGS_FOLDER)
    assert _ours(dag.get_task("plain_task")) == [] and "nowhere.yaml" in caplog.text
