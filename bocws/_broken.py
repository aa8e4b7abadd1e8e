"""After a send found the connection broken: the client's disconnect, read rather than
guessed.

Servers queue the client's `websocket.disconnect` before they fail sends, so when
the server's `send()` raises `OSError`, the close code is read (briefly, bounded by
`DISCONNECT_GRACE`): a client that closed normally gives its 1000, not 1006. A
receive already waiting gets the disconnect, and failed sends wait for it; otherwise
the first failed send receives it, keeping the client's unread messages for later
receives. With none in time, the connection is recorded as lost with 1006.
"""

from __future__ import annotations

import contextlib
from collections import deque

import anyio
from starlette.types import Message, Receive

from ._codes import CloseCode
from ._state import CONNECTED, DISCONNECT, RECEIVE, ConnectionState

__all__ = ["DISCONNECT_GRACE", "DISCONNECT_SEARCH", "DisconnectSearch"]

#: How long a send that found the connection broken waits for the server's own
#: `websocket.disconnect` (servers queue it before failing sends), for its close code.
DISCONNECT_GRACE = 0.25
#: The most unread client messages kept while looking for that disconnect.
DISCONNECT_SEARCH = 64


class DisconnectSearch:
    """One connection's search for its client's disconnect, from its first failed send.

    Parameters:
        receive: the server's ASGI receive callable.
        core: the connection's state core, which records the disconnect (or the loss).
    """

    __slots__ = ("_core", "_receive", "_searching", "_seen", "_told", "_unread")

    def __init__(self, receive: Receive, core: ConnectionState) -> None:
        self._receive = receive
        self._core = core
        self._searching = False
        self._seen = anyio.Event()
        self._unread: deque[Message] = deque()
        self._told = False

    async def wait(self, receiving: int) -> None:
        """Wait, at most `DISCONNECT_GRACE`, for the client's disconnect: from the
        receives waiting on the server now (`receiving` of them) or another failed
        send's search, else by receiving it here. Without one, record the loss (1006).
        """
        if self._core.client_state is CONNECTED:
            with anyio.move_on_after(DISCONNECT_GRACE):
                if receiving or self._searching:
                    await self._seen.wait()
                else:
                    await self._search()
        self._core.connection_lost(CloseCode.ABNORMAL_CLOSURE)  # nothing once it came
        self.found()

    async def _search(self) -> None:
        self._searching = True
        try:
            for _ in range(DISCONNECT_SEARCH):
                try:
                    message = await self._receive()
                except Exception:  # the server's receive fails too: 1006 it is
                    return
                if message.get("type") == RECEIVE:
                    self._unread.append(message)
                elif message.get("type") == DISCONNECT:
                    with contextlib.suppress(TypeError):  # a malformed code: 1006 instead
                        self._core.disconnect_found_by_send(message)
                    return
        finally:
            self._searching = False

    def found(self) -> None:
        """Wake the failed sends waiting: the disconnect came (or the wait is over)."""
        self._seen.set()

    @property
    def told(self) -> bool:
        """Whether a receive was given the disconnect (it was told once, as due)."""
        return self._told

    def next_message(self) -> Message:
        """What a receive gets once the connection is known lost: the client's messages
        read meanwhile, then its disconnect, once."""
        if self._unread:
            return self._unread.popleft()
        self._told = True
        core = self._core
        return {"type": DISCONNECT, "code": core.disconnect_code, "reason": core.disconnect_reason}
