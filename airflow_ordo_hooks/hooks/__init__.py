"""Hooks: the package's only HTTP path (webhook deliveries and Airflow's REST API)."""
