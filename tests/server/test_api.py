"""The ledger's API in Airflow's real API app, served by uvicorn on loopback, with real tokens from ``/auth/token``."""

from __future__ import annotations

import json
import re
import threading
import time
import tomllib
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests

from airflow_ordo_hooks._event_id import webhook_id
from airflow_ordo_hooks._targets import fingerprint
from airflow_ordo_hooks.get_provider_info import get_provider_info
from airflow_ordo_hooks.server.shown import shown_target
from airflow_ordo_hooks.testing.embedded import serve_api_app
from airflow_ordo_hooks.testing.receiver import Respond

ROOT = Path(__file__).resolve().parents[2]
USERS = {"admin": "admin", "viewer": "viewer", "user": "user"}  # user name: SimpleAuthManager role
API = "/ordo-hooks/api/v1"


@pytest.fixture(scope="module")
def server(airflow_db, tmp_path_factory):
    """Airflow's API app (``create_app()``, as ``airflow api-server`` builds it) with the plugin, on a loopback port."""
    passwords = tmp_path_factory.mktemp("auth") / "passwords.json"
    passwords.write_text(json.dumps({name: f"pw-{name}" for name in USERS}))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", ",".join(f"{n}:{r}" for n, r in USERS.items()))
        patch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE", str(passwords))
        patch.setenv("AIRFLOW__API_AUTH__JWT_SECRET", uuid.uuid4().hex * 2)
        patch.setenv("AIRFLOW__ORDO_HOOKS__REDELIVERY_SCHEDULE", "0, 0.2, 0.2")
        patch.setenv("AIRFLOW__ORDO_HOOKS__REDELIVERY_POLL_SECONDS", "0.05")
        # the plugin from the provider's metadata, as Airflow reads it with [core] lazy_discover_providers
        # false (an editable install's entry points may predate it)
        with serve_api_app() as base:
            yield base
        # leaving the app's lifespan stopped this process's redelivery loop
        assert not any(t.name == "ordo-hooks-redelivery" for t in threading.enumerate())


class Client:
    def __init__(self, base: str, user: str | None):
        self.base, self.http = base, requests.Session()
        if user:
            answer = self.http.post(f"{base}/auth/token", json={"username": user, "password": f"pw-{user}"}, timeout=10)
            assert answer.status_code == 201, answer.text
            self.http.headers["Authorization"] = f"Bearer {answer.json()['access_token']}"

    def post(self, path, body):
        return self.http.post(f"{self.base}{API}{path}", json=body, timeout=30)

    def get(self, path, **params):
        return self.http.get(f"{self.base}{API}{path}", params=params, timeout=30)


@pytest.fixture(scope="module")
def admin(server):
    return Client(server, "admin")


@pytest.fixture(scope="module")
def viewer(server):
    return Client(server, "viewer")


def item(dag_id="ledger_api_dag", task_id="brew", target="https://hooks.example.com/services/T0/B0/secret-part", **changes):
    at = datetime.now(timezone.utc)
    base = {
        "dag_id": dag_id, "run_id": "manual__1", "task_id": task_id, "map_index": -1, "try_number": 1,
        "event": "on_error", "action": "notify_webhook", "target": target,
        "target_masked": "https://hooks.example.com/…#123456", "payload": json.dumps({"name": task_id, "status": 1}),
        "source": "callback", "outcome": "failed",
        "attempts": [{"at": at.isoformat(), "status_code": 503, "error": "HTTP 503", "elapsed_ms": 12, "by": "worker"}],
        "not_before": (at + timedelta(hours=1)).isoformat(),  # not redelivered while the test looks
    }
    base.update(changes)
    base.setdefault("webhook_id", webhook_id(base["dag_id"], base["run_id"], base["task_id"], base["map_index"],
                                             base["try_number"], base["event"], base["target"]))
    return base


def test_the_plugin_is_registered_both_ways_airflow_loads_provider_plugins():
    info = get_provider_info()
    assert info["plugins"] == [{"name": "ordo_hooks", "plugin-class": "airflow_ordo_hooks.plugins.ledger.OrdoHooksPlugin"}]
    entry_points = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]["airflow.plugins"]
    assert entry_points == {"ordo_hooks": "airflow_ordo_hooks.plugins.ledger:OrdoHooksPlugin"}
    assert info["db-managers"] == ["airflow_ordo_hooks.server.db_manager.OrdoHooksDBManager"]


