"""Who is really calling, behind a reverse proxy, and the id of each request.

uvicorn runs with its own proxy-header handling off (``timebank serve``), so
``scope["client"]`` is the TCP peer. Only when that peer is one of
``TIMEBANK_TRUSTED_PROXIES`` are its ``X-Forwarded-For``, ``X-Forwarded-Proto``
and ``X-Request-ID`` believed; from anyone else they are ignored, so nobody can
pick the address the sign-in limit counts their failures against, or put words
into the log.

Every request gets an id (the trusted proxy's, else a new one): it is bound to
every log line written while the request runs, answered in ``X-Request-ID``, and
put in the body of server errors (timebank/errors.py).
"""

import ipaddress
import os
import re
from collections.abc import Sequence
from contextvars import ContextVar

import structlog
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from timebank.config import IPNetwork

REQUEST_ID_HEADER = b"x-request-id"
# What a request id from a proxy may look like: enough for nginx's $request_id, a UUID or a
# trace id, and nothing that could break a log line or a header.
_SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:+=/-]{1,128}")

_request_id: ContextVar[str] = ContextVar("request_id", default="")


def current_request_id() -> str:
    """The id of the request being handled ("" outside a request)."""
    return _request_id.get()


def new_request_id() -> str:
    return os.urandom(16).hex()  # the form of nginx's $request_id


def parse_address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An address as proxies write it (``1.2.3.4``, ``1.2.3.4:5678``, ``[::1]:80``, ``::1``), or None."""
    text = text.strip()
    if text.startswith("["):
        text = text[1 : text.find("]")] if "]" in text else ""
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # a dual-stack socket's view of an IPv4 peer
    return address


class TrustedProxies:
    def __init__(self, networks: Sequence[IPNetwork]) -> None:
        self.networks = tuple(networks)

    def __bool__(self) -> bool:
        return bool(self.networks)

    def trusts(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address | None) -> bool:
        return address is not None and any(address in network for network in self.networks)

    def client_address(self, peer: str, forwarded_for: str) -> str:
        """The first address, from the right, that is not a trusted proxy's.

        Each proxy appends the address it was called from, so everything left of the
        first untrusted address was written by the caller and cannot be believed.
        """
        client = peer
        for hop in reversed(forwarded_for.split(",")):
            address = parse_address(hop)
            if address is None:
                break  # garbled by a proxy of ours: keep the last address we could trust
            client = str(address)
            if not self.trusts(address):
                break
        return client


def request_context_middleware(app: ASGIApp, trusted_proxies: Sequence[IPNetwork]) -> ASGIApp:
    """Set the real client address, scheme and request id, and answer the id on every response."""
    proxies = TrustedProxies(trusted_proxies)

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        request_id = ""
        peer = scope.get("client")
        if proxies and peer and proxies.trusts(parse_address(peer[0])):
            request_id = _believe_proxy(scope, proxies, peer[0])
        request_id = request_id or new_request_id()
        header = (REQUEST_ID_HEADER, request_id.encode())

        async def send_with_request_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        token = _request_id.set(request_id)
        log_context = structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            await app(scope, receive, send_with_request_id)
        finally:
            structlog.contextvars.reset_contextvars(**log_context)
            _request_id.reset(token)

    return middleware


def _believe_proxy(scope: Scope, proxies: TrustedProxies, peer: str) -> str:
    """Apply a trusted proxy's headers to ``scope``; returns its request id if it sent a usable one."""
    forwarded_for: list[str] = []
    proto = request_id = ""
    for name, value in scope["headers"]:
        if name == b"x-forwarded-for":
            forwarded_for.append(value.decode("latin-1"))
        elif name == b"x-forwarded-proto":
            proto = value.decode("latin-1").rsplit(",", 1)[-1].strip().lower()
        elif name == REQUEST_ID_HEADER:
            request_id = value.decode("latin-1").strip()
    if forwarded_for:
        scope["client"] = (proxies.client_address(peer, ",".join(forwarded_for)), 0)
    if proto in ("http", "https"):
        scope["scheme"] = proto if scope["type"] == "http" else {"http": "ws", "https": "wss"}[proto]
    return request_id if _SAFE_REQUEST_ID.fullmatch(request_id) else ""
