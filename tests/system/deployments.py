"""The two real Airflow deployments the system tests run against, each under an ``AIRFLOW_HOME`` of
its own and driven through the public REST API v2 as a user would:

- ``local``: ``airflow standalone``: scheduler, DAG processor, API server and triggerer, with the
  LocalExecutor on SQLite.
- ``celery``: the components one by one (``api-server``, ``scheduler``, ``dag-processor``,
  ``triggerer``, ``celery worker``) with the CeleryExecutor, PostgreSQL as the metadata database and
  Celery's result backend, and Redis as Celery's broker: Debian's servers (installed by
  ``scripts/install-system-services``), each on a free loopback port with its data in the home.

Everything a deployment starts runs in one process group, led by a watchdog; ``stop()`` ends the
whole group (SIGTERM, then SIGKILL), and the watchdog ends it should the pytest process die first.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import requests

SYSTEM_DIR = Path(__file__).resolve().parent
SYSTEM_DAGS = SYSTEM_DIR / "dags"
EXAMPLE_DAGS = SYSTEM_DIR.parent.parent / "example_dags"
LOCAL_SITE = SYSTEM_DIR / "local_site"  # on the local deployment's PYTHONPATH: how long each process waits for SQLite


def dag_files() -> list[Path]:
    """The DAG files the deployment runs: the system tests' own and the examples."""
    return sorted([*SYSTEM_DAGS.glob("*.py"), *EXAMPLE_DAGS.glob("*.py")])


VENV_BIN = Path(sys.executable).parent  # the components are started as `airflow ...` from PATH
AIRFLOW = VENV_BIN / "airflow"

START_TIMEOUT = 240.0  # seconds until the API server answers, every component heartbeats and the DAGs are parsed
RUN_TIMEOUT = 150.0  # seconds a DAG run may take to reach a final state
STOP_TIMEOUT = 30.0  # seconds between SIGTERM and SIGKILL of the deployment's process group
FINAL_RUN_STATES = frozenset({"success", "failed"})

USERS = {"admin": "admin", "dag_author": "user"}
"""The simple auth manager's users, by name, and their roles: ``dag_author`` has Airflow's ``user``
role, what a DAG author has (it may trigger and record runs of every DAG, not administer)."""
PASSWORDS = {name: f"system-{name}-" + os.urandom(6).hex() for name in USERS}
"""Every user's password, seeded before start (the simple auth manager keeps what it finds)."""
ADMIN_PASSWORD = PASSWORDS["admin"]
"""The admin's password: the connection airflow_api logs in with it."""

SECRET_CONN_ID = "system_secret"
SECRET_PASSWORD = "Zq7-hunter2-Marmalade-4481"
"""The password of the connection ``system_secret``, defined in the deployment's environment only."""

# The watchdog is the leader of the deployment's process group: it starts the deployment's start script
# and, should the pytest process that started it die without stopping it, stops the whole group.
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

