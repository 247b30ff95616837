"""On a real deployment, what a hooked try costs compared with a callback written by hand.

``python -m bench live [--db sqlite|postgres|both] [--rounds N] [--down | --no-down] [--shape chain|parallel]``

It starts a deployment of the system-test harness (``tests/system/deployments.py``) that parses only
``bench/dags/live_dags.py``, and runs, one after another and :data:`ROUNDS` times, three DAGs of
:data:`TASKS` one-line tasks: ``live_none`` (no callback), ``live_byhand`` (an on_success_callback
that is a bare ``requests.post(..., timeout=5)``) and ``live_hooked`` (``attach_hooks`` on_success
``notify_webhook``), both posting to a :class:`~airflow_ordo_hooks.testing.receiver.WebhookReceiver`
in this process. Before them, one run of each, not counted: a fresh deployment's first runs pay for
writing bytecode caches and warming Airflow's own.

Per try:

- **slot time after the state**: from the supervisor receiving the try's final state
  (``SucceedTask``, ``TaskState``, ``RetryTask``) to the supervisor seeing the task process exit:
  how much longer the try holds its executor slot once its outcome is known. Median, p95, mean.
- **alert latency**: from the task process sending its state to the receiver getting the webhook;
  and, beside it, from the try's start: work moved into the try's run (the provider imports what its
  callbacks need while the try runs) shows there, not in the latency.

and two ratios, each within one run: hooked latency p50 ÷ by-hand latency p50 (target
:data:`LATENCY_TARGET`), and (hooked slot − none slot) ÷ max(by-hand slot − none slot,
:data:`SLOT_FLOOR_MS`) at the median (target :data:`SLOT_TARGET`). Then the slot by step, for each
DAG (medians): imports after the state, the provider's steps (its log wait, payload, delivery,
ledger client, ledger token, ledger POST), the process's exit, and the rest.

These figures come only from Airflow's supervisor and task runner, and from the receiver: they hold
whatever the provider's internals become. The steps name the provider's functions; a step whose
function has moved or gone shows "—". The instrument is ``bench/live_site/sitecustomize.py``,
put first on the deployment's ``PYTHONPATH``.

With the receiver down (nothing listens at its port; ``live_byhand_down``, ``live_hooked_down``,
run after the others, with ``live_none`` again as their baseline), the slot time a try adds to
none's (target :data:`DOWN_TARGET_MS` at the median).

Deployments: ``sqlite`` is the harness's ``airflow standalone`` (LocalExecutor on SQLite);
``postgres`` the same LocalExecutor on PostgreSQL (the components one by one, PostgreSQL started
as the harness's Celery deployment starts it, without Redis and Celery), so that only the database
differs. By default (``make bench``): both, 2 rounds, the receiver-down variant on SQLite only;
about 6 minutes on a quiet 2-core machine. A deployment writes and reads bytecode caches, as a real
one does, whatever ``PYTHONDONTWRITEBYTECODE`` says here.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from bench._deployment import OwnDagFile
from tests.system.deployments import CeleryDeployment, StandaloneDeployment

HERE = Path(__file__).resolve().parent
SITE = HERE / "live_site"
DAG_FILE = HERE / "dags" / "live_dags.py"
TIMINGS_VARIABLE = "ORDO_HOOKS_BENCH_TIMINGS"
"""The instrument's output file, as the deployment's processes are told it."""

TASKS = 12
ROUNDS = 2
EXIT_TIMEOUT = 60.0
"""Seconds to wait, after a run ends, for the supervisor to see its last task processes exit."""

LATENCY_TARGET = 1.5
SLOT_TARGET = 3.0
SLOT_FLOOR_MS = 30.0
DOWN_TARGET_MS = 2000.0

KINDS = ("none", "by hand", "hooked")
VARIANTS = {
    "up": {"none": "live_none", "by hand": "live_byhand", "hooked": "live_hooked"},
    "down": {"none": "live_none", "by hand": "live_byhand_down", "hooked": "live_hooked_down"},
}
"""The DAG of each kind of try, with the receiver up and down."""

LEDGER_PATH = "/ordo-hooks/api/v1/deliveries"


# -- from the instrument's records and the receiver's requests to tries (pure) ----------------------
@dataclass
class Try:
    """One try of a task, as its task process, its supervisor and the receiver saw it (``time.time()``)."""

    dag_id: str
    task_id: str
    run_id: str
    pid: int
    started: float
    state_sent: float | None = None
    finalized: float | None = None
    """When ``finalize()`` (the callbacks) returned."""
    state_received: float | None = None
    exit_seen: float | None = None
    received: float | None = None
    """When the receiver got the try's webhook."""
    steps: list[dict] = field(default_factory=list)
    """The instrument's ``import``, ``call`` and ``http`` records of the task process, after the state."""

    @property
    def slot_ms(self) -> float | None:
        if self.state_received is None or self.exit_seen is None:
            return None
        return (self.exit_seen - self.state_received) * 1000

    @property
    def latency_ms(self) -> float | None:
        if self.state_sent is None or self.received is None:
            return None
        return (self.received - self.state_sent) * 1000

    @property
    def from_start_ms(self) -> float | None:
        """From the try's start (its task runner's ``run()``) to the receiver: what the latency leaves out, the try's own run, included."""
        if self.received is None:
            return None
        return (self.received - self.started) * 1000

    @property
    def webhook_path(self) -> str:
        return f"/{self.dag_id}/{self.task_id}"  # as bench/dags/live_dags.py posts


