"""Run the example DAGs in an embedded Airflow (SQLite under ``.demo/``) and print every webhook they send.

Nothing needs configuring: the demo owns its ``AIRFLOW_HOME``, starts a receiver on a free
loopback port, points the example DAGs at it, runs each DAG once under ``dag.test()``, and stops
the receiver.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HOME = ROOT / ".demo" / "airflow"
DEMO_DAGS = ["example_flaky_task", "coffee", "beans", "cleanup_job", "yaml_beans", "example_ordo_on_exit"]
SHOWN_HEADERS = ("Content-Type", "User-Agent", "webhook-id", "webhook-timestamp", "webhook-signature")

shutil.rmtree(HOME, ignore_errors=True)
HOME.mkdir(parents=True)

from airflow_ordo_hooks.testing.embedded import isolate_airflow, load_dags  # noqa: E402
from airflow_ordo_hooks.testing.receiver import ReceivedRequest, WebhookReceiver  # noqa: E402

# Ordo's on_exit report goes to a URL from the run's params, which reaches only public addresses
# unless the operator allows more: the demo's receiver is on loopback, so the demo allows it.
isolate_airflow(HOME, ROOT / "example_dags", LOGGING__LOGGING_LEVEL="ERROR", ORDO_HOOKS__ALLOWED_HOSTS="127.0.0.1")

_out = sys.stdout
_lock = threading.Lock()
_count = 0


def summary(body: object) -> str:
    if isinstance(body, dict) and "retry_attempt" in body:
        air = body.get("airflow", {})
        return (
            f"{body['name']} ({air.get('dag_id')}): status {body['status']}, retry_attempt {body['retry_attempt']}, "
            f"retries_exhausted {str(body['retries_exhausted']).lower()}, triggered_by {body['triggered_by']}"
        )
    if isinstance(body, dict) and "job" in body:
        job, progress = body["job"], body["progress"]
        return (
            f"on_exit report of {job['recipe_id']} ({job['id']}): status {job['status']}, "
            f"{progress['completed_steps']}/{progress['total_steps']} steps completed, "
            f"{len(body['artifacts'])} artifact(s), {len(body['outputs'])} output(s)"
        )
    return "(not a payload this demo knows)"


def show(request: ReceivedRequest) -> None:
    global _count
    try:
        body: object = request.json
        pretty = json.dumps(body, indent=2, ensure_ascii=False)
    except ValueError:
        body, pretty = None, request.body.decode("utf-8", errors="replace")
    with _lock:
        _count += 1
        lines = [f"\n=== webhook #{_count}: {request.method} {request.path}"]
        lines += [f"{name}: {request.header(name)}" for name in SHOWN_HEADERS if request.header(name)]
        lines += [pretty, f"--> {summary(body)}"]
        print("\n".join(lines), file=_out, flush=True)


def main() -> int:
    with WebhookReceiver(on_request=show) as receiver:
        os.environ["ORDO_HOOKS_RECEIVER"] = receiver.url("").rstrip("/")
        print(f"Webhook receiver listening on {receiver.url()}; Airflow home {HOME}", flush=True)
        bag = load_dags(ROOT / "example_dags")
        results = []
        for dag_id in DEMO_DAGS:
            print(f"\n##### Running DAG {dag_id} under dag.test()", flush=True)
            run = bag.get_dag(dag_id).test()
            results.append(f"{dag_id}: {run.state}")
    print(f"\nDemo done: {_count} webhooks received. Runs: {'; '.join(results)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
