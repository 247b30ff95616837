"""cheek's schedule YAML to DAGs: each field mapped, and malformed schedules refused naming job and field."""

from __future__ import annotations

import pytest

from airflow_ordo_hooks.dag_file.cheek_schedule import CheekScheduleError, load_cheek_schedule
from tests.seeds import CHEEK_SCHEDULE


def test_the_seed_schedule_as_written_reports_its_missing_cleanup_job():
    with pytest.raises(CheekScheduleError) as err:
        load_cheek_schedule(CHEEK_SCHEDULE)
    assert str(err.value).startswith("cheek schedule: job 'coffee'.on_retries_exhausted.trigger_job: no job 'cleanup_job' in the schedule")


def test_the_seed_schedule_loads_once_cleanup_job_exists():
    dags = load_cheek_schedule(CHEEK_SCHEDULE, known_dag_ids=["cleanup_job"])
    assert sorted(dags) == ["beans", "coffee"]
    coffee = dags["coffee"].get_task("coffee")
    assert coffee.bash_command == "this fails" and coffee.retries == 3
    assert dags["coffee"].timetable.expression == "* * * * *"
    assert "coffee__on_retries_exhausted__trigger_cleanup_job" in dags["coffee"].task_dict
    # schedule-level on_success and job-level hooks, combined on the job's task
    (callback,) = [cb for cb in coffee.on_success_callback]
    assert {(a.event, a.target) for a in callback.job_events.actions} >= {
        ("on_success", "https://webhook.site/e33464a3-1a4f-4f1a-99d3-743364c6b10f"),
        ("on_retries_exhausted", "https://webhook.site/critical-alerts"),
    }


def test_each_field_is_mapped():
    dags = load_cheek_schedule("""
tz_location: Europe/Brussels
jobs:
  job:
    command: [echo, "two words", "$HOME"]
    cron: "@annually"
    env: {A: 1}
    working_directory: /tmp
    disable_concurrent_execution: true
    encoding: latin1
    retries: 2
""")
    dag = dags["job"]
    task = dag.get_task("job")
    assert task.bash_command == "echo 'two words' '$HOME'"  # cheek runs no shell: words are passed as they are
    assert (task.env, task.append_env, task.cwd, task.output_encoding) == ({"A": "1"}, True, "/tmp", "latin1")
    assert task.retries == 2 and task.retry_delay.total_seconds() == 5
    assert dag.max_active_runs == 1
    assert dag.timetable.expression == "0 0 1 1 *" and str(dag.timetable.timezone) == "Europe/Brussels"


@pytest.mark.parametrize(
    "schedule, message",
    [
        ("- a list", "cheek schedule: expected a mapping with 'jobs'"),
        ("jobs: [a, b]", "cheek schedule.jobs: expected a mapping of job names to jobs"),
        ("jobs: {}", "cheek schedule.jobs: expected a mapping of job names to jobs"),
        ("jobs: {a: {command: x}}\nretries: 3", "cheek schedule: unknown field 'retries'"),
        ("jobs: {a: {command: x}}\ntz_location: Mars/Olympus", "cheek schedule.tz_location: unknown time zone 'Mars/Olympus'"),
        ("jobs: {a: {command: x}}\non_failure: {}", "cheek schedule: unknown field 'on_failure'"),
        ("jobs: {'bad name': {command: x}}", "job 'bad name': a job name must be letters, digits"),
        ("jobs: {a: echo}", "job 'a': expected a mapping with at least 'command', got 'echo'"),
        ("jobs: {a: {cron: '* * * * *'}}", "job 'a'.command: missing"),
        ("jobs: {a: {command: ''}}", "job 'a'.command: expected a command"),
        ("jobs: {a: {command: {x: 1}}}", "job 'a'.command: expected a string or a list of strings"),
        ("jobs: {a: {command: [echo, 1]}}", "job 'a'.command: expected a string or a list of strings"),
        ("jobs: {a: {command: x, cron: '61 * * * *'}}", "job 'a'.cron: '61 * * * *' is not a valid 5-field cron expression"),
        ("jobs: {a: {command: x, cron: '* * * * * *'}}", "job 'a'.cron: '* * * * * *' is not a valid 5-field cron expression"),
        ("jobs: {a: {command: x, cron: '@always'}}", "job 'a'.cron: '@always' has no Airflow equivalent"),
        ("jobs: {a: {command: x, cron: 5}}", "job 'a'.cron: expected a cron string, got 5"),
        ("jobs: {a: {command: x, retries: three}}", "job 'a'.retries: expected a whole number 0 or more, got 'three'"),
        ("jobs: {a: {command: x, retries: -1}}", "job 'a'.retries: expected a whole number 0 or more, got -1"),
        ("jobs: {a: {command: x, env: [A=1]}}", "job 'a'.env: expected a mapping"),
        ("jobs: {a: {command: x, env: {A: [1]}}}", "job 'a'.env: expected names mapped to plain values"),
        ("jobs: {a: {command: x, working_directory: 7}}", "job 'a'.working_directory: expected a path, got 7"),
        ("jobs: {a: {command: x, disable_concurrent_execution: yes please}}", "job 'a'.disable_concurrent_execution: expected true or false"),
        ("jobs: {a: {command: x, encoding: klingon}}", "job 'a'.encoding: unknown encoding 'klingon'"),
        ("jobs: {a: {command: x, timeout: 5}}", "job 'a': unknown field 'timeout'"),
        ("jobs: {a: {command: x, on_error: {notify_webhook: ftp://x}}}", "job 'a'.on_error.notify_webhook: expected a list of targets"),
        ("jobs: {a: {command: x, on_success: {trigger_job: [b]}}}", "job 'a'.on_success.trigger_job: no job 'b' in the schedule (jobs: a)"),
        ("jobs: {a: {command: x]", "cheek schedule: not valid YAML"),
    ],
)
def test_malformed_schedules_are_refused_naming_the_job_and_the_field(schedule, message):
    with pytest.raises(CheekScheduleError) as err:
        load_cheek_schedule(schedule + "\n")
    assert message in str(err.value)


