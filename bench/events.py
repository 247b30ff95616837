"""cheek events: the cost of one event, of hooks on a whole DAG run, and of attach_hooks at parse time.

- one event: building its payload and delivering it to a loopback receiver, vs the transport
  alone (``requests.post`` of the same body), alternating in one process;
- one event with Airflow's StatsD metrics on (to a loopback UDP socket nobody reads) vs off,
  alternating in one process: what the package's metrics add to it;
- a 200-task DAG under ``dag.test()`` three ways, in rounds in one process, each round starting
  with another of them: without callbacks (the baseline), with an on_success webhook on every task,
  and with an on_success callback wired by hand (``requests.post`` of a like payload: the least a
  webhook layer on ``requests`` adds). For each, the median of the rounds' wall-time ratios, and
  the time spent in its callbacks per task against the baseline's time per task: its own share of
  a run, which the noise of Airflow's own work (0.7 to 1.6 between rounds, with or without hooks)
  does not blur;
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
DAG_ROUNDS = 9


def _median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def _failed_try(receiver):
    """The hooks and the callback context of a try that failed, its on_error sent to ``receiver``."""
    from airflow_ordo_hooks.dag_file.job_events import parse_hooks

    job_events = parse_hooks({"on_error": {"notify_webhook": [receiver.url("/event")]}})
    now = datetime.now(timezone.utc)
    ti = SimpleNamespace(
        dag_id="bench", task_id="job", run_id="manual__bench", map_index=-1, try_number=1, max_tries=3,
        state="up_for_retry", start_date=now, log_url="http://localhost:8080/log",
    )
    context = {
        "ti": ti, "task": SimpleNamespace(retries=3), "exception": RuntimeError("exit code 3"),
        "dag_run": SimpleNamespace(dag_id="bench", run_id="manual__bench", run_type="manual", conf={}, start_date=now, run_after=now),
    }
    return job_events, context


def one_event(receiver) -> None:
    import requests

    from airflow_ordo_hooks.callbacks.job_event import fire

    job_events, context = _failed_try(receiver)
    body = b'{"status": 3, "log": "' + b"x" * 1500 + b'"}'
    ours, transport = [], []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        fire(["on_error"], job_events, context)
        ours.append(time.perf_counter() - start)
        start = time.perf_counter()
        requests.post(receiver.url("/transport"), data=body, headers={"Content-Type": "application/json"}, timeout=10)
        transport.append(time.perf_counter() - start)
    base = _median_ms(transport)
    print(f"one event, payload + delivery (median of {ROUNDS}, alternating)")
    print(f"  requests.post of a like body (baseline)  {base:7.3f} ms")
    print(f"  fire(on_error) with one notify_webhook   {_median_ms(ours):7.3f} ms  ({_median_ms(ours) / base:.2f} x baseline)")


def one_event_with_metrics(receiver) -> None:
    """
    One event with Airflow's StatsD metrics on (to a loopback UDP socket nobody reads) against off,
    alternating: Airflow's own StatsD backend, made once as Airflow makes it, and its NoStatsLogger,
    each put in Stats before its event (as a process initializes it once).
    """
    import os
    import socket
    from unittest import mock

    from airflow.sdk._shared.observability.metrics.base_stats_logger import NoStatsLogger as off
    from airflow.sdk.observability import stats
    from airflow.sdk.observability.metrics import statsd_logger

    from airflow_ordo_hooks.callbacks.job_event import fire

    job_events, context = _failed_try(receiver)
    unread = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    unread.bind(("127.0.0.1", 0))
    metrics = {"STATSD_ON": "True", "STATSD_HOST": "127.0.0.1", "STATSD_PORT": str(unread.getsockname()[1]),
               "STATSD_PREFIX": "airflow", "STATSD_INFLUXDB_ENABLED": "True"}
    with mock.patch.dict(os.environ, {f"AIRFLOW__METRICS__{k}": v for k, v in metrics.items()}):
        statsd = statsd_logger.get_statsd_logger()
    times: dict[str, list[float]] = {"off": [], "on": []}
    try:
        for _ in range(ROUNDS):
            for which, factory in (("on", lambda: statsd), ("off", off)):
                stats.initialize(factory=factory, export_legacy_names=True)
                start = time.perf_counter()
                fire(["on_error"], job_events, context)
                times[which].append(time.perf_counter() - start)
    finally:
        stats.initialize(factory=off, export_legacy_names=True)
        unread.close()
    base, on = _median_ms(times["off"]), _median_ms(times["on"])
    print(f"one event with Airflow's StatsD metrics on, to a loopback port nobody reads (median of {ROUNDS}, alternating)")
    print(f"  fire(on_error), metrics off (baseline)   {base:7.3f} ms")
    print(f"  fire(on_error), StatsD on                {on:7.3f} ms  ({on / base:.3f} x baseline)")


class _CallbackClock:
    """Sums the wall time spent in the callbacks of some classes: each class's ``__call__``, the outermost call only."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.calls = 0
        self._depth = 0

    def watch(self, dag, module_prefix: str) -> None:
        """Clock the callbacks of ``dag`` and its tasks whose class's module name starts with ``module_prefix``."""
        classes = {type(cb) for cb in _callbacks(dag) if type(cb).__module__.startswith(module_prefix)}
        assert classes, f"{dag.dag_id} has no callbacks from {module_prefix}"
        for cls in classes:
            for owner in cls.__mro__:  # a subclass's __call__ calling its base's is counted once
                if "__call__" in vars(owner) and owner.__module__.startswith(module_prefix) and not hasattr(owner.__call__, "_clocked"):
                    owner.__call__ = self._clocked(owner.__call__)

    def reset(self) -> None:
        self.seconds, self.calls = 0.0, 0

    def _clocked(self, call):
        def clocked(callback, context):
            self._depth += 1
            start = time.perf_counter()
            try:
                return call(callback, context)
            finally:
                self._depth -= 1
                if not self._depth:
                    self.seconds += time.perf_counter() - start
                    self.calls += 1

        clocked._clocked = True
        return clocked