def _when(record: dict) -> float:
    return record.get("t", record.get("start", 0.0))


def tries_from(records: Iterable[dict]) -> list[Try]:
    """
    The tries the instrument saw. A task process's records after its ``try`` record are that try's;
    its supervisor's are the first that name the process as ``child`` after the try began (a pid
    may be reused by a later process).
    """
    tries: list[Try] = []
    current: dict[int, Try] = {}
    supervisor: dict[str, dict[int, list[float]]] = {"state_received": defaultdict(list), "exit_seen": defaultdict(list)}
    for record in sorted(records, key=_when):
        event, pid = record.get("ev"), record.get("pid")
        if event in supervisor:
            supervisor[event][record.get("child")].append(record["t"])
        elif event == "try":
            current[pid] = Try(record["dag_id"], record["task_id"], record["run_id"], pid, record["t"])
            tries.append(current[pid])
        elif pid in current:
            one = current[pid]
            if event == "state_sent" and one.state_sent is None:
                one.state_sent = record["t"]
            elif event == "finalize":
                one.finalized = record["end"]
            elif event in ("import", "call", "http"):
                one.steps.append(record)
    for one in tries:
        one.state_received = next((t for t in supervisor["state_received"][one.pid] if t >= one.started), None)
        after = one.state_received if one.state_received is not None else one.started
        one.exit_seen = next((t for t in supervisor["exit_seen"][one.pid] if t >= after), None)
    return tries


def match_webhooks(tries: Iterable[Try], received: Iterable[tuple[str, float]]) -> int:
    """
    Give each try the first webhook to its path received after it sent its state and not given to an
    earlier try; ``received``: ``(path, time)`` of every request. Return how many requests matched.
    """
    by_path: dict[str, list[float]] = defaultdict(list)
    for path, at in received:
        by_path[path].append(at)
    for times in by_path.values():
        times.sort()
    matched = 0
    for one in sorted((t for t in tries if t.state_sent is not None), key=lambda t: t.state_sent):
        times = by_path.get(one.webhook_path, [])
        later = next((i for i, at in enumerate(times) if at >= one.state_sent), None)
        if later is not None:
            one.received = times.pop(later)
            matched += 1
    return matched


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank percentile ``q`` (0 to 100) of ``values``."""
    ordered = sorted(values)
    return ordered[max(math.ceil(q / 100 * len(ordered)), 1) - 1]


def _http(method: str, test: Callable[[str], bool]) -> Callable[[dict], bool]:
    return lambda r: r["ev"] == "http" and r.get("method") == method and test(r.get("path", ""))


def _call(qualname: str) -> Callable[[dict], bool]:
    return lambda r: r["ev"] == "call" and r.get("fn") == qualname


STEPS: dict[str, Callable[[dict], bool]] = {
    "imports (outermost, after the state)": lambda r: r["ev"] == "import",
    "log wait (task_log._catch_up)": _call("_catch_up"),
    "payload (event_payload)": _call("event_payload"),
    "delivery (deliver_all)": _call("deliver_all"),
    "ledger client (AirflowApiHook())": _call("AirflowApiHook.__init__"),
    "ledger token (POST /auth/token)": _http("POST", lambda path: path.endswith("/auth/token")),
    f"ledger POST (POST {LEDGER_PATH})": _http("POST", lambda path: path.rstrip("/") == LEDGER_PATH),
}
"""The steps of a try's slot, each the records it is made of; they may overlap (an import inside a step counts in both)."""
EXIT_STEP = "process exit (finalize end -> exit seen)"
OTHER_STEP = "other (in no step above)"


