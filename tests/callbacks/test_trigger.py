"""What a trigger_job parent passes to its child: honoured only when this package signed it for that very run, and bounded."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import logging
from datetime import datetime, timezone
from types import SimpleNamespace

import pytest

from airflow_ordo_hooks import _settings

from airflow_ordo_hooks.callbacks import trigger
from airflow_ordo_hooks.callbacks.payloads import job_event_payload, run_event_payload
from airflow_ordo_hooks.callbacks.trigger import CONF_KEY, MAX_CHAIN, MAX_CONTEXT_BYTES, child_conf, cycle, parent_context

PARENT = {"status": 3, "log": "boom", "name": "coffee", "triggered_by": "cron", "retries_exhausted": True}
CHILD = ("child", "trigger_job__on_error__0123456789abcdef01234567")  # the child run a context is signed for
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=timezone.utc)


def _child_conf(event="on_error", dag_id="coffee", payload=PARENT, conf=None, run_id="manual__parent", child=CHILD):
    """The conf a parent run ``run_id`` of ``dag_id`` writes for run ``child`` (DAG id, run id)."""
    return child_conf(event, conf, dag_id, run_id, payload, target=child[0], target_run_id=child[1])


def _signed(body, child=CHILD):
    """``body`` under the conf key, with a signature made with the deployment's key for ``child``,
    as only a leaked key or a bug could make: the shape is then all that is left to check."""
    raw = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str).encode()
    return {CONF_KEY: {**body, "signature": trigger._signature(_settings.context_key(), *child, raw)}}


@pytest.fixture(autouse=True)
def _fresh_warnings():
    """Each test sees its own warnings: the module warns once per run and reason, for the process's life."""
    trigger._warn_once.cache_clear()


def _warnings(caplog):
    return [r for r in caplog.records if r.name == "airflow_ordo_hooks.callbacks.trigger" and r.levelno == logging.WARNING]


def test_a_context_written_by_a_parent_is_honoured():
    context = parent_context(_child_conf("on_retries_exhausted"), *CHILD)
    assert context == {"triggered_by": "retries_exhausted[coffee]", "triggered_by_job_run": PARENT, "chain": ["coffee"]}


@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(lambda c: c[CONF_KEY].pop("signature"), id="unsigned"),
        pytest.param(lambda c: c[CONF_KEY].update(triggered_by="job[someone_else]"), id="triggered_by altered"),
        pytest.param(lambda c: c[CONF_KEY]["triggered_by_job_run"].update(status=0), id="parent payload altered"),
        pytest.param(lambda c: c[CONF_KEY].update(chain=["a", "b", "c"]), id="chain altered to suppress triggers"),
        pytest.param(lambda c: c[CONF_KEY].update(signature="v2," + "0" * 64), id="made-up signature"),
        pytest.param(lambda c: c.update({CONF_KEY: "job[x]"}), id="not a mapping"),
    ],
)
def test_a_forged_or_altered_context_is_ignored_and_logged(forge, caplog):
    conf = copy.deepcopy(_child_conf())
    forge(conf)
    with caplog.at_level(logging.WARNING, logger="airflow_ordo_hooks.callbacks.trigger"):
        assert parent_context(conf, *CHILD) == {}
    assert "is ignored" in caplog.text
    assert cycle("coffee", conf, *CHILD) is None, "a forged chain neither suppresses nor fakes a cycle"


def _nested(depth):
    value: dict = {}
    for _ in range(depth):
        value = {"x": value}
    return value


def _circular():
    value: dict = {"triggered_by": "job[x]"}
    value["triggered_by_job_run"] = value
    return value


