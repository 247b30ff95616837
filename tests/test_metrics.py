"""Metrics through Airflow's own Stats, read as a StatsD server on loopback reads them: the exact lines, and nothing raised."""

from __future__ import annotations

import logging
import os
import re
import socket
import time
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace
from unittest import mock

import pytest

from airflow_ordo_hooks import _metrics
from airflow_ordo_hooks._egress import REFUSED_PREFIX


def initialize_stats() -> None:
    """Initialize Airflow's Stats from ``[metrics]`` as Airflow's own processes do (it reads the configuration then only)."""
    from airflow.sdk.configuration import conf
    from airflow.sdk.observability import stats
    from airflow.sdk.observability.metrics import stats_utils

    stats.initialize(factory=stats_utils.get_stats_factory(), export_legacy_names=conf.getboolean("metrics", "legacy_names_on"))


def stats_state():
    """The module where Airflow's Stats keeps what it was initialized with."""
    import sys

    from airflow.sdk.observability import stats

    return sys.modules[stats.initialize.__module__]


class StatsdReceiver:
    """
    A StatsD server on loopback (a UDP socket), and Airflow's ``[metrics]`` pointed at it as
    docs/operators.md says an operator does to get tags: StatsD on, InfluxDB-style tags. Stats is
    initialized from it on entering, and again from the configuration as it was on leaving.

    :meth:`lines` are the ``ordo_hooks`` lines received (Airflow's own left out), a timer's value
    shown as ``T``: what varies from run to run.
    """

    def __init__(self, **metrics: str) -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.bind(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        self.metrics = {"STATSD_ON": "True", "STATSD_HOST": "127.0.0.1", "STATSD_PORT": str(self.port),
                        "STATSD_PREFIX": "airflow", "STATSD_INFLUXDB_ENABLED": "True", **metrics}
        self._env = mock.patch.dict(os.environ, {f"AIRFLOW__METRICS__{k}": v for k, v in self.metrics.items()})
        self._got: list[str] = []

    def __enter__(self) -> StatsdReceiver:
        self._env.start()
        initialize_stats()
        return self

    def __exit__(self, *exc: object) -> None:
        self._env.stop()
        initialize_stats()
        self.socket.close()

    def _read(self, wait: float) -> None:
        self.socket.settimeout(wait)
        try:
            while True:
                self._got += self.socket.recv(65535).decode().splitlines()
                self.socket.settimeout(0.05)
        except socket.timeout:
            pass

    def lines(self, *, until=None, timeout: float = 10.0) -> list[str]:
        """What was received by now (``until``: once ``until(lines)`` is true, waiting up to ``timeout`` s for it)."""
        deadline = time.monotonic() + timeout
        while True:
            self._read(0.2)
            ours = [re.sub(r":[0-9.]+\|ms$", ":T|ms", line) for line in self._got if line.startswith("airflow.ordo_hooks.")]
            if until is None or until(ours) or time.monotonic() > deadline:
                return ours


@pytest.fixture
def statsd():
    with StatsdReceiver() as receiver:
        yield receiver


def test_a_counter_a_timer_and_a_gauge_are_the_lines_airflows_statsd_client_sends(statsd):
    _metrics.incr("attempt", component="worker", outcome="2xx")
    _metrics.incr("event.recovered", 3, component="dag-processor", event="on_error", dag_id="coffee.shop-1")
    _metrics.timing("delivery.first_attempt", 12.5, component="worker", outcome="5xx")
    _metrics.gauge("ledger.pending", 7)
    _metrics.incr("ledger.unavailable", component="worker", event=None, dag_id="")  # a tag without a value is left out

    assert statsd.lines() == [
        "airflow.ordo_hooks.attempt,component=worker,outcome=2xx:1|c",
        "airflow.ordo_hooks.event.recovered,component=dag-processor,event=on_error,dag_id=coffee.shop-1:3|c",
        "airflow.ordo_hooks.delivery.first_attempt,component=worker,outcome=5xx:T|ms",
        "airflow.ordo_hooks.ledger.pending:7|g",
        "airflow.ordo_hooks.ledger.unavailable,component=worker:1|c",
    ]


@pytest.mark.parametrize("status_code, error, expected", [
    (200, None, "2xx"), (307, "HTTP 307 redirect to … not followed", "3xx"), (410, "HTTP 410", "4xx"), (503, "HTTP 503", "5xx"),
    (None, "ReadTimeout: HTTPConnectionPool(host='127.0.0.1', port=1): Read timed out.", "timeout"),
    (None, "ConnectTimeout: connecting timed out", "timeout"),
    (None, "ConnectionError: ('Connection aborted.', RemoteDisconnected('closed'))", "connection"),
    (None, "SSLError: certificate verify failed", "connection"),
    (None, REFUSED_PREFIX + "http://10.0.0.1/…#23bad5: 10.0.0.1 is a private address", "refused"),
    (None, "the target cannot be decrypted: was [core] fernet_key changed?", "error"),
    (None, None, "error"),
])
def test_an_attempts_outcome_is_its_status_class_or_its_errors_kind(status_code, error, expected):
    assert _metrics.outcome(status_code, error) == expected


def test_with_metrics_off_airflows_stats_is_not_called_nor_its_registry_read(monkeypatch):
    initialize_stats()  # the test configuration: [metrics] all off
    state = stats_state()
    monkeypatch.setattr(state, "_registry", None)  # Airflow reads its names' YAML on the first metric it emits

    def refuse(*args, **kwargs):
        raise AssertionError("Stats was called with metrics off")

    monkeypatch.setattr(state.Stats, "incr", staticmethod(refuse))
    assert _metrics.enabled() is False
    _metrics.incr("attempt", component="worker", outcome="2xx")
    assert state._registry is None


def test_a_process_where_nothing_initialized_stats_initializes_it_as_airflow_does(statsd, monkeypatch):
    state = stats_state()
    monkeypatch.setattr(state, "_factory", None)  # as a process where neither serde nor the task runner ran
    monkeypatch.setattr(state, "_backend", None)

    _metrics.incr("attempt", component="api-server", outcome="4xx")

    assert statsd.lines() == ["airflow.ordo_hooks.attempt,component=api-server,outcome=4xx:1|c"]
    from airflow.sdk.observability.metrics import statsd_logger

    assert state._factory is statsd_logger.get_statsd_logger


def test_a_statsd_that_nobody_listens_to_costs_nothing_but_the_metric(caplog):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    with StatsdReceiver(STATSD_PORT=str(port)), caplog.at_level(logging.WARNING, logger="airflow_ordo_hooks"):
        for _ in range(3):  # nothing listens there: a StatsD that is down
            _metrics.incr("attempt", component="worker", outcome="2xx")
            _metrics.backlog(3, None)
    assert caplog.records == []


class _Broken:
    def __getattr__(self, name):
        raise OSError("the metrics backend is down")


@pytest.mark.parametrize("factory", [_Broken, lambda: (_ for _ in ()).throw(RuntimeError("no backend"))], ids=["raises", "unbuilt"])
def test_a_backend_that_raises_raises_nothing_and_is_logged_once(monkeypatch, caplog, factory):
    from airflow.sdk.observability import stats

    monkeypatch.setattr(_metrics, "_warned", False)
    stats.initialize(factory=factory, export_legacy_names=False)
    try:
        with caplog.at_level(logging.DEBUG, logger="airflow_ordo_hooks._metrics"):
            _metrics.incr("attempt", component="worker", outcome="2xx")
            _metrics.timing("delivery.first_attempt", 3, component="worker", outcome="2xx")
            _metrics.first_attempts([object()], [object()], "worker")  # not even what it reads raises
    finally:
        initialize_stats()
    levels = [r.levelname for r in caplog.records]
    assert levels == ["WARNING", "DEBUG", "DEBUG"], levels


def test_the_ledger_counts_a_reported_gone_or_given_up_once_committed_and_not_a_reported_delivery(statsd, ledger):
    from tests.server.reported import attempt, item, record

    gone = item(task_id="gone", attempts=[attempt(410)])
    given_up = item(task_id="given_up", attempts=[attempt(503, by="dag-processor")], event="on_success")
    delivered = item(task_id="delivered", attempts=[attempt(200)])
    record(ledger, [gone, given_up, delivered], by="worker", schedule=())  # no step of the schedule left: given up
    assert statsd.lines() == [], "nothing is counted before the ledger keeps it"
    ledger.commit()

    tags = "action=notify_webhook,source=callback,dag_id=coffee_shop"
    assert statsd.lines() == [
        f"airflow.ordo_hooks.delivery.gone,component=worker,event=on_error,{tags}:1|c",
        f"airflow.ordo_hooks.delivery.given_up,component=dag-processor,event=on_success,{tags}:1|c",
    ]


def test_what_a_rolled_back_transaction_settled_is_not_counted(statsd, ledger):
    from tests.server.reported import attempt, item, record

    record(ledger, [item(attempts=[attempt(410)])], by="worker")
    ledger.rollback()
    ledger.commit()
    assert statsd.lines() == []


def test_a_delivery_the_api_server_delivered_is_counted_and_timed_from_when_it_was_first_seen(statsd):
    row = SimpleNamespace(event="on_exit", action="notify_webhook", source="on_exit", dag_id="d")
    _metrics._settled("delivered", _metrics._of(row, "api-server"), since=datetime.now(timezone.utc) - timedelta(seconds=3))
    lines = statsd.lines()
    assert lines == [
        "airflow.ordo_hooks.delivery.delivered,component=api-server,event=on_exit,action=notify_webhook,source=on_exit,dag_id=d:1|c",
        "airflow.ordo_hooks.delivery.time_to_deliver,component=api-server,source=on_exit:T|ms",
    ]
