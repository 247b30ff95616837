"""Hostile configs in every format are refused fast, at parse time, in a short message naming the field.

Each input is refused within 1 s, with our error class, in fewer than 2,000 characters that name
where the problem is; the hooks file is reported once and leaves DAG parsing untouched.
"""

from __future__ import annotations

import logging
import os
import time

import pytest

from airflow_ordo_hooks.dag_file import schema
from airflow_ordo_hooks.dag_file.cheek_schedule import load_cheek_schedule
from airflow_ordo_hooks.dag_file.job_events import parse_hooks
from airflow_ordo_hooks.dag_file.on_exit_step import parse_on_exit
from airflow_ordo_hooks.exceptions import CheekScheduleError, HooksConfigError, OnExitConfigError

# "billion laughs": 9 levels of 9 aliases, 500 bytes that expand to 387 million values
BOMB = "".join(
    f"{name}: &{name} [{', '.join([f'*{previous}'] * 9) if previous else ', '.join(['lol'] * 9)}]\n"
    for previous, name in zip([None, *"abcdefgh"], "abcdefghi")
)
DEEP = "[" * 5000
DEEP_BLOCK = "- " * 5000 + "x"
DEEP_LIST: list = []
for _ in range(5000):
    DEEP_LIST = [DEEP_LIST]
HUGE = "x" * 1_000_000
LONG_ID = "a" * 300
MANY_TARGETS = ["https://x.example/hook"] * 100_000
MANY_TARGETS_YAML = "on_error:\n  notify_webhook: [" + "a," * 100_000 + "]\n"
STEP = {"id": "call_webhook", "type": "CALL_WEBHOOK", "inputs": {"waits_for": "job:dataset"}, "param_keys": ["webhook_url"]}
TASK = "hooks of task 't'"


def _hooks(event: str = "on_error", action: str = "notify_webhook", *targets: object) -> dict:
    return {event: {action: list(targets)}}


def _job(lines: str) -> str:
    """A one-job schedule with ``lines`` (indented under the job) added."""
    return "jobs:\n  a:\n    command: echo hi\n" + "".join(f"    {line}\n" for line in lines.splitlines())


@pytest.fixture(scope="module", autouse=True)
def _imported():
    """What a DAG file pays once (pydantic, yaml, Airflow's operators) is not what is timed."""
    parse_hooks(_hooks("on_error", "notify_webhook", "https://x.example"))
    load_cheek_schedule(_job("cron: '* * * * *'"))
    parse_on_exit(STEP)


def _refused(error: type[Exception], call, *args) -> str:
    """
    The refusal's message; the work it took is timed as this thread's CPU time, which other
    processes (a deployment starting beside the suite, on two cores) do not inflate: CI once saw a
    1,001-job refusal take 1.04 s of wall time that way, and a few ms of CPU time here. Wall time
    is bounded too, loosely, for what would block rather than work (a FIFO for a file).
    """
    started, waited = time.thread_time(), time.perf_counter()
    with pytest.raises(error) as err:
        call(*args)
    elapsed, waited = time.thread_time() - started, time.perf_counter() - waited
    message = str(err.value)
    assert elapsed < 1.0, f"{elapsed:.2f} s of CPU: {message[:300]}"
    assert waited < 10.0, f"{waited:.2f} s waited (a file that blocks?): {message[:300]}"
    assert len(message) < 2_000, message[:3_000]
    return message


