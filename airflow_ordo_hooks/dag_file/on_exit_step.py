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

from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

from airflow_ordo_hooks.exceptions import OnExitConfigError


class Reference(NamedTuple):
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


class OnExitStep(NamedTuple):
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
    from airflow_ordo_hooks.dag_file import schema  # pydantic: paid only by a DAG file that validates a step

    if isinstance(step, Path) or (isinstance(step, str) and step.strip().endswith(".json") and "{" not in step):
        step = schema.read_text(step, "on_exit", OnExitConfigError, what=f"recipe file {str(step)[:200]!r}")
    if isinstance(step, str):
        step = schema.load_json(step, "on_exit", OnExitConfigError)
    if isinstance(step, Mapping) and "on_exit" in step:  # a whole recipe: its steps are not ours to run
        step = step["on_exit"]
    if isinstance(step, list):
        raise OnExitConfigError(f"on_exit: expected one step object, got a list of {len(step)}: Ordo runs a single on_exit step")

    config = schema.validate(
        schema.OnExitStepConfig, step, where="on_exit", error=OnExitConfigError, context={"task_ids": task_ids}
    )
    return OnExitStep(config.id, config.type, Reference.parse(config.inputs.waits_for), tuple(config.param_keys))


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


def shown_params(step: OnExitStep, params: Mapping[str, Any]) -> dict[str, Any]:
    """
    The run's params as the report shows them: the step's own URLs masked (a webhook URL may hold
    its secret in its path or query; the report is kept in the delivery ledger), the rest as they are.
    """
    from airflow_ordo_hooks._targets import mask_url

    shown = dict(params)
    own = shown.get(step.id)
    if isinstance(own, Mapping):
        shown[step.id] = {
            key: mask_url(value) if key in step.param_keys and isinstance(value, str) and "://" in value else value
            for key, value in own.items()
        }
    return shown