# Each is a context a conf may hold; none may cost the run an event or fail its trigger tasks.
MALFORMED = {
    "signature not ASCII": {"triggered_by": "job[x]", "signature": "é"},
    "signature of the right length, one character not ASCII": {"chain": [], "signature": "v2," + "0" * 63 + "é"},
    "signature a lone surrogate": {"chain": [], "signature": "v2,\ud800"},
    "signature not text": {"chain": [], "signature": 12345},
    "signature bytes": {"chain": [], "signature": b"v2," + b"0" * 64},
    "a key that is not text": {1: "x", "chain": [], "signature": "v2,"},
    "a tuple key deep inside": {"triggered_by_job_run": {("a", "b"): 1}, "signature": "v2,"},
    "nested 5000 deep": {"triggered_by_job_run": _nested(5_000), "signature": "v2,"},
    "nested just past the bound": {"triggered_by_job_run": _nested(trigger.MAX_DEPTH), "signature": "v2,"},
    "circular": _circular(),
    "a number of 5000 digits": {"triggered_by_job_run": {"status": 10**5000}, "signature": "v2,"},
    "NaN": {"triggered_by_job_run": {"duration": float("nan")}, "signature": "v2,"},
    "a value that is not JSON": {"triggered_by_job_run": {"log": object()}, "signature": "v2,"},
    "a huge non-ASCII log": {"triggered_by_job_run": {"log": "é" * (4 * MAX_CONTEXT_BYTES)}, "signature": "v2,"},
    "a list of a million items": {"chain": [0] * 1_000_000, "signature": "v2,"},
    "not a mapping but a list": ["job[x]", "v2,"],
}
# Correctly signed, yet not of the shape this package writes (a leaked key, or a bug).
MALFORMED_SIGNED = {
    "signed, chain is text": {"triggered_by": "job[a]", "triggered_by_job_run": {}, "chain": "a,b"},
    "signed, chain holds numbers": {"triggered_by": "job[a]", "triggered_by_job_run": {}, "chain": [1, 2]},
    "signed, chain too long": {"triggered_by": "job[a]", "triggered_by_job_run": {}, "chain": ["a"] * (MAX_CHAIN + 1)},
    "signed, triggered_by is a list": {"triggered_by": ["job[a]"], "triggered_by_job_run": {}, "chain": ["a"]},
    "signed, triggered_by_job_run is text": {"triggered_by": "job[a]", "triggered_by_job_run": "x", "chain": ["a"]},
    "signed, no chain": {"triggered_by": "job[a]", "triggered_by_job_run": {}},
}


@pytest.mark.parametrize(
    "context, sign",
    [pytest.param(v, False, id=k) for k, v in MALFORMED.items()] + [pytest.param(v, True, id=k) for k, v in MALFORMED_SIGNED.items()],
)
def test_a_malformed_context_is_ignored_with_one_warning_and_costs_no_event(context, sign, caplog):
    conf = _signed(context) if sign else {CONF_KEY: context}
    dag_id, run_id = CHILD
    with caplog.at_level(logging.WARNING, logger="airflow_ordo_hooks.callbacks.trigger"):
        assert parent_context(conf, dag_id, run_id) == {}
        assert parent_context(conf, dag_id, run_id) == {}
        ti = SimpleNamespace(dag_id=dag_id, task_id="t", run_id=run_id, map_index=-1, try_number=1, max_tries=0,
                             state="failed", start_date=NOW, log_url="http://airflow/log")
        dag_run = SimpleNamespace(dag_id=dag_id, run_id=run_id, run_type="manual", conf=conf, start_date=NOW, run_after=NOW,
                                  end_date=NOW, state="failed")
        payload = job_event_payload({"ti": ti, "dag_run": dag_run, "exception": None}, log="", retries_exhausted=False, now=NOW)
        run_payload = run_event_payload({"dag_run": dag_run}, now=NOW)
        # a trigger_job of this run still starts its child, as the first of a chain
        child = _child_conf(dag_id=dag_id, run_id=run_id, conf=conf, payload=payload, child=("coffee", "r"))
        assert cycle("coffee", conf, dag_id, run_id) is None

    assert [r.getMessage() for r in _warnings(caplog)] == [_warnings(caplog)[0].getMessage()], "one warning, once per run"
    assert "is ignored" in caplog.text
    assert payload["triggered_by"] == run_payload["triggered_by"] == "manual"
    assert "triggered_by_job_run" not in payload and "triggered_by_job_run" not in run_payload
    assert parent_context(child, "coffee", "r")["chain"] == [dag_id]


def test_a_context_signed_for_one_run_is_not_honoured_in_another_dag_or_run(caplog):
    """A signed context copied from a child run's conf into another run's: a replay."""
    grandparent = _child_conf("on_success", dag_id="a", child=("b", "run_of_b"))
    conf = _child_conf("on_success", dag_id="b", run_id="run_of_b", conf=grandparent, child=("c", "run_of_c"))
    assert parent_context(conf, "c", "run_of_c")["chain"] == ["a", "b"]
    assert cycle("a", conf, "c", "run_of_c") == ["a", "b", "c", "a"], "the genuine chain closes a cycle"

    with caplog.at_level(logging.WARNING, logger="airflow_ordo_hooks.callbacks.trigger"):
        for dag_id, run_id in (("e", "run_of_c"), ("c", "another_run_of_c")):
            assert parent_context(conf, dag_id, run_id) == {}
            assert cycle("a", conf, dag_id, run_id) is None, "a copied chain does not stop a real trigger_job"
            assert cycle("b", conf, dag_id, run_id) is None
            dag_run = SimpleNamespace(dag_id=dag_id, run_id=run_id, run_type="manual", conf=conf, start_date=NOW, run_after=NOW,
                                      end_date=NOW, state="success")
            payload = run_event_payload({"dag_run": dag_run}, now=NOW)
            assert payload["triggered_by"] == "manual" and "triggered_by_job_run" not in payload, "no forged parent"
    assert caplog.text.count("its signature does not match") == 2


