"""Ordo's on_exit step as pydantic models: ``{id, type, inputs: {waits_for}, param_keys}``.

Read by :mod:`airflow_ordo_hooks.dag_file.on_exit_step`. ``CALL_WEBHOOK`` is the one step type, so a step's
``inputs`` are that type's slots.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import AfterValidator, Field, PlainValidator, ValidationInfo, field_validator

from airflow_ordo_hooks.dag_file.schema_base import MAX_ITEMS, ConfigModel, at_most, cut, echo, expect, id_length, refusal
from airflow_ordo_hooks._targets import MAX_ID

ORDO_ID_PATTERN = r"^[A-Za-z0-9_-]+$"
"""Ordo's step ids and param keys: no dot, which separates step from slot in ``step:<id>.<slot>``."""
REFERENCE = re.compile(r"^(job:[A-Za-z0-9_-]+|step:(?P<step>[A-Za-z0-9_-]+)\.[A-Za-z0-9_-]+)$")
"""Ordo's ``job:<name>`` (a run parameter) or ``step:<id>.<slot>`` (an output of a step)."""
STEP_TYPES = ("CALL_WEBHOOK",)
"""The executors an on_exit step may use."""


def _reference_length(value: str) -> str:
    if len(value) > 2 * MAX_ID:
        raise refusal(f"{len(value):,} characters; a reference is at most {2 * MAX_ID} (its ids are Airflow ids)", got=value)
    return value


class CallWebhookInputs(ConfigModel):
    """The input slots of a ``CALL_WEBHOOK`` step: ``waits_for``, a reference to what the step waits for.

    Validation context: ``task_ids``, the DAG's tasks, one of which a ``step:`` reference must name.
    """

    expected = "an object of input slots"

    waits_for: Annotated[
        str, Field(strict=True, pattern=REFERENCE.pattern), expect("'job:<name>' or 'step:<id>.<slot>'"), AfterValidator(_reference_length)
    ]

    @classmethod
    def _refuse(cls, data: Mapping[Any, Any], info: ValidationInfo) -> None:
        extra = [k for k in data if k != "waits_for"]
        if extra:
            raise refusal(f"CALL_WEBHOOK accepts exactly one input slot, 'waits_for'; got {echo(extra[0])}")
        if "waits_for" not in data:
            raise refusal("CALL_WEBHOOK needs its input slot 'waits_for'", got=dict(data))

    @field_validator("waits_for")
    @classmethod
    def _names_a_task(cls, value: str, info: ValidationInfo) -> str:
        step = REFERENCE.match(value)["step"]
        task_ids = (info.context or {}).get("task_ids")
        if step is not None and task_ids is not None and step not in task_ids:
            tasks = ", ".join(sorted(task_ids)) or "none"
            raise refusal(f"{echo(value)} names step {echo(step)}, which is not a task of the DAG (tasks: {cut(tasks)})")
        return value


def _step_type(value: Any) -> str:
    if value not in STEP_TYPES:
        raise refusal(f"Unsupported step type: {cut(str(value))}; expected one of {', '.join(STEP_TYPES)}")
    return value


def _param_keys(value: list[str]) -> list[str]:
    if not value:
        raise refusal("CALL_WEBHOOK needs at least one, holding the webhook URL (e.g. ['webhook_url'])", got=value)
    duplicates = sorted({k for k in value if value.count(k) > 1})
    if duplicates:
        raise refusal(f"{echo(duplicates[0])} is listed more than once in {echo(value)}")
    return value


class OnExitStepConfig(ConfigModel):
    """
    Ordo's on_exit step. ``CALL_WEBHOOK`` is its one type, so ``inputs`` are its slots.

    Validation context: ``task_ids`` (see :class:`CallWebhookInputs`).
    """

    expected = "a step object with id, type and inputs"

    id: Annotated[str, Field(strict=True, pattern=ORDO_ID_PATTERN), expect("an id of letters, digits, _ and -"), AfterValidator(id_length)]
    type: Annotated[str, PlainValidator(_step_type)]
    inputs: CallWebhookInputs = Field(default_factory=dict, validate_default=True)
    param_keys: Annotated[
        list[Annotated[str, Field(strict=True, pattern=ORDO_ID_PATTERN, max_length=MAX_ID)]],
        Field(strict=True),
        AfterValidator(_param_keys),
        expect("a list of parameter names", items="a list of parameter names"),
        at_most(MAX_ITEMS, "parameter names"),
    ] = Field(default_factory=list, validate_default=True)

    @classmethod
    def _refuse(cls, data: Mapping[Any, Any], info: ValidationInfo) -> None:
        for forbidden in ("outputs", "depends_on"):
            if forbidden in data:
                raise refusal(
                    "not allowed on an on_exit step (it runs after all steps and produces nothing)",
                    got=data[forbidden],
                    at=(forbidden,),
                )