def test_importing_the_plugin_builds_no_app():
    import subprocess
    import sys

    heavy = ("fastapi", "airflow_ordo_hooks.server.api", "airflow_ordo_hooks.server.models")
    code = f"import sys, airflow_ordo_hooks.plugins.ledger; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_no_token_is_401_and_a_bad_one_403(server):
    anonymous = Client(server, None)
    assert anonymous.get("/deliveries").status_code == 401
    assert anonymous.post("/deliveries", {"deliveries": [item()]}).status_code == 401
    anonymous.http.headers["Authorization"] = "Bearer not-a-token"
    assert anonymous.get("/deliveries").status_code == 403


def test_post_then_get_round_trip(admin, ledger):
    given = item()
    answer = admin.post("/deliveries", {"deliveries": [given]})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"deliveries": [{"webhook_id": given["webhook_id"], "state": "pending", "created": True}]}

    listed = admin.get("/deliveries", dag_id="ledger_api_dag", run_id="manual__1", full="true").json()
    assert listed["total_entries"] == 1
    (shown,) = listed["deliveries"]
    assert shown == admin.get(f"/deliveries/{given['webhook_id']}").json()
    assert "target_encrypted" not in shown and "target" not in shown
    # the server names the target itself, whatever the caller said (the item claims '…#123456')
    assert shown["target_masked"] == shown_target(given["target"]) != given["target_masked"]
    assert shown["payload_hidden"] is False
    assert "secret-part" not in json.dumps(shown)
    assert shown["payload"] == {"name": "brew", "status": 1}
    assert (shown["state"], shown["attempt_count"], shown["source"]) == ("pending", 1, "callback")
    assert shown["next_attempt_at"] == datetime.fromisoformat(given["not_before"]).isoformat()
    assert [(a["number"], a["status_code"], a["by"]) for a in shown["attempts"]] == [(1, 503, "worker")]
    assert admin.get("/deliveries/msg_nosuchdelivery").status_code == 404


def test_merge_rules_through_the_api(admin, ledger):
    recovery = item(source="recovery", outcome="pending", attempts=[], payload=json.dumps({"rebuilt": True}))
    assert admin.post("/deliveries", {"deliveries": [recovery]}).json()["deliveries"][0]["created"] is True
    delivered = item(outcome="delivered", attempts=[
        {"at": datetime.now(timezone.utc).isoformat(), "status_code": 200, "error": None, "elapsed_ms": 3, "by": "worker"}])
    assert admin.post("/deliveries", {"deliveries": [delivered]}).json() == {
        "deliveries": [{"webhook_id": recovery["webhook_id"], "state": "delivered", "created": False}]
    }
    late_failure = item()  # never turns a delivered delivery back to pending
    assert admin.post("/deliveries", {"deliveries": [late_failure]}).json()["deliveries"][0]["state"] == "delivered"
    shown = admin.get(f"/deliveries/{recovery['webhook_id']}").json()
    assert shown["payload"] == {"name": "brew", "status": 1}  # the callback's, not the recovery's
    assert [a["status_code"] for a in shown["attempts"]] == [200, 503]
    existing = {"dag_id": "ledger_api_dag", "webhook_ids": [recovery["webhook_id"], "msg_unknown"]}
    assert admin.post("/deliveries/existing", existing).json() == {"existing": [recovery["webhook_id"]]}
    # held for its own DAG only: asked as another DAG's, it is not there
    assert admin.post("/deliveries/existing", {**existing, "dag_id": "another_dag"}).json() == {"existing": []}
    # the same id for another event is refused, without telling which
    other = item(webhook_id=recovery["webhook_id"], dag_id="another_dag")
    answer = admin.post("/deliveries", {"deliveries": [other]})
    assert answer.status_code == 422 and "ledger_api_dag" not in answer.text


