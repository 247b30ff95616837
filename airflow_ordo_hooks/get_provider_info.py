"""Provider metadata, read by Airflow through the ``apache_airflow_provider`` entry point."""

from __future__ import annotations


def get_provider_info() -> dict:
    from airflow_ordo_hooks import __version__

    return {
        "package-name": "airflow-ordo-hooks",
        "name": "Ordo Hooks",
        "description": "Job-event webhooks (after cheek) and a run report step (after Ordo) for Airflow tasks and DAG runs.",
        "versions": [__version__],
        "notifications": [
            "airflow_ordo_hooks.notifications.JobEventWebhookNotifier",
            "airflow_ordo_hooks.notifications.JobEventSlackWebhookNotifier",
            "airflow_ordo_hooks.notifications.JobEventDiscordWebhookNotifier",
        ],
        "config": {
            "ordo_hooks": {
                "description": "Webhook delivery defaults of airflow-ordo-hooks.",
                "options": {
                    "connect_timeout": _option("Seconds to wait for a receiver's connection, per request.", "float", "3.0"),
                    "read_timeout": _option("Seconds to wait between bytes of a receiver's answer, per request.", "float", "10.0"),
                    "budget": _option("Total seconds one delivery may take, retries and waits included.", "float", "10.0"),
                    "max_attempts": _option("Requests per delivery at the most, the first included.", "integer", "5"),
                    "backoff_initial": _option("First wait between retries, in seconds; doubles each retry.", "float", "0.5"),
                    "backoff_max": _option("Longest wait between retries, in seconds.", "float", "8.0"),
                    "backoff_jitter": _option("Up to this many seconds added at random to each wait.", "float", "0.5"),
                    "max_redirects": _option("307/308 redirects followed at the most.", "integer", "5"),
                    "api_conn_id": _option("HTTP connection to Airflow's REST API, for on_exit reports and trigger_job from callbacks.", "string", "airflow_api"),
                    "hooks_file": _option("A YAML file of cheek hooks applied to every task of every DAG (deployment-wide hooks).", "string", ""),
                    "log_max_chars": _option("Longest log a job event payload carries; its tail is kept.", "integer", "20000"),
                },
            }
        },
    }


def _option(description: str, kind: str, default: str) -> dict:
    return {"description": description, "version_added": "0.1.0", "type": kind, "example": None, "default": default}
