"""The package registers as an Airflow provider, as Airflow's own CLI sees it, and declares only dependency floors that are tested."""

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

_ROOT = Path(__file__).resolve().parents[1]


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


def _pinned(lock: str) -> dict[str, str]:
    """``{canonical name: version}`` of a lock file made by ``uv pip compile``."""
    text = (_ROOT / lock).read_text()
    return {_canonical(m[1]): m[2] for m in re.finditer(r"^([A-Za-z0-9._-]+)==(\S+) ", text, re.MULTILINE)}


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _floors() -> dict[str, str]:
    """``{canonical name: lowest version admitted}`` of every direct dependency, the test extra's included."""
    project = tomllib.loads((_ROOT / "pyproject.toml").read_text())["project"]
    floors = {}
    for requirement in [*project["dependencies"], *project["optional-dependencies"]["test"]]:
        name, floor = re.fullmatch(r"([A-Za-z0-9._-]+)>=([\d.]+)(?:,<[\d.]+)?", requirement).groups()
        floors[_canonical(name)] = floor
    return floors


def _version(text: str) -> tuple[int, ...]:
    parts = tuple(map(int, text.split(".")))
    return parts + (0,) * (3 - len(parts))


def test_the_oldest_airflow_declared_is_the_one_the_lowest_lock_tests():
    floor = _floors()["apache-airflow"]
    assert _pinned("requirements-lowest.lock")["apache-airflow"] == floor
    assert _version(_pinned("requirements.lock")["apache-airflow"]) >= _version(floor)


def test_every_direct_dependency_is_at_its_floor_in_the_lowest_lock():
    # a floor that the lowest lock does not hold is a floor no test proves
    lowest = _pinned("requirements-lowest.lock")
    off = {
        name: (floor, lowest.get(name))
        for name, floor in _floors().items()
        if name not in lowest or _version(lowest[name]) != _version(floor)
    }
    assert not off, f"{{name: (floor in pyproject.toml, pin in requirements-lowest.lock)}}: {off}"
