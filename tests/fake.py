"""An in-memory ASGI WebSocket server: scripted incoming events, recorded outgoing ones."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import Any

import anyio

from bocws import WebSocket

Message = dict[str, Any]

CONNECT: Message = {"type": "websocket.connect"}


def text(data: str) -> Message:
    return {"type": "websocket.receive", "text": data}


def binary(data: bytes) -> Message:
    return {"type": "websocket.receive", "bytes": data}


def disconnect(code: int = 1000, reason: str = "") -> Message:
    return {"type": "websocket.disconnect", "code": code, "reason": reason}


def websocket_scope(
    path: str = "/ws",
    *,
    query_string: bytes = b"",
    headers: Iterable[tuple[bytes, bytes]] = ((b"host", b"127.0.0.1:8000"),),
    subprotocols: Iterable[str] = (),
    denial_response: bool = True,
    **extra: Any,
) -> dict[str, Any]:
    """The scope of a WebSocket handshake to 127.0.0.1:8000, as an ASGI server sends it."""
    return {
        "type": "websocket",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "scheme": "ws",
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 50000),
        "root_path": "",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query_string,
        "headers": list(headers),
        "subprotocols": list(subprotocols),
        "extensions": {"websocket.http.response": {}} if denial_response else {},
        "state": {},
        **extra,
    }


class FakeServer:
    """Delivers `incoming` in order; records what the application sends."""

    def __init__(
        self,
        incoming: Iterable[Message] = (),
        *,
        denial_response: bool = True,
        subprotocols: Iterable[str] = (),
        path: str = "/ws",
    ) -> None:
        self.incoming: deque[Message] = deque(incoming)
        self.sent: list[Message] = []
        self.fail_sends_with: BaseException | None = None
        self.scope = websocket_scope(
            path,
            query_string=b"room=lobby&n=2",
            headers=[
                (b"host", b"127.0.0.1:8000"),
                (b"cookie", b"token=abc; theme=dark"),
                (b"origin", b"http://127.0.0.1:8000"),
            ],
            subprotocols=subprotocols,
            denial_response=denial_response,
            path_params={"room": "lobby"},
        )

    async def receive(self) -> Message:
        if not self.incoming:
            raise AssertionError("the application awaited a message the server will never send")
        return self.incoming.popleft()

    async def send(self, message: Message) -> None:
        if self.fail_sends_with is not None:
            raise self.fail_sends_with
        self.sent.append(dict(message))

    def types(self) -> list[str]:
        return [message["type"] for message in self.sent]

    def websocket(self, **options: Any) -> WebSocket:
        return WebSocket(self.scope, self.receive, self.send, **options)


class LiveServer(FakeServer):
    """A fake server whose `receive` waits, like a real one, until the test delivers."""

    def __init__(self, incoming: Iterable[Message] = (CONNECT,), **options: Any) -> None:
        super().__init__(incoming, **options)
        self.arrived = anyio.Event()

    async def deliver(self, message: Message) -> None:
        self.incoming.append(message)
        self.arrived.set()

    async def receive(self) -> Message:
        while not self.incoming:
            await self.arrived.wait()
            self.arrived = anyio.Event()
        return self.incoming.popleft()


def connected(*incoming: Message, **server_options: Any) -> FakeServer:
    """A server whose client connects, then sends `incoming`."""
    return FakeServer([CONNECT, *incoming], **server_options)