# Runs the Celery worker in a process group of its own, so that a test can SIGKILL the worker's whole
# group (main process, pool, supervisors, tasks) as a lost node would, and starts another when it dies.
# It writes the group's id to its first argument; on SIGTERM (the deployment stopping) it stops the group.
_WORKER_KEEPER = r"""
import os, signal, subprocess, sys, time
pidfile, cmd = sys.argv[1], sys.argv[2:]
stopping = []
signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
parent, worker = os.getppid(), None
while not stopping and os.getppid() == parent:
    if worker is None or worker.poll() is not None:
        if worker is not None:
            print(f"worker-keeper: the Celery worker exited ({worker.returncode}): starting another", flush=True)
        worker = subprocess.Popen(cmd, start_new_session=True)
        with open(pidfile, "w") as f:
            f.write(str(worker.pid))
    time.sleep(0.3)
try:
    os.killpg(worker.pid, signal.SIGTERM)
    deadline = time.monotonic() + 20
    while worker.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    os.killpg(worker.pid, signal.SIGKILL)
except ProcessLookupError:
    pass
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


def utc(timestamp: str) -> datetime:
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


SCHEDULER_STALLED = 120.0
"""Seconds without a scheduler heartbeat after which a waited-on run is failed at once (see ``Deployment.components_down``)."""


class Deployment:
    """A running Airflow deployment and a REST API v2 client for it; a subclass says what runs."""

    kind = ""
    executor = ""
    early_runs_wanted = True
    """Whether the harness triggers ``EARLY_RUNS`` as soon as the deployment is up."""
    start_script = ""
    """A bash script, run from the home with the deployment's environment, that starts every component
    and exits as soon as one of them does; ``{name}`` fields are filled from ``script_fields()``."""
    request_timeout = 15.0
    """Seconds a REST API call may take before the harness gives up on it."""

    def __init__(self, home: Path, receiver_url: str) -> None:
        self.home = home
        self.dags_folder = home / "dags"
        self.log_path = home / "deployment.log"
        self.port = _free_port()
        self.base_url = f"http://localhost:{self.port}"
        self.receiver_url = receiver_url
        self.down_port = _free_port()  # a receiver that is down: nothing listens there
        self.late_port = _free_port()  # a receiver that is down until a test starts it
        self.view_port = _free_port()  # the same, for the Webhooks view's test
        self.secret_password = SECRET_PASSWORD
        self.process: subprocess.Popen | None = None
        self.early_runs: dict[str, str] = {}
        """Runs the harness triggered as soon as the deployment was up, by DAG id."""
        self.dag_flags_seen: dict[str, set[str]] = {}
        """``paused``, ``stale``: what each DAG was at some look of :meth:`wait_for_run`, by DAG id."""
        self._tokens: dict[str, str] = {}
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
            AIRFLOW__CORE__EXECUTOR=self.executor,
            AIRFLOW__CORE__PARALLELISM="8",
            AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT=str(_free_port()),
            AIRFLOW__LOGGING__BASE_LOG_FOLDER=str(self.home / "logs"),
            AIRFLOW__API__PORT=str(self.port),
            AIRFLOW__API__HOST="127.0.0.1",
            AIRFLOW__API__WORKERS="1",
            AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"{self.base_url}/execution/",
            AIRFLOW__API__BASE_URL=self.base_url,  # the UI's address, in every payload's log_url
            AIRFLOW__API_AUTH__JWT_SECRET=os.urandom(24).hex(),
            # new and changed DAG files are seen within seconds
            AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL="2",
            AIRFLOW__DAG_PROCESSOR__BUNDLE_REFRESH_CHECK_INTERVAL="1",
            AIRFLOW__DAG_PROCESSOR__PRINT_STATS_INTERVAL="0",
            AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME="0.5",
            # what the DAG files and their hooks use
            ORDO_HOOKS_RECEIVER=self.receiver_url,
            ORDO_HOOKS_RECEIVER_DOWN=f"http://127.0.0.1:{self.down_port}",
            ORDO_HOOKS_RECEIVER_LATE=f"http://127.0.0.1:{self.late_port}",
            ORDO_HOOKS_RECEIVER_VIEW=f"http://127.0.0.1:{self.view_port}",
            # the ledger's redelivery, shortened: attempts 0, 5, 15, 35, 75, 135 s after the first, then every
            # 60 s for half an hour (the late receiver's run starts with the deployment, its test is its last)
            AIRFLOW__ORDO_HOOKS__REDELIVERY_SCHEDULE=", ".join(["0", "5", "10", "20", "40", *["60"] * 30]),
            AIRFLOW__ORDO_HOOKS__BUDGET="3",
            AIRFLOW__ORDO_HOOKS__MAX_ATTEMPTS="3",
            AIRFLOW__ORDO_HOOKS__BACKOFF_INITIAL="0.05",
            # what is not public (on_exit URLs from a run's conf, the API server's redeliveries) is refused unless
            # allowed, as an operator allows an internal receiver: the system receiver's address only (127.0.0.2 stays refused)
            AIRFLOW__ORDO_HOOKS__ALLOWED_HOSTS="127.0.0.1",
            AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS=",".join(f"{name}:{role}" for name, role in USERS.items()),
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

    def script_fields(self) -> dict[str, str]:
        return {"airflow": shlex.quote(str(AIRFLOW)), "python": shlex.quote(sys.executable)}

    def start(self) -> None:
        if not AIRFLOW.is_file():
            raise RuntimeError(f"no {AIRFLOW}: run the tests with the Python of the environment Airflow is installed in")
        self.dags_folder.mkdir(parents=True, exist_ok=True)
        (self.home / "ordo-hooks.yaml").write_text(
            f"on_success:\n  notify_webhook: [{self.receiver_url}/deployment/on_success]\n"
        )
        # the simple auth manager keeps passwords it finds in this file and generates the others
        (self.home / "simple_auth_manager_passwords.json.generated").write_text(json.dumps(PASSWORDS))
        for path in [*dag_files(), *EXAMPLE_DAGS.glob("*.yaml")]:  # DAG files and the schedules they load
            shutil.copy(path, self.dags_folder / path.name)
        script = self.home / "start.sh"
        script.write_text(self.start_script.format(**self.script_fields()))
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-c", _WATCHDOG, str(os.getpid()), "bash", str(script)],
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
            raise TimeoutError(f"{self}: no {step} within {timeout:.0f} s\n{self.diagnostics()}") from None

    def _wait(self, deadline: float, what: str, ready: Callable[[], bool]) -> None:
        while True:
            if not self.running:
                raise RuntimeError(f"{self} exited while waiting for {what}\n{self.diagnostics()}")
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
        ) and self._workers_ready()

    def components_down(self) -> str:
        """
        Whether the scheduler has stopped heartbeating for :data:`SCHEDULER_STALLED` seconds
        (``""``: no), and since when: one that died (it meets "database is locked" and exits its
        loop) leaves the rest of the deployment up, and every run would sit queued until its test's
        timeout, test after test. A scheduler that waits out SQLite's lock (up to 60 s) is not dead.
        """
        beat = (self.get("/api/v2/monitor/health").get("scheduler") or {}).get("latest_scheduler_heartbeat")
        if not beat:
            return ""
        silent = (datetime.now(timezone.utc) - utc(beat)).total_seconds()
        return f"scheduler has not heartbeat for {silent:.0f} s (last {beat})" if silent > SCHEDULER_STALLED else ""

    def _workers_ready(self) -> bool:
        return True

    def _dag_files_parsed(self) -> bool:
        errors = self.get("/api/v2/importErrors", params={"limit": 100})["import_errors"]
        ours = [e for e in errors if Path(e.get("filename") or "").name in {p.name for p in dag_files()}]
        if ours:
            raise RuntimeError("DAG files failed to import:\n" + "\n".join(f"{e['filename']}: {e['stack_trace']}" for e in ours))
        dags = self.get("/api/v2/dags", params={"limit": 1000})["dags"]
        parsed = {Path(d.get("fileloc") or d.get("relative_fileloc") or "").name for d in dags}
        return all(path.name in parsed for path in dag_files())

    # -- REST API v2, as a user would use it -----------------------------------------------------
    def token(self, user: str = "admin") -> str:
        """A JWT of ``user`` (one of :data:`USERS`), from ``/auth/token`` with the password the auth manager keeps."""
        if user not in self._tokens:
            password_file = self.home / "simple_auth_manager_passwords.json.generated"
            password = json.loads(password_file.read_text())[user]
            answer = self._http.post(f"{self.base_url}/auth/token", json={"username": user, "password": password},
                                     timeout=self.request_timeout)
            answer.raise_for_status()
            self._tokens[user] = answer.json()["access_token"]
        return self._tokens[user]

    def call(self, method: str, path: str, *, user: str = "admin", **kwargs: Any) -> requests.Response:
        """One request as ``user``, whatever its answer: for a test that expects a refusal."""
        headers = {"Authorization": f"Bearer {self.token(user)}"}
        return self._http.request(method, f"{self.base_url}{path}", headers=headers, timeout=self.request_timeout, **kwargs)

    def request(self, method: str, path: str, *, user: str = "admin", **kwargs: Any) -> Any:
        """
        One call of the REST API as ``user``; its JSON. A GET or PATCH (idempotent) that times out or
        gets a 5xx is asked again, three times in all: on SQLite a busy API server stalls or answers
        500 "Database error" now and then (see :meth:`trigger`), as a user would see and retry.
        """
        attempts = 3 if method in ("GET", "PATCH") else 1
        for attempt in range(1, attempts + 1):
            try:
                answer = self.call(method, path, user=user, **kwargs)
            except (requests.Timeout, requests.ConnectionError):
                if attempt == attempts:
                    raise
                continue
            if answer.status_code >= 500 and attempt < attempts:
                time.sleep(2)
                continue
            if answer.status_code >= 400:
                raise AssertionError(f"{method} {path}: {answer.status_code} {answer.text}")
            return answer.json() if answer.content else None

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs)

    def trigger(self, dag_id: str, conf: dict | None = None, run_id: str | None = None) -> str:
        """
        Unpause the DAG and start a run of it now (with ``run_id`` if given, else one Airflow makes); return the run id.

        On SQLite, Airflow 3.3's API server now and then answers the POST with 500 "Database error"
        while its tasks are busy: the audit-log write waits on SQLite's lock inside the event loop,
        a lock a request that loop must commit may hold, which stalls the whole server (execution
        API included) until sqlite3 gives up after 2 s (``local_site/sqlite_wait.py``). Seen twice in
        about twenty runs of the suite, never on PostgreSQL. A user would try again, and so does
        this, twice.
        """
        self.request("PATCH", f"/api/v2/dags/{dag_id}", json={"is_paused": False})
        body = {"logical_date": None, "conf": conf or {}} | ({"dag_run_id": run_id} if run_id else {})
        for attempt in (1, 2, 3):
            try:
                return self.request("POST", f"/api/v2/dags/{dag_id}/dagRuns", json=body)["dag_run_id"]
            except AssertionError as failed:
                if attempt == 3 or ": 500 " not in str(failed):
                    raise
                time.sleep(2)

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = RUN_TIMEOUT) -> dict:
        """
        The run once it is in a final state; fails the test after ``timeout`` seconds, saying whether
        its DAG was seen paused or stale while the deployment ran: the scheduler examines no run of
        such a DAG. A DAG goes stale when its file's processor ends (a timeout included) more than
        ``stale_dag_threshold`` after the file's last good parse, and is active again at the next one.
        """
        deadline = time.monotonic() + timeout
        for look in itertools.count():
            run = self.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")
            if run["state"] in FINAL_RUN_STATES:
                return run
            if not self.running:
                pytest.fail(f"{self} exited while run {dag_id}/{run_id} was {run['state']}")
            expired = time.monotonic() > deadline
            if look % 10 == 0 or expired:  # every DAG's flags, and the components' health, every 5 s
                if down := self.components_down():
                    pytest.fail(f"run {dag_id}/{run_id} is {run['state']} and will stay so: {self}'s {down}")
                dags = self.get("/api/v2/dags", params={"exclude_stale": "false", "limit": 1000})["dags"]
                for dag in dags:
                    self.dag_flags_seen.setdefault(dag["dag_id"], set()).update(
                        flag.removeprefix("is_") for flag in ("is_paused", "is_stale") if dag[flag]
                    )
            if expired:
                states = self.task_states(dag_id, run_id)
                why = "".join(f"; the DAG was {flag} meanwhile" for flag in sorted(self.dag_flags_seen.get(dag_id, ())))
                pytest.fail(f"run {dag_id}/{run_id} still {run['state']} after {timeout:.0f} s (tasks: {states}){why}")
            time.sleep(0.5)

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str | None]:
        """``{task_id: state}`` of a run, as the REST API reports it."""
        tis = self.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances")["task_instances"]
        return {ti["task_id"] if ti["map_index"] < 0 else f"{ti['task_id']}[{ti['map_index']}]": ti["state"] for ti in tis}

    def tries(self, dag_id: str, run_id: str, task_id: str) -> list[dict]:
        """Every try of a task instance (start and end, executor, host, pid), oldest first."""
        tries = self.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/tries")["task_instances"]
        return sorted(tries, key=lambda t: t["try_number"])

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value") -> Any:
        """A task's XCom value, as the REST API gives it."""
        return self.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/{key}")["value"]

    # -- what the deployment logged --------------------------------------------------------------
    def dag_processor_output(self) -> list[str]:
        """The lines the DAG processor itself printed."""
        raise NotImplementedError

    def dag_processor_log(self) -> str:
        """The DAG processor's own output and the logs of its file processors."""
        files = sorted((self.home / "logs" / "dag_processor").rglob("*.log"))
        return "\n".join(self.dag_processor_output() + [f"--- {p}\n{p.read_text(errors='replace')}" for p in files])

    def dag_processor_timeouts(self) -> list[str]:
        """
        The lines of :meth:`dag_processor_log` that say something timed out there: a file processor
        killed past ``dag_file_processor_timeout``, a callback, a call. Not the provider's own records
        of a request it gave up on and handled (a receiver's or the ledger's ``Read timed out``):
        those say the processor went on.
        """
        return [
            line for line in self.dag_processor_log().splitlines()
            if re.search(r"timed? ?out|timeout", line, re.IGNORECASE)
            and not re.search(r'"logger": ?"airflow_ordo_hooks[."]|\[airflow_ordo_hooks[.\]]', line)
        ]

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
            if parsed and utc(parsed) > utc(when):
                return parsed
            if time.monotonic() > deadline:
                pytest.fail(f"the DAG processor wrote no parse of {dag_id} after its callback at {when} within {timeout:.0f} s")
            time.sleep(0.5)

    def task_log_files(self, dag_id: str) -> list[Path]:
        return sorted((self.home / "logs").glob(f"dag_id={dag_id}/**/*.log"))

    def component_logs(self) -> list[Path]:
        """The files the components' output goes to."""
        return [self.log_path]

    def diagnostics(self) -> str:
        dag_processor = "\n".join(self.dag_processor_log().splitlines()[-50:])
        logs = self.component_logs()
        tails = "".join(f"--- tail of {p}\n{_tail(p, 80 if len(logs) == 1 else 25)}\n" for p in logs)
        return f"{tails}--- tail of the DAG processor's log\n{dag_processor}"

    def __str__(self) -> str:
        return f"the {self.kind} deployment"


