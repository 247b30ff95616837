"""The one validator of the config formats: each refuses unknown fields, wrong types and bad ids, in short messages."""

from __future__ import annotations

import subprocess
import sys

import pytest

from airflow_ordo_hooks.dag_file import schema
from airflow_ordo_hooks.dag_file.cheek_schedule import load_cheek_schedule
from airflow_ordo_hooks.dag_file.job_events import parse_hooks
from airflow_ordo_hooks.exceptions import CheekScheduleError, HooksConfigError, OnExitConfigError

STEP = {"id": "call_webhook", "type": "CALL_WEBHOOK", "inputs": {"waits_for": "job:dataset"}, "param_keys": ["webhook_url"]}
HUGE = "x " * 500_000  # 1 MB, and no valid id, URL or cron


def _refusal(model, data, **context):
    with pytest.raises(OnExitConfigError) as err:
        schema.validate(model, data, where="config", error=OnExitConfigError, context=context, labels={"jobs": "job"})
    return str(err.value)


@pytest.mark.parametrize(
    "model, data, message",
    [
        # unknown field
        (schema.JobEventsConfig, {"on_error": {"notify_pager": ["x"]}}, "config.on_error: unknown action 'notify_pager'; expected one of notify_webhook,"),
        (schema.CheekSchedule, {"jobs": {"a": {"command": "x", "timeout": 5}}}, "config: job 'a': unknown field 'timeout'; expected one of command,"),
        (schema.OnExitStepConfig, {**STEP, "retries": 3}, "config: unknown field 'retries'; expected one of id, type, inputs, param_keys"),
        # wrong type
        (schema.JobEventsConfig, {"on_success": {"notify_webhook": "https://x.example"}}, "config.on_success.notify_webhook: expected a list of targets, got 'https://x.example'"),
        (schema.CheekSchedule, {"jobs": {"a": {"command": "x", "retries": True}}}, "config: job 'a'.retries: expected a whole number 0 or more, got True"),
        (schema.OnExitStepConfig, {**STEP, "param_keys": ("webhook_url",)}, "config.param_keys: expected a list of parameter names, got ('webhook_url',)"),
        # bad id
        (schema.JobEventsConfig, {"on_success": {"trigger_job": ["ok", "no/slash"]}}, "config.on_success.trigger_job[1]: expected a DAG id (letters, digits, _ - .), got 'no/slash'"),
        (schema.CheekSchedule, {"jobs": {"ok": {"command": "x"}, "a b": {"command": "x"}}}, "config: job 'a b': a job name must be letters, digits, _ - . (it becomes a DAG id)"),
        (schema.OnExitStepConfig, {**STEP, "id": "call.webhook"}, "config.id: expected an id of letters, digits, _ and -, got 'call.webhook'"),
    ],
)
def test_each_format_refuses_unknown_fields_wrong_types_and_bad_ids(model, data, message):
    assert _refusal(model, data, known_dag_ids={"ok"}).startswith(message)


def test_valid_configs_give_models_that_keep_the_order_written():
    job_events = schema.JobEventsConfig.model_validate({"on_error": {"trigger_job": ["b"], "notify_webhook": ["conn:x"]}, "on_success": None})
    assert [name for name, _ in job_events.written()] == ["on_error", "on_success"]
    assert list(job_events.on_error.written()) == [("trigger_job", ["b"]), ("notify_webhook", ["conn:x"])]

    job = schema.CheekSchedule.model_validate({"jobs": {"a": {"command": "echo  two", "cron": "@midnight"}}}).jobs["a"]
    assert (job.command, job.cron, job.retries, job.env) == (("echo", "two"), "@daily", 0, None)

    step = schema.OnExitStepConfig.model_validate(STEP, context={"task_ids": set()})
    assert (step.id, step.inputs.waits_for, step.param_keys) == ("call_webhook", "job:dataset", ["webhook_url"])


