"""The originals' own configs from the seed documents (../shared/seeds), as written there, for the tests."""

CHEEK_SCHEDULE = """
on_success:
  notify_webhook:
    - https://webhook.site/e33464a3-1a4f-4f1a-99d3-743364c6b10f
jobs:
  coffee:
    command: this fails # this will create on_error event
    cron: "* * * * *"
    retries: 3 # retry up to 3 times before giving up
    on_error:
      notify_webhook: # fires after each failed attempt
        - https://webhook.site/e33464a3-1a4f-4f1a-99d3-743364c6b10f
    on_retries_exhausted:
      trigger_job: # only fires once when all retries fail
        - cleanup_job
      notify_webhook:
        - https://webhook.site/critical-alerts
  beans:
    command: echo grind # this will create on_success event
    cron: "* * * * *"
"""

_COFFEE = CHEEK_SCHEDULE.split("  coffee:\n")[1].split("  beans:\n")[0]
COFFEE_HOOKS = "\n".join(line[4:] for line in _COFFEE.splitlines() if line.startswith(("    on_", "      ")))
"""coffee's job-level hooks: its on_* blocks as written, dedented."""
