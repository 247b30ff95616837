"""Operators the hooks add to DAGs: ``TriggerJobOperator`` (cheek's trigger_job), ``CallWebhookOperator`` (Ordo's on_exit)."""
