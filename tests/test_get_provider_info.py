"""The package registers as an Airflow provider, as Airflow's own CLI sees it, and declares the Airflow it is tested on."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from importlib.metadata import distribution
from pathlib import Path

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
        assert f"airflow_ordo_hooks.notifications.job_event.{name}" in listed


def test_listed_notifiers_import():
    import importlib

    from airflow.sdk import BaseNotifier

    for path in get_provider_info()["notifications"]:
        module, _, name = path.rpartition(".")
        assert issubclass(getattr(importlib.import_module(module), name), BaseNotifier)


def test_the_oldest_airflow_declared_is_the_one_the_oldest_lock_tests():
    root = Path(__file__).resolve().parents[1]
    dependencies = tomllib.loads((root / "pyproject.toml").read_text())["project"]["dependencies"]
    (airflow,) = [d for d in dependencies if re.match(r"apache-airflow[>=<]", d)]
    floor = re.fullmatch(r"apache-airflow>=([\d.]+),<4", airflow).group(1)

    def pinned(lock: str) -> str:
        return re.search(r"^apache-airflow==([\d.]+) ", (root / lock).read_text(), re.MULTILINE).group(1)

    assert pinned("requirements-airflow-oldest.lock") == floor
    assert tuple(map(int, pinned("requirements.lock").split("."))) >= tuple(map(int, floor.split(".")))
