"""The Webhooks view's API with 10,000 deliveries in the ledger: how long a page takes.

Airflow's API app (``create_app()``, as ``airflow api-server`` builds it, with the plugin) is served
by uvicorn on loopback, over SQLite, as an admin with a real token. The ledger holds 10,000
deliveries of 20 DAGs (each with its attempts and a payload of about 2 KB); each request is timed
end to end from a client, alternating with a baseline of the same size from Airflow's own API
(``GET /api/v2/dags?limit=50``), median of 25. The issue's bound: a page in under 300 ms.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

DELIVERIES = 10_000
DAGS = 20
ROUNDS = 25
BOUND_MS = 300.0
API = "/ordo-hooks/api/v1/deliveries"


def _fill(session) -> str:
    """The ledger's 10,000 deliveries and their DAGs; return one delivery's id."""
    from airflow.models.dag import DagModel
    from airflow.models.dagbundle import DagBundleModel

    from airflow_ordo_hooks.server import recording
    from airflow_ordo_hooks.server.api_models import AttemptIn, DeliveryIn

    session.merge(DagBundleModel(name="bench"))
    session.flush()
    for d in range(DAGS):
        session.merge(DagModel(dag_id=f"bench_dag_{d}", bundle_name="bench", fileloc=f"/dags/bench_{d}.py"))
    session.commit()
    t0 = datetime(2026, 11, 1, tzinfo=timezone.utc)
    log = "x" * 1800
    items = []  # as the API's route hands them to the ledger, without its checks: these ids are not derived from their events
    for n in range(DELIVERIES):
        at = t0 + timedelta(seconds=n)
        ok = n % 10 != 0
        attempts = [{"at": at.isoformat(), "status_code": 503, "error": "HTTP 503", "elapsed_ms": 40, "by": "worker"}]
        if ok:
            attempts.append({"at": (at + timedelta(seconds=5)).isoformat(), "status_code": 200, "error": None, "elapsed_ms": 30, "by": "api-server"})
        items.append(DeliveryIn.model_construct(**{
            "webhook_id": f"msg_bench{n:07d}", "dag_id": f"bench_dag_{n % DAGS}", "run_id": f"manual__{n // 100}",
            "task_id": f"task_{n % 7}", "map_index": -1, "try_number": 1, "event": "on_error", "action": "notify_webhook",
            "target": f"https://hooks.example.com/bench/{n % 5}", "target_masked": "https://hooks.example.com/…",
            "payload": json.dumps({"id": n, "name": f"task_{n % 7}", "status": 1, "log": log}),
            "source": "callback", "attempts": [AttemptIn.model_construct(**a) for a in attempts],
            "outcome": "delivered" if ok else "failed", "not_before": None if ok else (t0 + timedelta(days=30)).isoformat(),
        }))
    for start in range(0, DELIVERIES, 500):
        recording.record(session, items[start : start + 500], by="worker")
        session.commit()
    return items[4321].webhook_id


def main() -> None:
    from airflow_ordo_hooks.testing.embedded import isolate_airflow

    home = Path(tempfile.mkdtemp(prefix="ordo-hooks-bench-view-"))
    (home / "dags").mkdir()
    passwords = home / "passwords.json"
    passwords.write_text(json.dumps({"admin": "bench"}))
    isolate_airflow(
        home, home / "dags", LOGGING__LOGGING_LEVEL="ERROR",
        CORE__SIMPLE_AUTH_MANAGER_USERS="admin:admin", CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE=str(passwords),
        API_AUTH__JWT_SECRET=uuid.uuid4().hex * 2, ORDO_HOOKS__LEDGER="false",
    )
    from airflow import settings
    from airflow.utils import db

    from airflow_ordo_hooks.testing.embedded import serve_api_app

    db.initdb()
    session = settings.NonScopedSession()
    started = time.perf_counter()
    one = _fill(session)
    session.close()
    filled = time.perf_counter() - started
    with serve_api_app() as base:
        _measure(base, one, filled)


def _measure(base: str, one: str, filled: float) -> None:
    import requests

    http = requests.Session()
    token = http.post(f"{base}/auth/token", json={"username": "admin", "password": "bench"}, timeout=30).json()["access_token"]
    http.headers["Authorization"] = f"Bearer {token}"

    cases = {
        "first page, every DAG": f"{API}?limit=50&full=false",
        "last page, every DAG": f"{API}?limit=50&full=false&offset={DELIVERIES - 50}",
        "failed only, every DAG": f"{API}?limit=50&full=false&failing=true",
        "one DAG, failed only": f"{API}?limit=50&full=false&failing=true&dag_id=bench_dag_3",
        "one run's tab": f"{API}?limit=50&full=false&dag_id=bench_dag_3&run_id=manual__43",
        "one delivery, payload": f"{API}/{one}",
    }
    baseline_path = "/api/v2/dags?limit=50"
    for path in [baseline_path, *cases.values()]:  # warm up, and check each answers
        answer = http.get(f"{base}{path}", timeout=30)
        answer.raise_for_status()
    assert http.get(f"{base}{cases['first page, every DAG']}", timeout=30).json()["total_entries"] == DELIVERIES

    def timed(path: str) -> float:
        start = time.perf_counter()
        http.get(f"{base}{path}", timeout=30).raise_for_status()
        return time.perf_counter() - start

    baseline, ours = [], {name: [] for name in cases}
    for _ in range(ROUNDS):
        for name, path in cases.items():
            baseline.append(timed(baseline_path))
            ours[name].append(timed(path))

    base_ms = statistics.median(baseline) * 1000
    print(f"the Webhooks view's API, {DELIVERIES:,} deliveries of {DAGS} DAGs in the ledger (SQLite; filled in {filled:.1f} s); median of {ROUNDS}, alternating")
    print(f"  Airflow's GET /api/v2/dags?limit=50 (baseline)   {base_ms:7.1f} ms")
    worst = 0.0
    for name, samples in ours.items():
        ms = statistics.median(samples) * 1000
        worst = max(worst, ms)
        print(f"  {name:<44} {ms:7.1f} ms  ({ms / base_ms:.2f} x baseline)")
    verdict = "within" if worst < BOUND_MS else "OVER"
    print(f"  slowest page {worst:.1f} ms: {verdict} the {BOUND_MS:.0f} ms bound")