def test_a_bad_item_is_a_422_naming_the_field(admin, ledger):
    def errors(body):
        answer = admin.post("/deliveries", body)
        assert answer.status_code == 422, answer.text
        return answer.json()["detail"]

    (error,) = errors({"deliveries": [item(target="ftp://files.example.com/x")]})
    assert error["loc"] == ["body", "deliveries", 0, "target"] and "expected an http:// or https:// URL" in error["msg"]
    (error,) = errors({"deliveries": [item(), {**item(task_id="b"), "colour": "red"}]})
    assert error["loc"] == ["body", "deliveries", 1, "colour"] and error["type"] == "extra_forbidden"
    (error,) = errors({"deliveries": [item(payload="{not json")]})
    assert error["loc"][-1] == "payload" and "JSON" in error["msg"]
    (error,) = errors({"deliveries": [item(attempts=[{"at": "2026-11-23T08:00:00", "status_code": 500, "error": None,
                                                       "elapsed_ms": 1, "by": "worker"}])]})
    assert error["loc"] == ["body", "deliveries", 0, "attempts", 0, "at"]  # a time needs its time zone
    (error,) = errors({"deliveries": [item(task_id=f"t{i}") for i in range(501)]})
    assert error["loc"] == ["body", "deliveries"] and error["type"] == "too_long"
    assert admin.get("/deliveries", state="lost").status_code == 422
    assert admin.get("/deliveries", dag_id="ledger_api_dag").json()["total_entries"] == 0  # nothing was recorded


def test_each_dag_and_connection_touched_is_authorized(server, admin, viewer, ledger):
    given = item()
    assert viewer.post("/deliveries", {"deliveries": [given]}).status_code == 403  # a viewer may not record
    assert admin.post("/deliveries", {"deliveries": [given]}).status_code == 200
    assert viewer.get("/deliveries", dag_id="ledger_api_dag").json()["total_entries"] == 1
    assert viewer.get(f"/deliveries/{given['webhook_id']}").status_code == 200
    # a user may trigger runs, but not read connections: not send with a connection's credentials
    user = Client(server, "user")
    answer = user.post("/deliveries", {"deliveries": [item(target="conn:slack_alerts/services/T0/B0/X")]})
    assert answer.status_code == 403 and "slack_alerts" in answer.json()["detail"]
    assert user.post("/deliveries", {"deliveries": [item(task_id="by_user")]}).status_code == 200
    assert admin.post("/deliveries", {"deliveries": [item(target="conn:slack_alerts/services/T0/B0/X")]}).status_code == 200


@pytest.fixture
def denied(monkeypatch):
    """
    The auth manager, as an operator's would with DAG-level grants: ``viewer`` may not read the runs
    of ``ledger_hidden_dag``, nor the task logs of ``ledger_no_logs_dag``; everything else as its role says.
    """
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity

    manager = type(get_auth_manager())
    allowed = manager.is_authorized_dag

    def is_authorized_dag(self, *, method, user, access_entity=None, details=None):
        if user.get_name() == "viewer" and details is not None:
            if details.id == "ledger_hidden_dag":
                return False
            if details.id == "ledger_no_logs_dag" and access_entity == DagAccessEntity.TASK_LOGS:
                return False
        return allowed(self, method=method, user=user, access_entity=access_entity, details=details)

    monkeypatch.setattr(manager, "is_authorized_dag", is_authorized_dag)


def test_one_rule_for_reading_deliveries_whichever_route(viewer, admin, ledger, denied):
    hidden, no_logs, shown = item(dag_id="ledger_hidden_dag"), item(dag_id="ledger_no_logs_dag"), item()
    assert admin.post("/deliveries", {"deliveries": [hidden, no_logs, shown]}).status_code == 200
    # the DAG runs' read permission, on every route that reads; a refusal names only what the caller named
    listed = viewer.get("/deliveries", full="true").json()
    assert sorted(d["dag_id"] for d in listed["deliveries"]) == ["ledger_api_dag", "ledger_no_logs_dag"]
    assert listed["total_entries"] == 2
    assert viewer.get("/deliveries", dag_id="ledger_hidden_dag").status_code == 403
    one = viewer.get(f"/deliveries/{hidden['webhook_id']}")
    assert one.status_code == 404 and "ledger_hidden_dag" not in one.text  # as for an id the ledger does not hold
    refused = viewer.post(f"/deliveries/{hidden['webhook_id']}/redeliver", {})
    assert refused.status_code == 404 and "ledger_hidden_dag" not in refused.text
    assert viewer.post("/deliveries/existing", {"dag_id": "ledger_hidden_dag", "webhook_ids": [hidden["webhook_id"]]}).status_code == 403
    # a payload holds the task's log: the task logs' read permission, on every route that shows one
    by_dag = {d["dag_id"]: d for d in listed["deliveries"]}
    assert by_dag["ledger_no_logs_dag"]["payload"] is None and by_dag["ledger_no_logs_dag"]["payload_hidden"] is True
    assert by_dag["ledger_api_dag"]["payload"] == {"name": "brew", "status": 1}
    single = viewer.get(f"/deliveries/{no_logs['webhook_id']}").json()
    assert single["payload"] is None and single["payload_hidden"] is True and len(single["attempts"]) == 1
    assert admin.get(f"/deliveries/{no_logs['webhook_id']}").json()["payload"] == {"name": "brew", "status": 1}


