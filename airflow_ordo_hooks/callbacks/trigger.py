"""cheek's ``trigger_job``: what a parent passes to the run it starts, signed; the guard against cycles; and starting runs from a callback.

The child's ``conf`` carries, under the key ``airflow_ordo_hooks``, ``triggered_by``
(``job[<parent>]`` or ``retries_exhausted[<parent>]``), ``triggered_by_job_run`` (the parent's
payload for that event), ``chain`` (the DAG ids that led to it) and ``signature``. A DAG already
in the chain is not triggered again: cheek has no such guard and recurses forever.

Anyone who may trigger a run can write any conf, so a context is honoured only when it provably
came from this package for this very run: its ``signature`` is an HMAC, with a deployment secret
(:func:`airflow_ordo_hooks._settings.context_key`), of the rest and of the child's DAG id and run
id, so a context copied into another run's conf is not honoured either. It must also be plain
JSON of the expected shape, at most :data:`MAX_CONTEXT_BYTES` bytes and :data:`MAX_DEPTH` levels
deep. Any other is ignored, with one warning per run: the run is then treated as not started by a
parent, and its events are sent as usual.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import hmac
import json
import logging
import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

from airflow_ordo_hooks import _settings

log = logging.getLogger(__name__)

CONF_KEY = "airflow_ordo_hooks"
"""The key of a run's ``conf`` under which a ``trigger_job`` parent passes its context to the child."""

MAX_CONTEXT_BYTES = 65_536
"""The largest context honoured (as canonical JSON); a parent's payload is cut to fit when a child is started."""

MAX_DEPTH = 100
"""The deepest nesting of a context honoured; a parent drops its own parents' payloads to fit."""

MAX_CHAIN = 1_000
"""The most DAG ids a context's ``chain`` may hold."""

_SIGNATURE = "signature"
_VERSION = "v2,"  # v1 did not bind the child run: such contexts are not honoured
_DAG_ID_LEN = 250  # Airflow's ID_LEN
WARNED_RUNS = 1024
"""How many (reason, DAG, run) the module remembers having warned about: a long-lived process (the
DAG processor, the API server) warns once per run and reason without keeping every run it met."""


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode()


def _signature(key: bytes, dag_id: str, run_id: str, body: bytes) -> str:
    # the run the context is for, framed as JSON (a JSON string holds no raw newline), then the context
    bound = json.dumps([dag_id, run_id], ensure_ascii=True).encode() + b"\n" + body
    return _VERSION + hmac.new(key, bound, hashlib.sha256).hexdigest()


def _not_plain(value: Any, max_chars: int, max_depth: int) -> str | None:
    """
    Why ``value`` cannot be a context: not plain JSON (text keys, finite numbers), nested deeper
    than ``max_depth`` or larger than ``max_chars``; ``None`` when it can. It stops at the first
    reason, before reading the rest, so a huge or deep value costs no more than a small one.
    """
    size, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            size += len(item) + 2
        elif item is None or isinstance(item, bool):
            size += 4
        elif isinstance(item, int):
            if item.bit_length() > 256:
                return "it holds a number larger than a payload's"
            size += 1
        elif isinstance(item, float):
            if not math.isfinite(item):
                return "it holds NaN or an infinity, which JSON has not"
            size += 3
        elif isinstance(item, (Mapping, list, tuple)):
            if depth > max_depth:
                return f"it is nested more than {max_depth} levels deep"
            size += 2 + len(item)
            if size > max_chars:
                break
            if isinstance(item, Mapping):
                for k, v in item.items():
                    if not isinstance(k, str):
                        return "it has a key that is not text"
                    size += len(k) + 3
                    stack.append((v, depth + 1))
            else:
                stack.extend((v, depth + 1) for v in item)
        else:
            return f"it holds a value of type {type(item).__name__}, which is not JSON"
        if size > max_chars:
            break
    return f"it is larger than {max_chars} bytes" if size > max_chars else None


