"""cheek events: the cost of one event, of hooks on a whole DAG run, and of attach_hooks at parse time.

- one event: building its payload and delivering it to a loopback receiver, vs the transport
  alone (``requests.post`` of the same body), alternating in one process;
- a 200-task DAG under ``dag.test()`` with an on_success webhook on every task vs the same DAG
  without hooks, in pairs in one process, each pair in the other order than the last (the median
  of the pairs' wall-time ratios);
- ``attach_hooks`` on a 1,000-task DAG vs building that DAG, in one process.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

ROUNDS = 200
DAG_ROUNDS = 6


def _median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def one_event(receiver) -> None:
    import requests

    from airflow_ordo_hooks._hooks_config import parse_hooks
    from airflow_ordo_hooks.callbacks.job_event import fire

    hooks = parse_hooks({"on_error": {"notify_webhook": [receiver.url("/event")]}})
    now = datetime.now(timezone.utc)
    ti = SimpleNamespace(
        dag_id="bench", task_id="job", run_id="manual__bench", map_index=-1, try_number=1, max_tries=3,
        state="up_for_retry", start_date=now, log_url="http://localhost:8080/log",
    )
    context = {
        "ti": ti, "task": SimpleNamespace(retries=3), "exception": RuntimeError("exit code 3"),
        "dag_run": SimpleNamespace(run_type="manual", conf={}, start_date=now, run_after=now),
    }
    body = b'{"status": 3, "log": "' + b"x" * 1500 + b'"}'
    ours, transport = [], []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        fire(["on_error"], hooks, context)
        ours.append(time.perf_counter() - start)
        start = time.perf_counter()
        requests.post(receiver.url("/transport"), data=body, headers={"Content-Type": "application/json"}, timeout=10)
        transport.append(time.perf_counter() - start)
    base = _median_ms(transport)
    print(f"one event, payload + delivery (median of {ROUNDS}, alternating)")
    print(f"  requests.post of a like body (baseline)  {base:7.3f} ms")
    print(f"  fire(on_error) with one notify_webhook   {_median_ms(ours):7.3f} ms  ({_median_ms(ours) / base:.2f} x baseline)")


def wide_dag(bag) -> None:
    def run(dag_id: str) -> float:
        start = time.perf_counter()
        dag_run = bag.get_dag(dag_id).test()
        assert str(dag_run.state) == "success", (dag_id, dag_run.state)
        return time.perf_counter() - start

    plain_id, hooked_id = "bench_wide_plain", "bench_wide_hooked"
    run(plain_id), run(hooked_id)  # untimed: the first run of each pays one-time costs (imports, caches)
    plain, hooked, ratios = [], [], []
    for round_ in range(DAG_ROUNDS):
        # ABBA: every run adds 200 task instances to the database, so later runs are a little slower;
        # taking each pair in turn either way round cancels that drift out of the ratio
        if round_ % 2:
            h, p = run(hooked_id), run(plain_id)
        else:
            p, h = run(plain_id), run(hooked_id)
        plain.append(p), hooked.append(h), ratios.append(h / p)
    print(f"200-task DAG under dag.test() (median of {DAG_ROUNDS} pairs, alternating which runs first)")
    print(f"  without hooks (baseline)                 {statistics.median(plain):7.2f} s")
    print(
        f"  on_success webhook on every task         {statistics.median(hooked):7.2f} s  "
        f"({statistics.median(ratios):.3f} x baseline, median of the pairs' ratios; "
        f"{min(ratios):.3f} to {max(ratios):.3f})"
    )


def attach_cost() -> None:
    from airflow.providers.standard.operators.empty import EmptyOperator
    from airflow.sdk import DAG

    from airflow_ordo_hooks import attach_hooks

    config = {
        "on_success": {"notify_webhook": ["https://example.com/ok"]},
        "on_error": {"notify_webhook": ["https://example.com/err"], "notify_slack_webhook": ["conn:slack"]},
    }
    build, attach = [], []
    for round_ in range(7):
        start = time.perf_counter()
        with DAG(f"wide_{round_}", schedule=None, start_date=datetime(2026, 1, 1)) as dag:
            for i in range(1000):
                EmptyOperator(task_id=f"t{i}")
        middle = time.perf_counter()
        attach_hooks(dag, config)
        end = time.perf_counter()
        build.append(middle - start)
        attach.append(end - middle)
    print("attach_hooks on a 1,000-task DAG (median of 7)")
    print(f"  building the DAG (baseline)              {_median_ms(build):7.1f} ms")
    print(f"  attach_hooks(dag, config)                {_median_ms(attach):7.1f} ms  ({_median_ms(attach) / _median_ms(build):.3f} x baseline)")


def main() -> None:
    import os

    from airflow_ordo_hooks.testing.embedded import isolate_airflow, load_dags
    from bench._receiver import ReceiverProcess

    home = Path(tempfile.mkdtemp(prefix="ordo-bench-"))
    isolate_airflow(home, Path(__file__).parent / "dags", LOGGING__LOGGING_LEVEL="ERROR")

    with ReceiverProcess() as receiver:  # a receiver of its own process, as a real one is
        os.environ["ORDO_HOOKS_RECEIVER"] = receiver.url("").rstrip("/")
        one_event(receiver)
        attach_cost()
        wide_dag(load_dags(Path(__file__).parent / "dags"))
    expected = 2 * ROUNDS + 200 * (DAG_ROUNDS + 1)
    assert receiver.received == expected, f"the receiver got {receiver.received} requests, not {expected}"