def delivered_item(**changes):
    at = datetime.now(timezone.utc)
    return item(outcome="delivered", attempts=[{"at": at.isoformat(), "status_code": 200, "error": None, "elapsed_ms": 3,
                                                "by": "worker"}], **changes)


def test_targets_health_and_the_listing_of_one_target(admin, server, ledger):
    slack = "https://hooks.example.com/services/T0/B0/secret-part"
    other = "https://other.example.com/hooks/secret-too"
    given = [delivered_item(task_id="a"), item(task_id="b"), item(task_id="c", target=other)]
    assert admin.post("/deliveries", {"deliveries": given}).status_code == 200

    answer = admin.get("/targets")
    assert answer.status_code == 200, answer.text
    found = answer.json()
    assert found["total_entries"] == 2 and "secret" not in answer.text
    failing, mixed = found["targets"]  # the worst first: every attempt to `other` failed
    assert failing == {
        "target_masked": shown_target(other), "target_fingerprint": fingerprint(other), "actions": ["notify_webhook"],
        "dag_ids": ["ledger_api_dag"], "dag_count": 1, "deliveries": 1, "pending": 1,
        "last_success_at": None, "last_failure_at": failing["last_failure_at"], "last_error": "HTTP 503",
        "failing": True, "attempts_24h": 1, "failed_24h": 1, "failure_rate_24h": 1.0,
    }
    assert (mixed["target_fingerprint"], mixed["deliveries"], mixed["failed_24h"], mixed["attempts_24h"]) == (fingerprint(slack), 2, 1, 2)
    assert mixed["last_success_at"] is not None and mixed["pending"] == 1
    assert admin.get("/targets", limit=1).json()["targets"] == [failing]
    assert admin.get("/targets", limit=201).status_code == 422
    # the deliveries to one target, by its fingerprint, as the view's Targets page links them
    listed = admin.get("/deliveries", target=fingerprint(slack)).json()
    assert sorted(d["task_id"] for d in listed["deliveries"]) == ["a", "b"] and listed["total_entries"] == 2
    assert admin.get("/deliveries", target="not-a-fingerprint").status_code == 422
    assert Client(server, None).get("/targets").status_code == 401


def test_targets_count_only_the_deliveries_of_dags_a_user_may_read(viewer, admin, ledger, denied):
    shared, hidden = "https://shared.example.com/hook/secret-part", "https://hidden.example.com/hook/secret-part"
    later = (datetime.now(timezone.utc) + timedelta(seconds=1)).isoformat()
    given = [
        delivered_item(target=shared),
        item(dag_id="ledger_hidden_dag", target=shared,
             attempts=[{"at": later, "status_code": 500, "error": "HTTP 500", "elapsed_ms": 1, "by": "worker"}]),
        item(dag_id="ledger_hidden_dag", target=hidden),
    ]
    assert admin.post("/deliveries", {"deliveries": given}).status_code == 200
    seen = viewer.get("/targets").json()
    assert seen["total_entries"] == 1 and "ledger_hidden_dag" not in json.dumps(seen)
    (health,) = seen["targets"]
    assert (health["target_fingerprint"], health["dag_ids"], health["deliveries"], health["pending"]) == (fingerprint(shared), ["ledger_api_dag"], 1, 0)
    assert (health["failing"], health["failed_24h"], health["last_failure_at"], health["last_error"]) == (False, 0, None, None)
    assert viewer.get("/targets", dag_id="ledger_hidden_dag").status_code == 403
    assert viewer.get("/deliveries", target=fingerprint(hidden)).json() == {"deliveries": [], "total_entries": 0}
    everything = {t["target_fingerprint"]: t for t in admin.get("/targets").json()["targets"]}
    assert set(everything) == {fingerprint(shared), fingerprint(hidden)}
    assert everything[fingerprint(shared)]["failing"] is True and everything[fingerprint(shared)]["dag_count"] == 2


