"""``airflow ordo-hooks …``: the provider's commands, registered through its ``cli`` metadata (Airflow ≥ 3.2)."""
