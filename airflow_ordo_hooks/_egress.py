"""The egress policy: where a request to a URL that the operator did not choose may connect.

A URL from a run's conf, and every URL the API server sends to, reaches public addresses only,
unless ``[ordo_hooks] allowed_hosts`` allows more (host names, addresses, CIDR blocks). An
address that embeds an IPv4 address (IPv4-mapped, IPv4-compatible, NAT64, 6to4, Teredo) counts
as the address it embeds. The policy is checked twice: :meth:`EgressPolicy.check_url` resolves
the host before anything is sent, for a clear error; :meth:`EgressPolicy.check_peer` is called by
the connection with the address it actually connected to, before a byte is sent (see
``hooks/_http.py``), and is the check that holds whatever the resolver answers the second time.

Whether such a request may go through the environment's proxy is ``[ordo_hooks] egress_proxy``:
a proxy resolves the host itself, so its own connection cannot be checked here.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Union

from airflow_ordo_hooks.exceptions import EgressRefused

REFUSED_PREFIX = "refused by egress policy: "
"""How every refusal's error text begins (in a :class:`~airflow_ordo_hooks.hooks.webhook.DeliveryRecord`
and the delivery ledger): a refused delivery is final, never retried."""

_Address = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]
_Network = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]

_NAT64 = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("64:ff9b:1::/48"))
_EMBEDDING_V4 = ipaddress.IPv6Network("::/8")
"""Unassigned but for forms that carry an IPv4 address in their last 32 bits: IPv4-compatible
(``::a.b.c.d``), IPv4-mapped (``::ffff:a.b.c.d``), IPv4-translated (``::ffff:0:a.b.c.d``)."""
_HOW = "allow it with [ordo_hooks] allowed_hosts"


@dataclass(frozen=True)
class EgressPolicy:
    """
    What a request to a URL that the operator did not choose may reach.

    :param names: host names allowed whatever they resolve to (lower-case, no trailing dot).
    :param networks: addresses and CIDR blocks allowed although not public.
    :param proxy: whether such a request may go through the environment's proxy.
    """

    names: frozenset[str] = frozenset()
    networks: tuple[_Network, ...] = ()
    proxy: bool = False

    @classmethod
    def parse(cls, allowed_hosts: str, *, proxy: bool = False) -> EgressPolicy:
        """The policy of ``allowed_hosts``, a comma list of host names, addresses and CIDR blocks."""
        names, networks = set(), []
        for entry in filter(None, (e.strip().lower().rstrip(".") for e in allowed_hosts.split(","))):
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            except ValueError:
                names.add(entry)
        return cls(frozenset(names), tuple(networks), proxy)

    @classmethod
    def from_settings(cls) -> EgressPolicy:
        """The policy of ``[ordo_hooks] allowed_hosts`` (or its former name) and ``egress_proxy``."""
        from airflow_ordo_hooks import _settings

        return cls.parse(_settings.allowed_hosts(), proxy=_settings.get("egress_proxy"))

    def allows_name(self, host: str) -> bool:
        """Whether the host name ``host`` is allowed by name (whatever it resolves to)."""
        return host.lower().strip("[]").rstrip(".") in self.names

    def why_not(self, address: _Address) -> str | None:
        """Why ``address`` may not be connected to (``"is a loopback address"``), or ``None`` when it may."""
        if address.is_unspecified:  # connecting to it reaches this host, whatever a CIDR block allows
            return _kind(address)
        inner = _embedded(address)
        for reached in inner or (address,):
            if any(reached in n for n in self.networks if n.version == reached.version) or _public(reached):
                continue
            return f"{_kind(reached)}" if reached is address else f"embeds {reached}, which {_kind(reached)}"
        return None

    def check_url(self, url: str) -> str:
        """
        Return ``url`` if it may be sent to as far as can be told before connecting, else raise
        :class:`EgressRefused` with a masked message saying why: an ``http(s)://`` URL that every
        parser reads alike (see :func:`~airflow_ordo_hooks._targets.check_target`), whose host is
        allowed by name, or whose addresses (resolved here) are all public or allowed. A host that
        does not resolve here is left to the connection, which checks the address it reaches.
        """
        import socket

        from airflow_ordo_hooks._targets import mask_url, read_checked
        from airflow_ordo_hooks.exceptions import TargetError

        try:
            parts = read_checked(url)
        except TargetError as exc:
            raise EgressRefused(str(exc)) from None
        if self.allows_name(parts.host):
            return url
        try:
            addresses, literal = [ipaddress.ip_address(parts.host)], True
        except ValueError:
            try:
                infos = socket.getaddrinfo(parts.host, parts.origin[2], type=socket.SOCK_STREAM)
            except (OSError, UnicodeError):
                return url
            addresses, literal = sorted({_address(info[4][0]) for info in infos}, key=str), False
        for address in addresses:
            why = self.why_not(address)
            if why is not None:
                what = parts.host if literal else f"{parts.host} resolves to {address}, which"
                raise EgressRefused(f"{mask_url(url)}: {what} {why}; {_HOW}")
        return url

    def check_peer(self, host: str, peer: str) -> None:
        """
        Raise :class:`EgressRefused` unless a connection to ``host`` that reached the address
        ``peer`` may be used: the host is allowed by name, or the address is public or allowed.
        The message says why, without the URL (the caller names it).
        """
        if self.allows_name(host):
            return
        address = _address(peer)
        why = self.why_not(address)
        if why is not None:
            host = host.strip("[]")
            what = host if host == str(address) else f"{host} connected to {address}, which"
            raise EgressRefused(f"{what} {why}; {_HOW}")


def _address(text: str) -> _Address:
    """An address as a socket gives it, without an IPv6 zone."""
    return ipaddress.ip_address(text.split("%", 1)[0])


def _embedded(address: _Address) -> tuple[ipaddress.IPv4Address, ...]:
    """The IPv4 addresses ``address`` stands for, if it is a form that carries them."""
    if address.version == 4 or int(address) <= 1:  # ``::`` and ``::1`` are themselves
        return ()
    last32 = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address in _EMBEDDING_V4 or any(address in n for n in _NAT64):
        return (last32,)
    if address.sixtofour is not None:
        return (address.sixtofour,)
    if address.teredo is not None:
        return address.teredo
    return ()


def _public(address: _Address) -> bool:
    return address.is_global and not (
        address.is_multicast or address.is_reserved or address.is_unspecified or address.is_loopback
        or address.is_link_local
    )


def _kind(address: _Address) -> str:
    for kind in ("unspecified", "loopback", "link_local", "multicast", "private", "reserved"):
        if getattr(address, f"is_{kind}"):
            return f"is {'an' if kind == 'unspecified' else 'a'} {kind.replace('_', '-')} address"
    return "is not a public address"
