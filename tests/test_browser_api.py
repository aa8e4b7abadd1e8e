"""The browser's own WebSocket API against bocws: headless Chromium, a real uvicorn.

Each test opens sockets from a blank page served by `tests/browser_app.py` (so that
they are same-origin), and gets back, in order, every event the sockets fired: `open`
(with `socket.protocol`), `message` (with the data), `error`, `close` (with `code`,
`reason` and `wasClean`). What only the view knows, it logs, and the test reads the
server's log. Every wait is bounded: in the page by `LIMIT`, in Python by `TIMEOUT`.
The server runs with each of uvicorn's WebSocket implementations.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.processes import TIMEOUT, Uvicorn, log_config

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page

IMPLEMENTATIONS = ["websockets-sansio", "wsproto", "websockets"]

# `watch(path, protocols)` opens a socket to this server (or to a ws:// URL) and records
# its events;
# `until(type, count)` resolves with all the events so far once `count` events of
# `type` have fired, and rejects after LIMIT ms (TIMEOUT), or when the socket closes first.
WATCH = """(LIMIT) => {
  const describe = (data) => typeof data === "string" ? data : {
    type: Object.prototype.toString.call(data).slice(8, -1),
    bytes: data instanceof ArrayBuffer ? Array.from(new Uint8Array(data)) : null,
  };
  window.watch = (path, protocols) => {
    const url = path.startsWith("ws://") ? path : `ws://${location.host}${path}`;
    const socket = new WebSocket(url, protocols);
    const events = [];
    const record = (type, describeEvent) => socket.addEventListener(type, (event) => {
      events.push({type, ...describeEvent(event)});
    });
    record("open", () => ({protocol: socket.protocol}));
    record("message", (event) => ({data: describe(event.data)}));
    record("error", () => ({}));
    record("close", ({code, reason, wasClean}) => ({code, reason, wasClean}));
    const until = (type, count = 1) => new Promise((resolve, reject) => {
      const done = () => events.filter((event) => event.type === type).length >= count;
      const fail = (why) => reject(
        new Error(`${why} before ${count} ${type} event(s): ${JSON.stringify(events)}`)
      );
      const timer = setTimeout(() => fail(`${LIMIT} ms passed`), LIMIT);
      const check = () => {
        if (done()) {
          clearTimeout(timer);
          resolve(events);
        } else if (socket.readyState === WebSocket.CLOSED) {
          clearTimeout(timer);
          fail("the socket closed");
        }
      };
      socket.addEventListener(type, check);
      socket.addEventListener("close", check);
      check();
    });
    return {socket, until};
  };
}"""


def close_event(code: int, reason: str = "", *, clean: bool = True) -> dict[str, Any]:
    return {"type": "close", "code": code, "reason": reason, "wasClean": clean}


OPENED = {"type": "open", "protocol": ""}
FAILED = [{"type": "error"}, close_event(1006, clean=False)]
"""What a page sees of a connection that failed: no open, an error, then 1006 unclean."""


@pytest.fixture(params=IMPLEMENTATIONS)
def implementation(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def server(serve: type[Uvicorn], implementation: str, tmp_path: Path) -> Uvicorn:
    """`tests.browser_app:app` under uvicorn, logging the views' notes and bocws's INFO lines."""
    logging = log_config(tmp_path / "logging.json", "tests.browser_app", "bocws")
    started = serve("tests.browser_app:app", "--ws", implementation, "--log-config", str(logging))
    started.start()
    return started


@pytest.fixture
def page(context: BrowserContext, server: Uvicorn) -> Page:
    """A blank page of the server's, with `watch()` defined."""
    opened = context.new_page()
    opened.goto(server.url + "/")
    opened.evaluate(WATCH, TIMEOUT * 1000)
    return opened


# Subprotocols.


def test_browser_gets_the_subprotocol_the_view_picks_from_its_offer(page: Page) -> None:
    events = page.evaluate(
        """async () => {
            const watched = watch("/subprotocol", ["v3", "v2", "v1"]);
            await watched.until("message");
            watched.socket.close(1000);
            return await watched.until("close");
        }"""
    )
    opened, told, closed = events
    assert opened == {"type": "open", "protocol": "v2"}
    assert told["type"] == "message"
    # The view saw the offer in the browser's order, and took the first it supports.
    assert json.loads(told["data"]) == {"offered": ["v3", "v2", "v1"], "chosen": "v2"}
    assert closed == close_event(1000)


def test_browser_fails_the_connection_when_the_view_picks_no_subprotocol(
    page: Page, server: Uvicorn, implementation: str
) -> None:
    events = page.evaluate(
        """async () => await watch("/subprotocol/none", ["v3", "v2"]).until("close")"""
    )
    assert events == FAILED
    server.wait_for(r"/subprotocol/none: offered \['v3', 'v2'\], accepting with none")
    # The browser drops the TCP connection without a close frame; uvicorn says so with
    # 1006 in its legacy implementation, 1005 in the others.
    gone = 1006 if implementation == "websockets" else 1005
    server.wait_for(rf"/subprotocol/none: the client left with {gone}$")