class StandaloneDeployment(Deployment):
    """``airflow standalone``: scheduler, DAG processor, API server and triggerer; LocalExecutor on SQLite."""

    kind = "local"
    executor = "LocalExecutor"
    start_script = "exec {airflow} standalone\n"

    def environment(self) -> dict[str, str]:
        env = super().environment()
        return env | dict(
            # the API server waits 2 s for SQLite's lock, everything else 60 s: see local_site/sqlite_wait.py
            AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{self.home}/airflow.db",
            AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS="sqlite_wait.CONNECT_ARGS",
            PYTHONPATH=os.pathsep.join(filter(None, [str(LOCAL_SITE), env.get("PYTHONPATH")])),
        )

    def dag_processor_output(self) -> list[str]:  # standalone prefixes each component's lines with its name
        return [line for line in self.log_path.read_text(errors="replace").splitlines() if line.startswith("dag-processor")]


class OperatingDeployment(StandaloneDeployment):
    """
    ``airflow standalone`` set up as an operator runs the ledger for a year, shortened to seconds:
    settled deliveries kept 20 s, an operations target (the system receiver's ``/operations``) told
    of a target after 12 s of failures, redelivery every 3 s for half a minute and then an hour
    later, and Airflow's StatsD metrics sent to ``statsd_port`` on loopback. Only the tests marked
    ``deployments("operating")`` run on it: its short retention would delete what the others read.
    """

    kind = "operating"
    early_runs_wanted = False
    RETENTION_SECONDS = 20
    FAILING_SECONDS = 12

    def __init__(self, home: Path, receiver_url: str) -> None:
        super().__init__(home, receiver_url)
        self.statsd_port = _free_port()

    def environment(self) -> dict[str, str]:
        return super().environment() | dict(
            AIRFLOW__ORDO_HOOKS__REDELIVERY_SCHEDULE=", ".join(["0", *["3"] * 10, "3600"]),
            AIRFLOW__ORDO_HOOKS__RETENTION_DAYS=repr(self.RETENTION_SECONDS / 86400),
            AIRFLOW__ORDO_HOOKS__OPERATIONS_TARGET=f"{self.receiver_url}/operations",
            AIRFLOW__ORDO_HOOKS__TARGET_FAILING_SECONDS=str(self.FAILING_SECONDS),
            AIRFLOW__METRICS__STATSD_ON="True",
            AIRFLOW__METRICS__STATSD_HOST="127.0.0.1",
            AIRFLOW__METRICS__STATSD_PORT=str(self.statsd_port),
            AIRFLOW__METRICS__STATSD_INFLUXDB_ENABLED="True",  # tags, as Telegraf and statsd_exporter read them
        )


