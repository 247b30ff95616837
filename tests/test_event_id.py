"""The webhook-id of an event's delivery: one per (dag, run, task, map index, try, event, target), whoever sends it."""

from __future__ import annotations

import itertools
import re

from airflow_ordo_hooks._event_id import webhook_id

FACTS = ("coffee", "manual__2026-11-23", "brew", -1, 2, "on_error", "https://example.com/hook")


def test_the_same_facts_give_the_same_id_in_the_standard_webhooks_shape():
    assert webhook_id(*FACTS) == webhook_id(*FACTS)
    assert re.fullmatch(r"msg_[a-z2-7]{26}", webhook_id(*FACTS))


def test_each_fact_changes_the_id():
    others = ("tea", "manual__2026-11-24", "pour", 0, 3, "on_retries_exhausted", "https://example.com/other")
    ids = {webhook_id(*FACTS)}
    for i, other in enumerate(others):
        facts = list(FACTS)
        facts[i] = other
        ids.add(webhook_id(*facts))
    assert len(ids) == len(others) + 1


def test_fields_cannot_run_into_each_other():
    # "a" + "b_c" and "a_b" + "c" must not collide: the facts are separated, not concatenated
    assert webhook_id("a", "b_c", None, -1, 0, "on_success", "x") != webhook_id("a_b", "c", None, -1, 0, "on_success", "x")
    run_ids = [webhook_id("d", "r", t, m, n, "on_error", "u") for t, m, n in itertools.product(["t", None], [-1, 0], [0, 1])]
    assert len(set(run_ids)) == len(run_ids)
