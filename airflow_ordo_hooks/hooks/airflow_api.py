"""The client of Airflow's REST API: the delivery ledger's endpoint, starting runs, reading a run.

Every callback that records a delivery goes through here, in a task process that was started for
this one try: so the client is built from the connection with ``requests`` alone, not on
``HttpHook`` (which imports aiohttp, several times the cost of the request it would make).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook

from airflow_ordo_hooks import _settings
from airflow_ordo_hooks.exceptions import AirflowApiError
from airflow_ordo_hooks.hooks._http import USER_AGENT, DeliveryPolicy, _Outcome, _send, _shared_adapter, _with_retries

if TYPE_CHECKING:
    import requests

__all__ = ["AirflowApiError", "AirflowApiHook", "LEDGER_PATH"]

PAGE_SIZE = 100  # the API server's default [api] maximum_page_limit
LEDGER_PATH = "/ordo-hooks/api/v1/deliveries"
"""The delivery ledger's endpoint, served by this provider's plugin on the API server."""
TOKEN_EXTRA = "token"
"""Key in the REST API connection's extra holding a JWT to use instead of exchanging login and password."""
_NOT_HEADERS = frozenset({
    TOKEN_EXTRA, "verify", "verify_ssl", "cert", "proxies", "proxy", "trust_env",
    "stream", "timeout", "allow_redirects", "max_redirects", "check_response", "srv_lookup", "auth_type", "auth_kwargs",
})
"""Keys of the connection's extra that are options (HttpHook's names), not headers."""


def mask_secrets(*secrets: str | None) -> None:
    """Have Airflow's secrets masker hide the connection's secrets in every log line, the supervisor's included."""
    from airflow.sdk.log import mask_secret

    for secret in filter(None, secrets):
        mask_secret(secret)


def base_url(host: str | None, schema: str | None, port: int | None) -> str:
    """The API server's address as ``HttpHook`` reads an HTTP connection: a host with a scheme is taken as it is."""
    host = host or ""
    url = host if "://" in host else f"{schema or 'http'}://{host}"
    return f"{url.rstrip('/')}:{port}" if port else url.rstrip("/")