def _union_ms(intervals: list[tuple[float, float]], low: float, high: float) -> float:
    """The time in ``[low, high]`` covered by at least one of ``intervals``, in ms."""
    covered, reached = 0.0, low
    for start, end in sorted(intervals):
        start, end = max(start, reached), min(end, high)
        if end > start:
            covered += end - start
            reached = end
    return covered * 1000


def step_ms(one: Try) -> dict[str, float | None]:
    """A complete try's slot by step, in ms: ``None`` for a step it never took."""
    spans: dict[str, list[tuple[float, float]]] = {name: [] for name in STEPS}
    for record in one.steps:
        for name, made_of in STEPS.items():
            if made_of(record):
                spans[name].append((record["start"], record["end"]))
    if one.finalized is not None:
        spans[EXIT_STEP] = [(one.finalized, one.exit_seen)]
    result: dict[str, float | None] = {
        name: sum(end - start for start, end in found) * 1000 if found else None for name, found in spans.items()
    }
    every = [span for found in spans.values() for span in found]
    result[OTHER_STEP] = one.slot_ms - _union_ms(every, one.state_received, one.exit_seen)
    return result


@dataclass
class Kind:
    """The complete tries of one kind (none, by hand, hooked) and their figures."""

    tries: list[Try]
    incomplete: int = 0
    """Tries the supervisor's records do not close (no state received or no exit seen)."""

    @property
    def slots(self) -> list[float]:
        return [t.slot_ms for t in self.tries]

    @property
    def latencies(self) -> list[float]:
        return [t.latency_ms for t in self.tries if t.latency_ms is not None]

    @property
    def from_starts(self) -> list[float]:
        return [t.from_start_ms for t in self.tries if t.from_start_ms is not None]

    def breakdown(self) -> dict[str, tuple[float | None, int]]:
        """Each step's median over the tries (0 for a try without it) and in how many tries it was seen; ``None`` if in none."""
        per_try = [step_ms(t) for t in self.tries]
        names = [*STEPS, EXIT_STEP, OTHER_STEP]
        result = {}
        for name in names:
            values = [steps.get(name) for steps in per_try]
            seen = sum(v is not None for v in values)
            result[name] = (statistics.median(v or 0.0 for v in values) if seen else None, seen)
        return result


def kinds_of(tries: Iterable[Try], variant_of: Mapping[str, str]) -> dict[str, dict[str, Kind]]:
    """``{variant: {kind: Kind}}`` of the tries of the runs in ``variant_of`` (run id -> ``up`` or ``down``)."""
    kind_of_dag = {(variant, dag_id): kind for variant, dags in VARIANTS.items() for kind, dag_id in dags.items()}
    grouped: dict[str, dict[str, Kind]] = defaultdict(dict)
    for one in tries:
        variant = variant_of.get(one.run_id)
        kind = kind_of_dag.get((variant, one.dag_id))
        if kind is None:
            continue
        group = grouped[variant].setdefault(kind, Kind([]))
        if one.slot_ms is None:
            group.incomplete += 1
        else:
            group.tries.append(one)
    return grouped


