"""cheek's ``trigger_job`` context: what a parent passes to the run it starts, signed, and the guard against cycles.

The child's ``conf`` carries, under the key ``airflow_ordo_hooks``, ``triggered_by``
(``job[<parent>]`` or ``retries_exhausted[<parent>]``), ``triggered_by_job_run`` (the parent's
payload for that event), ``chain`` (the DAG ids that led to it) and ``signature``. A DAG already
in the chain is not triggered again: cheek has no such guard and recurses forever.

Anyone who may trigger a run can write any conf, so a context is honoured only when it provably
came from this package: its ``signature`` is an HMAC of the rest with a deployment secret
(:func:`airflow_ordo_hooks._settings.context_key`), and it is at most :data:`MAX_CONTEXT_BYTES`.
Any other is ignored, with one warning: the run is then treated as not started by a parent.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Mapping
from typing import Any

from airflow_ordo_hooks import _settings

log = logging.getLogger(__name__)

CONF_KEY = "airflow_ordo_hooks"
"""The key of a run's ``conf`` under which a ``trigger_job`` parent passes its context to the child."""

MAX_CONTEXT_BYTES = 65_536
"""The largest context honoured (as canonical JSON); a parent's payload is cut to fit when a child is started."""

_SIGNATURE = "signature"
_warned: set[str] = set()


def _canonical(context: Mapping[str, Any]) -> bytes:
    return json.dumps(context, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str).encode()


def _signature(key: bytes, body: bytes) -> str:
    return "v1," + hmac.new(key, body, hashlib.sha256).hexdigest()


def _ignore(why: str, value: Any) -> Mapping[str, Any]:
    seen = f"{why}:{hashlib.sha256(repr(value).encode()).hexdigest()}"  # once per context, not once per payload built
    if seen not in _warned:
        _warned.add(seen)
        log.warning("airflow-ordo-hooks: this run's conf[%r] is ignored: %s", CONF_KEY, why)
    return {}


def parent_context(conf: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """
    What a ``trigger_job`` parent passed to this run, when this package signed it; ``{}`` when the
    run was not started that way, or its context is forged, altered or too large.
    """
    value = conf.get(CONF_KEY) if isinstance(conf, Mapping) else None
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        return _ignore("it is not a mapping", value)
    body = {k: v for k, v in value.items() if k != _SIGNATURE}
    raw = _canonical(body)
    if len(raw) > MAX_CONTEXT_BYTES:
        return _ignore(f"it is larger than {MAX_CONTEXT_BYTES} bytes", len(raw))
    key = _settings.context_key()
    if key is None:
        return _ignore("no deployment secret to check its signature with (set [ordo_hooks] context_secret)", value)
    signature = value.get(_SIGNATURE)
    if not isinstance(signature, str) or not hmac.compare_digest(signature, _signature(key, raw)):
        return _ignore("its signature does not match: it was not written by airflow-ordo-hooks in this deployment", value)
    return body


def _fitted(payload: Mapping[str, Any]) -> dict[str, Any]:
    """The parent's payload, cut to fit a context: its own parents dropped first, then its log's head."""
    payload = dict(payload)
    if len(_canonical(payload)) > MAX_CONTEXT_BYTES // 2:
        payload.pop("triggered_by_job_run", None)
    excess = len(_canonical(payload)) - MAX_CONTEXT_BYTES // 2
    if excess > 0 and isinstance(payload.get("log"), str):
        payload["log"] = payload["log"][excess + 100 :]
    return payload


def triggered_by(event: str, parent: str) -> str:
    """cheek's ``triggered_by`` of a child: ``retries_exhausted[<parent>]`` or ``job[<parent>]``."""
    return f"retries_exhausted[{parent}]" if event == "on_retries_exhausted" else f"job[{parent}]"


def chain_of(conf: Mapping[str, Any] | None, dag_id: str) -> list[str]:
    """The DAG ids from the first parent down to ``dag_id``, as the run's conf records them."""
    chain = parent_context(conf).get("chain")
    return [*(chain if isinstance(chain, list) else []), dag_id]


def child_conf(event: str, dag_id: str, parent_conf: Mapping[str, Any] | None, payload: Mapping[str, Any]) -> dict[str, Any]:
    """The conf of a run started by ``trigger_job``: the parent's context under one reserved key."""
    context: dict[str, Any] = {
        "triggered_by": triggered_by(event, dag_id),
        "triggered_by_job_run": _fitted(payload),
        "chain": chain_of(parent_conf, dag_id),
    }
    key = _settings.context_key()
    if key is not None:  # unsigned, the child ignores it (and says why)
        context[_SIGNATURE] = _signature(key, _canonical(context))
    return {CONF_KEY: context}


def cycle(target: str, dag_id: str, parent_conf: Mapping[str, Any] | None) -> list[str] | None:
    """The chain that ``target`` would close, if it is already in it (``None`` when starting it is safe)."""
    chain = chain_of(parent_conf, dag_id)
    return [*chain, target] if target in chain else None


def child_run_id(event: str, parent_dag_id: str, parent_run_id: str, task_id: str | None, map_index: int, try_number: int, target: str) -> str:
    """
    The run id a ``trigger_job`` started through the REST API gives its child: the same for the
    same event of the same try and target, so that a request retried after a 5xx, or a second path
    firing the event, finds the run already there instead of starting another.
    """
    from airflow_ordo_hooks._event_id import event_digest

    digest = event_digest(parent_dag_id, parent_run_id, task_id, map_index, try_number, event, target)
    return f"trigger_job__{event}__{digest.hex()[:24]}"


def task_id_for(source_task_id: str, event: str, target: str) -> str:
    """The id of the ``TriggerJobOperator`` task that starts ``target`` for ``event`` of ``source_task_id``."""
    return f"{source_task_id}__{event}__trigger_{target}"