HOOKS = [
    pytest.param(BOMB, f"{TASK}.e[", "more than 50,000 values", id="yaml-alias-bomb"),
    pytest.param("on_success: &a {notify_webhook: *a}", f"{TASK}.on_success.notify_webhook", "inside its own anchor", id="yaml-self-alias"),
    pytest.param(DEEP, f"{TASK}[0][0][0]", "nested more than 32 levels deep", id="yaml-deep-flow"),
    pytest.param(DEEP_BLOCK, f"{TASK}[0][0][0]", "nested more than 32 levels deep", id="yaml-deep-block"),
    pytest.param("on_error:\n  notify_webhook: " + DEEP, f"{TASK}.on_error.notify_webhook[0]", "nested more than 32 levels deep", id="yaml-deep-in-a-field"),
    pytest.param("on_error:\n  " + "{a: " * 5000, f"{TASK}.on_error.a.a.a", "nested more than 32 levels deep", id="yaml-deep-mappings"),
    pytest.param(MANY_TARGETS_YAML, f"{TASK}.on_error.notify_webhook[49", "more than 50,000 values", id="yaml-100k-targets"),
    pytest.param("on_error: " + "x" * (5 * 1024 * 1024), TASK, "at most 4,194,304 are read", id="yaml-5-mb-text"),
    pytest.param("on_error: {notify_webhook: [" + "1" * 5000 + "]}", f"{TASK}.on_error.notify_webhook[0]", "a number of 5,000 digits", id="yaml-5000-digit-int"),
    pytest.param("on_error: !!python/object/apply:os.system [true]", TASK, "not valid YAML", id="yaml-python-tag"),
    pytest.param(_hooks("on_error", "notify_webhook", "https://x.example/\x00"), f"{TASK}.on_error.notify_webhook[0]", "control character '\\x00'", id="nul-in-url"),
    pytest.param(_hooks("on_error", "notify_webhook", "https://x.example/\x1b[2J"), f"{TASK}.on_error.notify_webhook[0]", "control character '\\x1b'", id="escape-in-url"),
    pytest.param(_hooks("on_error", "notify_slack_webhook", "https://x.example/\u202egpj"), f"{TASK}.on_error.notify_slack_webhook[0]", "control character", id="bidi-override-in-url"),
    pytest.param(_hooks("on_error", "notify_webhook", "conn:x\x00y"), f"{TASK}.on_error.notify_webhook[0]", "control character", id="nul-in-conn"),
    pytest.param(_hooks("on_error", "notify_webhook", "conn:../.."), f"{TASK}.on_error.notify_webhook[0]", "not only dots", id="conn-dot-dot"),
    pytest.param(_hooks("on_error", "notify_webhook", "conn:.."), f"{TASK}.on_error.notify_webhook[0]", "not only dots", id="conn-only-dots"),
    pytest.param(_hooks("on_error", "notify_webhook", "conn:alerts/a/../../admin"), f"{TASK}.on_error.notify_webhook[0]", "'..' segments", id="conn-endpoint-dot-dot"),
    pytest.param(_hooks("on_error", "notify_webhook", "conn:alerts/%2e%2e/admin"), f"{TASK}.on_error.notify_webhook[0]", "'..' segments", id="conn-endpoint-encoded-dot-dot"),
    pytest.param(_hooks("on_error", "notify_webhook", "conn:" + LONG_ID), f"{TASK}.on_error.notify_webhook[0]", "at most 250", id="conn-id-300-chars"),
    pytest.param(_hooks("on_error", "notify_webhook", "https://x.example/" + HUGE), f"{TASK}.on_error.notify_webhook[0]", "longer than 2048 characters", id="1-mb-target"),
    pytest.param({"on_error": {"notify_webhook": MANY_TARGETS}}, f"{TASK}.on_error.notify_webhook", "100,000 targets; at most 100", id="100k-targets"),
    pytest.param({"on_error": {"trigger_job": ["x"] * 100_000}}, f"{TASK}.on_error.trigger_job", "100,000 targets; at most 100", id="100k-trigger-jobs"),
    pytest.param(_hooks("on_error", "trigger_job", LONG_ID), f"{TASK}.on_error.trigger_job[0]", "at most 250", id="300-char-dag-id"),
    pytest.param(_hooks("on_error", "notify_webhook", "https://x.example/{{ var.value.token }}"), f"{TASK}.on_error.notify_webhook[0]", "use a notifier", id="template-never-rendered"),
    pytest.param(_hooks("on_error", "notify_webhook", DEEP_LIST), f"{TASK}.on_error.notify_webhook[0]", "expected a URL", id="python-5000-deep-list"),
]


@pytest.mark.parametrize("config, field, message", HOOKS)
def test_hostile_hooks_configs_are_refused(config, field, message):
    refusal = _refused(HooksConfigError, lambda: parse_hooks(config, where=TASK))
    assert refusal.startswith(field) and message in refusal, refusal[:500]


def test_an_alias_bomb_through_attach_hooks_on_a_dag():
    from airflow.providers.standard.operators.empty import EmptyOperator
    from airflow.sdk import DAG

    from airflow_ordo_hooks import attach_hooks

    with DAG("hostile", schedule=None) as dag:
        EmptyOperator(task_id="t")
    refusal = _refused(HooksConfigError, attach_hooks, dag, BOMB)
    assert refusal.startswith("hooks of DAG 'hostile'") and "more than 50,000 values" in refusal


