"""Webhook targets: what a target may be, checked where a config is read, and how any text we write names one.

A target is an ``http://`` / ``https://`` URL, or ``conn:<conn_id>[/<endpoint>]`` naming an
Airflow HTTP connection (so that secrets stay in connections, not in DAG files). Pure functions.
"""

from __future__ import annotations

import functools
import hashlib
import re
import reprlib
import unicodedata
from collections.abc import Iterable
from typing import NamedTuple
from urllib.parse import unquote, urlsplit

from airflow_ordo_hooks.exceptions import TargetError

CONN_PREFIX = "conn:"
"""A target written ``conn:<conn_id>`` or ``conn:<conn_id>/<endpoint>`` uses an Airflow HTTP connection."""
MAX_ID = 250
"""Airflow's limit on ids (``airflow.models.base.ID_LEN``): DAG ids, task ids, connection ids."""
MAX_TARGET = 2048
"""The longest target: the common practical limit of a URL; Slack's and Discord's are about 120 characters."""
_CONN_ID = r"[\w.-]{1,%d}" % MAX_ID
# patterns are compiled (and cached by ``re``) on first use, not by every DAG file that imports this module


def fingerprint(target: str) -> str:
    """
    A target's short name for counting and grouping (16 hex digits of its SHA-256): two targets
    masked alike (every Slack webhook is ``https://hooks.slack.com/…``) differ in it, and it names
    the target without showing it. A secret in a URL (a Slack path, a token) is long and random, so
    the digest does not give it away.
    """
    return hashlib.sha256(target.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def _shown(target: object) -> str:
    """
    ``target`` for a message: a URL masked as every text of this package names one (its path,
    query and credentials may be secrets), anything else as ``repr``, cut to 200 characters.
    """
    if isinstance(target, str) and ("://" in target or re.match(r"(?i)https?:", target)) and _has_secret_parts(target):
        target = mask_url(target[:MAX_TARGET])
    if isinstance(target, str):
        return repr(target) if len(target) <= 200 else f"{repr(target[:201])[:200]}... ({len(target)} characters)"
    return reprlib.repr(target)


def _has_secret_parts(url: str) -> bool:
    """Whether ``url`` has what :func:`mask_url` hides: credentials, a path, a query or a fragment."""
    parts = _parse(url)
    if parts is None:  # then as the standard library reads it: a text that neither can read is masked
        try:
            plain = urlsplit(url)
        except ValueError:
            return True
        return bool(plain.username or plain.password or plain.path.strip("/") or plain.query or plain.fragment)
    return bool(parts.auth or (parts.path or "").strip("/") or parts.query or parts.fragment)


def _control(text: str) -> str | None:
    """The first control or invisible formatting character of ``text`` (NUL, ESC, a bidi override), if any."""
    return next((c for c in text if unicodedata.category(c) in ("Cc", "Cf", "Cs")), None)


def mask_url(url: str) -> str:
    """
    The URL as any text of this package names it: scheme and host[:port] only, then the first 6
    hex digits of its fingerprint (``fingerprint``): ``https://hooks.slack.com/…#3f9a1c``. Credentials, path
    and query never show; two URLs of one host stay distinguishable.
    """
    short = fingerprint(url)[:6]
    parts = _parse(url)
    if parts is None:
        return f"<malformed URL>#{short}"
    host = f"[{parts.host}]" if ":" in parts.host else parts.host
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}/…#{short}"


class Url(NamedTuple):
    """A URL as urllib3 reads it to connect: the host lower-case, without brackets, IDNA-encoded."""

    scheme: str
    host: str
    port: int | None
    auth: str | None
    path: str | None
    query: str | None
    fragment: str | None

    @property
    def origin(self) -> tuple[str, str, int | None]:
        """``(scheme, host, port)``, the port written or the scheme's."""
        return self.scheme, self.host, self.port or {"http": 80, "https": 443}.get(self.scheme)


def read_url(url: str) -> Url:
    """
    ``url`` as the connection reads it: by urllib3's ``parse_url``, which requests uses. Every host
    this package checks, connects to or names in a text comes from here, so that what is checked
    and logged is what is connected to.

    :raises TargetError: urllib3 cannot read it, or finds no scheme or host.
    """
    parts = _parse(url)
    if parts is None:
        raise TargetError(f"{_shown(url)} is not a valid URL")
    if not parts.scheme or not parts.host:
        raise TargetError(f"{_shown(url)}: the URL has no host")
    return parts


