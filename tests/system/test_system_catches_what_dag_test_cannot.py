"""A deliberately broken build of the package, to show that the system suite catches what ``dag.test()``
cannot: the broken build passes the ``dag.test()`` test of DAG-run events and fails the system test of
the same behaviour.

The break is a plausible one: after sending a DAG run's event, record the deliveries in an XCom of the
run's last task instance. ``dag.test()`` runs DAG callbacks in the test's own process: the write fails
there after the webhook has gone out, the callback's error is logged, and the test of what the
receiver got passes. In a deployment DAG callbacks run in the DAG processor, which serves callbacks
only connections, variables, task states and XCom reads: the write hangs the file processor (measured
on Airflow 3.3.2), and the system test, which checks that the processor goes on after each callback,
fails.

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
from pathlib import Path

import pytest

import airflow_ordo_hooks

pytestmark = pytest.mark.system

REPO = Path(__file__).resolve().parents[2]
SEND_LINE = "        deliver_all([(a.target, BUILDERS[a.action](payload)) for a in actions if a.action in BUILDERS], policy=policy)\n"
BROKEN = (
    "        records = deliver_all([(a.target, BUILDERS[a.action](payload)) for a in actions if a.action in BUILDERS], policy=policy)\n"
    "        if run_level:  # BROKEN ON PURPOSE: a Task SDK write from a DAG callback\n"
    "            context['ti'].xcom_push(key=f'ordo_hooks_{event}', value=[r.to_dict() for r in records])\n"
)
DAG_TEST = ["tests/test_events.py::test_dag_run_events_name_the_dag"]
SYSTEM = ["tests/system/test_system_cheek.py::test_dag_run_events_are_sent_once_from_the_dag_processor"]


@pytest.fixture(scope="module")
def broken_build(tmp_path_factory) -> Path:
    """A folder holding a copy of the package with the break applied; put it first on PYTHONPATH."""
    root = tmp_path_factory.mktemp("broken-build")
    package = Path(airflow_ordo_hooks.__file__).parent
    shutil.copytree(package, root / package.name, ignore=shutil.ignore_patterns("__pycache__"))
    events = root / package.name / "events.py"
    source = events.read_text()
    assert source.count(SEND_LINE) == 1, "events.fire() changed: update the break this test applies"
    events.write_text(source.replace(SEND_LINE, BROKEN))
    return root


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


def test_the_broken_build_is_the_package_those_runs_import(broken_build):
    probe = "import airflow_ordo_hooks.events as e, inspect; print(e.__file__); print('BROKEN ON PURPOSE' in inspect.getsource(e))"
    command = [sys.executable, "-c", probe]
    out = subprocess.run(command, cwd=broken_build, env=environment(broken_build), capture_output=True, text=True, check=True)
    assert out.stdout.split() == [str(broken_build / "airflow_ordo_hooks" / "events.py"), "True"]


def test_dag_test_passes_the_broken_build(broken_build):
    result = run_pytest(broken_build, DAG_TEST)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "2 passed" in result.stdout, result.stdout[-3000:]


def test_the_system_suite_fails_the_broken_build(broken_build):
    result = run_pytest(broken_build, SYSTEM)
    failures = "\n".join(line for line in result.stdout.splitlines() if re.match(r"(E |FAILED|ERROR|\S+:\d+: )", line))
    assert result.returncode == 1, failures + result.stdout[-2000:] + result.stderr[-2000:]
    assert result.stdout.splitlines()[-1].startswith("2 failed in"), failures
    # each fails for the reason planted: its callback hangs the DAG processor's file processor, which
    # then writes no parse after it; or the processor, stuck in the other run's callback, never runs it
    # (--tb=line: one "path:line: message" line per failure)
    messages = re.findall(r"^/\S+:\d+: (.+)$", result.stdout, re.MULTILINE)
    planted = re.compile(
        r"Failed: the DAG processor wrote no parse of system_run_\w+ after its callback"
        r"|AssertionError: assert \[\] == \['/system_run[^']*'\]"  # no webhook at all
    )
    assert len(messages) == 2 and all(planted.match(m) for m in messages), failures
