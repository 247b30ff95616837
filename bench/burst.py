"""A burst on Celery with PostgreSQL: 1,000 tries that fail within a run, each with an ``on_error`` webhook.

``python -m bench burst [--n N] [--skip-down]``: not in ``make bench`` (it takes about half an hour).

It starts the system-test harness's Celery deployment (``tests/system/deployments.py``: PostgreSQL,
Redis, api-server, scheduler, dag-processor, triggerer, a Celery worker of 8 slots, parallelism 8)
parsing only ``bench/dags/burst_dags.py``, without the harness's deployment-wide hooks, and runs:

- ``burst_up``: a task mapped over N instances (1,000) that each raise at once, ``retries=0``, with
  ``on_error`` ``notify_webhook`` to a :class:`~airflow_ordo_hooks.testing.receiver.WebhookReceiver`
  in this process;
- ``burst_down`` (unless ``--skip-down``): the same, to a port where nothing listens until
  :data:`OUTAGE` seconds after the run started, when a receiver starts there; the harness's
  redelivery schedule (attempts 0, 5, 10, 20, 40 s apart, then every 60 s) brings the rest.

For each it checks that every event was recorded and delivered once (the receiver got N distinct
``webhook-id`` s, each once; the ledger lists N deliveries of the run, all ``delivered``) and that
the API server answered no ledger call with a 5xx (its access log; a 503 is the ingest route saying
it is busy, with ``Retry-After``, and the client retries it: counted apart). It reports:

- **slot after the state**, per try: from its log's ``Task failed with exception`` (the line before
  the task runner sends the state) to the log's last line: how long the task process went on
  (callbacks, ledger) while holding its executor slot. Without an instrument, it misses the
  process's exit after its last line (``python -m bench live`` measures that).
- **last event**: from the run's ``start_date`` to the last webhook the receiver got.
- **API server CPU**: the CPU seconds of its processes (``airflow api-server`` and its children,
  psutil) from the trigger until every event arrived and the ledger holds them all delivered, and
  their average share of one core over that time; and, for scale, the same over :data:`IDLE`
  seconds of the deployment idle before the bursts.

Before starting, it waits for other Airflow deployments on the machine to end (their load would be
in every figure).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from bench._deployment import OwnDagFile
from tests.system.deployments import CeleryDeployment, utc

HERE = Path(__file__).resolve().parent
DAG_FILE = HERE / "dags" / "burst_dags.py"
DAGS = {"up": "burst_up", "down": "burst_down"}
INSTANCES = 1000
OUTAGE = 120.0
"""Seconds after the run's start that the down receiver starts."""
IDLE = 15.0
LEDGER = "/ordo-hooks/api/v1/deliveries"
BUSY = "airflow standalone|airflow scheduler"
"""What ``pgrep -f`` finds of another deployment running on the machine."""
QUIET_WAIT = 20 * 60.0
if TYPE_CHECKING:
    from airflow_ordo_hooks.testing.receiver import WebhookReceiver

SETTLE_TIMEOUT = 600.0
"""Seconds, once the run has ended, for the last events to arrive and be recorded delivered."""


# -- from what the deployment wrote to figures (pure) ---------------------------------------------
def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0 to 1) of ``values``, nearest rank."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


@dataclass(frozen=True)
class Access:
    method: str
    path: str
    status: int
    duration_ms: float | None


_FIELD = re.compile(r"(\w+)=(\S*)")


def access_lines(text: str) -> list[Access]:
    """The API server's access log lines (``[http.access] ... method= path= status_code= duration_us=``)."""
    found = []
    for line in text.splitlines():
        if "[http.access]" not in line:
            continue
        fields = dict(_FIELD.findall(line))
        if "path" in fields and fields.get("status_code", "").isdigit():
            duration = fields.get("duration_us", "")
            found.append(Access(fields.get("method", "?"), fields["path"], int(fields["status_code"]),
                                int(duration) / 1000 if duration.isdigit() else None))
    return found


