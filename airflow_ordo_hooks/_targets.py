"""Webhook targets: what a target may be, checked where a config is read, and how any text we write names one.

A target is an ``http://`` / ``https://`` URL, or ``conn:<conn_id>[/<endpoint>]`` naming an
Airflow HTTP connection (so that secrets stay in connections, not in DAG files). Pure functions.
"""

from __future__ import annotations

import re
import reprlib
import unicodedata
from urllib.parse import unquote, urlsplit

from airflow_ordo_hooks.exceptions import TargetError

CONN_PREFIX = "conn:"
"""A target written ``conn:<conn_id>`` or ``conn:<conn_id>/<endpoint>`` uses an Airflow HTTP connection."""
MAX_ID = 250
"""Airflow's limit on ids (``airflow.models.base.ID_LEN``): DAG ids, task ids, connection ids."""
MAX_TARGET = 2048
"""The longest target: the common practical limit of a URL; Slack's and Discord's are about 120 characters."""
_CONN_ID = re.compile(r"[\w.-]{1,%d}" % MAX_ID)


def _shown(target: object) -> str:
    """``repr(target)`` for a message, cut to 200 characters (the length of a longer string added)."""
    if isinstance(target, str):
        return repr(target) if len(target) <= 200 else f"{repr(target[:201])[:200]}... ({len(target)} characters)"
    return reprlib.repr(target)


def _control(text: str) -> str | None:
    """The first control or invisible formatting character of ``text`` (NUL, ESC, a bidi override), if any."""
    return next((c for c in text if unicodedata.category(c) in ("Cc", "Cf", "Cs")), None)



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


def check_target(target: object, *, templates: bool = True) -> str:
    """
    Return ``target`` if it is a usable webhook target, else raise :class:`TargetError` saying why.

    A target is an ``http://`` or ``https://`` URL with a host, or ``conn:<conn_id>[/<endpoint>]``
    naming an Airflow HTTP connection (so that secrets stay in connections, not in DAG files), at
    most :data:`MAX_TARGET` characters, without control characters.

    :param templates: whether a Jinja template (``{{ ... }}``) is accepted, to be checked once
        rendered: the notifiers render theirs; a hooks config or a cheek schedule is never rendered.
    """
    if not isinstance(target, str) or not target.strip():
        raise TargetError(f"expected a URL or 'conn:<conn_id>', got {_shown(target)}")
    if len(target) > MAX_TARGET:
        raise TargetError(f"{_shown(target)}: longer than {MAX_TARGET} characters")
    if target != target.strip():
        raise TargetError(f"{_shown(target)} has leading or trailing white space")
    control = _control(target)
    if control is not None:
        raise TargetError(f"{_shown(target)}: contains the control character {control!r}")
    if target.startswith(CONN_PREFIX):
        conn_id, _, endpoint = target[len(CONN_PREFIX) :].partition("/")
        if not _CONN_ID.fullmatch(conn_id) or not conn_id.strip("."):
            raise TargetError(
                f"{_shown(target)}: expected 'conn:<conn_id>' with a connection id of letters, digits, _ - . "
                f"(not only dots, at most {MAX_ID})"
            )
        path = re.split(r"[?#]", endpoint, maxsplit=1)[0]
        if any(unquote(segment) == ".." for segment in path.split("/")):
            raise TargetError(f"{_shown(target)}: the endpoint cannot contain '..' segments")
        return target
    if "{{" in target:  # templated: checked once rendered, when it is sent
        if not templates:
            raise TargetError(
                f"{_shown(target)}: a template ({{{{ ... }}}}) is never rendered here; "
                "use a notifier (JobEventWebhookNotifier and its kin render their target), "
                "or an environment variable as ${NAME} in a cheek schedule"
            )
        return target
    try:
        parts = urlsplit(target)
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError as exc:
        raise TargetError(f"{_shown(target)} is not a valid URL: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise TargetError(f"{_shown(target)}: expected an http:// or https:// URL, or 'conn:<conn_id>'")
    if not parts.hostname:
        raise TargetError(f"{_shown(target)}: the URL has no host")
    if any(c.isspace() for c in target):
        raise TargetError(f"{_shown(target)}: a URL cannot contain white space")
    return target