def test_the_api_servers_own_loop_redelivers_what_a_callback_could_not(admin, receiver, ledger):
    path = f"/api-hooks/{uuid.uuid4().hex}"
    receiver.script(path, Respond(500))  # then 200
    given = item(target=receiver.url(path), not_before=None)
    assert admin.post("/deliveries", {"deliveries": [given]}).json()["deliveries"][0]["state"] == "pending"
    deadline = time.monotonic() + 30
    while (shown := admin.get(f"/deliveries/{given['webhook_id']}").json())["state"] != "delivered":
        assert time.monotonic() < deadline, shown
        time.sleep(0.05)
    assert [(a["status_code"], a["by"]) for a in shown["attempts"]] == [(503, "worker"), (500, "api-server"), (200, "api-server")]
    assert [r.header("webhook-id") for r in receiver.requests] == [given["webhook_id"]] * 2


def failed_item(receiver_url, **changes):
    """A delivery a callback failed to make three times (its inline retries), its next attempt an hour away."""
    at = datetime.now(timezone.utc)
    attempts = [{"at": (at + timedelta(milliseconds=n)).isoformat(), "status_code": 502, "error": "HTTP 502", "elapsed_ms": 7 + n,
                 "by": "worker"} for n in range(3)]
    return item(target=receiver_url, attempts=attempts, **changes)


def give_up(ledger, *items):
    """Mark deliveries failed, as the redelivery loop does after the schedule's last step (no caller can)."""
    from sqlalchemy import update

    from airflow_ordo_hooks.server.models import Delivery

    ids = [i["webhook_id"] for i in items]
    ledger.execute(update(Delivery).where(Delivery.webhook_id.in_(ids)).values(state="failed", next_attempt_at=None))
    ledger.commit()


def test_a_page_without_payloads_and_a_payload_masked(admin, ledger):
    secret = item(payload=json.dumps({"name": "brew", "params": {"api_token": "tok-123", "password": "hunter2"}}))
    mapped = item(task_id="mapped", map_index=3)
    assert admin.post("/deliveries", {"deliveries": [secret, mapped]}).status_code == 200

    page = admin.get("/deliveries", dag_id="ledger_api_dag", full="false").json()
    assert page["total_entries"] == 2
    assert all("payload" not in d and "attempts" not in d for d in page["deliveries"])
    assert {d["webhook_id"]: d["latency_ms"] for d in page["deliveries"]} == {secret["webhook_id"]: 12, mapped["webhook_id"]: 12}
    only_mapped = admin.get("/deliveries", dag_id="ledger_api_dag", task_id="mapped", map_index=3, full="false").json()
    assert [d["webhook_id"] for d in only_mapped["deliveries"]] == [mapped["webhook_id"]]
    assert admin.get("/deliveries", dag_id="ledger_api_dag", map_index=4).json()["total_entries"] == 0

    shown = admin.get(f"/deliveries/{secret['webhook_id']}").json()
    assert shown["payload"] == {"name": "brew", "params": {"api_token": "***", "password": "***"}}


def test_redeliver_one_is_for_those_who_may_edit_the_dags_runs(server, admin, viewer, receiver, ledger):
    path = f"/redeliver-one/{uuid.uuid4().hex}"
    given = failed_item(receiver.url(path))
    assert admin.post("/deliveries", {"deliveries": [given]}).json()["deliveries"][0]["state"] == "pending"
    give_up(ledger, given)

    refused = viewer.post(f"/deliveries/{given['webhook_id']}/redeliver", {})
    assert refused.status_code == 403 and "may not redeliver deliveries of DAG 'ledger_api_dag'" in refused.json()["detail"]
    assert admin.post("/deliveries/msg_nosuchdelivery/redeliver", {}).status_code == 404
    assert viewer.get(f"/deliveries/{given['webhook_id']}").json()["state"] == "failed"

    user = Client(server, "user")  # SimpleAuthManager's "user" role may edit DAG runs
    answer = user.post(f"/deliveries/{given['webhook_id']}/redeliver", {})
    assert answer.status_code == 200, answer.text
    assert answer.json()["state"] == "pending"
    deadline = time.monotonic() + 30
    while (shown := admin.get(f"/deliveries/{given['webhook_id']}").json())["state"] != "delivered":
        assert time.monotonic() < deadline, shown
        time.sleep(0.05)
    assert [(a["status_code"], a["by"]) for a in shown["attempts"]] == [(502, "worker")] * 3 + [(200, "api-server")]
    assert [r.header("webhook-id") for r in receiver.requests] == [given["webhook_id"]]


