"""Provider metadata, read by Airflow through the ``apache_airflow_provider`` entry point."""

from __future__ import annotations

from airflow_ordo_hooks import _settings
from airflow_ordo_hooks._version import __version__


def get_provider_info() -> dict:
    return {
        "package-name": "airflow-ordo-hooks",
        "name": "Ordo Hooks",
        "description": "Job-event webhooks (after cheek) and a run report step (after Ordo) for Airflow tasks and DAG runs.",
        "versions": [__version__],
        "notifications": [
            "airflow_ordo_hooks.notifications.job_event.JobEventWebhookNotifier",
            "airflow_ordo_hooks.notifications.job_event.JobEventSlackWebhookNotifier",
            "airflow_ordo_hooks.notifications.job_event.JobEventDiscordWebhookNotifier",
        ],
        "config": _settings.provider_config(),
        # the delivery ledger: its tables (created by `airflow db migrate`), and the API server's routes
        "db-managers": ["airflow_ordo_hooks.server.db_manager.OrdoHooksDBManager"],
        "plugins": [{"name": "ordo_hooks", "plugin-class": "airflow_ordo_hooks.plugins.ledger.OrdoHooksPlugin"}],
        # `airflow ordo-hooks deliveries | redeliver | test-fire`
        "cli": ["airflow_ordo_hooks.cli.definition.get_cli_commands"],
    }
