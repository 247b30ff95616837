"""The notifier classes, in real callbacks of a real run."""

from __future__ import annotations

import pytest

from airflow_ordo_hooks import JobEventSlackWebhookNotifier, JobEventWebhookNotifier
from airflow_ordo_hooks.hooks.webhook import TargetError


@pytest.mark.airflow
def test_notifiers_send_cheeks_payloads_from_the_callbacks_they_are_put_in(run_dag, receiver):
    run_dag("cheek_notifiers")

    got = [(r.path, r.json.get("retry_attempt"), r.json.get("retries_exhausted")) for r in receiver.requests]
    assert got == [
        ("/cheek_notifiers/job/on_error", 0, False),  # templated target, rendered with the context
        ("/cheek_notifiers/job/on_error", 1, False),
        ("/cheek_notifiers/job/on_retries_exhausted", None, None),
    ]
    discord = receiver.requests[-1].json
    assert set(discord) == {"content"} and discord["content"].startswith("job (exitcode -1):\n")


def test_a_bad_target_or_event_is_refused_when_the_dag_is_parsed():
    with pytest.raises(TargetError, match="'ftp://x'"):
        JobEventWebhookNotifier("ftp://x")
    with pytest.raises(ValueError, match="JobEventSlackWebhookNotifier: unknown event 'on_exhausted'"):
        JobEventSlackWebhookNotifier("https://hooks.example/x", event="on_exhausted")