def test_a_schedule_file_next_to_the_dag_file(tmp_path):
    path = tmp_path / "schedule.yaml"
    path.write_text(CHEEK_SCHEDULE.replace("- cleanup_job", "- beans"))
    assert sorted(load_cheek_schedule(str(path))) == ["beans", "coffee"]
    with pytest.raises(CheekScheduleError, match="cheek schedule missing.yaml: cannot read it"):
        load_cheek_schedule(str(tmp_path / "missing.yaml"))


@pytest.mark.airflow
def test_a_loaded_job_runs_with_cheeks_events(run_dag, receiver):
    run = run_dag("yaml_this_fails")

    assert str(run.state) == "failed"
    events = [(r.path, r.json["status"], r.json["retry_attempt"]) for r in receiver.requests]
    assert events == [
        ("/yaml/yaml_this_fails/on_error", 127, 0),
        ("/yaml/yaml_this_fails/on_error", 127, 1),
        ("/yaml/yaml_this_fails/on_retries_exhausted", 127, 1),
    ]
    assert run_dag.task_states(run)["yaml_this_fails__on_retries_exhausted__trigger_yaml_cleanup"] == "success"


@pytest.mark.airflow
def test_env_working_directory_and_encoding_reach_the_command(run_dag, receiver):
    run = run_dag("yaml_env_and_cwd")

    assert run_dag.task_states(run) == {"yaml_env_and_cwd": "success"}
    (request,) = receiver.requests  # the schedule-level on_success
    assert request.path == "/yaml/schedule/on_success" and request.json["name"] == "yaml_env_and_cwd"


def test_a_prefix_namespaces_dag_ids_and_trigger_targets_and_targets_expand_environment_variables(monkeypatch):
    monkeypatch.setenv("HOOK_BASE", "https://hooks.example")
    dags = load_cheek_schedule(CHEEK_SCHEDULE.replace("https://webhook.site", "${HOOK_BASE}") + "  cleanup_job:\n    command: echo clean\n", dag_id_prefix="ns_")

    assert sorted(d.dag_id for d in dags.values()) == ["ns_beans", "ns_cleanup_job", "ns_coffee"]
    coffee = dags["coffee"]
    assert "coffee__on_retries_exhausted__trigger_ns_cleanup_job" in coffee.task_dict
    (callback,) = coffee.get_task("coffee").on_failure_callback
    assert ("on_retries_exhausted", "https://hooks.example/critical-alerts") in {(a.event, a.target) for a in callback.job_events.actions}


def test_the_shipped_example_is_the_seed_plus_cleanup_job():
    from pathlib import Path

    import yaml

    shipped = yaml.safe_load((Path(__file__).parents[2] / "example_dags" / "cheek_schedule.yaml").read_text())
    seed = yaml.safe_load(CHEEK_SCHEDULE)
    assert sorted(shipped["jobs"]) == ["beans", "cleanup_job", "coffee"]
    for name in ("coffee", "beans"):
        for field in ("command", "cron", "retries"):
            assert shipped["jobs"][name].get(field) == seed["jobs"][name].get(field)


def test_the_guides_dag_file_for_a_schedule_is_found_by_safe_mode_without_its_comments(tmp_path):
    # Airflow's DAG discovery safe mode skips, without a word, a .py file whose text lacks "airflow" or "dag"
    import re
    from pathlib import Path

    from airflow.utils.file import might_contain_dag

    guide = (Path(__file__).parents[2] / "docs" / "guides" / "job-events.md").read_text()
    section = guide.split("## cheek's schedule YAML as it is", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S)[1]
    bare = "\n".join(line.split("#", 1)[0].rstrip() for line in code.splitlines())
    assert "load_cheek_schedule(" in bare
    path = tmp_path / "cheek.py"
    path.write_text(bare)
    assert might_contain_dag(str(path), safe_mode=True)
    path.write_text(bare.replace("dags = ", ""))  # the form that was documented before: skipped
    assert not might_contain_dag(str(path), safe_mode=True)
