"""Deliberately broken builds of the package, to show that the system suite catches what ``dag.test()``
cannot: each broken build passes the ``dag.test()`` tests of a behaviour and fails the system tests
of the same behaviour.

Two plausible breaks, each of something a deployment forbids and ``dag.test()`` allows:

- ``dag_processor_xcom_write``: after sending a DAG run's event, record the deliveries in an XCom of
  the run's last task instance. ``dag.test()`` runs DAG callbacks in the test's own process: the
  write fails there after the webhook has gone out, the callback's error is logged, and the test of
  what the receiver got passes. In a deployment DAG callbacks run in the DAG processor, which serves
  callbacks only connections, variables, task states and XCom reads: the write hangs the file
  processor (measured on Airflow 3.3.2), and the system test, which checks that the processor goes
  on after each callback, fails.
- ``orm_in_task``: the on_exit step also counts the run's task instances in the metadata database,
  through Airflow's ORM. ``dag.test()`` runs tasks with the database open and the count works; a
  deployment's task processes have no database access, the on_exit task fails, and no report is sent.

The broken copy of the package is put first on ``PYTHONPATH`` of a pytest run of its own, and so of
the deployment that run starts (its components inherit the environment): the installed package is
not touched.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

import airflow_ordo_hooks

pytestmark = pytest.mark.system

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Break:
    module: str
    line: str
    """A line of the module, found exactly once, and replaced with ``broken``."""
    broken: str
    dag_test: tuple[str, ...]
    """The ``dag.test()`` tests of the behaviour, which pass the broken build."""
    system: tuple[str, ...]
    """The system tests of the behaviour (run on the ``local`` deployment), which fail it."""
    failed: int
    reason: str
    """A regular expression matching the message of each system test's failure."""


BREAKS = {
    "dag_processor_xcom_write": Break(
        module="callbacks/job_event.py",
        line="        outbox.send(\n",
        broken=(
            "        if run_level:  # BROKEN ON PURPOSE: a Task SDK write from a DAG callback, once its webhooks are sent\n"
            "            sent = outbox.send(messages, policy=configured, by=outbox.DAG_PROCESSOR, deadline=deadline,\n"
            "                                inline_end=inline_end, ledger=ledger, drop_held=True)\n"
            "            context['ti'].xcom_push(key=f'ordo_hooks_{event}', value=[r.to_dict() for r in sent.records])\n"
            "            continue\n"
            "        outbox.send(\n"
        ),
        dag_test=("tests/callbacks/test_job_event.py::test_dag_run_events_name_the_dag",),
        system=("tests/system/test_system_cheek.py::test_dag_run_events_are_sent_once_from_the_dag_processor",),
        failed=2,
        # the callback hangs the file processor, which writes no parse after it, or never starts the
        # DAG's next callback (the sweep for killed tries); or, stuck in the other run's callback,
        # never runs this one (no webhook at all); or, hung in another run's callback of the same
        # file before these runs ended, is killed at its timeout once per queued callback (the file
        # has six), past stale_dag_threshold after the file's last parse: the file's DAGs go stale,
        # and the scheduler leaves their runs running (seen on CI; the DAGs were stale for 40 s here
        # when six of the file's runs were started at once)
        reason=(
            r"Failed: the DAG processor wrote no parse of system_run_\w+ after its callback"
            r"|Failed: run system_run_\w+/\S+ still running after \d+ s \(tasks: \{'job': '\w+'\}\); the DAG was stale meanwhile$"
            r"|AssertionError: DAG callbacks of system_run_\w+ started: \['[^']*'\]$"
            r"|AssertionError: assert \[\] == \['/system_run[^']*'\]"
        ),
    ),
    "orm_in_task": Break(
        module="operators/call_webhook.py",
        line="        waits_for = _waits_for(step, snapshot, params, context[\"ti\"].xcom_pull)\n",
        broken=(
            "        waits_for = _waits_for(step, snapshot, params, context[\"ti\"].xcom_pull)\n"
            "        from airflow.models.taskinstance import TaskInstance  # BROKEN ON PURPOSE: the ORM, from a task\n"
            "        from airflow.utils.session import create_session\n"
            "        with create_session() as session:\n"
            "            session.query(TaskInstance).filter_by(dag_id=context['dag_run'].dag_id, run_id=context['dag_run'].run_id).count()\n"
        ),
        dag_test=("tests/operators/test_call_webhook.py::test_one_report_per_run_whatever_its_outcome",),
        system=("tests/system/test_system_ordo_trigger.py::test_the_report_is_read_through_the_rest_api_with_full_timestamps",),
        failed=1,
        reason=r"AssertionError: the on_exit step ended failed",
    ),
}


