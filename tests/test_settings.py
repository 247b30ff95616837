"""``[ordo_hooks]``: every key once, checked when read, and the provider's metadata generated from it."""

from __future__ import annotations

import pytest

from airflow_ordo_hooks import _settings
from airflow_ordo_hooks.exceptions import SettingsError
from airflow_ordo_hooks.get_provider_info import get_provider_info
from airflow_ordo_hooks.hooks.webhook import DeliveryPolicy


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("max_attempts", "0", "[ordo_hooks] max_attempts: expected a whole number from 1 to 100, got '0'"),
        ("max_attempts", "three", "[ordo_hooks] max_attempts: expected a whole number, got 'three'"),
        ("budget", "-1", "[ordo_hooks] budget: expected a number from 0.01 to 3600, got '-1'"),
        ("budget", "nan", "[ordo_hooks] budget: expected a number from 0.01 to 3600, got 'nan'"),
        ("connect_timeout", "1e9", "[ordo_hooks] connect_timeout: expected a number from 0.01 to 300, got '1e9'"),
        ("log_max_chars", "2.5", "[ordo_hooks] log_max_chars: expected a whole number, got '2.5'"),
        ("max_redirects", "", "[ordo_hooks] max_redirects: expected a whole number, got ''"),
    ],
)
def test_a_value_out_of_type_or_bounds_is_refused_when_read_naming_key_and_value(monkeypatch, key, value, message):
    monkeypatch.setenv(f"AIRFLOW__ORDO_HOOKS__{key.upper()}", value)
    with pytest.raises(SettingsError) as raised:
        _settings.get(key)
    assert str(raised.value) == message
    if key in DeliveryPolicy.__dataclass_fields__:
        with pytest.raises(SettingsError):
            DeliveryPolicy.from_airflow_config()


def test_configured_values_are_read_and_converted(monkeypatch):
    monkeypatch.setenv("AIRFLOW__ORDO_HOOKS__MAX_ATTEMPTS", " 7 ")
    monkeypatch.setenv("AIRFLOW__ORDO_HOOKS__BUDGET", "2.5")
    monkeypatch.setenv("AIRFLOW__ORDO_HOOKS__API_CONN_ID", "my_api")
    assert (_settings.get("max_attempts"), _settings.get("budget"), _settings.get("api_conn_id")) == (7, 2.5, "my_api")
    policy = DeliveryPolicy.from_airflow_config()
    assert (policy.max_attempts, policy.budget) == (7, 2.5)


@pytest.mark.parametrize(
    ("key", "raw", "expected"),
    [
        ("api_conn_id", "007", "007"),  # getsection would make it the number 7
        ("api_conn_id", "true", "true"),  # and this True
        ("budget", "10", 10.0),  # the default, written another way
        ("budget", "10.5", 10.5),
        ("max_attempts", "05", 5),
        ("allowed_hosts", "", ""),
        ("allowed_conf_hosts", "", ""),
        ("egress_proxy", "true", True),
        ("egress_proxy", "off", False),
        ("hooks_file", "1.5", "1.5"),
    ],
)
def test_a_setting_read_with_others_is_exactly_what_conf_get_gives(monkeypatch, key, raw, expected):
    monkeypatch.setenv(f"AIRFLOW__ORDO_HOOKS__{key.upper()}", raw)
    together = _settings.values(*(s.name for s in _settings.SETTINGS))
    assert together[key] == expected and type(together[key]) is type(expected)
    assert _settings.get(key) == expected
    assert together == {s.name: _exactly(s) for s in _settings.SETTINGS}


def _exactly(setting):
    """A key as ``conf.get`` gives it, converted: what ``values`` must agree with."""
    from airflow.sdk import conf

    raw = conf.get(_settings.SECTION, setting.name, fallback=None)
    return setting.default if raw is None else setting.convert(raw)


def test_a_value_that_only_looks_like_the_default_is_still_checked(monkeypatch):
    monkeypatch.setenv("AIRFLOW__ORDO_HOOKS__MAX_ATTEMPTS", "5.0")  # getsection: 5.0, the default is the int 5
    with pytest.raises(SettingsError, match=r"max_attempts: expected a whole number, got '5.0'"):
        _settings.values("budget", "max_attempts")