@dataclass(frozen=True)
class Ratios:
    latency: float | None
    """Hooked latency p50 ÷ by-hand latency p50."""
    slot: float | None
    """(Hooked slot − none slot) ÷ max(by-hand slot − none slot, SLOT_FLOOR_MS), at the medians."""


def ratios(kinds: Mapping[str, Kind]) -> Ratios:
    def median(values: list[float]) -> float | None:
        return statistics.median(values) if values else None

    hooked, by_hand, none = (kinds.get(k, Kind([])) for k in ("hooked", "by hand", "none"))
    latency = None
    if hooked.latencies and by_hand.latencies:
        latency = median(hooked.latencies) / median(by_hand.latencies)
    slot = None
    if hooked.slots and by_hand.slots and none.slots:
        base = median(none.slots)
        slot = (median(hooked.slots) - base) / max(median(by_hand.slots) - base, SLOT_FLOOR_MS)
    return Ratios(latency, slot)


def added_ms(kinds: Mapping[str, Kind], kind: str) -> tuple[float, float] | None:
    """The slot time a try of ``kind`` adds to none's median: at its median and at its p95."""
    tries, none = kinds.get(kind), kinds.get("none")
    if not tries or not tries.slots or not none or not none.slots:
        return None
    base = statistics.median(none.slots)
    return statistics.median(tries.slots) - base, percentile(tries.slots, 95) - base


# -- the report (pure) --------------------------------------------------------------------------------
def _ms(value: float | None, width: int = 8) -> str:
    return f"{value:{width}.1f}" if value is not None else f"{'—':>{width}}"


def _verdict(value: float | None, target: float) -> str:
    if value is None:
        return "not measured"
    return "PASS" if value <= target else "over"


def report(variants: Mapping[str, Mapping[str, Kind]]) -> list[str]:
    """The table, the ratios and the breakdown of one deployment, as lines."""
    lines = []
    up = variants.get("up", {})
    lines.append(f"  {'per try':<10}{'tries':>6}   {'slot after the state, ms':^26}   {'alert latency, ms':^17}   {'try start to receiver':^21}")
    lines.append(f"  {'':<16}   {'median':>8}{'p95':>9}{'mean':>9}   {'p50':>8}{'p95':>9}   {'p50 ms':>9}")
    for kind in KINDS:
        group = up.get(kind, Kind([]))
        slots, latencies = group.slots, group.latencies
        row = f"  {kind:<10}{len(slots):>6}   "
        row += "".join(_ms(f(slots) if slots else None, 9 if i else 8) for i, f in enumerate(
            (statistics.median, lambda v: percentile(v, 95), statistics.mean)))
        row += "   " + _ms(statistics.median(latencies) if latencies else None) + _ms(percentile(latencies, 95) if latencies else None, 9)
        row += "   " + _ms(statistics.median(group.from_starts) if group.from_starts else None, 9)
        if group.incomplete:
            row += f"   ({group.incomplete} incomplete)"
        lines.append(row)
    found = ratios(up)
    lines.append(f"  alert latency, hooked p50 / by hand p50: {_ratio(found.latency)} "
                 f"(target <= {LATENCY_TARGET}: {_verdict(found.latency, LATENCY_TARGET)})")
    lines.append(f"  slot, (hooked - none) / max(by hand - none, {SLOT_FLOOR_MS:.0f} ms), at the median: {_ratio(found.slot)} "
                 f"(target <= {SLOT_TARGET:g}: {_verdict(found.slot, SLOT_TARGET)})")
    lines.append(f"  the slot by step, median ms (tries where seen){'':<10}" + "".join(f"{k:>16}" for k in KINDS))
    tables = {kind: up[kind].breakdown() for kind in KINDS if kind in up}
    for name in [*STEPS, EXIT_STEP, OTHER_STEP]:
        cells = ""
        for kind in KINDS:
            value, seen = tables[kind][name] if kind in tables else (None, 0)
            cells += f"{_ms(value, 9)} ({seen:>2})" if value is not None else f"{'—':>16}"
        lines.append(f"    {name:<58}{cells}")
    lines.append("    (steps may overlap: an import inside a step counts in both; —: not seen in any try, "
                 "its function gone or not called)")
    down = variants.get("down")
    if down:
        lines.append("  receiver down (nothing listens), slot after the state, ms:")
        for kind in KINDS:
            group = down.get(kind, Kind([]))
            slots = group.slots
            row = f"    {kind:<10}{len(slots):>4} tries   median {_ms(statistics.median(slots) if slots else None)}   " \
                  f"p95 {_ms(percentile(slots, 95) if slots else None)}"
            added = added_ms(down, kind) if kind != "none" else None
            if added:
                row += f"   added vs none: median {_ms(added[0])}, p95 {_ms(added[1])}"
            if group.incomplete:
                row += f"   ({group.incomplete} incomplete)"
            lines.append(row)
        added = added_ms(down, "hooked")
        lines.append(f"  receiver down, hooked slot added per try vs none (median): {_ms(added[0] if added else None, 1)} ms "
                     f"(target <= {DOWN_TARGET_MS / 1000:g} s: {_verdict(added[0] if added else None, DOWN_TARGET_MS)})")
    return lines


