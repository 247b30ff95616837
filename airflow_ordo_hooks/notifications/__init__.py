"""Notifiers (``BaseNotifier``) sending cheek's job-event payloads."""
