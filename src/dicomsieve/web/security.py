"""The web app's gate: Host check, access token, same-origin writes, security headers.

One pure ASGI middleware in front of everything, so that no route can forget it:

1. **Host.** A request whose ``Host`` header is not exactly the address and port the
   server listens on gets 403. A page on another site that rebinds its DNS name to
   127.0.0.1 sends its own name as Host, so it cannot read answers (DNS rebinding).
2. **Token.** A random token is made per launch. The address printed by ``dicomsieve
   serve`` carries it as ``/?token=...``; that first request sets it as an HttpOnly,
   SameSite=Strict cookie and redirects to ``/``, so the token leaves the address bar.
   Later requests carry the cookie (or the ``X-Dicomsieve-Token`` header). Anything
   else gets 401. Tokens are compared in constant time.
3. **Writes.** POST needs a JSON body and, when the browser says where it comes from,
   an ``Origin`` of this server (403 otherwise): no form on another site can start a
   scan or a conversion.
4. **Headers.** Every response, errors included, carries a Content-Security-Policy
   without ``unsafe-inline`` (only this server's scripts, styles and images), ``nosniff``,
   ``no-referrer``, frame denial and ``no-store``.
5. **Errors.** An exception that escapes a route becomes a plain 500 without details;
   the log names only the exception's class (its message could quote a path).
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from http.cookies import CookieError, SimpleCookie
from typing import Any, Final
from urllib.parse import parse_qs

__all__ = ["SECURITY_HEADERS", "SecurityMiddleware", "cookie_name", "host_header"]

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

TOKEN_HEADER: Final = "x-dicomsieve-token"

SECURITY_HEADERS: Final[tuple[tuple[str, str], ...]] = (
    (
        "content-security-policy",
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
        "connect-src 'self'; font-src 'self'; form-action 'self'; base-uri 'none'; "
        "frame-ancestors 'none'",
    ),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("x-frame-options", "DENY"),
    ("cross-origin-opener-policy", "same-origin"),
    ("cross-origin-resource-policy", "same-origin"),
    ("cache-control", "no-store"),
)
"""Added to every response."""

_UNSAFE_METHODS: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def host_header(host: str, port: int) -> str:
    """The ``Host`` value a browser sends for ``host:port``.

    Parameters
    ----------
    host
        An IP address (IPv6 without brackets).
    port
        The port.

    Returns
    -------
    str
        ``127.0.0.1:8765``, or ``[::1]:8765`` for IPv6.
    """
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def cookie_name(port: int) -> str:
    """The token cookie's name for a server on ``port``.

    Parameters
    ----------
    port
        The server's port: cookies are shared between the ports of one host, so two
        servers must not overwrite each other's token.

    Returns
    -------
    str
    """
    return f"dicomsieve-token-{port}"


def _same(candidate: str | None, token: str) -> bool:
    if not candidate:
        return False
    return hmac.compare_digest(candidate.encode("utf-8"), token.encode("utf-8"))


class SecurityMiddleware:
    """ASGI middleware enforcing the Host check, the token and the security headers.

    Parameters
    ----------
    app
        The application behind the gate.
    token
        The launch's access token.
    allowed_host
        The one accepted ``Host`` header value, e.g. ``127.0.0.1:8765``.
    cookie
        Name of the token cookie.
    """

    def __init__(self, app: ASGIApp, *, token: str, allowed_host: str, cookie: str) -> None:
        if len(token) < 16:
            raise ValueError("the access token must be at least 16 characters")
        self.app = app
        self.token = token
        self.allowed_host = allowed_host.lower()
        self.cookie = cookie

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, send)
            return
        if scope["type"] != "http":  # no websockets here
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
            return
        headers = _headers(scope)
        path = str(scope.get("path", ""))
        if headers.get("host", "").lower() != self.allowed_host:
            await _reply(send, 403, "forbidden_host", "this server answers only at its own address")
            return
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        if path == "/" and "token" in query:
            if _same(query["token"][0], self.token):
                await self._enter(send)
            else:
                await _reply(send, 401, "unauthorized", _HINT)
            return
        if not (
            _same(headers.get(TOKEN_HEADER), self.token)
            or _same(_cookie(headers.get("cookie", ""), self.cookie), self.token)
        ):
            await _reply(send, 401, "unauthorized", _HINT)
            return
        if scope.get("method") in _UNSAFE_METHODS:
            origin = headers.get("origin")
            if origin is not None and origin.lower() != f"http://{self.allowed_host}":
                await _reply(send, 403, "forbidden_origin", "requests must come from this page")
                return
            content_type = headers.get("content-type", "").split(";")[0].strip().lower()
            if content_type != "application/json":
                await _reply(send, 415, "unsupported_media_type", "send JSON")
                return
        await self._forward(scope, receive, send)

    async def _enter(self, send: Send) -> None:
        """Set the token cookie and send the browser to ``/`` without the token."""
        cookie = f"{self.cookie}={self.token}; Path=/; HttpOnly; SameSite=Strict"
        await send(
            {
                "type": "http.response.start",
                "status": 303,
                "headers": [
                    (b"location", b"/"),
                    (b"set-cookie", cookie.encode("latin-1")),
                    (b"content-length", b"0"),
                    *_security_headers(),
                ],
            }
        )
        await send({"type": "http.response.body", "body": b""})

    async def _forward(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                names = {name for name, _ in SECURITY_HEADERS}
                kept = [
                    (k, v)
                    for k, v in message.get("headers", [])
                    if k.decode("latin-1") not in names
                ]
                message["headers"] = [*kept, *_security_headers()]
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception as exc:  # the one place where any failure becomes a bare 500
            log.error("internal error answering a %s request: %s", scope.get("method"), _kind(exc))
            if not started:
                await _reply(send, 500, "internal_error", "the server failed; see its log")


_HINT: Final = (
    "open the address that `dicomsieve serve` printed: it carries this launch's access token"
)


def _kind(exc: BaseException) -> str:
    return f"{type(exc).__module__}.{type(exc).__qualname__}"


def _headers(scope: Scope) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in scope.get("headers", []):
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        # Repeated headers: a second Host or token is suspicious; keep the first.
        if key == "cookie" and key in out:
            out[key] = f"{out[key]}; {text}"
        else:
            out.setdefault(key, text)
    return out


def _cookie(header: str, name: str) -> str | None:
    if not header:
        return None
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(header)
    except CookieError:
        return None
    morsel = jar.get(name)
    return None if morsel is None else morsel.value


def _security_headers() -> list[tuple[bytes, bytes]]:
    return [(k.encode("latin-1"), v.encode("latin-1")) for k, v in SECURITY_HEADERS]


async def _reply(send: Send, status: int, error: str, message: str) -> None:
    body = json.dumps({"error": error, "message": message}).encode("utf-8")
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode("latin-1")),
                *_security_headers(),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