STATE_LINE = "Task failed with exception"
"""The task runner's last line before it sends the try's ``failed`` state to the supervisor."""


def state_and_last(log: str) -> tuple[datetime | None, datetime | None]:
    """When a task log says its try failed (just before the state is sent), and its latest ``timestamp``.

    Not the try's ``end_date``: a failed state is held by the supervisor, and reported to the API
    server, only once the task process has exited, so ``end_date`` comes after the callbacks.
    """
    state, times = None, []
    for line in log.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("timestamp"):
            times.append(utc(record["timestamp"]))
            if state is None and str(record.get("event", "")).startswith(STATE_LINE):
                state = times[-1]
    return state, max(times, default=None)


def log_key(path: Path) -> tuple[str, int, int] | None:
    """``(run_id, map_index, try_number)`` of a task log's path (``.../run_id=r/task_id=t/map_index=i/attempt=n.log``)."""
    parts = dict(part.split("=", 1) for part in path.with_suffix("").parts if "=" in part)
    if "run_id" not in parts or "attempt" not in parts:
        return None
    return parts["run_id"], int(parts.get("map_index", -1)), int(parts["attempt"])


# -- the deployment ------------------------------------------------------------------------------------
class BurstDeployment(OwnDagFile, CeleryDeployment):
    """The harness's Celery deployment as the benchmark runs it: :data:`DAG_FILE` alone."""

    dag_file = DAG_FILE
    dag_ids = frozenset(DAGS.values())

    def __init__(self, home: Path, receiver_url: str, *, instances: int) -> None:
        super().__init__(home, receiver_url)
        self.instances = instances

    def environment(self) -> dict[str, str]:
        env = super().environment()
        env.update(
            AIRFLOW__CORE__MAX_MAP_LENGTH=str(max(1024, self.instances)),
            ORDO_HOOKS_BENCH_BURST=str(self.instances),
        )
        return env

    def api_server_cpu(self) -> float:
        """CPU seconds (user and system) of the ``airflow api-server`` process and its children, those ended included."""
        import psutil

        assert self.process is not None
        roots = []
        for process in psutil.process_iter(["cmdline"]):
            try:
                # its title once started: "airflow api_server -- host:... port:..."
                if os.getpgid(process.pid) == self.process.pid and re.search(r"\bapi[-_]server\b", " ".join(process.info["cmdline"] or [])):
                    roots.append(process)
            except (ProcessLookupError, psutil.Error):
                continue
        top = [p for p in roots if p.ppid() not in {r.pid for r in roots}]
        assert len(top) == 1, f"expected one api-server process in the deployment, found {roots}"
        total = 0.0
        for process in [top[0], *top[0].children(recursive=True)]:
            try:
                times = process.cpu_times()
            except psutil.Error:  # ended meanwhile: its parent has its time once it reaps it
                continue
            total += times.user + times.system + times.children_user + times.children_system
        return total

    def ledger_rows(self, dag_id: str, run_id: str) -> list[dict]:
        rows: list[dict] = []
        while True:
            page = self.get(LEDGER, params={"dag_id": dag_id, "run_id": run_id, "limit": 1000, "offset": len(rows)})
            rows += page["deliveries"]
            if not page["deliveries"] or len(rows) >= page["total_entries"]:
                return rows

    def delivered_count(self, dag_id: str, run_id: str) -> int:
        return self.get(LEDGER, params={"dag_id": dag_id, "run_id": run_id, "state": "delivered", "limit": 1})["total_entries"]

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        tis: list[dict] = []
        while True:
            page = self.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 100, "offset": len(tis)})
            tis += page["task_instances"]
            if not page["task_instances"] or len(tis) >= page["total_entries"]:
                return tis