def _ratio(value: float | None) -> str:
    return f"{value:.2f}" if value is not None else "—"


# -- the deployments ----------------------------------------------------------------------------------
class _LiveDeployment(OwnDagFile):
    """A harness deployment as the benchmark runs it: :data:`DAG_FILE` alone, and the instrument first on ``PYTHONPATH``."""

    label = ""
    dag_file = DAG_FILE
    dag_ids = frozenset(dag_id for dags in VARIANTS.values() for dag_id in dags.values())

    def __init__(self, home: Path, receiver_url: str, *, shape: str) -> None:
        super().__init__(home, receiver_url)  # type: ignore[call-arg]
        self.timings = home / "timings.jsonl"
        self.shape = shape

    def environment(self) -> dict[str, str]:
        env = super().environment()
        env.pop("PYTHONDONTWRITEBYTECODE", None)  # a deployment keeps compiled bytecode
        env.update(
            PYTHONPATH=os.pathsep.join(filter(None, [str(SITE), env.get("PYTHONPATH")])),
            ORDO_HOOKS_BENCH_SHAPE=self.shape,
            ORDO_HOOKS_BENCH_TASKS=str(TASKS),
            **{TIMINGS_VARIABLE: str(self.timings)},
        )
        return env


class LiveStandalone(_LiveDeployment, StandaloneDeployment):
    label = "SQLite: airflow standalone, LocalExecutor"


class LivePostgres(_LiveDeployment, CeleryDeployment):
    """
    LocalExecutor on PostgreSQL: the harness's Celery deployment without Redis and the Celery
    worker, its other components (api-server, scheduler, dag-processor, triggerer) and its
    PostgreSQL as they are.
    """

    label = "PostgreSQL: api-server, scheduler, dag-processor, triggerer, LocalExecutor"
    kind = "postgres"
    executor = "LocalExecutor"
    COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
    start_script = "".join(
        line for line in CeleryDeployment.start_script.splitlines(keepends=True) if "redis-server" not in line and "celery" not in line
    )

    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in super().environment().items() if not k.startswith("AIRFLOW__CELERY__")}
        env.pop("AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT", None)  # standalone keeps Airflow's default
        return env

    def _workers_ready(self) -> bool:
        return True  # no Celery worker: the scheduler runs the tries


DEPLOYMENTS = {"sqlite": LiveStandalone, "postgres": LivePostgres}


# -- the driver -----------------------------------------------------------------------------------------
def _records(path: Path) -> list[dict]:
    if not path.exists():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:  # a line being written
            pass
    return records


def _wait_for_exits(deployment: _LiveDeployment, dag_id: str, run_id: str) -> None:
    """Wait (bounded) until the supervisor has seen every task process of the run exit: the next run starts on a quiet slot."""
    deadline = time.monotonic() + EXIT_TIMEOUT
    while time.monotonic() < deadline:
        done = [t for t in tries_from(_records(deployment.timings)) if (t.dag_id, t.run_id) == (dag_id, run_id) and t.exit_seen]
        if len(done) >= TASKS:
            return
        time.sleep(0.2)