def test_redeliver_a_run_sends_its_failing_deliveries_only(admin, viewer, receiver, ledger):
    path = f"/redeliver-run/{uuid.uuid4().hex}"
    failed = [failed_item(receiver.url(path), task_id="first"),  # given up on
              item(target=receiver.url(path), task_id="second")]  # its next attempt an hour away
    other_run = failed_item(receiver.url(path), task_id="first", run_id="manual__2")
    delivered = item(task_id="third", outcome="delivered", attempts=[
        {"at": datetime.now(timezone.utc).isoformat(), "status_code": 200, "error": None, "elapsed_ms": 3, "by": "worker"}])
    never_tried = item(task_id="fourth", source="recovery", outcome="pending", attempts=[])  # its first attempt is due an hour away
    assert admin.post("/deliveries", {"deliveries": [*failed, other_run, delivered, never_tried]}).status_code == 200
    give_up(ledger, failed[0], other_run)
    failing = admin.get("/deliveries", dag_id="ledger_api_dag", run_id="manual__1", failing="true", full="false").json()
    assert sorted(d["webhook_id"] for d in failing["deliveries"]) == sorted(d["webhook_id"] for d in failed)

    run = {"dag_id": "ledger_api_dag", "run_id": "manual__1"}
    assert viewer.post("/deliveries/redeliver", run).status_code == 403
    assert admin.post("/deliveries/redeliver", {**run, "state": "failed"}).status_code == 422
    answer = admin.post("/deliveries/redeliver", run)
    assert answer.status_code == 200, answer.text
    assert sorted(answer.json()["redelivered"]) == sorted(d["webhook_id"] for d in failed)
    receiver.wait_for(2, path=path)
    deadline = time.monotonic() + 30
    while {admin.get(f"/deliveries/{d['webhook_id']}").json()["state"] for d in failed} != {"delivered"}:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert sorted(r.header("webhook-id") for r in receiver.requests) == sorted(d["webhook_id"] for d in failed)
    assert admin.get(f"/deliveries/{other_run['webhook_id']}").json()["state"] == "failed"
    assert admin.get(f"/deliveries/{delivered['webhook_id']}").json()["attempt_count"] == 1
    assert admin.get(f"/deliveries/{never_tried['webhook_id']}").json()["attempt_count"] == 0


def test_the_webhooks_view_is_registered_and_served(server, admin):
    plugins = admin.http.get(f"{server}/api/v2/plugins", timeout=30).json()["plugins"]
    (ours,) = [p for p in plugins if p["name"] == "ordo_hooks"]
    views = {v["destination"]: (v["url_route"], v["href"]) for v in ours["external_views"]}
    assert views == {
        "nav": ("webhooks", "/ordo-hooks/webhooks"),
        "dag": ("webhooks-dag", "/ordo-hooks/webhooks?dag_id={DAG_ID}"),
        "dag_run": ("webhooks-run", "/ordo-hooks/webhooks?dag_id={DAG_ID}&run_id={RUN_ID}"),
        "task_instance": ("webhooks-task", "/ordo-hooks/webhooks?dag_id={DAG_ID}&run_id={RUN_ID}&task_id={TASK_ID}&map_index={MAP_INDEX}"),
    }
    anonymous = requests.Session()  # the page holds no data: what it shows, it reads as the logged-in user
    page = anonymous.get(f"{server}/ordo-hooks/webhooks?dag_id=x", timeout=30)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert '<script src="webhooks/view.js"' in page.text
    script = anonymous.get(f"{server}/ordo-hooks/webhooks/view.js", timeout=30)
    assert script.status_code == 200 and "api/v1/deliveries" in script.text and "api/v1/targets" in script.text
    assert "innerHTML" not in script.text  # what the ledger holds is shown as text
    # every element the script looks up is on the page: its tabs and panels too, whose ids it builds
    looked_up = set(re.findall(r'\$\("([\w-]+)"\)', script.text))
    looked_up |= {name for tab in ("deliveries", "targets") for name in (f"tab-{tab}", f"{tab}-page")}
    assert len(looked_up) > 20 and looked_up <= set(re.findall(r'\bid="([\w-]+)"', page.text))
    assert anonymous.get(f"{server}/ordo-hooks/webhooks/view.css", timeout=30).status_code == 200
    assert anonymous.get(f"{server}/ordo-hooks/webhooks/..%2Fledger_api.py", timeout=30).status_code in (404, 422)