def test_a_policy_built_in_code_has_the_same_bounds():
    with pytest.raises(SettingsError, match=r"\[ordo_hooks\] max_attempts: expected a whole number from 1 to 100, got 0"):
        DeliveryPolicy(max_attempts=0)
    assert DeliveryPolicy(budget=3).budget == 3.0


def test_each_default_is_written_once_and_the_provider_metadata_is_generated_from_it():
    options = get_provider_info()["config"]["ordo_hooks"]["options"]
    assert list(options) == [s.name for s in _settings.SETTINGS]
    for setting in _settings.SETTINGS:
        assert options[setting.name]["default"] == str(setting.default)
        assert options[setting.name]["type"] == setting.airflow_type
        assert setting.convert(str(setting.default)) == setting.default, "every default passes its own check"
    defaults = DeliveryPolicy()
    for name in DeliveryPolicy.__dataclass_fields__:
        assert getattr(defaults, name) == _settings.BY_NAME[name].default


def test_task_callback_time_follows_task_success_overtime(monkeypatch):
    monkeypatch.setenv("AIRFLOW__CORE__TASK_SUCCESS_OVERTIME", "30")
    assert _settings.task_callback_seconds() == 30 - _settings.CALLBACK_MARGIN
    monkeypatch.setenv("AIRFLOW__CORE__TASK_SUCCESS_OVERTIME", "2")
    assert _settings.task_callback_seconds() == 1.0


def test_one_reading_keeps_each_value_it_read_until_it_ends(monkeypatch):
    import threading

    monkeypatch.setenv("AIRFLOW__ORDO_HOOKS__MAX_ATTEMPTS", "7")
    monkeypatch.setenv("AIRFLOW__CORE__TASK_SUCCESS_OVERTIME", "30")
    with _settings.one_reading():
        assert (_settings.get("max_attempts"), _settings.task_success_overtime()) == (7, 30.0)
        monkeypatch.setenv("AIRFLOW__ORDO_HOOKS__MAX_ATTEMPTS", "9")
        monkeypatch.setenv("AIRFLOW__ORDO_HOOKS__BUDGET", "2.5")
        monkeypatch.setenv("AIRFLOW__CORE__TASK_SUCCESS_OVERTIME", "40")
        assert (_settings.get("max_attempts"), _settings.task_success_overtime()) == (7, 30.0), "read once, kept"
        assert _settings.get("budget") == 2.5, "a key not read yet is read when first asked for"
        with _settings.one_reading():
            assert _settings.get("max_attempts") == 7, "a reading within another is that one"
        in_thread = []
        thread = threading.Thread(target=lambda: in_thread.append(_settings.get("max_attempts")))
        thread.start(), thread.join()
        assert in_thread == [9], "a thread started within reads afresh"
    assert (_settings.get("max_attempts"), _settings.task_success_overtime()) == (9, 40.0), "after it, read afresh"


def test_a_value_refused_in_a_reading_is_refused_again_not_kept(monkeypatch):
    monkeypatch.setenv("AIRFLOW__ORDO_HOOKS__MAX_ATTEMPTS", "0")
    with _settings.one_reading():
        for _ in range(2):
            with pytest.raises(SettingsError, match="max_attempts"):
                _settings.get("max_attempts")


def test_the_configuration_references_table_says_what_the_settings_module_does():
    # the table of docs/configuration.md, as its Sphinx extension renders it
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "docs" / "_ext" / "ordo_settings.py"
    spec = importlib.util.spec_from_file_location("ordo_settings", path)
    extension = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(extension)
    rows = {r.name: (r.default, r.allowed) for r in extension.rows()}
    for setting in _settings.SETTINGS:
        default, allowed = rows[setting.name]
        if setting.kind is str:
            assert default.strip("`") == (setting.default or "(none)")
        elif setting.kind is bool:
            assert setting.convert(default) == setting.default and allowed == "true or false"
        else:
            assert setting.convert(default) == setting.default
            assert allowed == setting.bounds
