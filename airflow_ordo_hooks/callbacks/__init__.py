"""The callback side: what runs when an event fires, in a task's process or in the DAG processor.

One callback wrapper for every event (:mod:`.job_event`), the payloads it builds, the one delivery
pipeline (:mod:`.outbox`) and the ledger's client (:mod:`.ledger_client`), which reaches the
ledger through the API server: nothing here touches Airflow's database. Internal.
"""
