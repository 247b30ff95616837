"""What the ledger costs the API server: recording deliveries, and redelivering them.

Two figures, each a ratio to a baseline measured in the same run, alternating with it:

- **ingest**: ``POST /ordo-hooks/api/v1/deliveries`` with one item (a callback's usual request: a
  payload of about 2 KB and one failed attempt) and with 50 items, against a write of Airflow's own
  API of the same size: ``POST /api/v2/variables`` of one variable whose value is that payload, and
  ``PATCH /api/v2/variables`` creating 50 of them. Both are JSON in, validated by pydantic,
  authorized, inserted into the same database and committed, which a read (``GET /api/v2/dags``)
  would not be. Airflow's API app (``create_app()``, with the plugin) is served by uvicorn on
  loopback over SQLite, called as an admin with a real token, with a Fernet key (so targets and
  variables are both encrypted), median of :data:`ROUNDS`.
- **redelivery**: :data:`DUE` due deliveries of 20 DAGs (a 2 KB payload, one failed attempt each)
  sent by the API server's loop (``Redeliverer``, its default 4 senders) to a receiver of its own
  process on 127.0.0.1 that answers 200 at once, until each is recorded delivered; per delivery,
  against a bare ``requests.post`` of the same body to the same receiver, :data:`DUE` in a row;
  median of :data:`REDELIVERY_ROUNDS`, in wall time (what a backlog waits; the loop sends 4 at a
  time) and in this process's CPU time (which moves less with the machine's load). The loop polls
  every millisecond instead of every second (``[ordo_hooks] redelivery_poll_seconds``) so that the
  figure is its work, not its waits. The receiver is allowed as an operator allows an internal one
  (``[ordo_hooks] allowed_hosts``, formerly ``allowed_conf_hosts``: both are set).

Each figure prints the load average, since the figures move with it. The module runs as a script
too (``python bench/ledger.py``), so that it can be pointed at another checkout through
``PYTHONPATH``; it sends only what every version of the API has accepted.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROUNDS = 20
DUE = 200
REDELIVERY_ROUNDS = 9
DAGS = 20
API = "/ordo-hooks/api/v1/deliveries"
JSON = {"Content-Type": "application/json"}


def _payload(n: int) -> str:
    return json.dumps({"id": n, "name": f"task_{n % 7}", "status": 0, "log": "x" * 1900})


def _item(dag_id: str, run_id: str, task_id: str, target: str, payload: str, failed_at: datetime) -> dict:
    """One delivery as a task's callback reports it after its first attempt failed."""
    from airflow_ordo_hooks._event_id import webhook_id

    return {
        "webhook_id": webhook_id(dag_id, run_id, task_id, -1, 1, "on_error", target),
        "dag_id": dag_id, "run_id": run_id, "task_id": task_id, "map_index": -1, "try_number": 1,
        "event": "on_error", "action": "notify_webhook", "target": target, "target_masked": target.rsplit("/", 1)[0] + "/…",
        "payload": payload, "source": "callback", "outcome": "pending", "not_before": None,
        "attempts": [{"at": failed_at.isoformat(), "status_code": 503, "error": "HTTP 503", "elapsed_ms": 40, "by": "worker"}],
    }