class AirflowApiHook(BaseHook):
    """
    A client of Airflow's public REST API v2 on an HTTP connection (host and port of the API
    server; login and password exchanged at ``/auth/token``, or ``{"token": "<JWT>"}`` in the extra).

    The connection is read as ``HttpHook`` reads it: a host with or without its scheme, ``schema``,
    ``port``; the extra's ``verify``, ``cert``, ``proxies`` and ``trust_env`` set the session, and its
    other keys are sent as headers.

    Every request is bounded by the ``[ordo_hooks]`` connect and read timeouts and budget, and
    retried on connection errors, 429 and 5xx like a delivery, except the POST creating a run:
    that one is retried only when it cannot have reached the server, so that no run is started twice.

    Creating the hook reads the connection and gets the token, so that an unusable connection
    fails there, before any request is made.

    :param http_conn_id: the connection; ``[ordo_hooks] api_conn_id`` when not given.
    :param policy: timeouts, budget and retries; ``DeliveryPolicy.from_airflow_config()`` when not given.
    :param deadline: a ``time.monotonic()`` value bounding every request of the hook, the token's
        included: none starts past it and none outlives it (an :class:`~airflow_ordo_hooks.exceptions.AirflowApiError` says so),
        so that a callback can count what it asks of the API against its own time.
    """

    conn_name_attr = "http_conn_id"
    default_conn_name = _settings.BY_NAME["api_conn_id"].default
    conn_type = "http"
    hook_name = "Airflow REST API (Ordo Hooks)"

    def __init__(
        self, http_conn_id: str | None = None, *, policy: DeliveryPolicy | None = None, deadline: float | None = None
    ) -> None:
        super().__init__()
        self.http_conn_id = http_conn_id or _settings.get("api_conn_id")
        self.policy = policy or DeliveryPolicy.from_airflow_config()
        self.deadline = deadline
        self.base_url = ""
        self.session = self._authorised_session()

    def _authorised_session(self) -> requests.Session:
        """A session for the connection with a bearer token: the extra's, or one for its login and password."""
        import requests

        connection = self.get_connection(self.http_conn_id)
        self.base_url = base_url(connection.host, connection.schema, connection.port)
        extra = dict(connection.extra_dejson or {})
        session = requests.Session()
        session.mount("http://", _shared_adapter())
        session.mount("https://", _shared_adapter())
        session.verify = extra.get("verify", extra.get("verify_ssl", True))
        session.cert = extra.get("cert")
        session.proxies = extra.get("proxies", extra.get("proxy")) or {}
        session.trust_env = extra.get("trust_env", True)
        session.headers.update({k: str(v) for k, v in extra.items() if k not in _NOT_HEADERS})
        session.headers["User-Agent"] = USER_AGENT
        token = extra.get(TOKEN_EXTRA)
        mask_secrets(connection.password)
        if not token and connection.login:
            body = {"username": connection.login, "password": connection.password}
            token = self._call(session, "POST", "/auth/token", json=body).json()["access_token"]
        if token:
            mask_secrets(token)
            session.headers["Authorization"] = f"Bearer {token}"
        return session

    def url_from_endpoint(self, endpoint: str) -> str:
        """The URL of ``endpoint`` (``/api/v2/...``) on the API server."""
        return f"{self.base_url}/{endpoint.lstrip('/')}"

    def _call(self, session: requests.Session, method: str, path: str, *, create: bool = False, **kwargs: Any) -> requests.Response:
        url = self.url_from_endpoint(path)
        deadline = time.monotonic() + self.policy.budget
        if self.deadline is not None:
            if time.monotonic() >= self.deadline:
                raise AirflowApiError(f"{method} {path}: not sent, the caller's deadline has passed")
            deadline = min(deadline, self.deadline)

        def should_retry(outcome: _Outcome) -> bool:
            # A POST that creates something is repeated only when it cannot have been acted on.
            return outcome.retryable and (not create or not outcome.sent or outcome.status_code == 429)

        outcome = _with_retries(
            lambda: _send(session, method, url, self.policy, deadline, stream=False, **kwargs),
            self.policy, deadline, f"Airflow API {method} {path}", should_retry,
        )
        if not outcome.ok:
            raise AirflowApiError(f"{method} {path}: {outcome.error}", outcome.status_code)
        return outcome.response

    def get(self, path: str, **params: Any) -> Any:
        """The JSON body of a GET of ``path`` (e.g. ``/api/v2/dags/x/dagRuns/y``), with query ``params``."""
        return self._call(self.session, "GET", path, params=params).json()

    def text(self, path: str, **params: Any) -> str:
        """The body of a GET as text (a task log, for example)."""
        return self._call(self.session, "GET", path, params=params, headers={"Accept": "text/plain"}).text

    def pages(self, path: str, key: str, **params: Any) -> Iterator[dict[str, Any]]:
        """Every item of the list ``key`` of a paginated collection, page after page."""
        offset = 0
        while True:
            page = self.get(path, limit=PAGE_SIZE, offset=offset, **params)
            yield from page[key]
            offset += len(page[key])
            if not page[key] or offset >= page.get("total_entries", 0):
                return

    def record_deliveries(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """
        Hand deliveries to the delivery ledger (this provider's endpoint on the API server), which
        keeps them and redelivers what is pending; return each one's ``webhook_id``, ``state`` and
        whether it was new. Retried like a read: the ledger keeps one delivery per ``webhook_id``
        and does not add an attempt it already holds.
        """
        body = {"deliveries": items}
        return self._call(self.session, "POST", LEDGER_PATH, json=body).json()["deliveries"]

    def existing_deliveries(self, webhook_ids: list[str], *, dag_id: str) -> set[str]:
        """Which of ``webhook_ids`` the delivery ledger already holds as deliveries of ``dag_id``."""
        body = {"dag_id": dag_id, "webhook_ids": webhook_ids}
        return set(self._call(self.session, "POST", f"{LEDGER_PATH}/existing", json=body).json()["existing"])

    def trigger_dag_run(self, dag_id: str, conf: Mapping[str, Any], *, run_id: str | None = None) -> dict[str, Any]:
        """
        Start a run of ``dag_id`` now, with ``conf``; return the run as the API describes it.

        With ``run_id`` the request is idempotent: it is retried like a read (a 5xx, a timeout), and
        a run that already has that id (409, a first request that did reach the server) is the run
        returned, so one event never starts two runs. Without it, the request is not retried once
        it may have reached the server (a lost answer could otherwise start a second run); a
        connection that fails before sending, or a 429, is retried.
        """
        from urllib.parse import quote

        path = f"/api/v2/dags/{quote(dag_id, safe='')}/dagRuns"
        body: dict[str, Any] = {"logical_date": None, "conf": dict(conf)}
        if run_id is None:
            return self._call(self.session, "POST", path, create=True, json=body).json()
        body["dag_run_id"] = run_id
        try:
            return self._call(self.session, "POST", path, json=body).json()
        except AirflowApiError as exc:
            if exc.status_code != 409:
                raise
        return self.get(f"{path}/{quote(run_id, safe='')}")
