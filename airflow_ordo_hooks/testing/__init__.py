"""Public helpers for testing DAGs that use these hooks: a real webhook receiver, an embedded Airflow.

``WebhookReceiver`` (``testing.receiver``) records every request on a loopback port and can be
told to misbehave; ``isolate_airflow`` and ``load_dags`` (``testing.embedded``) give a test an
Airflow home and SQLite database of its own. They are part of the public API: their names and
signatures change only with a new major version.
"""
