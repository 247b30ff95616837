"""The system-test harness: a real Airflow deployment (``airflow standalone``: scheduler, DAG processor,
API server and triggerer; LocalExecutor on SQLite) under an ``AIRFLOW_HOME`` of its own, driven through
the public REST API v2 as a user would, with a real webhook receiver in this pytest process.

The deployment starts once, at the first system test, and is stopped (its whole process group,
SIGTERM then SIGKILL) as soon as the last system test of the session is done, also when a test fails
or the session is interrupted; a watchdog in the deployment's own process group stops it if this
pytest process dies without cleaning up.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import requests

from airflow_ordo_hooks.testing.receiver import WebhookReceiver

SYSTEM_DIR = Path(__file__).resolve().parent
SYSTEM_DAGS = SYSTEM_DIR / "dags"
EXAMPLE_DAGS = SYSTEM_DIR.parent.parent / "example_dags"


def dag_files() -> list[Path]:
    """The DAG files the deployment runs: the system tests' own and the examples."""
    return sorted([*SYSTEM_DAGS.glob("*.py"), *EXAMPLE_DAGS.glob("*.py")])
VENV_BIN = Path(sys.executable).parent  # `airflow standalone` starts its components as `airflow ...` from PATH
AIRFLOW = VENV_BIN / "airflow"

START_TIMEOUT = 180.0  # seconds until the API server answers, every component heartbeats and the DAGs are parsed
RUN_TIMEOUT = 150.0  # seconds a DAG run may take to reach a final state
STOP_TIMEOUT = 30.0  # seconds between SIGTERM and SIGKILL of the deployment's process group
FINAL_RUN_STATES = frozenset({"success", "failed"})

ADMIN_PASSWORD = "system-admin-" + os.urandom(6).hex()
"""The admin's password, seeded before start so that the connection airflow_api can use it."""

SECRET_CONN_ID = "system_secret"
SECRET_PASSWORD = "Zq7-hunter2-Marmalade-4481"
"""The password of the connection ``system_secret``, defined in the deployment's environment only."""

