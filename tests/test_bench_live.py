"""The figures of ``python -m bench live`` from a small hand-made input: its instrument's JSON lines
and the requests its receiver got (no deployment; every expected figure worked out by hand)."""

from __future__ import annotations

import pytest

from bench.live import (
    EXIT_STEP,
    OTHER_STEP,
    added_ms,
    kinds_of,
    match_webhooks,
    percentile,
    ratios,
    step_ms,
    tries_from,
)

T = 1000.0  # every time below is T + seconds


def one_try(pid: int, dag_id: str, run_id: str, start: float, *, state: float, received: float, finalized: float,
            exited: float, steps: list[dict] = ()) -> list[dict]:
    """The records of one try of task ``t00``: its process's, then its supervisor's (pid 1)."""
    return [
        {"ev": "try", "pid": pid, "t": T + start, "dag_id": dag_id, "task_id": "t00", "run_id": run_id, "try_number": 1},
        {"ev": "state_sent", "pid": pid, "t": T + state, "msg": "SucceedTask"},
        *({**step, "pid": pid, "start": T + step["start"], "end": T + step["end"]} for step in steps),
        {"ev": "finalize", "pid": pid, "start": T + state + 0.001, "end": T + finalized},
        {"ev": "state_received", "pid": 1, "child": pid, "t": T + received, "msg": "SucceedTask"},
        {"ev": "exit_seen", "pid": 1, "child": pid, "t": T + exited, "code": 0},
    ]


HOOKED_STEPS = [
    {"ev": "import", "module": "airflow_ordo_hooks.hooks._http_hooks", "start": 10.020, "end": 10.100},
    {"ev": "call", "fn": "_catch_up", "start": 10.010, "end": 10.030},
    {"ev": "call", "fn": "deliver_all", "start": 10.040, "end": 10.050},
    {"ev": "http", "method": "POST", "path": "/live_hooked/t00", "start": 10.041, "end": 10.049},
    {"ev": "http", "method": "POST", "path": "/auth/token", "start": 10.110, "end": 10.130},
    {"ev": "http", "method": "POST", "path": "/ordo-hooks/api/v1/deliveries", "start": 10.130, "end": 10.150},
]


def records() -> list[dict]:
    return [
        # none: state received at 0.002, exit seen at 0.022: a slot of 20 ms
        *one_try(11, "live_none", "bench_up_0", 0.0, state=0.001, received=0.002, finalized=0.010, exited=0.022),
        # by hand: slot 0.042 - 0.002 = 40 ms; webhook at 0.011, 10 ms after the state was sent
        *one_try(12, "live_byhand", "bench_up_0", 5.0, state=5.001, received=5.002, finalized=5.030, exited=5.042),
        # hooked: slot 10.202 - 10.002 = 200 ms; webhook at 10.049, 48 ms after the state
        *one_try(13, "live_hooked", "bench_up_0", 10.0, state=10.001, received=10.002, finalized=10.160, exited=10.202,
                 steps=HOOKED_STEPS),
        # receiver down: none 30 ms, hooked 1,530 ms
        *one_try(14, "live_none", "bench_down_0", 20.0, state=20.001, received=20.002, finalized=20.010, exited=20.032),
        *one_try(15, "live_hooked_down", "bench_down_0", 30.0, state=30.001, received=30.002, finalized=31.500,
                 exited=31.532),
        # a try of pid 12 again (a reused pid), whose supervisor never saw its exit: incomplete
        {"ev": "try", "pid": 12, "t": T + 40.0, "dag_id": "live_byhand", "task_id": "t00", "run_id": "bench_up_0"},
        {"ev": "state_received", "pid": 1, "child": 12, "t": T + 40.002, "msg": "SucceedTask"},
    ]


RECEIVED = [
    ("/live_byhand/t00", T + 5.011),
    ("/live_hooked/t00", T + 10.049),
    ("/deployment/on_success", T + 10.050),  # sent by no try
]
VARIANT_OF = {"bench_up_0": "up", "bench_down_0": "down"}


@pytest.fixture
def kinds():
    tries = tries_from(records())
    assert match_webhooks(tries, RECEIVED) == 2
    return kinds_of(tries, VARIANT_OF)


def test_slot_and_latency_per_try(kinds):
    up = kinds["up"]
    assert up["none"].slots == pytest.approx([20.0])
    assert up["by hand"].slots == pytest.approx([40.0])
    assert up["hooked"].slots == pytest.approx([200.0])
    assert up["none"].latencies == []
    assert up["by hand"].latencies == pytest.approx([10.0])
    assert up["hooked"].latencies == pytest.approx([48.0])
    assert up["hooked"].from_starts == pytest.approx([49.0])  # from the try's start at 10.000, not its state at 10.001
    assert up["none"].from_starts == []
    assert (len(up["by hand"].tries), up["by hand"].incomplete) == (1, 1)  # the reused pid's try, not the first's exit


def test_ratios(kinds):
    found = ratios(kinds["up"])
    assert found.latency == pytest.approx(48.0 / 10.0)
    # (200 - 20) / max(40 - 20, 30): the floor, since by hand adds less than 30 ms
    assert found.slot == pytest.approx(180.0 / 30.0)


def test_receiver_down(kinds):
    assert added_ms(kinds["down"], "hooked") == pytest.approx((1500.0, 1500.0))
    assert added_ms(kinds["down"], "by hand") is None


def test_the_hooked_slot_by_step(kinds):
    steps = step_ms(kinds["up"]["hooked"].tries[0])
    assert steps["imports (outermost, after the state)"] == pytest.approx(80.0)
    assert steps["log wait (task_log._catch_up)"] == pytest.approx(20.0)
    assert steps["delivery (deliver_all)"] == pytest.approx(10.0)
    assert steps["ledger token (POST /auth/token)"] == pytest.approx(20.0)
    assert steps["ledger POST (POST /ordo-hooks/api/v1/deliveries)"] == pytest.approx(20.0)
    assert steps["payload (event_payload)"] is None  # never called: the name is gone
    assert steps[EXIT_STEP] == pytest.approx(42.0)  # 10.160 -> 10.202
    # covered: 10.010-10.100 (catch-up, import, delivery), 10.110-10.150 (token, POST), 10.160-10.202 (exit)
    assert steps[OTHER_STEP] == pytest.approx(200.0 - 90.0 - 40.0 - 42.0)
    breakdown = kinds["up"]["hooked"].breakdown()
    assert breakdown["payload (event_payload)"] == (None, 0)
    assert breakdown[EXIT_STEP] == (pytest.approx(42.0), 1)


def test_percentile_is_the_nearest_rank():
    values = list(range(1, 21))  # 1..20
    assert percentile(values, 95) == 19
    assert percentile(values, 50) == 10
    assert percentile([7.0], 95) == 7.0
