"""The test harness: a real webhook receiver on loopback, and a real Airflow 3 (``dag.test()`` on
SQLite) under an ``AIRFLOW_HOME`` of its own, started once per test session."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from airflow_ordo_hooks.testing.embedded import isolate_airflow, load_dags
from airflow_ordo_hooks.testing.receiver import WebhookReceiver

ROOT = Path(__file__).resolve().parent.parent
DAG_SOURCES = [ROOT / "example_dags", ROOT / "tests" / "dags"]
# A deployment's [api] secret_key, from which trigger_job contexts are signed (as airflow.cfg
# would hold it): Airflow's Task SDK reads no generated one until a component writes airflow.cfg.
os.environ["AIRFLOW__API__SECRET_KEY"] = "ordo-hooks-test-deployment"
# Its Fernet key, with which the delivery ledger encrypts targets (as Airflow does connection passwords).
os.environ["AIRFLOW__CORE__FERNET_KEY"] = "ECPTzKqBOr_sYAq-oBErdrEgb_RCLoW7Ve_ZWRiiz4U="

# Airflow reads its configuration when first imported: isolate it before anything imports it.
AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="ordo-hooks-airflow-"))
DAGS_FOLDER = AIRFLOW_HOME / "dags"
isolate_airflow(
    AIRFLOW_HOME,
    DAGS_FOLDER,
    # Deliveries in DAG runs retry quickly here; tests of the delivery policy itself set their own.
    ORDO_HOOKS__BUDGET="3",
    ORDO_HOOKS__MAX_ATTEMPTS="3",
    ORDO_HOOKS__BACKOFF_INITIAL="0.05",
    ORDO_HOOKS__BACKOFF_MAX="0.2",
    ORDO_HOOKS__BACKOFF_JITTER="0.01",
    # on_exit reports go to URLs from a run's conf, refused on loopback unless allowed: the receiver is there
    ORDO_HOOKS__ALLOWED_HOSTS="127.0.0.1",
)


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(AIRFLOW_HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def _receiver_server():
    with WebhookReceiver() as receiver:
        yield receiver


@pytest.fixture
def receiver(_receiver_server):
    """A real HTTP receiver on loopback, shared by the session, emptied for each test."""
    _receiver_server.reset()
    yield _receiver_server
    _receiver_server.reset()


@pytest.fixture(scope="session")
def airflow_db():
    """The session's Airflow database, created as ``airflow db migrate`` does (the ledger's tables included), no DAG parsed."""
    from airflow.utils import db

    db.initdb()


@pytest.fixture
def ledger(airflow_db):
    """A session of the session's Airflow database, with the delivery ledger's tables emptied first."""
    from airflow import settings
    from sqlalchemy import delete

    from airflow_ordo_hooks.server.models import Attempt, Delivery

    session = settings.NonScopedSession()
    session.execute(delete(Attempt))
    session.execute(delete(Delivery))
    session.commit()
    try:
        yield session
    finally:
        session.rollback()
        session.close()


@pytest.fixture(scope="session")
def dagbag(_receiver_server):
    """Every example and test DAG, parsed once, in a fresh Airflow database; DAG files send to the receiver."""
    os.environ["ORDO_HOOKS_RECEIVER"] = _receiver_server.url("").rstrip("/")
    DAGS_FOLDER.mkdir(exist_ok=True)
    for source in DAG_SOURCES:
        for path in [*source.glob("*.py"), *source.glob("*.yaml")]:  # DAG files and the schedules they load
            shutil.copy(path, DAGS_FOLDER / path.name)
    bag = load_dags(DAGS_FOLDER)
    bag.get_dag("harness_warmup").test()  # pays Airflow's in-process start-up once, outside any test's timing
    return bag


class DagRunner:
    """Runs a DAG of the session's dags folder under ``dag.test()`` and reads back what Airflow recorded."""

    def __init__(self, dagbag):
        self.dagbag = dagbag

    def __call__(self, dag_id: str, conf: dict | None = None):
        dag = self.dagbag.get_dag(dag_id)
        assert dag is not None, f"no DAG {dag_id!r} in {DAGS_FOLDER}"
        return dag.test(run_conf=conf)

    @staticmethod
    def task_states(dag_run) -> dict[str, str]:
        """``{task_id: state}`` of a run, from Airflow's database."""
        from airflow.models import TaskInstance
        from airflow.utils.session import create_session

        with create_session() as session:
            tis = session.query(TaskInstance).filter_by(dag_id=dag_run.dag_id, run_id=dag_run.run_id).all()
            return {ti.task_id if ti.map_index < 0 else f"{ti.task_id}[{ti.map_index}]": str(ti.state) for ti in tis}


@pytest.fixture
def run_dag(dagbag, receiver):
    """``run_dag(dag_id, conf=None)`` runs the DAG under ``dag.test()``; ``run_dag.task_states(run)`` reads it back."""
    return DagRunner(dagbag)


@pytest.fixture(scope="session")
def valid_report():
    """``valid_report(body)``: check an on_exit report against the JSON Schema the package ships, and return it."""
    import json
    from importlib.resources import files

    import jsonschema

    schema = json.loads(files("airflow_ordo_hooks").joinpath("schemas/on_exit_report.schema.json").read_text())
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())

    def check(body):
        validator.validate(body)
        return body

    return check


# How long each part of the suite takes (setup, call and teardown, so a deployment's start-up counts
# for the part that starts it), printed at the end of every run: CONTRIBUTING.md's figures come from here.
_PART_SECONDS: dict[str, float] = {}


def _part(nodeid: str) -> str:
    if nodeid.startswith("tests/system/test_system_catches_what_dag_test_cannot.py"):
        return "system: planted breaks (a local deployment per break)"
    if nodeid.startswith("tests/system/"):
        kind = nodeid.partition("[")[2].split("-")[0].rstrip("]")
        return f"system: {kind} deployment"
    return "unit and dag.test()"


def pytest_runtest_logreport(report):
    part = _part(report.nodeid)
    _PART_SECONDS[part] = _PART_SECONDS.get(part, 0.0) + report.duration


def pytest_terminal_summary(terminalreporter):
    if _PART_SECONDS:
        terminalreporter.write_sep("-", "time per part")
        for part, seconds in sorted(_PART_SECONDS.items()):
            terminalreporter.write_line(f"{part}: {seconds:.0f} s")


@pytest.fixture
def fernet_key(monkeypatch):
    """Set ``[core] fernet_key`` as a deployment would (Airflow keeps the Fernet it reads: read it afresh)."""
    from airflow.models.crypto import get_fernet

    def use(key: str) -> None:
        monkeypatch.setenv("AIRFLOW__CORE__FERNET_KEY", key)
        get_fernet.cache_clear()

    yield use
    monkeypatch.undo()
    get_fernet.cache_clear()