SCHEDULES = [
    pytest.param(BOMB, "cheek schedule.e[", "more than 50,000 values", id="yaml-alias-bomb"),
    pytest.param(_job("env:\n" + "".join(f"  {line}\n" for line in BOMB.splitlines())), "cheek schedule: job 'a'.env.e[", "more than 50,000 values", id="alias-bomb-in-env"),
    pytest.param(_job("env: &e {A: *e}"), "cheek schedule: job 'a'.env.A", "inside its own anchor", id="self-alias-in-env"),
    pytest.param(DEEP, "cheek schedule[0][0]", "nested more than 32 levels deep", id="yaml-deep-flow"),
    pytest.param(_job("command: " + DEEP), "cheek schedule: job 'a'.command[0][0]", "nested more than 32 levels deep", id="deep-command"),
    pytest.param(_job("on_error:\n  notify_webhook:\n    " + DEEP_BLOCK), "cheek schedule: job 'a'.on_error.notify_webhook[0][0]", "nested more than 32 levels deep", id="deep-block-target"),
    pytest.param("jobs:\n" + "".join(f"  j{i}: {{command: x}}\n" for i in range(30_000)), "cheek schedule: job 'j", "more than 50,000 values", id="30k-jobs"),
    pytest.param("jobs:\n" + "".join(f"  j{i}: {{command: x}}\n" for i in range(1_001)), "cheek schedule.jobs", "1,001 jobs; at most 1,000", id="1001-jobs"),
    pytest.param(_job("env:\n" + "".join(f"  V{i}: x\n" for i in range(1_001))), "cheek schedule: job 'a'.env", "1,001 variables; at most 1,000", id="1001-env-variables"),
    pytest.param(_job("retries: " + str(10**30)), "cheek schedule: job 'a'.retries", "at most 100", id="retries-10-to-the-30"),
    pytest.param(_job("retries: " + "9" * 5000), "cheek schedule: job 'a'.retries", "a number of 5,000 digits", id="retries-5000-digits"),
    pytest.param(f"jobs:\n  {LONG_ID}:\n    command: x\n", "cheek schedule: job 'aaaa", "an id is at most 250", id="300-char-job-name"),
    pytest.param(_job("on_error:\n  notify_webhook: ['${ORDO_HOSTILE_UNSET}/x']"), "cheek schedule: job 'a'.on_error.notify_webhook[0]", "environment variable ORDO_HOSTILE_UNSET is not set", id="unset-variable"),
    pytest.param(_job("on_error:\n  notify_webhook: [${ORDO_HOSTILE_UNSET}/x]"), "cheek schedule: not valid YAML", "must be quoted", id="unquoted-variable-in-flow-list"),
    pytest.param(_job("on_error:\n  notify_webhook: [\"https://x.example/\\0\"]"), "cheek schedule: job 'a'.on_error.notify_webhook[0]", "control character", id="escaped-nul-in-url"),
    pytest.param(_job("on_error:\n  notify_discord_webhook: ['https://x.example/{{ ds }}']"), "cheek schedule: job 'a'.on_error.notify_discord_webhook[0]", "use a notifier", id="template-in-schedule"),
    pytest.param(_job("on_error:\n  notify_webhook: [conn:../../etc]"), "cheek schedule: job 'a'.on_error.notify_webhook[0]", "not only dots", id="conn-dot-dot"),
    pytest.param("jobs: {a: {command: x}}\nx: " + "y" * (5 * 1024 * 1024), "cheek schedule", "at most 4,194,304 are read", id="5-mb-text"),
]


@pytest.mark.parametrize("text, field, message", SCHEDULES)
def test_hostile_cheek_schedules_are_refused(text, field, message, monkeypatch):
    monkeypatch.delenv("ORDO_HOSTILE_UNSET", raising=False)
    refusal = _refused(CheekScheduleError, load_cheek_schedule, text)
    assert refusal.startswith(field) and message in refusal, refusal[:500]


def test_a_dag_id_prefix_that_makes_a_dag_id_too_long():
    refusal = _refused(CheekScheduleError, lambda: load_cheek_schedule(f"jobs:\n  {'a' * 200}:\n    command: x\n", dag_id_prefix="p" * 60))
    assert refusal.startswith("cheek schedule: job 'aaaa") and "its DAG id has 260 characters; at most 250" in refusal


def _fifo(path):
    os.mkfifo(path)


