from __future__ import annotations

import pytest

from airflow_ordo_hooks.testing.receiver import WebhookReceiver


@pytest.fixture(scope="session")
def _receiver_server():
    with WebhookReceiver() as receiver:
        yield receiver


@pytest.fixture
def receiver(_receiver_server):
    """A real HTTP receiver on loopback, shared by the session, emptied for each test."""
    _receiver_server.reset()
    yield _receiver_server
    _receiver_server.reset()