# -- the trust boundary: what a caller may not make the API server do or say ------------------------------
def test_a_user_cannot_have_the_api_server_post_to_an_address_the_operator_did_not_allow(server, admin, ledger):
    from airflow_ordo_hooks.testing.receiver import WebhookReceiver

    user = Client(server, "user")  # a DAG author: may record deliveries of the DAGs it may trigger
    with WebhookReceiver(host="127.0.0.2") as internal:  # loopback, but not the 127.0.0.1 the tests allow
        given = item(target=internal.url("/admin/reset"), not_before=None, target_masked="https://hooks.slack.com/…#abcdef")
        answer = user.post("/deliveries", {"deliveries": [given]})
        assert answer.status_code == 200, answer.text
        deadline = time.monotonic() + 30
        while (shown := admin.get(f"/deliveries/{given['webhook_id']}").json())["state"] != "failed":
            assert time.monotonic() < deadline, shown
            time.sleep(0.05)
        assert internal.requests == []
    # the view names where the server would have sent, not where the caller said
    assert shown["target_masked"].startswith("http://127.0.0.2:") and "slack" not in shown["target_masked"]
    assert shown["attempts"][-1]["by"] == "api-server"
    assert shown["last_error"].startswith("refused by egress policy: ")
    assert "HTTP" not in shown["last_error"]  # nothing of an internal service's answer comes back


def test_a_webhook_id_that_is_not_its_events_is_refused(server, ledger):
    user = Client(server, "user")
    # the on_error id of another DAG's next run, recorded under a DAG the caller may record for
    other_dags = webhook_id("payments_dag", "scheduled__2026-12-08", "load", -1, 1, "on_error", "https://hooks.example.com/x")
    forged = item(webhook_id=other_dags, outcome="delivered", attempts=[
        {"at": datetime.now(timezone.utc).isoformat(), "status_code": 200, "error": None, "elapsed_ms": 3, "by": "worker"}])
    answer = user.post("/deliveries", {"deliveries": [forged]})
    assert answer.status_code == 422 and "not the id of this event" in answer.text
    assert "payments_dag" not in answer.text
    admin = Client(server, "admin")
    held = admin.post("/deliveries/existing", {"dag_id": "payments_dag", "webhook_ids": [other_dags]}).json()
    assert held == {"existing": []}  # payments_dag's callback will send its on_error


def test_a_caller_reports_attempts_but_cannot_rewrite_what_the_server_holds(server, ledger):
    user = Client(server, "user")  # what every DAG author holds: the `user` role
    now = datetime.now(timezone.utc)
    given = item()  # failed inline once, next attempt an hour away
    assert user.post("/deliveries", {"deliveries": [given]}).status_code == 200
    before = user.get(f"/deliveries/{given['webhook_id']}").json()
    # "delivered" without a 2xx, a schedule moved to 9999 or to 1970, another payload: none of it takes
    rewrite = item(outcome="delivered", not_before=(now + timedelta(hours=20)).isoformat(), payload=json.dumps({"forged": 1}),
                   attempts=[{"at": now.isoformat(), "status_code": 500, "error": "HTTP 500", "elapsed_ms": 1, "by": "worker"}])
    assert user.post("/deliveries", {"deliveries": [rewrite]}).json()["deliveries"][0]["state"] == "pending"
    after = user.get(f"/deliveries/{given['webhook_id']}").json()
    assert after["payload"] == before["payload"] and after["next_attempt_at"] != datetime.fromisoformat(rewrite["not_before"]).isoformat()
    assert [a["status_code"] for a in after["attempts"]] == [503, 500]  # its attempts are added, nothing else
    # made-up attempts cannot use up the API server's schedule: still pending, not failed
    many = item(attempts=[{"at": (now + timedelta(milliseconds=n)).isoformat(), "status_code": 500, "error": None,
                           "elapsed_ms": 1, "by": "worker"} for n in range(100)])
    assert user.post("/deliveries", {"deliveries": [many]}).json()["deliveries"][0]["state"] == "pending"
    # times are bounded: not_before a day ahead at most; an attempt not from the far future or past
    for bad in (item(task_id="late", not_before=(now + timedelta(days=400)).isoformat()),
                item(task_id="future", attempts=[{"at": "9999-01-01T00:00:00+00:00", "status_code": 500, "error": None,
                                                  "elapsed_ms": 1, "by": "worker"}]),
                item(task_id="ancient", attempts=[{"at": "1970-01-01T00:00:00+00:00", "status_code": 500, "error": None,
                                                   "elapsed_ms": 1, "by": "worker"}])):
        answer = user.post("/deliveries", {"deliveries": [bad]})
        assert answer.status_code == 422, bad["task_id"]
    early = item(task_id="early", source="recovery", outcome="pending", attempts=[], not_before="1970-01-01T00:00:00+00:00")
    assert user.post("/deliveries", {"deliveries": [early]}).status_code == 200
    queued = datetime.fromisoformat(user.get(f"/deliveries/{early['webhook_id']}").json()["next_attempt_at"])
    assert queued >= now  # it does not jump the queue