@functools.lru_cache(maxsize=256)
def _parse(url: str) -> Url | None:
    """
    ``url`` as urllib3 reads it, host and scheme lower-case and empty when absent; ``None`` when it
    cannot. Kept for the few URLs a process sends to: a delivery reads its URL four times (its
    masked name, its origin, the check).
    """
    from urllib3.exceptions import LocationParseError
    from urllib3.util import parse_url

    try:
        parts = parse_url(url)
    except (LocationParseError, ValueError, UnicodeError):
        return None
    host = (parts.host or "").lower()
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    return Url((parts.scheme or "").lower(), host, parts.port, parts.auth, parts.path, parts.query, parts.fragment)


def check_target(target: object, *, templates: bool = True) -> str:
    """
    Return ``target`` if it is a usable webhook target, else raise :class:`~airflow_ordo_hooks.exceptions.TargetError` saying why.

    A target is an ``http://`` or ``https://`` URL with a host, or ``conn:<conn_id>[/<endpoint>]``
    naming an Airflow HTTP connection (so that secrets stay in connections, not in DAG files), at
    most ``MAX_TARGET`` (2,048) characters, without control characters.

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
        if not re.fullmatch(_CONN_ID, conn_id) or not conn_id.strip("."):
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
    scheme, sep, _ = target.partition("://")
    if not sep or scheme.lower() not in ("http", "https"):
        if any(c.isspace() for c in target):
            raise TargetError(f"{_shown(target)}: a URL cannot contain white space")
        raise TargetError(f"{_shown(target)}: expected an http:// or https:// URL, or 'conn:<conn_id>'")
    _check_unambiguous(target)
    return target


_RFC3986 = r"(?:[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=]+|%[0-9A-Fa-f]{2})*"
"""A URL's characters (RFC 3986): unreserved, reserved and ``%XX``; anything else parsers read differently."""
_USERINFO = r"(?:[A-Za-z0-9\-._~!$&'()*+,;=:]|%[0-9A-Fa-f]{2})*"
_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_HOST_NAME = rf"(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*\.?"
"""A DNS name: letters, digits, ``-`` and ``_`` in labels of at most 63; nothing that a resolver or a parser decodes."""
_NUMERIC_LABEL = r"0[xX][0-9A-Fa-f]*|[0-9]+"


def _check_unambiguous(url: str) -> None:
    """
    Raise :class:`TargetError` unless every URL parser reads ``url`` alike: RFC 3986 characters
    only, one ``@`` at the most, a host that is a DNS name, a dotted-decimal IPv4 address or a
    bracketed IPv6 address, a port of digits from 1 to 65535. What urlsplit (the standard library)
    and urllib3 (which connects) disagree on is refused here, before either is asked.
    """
    _check_characters(url)
    authority = re.split(r"[/?#]", url.split("://", 1)[1], maxsplit=1)[0]
    userinfo, at, hostport = authority.rpartition("@")
    if userinfo.count("@") or (at and not re.fullmatch(_USERINFO, userinfo)):
        raise TargetError(f"{_shown(url)}: its user information is not one RFC 3986 allows (one '@' at the most), "
                          "which URL parsers read differently")
    port = _check_ipv6_host(url, hostport) if hostport.startswith("[") else _check_host(url, hostport)
    if port is not None and not (port.isdigit() and 1 <= int(port) <= 65535):
        raise TargetError(f"{_shown(url)} is not a valid URL: expected a port from 1 to 65535 after ':', got {port[:20]!r}")


def _check_characters(url: str) -> None:
    """Refuse a character RFC 3986 does not allow in a URL (or a '%' that encodes nothing), saying why."""
    allowed = re.match(_RFC3986, url)
    if allowed.end() == len(url):
        return
    char = url[allowed.end()]
    authority_end = re.search(r"[/?#]", url[url.index("://") + 3 :])
    in_authority = authority_end is None or allowed.end() < url.index("://") + 3 + authority_end.start()
    if char == "\\":
        why = "a backslash, which URL parsers read differently (urllib3 as '/', urlsplit as part of the host)"
    elif char.isspace():
        why = "white space: a URL cannot contain white space"
    elif ord(char) > 127 and in_authority:
        why = f"the non-ASCII character {char!r} in its host: write the host in punycode (xn--...)"
    elif ord(char) > 127:
        why = f"the non-ASCII character {char!r}: percent-encode it"
    elif char == "%":
        why = "a '%' not followed by two hex digits"
    else:
        why = f"the character {char!r}, which RFC 3986 does not allow in a URL: percent-encode it"
    raise TargetError(f"{_shown(url)}: contains {why}")


