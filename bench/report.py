"""Building and serialising the on_exit report for runs of 10, 1,000 and 10,000 task instances.

Synthetic input at the builder's boundary (a RunSnapshot); times are medians of several builds,
and the growth is read as time per task instance relative to the 10-instance run.
"""

from __future__ import annotations

import statistics
import time
from datetime import datetime, timedelta, timezone

from airflow_ordo_hooks.hooks.webhook import encode
from airflow_ordo_hooks.callbacks.report import ArtifactRecord, OutputRecord, RunSnapshot, StepRecord, build_report

SIZES = (10, 1_000, 10_000)
T0 = datetime(2026, 11, 22, tzinfo=timezone.utc)
ON_EXIT = {"step_id": "call_webhook", "waits_for": "step:info.metadata", "waits_for_met": True, "note": None}


def snapshot(n: int) -> RunSnapshot:
    states = ("success", "failed", "upstream_failed", "skipped")
    steps = [
        StepRecord("work", i, states[i % 4], "PythonOperator", 1, T0 + timedelta(milliseconds=i), T0 + timedelta(milliseconds=i + 50))
        for i in range(n)
    ]
    artifacts = [ArtifactRecord("work", "return_value", i, None, T0) for i in range(0, n, 2)]
    outputs = [OutputRecord(f"file:///out/{i}.csv", f"out{i}", "work", T0) for i in range(0, n, 10)]
    return RunSnapshot("bench", "manual__bench", "failed", "rest_api", {"call_webhook": {"webhook_url": "x"}}, T0, T0, steps, artifacts, outputs)


def main() -> None:
    print("on_exit report: build + JSON serialisation (median of 5)")
    per_ti_base = None
    for n in SIZES:
        snap = snapshot(n)
        samples, body = [], b""
        for _ in range(5):
            start = time.perf_counter()
            body = encode(build_report(snap, finished_at=T0 + timedelta(minutes=5), on_exit=ON_EXIT))
            samples.append(time.perf_counter() - start)
        ms = statistics.median(samples) * 1000
        per_ti = ms / n
        per_ti_base = per_ti_base or per_ti
        print(f"  {n:>6} task instances: {ms:8.2f} ms, body {len(body) / 1024:9.1f} KiB, {per_ti * 1000:6.1f} µs/instance ({per_ti / per_ti_base:.2f} x the 10-instance rate)")