def test_state_changing_routes_take_only_json_from_this_origin(server, ledger):
    user = Client(server, "user")  # the `user` role may redeliver: what a cross-site page would act as
    given = item()
    assert user.post("/deliveries", {"deliveries": [given]}).status_code == 200
    url = f"{server}{API}/deliveries/{given['webhook_id']}/redeliver"
    # what a page of another site can make a browser send without a preflight: a form, text/plain, no body
    for headers, data in (({"Content-Type": "application/x-www-form-urlencoded"}, "a=1"),
                          ({"Content-Type": "text/plain"}, "{}"), ({}, None)):
        answer = user.http.post(url, headers=headers, data=data, timeout=30)
        assert answer.status_code == 415, (headers, answer.text)
    cross = user.http.post(url, json={}, headers={"Origin": "https://evil.example"}, timeout=30)
    assert cross.status_code == 403
    same = user.http.post(url, json={}, headers={"Origin": server}, timeout=30)
    assert same.status_code == 200, same.text
    assert user.get(f"/deliveries/{given['webhook_id']}").json()["state"] in ("pending", "delivering", "failed", "delivered")


def test_ingest_and_listing_are_bounded_in_bytes(server, ledger):
    from airflow_ordo_hooks.server import api

    user = Client(server, "user")

    assert api.MAX_BODY_BYTES == 64 * 1024 * 1024
    too_long = b'{"deliveries": [' + b" " * (70 * 1024 * 1024) + b"]}"
    answer = user.http.post(f"{server}{API}/deliveries", data=too_long, headers={"Content-Type": "application/json"}, timeout=60)
    assert answer.status_code == 413

    def chunks():
        yield b'{"deliveries": ['
        for _ in range(70):
            yield b" " * (1024 * 1024)
        yield b"]}"

    chunked = user.http.post(f"{server}{API}/deliveries", data=chunks(), headers={"Content-Type": "application/json"}, timeout=60)
    assert chunked.status_code == 413  # a body that does not say its length is counted as it comes
    assert user.get("/deliveries", full="true", limit=101).status_code == 422
    assert user.get("/deliveries", full="true", limit=100).status_code == 200


def test_a_busy_ledger_answers_503_with_retry_after(server, ledger, monkeypatch):
    from airflow_ordo_hooks.server import api

    user = Client(server, "user")

    monkeypatch.setattr(api, "INGEST_WAIT", 0.1)
    for _ in range(api.MAX_INGEST):
        api._ingest.acquire()
    try:
        answer = user.post("/deliveries", {"deliveries": [item()]})
    finally:
        for _ in range(api.MAX_INGEST):
            api._ingest.release()
    assert answer.status_code == 503 and answer.headers["Retry-After"] == "1"
    assert user.post("/deliveries", {"deliveries": [item()]}).status_code == 200


def test_an_api_server_without_a_fernet_key_says_so_once_when_it_starts(monkeypatch, caplog):
    import asyncio
    import logging

    from airflow_ordo_hooks.server import crypto
    from airflow_ordo_hooks.server import api

    monkeypatch.setenv("AIRFLOW__CORE__FERNET_KEY", "")
    monkeypatch.setenv("AIRFLOW__ORDO_HOOKS__LEDGER", "false")  # this test starts no redelivery
    monkeypatch.setattr(crypto, "_warned", False)

    async def start_twice():
        app = api.create_app()
        for _ in range(2):
            async with api.lifespan(app):
                pass

    with caplog.at_level(logging.WARNING, logger="airflow_ordo_hooks.server.crypto"):
        asyncio.run(start_twice())
    (said,) = [r.getMessage() for r in caplog.records if r.name == "airflow_ordo_hooks.server.crypto"]
    assert "stored in plain text" in said and "[core] fernet_key" in said
