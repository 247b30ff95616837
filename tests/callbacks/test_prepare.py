"""A hooked try's preparation while it runs: its events' imports, the ledger's connection and client, made beforehand."""

from __future__ import annotations

import json

import pytest

from tests.callbacks.test_job_event import success_context


_PREPARED_THEN_FIRED = '''
import json, sys, threading
from datetime import datetime, timezone
from types import SimpleNamespace

from airflow_ordo_hooks import attach_hooks  # what a DAG file imports to attach hooks
from airflow_ordo_hooks.dag_file.job_events import parse_hooks
from airflow_ordo_hooks.callbacks import job_event, prepare

job_events = parse_hooks({"on_success": {"notify_webhook": [sys.argv[1]]}})  # as the DAG file's parse does
ours = lambda: {m for m in sys.modules if m.startswith("airflow_ordo_hooks")}
before = ours()
now = datetime.now(timezone.utc)
ti = SimpleNamespace(dag_id="coffee", task_id="brew", run_id="r1", map_index=-1, try_number=1, max_tries=0,
                     state="success", start_date=now, log_url="http://localhost:8080/log")
context = {"ti": ti, "task": SimpleNamespace(retries=0), "exception": None,
           "dag_run": SimpleNamespace(run_type="manual", conf={}, start_date=now, run_after=now, dag_id="coffee", run_id="r1")}
prepare.PrepareEvents(job_events)(context)
[t.join(10) for t in threading.enumerate() if t.name == "ordo-hooks-prepare"]
prepared = ours()
job_event.fire(["on_success"], job_events, context)
print(json.dumps({"prepared": sorted(prepared - before), "fired": sorted(ours() - prepared)}))
'''


