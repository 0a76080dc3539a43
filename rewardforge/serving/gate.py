"""The server's front gate, an ASGI middleware that runs before any request body is read.

It checks the API key first (a client without the key never gets its body read): every path
needs it except the open ones (`/health`), wherever the app is mounted, so a route added later
or a prefix in front of the app cannot serve without the key. Then it reads
the body itself, counting bytes as they arrive: a chunked upload without Content-Length is cut
off at the limit with 413 just like one that declares its size, and the application behind the
gate gets the body only once it is known to fit.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Awaitable, Callable, Collection
from typing import Any

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class RequestGate:
    """Authorise, then read the body up to `max_body_bytes` and hand it on.

    Args:
        app: the application behind the gate.
        api_key: the Bearer token every request needs, or None for no key.
        open_paths: paths, relative to where the app is mounted, that need no key.
        max_body_bytes: the largest request body accepted, counted as it arrives.
    """

    def __init__(
        self,
        app: ASGIApp,
        api_key: str | None,
        open_paths: Collection[str],
        max_body_bytes: int,
    ) -> None:
        self.app = app
        self.api_key = api_key
        self.open_paths = set(open_paths)
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {
            key.decode("latin-1"): value.decode("latin-1") for key, value in scope["headers"]
        }
        if self.api_key is not None and _route_path(scope) not in self.open_paths:
            scheme, _, token = headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not secrets.compare_digest(
                token.encode(), self.api_key.encode()
            ):
                detail = "Missing or wrong API key: send 'Authorization: Bearer <key>'."
                await _reply(send, 401, detail, {"www-authenticate": "Bearer"})
                return
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            await _reply(send, 413, self._too_large(f"Request body is {declared} bytes"))
            return
        body = bytearray()
        while True:  # the whole body, counted as it streams in, before the app sees any of it
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if len(body) > self.max_body_bytes:
                detail = self._too_large(f"Request body passed {self.max_body_bytes} bytes")
                await _reply(send, 413, detail)
                return
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()  # after the body: a disconnect, when the client goes away

        await self.app(scope, replay, send)

    def _too_large(self, what: str) -> str:
        return f"{what}; the limit is {self.max_body_bytes} (--max-body-bytes)."


def _route_path(scope: Scope) -> str:
    """The request's path below the app's mount point (`root_path`), as its routes see it."""
    path, root = scope["path"], scope.get("root_path", "")
    if root and path.startswith(root):
        return path[len(root) :] or "/"
    return path


async def _reply(send: Send, status: int, detail: str, headers: dict[str, str] | None = None):
    body = json.dumps({"detail": detail}).encode()
    extra = [(key.encode(), value.encode()) for key, value in (headers or {}).items()]
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *extra,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
