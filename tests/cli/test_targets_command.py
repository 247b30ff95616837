"""``airflow ordo-hooks targets`` through Airflow's own CLI parser, on the real ledger (SQLite)."""

from __future__ import annotations

import json
from datetime import timedelta

import yaml

from airflow_ordo_hooks._targets import fingerprint
from airflow_ordo_hooks.cli.definition import get_cli_commands
from airflow_ordo_hooks.server.health import targets
from tests.cli.test_commands import cli
from tests.server.reported import SCHEDULE, SECRET_URL, T0, attempt, item, record

FINE = "https://fine.example.com/hooks/another-secret"


def test_targets_shows_each_targets_health_worst_first_in_every_output(ledger, capsys):
    record(ledger, [
        item(task_id="a", target=FINE, outcome="delivered", attempts=[attempt(200)]),
        item(task_id="b", attempts=[attempt(503, T0 - timedelta(seconds=1)), attempt(None, T0, error="connection refused")]),
        item(task_id="c", dag_id="tea_shop", outcome="pending", attempts=[]),
    ], by="worker", schedule=SCHEDULE, now=T0)
    ledger.commit()

    code, out = cli("targets", "-o", "json")
    assert code == 0 and "secret" not in out and "s3cr3t" not in out
    shown = json.loads(out)
    assert shown == targets(ledger)[0]  # whole, as the API answers it
    assert [t["target_fingerprint"] for t in shown] == [fingerprint(SECRET_URL), fingerprint(FINE)]
    worst = shown[0]
    assert (worst["failing"], worst["failed_24h"], worst["attempts_24h"], worst["pending"]) == (True, 2, 2, 2)
    assert (worst["dag_ids"], worst["last_error"]) == (["coffee_shop", "tea_shop"], "connection refused")
    assert yaml.safe_load(cli("targets", "-o", "yaml")[1]) == shown

    code, out = cli("targets", "-o", "plain")
    assert code == 0
    lines = [line.split() for line in out.splitlines() if line.strip()]
    assert lines[0][:4] == ["target", "fingerprint", "dags", "failing"]
    assert lines[1][:5] == [worst["target_masked"], fingerprint(SECRET_URL), "coffee_shop,", "tea_shop", "yes"]
    assert "2/2" in lines[1] and "(100%)" in lines[1] and lines[1][-1] == "2"
    assert capsys.readouterr().err == ""  # every target was shown


def test_targets_of_one_dag_and_at_most_a_limit(ledger, capsys):
    record(ledger, [item(task_id="a", target=FINE, attempts=[attempt(200)], outcome="delivered"),
                    item(task_id="b", dag_id="tea_shop")], by="worker", schedule=SCHEDULE, now=T0)
    ledger.commit()
    code, out = cli("targets", "--dag-id", "tea_shop", "-o", "json")
    assert code == 0 and [t["target_fingerprint"] for t in json.loads(out)] == [fingerprint(SECRET_URL)]
    code, out = cli("targets", "--limit", "1", "-o", "json")
    assert code == 0 and [t["target_fingerprint"] for t in json.loads(out)] == [fingerprint(SECRET_URL)]
    assert "The 1 worst of 2 targets" in capsys.readouterr().err  # aside: the JSON stays whole
    code, out = cli("targets", "--limit", "0")
    assert code == 1 and "--limit: expected a number of targets from 1 to 200, got 0" in out


def test_the_group_names_the_targets_command():
    (group,) = get_cli_commands()
    assert "targets" in group.help and "targets" in [c.name for c in group.subcommands]
