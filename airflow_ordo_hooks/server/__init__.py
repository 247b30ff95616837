"""The API-server side: the delivery ledger's tables in Airflow's database, their store, API and redelivery.

Every event delivery (one event of one try, to one target) is a row, with its attempts. Workers
and the DAG processor have no database access: they send what they delivered, or could not, to
the API server (:mod:`.api`), which records it here and redelivers what failed on
``[ordo_hooks] redelivery_schedule`` (:mod:`.redelivery`). Private: run only in the API server and
by ``airflow db migrate``; nothing a DAG file imports imports this package.
"""