def _run(deployment: _LiveDeployment, dag_id: str, run_id: str) -> float:
    start = time.monotonic()
    deployment.trigger(dag_id, run_id=run_id)
    state = deployment.wait_for_run(dag_id, run_id)["state"]
    if state != "success":
        raise RuntimeError(f"{dag_id}/{run_id} ended {state}: see {deployment.home}")
    _wait_for_exits(deployment, dag_id, run_id)
    return time.monotonic() - start


def _load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def measure(db: str, rounds: int, shape: str, down: bool, keep: bool = False) -> None:
    """Start one deployment, run the DAGs, stop it; print what it measured."""
    from airflow_ordo_hooks.testing.receiver import WebhookReceiver

    cls = DEPLOYMENTS[db]
    home = Path(tempfile.mkdtemp(prefix=f"ordo-hooks-bench-live-{db}-"))
    print(f"{cls.label}; {TASKS} tasks, {shape}, {rounds} round(s); {_load()}", flush=True)
    variant_of: dict[str, str] = {}
    with WebhookReceiver() as receiver:
        deployment = cls(home, receiver.url("").rstrip("/"), shape=shape)
        try:
            started = time.monotonic()
            deployment.start()
            deployment.wait_until_ready()
            print(f"  up in {time.monotonic() - started:.0f} s; warming up (a run of each, not counted)", flush=True)
            for dag_id in VARIANTS["up"].values():
                _run(deployment, dag_id, f"bench_warm_up_{dag_id}")
            for variant in ("up", "down") if down else ("up",):
                for round_ in range(rounds):
                    took = []
                    for dag_id in VARIANTS[variant].values():
                        run_id = f"bench_{variant}_{round_}"
                        variant_of[run_id] = variant
                        took.append(f"{dag_id} {_run(deployment, dag_id, run_id):.1f} s")
                    print(f"  receiver {variant}, round {round_ + 1}/{rounds}: " + ", ".join(took), flush=True)
            expected = TASKS * rounds * 2  # by hand and hooked, receiver up
            receiver.wait_for(expected + 2 * TASKS, timeout=10)  # and the warm-up's
        finally:
            deployment.stop()
        received = [(r.path, r.received_at) for r in receiver.requests]
    tries = tries_from(_records(deployment.timings))
    for line in _check(tries, received, variant_of, expected):
        print(line)
    for line in report(kinds_of(tries, variant_of)):
        print(line)
    print(f"  {_load()}", flush=True)
    if keep:
        print(f"  kept: {home} (timings.jsonl, deployment.log, logs/)")
    else:
        shutil.rmtree(home, ignore_errors=True)


def _check(tries: list[Try], received: list[tuple[str, float]], variant_of: Mapping[str, str], expected: int) -> list[str]:
    """Match the webhooks to the tries; say what is amiss."""
    matched = match_webhooks(tries, received)
    lines = []
    if len(received) != matched:
        lines.append(f"  ! {len(received) - matched} request(s) received that no try sent")
    counted = sum(1 for t in tries if variant_of.get(t.run_id) == "up" and t.received is not None)
    if counted != expected:
        lines.append(f"  ! {counted} webhook(s) of the counted runs received, {expected} expected")
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench live", description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="runs of each DAG (default: %(default)s)")
    parser.add_argument("--down", action=argparse.BooleanOptionalAction, default=None,
                        help="the receiver-down variant on every database (--no-down: on none; default: on SQLite)")
    parser.add_argument("--shape", choices=("chain", "parallel"), default="chain",
                        help="the tasks one after another, or all at once (default: %(default)s)")
    parser.add_argument("--keep", action="store_true", help="keep each deployment's home: its logs, database and timings")
    args = parser.parse_args(argv)
    for db in ("sqlite", "postgres") if args.db == "both" else (args.db,):
        measure(db, args.rounds, args.shape, down=args.down if args.down is not None else db == "sqlite", keep=args.keep)


if __name__ == "__main__":
    main()
