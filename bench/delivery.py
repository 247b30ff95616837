"""One delivery of a 2 KB JSON body to a loopback receiver: ours vs Airflow's own HttpNotifier.

Both send the same body to the same receiver (a process of its own), alternating, and the medians
are compared. Ours is measured twice: to a URL, and through an Airflow connection as HttpNotifier is.
"""

from __future__ import annotations

import json
import logging
import os
import statistics
import tempfile
import time

ROUNDS = 300


def main() -> None:
    os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="ordo-bench-"))
    from airflow.providers.http.notifications.http import HttpNotifier

    from airflow_ordo_hooks.hooks.webhook import DeliveryPolicy, deliver
    from bench._receiver import ReceiverProcess

    body = {"status": 1, "name": "coffee", "log": "x" * 1900, "retry_attempt": 0}
    assert 1900 < len(json.dumps(body)) < 2100
    policy = DeliveryPolicy()
    # each delivery's log line is part of what a delivery costs, but not 1,800 lines of the report
    logging.getLogger("airflow_ordo_hooks.hooks.webhook").addFilter(lambda record: record.levelno > logging.INFO)
    with ReceiverProcess() as receiver:  # a receiver of its own process, as a real one is
        os.environ["AIRFLOW_CONN_BENCH_RECEIVER"] = json.dumps(
            {"conn_type": "http", "host": "127.0.0.1", "port": receiver.port, "schema": "http"}
        )
        notifier = HttpNotifier(http_conn_id="bench_receiver", endpoint="/theirs", json=body)
        contenders = {
            "HttpNotifier (baseline)": lambda: notifier.notify({}),
            "ours, URL target": lambda: deliver(receiver.url("/ours"), body, policy=policy),
            "ours, conn: target": lambda: deliver("conn:bench_receiver/ours-conn", body, policy=policy),
        }
        times: dict[str, list[float]] = {name: [] for name in contenders}
        for send in contenders.values():  # warm up
            send()
        for _ in range(ROUNDS):
            for name, send in contenders.items():
                start = time.perf_counter()
                send()
                times[name].append(time.perf_counter() - start)
    assert receiver.received == (ROUNDS + 1) * len(contenders), receiver.received
    baseline = statistics.median(times["HttpNotifier (baseline)"])
    print(f"delivery of a 2 KB body to a loopback receiver (median of {ROUNDS}, alternating)")
    for name, samples in times.items():
        median = statistics.median(samples)
        print(f"  {name:28s} {median * 1000:7.3f} ms  ({median / baseline:.2f} x HttpNotifier)")