def main() -> None:
    from cryptography.fernet import Fernet

    from airflow_ordo_hooks.testing.embedded import isolate_airflow

    home = Path(tempfile.mkdtemp(prefix="ordo-hooks-bench-ledger-"))
    (home / "dags").mkdir()
    passwords = home / "passwords.json"
    passwords.write_text(json.dumps({"admin": "bench"}))
    isolate_airflow(
        home, home / "dags", LOGGING__LOGGING_LEVEL="ERROR", CORE__FERNET_KEY=Fernet.generate_key().decode(),
        CORE__SIMPLE_AUTH_MANAGER_USERS="admin:admin", CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE=str(passwords),
        API_AUTH__JWT_SECRET=uuid.uuid4().hex * 2,
        ORDO_HOOKS__LEDGER="false",  # the API server's own loop would send what ingest records
        ORDO_HOOKS__ALLOWED_HOSTS="127.0.0.1", ORDO_HOOKS__ALLOWED_CONF_HOSTS="127.0.0.1",
    )
    import airflow_ordo_hooks
    from airflow import settings
    from airflow.models.dag import DagModel
    from airflow.models.dagbundle import DagBundleModel
    from airflow.utils import db

    from airflow_ordo_hooks.testing.embedded import serve_api_app

    print(f"the ledger's ingest and redelivery, airflow_ordo_hooks from {Path(airflow_ordo_hooks.__file__).parent}")
    db.initdb()
    session = settings.NonScopedSession()
    session.merge(DagBundleModel(name="bench"))
    session.flush()
    for d in range(DAGS):
        session.merge(DagModel(dag_id=f"bench_dag_{d}", bundle_name="bench", fileloc=f"/dags/bench_{d}.py"))
    session.commit()
    session.close()
    _redelivery()  # first: the loop would also take what ingest records, once it is due
    with serve_api_app() as base:
        _ingest(base)


def _load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def _ingest(base: str) -> None:
    import requests

    http = requests.Session()
    token = http.post(f"{base}/auth/token", json={"username": "admin", "password": "bench"}, timeout=30).json()["access_token"]
    http.headers["Authorization"] = f"Bearer {token}"
    payload = _payload(1)
    serial = iter(range(10**9))

    def ours(items: int) -> tuple[str, str, bytes]:
        run, now = f"bench__{next(serial)}", datetime.now(timezone.utc)
        deliveries = [
            _item(f"bench_dag_{n % DAGS}", run, f"task_{n}", f"https://hooks.example.com/bench/{n % 5}", payload, now)
            for n in range(items)
        ]
        return "POST", API, json.dumps({"deliveries": deliveries}).encode()

    def theirs(items: int) -> tuple[str, str, bytes]:
        keys = [f"bench_{next(serial)}" for _ in range(items)]
        variables = [{"key": key, "value": payload, "description": "a callback's payload"} for key in keys]
        if items == 1:
            return "POST", "/api/v2/variables", json.dumps(variables[0]).encode()
        body = {"actions": [{"action": "create", "entities": variables, "action_on_existence": "fail"}]}
        return "PATCH", "/api/v2/variables", json.dumps(body).encode()

    def timed(request: tuple[str, str, bytes]) -> float:
        method, path, body = request  # built before the clock starts
        start = time.perf_counter()
        answer = http.request(method, f"{base}{path}", data=body, headers=JSON, timeout=60)
        elapsed = time.perf_counter() - start
        answer.raise_for_status()
        if path == API:
            assert all(d["created"] for d in answer.json()["deliveries"]), answer.text[:500]
        else:
            assert not answer.json().get("create", {}).get("errors"), answer.text[:500]
        return elapsed

    cases = {"1 item": 1, "50 items": 50}
    for items in cases.values():  # warm up, and check each answers
        timed(theirs(items))
        timed(ours(items))
    samples: dict[str, dict[str, list[float]]] = {name: {"ours": [], "theirs": []} for name in cases}
    for _ in range(ROUNDS):
        for name, items in cases.items():
            samples[name]["theirs"].append(timed(theirs(items)))
            samples[name]["ours"].append(timed(ours(items)))

    print(f"ingest: POST {API}, median of {ROUNDS}, alternating with Airflow's own write of the same size; {_load()}")
    for name, items in cases.items():
        theirs_ms = statistics.median(samples[name]["theirs"]) * 1000
        ours_ms = statistics.median(samples[name]["ours"]) * 1000
        baseline = "POST /api/v2/variables, 1" if items == 1 else f"PATCH /api/v2/variables, {items}"
        print(f"  {name:<9} ours {ours_ms:7.2f} ms   {baseline} (baseline) {theirs_ms:7.2f} ms   ({ours_ms / theirs_ms:.2f} x baseline)")


