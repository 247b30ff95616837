"""What a trigger_job parent passes to its child: honoured only when this package signed it, and bounded."""

from __future__ import annotations

import copy
import json
import logging

import pytest

from airflow_ordo_hooks import _settings
from airflow_ordo_hooks._trigger import CONF_KEY, MAX_CONTEXT_BYTES, child_conf, cycle, parent_context

PARENT = {"status": 3, "log": "boom", "name": "coffee", "triggered_by": "cron", "retries_exhausted": True}


def test_a_context_written_by_a_parent_is_honoured():
    conf = child_conf("on_retries_exhausted", "coffee", None, PARENT)
    context = parent_context(conf)
    assert context == {"triggered_by": "retries_exhausted[coffee]", "triggered_by_job_run": PARENT, "chain": ["coffee"]}


@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(lambda c: c[CONF_KEY].pop("signature"), id="unsigned"),
        pytest.param(lambda c: c[CONF_KEY].update(triggered_by="job[someone_else]"), id="triggered_by altered"),
        pytest.param(lambda c: c[CONF_KEY]["triggered_by_job_run"].update(status=0), id="parent payload altered"),
        pytest.param(lambda c: c[CONF_KEY].update(chain=["a", "b", "c"]), id="chain altered to suppress triggers"),
        pytest.param(lambda c: c[CONF_KEY].update(signature="v1," + "0" * 64), id="made-up signature"),
        pytest.param(lambda c: c.update({CONF_KEY: "job[x]"}), id="not a mapping"),
    ],
)
def test_a_forged_or_altered_context_is_ignored_and_logged(forge, caplog):
    conf = copy.deepcopy(child_conf("on_error", "coffee", None, PARENT))
    forge(conf)
    with caplog.at_level(logging.WARNING, logger="airflow_ordo_hooks._trigger"):
        assert parent_context(conf) == {}
    assert "is ignored" in caplog.text
    assert cycle("coffee", "child", conf) is None, "a forged chain neither suppresses nor fakes a cycle"


def test_the_warning_names_what_is_wrong(caplog):
    conf = child_conf("on_error", "coffee", None, PARENT)
    conf[CONF_KEY]["triggered_by"] = "job[mallory]"
    with caplog.at_level(logging.WARNING, logger="airflow_ordo_hooks._trigger"):
        parent_context(conf)
    assert "is ignored: its signature does not match" in caplog.text


def test_a_context_larger_than_the_bound_is_ignored_and_a_parent_payload_is_cut_to_fit():
    huge = {**PARENT, "log": "x" * (3 * MAX_CONTEXT_BYTES), "triggered_by_job_run": {"log": "y" * MAX_CONTEXT_BYTES}}
    conf = child_conf("on_error", "coffee", None, huge)
    assert len(json.dumps(conf)) < MAX_CONTEXT_BYTES
    context = parent_context(conf)
    assert context["triggered_by_job_run"]["log"].endswith("x" * 1000), "the log's tail is kept"
    assert "triggered_by_job_run" not in context["triggered_by_job_run"], "its own parents go first"

    conf[CONF_KEY]["padding"] = "z" * MAX_CONTEXT_BYTES  # too large, whatever its signature
    assert parent_context(conf) == {}


def test_the_key_comes_from_the_setting_first(monkeypatch):
    conf = child_conf("on_error", "coffee", None, PARENT)
    monkeypatch.setenv("AIRFLOW__ORDO_HOOKS__CONTEXT_SECRET", "another deployment's secret")
    assert _settings.context_key() is not None
    assert parent_context(conf) == {}, "a context signed with another secret is not honoured"
    assert parent_context(child_conf("on_error", "coffee", None, PARENT)) != {}


def test_a_real_cycle_is_still_found():
    first = child_conf("on_success", "a", None, PARENT)
    second = child_conf("on_success", "b", first, PARENT)
    assert cycle("a", "c", second) == ["a", "b", "c", "a"]
