"""Ordo's ``on_exit`` step, as an Ordo recipe writes it, validated when the DAG file is parsed.

    "on_exit": {
      "id": "call_webhook",
      "type": "CALL_WEBHOOK",
      "inputs": {"waits_for": "step:dataset_info.metadata"},
      "param_keys": ["webhook_url"]
    }

In Airflow the step is a teardown task (:class:`~airflow_ordo_hooks.operators.call_webhook.CallWebhookOperator`)
wired after every other task of the DAG: it runs once the run has settled, whatever its outcome,
and does not count for the run's state. A reference ``step:<id>.<slot>`` names the XCom ``<slot>``
pushed by task ``<id>``; ``job:<name>`` names a run parameter. Each of ``param_keys`` is read
from ``dag_run.conf[<step id>][<key>]`` and declared as a DAG Param, so that a run triggered
without it is refused.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from airflow_ordo_hooks.exceptions import OnExitConfigError


STEP_TYPES = {"CALL_WEBHOOK": ("waits_for",)}
"""The executors an on_exit step may use, with the input slots each accepts."""

_REFERENCE = re.compile(r"^(job:[A-Za-z0-9_-]+|step:[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)$")  # Ordo's own
_ID = re.compile(r"^[A-Za-z0-9_-]+$")
_STEP_KEYS = ("id", "type", "inputs", "param_keys")


@dataclass(frozen=True)
class Reference:
    """``step:<task_id>.<slot>`` (an XCom of a task) or ``job:<name>`` (a run parameter)."""

    text: str
    kind: str
    name: str
    slot: str | None = None

    @classmethod
    def parse(cls, text: str) -> Reference:
        kind, _, rest = text.partition(":")
        if kind == "job":
            return cls(text, "job", rest)
        task_id, _, slot = rest.partition(".")
        return cls(text, "step", task_id, slot)


@dataclass(frozen=True)
class OnExitStep:
    """A validated on_exit step."""

    id: str
    type: str
    waits_for: Reference | None
    param_keys: tuple[str, ...]

    @property
    def url_key(self) -> str:
        """The param holding the webhook URL: ``webhook_url`` if listed, else the first key."""
        return "webhook_url" if "webhook_url" in self.param_keys else self.param_keys[0]


def parse_on_exit(step: Mapping[str, Any] | str | Path, task_ids: set[str] | None = None) -> OnExitStep:
    """
    Validate an on_exit step (or a whole recipe with an ``on_exit`` key) and return it.

    :param step: the ``on_exit`` object, or a recipe holding one, as a mapping, JSON text, or the
        path of a ``.json`` file.
    :param task_ids: the DAG's task ids: a ``step:`` reference must name one of them.
    :raises OnExitConfigError: naming the field, the value and what was expected.
    """
    if isinstance(step, Path) or (isinstance(step, str) and step.strip().endswith(".json") and "{" not in step):
        try:
            step = Path(step).read_text()
        except OSError as exc:
            raise OnExitConfigError(f"on_exit: cannot read recipe file {str(step)!r}: {exc}") from None
    if isinstance(step, str):
        try:
            step = json.loads(step)
        except ValueError as exc:
            raise OnExitConfigError(f"on_exit: not valid JSON: {exc}") from None
    if isinstance(step, Mapping) and "on_exit" in step:  # a whole recipe: its steps are not ours to run
        step = step["on_exit"]
    if isinstance(step, list):
        raise OnExitConfigError(f"on_exit: expected one step object, got a list of {len(step)}: Ordo runs a single on_exit step")
    if not isinstance(step, Mapping):
        raise OnExitConfigError(f"on_exit: expected a step object with id, type and inputs, got {step!r}")
    for forbidden in ("outputs", "depends_on"):
        if forbidden in step:
            raise OnExitConfigError(f"on_exit.{forbidden}: not allowed on an on_exit step (it runs after all steps and produces nothing), got {step[forbidden]!r}")
    unknown = [k for k in step if k not in _STEP_KEYS]
    if unknown:
        raise OnExitConfigError(f"on_exit: unknown field {unknown[0]!r}; expected {', '.join(_STEP_KEYS)}")

    step_id = step.get("id")
    if not isinstance(step_id, str) or not _ID.match(step_id):
        raise OnExitConfigError(f"on_exit.id: expected an id of letters, digits, _ and -, got {step_id!r}")
    step_type = step.get("type")
    if step_type not in STEP_TYPES:
        raise OnExitConfigError(f"on_exit.type: Unsupported step type: {step_type}; expected one of {', '.join(STEP_TYPES)}")

    inputs = step.get("inputs", {})
    if not isinstance(inputs, Mapping):
        raise OnExitConfigError(f"on_exit.inputs: expected an object of input slots, got {inputs!r}")
    slots = STEP_TYPES[step_type]
    extra = [k for k in inputs if k not in slots]
    if extra:
        raise OnExitConfigError(f"on_exit.inputs: {step_type} accepts exactly one input slot, {slots[0]!r}; got {extra[0]!r}")
    if "waits_for" not in inputs:
        raise OnExitConfigError(f"on_exit.inputs: {step_type} needs its input slot 'waits_for', got {dict(inputs)!r}")
    reference_text = inputs["waits_for"]
    if not isinstance(reference_text, str) or not _REFERENCE.match(reference_text):
        raise OnExitConfigError(
            f"on_exit.inputs.waits_for: expected 'job:<name>' or 'step:<id>.<slot>', got {reference_text!r}"
        )
    reference = Reference.parse(reference_text)
    if reference.kind == "step" and task_ids is not None and reference.name not in task_ids:
        raise OnExitConfigError(
            f"on_exit.inputs.waits_for: {reference_text!r} names step {reference.name!r}, which is not a task of the DAG "
            f"(tasks: {', '.join(sorted(task_ids)) or 'none'})"
        )

    param_keys = step.get("param_keys", [])
    if not isinstance(param_keys, list) or not all(isinstance(k, str) and _ID.match(k) for k in param_keys):
        raise OnExitConfigError(f"on_exit.param_keys: expected a list of parameter names, got {param_keys!r}")
    if not param_keys:
        raise OnExitConfigError(f"on_exit.param_keys: {step_type} needs at least one, holding the webhook URL (e.g. ['webhook_url']), got {param_keys!r}")
    duplicates = sorted({k for k in param_keys if param_keys.count(k) > 1})
    if duplicates:
        raise OnExitConfigError(f"on_exit.param_keys: {duplicates[0]!r} is listed more than once in {param_keys!r}")
    return OnExitStep(step_id, step_type, reference, tuple(param_keys))


def params_for(step: OnExitStep, defaults: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """
    The DAG Param that declares ``step``'s param_keys, under the step id, as Ordo keys them.

    A run whose conf lacks one of them (and that has no default) is refused when it is
    triggered: ``Invalid input for param call_webhook: 'webhook_url' is a required property``
    (Ordo: ``Missing required param "webhook_url" for on_exit step "call_webhook"``).
    """
    from airflow.sdk import Param

    return {
        step.id: Param(
            dict(defaults or {}),
            type="object",
            properties={key: {"type": "string", "minLength": 1} for key in step.param_keys},
            required=list(step.param_keys),
            description=f"Parameters of the on_exit step {step.id!r}: {', '.join(step.param_keys)}",
        )
    }
