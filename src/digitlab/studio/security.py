"""The studio's guard: one ASGI middleware in front of every route.

Rules, in order:
- Without a token (the default, bound to 127.0.0.1) the Host header must name the loopback
  interface, so a web page whose domain is re-pointed at 127.0.0.1 (DNS rebinding) is refused.
- With a token (required for any other --host) every request carries it: `?token=`, the
  `X-Digitlab-Token` header or the `digitlab_token` cookie; missing -> 401, wrong -> 403.
- Request bodies are limited to MAX_BODY bytes (413), counted as they arrive, whatever
  Content-Length claims.
- A state-changing request (anything but GET/HEAD/OPTIONS) needs the `X-Digitlab-Token` header
  (the token, or without one the page token embedded in the page the server served) and an
  Origin (or, lacking it, Referer) equal to the server's own origin; otherwise 403.

Errors are JSON `{"error": "one line"}`, like every error of the API.
"""

from __future__ import annotations

import hmac
import json
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs, urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_BODY = 4 * 1024 * 1024  # bytes: a drawing or a config is far smaller
TOKEN_HEADER = "x-digitlab-token"
TOKEN_COOKIE = "digitlab_token"
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def _same(given: str | None, expected: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


def _hostname(netloc: str) -> str:
    return (urlsplit(f"//{netloc}").hostname or "").lower()


class Guard:
    """Token, host, origin and body-size checks (see the module docstring)."""

    def __init__(
        self,
        app: ASGIApp,
        token: str | None,
        page_token: str,
        allow_origin: str | None = None,
        max_body: int = MAX_BODY,
    ) -> None:
        self.app, self.token, self.page_token = app, token, page_token
        self.allow_origin = allow_origin.rstrip("/") if allow_origin else None
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        refusal = self.refusal(scope, headers)
        if refusal is not None:
            await _error(send, *refusal)
            return
        send = _with_nosniff(send)
        if scope["method"] in SAFE_METHODS:
            await self.app(scope, receive, send)
            return
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body:
            await _error(send, 413, f"request body over {self.max_body} bytes")
            return
        body, too_big = await self._read_body(receive)
        if too_big:
            await _error(send, 413, f"request body over {self.max_body} bytes")
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: wait for the disconnect

        await self.app(scope, replay, send)

    def refusal(self, scope: Scope, headers: dict[str, str]) -> tuple[int, str] | None:
        """(status, message) when the request must be refused, else None."""
        host = headers.get("host", "")
        if self.token is None and _hostname(host) not in LOOPBACK:
            return 403, f"host {host!r} refused: without a token the studio answers loopback only"
        if self.token is not None:
            given = self._given_token(scope, headers)
            if given is None:
                return 401, "missing token: open the URL the studio printed"
            if not _same(given, self.token):
                return 403, "wrong token"
        if scope["method"] not in SAFE_METHODS:
            if not _same(headers.get(TOKEN_HEADER), self.page_token):
                return 403, f"{scope['method']} needs the {TOKEN_HEADER} header"
            origin = headers.get("origin") or _origin_of(headers.get("referer"))
            if not origin:
                return 403, f"{scope['method']} needs an Origin or Referer header"
            expected = self.allow_origin or f"{scope.get('scheme', 'http')}://{host}"
            if origin.rstrip("/").lower() != expected.lower():
                return 403, f"origin {origin} refused (expected {expected})"
        return None

    @staticmethod
    def _given_token(scope: Scope, headers: dict[str, str]) -> str | None:
        if TOKEN_HEADER in headers:
            return headers[TOKEN_HEADER]
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        if "token" in query:
            return query["token"][0]
        if "cookie" in headers:
            cookie: SimpleCookie = SimpleCookie()
            try:
                cookie.load(headers["cookie"])
            except Exception:  # a malformed cookie header is no token  # noqa: BLE001
                return None
            if TOKEN_COOKIE in cookie:
                return cookie[TOKEN_COOKIE].value
        return None

    async def _read_body(self, receive: Receive) -> tuple[bytes, bool]:
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return b"", False  # the client went away
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                return b"", True
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks), False


def _with_nosniff(send: Send) -> Send:
    """Every response says: trust my Content-Type (a PNG is never run as a script)."""

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", []))
            headers.append((b"x-content-type-options", b"nosniff"))
            headers.append((b"referrer-policy", b"same-origin"))
            message = {**message, "headers": headers}
        await send(message)

    return wrapped


def _origin_of(referer: str | None) -> str | None:
    if not referer:
        return None
    parts = urlsplit(referer)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else None


async def _error(send: Send, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    headers: list[Any] = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
