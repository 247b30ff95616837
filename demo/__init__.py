"""``make demo``: the example DAGs in an embedded Airflow, against a webhook receiver the demo runs itself."""
