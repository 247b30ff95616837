"""The ``airflow ordo-hooks`` command group: its commands and arguments, as Airflow's CLI parser reads them.

Only this module is imported when ``airflow`` builds its parser; each command's code is loaded
when it runs (:mod:`airflow_ordo_hooks.cli.commands`).
"""

from __future__ import annotations

from airflow.cli.cli_config import (
    ARG_DB_CLEANUP_TIMESTAMP,
    ARG_DB_DRY_RUN,
    ARG_OUTPUT,
    ARG_VERBOSE,
    ARG_YES,
    ActionCommand,
    Arg,
    GroupCommand,
    lazy_load_command,
)

_COMMANDS = "airflow_ordo_hooks.cli.commands"

EVENTS = ("on_success", "on_error", "on_retries_exhausted", "on_exit")
STATES = ("pending", "delivering", "delivered", "gone", "failed")
ACTIONS = ("notify_webhook", "notify_slack_webhook", "notify_discord_webhook")

ARG_DAG_ID = Arg(("-d", "--dag-id"), help="Only deliveries of this DAG")
ARG_RUN_ID = Arg(("-r", "--run-id"), help="Only deliveries of this DAG run")
ARG_TASK_ID = Arg(("-t", "--task-id"), help="Only deliveries of this task")
ARG_EVENT = Arg(("-e", "--event"), help="Only deliveries of this event", choices=EVENTS)
ARG_STATE = Arg(("-s", "--state"), help="Only deliveries in this state", choices=STATES)
ARG_LIMIT = Arg(("--limit",), help="At most this many, newest first (default: 50)", type=int, default=50)
ARG_WEBHOOK_IDS = Arg(("webhook_ids",), help="The webhook-id of each delivery to send again", nargs="*", metavar="WEBHOOK_ID")
ARG_FAILED_SINCE = Arg(
    ("--failed-since",),
    help="Also every delivery given up (failed) at or after this time: ISO 8601 (2026-11-23T08:00:00+00:00), "
    "or a duration back from now (30m, 2h, 1d)",
)
ARG_WAIT = Arg(
    ("--wait",), help="Wait up to this many seconds for the API server to settle each one, and show how it ended "
    "(default: 0, do not wait)", type=float, default=0.0,
)
ARG_PREVIEW_DAG_ID = Arg(("dag_id",), help="The DAG")
ARG_PREVIEW_TASK_ID = Arg(("task_id",), help="The task")
ARG_PREVIEW_EVENT = Arg(("event",), help="The event whose bodies to show", choices=EVENTS[:3])
ARG_PREVIEW_RUN_ID = Arg(("-r", "--run-id"), help="The run whose try to build from (default: the task's latest)")
ARG_MAP_INDEX = Arg(("--map-index",), help="The mapped instance (default: -1, not mapped)", type=int, default=-1)
ARG_TARGET = Arg(("target",), help="A URL (https://…) or conn:<conn_id>[/<endpoint>], as a hook's action names it")
ARG_ACTION = Arg(
    ("-a", "--action"), help="The action whose body to send (default: notify_webhook, cheek's JSON)",
    choices=ACTIONS, default="notify_webhook",
)
ARG_SIGNING_SECRET = Arg(
    ("--signing-secret",), help="A Standard Webhooks secret (whsec_…) to sign with; a conn: target's own is used without it",
)

ORDO_HOOKS_COMMANDS = (
    ActionCommand(
        name="deliveries",
        help="List the deliveries of the ledger, newest first",
        func=lazy_load_command(f"{_COMMANDS}.deliveries"),
        args=(ARG_DAG_ID, ARG_RUN_ID, ARG_TASK_ID, ARG_EVENT, ARG_STATE, ARG_LIMIT, ARG_OUTPUT, ARG_VERBOSE),
    ),
    ActionCommand(
        name="targets",
        help="Show each webhook target's health, the worst first: the DAGs it serves, its last success and failure, "
        "its failure rate over 24 h, what waits for it",
        func=lazy_load_command("airflow_ordo_hooks.cli.targets.targets"),
        args=(
            Arg(("-d", "--dag-id"), help="Count only deliveries of this DAG"),
            Arg(("--limit",), help="At most this many targets, the worst first (default: 200, the most)", type=int, default=200),
            ARG_OUTPUT,
            ARG_VERBOSE,
        ),
    ),
    ActionCommand(
        name="redeliver",
        help="Send deliveries again, with their webhook-id: by id, or every one given up since a time",
        func=lazy_load_command(f"{_COMMANDS}.redeliver"),
        args=(ARG_WEBHOOK_IDS, ARG_FAILED_SINCE, ARG_DAG_ID, ARG_WAIT, ARG_OUTPUT, ARG_VERBOSE),
    ),
    ActionCommand(
        name="preview",
        help="Show the exact bodies each action of a task's event would send, built from its latest try; send nothing",
        func=lazy_load_command(f"{_COMMANDS}.preview"),
        args=(ARG_PREVIEW_DAG_ID, ARG_PREVIEW_TASK_ID, ARG_PREVIEW_EVENT, ARG_PREVIEW_RUN_ID, ARG_MAP_INDEX, ARG_OUTPUT, ARG_VERBOSE),
    ),
    ActionCommand(
        name="test-fire",
        help="Send a sample event to a target through the real delivery path, and show what was sent and the answer",
        func=lazy_load_command(f"{_COMMANDS}.test_fire"),
        args=(ARG_TARGET, ARG_ACTION, ARG_SIGNING_SECRET, ARG_OUTPUT, ARG_VERBOSE),
    ),
    ActionCommand(
        name="rotate-fernet-key",
        help="Re-encrypt the ledger's targets with the first key of [core] fernet_key; run it after "
        "`airflow rotate-fernet-key`, with the same fernet_key (new,old)",
        func=lazy_load_command(f"{_COMMANDS}.rotate_fernet_key"),
        args=(ARG_VERBOSE,),
    ),
    ActionCommand(
        name="db-clean",
        help="Delete the ledger's settled deliveries (delivered, gone, failed) last updated before a time, with their "
        "attempts, as `airflow db clean` does Airflow's rows; pending ones are kept",
        func=lazy_load_command("airflow_ordo_hooks.cli.db_clean.db_clean"),
        args=(ARG_DB_CLEANUP_TIMESTAMP, ARG_DB_DRY_RUN, ARG_YES, ARG_VERBOSE),
    ),
)


def get_cli_commands() -> list[GroupCommand]:
    """The provider's commands, for Airflow's ``cli`` provider metadata."""
    return [
        GroupCommand(
            name="ordo-hooks",
            help="Webhook deliveries of airflow-ordo-hooks: list, targets, redeliver, preview, test-fire, rotate-fernet-key, db-clean",
            subcommands=ORDO_HOOKS_COMMANDS,
        )
    ]