def _not_shaped(body: Mapping[str, Any]) -> str | None:
    """Why a correctly signed ``body`` is still not a context this package writes, or ``None``."""
    chain = body.get("chain")
    if not isinstance(body.get("triggered_by"), str) or not isinstance(body.get("triggered_by_job_run"), Mapping):
        return "its triggered_by is not text or its triggered_by_job_run not a mapping"
    if not isinstance(chain, list) or len(chain) > MAX_CHAIN or not all(isinstance(d, str) and 0 < len(d) <= _DAG_ID_LEN for d in chain):
        return f"its chain is not a list of at most {MAX_CHAIN} DAG ids"
    return None


def _ignore(why: str, dag_id: str, run_id: str) -> Mapping[str, Any]:
    _warn_once(why, str(dag_id), str(run_id))  # once per run, not once per payload built
    return {}


@functools.lru_cache(maxsize=WARNED_RUNS)
def _warn_once(why: str, dag_id: str, run_id: str) -> None:
    log.warning("airflow-ordo-hooks: the conf[%r] of run %s of %s is ignored: %s", CONF_KEY, run_id, dag_id, why)


def parent_context(conf: Mapping[str, Any] | None, dag_id: str, run_id: str) -> Mapping[str, Any]:
    """
    What a ``trigger_job`` parent passed to run ``run_id`` of ``dag_id``, when this package signed
    it for that run; ``{}`` when the run was not started that way, or its context is forged,
    altered, copied from another run, malformed or too large. Never raises.
    """
    value = conf.get(CONF_KEY) if isinstance(conf, Mapping) else None
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        return _ignore("it is not a mapping", dag_id, run_id)
    why = _not_plain(value, MAX_CONTEXT_BYTES, MAX_DEPTH)
    if why is not None:
        return _ignore(why, dag_id, run_id)
    body = {k: v for k, v in value.items() if k != _SIGNATURE}
    raw = _canonical(body)
    if len(raw) > MAX_CONTEXT_BYTES:
        return _ignore(f"it is larger than {MAX_CONTEXT_BYTES} bytes", dag_id, run_id)
    key = _settings.context_key()
    if key is None:
        return _ignore("no deployment secret to check its signature with (set [ordo_hooks] context_secret)", dag_id, run_id)
    signature = value.get(_SIGNATURE)
    expected = _signature(key, dag_id, run_id, raw)
    if not (isinstance(signature, str) and signature.isascii() and hmac.compare_digest(signature.encode(), expected.encode())):
        return _ignore(
            "its signature does not match: it was not written by airflow-ordo-hooks for this run in this deployment", dag_id, run_id
        )
    why = _not_shaped(body)
    if why is not None:
        return _ignore(why, dag_id, run_id)
    return body