def _fill_due(target_of: Callable[[int], str], run: str) -> list[str]:
    """:data:`DUE` deliveries of one run, due now, of :data:`DAGS` DAGs; return their webhook ids."""
    from airflow import settings

    from airflow_ordo_hooks.server import recording
    from airflow_ordo_hooks.server.api_models import DeliveryIn

    now = datetime.now(timezone.utc)
    items = [
        {**_item(f"bench_dag_{n % DAGS}", run, f"task_{n}", target_of(n), _payload(n), now - timedelta(minutes=1)),
         "not_before": now.isoformat()}
        for n in range(DUE)
    ]
    session = settings.NonScopedSession()
    try:
        states = {r["state"] for r in recording.record(session, [DeliveryIn.model_validate(i) for i in items], by="worker")}
        session.commit()
    finally:
        session.close()
    assert states == {"pending"}, states
    return [item["webhook_id"] for item in items]


def _states(webhook_ids: list[str]) -> dict[str, int]:
    from airflow import settings
    from sqlalchemy import func, select

    from airflow_ordo_hooks.server.models import Delivery

    session = settings.NonScopedSession()
    try:
        rows = session.execute(
            select(Delivery.state, func.count()).where(Delivery.webhook_id.in_(webhook_ids)).group_by(Delivery.state)
        ).all()
    finally:
        session.close()
    return dict(rows)


def _redelivery() -> None:
    import requests

    from airflow_ordo_hooks.server.redelivery import Redeliverer
    from bench._receiver import ReceiverProcess

    class Counted(Redeliverer):
        """The loop, telling when it has sent and recorded ``left`` deliveries (it says nothing of itself)."""

        def __init__(self, left: int) -> None:
            super().__init__(poll_seconds=0.001)
            self.left, self.done, self._count = left, threading.Event(), threading.Lock()

        def _send(self, job: object) -> None:
            try:
                super()._send(job)
            finally:
                with self._count:
                    self.left -= 1
                    if self.left == 0:
                        self.done.set()

    body = _payload(0).encode()
    with ReceiverProcess() as receiver:
        def bare() -> tuple[float, float]:
            start, cpu = time.perf_counter(), time.process_time()
            for n in range(DUE):
                requests.post(receiver.url(f"/bare/{n % 5}"), data=body, headers=JSON, timeout=30).raise_for_status()
            return (time.perf_counter() - start) / DUE, (time.process_time() - cpu) / DUE

        def loop(run: str) -> tuple[float, float]:
            ids = _fill_due(lambda n: receiver.url(f"/loop/{n % 5}"), run)
            redeliverer = Counted(DUE)
            start, cpu = time.perf_counter(), time.process_time()
            redeliverer.start()
            finished = redeliverer.done.wait(300)
            elapsed, used = time.perf_counter() - start, time.process_time() - cpu
            redeliverer.stop()
            assert finished and _states(ids) == {"delivered": DUE}, _states(ids)
            return elapsed / DUE, used / DUE

        bare()  # warm up, and check each sends
        loop("warm_up")
        samples: dict[str, list[tuple[float, float]]] = {"bare": [], "loop": []}
        for n in range(REDELIVERY_ROUNDS):
            samples["bare"].append(bare())
            samples["loop"].append(loop(f"due__{n}"))
    assert receiver.received == (REDELIVERY_ROUNDS + 1) * DUE * 2, receiver.received
    print(f"redelivery: {DUE} due deliveries of {DAGS} DAGs to a loopback receiver, median of {REDELIVERY_ROUNDS}, alternating; {_load()}")
    for kind, index in (("wall", 0), ("CPU", 1)):
        loop_ms = statistics.median(sample[index] for sample in samples["loop"]) * 1000
        bare_ms = statistics.median(sample[index] for sample in samples["bare"]) * 1000
        spread = f"{min(sample[index] for sample in samples['loop']) * 1000:.2f} to {max(sample[index] for sample in samples['loop']) * 1000:.2f}"
        print(f"  {kind:<4} the loop, per delivery {loop_ms:7.3f} ms (rounds {spread})   requests.post (baseline) "
              f"{bare_ms:7.3f} ms   ({loop_ms / bare_ms:.2f} x baseline)")


if __name__ == "__main__":
    main()