# Binary frames.


def test_browser_gets_binary_frames_back_byte_for_byte(page: Page) -> None:
    every_byte = bytes(range(256))
    large = random.Random(0).randbytes(64 * 1024)
    events = page.evaluate(
        """async ([small, large]) => {
            const watched = watch("/bytes");
            watched.socket.binaryType = "arraybuffer";
            await watched.until("open");
            watched.socket.send(new Uint8Array(small).buffer);  // an ArrayBuffer
            watched.socket.send(new Uint8Array(large));  // a view on one
            await watched.until("message", 2);
            watched.socket.close(1000);
            return await watched.until("close");
        }""",
        [list(every_byte), list(large)],
    )
    assert [event["type"] for event in events] == ["open", "message", "message", "close"]
    received = [event["data"] for event in events[1:3]]
    assert [data["type"] for data in received] == ["ArrayBuffer", "ArrayBuffer"]
    assert bytes(received[0]["bytes"]) == every_byte
    assert bytes(received[1]["bytes"]) == large
    assert events[3] == close_event(1000)


def test_browser_sees_1003_after_sending_text_to_a_bytes_route(page: Page, server: Uvicorn) -> None:
    events = page.evaluate(
        """async () => {
            const watched = watch("/bytes");
            await watched.until("open");
            watched.socket.send("not bytes");
            return await watched.until("close");
        }"""
    )
    assert events == [OPENED, close_event(1003, "unsupported frame type")]
    server.wait_for(
        r"INFO: +'/bytes': closed with 1003 \(UNSUPPORTED_DATA\) 'unsupported frame type': "
        r"view echo_bytes: the client sent bad data: receive_bytes\(\)"
    )


def test_a_browser_leaving_with_its_own_code_is_one_info_line(page: Page, server: Uvicorn) -> None:
    events = page.evaluate(
        """async () => {
            const watched = watch("/bytes");
            await watched.until("open");
            watched.socket.close(4002, "bye");
            return await watched.until("close");
        }"""
    )
    assert events == [OPENED, close_event(4002, "bye")]  # the server echoed the close
    # Not a caught code: `async for` raised it out of the view, which ends quietly.
    found = server.wait_for(r"(\w+): +'/bytes': the client left with 4002 'bye'$")
    assert found.group(1) == "INFO"
    # Nothing reached uvicorn, which would log an error: by the time another connection
    # was served, the first one's view had long returned.
    page.evaluate("""async () => await watch("/close").until("close")""")
    server.wait_for(r'"WebSocket /close" \[accepted\]')
    assert [line for line in server.lines if "ERROR" in line or "Traceback" in line] == []


# Refusals.


@pytest.mark.parametrize(
    ("path", "status"),
    [("/reject", 403), ("/reject/explained", 401)],
    ids=["plain-403", "denial-response-401"],
)
def test_browser_sees_a_refused_handshake_as_error_then_1006(
    page: Page, server: Uvicorn, path: str, status: int
) -> None:
    events = page.evaluate("async (path) => await watch(path).until('close')", path)
    assert events == FAILED  # the HTTP status and body are not the page's to see
    server.wait_for(rf'"WebSocket {re.escape(path)}" {status}$')


# Close codes.


def test_browser_sees_a_4xxx_close_code_and_reason(page: Page) -> None:
    events = page.evaluate("""async () => await watch("/close").until("close")""")
    assert events == [OPENED, close_event(4001, "some reason")]


@pytest.mark.parametrize(
    ("close", "code", "reason"),
    [("close(4002, 'bye')", 4002, "bye"), ("close()", 1005, "")],
    ids=["4002-with-reason", "no-code"],
)
def test_view_sees_the_close_code_and_reason_the_browser_sends(
    page: Page, server: Uvicorn, close: str, code: int, reason: str
) -> None:
    events = page.evaluate(
        f"""async () => {{
            const watched = watch("/goodbye");
            await watched.until("open");
            watched.socket.{close};
            return await watched.until("close");
        }}"""
    )
    assert events == [OPENED, close_event(code, reason)]  # the server echoed the close
    server.wait_for(rf"/goodbye: the client closed with {code} {reason!r}$")


# Origins.


def test_browser_page_of_another_origin_is_refused(page: Page, server: Uvicorn) -> None:
    # localhost and 127.0.0.1 are different origins: a page of one opens a socket to the other.
    page.goto(f"http://localhost:{server.port}/")
    page.evaluate(WATCH, TIMEOUT * 1000)
    foreign = page.evaluate(
        "async (url) => await watch(url).until('close')", f"ws://127.0.0.1:{server.port}/close"
    )
    assert foreign == FAILED
    server.wait_for(r"refusing a handshake from origin 'http://localhost:\d+'")
    # The same socket from the page's own origin opens.
    own = page.evaluate("async () => await watch('/close').until('close')")
    assert own == [OPENED, close_event(4001, "some reason")]