def _fitted(payload: Mapping[str, Any]) -> dict[str, Any]:
    """
    The parent's payload as plain JSON (what the child will read back), cut to fit a context: its
    own parents dropped first, then its log's head.
    """
    from airflow_ordo_hooks.hooks.webhook import encode  # the JSON every path sends: valid Unicode, no NaN

    payload = json.loads(encode(payload))
    if _not_plain(payload, MAX_CONTEXT_BYTES // 2, MAX_DEPTH - 2) or len(_canonical(payload)) > MAX_CONTEXT_BYTES // 2:
        payload.pop("triggered_by_job_run", None)
    excess = len(_canonical(payload)) - MAX_CONTEXT_BYTES // 2
    if excess > 0 and isinstance(payload.get("log"), str):
        payload["log"] = payload["log"][excess + 100 :]
    return payload


def triggered_by_parent(event: str, parent: str) -> str:
    """cheek's ``triggered_by`` of a child: ``retries_exhausted[<parent>]`` or ``job[<parent>]``."""
    return f"retries_exhausted[{parent}]" if event == "on_retries_exhausted" else f"job[{parent}]"


def chain_of(conf: Mapping[str, Any] | None, dag_id: str, run_id: str) -> list[str]:
    """The DAG ids from the first parent down to ``dag_id``, as the conf of run ``run_id`` records them."""
    return [*parent_context(conf, dag_id, run_id).get("chain", []), dag_id]


def child_conf(
    event: str, conf: Mapping[str, Any] | None, dag_id: str, run_id: str, payload: Mapping[str, Any], *, target: str, target_run_id: str
) -> dict[str, Any]:
    """
    The conf of run ``target_run_id`` of ``target``, started by ``trigger_job`` for ``event`` of
    run ``run_id`` of ``dag_id`` (whose own conf is ``conf``): the parent's context under one
    reserved key, signed for that child run alone.
    """
    context: dict[str, Any] = {
        "triggered_by": triggered_by_parent(event, dag_id),
        "triggered_by_job_run": _fitted(payload),
        "chain": chain_of(conf, dag_id, run_id),
    }
    key = _settings.context_key()
    if key is not None:  # unsigned, the child ignores it (and says why)
        context[_SIGNATURE] = _signature(key, target, target_run_id, _canonical(context))
    return {CONF_KEY: context}


def cycle(target: str, conf: Mapping[str, Any] | None, dag_id: str, run_id: str) -> list[str] | None:
    """
    The chain that ``target`` would close if run ``run_id`` of ``dag_id`` (whose conf is ``conf``)
    started it, when ``target`` is already in it (``None`` when starting it is safe).
    """
    chain = chain_of(conf, dag_id, run_id)
    return [*chain, target] if target in chain else None


def child_run_id(event: str, parent_dag_id: str, parent_run_id: str, task_id: str | None, map_index: int, try_number: int, target: str) -> str:
    """
    The run id a ``trigger_job`` gives its child, known before the run exists so that its context
    can be signed for it: the same for the same event of the same try and target, so that a request
    to the REST API retried after a 5xx, or a second path firing the event, finds the run already
    there instead of starting another.
    """
    from airflow_ordo_hooks._event_id import event_digest

    digest = event_digest(parent_dag_id, parent_run_id, task_id, map_index, try_number, event, target)
    return f"trigger_job__{event}__{digest.hex()[:24]}"


def task_id_for(source_task_id: str, event: str, target: str) -> str:
    """The id of the ``TriggerJobOperator`` task that starts ``target`` for ``event`` of ``source_task_id``."""
    return f"{source_task_id}__{event}__trigger_{target}"


def start_runs(
    targets: Sequence[str],
    event: str,
    dag_id: str,
    parent_conf: Mapping[str, Any] | None,
    payload: Mapping[str, Any],
    conn_id: str,
    *,
    parent: tuple[str, str | None, int, int],
    deadline: float | None = None,
) -> list[str]:
    """
    Start runs of ``targets`` through Airflow's REST API, from a callback, where no task can do it
    (``on_error`` of a retried try, a DAG run's events); never raises. The caller has left out the
    targets that would close a cycle (:func:`cycle`).

    :param parent: ``(run_id, task_id, map_index, try_number)`` of the event's try (task ``None``
        and try 0 for a run): each child gets a run id of its own for this event, so that a request
        the API server failed is asked again without ever starting a second run.
    :return: the DAG ids a run was created for.
    """
    from airflow_ordo_hooks.hooks.airflow_api import AirflowApiHook, DeliveryPolicy

    started: list[str] = []
    if not targets:
        return started
    try:
        policy = DeliveryPolicy.from_airflow_config()
        if deadline is not None:  # the callback's time, token request included, not a webhook's budget
            policy = dataclasses.replace(policy, budget=max(deadline - time.monotonic(), 0.01))
        api = AirflowApiHook(conn_id, policy=policy, deadline=deadline)
    except Exception as exc:
        log.error(
            "trigger_job: cannot start %s from %s: Airflow's REST API is not reachable through connection %r (%s). "
            "Create an HTTP connection %r to the API server (login and password, or a token in its extra).",
            ", ".join(targets), event, conn_id, exc, conn_id,
        )
        return started
    for target in targets:
        try:
            # an id of its own per event: the request can be retried, and never starts a second run;
            # the context is signed for that run alone
            run_id = child_run_id(event, dag_id, *parent, target)
            conf = child_conf(event, parent_conf, dag_id, parent[0], payload, target=target, target_run_id=run_id)
            api.trigger_dag_run(target, conf, run_id=run_id)
            started.append(target)
            log.info("trigger_job: started a run of %s (%s of %s)", target, event, dag_id)
        except Exception as exc:
            log.error("trigger_job: could not start %s: %s", target, exc)
    return started
