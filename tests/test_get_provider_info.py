"""The package registers as an Airflow provider, as Airflow's own CLI sees it."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import distribution

from airflow_ordo_hooks import __version__
from airflow_ordo_hooks.get_provider_info import get_provider_info


def _airflow(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "airflow", *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_package_name_is_the_canonical_distribution_name():
    info = get_provider_info()
    assert info["package-name"] == distribution("airflow-ordo-hooks").metadata["Name"] == "airflow-ordo-hooks"
    assert info["versions"] == [__version__] == [distribution("airflow-ordo-hooks").version]


def test_airflow_providers_list_shows_the_package():
    providers = json.loads(_airflow("providers", "list", "--output", "json"))
    ours = [p for p in providers if p["package_name"] == "airflow-ordo-hooks"]
    assert len(ours) == 1 and ours[0]["version"] == __version__


def test_airflow_providers_notifications_lists_our_notifiers():
    listed = _airflow("providers", "notifications", "--output", "json")
    for name in ("JobEventWebhookNotifier", "JobEventSlackWebhookNotifier", "JobEventDiscordWebhookNotifier"):
        assert f"airflow_ordo_hooks.notifications.{name}" in listed


def test_listed_notifiers_import():
    import importlib

    from airflow.sdk import BaseNotifier

    for path in get_provider_info()["notifications"]:
        module, _, name = path.rpartition(".")
        assert issubclass(getattr(importlib.import_module(module), name), BaseNotifier)
