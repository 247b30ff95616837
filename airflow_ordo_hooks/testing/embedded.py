"""An embedded Airflow for tests, the demo and benchmarks: its own home, SQLite database and dags folder."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from airflow.dag_processing.dagbag import DagBag


def isolate_airflow(home: Path, dags_folder: Path, **config: str) -> None:
    """
    Point Airflow at ``home`` (SQLite inside it) and ``dags_folder``, before Airflow is imported.

    :param config: more settings, as ``SECTION__KEY="value"`` (e.g. ``LOGGING__LOGGING_LEVEL="ERROR"``).
    """
    os.environ.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__DAGS_FOLDER=str(dags_folder),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home}/airflow.db",
        AIRFLOW__LOGGING__BASE_LOG_FOLDER=str(home / "logs"),
        **{f"AIRFLOW__{key}": value for key, value in config.items()},
    )


def load_dags(dags_folder: Path) -> DagBag:
    """Create the database and parse every DAG file of ``dags_folder``; raise if one fails to import."""
    from airflow.dag_processing.dagbag import DagBag
    from airflow.utils import db

    db.initdb()
    bag = DagBag(dag_folder=str(dags_folder))
    if bag.import_errors:
        raise RuntimeError(f"DAG files failed to import: {bag.import_errors}")
    return bag


@contextmanager
def serve_api_app() -> Iterator[str]:
    """
    Airflow's API app, as ``airflow api-server`` builds it (``create_app()``), with this package's
    plugin read from its provider metadata (whatever an editable install's entry points hold),
    served by uvicorn on a free loopback port with its lifespan; yields its base URL.
    """
    import socket
    import threading
    import time

    import uvicorn
    from airflow import plugins_manager, settings
    from airflow.api_fastapi.app import create_app

    lazy = settings.LAZY_LOAD_PROVIDERS
    settings.LAZY_LOAD_PROVIDERS = False
    plugins_manager._get_plugins.cache_clear()
    plugins_manager.get_fastapi_plugins.cache_clear()
    sock = socket.socket()
    try:
        sock.bind(("127.0.0.1", 0))
        server = uvicorn.Server(uvicorn.Config(create_app(), lifespan="on", log_config=None, access_log=False))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        deadline = time.monotonic() + 60
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the API server did not start")
            time.sleep(0.05)
        try:
            yield f"http://127.0.0.1:{sock.getsockname()[1]}"
        finally:
            server.should_exit = True
            thread.join(30)
    finally:
        sock.close()
        settings.LAZY_LOAD_PROVIDERS = lazy
        plugins_manager._get_plugins.cache_clear()
        plugins_manager.get_fastapi_plugins.cache_clear()
