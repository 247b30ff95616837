"""The ledger's reads on a real database created by Airflow (SQLite): filtering, and pages newest first."""

from __future__ import annotations

from datetime import timedelta

from airflow_ordo_hooks.server.queries import query
from airflow_ordo_hooks.server.shown import as_dict
from tests.server.reported import SCHEDULE, T0, item, record


def test_query_filters_and_pages_newest_first(ledger):
    for i in range(5):
        record(ledger, [item(task_id=f"t{i}")], by="worker", schedule=SCHEDULE, now=T0 + timedelta(seconds=i))
    record(ledger, [item(dag_id="other", task_id="x")], by="worker", schedule=SCHEDULE, now=T0 + timedelta(seconds=10))
    ledger.commit()
    rows, total = query(ledger, dag_id="coffee_shop", limit=2, offset=1)
    assert total == 5 and [r.task_id for r in rows] == ["t3", "t2"]
    rows, total = query(ledger, dag_ids={"other"})
    assert total == 1 and rows[0].dag_id == "other"
    shown = as_dict(rows[0])
    assert "target_encrypted" not in shown and shown["payload"] == {"name": "brew", "status": 3}
    assert shown["attempts"][0]["number"] == 1