# -- one burst --------------------------------------------------------------------------------------------
@dataclass
class Burst:
    """What one run of a burst DAG did, as the deployment and the receiver saw it."""

    variant: str
    instances: int
    run: dict
    received: list = field(default_factory=list)
    """The receiver's :class:`~airflow_ordo_hooks.testing.receiver.ReceivedRequest` s."""
    ledger: list[dict] = field(default_factory=list)
    tis: list[dict] = field(default_factory=list)
    slots_ms: list[float] = field(default_factory=list)
    logs_missing: int = 0
    accesses: list[Access] = field(default_factory=list)
    tracebacks: int = 0
    cpu_seconds: float = 0.0
    wall_seconds: float = 0.0
    receiver_up_at: float | None = None
    """For the down variant: when its receiver started (``time.time()``)."""

    def problems(self) -> list[str]:
        """What is not as the issue wants it: every event recorded and delivered once, no 5xx on a ledger call."""
        found = []
        ids = Counter(r.header("webhook-id") for r in self.received)
        if None in ids:
            found.append(f"{ids.pop(None)} request(s) without a webhook-id")
        if len(ids) != self.instances:
            found.append(f"{len(ids)} distinct webhook-id(s) received, {self.instances} expected")
        if twice := sum(1 for n in ids.values() if n > 1):
            found.append(f"{twice} event(s) received more than once ({sum(ids.values()) - len(ids)} extra request(s))")
        states = Counter(r["state"] for r in self.ledger)
        if len(self.ledger) != self.instances or states != {"delivered": self.instances}:
            found.append(f"the ledger lists {len(self.ledger)} deliveries of the run ({dict(states)}), {self.instances} delivered expected")
        if {r["webhook_id"] for r in self.ledger} != set(ids):
            found.append("the ledger's webhook ids are not those received")
        tis = Counter(ti["state"] for ti in self.tis)
        if tis != {"failed": self.instances}:
            found.append(f"task instances {dict(tis)}, {self.instances} failed expected")
        if failures := [a for a in self.ledger_calls if a.status >= 500 and a.status != 503]:
            found.append(f"{len(failures)} ledger call(s) answered 5xx: {Counter((a.method, a.path, a.status) for a in failures)}")
        if self.tracebacks:
            found.append(f"{self.tracebacks} traceback(s) in the API server's log during the run")
        return found

    @property
    def ledger_calls(self) -> list[Access]:
        return [a for a in self.accesses if a.path.startswith("/ordo-hooks/")]

    @property
    def other_calls(self) -> list[Access]:
        return [a for a in self.accesses if not a.path.startswith("/ordo-hooks/")]

    @property
    def last_event_s(self) -> float | None:
        if not self.received:
            return None
        return max(r.received_at for r in self.received) - utc(self.run["start_date"]).timestamp()


def _wait(what: str, ready: Callable[[], object], timeout: float, deployment: BurstDeployment, interval: float = 1.0) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if not deployment.running:
            raise RuntimeError(f"the deployment exited while waiting for {what}: see {deployment.home}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout:.0f} s; see {deployment.home}")
        time.sleep(interval)