@pytest.mark.parametrize(
    "model, data, field",
    [
        (schema.JobEventsConfig, {"on_error": {"notify_webhook": [HUGE]}}, "config.on_error.notify_webhook[0]: "),
        (schema.JobEventsConfig, {"on_error": {"trigger_job": [HUGE]}}, "config.on_error.trigger_job[0]: "),
        (schema.JobEventsConfig, {HUGE: {}}, "config: unknown event "),
        (schema.CheekSchedule, {"jobs": {"a": {"command": "x", "working_directory": 7, "cron": HUGE}}}, "config: job 'a'.cron: "),
        (schema.CheekSchedule, {"jobs": {HUGE: {"command": "x"}}}, "config: job 'x x x"),
        (schema.OnExitStepConfig, {**STEP, "type": HUGE}, "config.type: Unsupported step type: x x x"),
        (schema.OnExitStepConfig, {**STEP, "inputs": {"waits_for": HUGE}}, "config.inputs.waits_for: "),
    ],
)
def test_a_1_mb_value_gives_a_short_message_that_names_the_field(model, data, field):
    message = _refusal(model, data)
    assert message.startswith(field) and len(message) < 2_000, message[:3_000]


def test_a_1_mb_webhook_target_through_parse_hooks_and_a_schedule_file():
    with pytest.raises(HooksConfigError) as err:
        parse_hooks({"on_error": {"notify_webhook": [f"ftp://{HUGE}"]}}, where="hooks of task 't'")
    assert str(err.value).startswith("hooks of task 't'.on_error.notify_webhook[0]: 'ftp://x x x") and len(str(err.value)) < 2_000
    with pytest.raises(CheekScheduleError) as err:
        load_cheek_schedule(f"jobs:\n  a:\n    command: x\n    env: {{A: [{HUGE}]}}\n")
    assert str(err.value).startswith("cheek schedule: job 'a'.env: expected names mapped to plain values, got {'A': ['x x x")
    assert len(str(err.value)) < 2_000


def test_a_context_restricts_what_is_valid():
    assert _refusal(schema.JobEventsConfig, {"on_retries_exhausted": {}}, events=("on_success", "on_error")) == (
        "config: unknown event 'on_retries_exhausted' (a DAG run is not retried: use on_error); expected one of on_success, on_error"
    )
    assert _refusal(schema.OnExitStepConfig, {**STEP, "inputs": {"waits_for": "step:gone.out"}}, task_ids={"a"}) == (
        "config.inputs.waits_for: 'step:gone.out' names step 'gone', which is not a task of the DAG (tasks: a)"
    )
    assert _refusal(schema.CheekSchedule, {"jobs": {"a": {"command": "x", "on_error": {"trigger_job": ["elsewhere"]}}}}) == (
        "config: job 'a'.on_error.trigger_job: no job 'elsewhere' in the schedule (jobs: a); define it, or pass known_dag_ids"
    )


def test_further_problems_are_counted_not_listed():
    message = _refusal(schema.CheekSchedule, {"jobs": {"a": {"command": "x", "retries": -1, "working_directory": 7}}})
    assert message == "config: job 'a'.working_directory: expected a path, got 7 (and 1 more)"


def test_importing_the_package_or_its_parsers_does_not_import_pydantic():
    code = (
        # cheek_schedule builds DAGs, so it imports Airflow (and pydantic with it) anyway
        "import sys, airflow_ordo_hooks, airflow_ordo_hooks.dag_file.job_events, airflow_ordo_hooks.dag_file.on_exit_step; "
        "print('pydantic' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"


def test_anchors_merge_keys_and_nesting_within_the_bounds_still_load():
    dags = load_cheek_schedule("jobs:\n  a: &job {command: x, retries: 2}\n  b: *job\n  c:\n    <<: *job\n    cron: '@daily'\n")
    assert sorted(dags) == ["a", "b", "c"] and dags["c"].get_task("c").retries == 2
    with pytest.raises(HooksConfigError, match=r"^hooks: expected a mapping of events"):
        parse_hooks("[" * schema.MAX_DEPTH + "]" * schema.MAX_DEPTH)
    with pytest.raises(HooksConfigError, match=r"^hooks\[0\].*: nested more than 32 levels deep$"):
        parse_hooks("[" * (schema.MAX_DEPTH + 1) + "]" * (schema.MAX_DEPTH + 1))