def _postgres_bin() -> Path:
    """The newest PostgreSQL server installed from Debian's packages."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=lambda p: int(p.parts[-3]))
    if not found or not shutil.which("redis-server"):
        raise RuntimeError("the celery deployment needs PostgreSQL and Redis: run scripts/install-system-services")
    return found[-1].parent


class CeleryDeployment(Deployment):
    """The components one by one with the CeleryExecutor: PostgreSQL for metadata and results, Redis as broker."""

    kind = "celery"
    executor = "CeleryExecutor"
    COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer", "celery-worker")
    start_script = r"""set -euo pipefail
# Debian's PostgreSQL will not run as root: as root, run it as the postgres user
as_postgres() {{ if [ "$(id -u)" = 0 ]; then setpriv --reuid=postgres --regid=postgres --init-groups "$@"; else "$@"; fi; }}
mkdir -p pgdata pgsocket
if [ "$(id -u)" = 0 ]; then chmod 755 .; chown postgres: pgdata pgsocket; fi
as_postgres {pg}/initdb -D pgdata -U airflow --auth=trust -E UTF8 --no-sync >initdb.log 2>&1
as_postgres {pg}/postgres -D pgdata -k "$PWD/pgsocket" -p {pg_port} -c listen_addresses=127.0.0.1     -c max_connections=300 -c fsync=off -c synchronous_commit=off -c full_page_writes=off >postgres.log 2>&1 &
redis-server --port {redis_port} --bind 127.0.0.1 --save '' --appendonly no >redis.log 2>&1 &
until {pg}/pg_isready -q -h 127.0.0.1 -p {pg_port}; do sleep 0.2; done
{pg}/createdb -h 127.0.0.1 -p {pg_port} -U airflow airflow
{airflow} db migrate >db-migrate.log 2>&1
{airflow} api-server >api-server.log 2>&1 &
{airflow} scheduler >scheduler.log 2>&1 &
{airflow} dag-processor >dag-processor.log 2>&1 &
{airflow} triggerer >triggerer.log 2>&1 &
{python} worker-keeper.py celery-worker.pid {airflow} celery worker --concurrency 8 >celery-worker.log 2>&1 &
set +e
wait -n  # a component (or server) exited: the deployment is no longer whole
echo "a component exited with status $?"
exit 1
"""

    HEARTBEAT_TIMEOUT = 40
    """``[scheduler] task_instance_heartbeat_timeout``: how long a try of a killed worker stays running (300 s by default)."""

    def __init__(self, home: Path, receiver_url: str) -> None:
        super().__init__(home, receiver_url)
        self.pg_bin = _postgres_bin()
        self.pg_port = _free_port()
        self.redis_port = _free_port()

    def environment(self) -> dict[str, str]:
        database = f"airflow@127.0.0.1:{self.pg_port}/airflow"
        return super().environment() | dict(
            AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"postgresql+psycopg2://{database}",
            AIRFLOW__CELERY__BROKER_URL=f"redis://127.0.0.1:{self.redis_port}/0",
            AIRFLOW__CELERY__RESULT_BACKEND=f"db+postgresql+psycopg2://{database}",
            AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT=str(self.HEARTBEAT_TIMEOUT),
        )

    def start(self) -> None:
        (self.home / "worker-keeper.py").write_text(_WORKER_KEEPER)
        super().start()

    def stop(self) -> None:
        super().stop()  # the keeper, in the deployment's group, stops the worker's group on SIGTERM
        pgid = self.worker_pgid()
        if pgid and _group_alive(pgid):  # the keeper was killed before it could
            try:
                os.killpg(pgid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def worker_pgid(self) -> int | None:
        """The process group of the running Celery worker: its main process, pool and every task it runs."""
        path = self.home / "celery-worker.pid"
        return int(path.read_text()) if path.exists() and path.read_text().strip() else None

    def kill_worker(self) -> int:
        """SIGKILL to the worker's whole process group, as the OOM killer or a lost node would; the keeper starts another.

        :return: the killed group's id.
        """
        pgid = self.worker_pgid()
        assert pgid and _group_alive(pgid), "no Celery worker running"
        os.killpg(pgid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while _group_alive(pgid):
            assert time.monotonic() < deadline, f"the worker's group {pgid} outlived SIGKILL"
            time.sleep(0.2)
        return pgid

    def script_fields(self) -> dict[str, str]:
        return super().script_fields() | {
            "pg": shlex.quote(str(self.pg_bin)), "pg_port": str(self.pg_port), "redis_port": str(self.redis_port),
        }

    def _workers_ready(self) -> bool:
        log = self.home / "celery-worker.log"
        return log.exists() and " ready." in log.read_text(errors="replace")

    def celery_workloads(self) -> set[str]:
        """The task log paths (relative to the logs folder) of every workload the Celery worker ran."""
        log = (self.home / "celery-worker.log").read_text(errors="replace")
        return set(re.findall(r"Executing workload in Celery: .*? log_path='([^']+)'", log))

    def dag_processor_output(self) -> list[str]:
        log = self.home / "dag-processor.log"
        return log.read_text(errors="replace").splitlines() if log.exists() else []

    def component_logs(self) -> list[Path]:
        names = ("initdb", "postgres", "redis", "db-migrate", *self.COMPONENTS)
        return [self.log_path, *(p for p in (self.home / f"{n}.log" for n in names) if p.exists())]


DEPLOYMENTS: dict[str, type[Deployment]] = {kind.kind: kind for kind in (StandaloneDeployment, CeleryDeployment, OperatingDeployment)}
SHARED = ("local", "celery")
"""The deployments every system test runs on unless it is marked ``deployments(...)``."""


