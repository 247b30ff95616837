"""A cheek schedule loaded from YAML: each field, run under dag.test() (see tests/dag_file/test_cheek_schedule.py)."""

from __future__ import annotations

import os

from airflow_ordo_hooks import load_cheek_schedule

RECEIVER = os.environ.get("ORDO_HOOKS_RECEIVER", "http://127.0.0.1:8765")

load_cheek_schedule(f"""
tz_location: Europe/Brussels
on_success:
  notify_webhook: [{RECEIVER}/yaml/schedule/on_success]
jobs:
  yaml_this_fails:
    command: this fails
    cron: "@15minutes"
    retries: 1
    disable_concurrent_execution: true
    on_error:
      notify_webhook: [{RECEIVER}/yaml/yaml_this_fails/on_error]
    on_retries_exhausted:
      trigger_job: [yaml_cleanup]
      notify_webhook: [{RECEIVER}/yaml/yaml_this_fails/on_retries_exhausted]
  yaml_env_and_cwd:
    command: [sh, -c, 'test "$GREETING" = "hello world" && test "$(pwd)" = /tmp && test "$(printf é)" = é']
    cron: "30 6 * * 1-5"
    env:
      GREETING: hello world
    working_directory: /tmp
    encoding: utf-8
  yaml_cleanup:
    command: echo cleaning up
""")