def test_a_context_signed_the_old_way_for_no_particular_run_is_not_honoured(caplog):
    body = {"triggered_by": "job[coffee]", "triggered_by_job_run": PARENT, "chain": ["coffee"]}
    raw = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()
    conf = {CONF_KEY: {**body, "signature": "v1," + hmac.new(_settings.context_key(), raw, hashlib.sha256).hexdigest()}}
    with caplog.at_level(logging.WARNING, logger="airflow_ordo_hooks.callbacks.trigger"):
        assert parent_context(conf, *CHILD) == {}
    assert "its signature does not match" in caplog.text


def test_the_warning_names_what_is_wrong(caplog):
    conf = _child_conf()
    conf[CONF_KEY]["triggered_by"] = "job[mallory]"
    with caplog.at_level(logging.WARNING, logger="airflow_ordo_hooks.callbacks.trigger"):
        parent_context(conf, *CHILD)
    assert f"the conf['airflow_ordo_hooks'] of run {CHILD[1]} of child is ignored: its signature does not match" in caplog.text


def test_a_context_larger_than_the_bound_is_ignored_and_a_parent_payload_is_cut_to_fit():
    huge = {**PARENT, "log": "x" * (3 * MAX_CONTEXT_BYTES), "triggered_by_job_run": {"log": "y" * MAX_CONTEXT_BYTES}}
    conf = _child_conf(payload=huge)
    assert len(json.dumps(conf)) < MAX_CONTEXT_BYTES
    context = parent_context(conf, *CHILD)
    assert context["triggered_by_job_run"]["log"].endswith("x" * 1000), "the log's tail is kept"
    assert "triggered_by_job_run" not in context["triggered_by_job_run"], "its own parents go first"

    conf[CONF_KEY]["padding"] = "z" * MAX_CONTEXT_BYTES  # too large, whatever its signature
    assert parent_context(conf, *CHILD) == {}


def test_a_parent_payload_is_sent_as_the_child_reads_it_back():
    """What is signed is plain JSON (as every path sends it), so the child's check sees the same bytes."""
    payload = {**PARENT, "log": "undecodable \udcff byte", "duration": float("inf"), "when": NOW}
    conf = json.loads(json.dumps(_child_conf(payload=payload)))
    context = parent_context(conf, *CHILD)
    assert context["triggered_by_job_run"]["log"] == "undecodable \ufffd byte"
    assert context["triggered_by_job_run"]["duration"] is None
    assert context["triggered_by_job_run"]["when"] == str(NOW)


def test_a_deep_line_of_parents_is_dropped_to_fit_the_depth_bound():
    deep = PARENT
    for _ in range(trigger.MAX_DEPTH):
        deep = {**PARENT, "triggered_by_job_run": deep}
    context = parent_context(_child_conf(payload=deep), *CHILD)
    assert context["triggered_by_job_run"]["name"] == "coffee"
    assert "triggered_by_job_run" not in context["triggered_by_job_run"]


def test_the_key_comes_from_the_setting_first(monkeypatch):
    conf = _child_conf()
    monkeypatch.setenv("AIRFLOW__ORDO_HOOKS__CONTEXT_SECRET", "another deployment's secret")
    assert _settings.context_key() is not None
    assert parent_context(conf, *CHILD) == {}, "a context signed with another secret is not honoured"
    assert parent_context(_child_conf(), *CHILD) != {}


def test_a_real_cycle_is_still_found():
    first = _child_conf("on_success", dag_id="a", child=("b", "run_of_b"))
    second = _child_conf("on_success", dag_id="b", run_id="run_of_b", conf=first, child=("c", "run_of_c"))
    assert cycle("a", second, "c", "run_of_c") == ["a", "b", "c", "a"]


def test_a_long_lived_process_remembers_a_bounded_number_of_runs_it_warned_about(caplog):
    """The DAG processor and the API server meet run after run: what they remember having warned about stays bounded."""
    conf = {CONF_KEY: MALFORMED["not a mapping but a list"]}
    with caplog.at_level(logging.WARNING, logger="airflow_ordo_hooks.callbacks.trigger"):
        for n in range(trigger.WARNED_RUNS + 50):
            assert parent_context(conf, "coffee", f"r{n}") == {}
        assert parent_context(conf, "coffee", f"r{trigger.WARNED_RUNS + 49}") == {}  # a recent one: not warned again
    assert len(_warnings(caplog)) == trigger.WARNED_RUNS + 50
    assert trigger._warn_once.cache_info().currsize == trigger.WARNED_RUNS
