"""The config formats DAG authors write, validated by one mechanism, and the one message format of their refusals.

cheek's hooks (:class:`JobEventsConfig`), cheek's schedule (:class:`CheekSchedule` of
:class:`CheekJob`) and Ordo's on_exit step (:class:`OnExitStepConfig`) are validated as pydantic
models; the modules that read them (``job_events``, ``cheek_schedule``, ``on_exit_step``) build
from the validated models. A refusal names where the config is, the field, what was wrong and the
value written, cut to :data:`MAX_ECHO` characters::

    cheek schedule x.yaml: job 'a'.retries: expected a whole number 0 or more, got -1

This module is the one place to import them from; each concept lives in a module of its own:

======================  ===========================================================================
``schema_base``        the wording of a refusal, :func:`validate`, the base model and shared checks
``schema_text``        config text (a file, YAML, JSON) read within bounds checked before anything
                        is built (:data:`MAX_TEXT`, :data:`MAX_DEPTH`, :data:`MAX_NODES`), so that a
                        hostile config is refused at once instead of exhausting the parsing process
``schema_job_events``       cheek's hooks config, ``{event: {action: [target, ...]}}``
``schema_cheek``       cheek's schedule, ``{jobs: {name: job}, on_*, tz_location, encoding}``
``schema_on_exit``     Ordo's on_exit step, ``{id, type, inputs: {waits_for}, param_keys}``
======================  ===========================================================================

This module imports pydantic: the modules that read configs import it inside the functions that
validate, so that ``import airflow_ordo_hooks`` in a DAG file does not pay for it.
"""

from __future__ import annotations

from airflow_ordo_hooks.dag_file.schema_base import (
    ID_PATTERN,
    MAX_ECHO,
    MAX_ITEMS,
    ConfigModel,
    ModelT,
    at_most,
    describe,
    echo,
    expect,
    refusal,
    reword,
    validate,
)
from airflow_ordo_hooks.dag_file.schema_cheek import (
    CRON_SHORTCUTS,
    MAX_ENV,
    MAX_JOBS,
    MAX_RETRIES,
    CheekJob,
    CheekSchedule,
    JobName,
    ScheduleEventActions,
)
from airflow_ordo_hooks.dag_file.schema_job_events import DagIds, EventActions, JobEventsConfig, WebhookTargets
from airflow_ordo_hooks.dag_file.schema_on_exit import (
    ORDO_ID_PATTERN,
    REFERENCE,
    STEP_TYPES,
    CallWebhookInputs,
    OnExitStepConfig,
)
from airflow_ordo_hooks.dag_file.schema_text import MAX_DEPTH, MAX_NODES, MAX_TEXT, load_json, load_yaml, read_text
from airflow_ordo_hooks._targets import MAX_ID

__all__ = [
    "CRON_SHORTCUTS",
    "ID_PATTERN",
    "MAX_DEPTH",
    "MAX_ECHO",
    "MAX_ENV",
    "MAX_ID",
    "MAX_ITEMS",
    "MAX_JOBS",
    "MAX_NODES",
    "MAX_RETRIES",
    "MAX_TEXT",
    "ORDO_ID_PATTERN",
    "REFERENCE",
    "STEP_TYPES",
    "CallWebhookInputs",
    "CheekJob",
    "CheekSchedule",
    "ConfigModel",
    "DagIds",
    "EventActions",
    "JobEventsConfig",
    "JobName",
    "ModelT",
    "OnExitStepConfig",
    "ScheduleEventActions",
    "WebhookTargets",
    "at_most",
    "describe",
    "echo",
    "expect",
    "load_json",
    "load_yaml",
    "read_text",
    "refusal",
    "reword",
    "validate",
]