# The watchdog is the leader of the deployment's process group: it starts `airflow standalone` and,
# should the pytest process that started it die without stopping it, stops the whole group.
_WATCHDOG = r"""
import os, signal, subprocess, sys, time
pytest_pid, cmd = int(sys.argv[1]), sys.argv[2:]
child = subprocess.Popen(cmd)
signal.signal(signal.SIGTERM, lambda *_: None)  # the group's SIGTERM reaches the child too; wait for it
while child.poll() is None:
    if os.getppid() != pytest_pid:  # orphaned: pytest is gone
        os.killpg(0, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.5)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.killpg(0, signal.SIGKILL)
    time.sleep(0.5)
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tail(path: Path, lines: int) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as e:
        return f"({path}: {e})"
    return "\n".join(text.splitlines()[-lines:])


def _utc(timestamp: str) -> datetime:
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).astimezone(timezone.utc)


def _group_alive(pgid: int) -> list[int]:
    """The pids still in process group ``pgid``."""
    alive = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
            if fields[0] != "Z" and int(fields[2]) == pgid:
                alive.append(int(entry.name))
    return alive


class Deployment:
    """A running ``airflow standalone`` and a REST API v2 client for it."""

    def __init__(self, home: Path, receiver_url: str) -> None:
        self.home = home
        self.dags_folder = home / "dags"
        self.log_path = home / "standalone.log"
        self.port = _free_port()
        self.base_url = f"http://localhost:{self.port}"
        self.receiver_url = receiver_url
        self.secret_password = SECRET_PASSWORD
        self.process: subprocess.Popen | None = None
        self._token: str | None = None
        self._http = requests.Session()

    # -- lifecycle -------------------------------------------------------------------------------
    def environment(self) -> dict[str, str]:
        """The deployment's environment: this process's, without any Airflow setting of the parent harness."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "_AIRFLOW", "ORDO_HOOKS"))}
        env.update(
            PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
            PYTHONUNBUFFERED="1",
            NO_COLOR="1",
            AIRFLOW_HOME=str(self.home),
            AIRFLOW__CORE__DAGS_FOLDER=str(self.dags_folder),
            AIRFLOW__CORE__LOAD_EXAMPLES="False",
            AIRFLOW__CORE__EXECUTOR="LocalExecutor",
            AIRFLOW__CORE__PARALLELISM="8",
            AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{self.home}/airflow.db",
            AIRFLOW__LOGGING__BASE_LOG_FOLDER=str(self.home / "logs"),
            AIRFLOW__API__PORT=str(self.port),
            AIRFLOW__API__HOST="127.0.0.1",
            AIRFLOW__API__WORKERS="1",
            AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"{self.base_url}/execution/",
            AIRFLOW__API_AUTH__JWT_SECRET=os.urandom(24).hex(),
            # new and changed DAG files are seen within seconds
            AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL="2",
            AIRFLOW__DAG_PROCESSOR__BUNDLE_REFRESH_CHECK_INTERVAL="1",
            AIRFLOW__DAG_PROCESSOR__PRINT_STATS_INTERVAL="0",
            AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME="0.5",
            # what the DAG files and their hooks use
            ORDO_HOOKS_RECEIVER=self.receiver_url,
            AIRFLOW__ORDO_HOOKS__BUDGET="3",
            AIRFLOW__ORDO_HOOKS__MAX_ATTEMPTS="3",
            AIRFLOW__ORDO_HOOKS__BACKOFF_INITIAL="0.05",
            **{f"AIRFLOW_CONN_{SECRET_CONN_ID.upper()}": json.dumps(
                {"conn_type": "postgres", "host": "db", "password": SECRET_PASSWORD}
            )},
            # deployment-wide hooks, applied by the package's cluster policy to every DAG
            AIRFLOW__ORDO_HOOKS__HOOKS_FILE=str(self.home / "ordo-hooks.yaml"),
            # the REST API, for on_exit reports and per-attempt trigger_job (the package's default connection id)
            AIRFLOW_CONN_AIRFLOW_API=json.dumps(
                {"conn_type": "http", "host": "127.0.0.1", "port": self.port, "schema": "http",
                 "login": "admin", "password": ADMIN_PASSWORD}
            ),
        )
        return env

    def start(self) -> None:
        if not AIRFLOW.is_file():
            raise RuntimeError(f"no {AIRFLOW}: run the tests with the Python of the environment Airflow is installed in")
        self.dags_folder.mkdir(parents=True, exist_ok=True)
        (self.home / "ordo-hooks.yaml").write_text(
            f"on_success:\n  notify_webhook: [{self.receiver_url}/deployment/on_success]\n"
        )
        # the simple auth manager keeps passwords it finds in this file and generates the others
        (self.home / "simple_auth_manager_passwords.json.generated").write_text(json.dumps({"admin": ADMIN_PASSWORD}))
        for path in [*dag_files(), *EXAMPLE_DAGS.glob("*.yaml")]:  # DAG files and the schedules they load
            shutil.copy(path, self.dags_folder / path.name)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-c", _WATCHDOG, str(os.getpid()), str(AIRFLOW), "standalone"],
                cwd=self.home,
                env=self.environment(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stopped as a whole
            )

    def stop(self) -> None:
        """Stop the whole process group: SIGTERM, then SIGKILL after ``STOP_TIMEOUT``; idempotent."""
        process, self.process = self.process, None
        if process is None:
            return
        pgid = process.pid  # the session leader's pid is its group's id
        try:
            os.killpg(pgid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + STOP_TIMEOUT
        while _group_alive(pgid) and time.monotonic() < deadline:
            process.poll()  # reap the leader
            time.sleep(0.2)
        if _group_alive(pgid):
            try:
                os.killpg(pgid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        deadline = time.monotonic() + 10
        while _group_alive(pgid) and time.monotonic() < deadline:
            time.sleep(0.2)
        self._http.close()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait_until_ready(self, timeout: float = START_TIMEOUT) -> None:
        """Wait, bounded, until the API answers, every component is healthy and every DAG file is parsed."""
        deadline = time.monotonic() + timeout
        step = "the API server to answer"
        try:
            self._wait(deadline, step, self._healthy)
            step = "the DAG processor to parse every DAG file"
            self._wait(deadline, step, self._dag_files_parsed)
        except TimeoutError:
            raise TimeoutError(f"airflow standalone: no {step} within {timeout:.0f} s\n{self.diagnostics()}") from None

    def _wait(self, deadline: float, what: str, ready: Callable[[], bool]) -> None:
        while True:
            if not self.running:
                raise RuntimeError(f"airflow standalone exited while waiting for {what}\n{self.diagnostics()}")
            try:
                if ready():
                    return
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(what)
            time.sleep(1)

    def _healthy(self) -> bool:
        health = self._http.get(f"{self.base_url}/api/v2/monitor/health", timeout=5).json()
        return all(
            health.get(component, {}).get("status") == "healthy"
            for component in ("metadatabase", "scheduler", "dag_processor", "triggerer")
        )

    def _dag_files_parsed(self) -> bool:
        errors = self.get("/api/v2/importErrors", params={"limit": 100})["import_errors"]
        ours = [e for e in errors if Path(e.get("filename") or "").name in {p.name for p in dag_files()}]
        if ours:
            raise RuntimeError("DAG files failed to import:\n" + "\n".join(f"{e['filename']}: {e['stack_trace']}" for e in ours))
        dags = self.get("/api/v2/dags", params={"limit": 1000})["dags"]
        parsed = {Path(d.get("fileloc") or d.get("relative_fileloc") or "").name for d in dags}
        return all(path.name in parsed for path in dag_files())

    # -- REST API v2, as a user would use it -----------------------------------------------------
    def token(self) -> str:
        if self._token is None:
            password_file = self.home / "simple_auth_manager_passwords.json.generated"
            password = json.loads(password_file.read_text())["admin"]
            answer = self._http.post(f"{self.base_url}/auth/token", json={"username": "admin", "password": password}, timeout=10)
            answer.raise_for_status()
            self._token = answer.json()["access_token"]
        return self._token

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.token()}"}
        answer = self._http.request(method, f"{self.base_url}{path}", headers=headers, timeout=15, **kwargs)
        if answer.status_code >= 400:
            raise AssertionError(f"{method} {path}: {answer.status_code} {answer.text}")
        return answer.json() if answer.content else None

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs)

    def trigger(self, dag_id: str, conf: dict | None = None) -> str:
        """Unpause the DAG and start a run of it now; return the run id."""
        self.request("PATCH", f"/api/v2/dags/{dag_id}", json={"is_paused": False})
        run = self.request("POST", f"/api/v2/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": conf or {}})
        return run["dag_run_id"]

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = RUN_TIMEOUT) -> dict:
        """The run once it is in a final state; fails the test after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            run = self.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")
            if run["state"] in FINAL_RUN_STATES:
                return run
            if not self.running:
                pytest.fail(f"airflow standalone exited while run {dag_id}/{run_id} was {run['state']}")
            if time.monotonic() > deadline:
                states = self.task_states(dag_id, run_id)
                pytest.fail(f"run {dag_id}/{run_id} still {run['state']} after {timeout:.0f} s (tasks: {states})")
            time.sleep(0.5)

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str | None]:
        """``{task_id: state}`` of a run, as the REST API reports it."""
        tis = self.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances")["task_instances"]
        return {ti["task_id"] if ti["map_index"] < 0 else f"{ti['task_id']}[{ti['map_index']}]": ti["state"] for ti in tis}

    # -- what the deployment logged --------------------------------------------------------------
    def dag_processor_log(self) -> str:
        """The DAG processor's own output (from standalone's log) and the logs of its file processors."""
        own = [line for line in self.log_path.read_text(errors="replace").splitlines() if line.startswith("dag-processor")]
        files = sorted((self.home / "logs" / "dag_processor").rglob("*.log"))
        return "\n".join(own + [f"--- {p}\n{p.read_text(errors='replace')}" for p in files])

    def dag_callback_times(self, dag_id: str) -> list[str]:
        """When the DAG processor started each DAG-level callback of ``dag_id`` (its file processors' log, ISO 8601)."""
        times = []
        for path in sorted((self.home / "logs" / "dag_processor").rglob("*.log")):
            for line in path.read_text(errors="replace").splitlines():
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if record.get("dag_id") == dag_id and "dag callback" in str(record.get("event")):
                    times.append(record["timestamp"])
        return sorted(times)

    def wait_until_parsed_after(self, dag_id: str, when: str, timeout: float = 30.0) -> str:
        """
        Wait (bounded) until the DAG processor has written a parse of ``dag_id`` later than ``when``; return its time.

        A file processor runs a file's DAG callbacks after parsing it and hands the parse back
        only once they have returned, and one file has one processor at a time: a parse written
        after a callback started proves that callback returned (it did not hang the processor).
        """
        deadline = time.monotonic() + timeout
        while True:
            parsed = self.get(f"/api/v2/dags/{dag_id}")["last_parsed_time"]
            if parsed and _utc(parsed) > _utc(when):
                return parsed
            if time.monotonic() > deadline:
                pytest.fail(f"the DAG processor wrote no parse of {dag_id} after its callback at {when} within {timeout:.0f} s")
            time.sleep(0.5)

    def task_log_files(self, dag_id: str) -> list[Path]:
        return sorted((self.home / "logs").glob(f"dag_id={dag_id}/**/*.log"))

    def diagnostics(self) -> str:
        dag_processor = "\n".join(self.dag_processor_log().splitlines()[-50:])
        return (
            f"--- tail of {self.log_path}\n{_tail(self.log_path, 80)}\n"
            f"--- tail of the DAG processor's log\n{dag_processor}"
        )


_DEPLOYMENT: Deployment | None = None
_KEEP_HOME = bool(os.environ.get("ORDO_HOOKS_SYSTEM_KEEP_HOME"))
"""Set ``ORDO_HOOKS_SYSTEM_KEEP_HOME=1`` to keep the deployment's home (logs, database, requests received);
it is kept anyway when a system test fails, and the summary says where."""
_KEPT_HOMES: list[Path] = []


@pytest.fixture(scope="session")
def system_receiver() -> Iterator[WebhookReceiver]:
    """The real webhook receiver the deployment's DAG files send to (``$ORDO_HOOKS_RECEIVER``)."""
    with WebhookReceiver() as receiver:
        yield receiver


@pytest.fixture(scope="session")
def airflow_deployment(system_receiver: WebhookReceiver) -> Iterator[Deployment]:
    """A real Airflow (``airflow standalone``) with ``tests/system/dags/*.py`` parsed, started once per session."""
    global _DEPLOYMENT, _KEEP_HOME
    home = Path(tempfile.mkdtemp(prefix="ordo-hooks-system-"))
    deployment = Deployment(home, system_receiver.url("").rstrip("/"))
    _DEPLOYMENT = deployment

    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGHUP)}

    def interrupted(signum: int, frame: Any) -> None:  # let pytest unwind and run this fixture's teardown
        raise KeyboardInterrupt(f"signal {signum}")

    for sig in previous:
        signal.signal(sig, interrupted)
    atexit.register(deployment.stop)
    try:
        deployment.start()
        deployment.wait_until_ready()
        yield deployment
    except BaseException:
        _KEEP_HOME = True
        raise
    finally:
        deployment.stop()
        atexit.unregister(deployment.stop)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _DEPLOYMENT = None
        if _KEEP_HOME:
            with (home / "received.jsonl").open("w") as f:
                for r in system_receiver.requests:
                    f.write(json.dumps({"path": r.path, "received_at": r.received_at, "body": r.body.decode(errors="replace")}) + "\n")
            _KEPT_HOMES.append(home)
        else:
            shutil.rmtree(home, ignore_errors=True)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    """On a failure, attach the deployment's log tail and the DAG processor's log to the report."""
    global _KEEP_HOME
    report = yield
    if report.failed and _DEPLOYMENT is not None:
        _KEEP_HOME = True
        try:
            report.sections.append(("airflow standalone", _DEPLOYMENT.diagnostics()))
        except Exception as e:  # diagnostics must never hide the failure
            report.sections.append(("airflow standalone", f"(no diagnostics: {e!r})"))
    return report


def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """Stop the deployment once the last system test has run, not at the end of the whole session."""
    if _DEPLOYMENT is not None and (nextitem is None or SYSTEM_DIR not in Path(nextitem.path).parents):
        _DEPLOYMENT.stop()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for home in _KEPT_HOMES:
        terminalreporter.write_line(f"system tests: the deployment's AIRFLOW_HOME (logs, database, received.jsonl) is kept in {home}")