def run_burst(deployment: BurstDeployment, variant: str, receiver: WebhookReceiver | None, instances: int) -> Burst:
    """
    Trigger the burst DAG of ``variant`` and wait until its run ended, every event arrived and the
    ledger holds them all delivered. ``receiver``: the one the ``up`` DAG sends to; the ``down``
    DAG's starts here, :data:`OUTAGE` seconds after the run started.
    """
    from airflow_ordo_hooks.testing.receiver import WebhookReceiver

    dag_id = DAGS[variant]
    api_log = deployment.home / "api-server.log"
    log_offset = api_log.stat().st_size
    run_id = f"burst_{variant}"
    run_timeout = 600 + 3.0 * instances  # a try takes about a second of the 8 slots' time on this 2-core machine
    cpu, started = deployment.api_server_cpu(), time.monotonic()
    deployment.trigger(dag_id, run_id=run_id)
    run_path = f"/api/v2/dags/{dag_id}/dagRuns/{run_id}"
    late = None
    try:
        if variant == "down":
            _wait("the run to start", lambda: deployment.get(run_path)["start_date"], 120, deployment)
            back_at = utc(deployment.get(run_path)["start_date"]).timestamp() + OUTAGE
            time.sleep(max(0.0, back_at - time.time()))
            late = WebhookReceiver(port=deployment.late_port).start()
            receiver, receiver_up_at = late, time.time()
        else:
            receiver_up_at = None
        assert receiver is not None
        ended: dict = {}

        def run_ended() -> bool:
            run = deployment.get(run_path)
            if run["state"] in ("success", "failed"):
                ended.update(run)
            return bool(ended)

        _wait(f"run {dag_id}/{run_id} to end", run_ended, run_timeout, deployment, interval=2.0)
        _wait("every event to arrive", lambda: len({r.header("webhook-id") for r in receiver.requests}) >= instances,
              SETTLE_TIMEOUT, deployment)
        _wait("every delivery to be recorded delivered", lambda: deployment.delivered_count(dag_id, run_id) >= instances,
              SETTLE_TIMEOUT, deployment, interval=2.0)
        cpu, wall = deployment.api_server_cpu() - cpu, time.monotonic() - started
        received = list(receiver.requests)
    finally:
        if late is not None:
            late.stop()
    burst = Burst(variant, instances, ended, received, deployment.ledger_rows(dag_id, run_id), deployment.task_instances(dag_id, run_id),
                  cpu_seconds=cpu, wall_seconds=wall, receiver_up_at=receiver_up_at)
    with api_log.open(errors="replace") as log:
        log.seek(log_offset)
        text = log.read()
    burst.accesses = access_lines(text)
    burst.tracebacks = text.count("Traceback (most recent call last)")
    logs = {key: path for path in deployment.task_log_files(dag_id) if (key := log_key(path)) and key[0] == run_id}
    for ti in burst.tis:
        path = logs.get((run_id, ti["map_index"], ti["try_number"]))
        state, last = state_and_last(path.read_text(errors="replace")) if path else (None, None)
        if state is None or last is None:
            burst.logs_missing += 1
            continue
        burst.slots_ms.append((last - state).total_seconds() * 1000)
    return burst


# -- the report --------------------------------------------------------------------------------------------
def _stats(values: list[float], unit: str = "ms") -> str:
    if not values:
        return "—"
    return f"{statistics.median(values):.0f} / {percentile(values, 0.95):.0f} / {max(values):.0f} {unit}"


def report(bursts: Iterable[Burst], idle_percent: float) -> list[str]:
    bursts = list(bursts)
    heading = {"up": "receiver up", "down": f"down {OUTAGE:.0f} s"}
    rows: list[tuple[str, Callable[[Burst], str]]] = [
        ("run: start to end", lambda b: f"{(utc(b.run['end_date']) - utc(b.run['start_date'])).total_seconds():.0f} s"),
        ("task instances failed", lambda b: f"{sum(ti['state'] == 'failed' for ti in b.tis)} of {b.instances}"),
        ("webhooks received / distinct ids", lambda b: f"{len(b.received)} / {len({r.header('webhook-id') for r in b.received})}"),
        ("ledger: deliveries / delivered", lambda b: f"{len(b.ledger)} / {sum(r['state'] == 'delivered' for r in b.ledger)}"),
        ("ledger: delivered on attempt 1 / later", lambda b: f"{sum(r['attempt_count'] == 1 for r in b.ledger)} / "
                                                          f"{sum(r['attempt_count'] > 1 for r in b.ledger)}"),
        ("ledger calls / 503 / other 5xx", lambda b: f"{len(b.ledger_calls)} / {sum(a.status == 503 for a in b.ledger_calls)} / "
                                                  f"{sum(a.status >= 500 and a.status != 503 for a in b.ledger_calls)}"),
        ("ingest POST p50 / p95 / max", lambda b: _stats([a.duration_ms for a in b.ledger_calls
                                                           if a.method == "POST" and a.path == LEDGER and a.duration_ms is not None])),
        ("other API calls / 5xx", lambda b: f"{len(b.other_calls)} / {sum(a.status >= 500 for a in b.other_calls)}"),
        ("slot after the state* p50 / p95 / max", lambda b: _stats(b.slots_ms)),
        ("last event, after the run's start", lambda b: f"{b.last_event_s:.1f} s" if b.last_event_s is not None else "—"),
        ("  after the receiver was back", lambda b: f"{max(r.received_at for r in b.received) - b.receiver_up_at:.1f} s"
                                                 if b.receiver_up_at and b.received else "—"),
        ("API server CPU", lambda b: f"{b.cpu_seconds:.1f} s in {b.wall_seconds:.0f} s"),
        ("  average, of one core", lambda b: f"{100 * b.cpu_seconds / b.wall_seconds:.1f} %"),
    ]
    width = max(len(name) for name, _ in rows) + 2
    lines = [" " * (2 + width) + "".join(f"{heading[b.variant]:>24}" for b in bursts)]
    lines += [f"  {name:<{width}}" + "".join(f"{cell(b):>24}" for b in bursts) for name, cell in rows]
    lines.append(f"  API server idle, before the bursts: {idle_percent:.1f} % of one core")
    lines.append("  * per try, from its log's 'Task failed with exception' (then it sends its state) to its log's last")
    lines.append("    line: the time its process went on in its slot, short of the exit after that line")
    for burst in bursts:
        if burst.logs_missing:
            lines.append(f"  ! {burst.variant}: {burst.logs_missing} tr(ies) whose log lacks the failure line: not in the slot figures")
        lines += [f"  ! {burst.variant}: {problem}" for problem in burst.problems()]
        if not burst.problems():
            lines.append(f"  {burst.variant}: every event recorded and delivered once; no ledger call answered 5xx")
    return lines