@pytest.fixture(scope="module", params=sorted(BREAKS))
def broken(request, tmp_path_factory) -> tuple[Break, Path]:
    """A break, and a folder holding a copy of the package with it applied (put it first on PYTHONPATH)."""
    name, root = request.param, tmp_path_factory.mktemp(f"broken-{request.param}")
    brk = BREAKS[name]
    package = Path(airflow_ordo_hooks.__file__).parent
    shutil.copytree(package, root / package.name, ignore=shutil.ignore_patterns("__pycache__"))
    module = root / package.name / brk.module
    source = module.read_text()
    assert source.count(brk.line) == 1, f"{brk.module} changed: update the break {name} this test applies"
    module.write_text(source.replace(brk.line, brk.broken))
    return brk, root


def environment(broken_build: Path) -> dict[str, str]:
    """This environment with the broken build first on the path and the checkout (for ``tests``) after it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "_AIRFLOW", "PYTEST_"))}
    return env | {"PYTHONPATH": os.pathsep.join([str(broken_build), str(REPO)])}


def run_pytest(broken_build: Path, tests: list[str], deployments: str = "local") -> subprocess.CompletedProcess:
    # not from the checkout: `python -m` puts the working directory first on the path, and the
    # checkout's own package would win over the broken one
    command = [sys.executable, "-m", "pytest", "-c", str(REPO / "setup.cfg"), "--rootdir", str(REPO),
               "-q", "-rfE", "--tb=line", *(str(REPO / t) for t in tests)]
    env = environment(broken_build) | {"ORDO_HOOKS_SYSTEM_DEPLOYMENTS": deployments, "ORDO_HOOKS_SYSTEM_KEEP_HOME": "0"}
    return subprocess.run(command, cwd=broken_build, env=env, capture_output=True, text=True, timeout=900)


def test_the_broken_build_is_the_package_those_runs_import(broken):
    brk, root = broken
    module = "airflow_ordo_hooks." + brk.module.removesuffix(".py").replace("/", ".")
    probe = f"import {module} as m, inspect; print(m.__file__); print('BROKEN ON PURPOSE' in inspect.getsource(m))"
    out = subprocess.run([sys.executable, "-c", probe], cwd=root, env=environment(root), capture_output=True, text=True, check=True)
    assert out.stdout.split() == [str(root / "airflow_ordo_hooks" / brk.module), "True"]


def test_dag_test_passes_the_broken_build(broken):
    brk, root = broken
    result = run_pytest(root, list(brk.dag_test))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert re.search(r"^\d+ passed in", result.stdout.splitlines()[-1]), result.stdout[-3000:]


def test_the_system_suite_fails_the_broken_build(broken):
    brk, root = broken
    result = run_pytest(root, list(brk.system))
    failures = "\n".join(line for line in result.stdout.splitlines() if re.match(r"(E |FAILED|ERROR|\S+:\d+: )", line))
    assert result.returncode == 1, failures + result.stdout[-2000:] + result.stderr[-2000:]
    assert result.stdout.splitlines()[-1].startswith(f"{brk.failed} failed in"), failures
    # each fails for the reason planted (--tb=line: one "path:line: message" line per failure)
    messages = re.findall(r"^/\S+:\d+: (.+)$", result.stdout, re.MULTILINE)
    assert len(messages) == brk.failed and all(re.match(brk.reason, m) for m in messages), failures
