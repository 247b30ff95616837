"""SPEC §6 (O1-O5): Ordo's on_exit step as its recipes write it, refused at parse time when wrong."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from airflow_ordo_hooks.dag_file.attach import attach_on_exit
from airflow_ordo_hooks.dag_file.on_exit_step import OnExitConfigError, OnExitStep, Reference, parse_on_exit

SEED = {
    "id": "call_webhook",
    "type": "CALL_WEBHOOK",
    "inputs": {"waits_for": "step:dataset_info.metadata"},
    "param_keys": ["webhook_url"],
}
TASKS = {"convert", "dataset_info"}


def test_the_seed_step_parses_as_a_mapping_as_json_and_inside_a_recipe_text_or_file(tmp_path):
    expected = OnExitStep("call_webhook", "CALL_WEBHOOK", Reference("step:dataset_info.metadata", "step", "dataset_info", "metadata"), ("webhook_url",))
    recipe = {"id": "dataset_pipeline", "steps": [{"id": "convert", "type": "CONVERT"}], "on_exit": SEED}
    assert parse_on_exit(SEED, TASKS) == expected
    assert parse_on_exit(json.dumps(SEED), TASKS) == expected
    assert parse_on_exit(json.dumps(recipe), TASKS) == expected
    assert expected.url_key == "webhook_url"
    recipe_file = tmp_path / "recipe.json"
    recipe_file.write_text(json.dumps(recipe))
    assert parse_on_exit(str(recipe_file), TASKS) == parse_on_exit(recipe_file, TASKS) == expected
    with pytest.raises(OnExitConfigError, match="on_exit: cannot read recipe file"):
        parse_on_exit(str(tmp_path / "missing.json"), TASKS)
    job_ref = parse_on_exit({**SEED, "inputs": {"waits_for": "job:dataset"}}, TASKS).waits_for
    assert (job_ref.kind, job_ref.name, job_ref.slot) == ("job", "dataset", None)


@pytest.mark.parametrize(
    "step, message",
    [
        ([SEED], "on_exit: expected one step object, got a list of 1"),
        ("[1, 2", "on_exit: not valid JSON"),
        ("call_webhook", "on_exit: not valid JSON"),
        (42, "on_exit: expected a step object with id, type and inputs, got 42"),
        ({**SEED, "outputs": ["report"]}, "on_exit.outputs: not allowed on an on_exit step"),
        ({**SEED, "depends_on": ["convert"]}, "on_exit.depends_on: not allowed on an on_exit step"),
        ({**SEED, "retries": 3}, "on_exit: unknown field 'retries'"),
        ({**SEED, "id": "call webhook"}, "on_exit.id: expected an id of letters, digits, _ and -, got 'call webhook'"),
        ({**SEED, "id": None}, "on_exit.id: expected an id"),
        ({**SEED, "type": "SEND_EMAIL"}, "on_exit.type: Unsupported step type: SEND_EMAIL"),
        ({**SEED, "inputs": ["step:dataset_info.metadata"]}, "on_exit.inputs: expected an object of input slots"),
        ({**SEED, "inputs": {}}, "on_exit.inputs: CALL_WEBHOOK needs its input slot 'waits_for'"),
        ({**SEED, "inputs": {"waits_for": "step:dataset_info.metadata", "also": "job:x"}}, "CALL_WEBHOOK accepts exactly one input slot, 'waits_for'; got 'also'"),
        ({**SEED, "inputs": {"waits_for": "dataset_info.metadata"}}, "on_exit.inputs.waits_for: expected 'job:<name>' or 'step:<id>.<slot>', got 'dataset_info.metadata'"),
        ({**SEED, "inputs": {"waits_for": "step:dataset_info"}}, "expected 'job:<name>' or 'step:<id>.<slot>', got 'step:dataset_info'"),
        ({**SEED, "inputs": {"waits_for": "step:data set.metadata"}}, "got 'step:data set.metadata'"),
        ({**SEED, "inputs": {"waits_for": "step:missing.metadata"}}, "'step:missing.metadata' names step 'missing', which is not a task of the DAG (tasks: convert, dataset_info)"),
        ({**SEED, "param_keys": "webhook_url"}, "on_exit.param_keys: expected a list of parameter names, got 'webhook_url'"),
        ({**SEED, "param_keys": []}, "on_exit.param_keys: CALL_WEBHOOK needs at least one"),
        ({**SEED, "param_keys": ["webhook_url", "webhook_url"]}, "on_exit.param_keys: 'webhook_url' is listed more than once"),
    ],
)
def test_bad_steps_are_refused_naming_field_value_and_expectation(step, message):
    with pytest.raises(OnExitConfigError) as err:
        parse_on_exit(step, TASKS)
    assert message in str(err.value)


def _pipeline():
    from airflow.providers.standard.operators.empty import EmptyOperator
    from airflow.sdk import DAG

    with DAG("pipeline", schedule=None, start_date=datetime(2026, 1, 1)) as dag:
        convert = EmptyOperator(task_id="convert")
        convert >> EmptyOperator(task_id="publish")
        EmptyOperator(task_id="dataset_info")
    return dag


def test_the_step_is_a_teardown_after_every_task_that_does_not_count_for_the_run():
    dag = _pipeline()
    step = attach_on_exit(dag, SEED, defaults={"webhook_url": "https://example.com/done"})

    assert step.task_id == "call_webhook" and step.is_teardown and not step.on_failure_fail_dagrun
    assert step.upstream_task_ids == {"convert", "publish", "dataset_info"}
    assert step.downstream_task_ids == set()
    assert dag.params.dump() == {"call_webhook": {"webhook_url": "https://example.com/done"}}
    assert dag.has_on_failure_callback

    from airflow_ordo_hooks.callbacks.run_state import effective_leaves

    assert effective_leaves(dag) == {"publish", "dataset_info"}


def test_attaching_refuses_a_step_whose_task_is_missing_or_whose_id_is_taken():
    with pytest.raises(OnExitConfigError, match="names step 'nowhere', which is not a task of the DAG"):
        attach_on_exit(_pipeline(), {**SEED, "inputs": {"waits_for": "step:nowhere.metadata"}})
    with pytest.raises(OnExitConfigError, match="on_exit.id: 'convert' is already a task of DAG 'pipeline'"):
        attach_on_exit(_pipeline(), {**SEED, "id": "convert"})
