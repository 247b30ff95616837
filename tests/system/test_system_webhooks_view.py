"""The Webhooks view in a real browser (Debian's chromium, driven by Playwright) against ``airflow standalone``:
log in, open a failed run's Webhooks tab, see the delivery its receiver refused, bring the receiver
up, press Redeliver, and see it delivered, with the same ``webhook-id`` the callback sent first.

Screenshots of each step go to ``$ORDO_HOOKS_SCREENSHOTS`` if set (the README's are made so), else
to the deployment's home, kept when a test fails."""

from __future__ import annotations

import os
import re
import time
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote

import pytest

from airflow_ordo_hooks._targets import fingerprint
from airflow_ordo_hooks.testing.receiver import WebhookReceiver
from tests.system.deployments import ADMIN_PASSWORD

pytestmark = pytest.mark.system

DAG_ID = "system_webhooks_view"
RECEIVER_PATH = "/orders/on_error"
CHROMIUM = "/usr/bin/chromium"
# flags for a machine with no network but loopback: no background connections, no first-run work
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
QUIET = 15.0
"""Seconds the API server's own redelivery must leave the delivery alone, so that what the button does is seen."""


@pytest.fixture
def page(airflow_deployment, tmp_path):
    if airflow_deployment.kind != "local":
        pytest.skip("the browser test runs against airflow standalone (the local deployment); the view is the API server's alone")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1500, "height": 900})
        context.set_default_timeout(30_000)
        try:
            yield context.new_page()
        finally:
            browser.close()


def _shots(airflow_deployment) -> Path:
    where = Path(os.environ.get("ORDO_HOOKS_SCREENSHOTS") or airflow_deployment.home / "screenshots")
    where.mkdir(parents=True, exist_ok=True)
    return where


def _deliveries(airflow_deployment, run_id: str) -> list[dict]:
    query = f"dag_id={DAG_ID}&run_id={quote(run_id)}"
    return airflow_deployment.get(f"/ordo-hooks/api/v1/deliveries?{query}")["deliveries"]


def _quiet_delivery(airflow_deployment, run_id: str, timeout: float = 150.0) -> dict:
    """The run's one delivery once the API server has tried it and its next attempt is at least QUIET seconds away."""
    deadline = time.monotonic() + timeout
    while True:
        found = _deliveries(airflow_deployment, run_id)
        if len(found) == 1 and found[0]["state"] == "pending" and found[0]["attempt_count"] >= 2:
            due = datetime.fromisoformat(found[0]["next_attempt_at"])
            if (due - datetime.now(timezone.utc)).total_seconds() >= QUIET:
                return found[0]
        assert time.monotonic() < deadline, f"no delivery waiting {QUIET} s for its next attempt: {found}"
        time.sleep(1)


def test_redeliver_a_failed_runs_webhook_from_its_webhooks_view(airflow_deployment, page):
    from playwright.sync_api import expect

    run_id = airflow_deployment.trigger(DAG_ID)
    assert airflow_deployment.wait_for_run(DAG_ID, run_id)["state"] == "failed"
    delivery = _quiet_delivery(airflow_deployment, run_id)
    assert "Connection refused" in delivery["last_error"] or "refused" in delivery["last_error"], delivery
    shots = _shots(airflow_deployment)

    # log in: the UI sends an unknown user to the auth manager's login form, then back
    base = airflow_deployment.base_url
    page.goto(f"{base}/dags/{DAG_ID}/runs/{quote(run_id, safe='')}/plugin/webhooks-run")
    page.locator("input[name=username]").fill("admin")
    page.locator("input[name=password]").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    # the run's Webhooks tab: its delivery, not delivered, with the receiver's refusal
    view = page.frame_locator("iframe[title=Webhooks]")
    row = view.locator(f"tr[data-webhook-id='{delivery['webhook_id']}']")
    expect(row).to_be_visible()
    expect(view.locator("#deliveries tbody tr")).to_have_count(1)
    expect(row.locator("td.state")).to_have_text("pending")
    expect(row).to_contain_text("on_error")
    expect(row).to_contain_text("load_orders")
    expect(row.locator("td.target")).to_contain_text("127.0.0.1")
    row.click()  # its attempts and payload
    expect(view.locator("#detail-payload")).to_contain_text('"name": "load_orders"')
    expect(view.locator("#detail-attempts tbody tr")).to_have_count(delivery["attempt_count"])
    page.screenshot(path=shots / "webhooks-run-failed.png")

    # the receiver is back; Redeliver sends it now, not at its next scheduled attempt
    with WebhookReceiver(port=airflow_deployment.view_port) as receiver:
        pressed = datetime.now(timezone.utc)
        row.get_by_role("button", name="Redeliver").click()
        expect(row.locator("td.state")).to_have_text("delivered (HTTP 200)")
        (request,) = receiver.wait_for(1, path=RECEIVER_PATH)
    page.screenshot(path=shots / "webhooks-run-redelivered.png")

    assert request.header("webhook-id") == delivery["webhook_id"]
    shown = airflow_deployment.get(f"/ordo-hooks/api/v1/deliveries/{delivery['webhook_id']}")
    assert request.json == shown["payload"] and request.json["name"] == "load_orders"  # the payload the view shows is what was sent
    (after,) = _deliveries(airflow_deployment, run_id)
    assert (after["state"], after["attempt_count"]) == ("delivered", delivery["attempt_count"] + 1)
    delivered_at = datetime.fromisoformat(after["updated_at"])
    assert delivered_at < datetime.fromisoformat(delivery["next_attempt_at"]), "delivered by the button, before its schedule's turn"
    assert (delivered_at - pressed).total_seconds() < QUIET

    # the deployment-wide page, filtered to this DAG
    page.goto(f"{base}/plugin/webhooks")
    nav = page.frame_locator("iframe[title=Webhooks]")
    expect(nav.locator("#range")).not_to_be_empty()  # the first page, of every DAG, is in
    page.screenshot(path=shots / "webhooks-all.png")
    nav.locator("#filter-dag").fill(DAG_ID)
    nav.locator("#filter-dag").press("Enter")
    expect(nav.locator("#deliveries tbody tr")).to_have_count(1)
    expect(nav.locator(f"tr[data-webhook-id='{delivery['webhook_id']}'] td.state")).to_have_text("delivered (HTTP 200)")
    nav.locator("#filter-failed").check()
    expect(nav.locator("#empty")).to_be_visible()
    nav.locator("#filter-failed").uncheck()

    # the Targets tab: the receiver's target, working again, and its deliveries one click away
    target = fingerprint(f"http://127.0.0.1:{airflow_deployment.view_port}{RECEIVER_PATH}")
    nav.locator("#tab-targets").click()
    expect(nav.locator("#targets-page")).to_be_visible()
    expect(nav.locator("#deliveries-page")).to_be_hidden()
    health = nav.locator(f"tr[data-fingerprint='{target}']")
    expect(health.locator("td.state")).to_have_text("working")
    expect(health.locator("td.last-success")).not_to_be_empty()
    expect(health.locator("td.rate")).to_have_text(re.compile(r"^\d+/\d+ \(\d+%\)$"))
    expect(health.locator("td.dags")).to_contain_text(DAG_ID)
    health.locator("td.target a").click()
    expect(nav.locator("#deliveries-page")).to_be_visible()
    expect(nav.locator("#filter-target-name")).to_contain_text(target)
    expect(nav.locator(f"tr[data-webhook-id='{delivery['webhook_id']}']")).to_be_visible()
    nav.locator("#clear-target").click()
    expect(nav.locator("#filter-target")).to_be_hidden()
