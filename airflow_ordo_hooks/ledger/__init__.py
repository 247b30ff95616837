"""The delivery ledger's server side: its tables in Airflow's database, their store, and redelivery.

Every event delivery (one event of one try, to one target) is a row, with its attempts. Workers
and the DAG processor have no database access: they send what they delivered, or could not, to
the API server (``plugins/ledger_api.py``), which records it here and redelivers what failed on
``[ordo_hooks] redelivery_schedule`` (``redelivery.py``). Private: run only in the API server and
by ``airflow db migrate``; nothing a DAG file imports imports this package.
"""