# -- the driver -----------------------------------------------------------------------------------------
def _load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def wait_for_quiet_machine() -> None:
    """Wait (bounded) until no other Airflow deployment runs here: its load would be in every figure."""
    deadline = time.monotonic() + QUIET_WAIT
    while subprocess.run(["pgrep", "-f", BUSY], capture_output=True).returncode == 0:
        if time.monotonic() > deadline:
            raise SystemExit(f"another Airflow deployment still runs here after {QUIET_WAIT / 60:.0f} min (pgrep -f {BUSY!r})")
        print("  another Airflow deployment runs here: waiting for it to end", flush=True)
        time.sleep(15)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench burst", description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=INSTANCES, help="instances of the mapped task (default: %(default)s)")
    parser.add_argument("--skip-down", action="store_true", help="only the burst with the receiver up")
    args = parser.parse_args(argv)
    from airflow_ordo_hooks.testing.receiver import WebhookReceiver

    wait_for_quiet_machine()
    home = Path(tempfile.mkdtemp(prefix="ordo-hooks-bench-burst-"))
    print(f"burst: a task mapped over {args.n} instances that fail at once (retries=0), on_error to one receiver; "
          f"Celery (8 slots) on PostgreSQL; {_load()}", flush=True)
    bursts: list[Burst] = []
    idle_percent = 0.0
    with WebhookReceiver() as receiver:
        deployment = BurstDeployment(home, receiver.url("").rstrip("/"), instances=args.n)
        try:
            started = time.monotonic()
            deployment.start()
            deployment.wait_until_ready()
            print(f"  up in {time.monotonic() - started:.0f} s; {home}", flush=True)
            cpu = deployment.api_server_cpu()
            time.sleep(IDLE)
            idle_percent = 100 * (deployment.api_server_cpu() - cpu) / IDLE
            for variant in ("up",) if args.skip_down else ("up", "down"):
                burst = run_burst(deployment, variant, receiver if variant == "up" else None, args.n)
                print(f"  {variant}: run ended {burst.run['state']}, every event in after {burst.wall_seconds:.0f} s; {_load()}", flush=True)
                bursts.append(burst)
        finally:
            deployment.stop()
            for line in report(bursts, idle_percent) if bursts else []:  # also those done before a failure
                print(line)
    if all(not b.problems() for b in bursts):
        shutil.rmtree(home, ignore_errors=True)
    else:
        print(f"  the deployment's home is kept: {home}")


if __name__ == "__main__":
    main()
