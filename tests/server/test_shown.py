"""How a delivery is shown, on a real database created by Airflow (SQLite): its target encrypted at rest, every text masked."""

from __future__ import annotations

from sqlalchemy import select, text

from airflow_ordo_hooks.server.models import Delivery
from airflow_ordo_hooks.server.shown import target_of
from tests.server.reported import SCHEDULE, SECRET_URL, T0, attempt, item, record


def test_the_target_is_encrypted_at_rest_and_every_text_is_masked(ledger):
    conn_target = "conn:slack_alerts/services/T000/B000/XXXXsecret"
    given = [
        item(attempts=[attempt(None, error=f"ConnectionError: {SECRET_URL} refused")], target_masked=SECRET_URL),
        item(target=conn_target, target_masked=conn_target, attempts=[]),
    ]
    record(ledger, given, by="worker", schedule=SCHEDULE, now=T0)
    ledger.commit()
    dump = repr([tuple(r) for table in ("ordo_hooks_delivery", "ordo_hooks_delivery_attempt")
                 for r in ledger.execute(text(f"SELECT * FROM {table}"))])
    for secret in ("s3cr3t-path", "t0k3n", "XXXXsecret", "/services/"):
        assert secret not in dump
    rows = {r.webhook_id: r for r in ledger.scalars(select(Delivery))}
    assert target_of(rows[given[0]["webhook_id"]]) == SECRET_URL
    assert target_of(rows[given[1]["webhook_id"]]) == conn_target
    assert rows[given[1]["webhook_id"]].target_masked == "conn:slack_alerts/…"
