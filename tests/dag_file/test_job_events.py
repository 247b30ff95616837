"""cheek's hooks config: accepted as cheek writes it, refused at parse time with the field, value and expectation."""

from __future__ import annotations

import pytest

from airflow_ordo_hooks._events import RUN_EVENTS
from airflow_ordo_hooks.dag_file.job_events import Action, JobEvents, HooksConfigError, parse_hooks
from tests.seeds import COFFEE_HOOKS


def test_cheeks_own_yaml_parses():
    job_events = parse_hooks(COFFEE_HOOKS)
    assert job_events.actions == (
        Action("on_error", "notify_webhook", "https://webhook.site/e33464a3-1a4f-4f1a-99d3-743364c6b10f"),
        Action("on_retries_exhausted", "trigger_job", "cleanup_job"),
        Action("on_retries_exhausted", "notify_webhook", "https://webhook.site/critical-alerts"),
    )


def test_combining_keeps_both_levels_and_each_action_once():
    schedule = parse_hooks({"on_success": {"notify_webhook": ["https://a.example/x"]}})
    job = parse_hooks({"on_success": {"notify_webhook": ["https://a.example/x", "https://b.example/y"]}})
    combined = schedule | job
    assert [a.target for a in combined.for_event("on_success")] == ["https://a.example/x", "https://b.example/y"]
    assert parse_hooks(combined) is combined and not JobEvents() and parse_hooks(None) == JobEvents()


@pytest.mark.parametrize(
    "config, message",
    [
        ([1, 2], "hooks: expected a mapping of events"),
        ("- just\n- a list\n", "hooks: expected a mapping of events"),
        ("on_error: [unclosed", "hooks: not valid YAML"),
        ({"on_failure": {}}, "hooks: unknown event 'on_failure'; expected one of on_success, on_error, on_retries_exhausted"),
        ({"on_error": ["https://x.example"]}, "hooks.on_error: expected a mapping of actions"),
        ({"on_error": {"notify_email": ["a@b.c"]}}, "hooks.on_error: unknown action 'notify_email'; expected one of notify_webhook"),
        ({"on_error": {"notify_webhook": "https://x.example"}}, "hooks.on_error.notify_webhook: expected a list of targets, got 'https://x.example'"),
        ({"on_error": {"notify_webhook": {"url": "https://x.example"}}}, "hooks.on_error.notify_webhook: expected a list of targets"),
        ({"on_error": {"notify_webhook": 5}}, "hooks.on_error.notify_webhook: expected a list of targets, got 5"),
        ({"on_error": {"notify_webhook": [""]}}, "hooks.on_error.notify_webhook[0]: expected a URL or 'conn:<conn_id>', got ''"),
        ({"on_error": {"notify_webhook": ["https://ok.example", 42]}}, "hooks.on_error.notify_webhook[1]: expected a URL or 'conn:<conn_id>', got 42"),
        ({"on_error": {"notify_webhook": ["ftp://x.example/f"]}}, # the value is named as every text of the package names a URL: its path may be a secret
        "hooks.on_error.notify_webhook[0]: 'ftp://x.example/…#7405b0': expected an http:// or https:// URL"),
        ({"on_error": {"notify_slack_webhook": ["hooks.slack.com/services/x"]}}, "hooks.on_error.notify_slack_webhook[0]: 'hooks.slack.com/services/x': expected an http:// or https:// URL"),
        ({"on_error": {"notify_discord_webhook": ["https://"]}}, "hooks.on_error.notify_discord_webhook[0]: 'https://': the URL has no host"),
        ({"on_error": {"notify_webhook": ["https://x.example:99999/"]}}, "is not a valid URL"),
        ({"on_error": {"notify_webhook": ["https://x.example/a b"]}}, "a URL cannot contain white space"),
        ({"on_error": {"notify_webhook": ["conn:"]}}, "hooks.on_error.notify_webhook[0]: 'conn:': expected 'conn:<conn_id>'"),
        ({"on_error": {"trigger_job": ["clean up"]}}, "hooks.on_error.trigger_job[0]: expected a DAG id (letters, digits, _ - .), got 'clean up'"),
        ({"on_error": {"trigger_job": [None]}}, "hooks.on_error.trigger_job[0]: expected a DAG id"),
        ({"on_error": {"trigger_job": "cleanup_job"}}, "hooks.on_error.trigger_job: expected a list of targets, got 'cleanup_job'"),
    ],
)
def test_bad_config_is_refused_naming_field_value_and_expectation(config, message):
    with pytest.raises(HooksConfigError) as err:
        parse_hooks(config)
    assert message in str(err.value)


def test_a_dag_run_has_no_on_retries_exhausted():
    with pytest.raises(HooksConfigError, match=r"unknown event 'on_retries_exhausted' \(a DAG run is not retried: use on_error\)"):
        parse_hooks({"on_retries_exhausted": {"notify_webhook": ["https://x.example"]}}, events=RUN_EVENTS)


def test_errors_name_the_dag_or_task_the_config_is_for():
    from datetime import datetime

    from airflow.sdk import DAG
    from airflow.providers.standard.operators.empty import EmptyOperator

    from airflow_ordo_hooks import attach_hooks, attach_run_hooks

    with DAG("named", schedule=None, start_date=datetime(2026, 1, 1)) as dag:
        task = EmptyOperator(task_id="brew")
    with pytest.raises(HooksConfigError, match=r"^hooks of task 'brew'\.on_error\.notify_webhook\[0\]"):
        attach_hooks(task, {"on_error": {"notify_webhook": ["nope"]}})
    with pytest.raises(HooksConfigError, match=r"^hooks of DAG 'named': unknown event 'on_fail'"):
        attach_hooks(dag, {"on_fail": {}})
    with pytest.raises(HooksConfigError, match=r"^run hooks of DAG 'named': unknown event 'on_retries_exhausted'"):
        attach_run_hooks(dag, {"on_retries_exhausted": {}})
    with pytest.raises(TypeError, match="expected a task or a DAG, got 'brew'"):
        attach_hooks("brew", {})