@pytest.mark.parametrize(
    "make, message",
    [
        pytest.param(lambda p: p.mkdir(), "not a regular file", id="a-directory"),
        pytest.param(_fifo, "not a regular file", id="a-fifo"),
        pytest.param(lambda p: p.write_bytes(b"jobs: {a: {command: caf\xe9}}\n"), "not UTF-8 text (byte 0xe9", id="latin-1"),
        pytest.param(lambda p: p.write_bytes(b"#" * (5 * 1024 * 1024)), "larger than 4,194,304 bytes", id="5-mb-file"),
        pytest.param(lambda p: p.symlink_to("/dev/zero"), "not a regular file", id="dev-zero"),
    ],
)
def test_hostile_schedule_files_are_refused(tmp_path, make, message):
    path = tmp_path / "schedule.yaml"
    make(path)
    refusal = _refused(CheekScheduleError, load_cheek_schedule, str(path))
    assert refusal.startswith(f"cheek schedule schedule.yaml: cannot read it: {message}"), refusal


ON_EXIT = [
    pytest.param(DEEP, "on_exit[0][0]", "nested more than 32 levels deep", id="json-deep"),
    pytest.param('{"on_exit": {"inputs": {"waits_for": ' + DEEP + "}}}", "on_exit.on_exit.inputs.waits_for[0]", "nested more than 32 levels deep", id="json-deep-in-a-field"),
    pytest.param('{"id": "a\\"[[[", "x": ' + '{"y": ' * 5000, "on_exit.x.y.y", "nested more than 32 levels deep", id="json-deep-after-a-quoted-bracket"),
    pytest.param('"' + '\\"' * 500_000 + "[" * 40, "on_exit", "not valid JSON", id="json-unclosed-string-of-escapes"),
    pytest.param('{"id": ' + "1" * 5000 + "}", "on_exit", "not valid JSON", id="json-5000-digit-number"),
    pytest.param('{"id": "' + "x" * (5 * 1024 * 1024) + '"}', "on_exit", "at most 4,194,304 are read", id="json-5-mb-text"),
    pytest.param({**STEP, "id": LONG_ID}, "on_exit.id", "at most 250", id="300-char-step-id"),
    pytest.param({**STEP, "param_keys": [f"k{i}" for i in range(100_000)]}, "on_exit.param_keys", "100,000 parameter names; at most 100", id="100k-param-keys"),
    pytest.param({**STEP, "inputs": {"waits_for": "job:" + HUGE}}, "on_exit.inputs.waits_for", "a reference is at most 500", id="1-mb-reference"),
    pytest.param({**STEP, "type": ["CALL_WEBHOOK"] * 100_000}, "on_exit.type", "Unsupported step type", id="100k-list-as-type"),
]


@pytest.mark.parametrize("step, field, message", ON_EXIT)
def test_hostile_on_exit_steps_are_refused(step, field, message):
    refusal = _refused(OnExitConfigError, parse_on_exit, step, {"t"})
    assert refusal.startswith(field) and message in refusal, refusal[:500]


def test_notifiers_still_take_templated_targets():
    from airflow_ordo_hooks.notifications.job_event import JobEventWebhookNotifier

    assert JobEventWebhookNotifier("https://x.example/{{ ti.task_id }}").target == "https://x.example/{{ ti.task_id }}"


def test_echo_never_walks_a_huge_or_deep_value():
    shared = ["lol"] * 9
    for _ in range(9):
        shared = [shared] * 9  # 387 million values, all shared
    started = time.perf_counter()
    assert len(schema.echo(shared)) <= schema.MAX_ECHO + 3 and len(schema.echo(DEEP_LIST)) <= schema.MAX_ECHO + 3
    assert time.perf_counter() - started < 0.1


# The hooks file, through the cluster policy: the DAG parses without deployment job_events, one error is logged


