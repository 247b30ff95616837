"""The Airflow plugins the provider registers: the delivery ledger's routes and redelivery, in the API server."""