def _check_ipv6_host(url: str, hostport: str) -> str | None:
    """Refuse a bracketed host that is not an IPv6 address without a zone; the port written after it, if any."""
    import ipaddress

    host, bracket, port = hostport[1:].partition("]")
    if not bracket or (port and not port.startswith(":")):
        raise TargetError(f"{_shown(url)}: expected ':<port>' after the IPv6 address")
    try:
        if "%" in host:  # a zone: urllib3 decodes its %25, urlsplit does not
            raise ValueError(host)
        ipaddress.IPv6Address(host)
    except ValueError:
        raise TargetError(f"{_shown(url)}: {host!r} is not an IPv6 address (without a zone)") from None
    return port[1:] if port else None


def _check_host(url: str, hostport: str) -> str | None:
    """Refuse a host that is not a DNS name or a dotted-decimal IPv4 address; the port written after it, if any."""
    import ipaddress

    host, has_port, port = hostport.partition(":")
    if not host:
        raise TargetError(f"{_shown(url)}: the URL has no host")
    if not re.fullmatch(_HOST_NAME, host):
        raise TargetError(f"{_shown(url)}: the host {host!r} is not a DNS name or an IP address "
                          "(letters, digits, '-', '_' and '.'; IPv6 in brackets)")
    if re.fullmatch(_NUMERIC_LABEL, host.rstrip(".").rpartition(".")[2]):  # as WHATWG and inet_aton read a host
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            raise TargetError(f"{_shown(url)}: the host {host!r} is read as an IPv4 address by some parsers and resolvers, "
                              "and as a name by others: write an address as four decimal numbers (127.0.0.1)") from None
    return port if has_port else None


def read_checked(url: str) -> Url:
    """
    ``url`` as :func:`read_url` reads it, once :func:`check_target` has found it unambiguous and
    the standard library's ``urlsplit`` reads the same scheme, host, port and user information
    (check_target's own rules, which a DAG file pays for without importing urllib3, admit only
    such URLs; this proves it where the URL is sent).

    :raises TargetError: ``url`` is not a URL check_target accepts, or the parsers disagree.
    """
    check_target(url, templates=False)
    if url.startswith(CONN_PREFIX):
        raise TargetError(f"{_shown(url)}: expected an http:// or https:// URL")
    read = read_url(url)
    plain = urlsplit(url)
    if (plain.scheme, (plain.hostname or "").rstrip("."), plain.port, plain.netloc.rpartition("@")[0] or None) != (
        read.scheme, read.host.rstrip("."), read.port, read.auth
    ):
        raise TargetError(f"{_shown(url)}: URL parsers read its host, port or user information differently")
    return read


_URL_IN_TEXT = r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+"
_MASKED = r"[A-Za-z][A-Za-z0-9+.-]*://[^\s/]*/…#[0-9a-f]{6}"


def mask_text(text: str, urls: Iterable[str] = ()) -> str:
    """
    ``text`` (an exception's message, a log line) with every URL in it masked by :func:`mask_url`,
    and every part of ``urls`` it quotes on its own (requests writes ``with url: /path?query``, a
    ``Location`` may be relative) replaced by the masked URL.
    """
    for url in (u for u in urls if "://" in u):  # a conn: target names no secret
        masked = mask_url(url)
        pieces = {url}
        try:
            parts = urlsplit(url)
            pieces |= {parts.path + (f"?{parts.query}" if parts.query else ""), parts.path, parts.query}
            userinfo = parts.netloc.rpartition("@")[0]
            pieces |= {userinfo, parts.password or "", parts.username or ""} if userinfo else set()
        except ValueError:
            pass
        read = _parse(url)  # and as the connection reads it, which is what requests quotes
        if read is not None:
            pieces |= {(read.path or "") + (f"?{read.query}" if read.query else ""), read.path or "", read.query or "",
                       read.auth or "", *(read.auth or "").split(":", 1)}
        for piece in sorted((p for p in pieces if len(p) >= 4), key=len, reverse=True):
            text = text.replace(piece, masked)
    return re.sub(_URL_IN_TEXT, _mask_match, text)


def _mask_match(match: re.Match[str]) -> str:
    found = match.group()
    url = found.rstrip(").,;:]")  # the sentence's punctuation, not the URL's
    return found if re.fullmatch(_MASKED, url) else mask_url(url) + found[len(url) :]