HOOKS_FILES = [
    pytest.param(lambda p: p.write_text(BOMB), ".e[", "more than 50,000 values", id="alias-bomb"),
    pytest.param(lambda p: p.write_text(DEEP), "[0][0]", "nested more than 32 levels deep", id="deep-flow"),
    pytest.param(lambda p: p.write_text(DEEP_BLOCK), "[0][0]", "nested more than 32 levels deep", id="deep-block"),
    pytest.param(lambda p: p.write_text("on_error: &a {notify_webhook: *a}"), ".on_error.notify_webhook", "inside its own anchor", id="self-alias"),
    pytest.param(lambda p: p.write_text(MANY_TARGETS_YAML), ".on_error.notify_webhook[49", "more than 50,000 values", id="100k-targets"),
    pytest.param(lambda p: p.write_bytes(b"on_error: {notify_webhook: [https://x.example/caf\xe9]}"), ": cannot read it", "not UTF-8 text", id="latin-1"),
    pytest.param(lambda p: p.mkdir(), ": cannot read it", "not a regular file", id="a-directory"),
    pytest.param(_fifo, ": cannot read it", "not a regular file", id="a-fifo"),
    pytest.param(lambda p: p.write_bytes(b"#" * (5 * 1024 * 1024)), ": cannot read it", "larger than 4,194,304 bytes", id="5-mb-file"),
    pytest.param(lambda p: p.write_text('on_error: {notify_webhook: ["https://x.example/\\0"]}'), ".on_error.notify_webhook[0]", "control character", id="escaped-nul"),
    pytest.param(lambda p: p.write_text("on_error: {notify_webhook: [conn:../..]}"), ".on_error.notify_webhook[0]", "not only dots", id="conn-dot-dot"),
    pytest.param(lambda p: p.write_text("on_error: {notify_webhook: ['https://x.example/{{ ds }}']}"), ".on_error.notify_webhook[0]", "use a notifier", id="template"),
    pytest.param(lambda p: p.write_text("on_error: {notify_webhook: [" + "1" * 5000 + "]}"), ".on_error.notify_webhook[0]", "a number of 5,000 digits", id="5000-digit-int"),
]


def _policy_errors(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "airflow_ordo_hooks.policy" and r.levelno >= logging.ERROR]


def _assert_dag_parses_without_deployment_hooks():
    from airflow.dag_processing.dagbag import DagBag

    from airflow_ordo_hooks.callbacks.job_event import JobEventCallback
    from tests.conftest import DAGS_FOLDER

    bag = DagBag(dag_folder=str(DAGS_FOLDER / "plain_dag.py"))
    assert not bag.import_errors, bag.import_errors
    task = bag.get_dag("plain_dag").get_task("plain_task")
    assert not [cb for cb in task.on_failure_callback if isinstance(cb, JobEventCallback)]


@pytest.mark.airflow
@pytest.mark.parametrize("make, field, message", HOOKS_FILES)
def test_a_hostile_hooks_file_leaves_dag_parsing_untouched(dagbag, tmp_path, monkeypatch, caplog, make, field, message):
    from airflow_ordo_hooks import policy

    hooks_file = tmp_path / "hooks.yaml"
    make(hooks_file)
    monkeypatch.setenv("AIRFLOW__ORDO_HOOKS__HOOKS_FILE", str(hooks_file))
    with caplog.at_level(logging.ERROR, logger="airflow_ordo_hooks.policy"):
        started = time.perf_counter()
        assert policy.deployment_hooks() is None
        assert time.perf_counter() - started < 1.0
        _assert_dag_parses_without_deployment_hooks()

    (error,) = _policy_errors(caplog)
    logged = error.getMessage()
    assert f"deployment-wide hooks not applied: [ordo_hooks] hooks_file {hooks_file}{field}" in logged, logged[:500]
    assert message in logged and len(logged) < 2_000, logged[:500]


@pytest.mark.airflow
@pytest.mark.parametrize("raised", [RecursionError("maximum recursion depth exceeded"), MemoryError(), UnicodeDecodeError("utf-8", b"\xe9", 0, 1, "invalid")])
def test_any_error_in_the_hooks_file_is_logged_once_and_ignored(dagbag, tmp_path, monkeypatch, caplog, raised):
    from airflow_ordo_hooks import policy

    def fail(*args, **kwargs):
        raise raised

    hooks_file = tmp_path / "hooks.yaml"
    hooks_file.write_text("on_error: {notify_webhook: [https://x.example]}")
    monkeypatch.setenv("AIRFLOW__ORDO_HOOKS__HOOKS_FILE", str(hooks_file))
    monkeypatch.setattr(policy, "parse_hooks", fail)
    with caplog.at_level(logging.ERROR, logger="airflow_ordo_hooks.policy"):
        _assert_dag_parses_without_deployment_hooks()
        _assert_dag_parses_without_deployment_hooks()  # the same version of the file: not logged again

    (error,) = _policy_errors(caplog)
    assert f"[ordo_hooks] hooks_file {hooks_file}: {type(raised).__name__}" in error.getMessage()