def test_a_prepared_try_imports_nothing_of_the_package_when_its_event_fires(receiver, monkeypatch):
    """What an event's callbacks import is imported while the try runs, so its webhook leaves without waiting for it."""
    import subprocess
    import sys

    from airflow_ordo_hooks.callbacks.prepare import WHEN_FIRED
    from airflow_ordo_hooks.testing.receiver import Respond

    monkeypatch.setenv("AIRFLOW_CONN_LEDGER_HERE", json.dumps(
        {"conn_type": "http", "host": "127.0.0.1", "port": receiver.port, "extra": {"token": "t"}}))
    monkeypatch.setenv("AIRFLOW__ORDO_HOOKS__API_CONN_ID", "ledger_here")
    receiver.script("/ordo-hooks/api/v1/deliveries", Respond(body=b'{"deliveries": []}'))
    done = subprocess.run([sys.executable, "-c", _PREPARED_THEN_FIRED, receiver.url("/event")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    modules = json.loads(done.stdout.splitlines()[-1])
    assert set(WHEN_FIRED) <= set(modules["prepared"])
    assert modules["fired"] == []
    assert [r.path for r in receiver.requests] == ["/event", "/ordo-hooks/api/v1/deliveries"]


def _ledger_with_login(receiver, monkeypatch) -> None:
    from airflow_ordo_hooks.callbacks import ledger_client

    monkeypatch.setattr(ledger_client, "_prepared", [])  # this test's own, whatever becomes of it
    monkeypatch.setenv("AIRFLOW_CONN_LEDGER_LOGIN", json.dumps(
        {"conn_type": "http", "host": "127.0.0.1", "port": receiver.port, "login": "admin", "password": "pw"}))
    monkeypatch.setenv("AIRFLOW__ORDO_HOOKS__API_CONN_ID", "ledger_login")


def test_a_client_made_while_the_try_ran_records_its_success_with_one_request(receiver, monkeypatch):
    """The token is got while the try runs: once its webhook is delivered, recording it is one request."""
    from airflow_ordo_hooks.callbacks import ledger_client
    from airflow_ordo_hooks.dag_file.job_events import parse_hooks
    from airflow_ordo_hooks.callbacks import job_event, prepare
    from airflow_ordo_hooks.testing.receiver import Respond

    _ledger_with_login(receiver, monkeypatch)
    receiver.script("/auth/token", Respond(201, body=b'{"access_token": "tok"}'))
    receiver.script("/ordo-hooks/api/v1/deliveries", Respond(body=b'{"deliveries": []}'))
    job_events = parse_hooks({"on_success": {"notify_webhook": [receiver.url("/event")]}})

    prepare._prepare(True, ledger_client.prepare_client(after=0))  # what the try's start runs in its thread, under a supervisor
    assert [r.path for r in receiver.requests] == ["/auth/token"]
    job_event.fire(["on_success"], job_events, success_context())

    assert [r.path for r in receiver.requests] == ["/auth/token", "/event", "/ordo-hooks/api/v1/deliveries"]
    assert receiver.requests[-1].header("authorization") == "Bearer tok"
    assert ledger_client._prepared == []  # handed over once


def test_a_webhook_leaves_at_once_and_its_record_waits_for_the_client_being_made_rather_than_making_another(receiver, monkeypatch):
    import threading

    from airflow_ordo_hooks.callbacks import ledger_client
    from airflow_ordo_hooks.dag_file.job_events import parse_hooks
    from airflow_ordo_hooks.callbacks import job_event, prepare
    from airflow_ordo_hooks.testing.receiver import Respond

    _ledger_with_login(receiver, monkeypatch)
    receiver.script("/auth/token", Respond(201, body=b'{"access_token": "tok"}', delay=1.5), Respond(201, body=b'{"access_token": "two"}'))
    receiver.script("/ordo-hooks/api/v1/deliveries", Respond(body=b'{"deliveries": []}'))
    job_events = parse_hooks({"on_success": {"notify_webhook": [receiver.url("/event")]}})
    making = threading.Thread(target=prepare._prepare, args=(True, ledger_client.prepare_client(after=0)))
    making.start()  # the try ends while its client is still being made
    job_event.fire(["on_success"], job_events, success_context())
    making.join()

    assert [r.path for r in receiver.requests].count("/auth/token") == 1
    assert receiver.requests[-1].header("authorization") == "Bearer tok"
    token, event = (next(r for r in receiver.requests if r.path == path) for path in ("/auth/token", "/event"))
    assert event.received_at < token.received_at + 1.0, "the webhook waited for the ledger's token"


def test_a_client_made_too_long_ago_or_that_failed_is_not_used(receiver, monkeypatch):
    from airflow_ordo_hooks.callbacks import ledger_client
    from airflow_ordo_hooks.dag_file.job_events import parse_hooks
    from airflow_ordo_hooks.callbacks import job_event, prepare
    from airflow_ordo_hooks.testing.receiver import Respond

    _ledger_with_login(receiver, monkeypatch)
    monkeypatch.setenv("AIRFLOW__ORDO_HOOKS__MAX_ATTEMPTS", "1")
    new = Respond(201, body=b'{"access_token": "new"}')
    receiver.script("/auth/token", Respond(201, body=b'{"access_token": "old"}'), new, Respond(401), new)
    receiver.script("/ordo-hooks/api/v1/deliveries", *[Respond(body=b'{"deliveries": []}')] * 2)
    job_events = parse_hooks({"on_success": {"notify_webhook": [receiver.url("/event")]}})

    prepare._prepare(True, ledger_client.prepare_client(after=0))
    (made, when), = ledger_client._prepared
    ledger_client._prepared[:] = [(made, when - ledger_client.PREPARED_MAX_AGE - 1)]  # a try that ran longer than its token is trusted for
    job_event.fire(["on_success"], job_events, success_context())
    prepare._prepare(True, ledger_client.prepare_client(after=0))  # the API server refuses the login: the callback tries for itself
    job_event.fire(["on_success"], job_events, success_context())

    recorded = [r for r in receiver.requests if r.path == "/ordo-hooks/api/v1/deliveries"]
    assert [r.header("authorization") for r in recorded] == ["Bearer new", "Bearer new"]


def test_a_try_that_ends_within_a_second_makes_its_ledger_client_after_its_webhook(receiver, monkeypatch):
    """Made as the try ends, the token request would compete with the try's state report and its webhook."""
    import threading

    from airflow_ordo_hooks.callbacks import ledger_client
    from airflow_ordo_hooks.dag_file.job_events import parse_hooks
    from airflow_ordo_hooks.callbacks import job_event, prepare
    from airflow_ordo_hooks.testing.receiver import Respond

    _ledger_with_login(receiver, monkeypatch)
    receiver.script("/auth/token", *[Respond(201, body=b'{"access_token": "tok"}')] * 2)
    receiver.script("/ordo-hooks/api/v1/deliveries", Respond(body=b'{"deliveries": []}'))
    job_events = parse_hooks({"on_success": {"notify_webhook": [receiver.url("/event")]}})
    preparing = threading.Thread(target=prepare._prepare, args=(True, ledger_client.prepare_client(after=0.5)))
    preparing.start()
    job_event.fire(["on_success"], job_events, success_context())  # the try ends at once
    preparing.join()

    assert [r.path for r in receiver.requests] == ["/event", "/auth/token", "/ordo-hooks/api/v1/deliveries"]



_PARSED_BY = '''
import json, sys, threading

from airflow_ordo_hooks.callbacks import prepare

ours = lambda: {m for m in sys.modules if m.startswith("airflow_ordo_hooks")} | ({"netrc"} & set(sys.modules))
before = ours()
# a DAG file attaching hooks, parsed by the function (argv[2]) of the file (argv[1]) given
namespace = {}
exec(compile(f"def {sys.argv[2]}(attach):\\n    attach()\\n", sys.argv[1], "exec"), namespace)
namespace[sys.argv[2]](prepare.import_early_in_task_process)
namespace[sys.argv[2]](prepare.import_early_in_task_process)  # a second DAG-level attach: nothing more
threads = [t for t in threading.enumerate() if t.name == "ordo-hooks-import"]
[t.join(10) for t in threads]
print(json.dumps({"threads": len(threads), "imported": sorted(ours() - before)}))
'''


@pytest.mark.parametrize(("parser", "imports"), [
    ("airflow/sdk/execution_time/task_runner.py:parse", True),  # a task process's start
    ("airflow/dag_processing/processor.py:_parse_file", False),  # the DAG processor: it parses constantly
    ("airflow/sdk/execution_time/task_runner.py:run", False),
])
def test_a_task_process_imports_what_its_events_need_while_it_starts(parser, imports):
    """Parsed at a task process's start, the DAG file's hooks start importing what the try's events need; parsed anywhere else, nothing."""
    import subprocess
    import sys

    from airflow_ordo_hooks.callbacks.prepare import WHEN_FIRED

    done = subprocess.run([sys.executable, "-c", _PARSED_BY, *parser.split(":")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    if imports:
        assert result["threads"] == 1
        assert set(WHEN_FIRED) | {"netrc"} <= set(result["imported"])
    else:
        assert result == {"threads": 0, "imported": []}
