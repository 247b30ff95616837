"""What the package relies on in Airflow beyond its public interfaces: each check fails the day Airflow changes it."""

from __future__ import annotations

from datetime import datetime

import pytest

from airflow_ordo_hooks import _airflow

pytestmark = pytest.mark.airflow


def test_a_callback_added_after_the_dag_was_created_reaches_the_serialized_dag():
    from airflow.sdk import DAG
    from airflow.serialization.serialized_objects import DagSerialization

    dag = DAG("late_callback", schedule=None, start_date=datetime(2026, 1, 1))
    assert dag.has_on_failure_callback is False
    _airflow.add_dag_callback(dag, "on_failure_callback", print)
    _airflow.add_dag_callback(dag, "on_failure_callback", repr)
    assert dag.on_failure_callback == [print, repr]
    # the scheduler reads this flag of the serialized DAG to decide whether to ask for the callback
    assert DagSerialization.to_dict(dag)["dag"]["has_on_failure_callback"] is True
    assert "has_on_success_callback" not in DagSerialization.to_dict(dag)["dag"] or not dag.has_on_success_callback


class _TaskSdk:
    """What ``context["ti"].get_task_states`` answers: one entry per task instance of the run."""

    def __init__(self, states):
        self.states = states
        self.asked = []

    def get_task_states(self, **query):
        self.asked.append(query)
        return {"run": self.states}


def test_task_state_keys_are_read_against_the_dags_task_ids():
    ti = _TaskSdk({"load": "success", "load_2": "failed", "split_0": "success", "split_11": "upstream_failed", "gone_1": "success"})
    found = _airflow.task_states(ti, {"load", "load_2", "split"}, "dag", "run")
    assert sorted(found) == [("load", -1, "success"), ("load_2", -1, "failed"), ("split", 0, "success"), ("split", 11, "upstream_failed")]
    assert ti.asked == [{"dag_id": "dag", "run_ids": ["run"]}]


def test_a_task_id_that_ends_like_a_map_index_is_matched_longest_first():
    ti = _TaskSdk({"a_b_3": "success", "a_7": "failed"})
    assert sorted(_airflow.task_states(ti, {"a", "a_b"}, "dag", "run")) == [("a", 7, "failed"), ("a_b", 3, "success")]
