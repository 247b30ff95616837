"""The system-test harness: real Airflow deployments (see ``deployments.py``), one kind at a time, each
started once for every system test that runs against it and stopped (its whole process group) as soon
as the last of them is done, also when a test fails or the session is interrupted.

Every system test runs against each shared kind: ``local`` (``airflow standalone``, LocalExecutor on
SQLite) and ``celery`` (CeleryExecutor, PostgreSQL, Redis). A test marked ``deployments(...)`` runs
on those kinds only: ``operating`` (standalone with a short retention, an operations target and
StatsD) is for those tests alone. ``ORDO_HOOKS_SYSTEM_DEPLOYMENTS=local`` (a comma list) runs fewer.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_ordo_hooks.testing.receiver import WebhookReceiver

from tests.system.deployments import DEPLOYMENTS, SHARED, SYSTEM_DIR, Deployment

KINDS = [k.strip() for k in os.environ.get("ORDO_HOOKS_SYSTEM_DEPLOYMENTS", ",".join(DEPLOYMENTS)).split(",") if k.strip()]
if unknown := sorted(set(KINDS) - set(DEPLOYMENTS)):
    raise pytest.UsageError(f"ORDO_HOOKS_SYSTEM_DEPLOYMENTS: unknown deployment {unknown}; known: {sorted(DEPLOYMENTS)}")

EARLY_RUNS = ("system_late_receiver",)
"""DAGs triggered as soon as a deployment is up, for tests marked ``system_last`` that wait minutes
after them (a receiver's outage): those minutes pass while the other tests run."""

_DEPLOYMENT: Deployment | None = None
_KEEP = os.environ.get("ORDO_HOOKS_SYSTEM_KEEP_HOME", "")
_KEEP_HOME = _KEEP == "1"
"""Set ``ORDO_HOOKS_SYSTEM_KEEP_HOME=1`` to keep the deployment's home (logs, database, requests received);
unset, it is kept when a system test fails, and the summary says where; ``0``: never kept."""
_KEPT_HOMES: list[Path] = []


@pytest.fixture(scope="session")
def system_receiver() -> Iterator[WebhookReceiver]:
    """The real webhook receiver the deployment's DAG files send to (``$ORDO_HOOKS_RECEIVER``)."""
    with WebhookReceiver() as receiver:
        yield receiver


@pytest.fixture(scope="session", params=KINDS)
def airflow_deployment(request: pytest.FixtureRequest, system_receiver: WebhookReceiver) -> Iterator[Deployment]:
    """A real Airflow of each kind with ``tests/system/dags/*.py`` and the examples parsed, started once."""
    global _DEPLOYMENT, _KEEP_HOME
    home = Path(tempfile.mkdtemp(prefix=f"ordo-hooks-system-{request.param}-"))
    deployment = DEPLOYMENTS[request.param](home, system_receiver.url("").rstrip("/"))
    _DEPLOYMENT = deployment
    system_receiver.reset()  # nothing of an earlier deployment
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGHUP)}

    def interrupted(signum: int, frame: Any) -> None:  # let pytest unwind and run this fixture's teardown
        raise KeyboardInterrupt(f"signal {signum}")

    for sig in previous:
        signal.signal(sig, interrupted)
    atexit.register(deployment.stop)
    try:
        deployment.start()
        deployment.wait_until_ready()
        deployment.early_runs = {dag_id: deployment.trigger(dag_id) for dag_id in EARLY_RUNS if deployment.early_runs_wanted}
        yield deployment
    except BaseException:
        _KEEP_HOME = _KEEP != "0"
        raise
    finally:
        deployment.stop()
        atexit.unregister(deployment.stop)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _DEPLOYMENT = None
        if _KEEP_HOME:
            with (home / "received.jsonl").open("w") as f:
                for r in system_receiver.requests:
                    f.write(json.dumps({"path": r.path, "received_at": r.received_at, "headers": r.headers, "body": r.body.decode(errors="replace")}) + "\n")
            _KEPT_HOMES.append(home)
        else:
            shutil.rmtree(home, ignore_errors=True)


def _kind(item: pytest.Item) -> str | None:
    callspec = getattr(item, "callspec", None)
    return callspec.params.get("airflow_deployment") if callspec else None


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """
    Each system test runs on the deployments it is marked for (``deployments(...)``), else on the
    shared ones; and tests marked ``system_last`` run last of their deployment's (after pytest has
    grouped the tests by deployment).
    """
    kept, dropped = [], []
    for item in items:
        marker = item.get_closest_marker("deployments")
        wanted = marker.args if marker else SHARED
        (kept if _kind(item) is None or _kind(item) in wanted else dropped).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
    ordered: list[pytest.Item] = []
    last: list[pytest.Item] = []
    for i, item in enumerate(kept):
        (last if item.get_closest_marker("system_last") else ordered).append(item)
        following = kept[i + 1] if i + 1 < len(kept) else None
        if following is None or _kind(following) != _kind(item):  # the end of this deployment's tests
            ordered.extend(last)
            last = []
    items[:] = ordered


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    """On a failure, attach the deployment's log tail and the DAG processor's log to the report."""
    global _KEEP_HOME
    report = yield
    if report.failed and _DEPLOYMENT is not None:
        _KEEP_HOME = _KEEP != "0"
        try:
            report.sections.append((str(_DEPLOYMENT), _DEPLOYMENT.diagnostics()))
        except Exception as e:  # diagnostics must never hide the failure
            report.sections.append((str(_DEPLOYMENT), f"(no diagnostics: {e!r})"))
    return report


def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """Stop the deployment once the last system test has run, not at the end of the whole session."""
    if _DEPLOYMENT is not None and (nextitem is None or SYSTEM_DIR not in Path(nextitem.path).parents):
        _DEPLOYMENT.stop()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for home in _KEPT_HOMES:
        terminalreporter.write_line(f"system tests: the deployment's AIRFLOW_HOME (logs, database, received.jsonl) is kept in {home}")