def _callbacks(dag) -> list:
    """Every callback of ``dag`` and of its tasks, in the attributes attach_hooks and attach_run_hooks add to."""
    from airflow_ordo_hooks.dag_file import attach

    holders = [(dag, attach._RUN_CALLBACKS.values())] + [(t, attach._TASK_CALLBACK_NAMES) for t in dag.tasks]
    return [cb for holder, names in holders for name in names for cb in attach._as_list(getattr(holder, name, None))]


def wide_dag(bag) -> None:
    def run(dag_id: str) -> float:
        start = time.perf_counter()
        dag_run = bag.get_dag(dag_id).test()
        assert str(dag_run.state) == "success", (dag_id, dag_run.state)
        return time.perf_counter() - start

    plain_id, hooked_id, by_hand_id = "bench_wide_plain", "bench_wide_hooked", "bench_wide_by_hand"
    clocks = {hooked_id: _CallbackClock(), by_hand_id: _CallbackClock()}
    clocks[hooked_id].watch(bag.get_dag(hooked_id), "airflow_ordo_hooks.")
    clocks[by_hand_id].watch(bag.get_dag(by_hand_id), type(_callbacks(bag.get_dag(by_hand_id))[0]).__module__)
    order = [plain_id, hooked_id, by_hand_id]
    for dag_id in order:  # untimed: the first run of each pays one-time costs (imports, caches)
        run(dag_id)
    for clock in clocks.values():
        clock.reset()
    times: dict[str, list[float]] = {dag_id: [] for dag_id in order}
    for round_ in range(DAG_ROUNDS):
        # every run adds 200 task instances to the database, so later runs are a little slower:
        # each round starts with another of the three DAGs, which spreads that drift over all of them
        for dag_id in order[round_ % 3 :] + order[: round_ % 3]:
            times[dag_id].append(run(dag_id))
    tasks = len(bag.get_dag(plain_id).tasks) * DAG_ROUNDS
    per_task = sum(times[plain_id]) / tasks * 1000
    print(f"200-task DAG under dag.test() (median of {DAG_ROUNDS} rounds, each starting with another DAG)")
    print(f"  without hooks (baseline)                 {statistics.median(times[plain_id]):7.2f} s  ({per_task:.1f} ms a task)")
    for dag_id, what in ((hooked_id, "on_success webhook on every task"), (by_hand_id, "requests.post callback, by hand")):
        ratios = [t / p for t, p in zip(times[dag_id], times[plain_id])]
        print(
            f"  {what:39s}  {statistics.median(times[dag_id]):7.2f} s  "
            f"({statistics.median(ratios):.3f} x baseline, median of the rounds' ratios; {min(ratios):.3f} to {max(ratios):.3f})"
        )
        spent = clocks[dag_id].seconds / tasks * 1000
        print(f"    of which in its callbacks              {spent:7.3f} ms a task ({clocks[dag_id].calls / tasks:.0f} calls): "
              f"{1 + spent / per_task:.3f} x baseline")


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
        one_event_with_metrics(receiver)
        attach_cost()
        wide_dag(load_dags(Path(__file__).parent / "dags"))
    expected = 4 * ROUNDS + 2 * 200 * (DAG_ROUNDS + 1)  # one event twice, metrics on and off; the hooked and the by-hand DAG
    assert receiver.received == expected, f"the receiver got {receiver.received} requests, not {expected}"
