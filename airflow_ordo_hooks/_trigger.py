"""cheek's ``trigger_job`` context: what a parent passes to the run it starts, and the guard against cycles. Pure.

The child's ``conf`` carries, under the key ``airflow_ordo_hooks``, ``triggered_by``
(``job[<parent>]`` or ``retries_exhausted[<parent>]``), ``triggered_by_job_run`` (the parent's
payload for that event) and ``chain`` (the DAG ids that led to it). A DAG already in the chain is
not triggered again: cheek has no such guard and recurses forever.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow_ordo_hooks._payloads import CONF_KEY, parent_context


def triggered_by(event: str, parent: str) -> str:
    """cheek's ``triggered_by`` of a child: ``retries_exhausted[<parent>]`` or ``job[<parent>]``."""
    return f"retries_exhausted[{parent}]" if event == "on_retries_exhausted" else f"job[{parent}]"


def chain_of(conf: Mapping[str, Any] | None, dag_id: str) -> list[str]:
    """The DAG ids from the first parent down to ``dag_id``, as the run's conf records them."""
    chain = parent_context(conf).get("chain")
    return [*(chain if isinstance(chain, list) else []), dag_id]


def child_conf(event: str, dag_id: str, parent_conf: Mapping[str, Any] | None, payload: Mapping[str, Any]) -> dict[str, Any]:
    """The conf of a run started by ``trigger_job``: the parent's context under one reserved key."""
    return {
        CONF_KEY: {
            "triggered_by": triggered_by(event, dag_id),
            "triggered_by_job_run": dict(payload),
            "chain": chain_of(parent_conf, dag_id),
        }
    }


def cycle(target: str, dag_id: str, parent_conf: Mapping[str, Any] | None) -> list[str] | None:
    """The chain that ``target`` would close, if it is already in it (``None`` when starting it is safe)."""
    chain = chain_of(parent_conf, dag_id)
    return [*chain, target] if target in chain else None


def task_id_for(source_task_id: str, event: str, target: str) -> str:
    """The id of the ``TriggerJobOperator`` task that starts ``target`` for ``event`` of ``source_task_id``."""
    return f"{source_task_id}__{event}__trigger_{target}"
