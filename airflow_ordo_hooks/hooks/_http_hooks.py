"""The ``HttpHook`` subclass for a webhook target given as a connection (``conn:<conn_id>``).

Kept apart from :mod:`airflow_ordo_hooks.hooks.webhook` only because importing ``HttpHook`` is
slow (it imports aiohttp); import it from there. It sends through that module's request-and-retry
primitive. Airflow's REST API has a client of its own, :mod:`airflow_ordo_hooks.hooks.airflow_api`,
which does not need ``HttpHook``.
"""

from __future__ import annotations

from typing import Any

import requests
from airflow.providers.http.hooks.http import HttpHook

from airflow_ordo_hooks.hooks._http import SIGNING_SECRET_EXTRA, _keep_method_on_redirects, _shared_adapter
from airflow_ordo_hooks.hooks.airflow_api import AirflowApiError, AirflowApiHook, mask_secrets

__all__ = ["AirflowApiError", "AirflowApiHook", "WebhookHook"]  # the REST API's client used to live here


class WebhookHook(HttpHook):
    """
    A webhook receiver described by an Airflow HTTP connection (a ``conn:<conn_id>`` target).

    Host, port, schema, login and password, and the extra's headers are used as ``HttpHook`` uses
    them; the extra key ``signing_secret`` (a Standard Webhooks ``whsec_…`` secret) signs the
    deliveries and is never sent. Send with :func:`~airflow_ordo_hooks.hooks.webhook.deliver`.

    :param http_conn_id: the HTTP connection of the receiver.
    """

    conn_name_attr = "http_conn_id"
    default_conn_name = "ordo_webhook_default"
    conn_type = "http"
    hook_name = "Ordo Hooks webhook"

    def __init__(self, http_conn_id: str = default_conn_name) -> None:
        # one pool for the process instead of a keep-alive adapter per hook: deliveries are short
        super().__init__(method="POST", http_conn_id=http_conn_id, adapter=_shared_adapter())
        self.signing_secret: str | None = None

    def get_conn(self, headers: dict[Any, Any] | None = None, extra_options: dict[str, Any] | None = None) -> requests.Session:
        """HttpHook's session, following only redirects that keep the POST, without the signing secret as a header."""
        session = super().get_conn(headers, extra_options)
        # HttpHook sends every unknown extra key as a header: keep the secret out of them.
        self.signing_secret = session.headers.pop(SIGNING_SECRET_EXTRA, None)
        mask_secrets(self.signing_secret, getattr(session.auth, "password", None))
        return _keep_method_on_redirects(session)
