"""Webhook targets: what a target may be, checked where a config is read, and how any text we write names one.

A target is an ``http://`` / ``https://`` URL, or ``conn:<conn_id>[/<endpoint>]`` naming an
Airflow HTTP connection (so that secrets stay in connections, not in DAG files). Pure functions.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from airflow_ordo_hooks.exceptions import TargetError

CONN_PREFIX = "conn:"
"""A target written ``conn:<conn_id>`` or ``conn:<conn_id>/<endpoint>`` uses an Airflow HTTP connection."""


def mask_url(url: str) -> str:
    """The URL with what may be secret replaced by ``***``: credentials, query, and the path past its first segment."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "<malformed URL>"
    host = parts.hostname or ""
    if port:
        host = f"{host}:{port}"
    if parts.username or parts.password:
        host = f"***@{host}"
    segments = [s for s in parts.path.split("/") if s]
    path = f"/{segments[0]}" if segments else "/"
    if len(segments) > 1:
        path += "/***"
    query = "?***" if parts.query else ""
    return f"{parts.scheme}://{host}{path}{query}"


def check_target(target: object) -> str:
    """
    Return ``target`` if it is a usable webhook target, else raise :class:`TargetError` saying why.

    A target is an ``http://`` or ``https://`` URL with a host, or ``conn:<conn_id>[/<endpoint>]``
    naming an Airflow HTTP connection (so that secrets stay in connections, not in DAG files).
    """
    if not isinstance(target, str) or not target.strip():
        raise TargetError(f"expected a URL or 'conn:<conn_id>', got {target!r}")
    if target != target.strip():
        raise TargetError(f"{target!r} has leading or trailing white space")
    if target.startswith(CONN_PREFIX):
        conn_id = target[len(CONN_PREFIX) :].split("/", 1)[0]
        if not conn_id or not all(c.isalnum() or c in "_-." for c in conn_id):
            raise TargetError(f"{target!r}: expected 'conn:<conn_id>' with a connection id of letters, digits, _ - .")
        return target
    if "{{" in target:  # templated: checked once rendered, when it is sent
        return target
    try:
        parts = urlsplit(target)
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError as exc:
        raise TargetError(f"{target!r} is not a valid URL: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise TargetError(f"{target!r}: expected an http:// or https:// URL, or 'conn:<conn_id>'")
    if not parts.hostname:
        raise TargetError(f"{target!r}: the URL has no host")
    if any(c.isspace() for c in target):
        raise TargetError(f"{target!r}: a URL cannot contain white space")
    return target
