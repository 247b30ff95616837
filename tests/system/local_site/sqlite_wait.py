"""
How long each process of the local deployment waits for SQLite's write lock: Airflow's
``[database] sql_alchemy_connect_args`` (``sqlite_wait.CONNECT_ARGS``), this folder on ``PYTHONPATH``.

Airflow 3.3's API server writes its audit-log row (``action_logging``, a dependency of every REST
PATCH and POST) in an ``async`` function, so inside its event loop. A request of the execution API
that has written in a worker thread closes its session, and commits, from that same loop. When
the audit-log INSERT comes between the two, it waits for a lock only the loop it blocks can
release: the whole API server stalls (the execution API included) until sqlite3 gives up. Seen in
the suite: with a 60 s wait the stall lasted 60 s, and the scheduler, waiting behind it, met
"database is locked" and left its loop (``airflow standalone`` does not restart it).

So the API server gives up after :data:`API_SERVER_WAIT` (the REST call that caused it answers
500 and is asked again), and every other process waits :data:`OTHERS_WAIT`, longer than any
stall of the API server: the scheduler outlasts it. The stall is also shorter than the delivery
budget the harness gives the provider (``[ordo_hooks] budget`` = 3 s), which bounds a worker's
calls to the ledger: a callback that records its deliveries during a stall still gets them in.
"""

from __future__ import annotations

import sys

API_SERVER_WAIT = 2.0
"""The longest the API server's loop stalls (sqlite3's default is 5 s)."""

OTHERS_WAIT = 60.0

CONNECT_ARGS = {"timeout": API_SERVER_WAIT if "api-server" in sys.argv[1:] else OTHERS_WAIT}
