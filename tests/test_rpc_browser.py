"""JSON-RPC from headless Chromium: a page using the npm package json-rpc-2.0 (its
`JSONRPCServerAndClient` over the browser's WebSocket) against tests/rpc_app.py's
service under a real uvicorn.

The page calls the server's methods and serves `confirm` and `announced`, which the
server calls and notifies. Each test runs a script in the page and checks in Python
what it returns; what only the server knows (the notifications it ran) it logs. The
package comes from `npm ci --prefix tests/browser_rpc`, loaded as npm installed it
(tests/rpc_app.py links its CommonJS files for the page: no bundler).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.node_packages import npm_package
from tests.processes import TIMEOUT, Uvicorn, log_config

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page

# `connect()` opens a socket to /rpc and resolves with a JSONRPCServerAndClient on it
# once it is open, serving `confirm` (answers "yes to <question>"), and `announced`
# (kept in `announcements`; `announcement()` resolves with the next one). Every wait
# is bounded by LIMIT ms.
CONNECT = """(LIMIT) => {
  const {JSONRPCClient, JSONRPCServer, JSONRPCServerAndClient} = window.JSONRPC;
  window.announcements = [];
  let heard = () => {};
  window.announcement = () => new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no announcement in ${LIMIT} ms`)), LIMIT);
    heard = (text) => { clearTimeout(timer); resolve(text); };
  });
  window.connect = () => new Promise((resolve, reject) => {
    const socket = new WebSocket(`ws://${location.host}/rpc`);
    const peer = new JSONRPCServerAndClient(
      new JSONRPCServer(),
      new JSONRPCClient(async (request) => socket.send(JSON.stringify(request))),
    );
    peer.addMethod("confirm", ({question}) => `yes to ${question}`);
    peer.addMethod("announced", ({text}) => {
      window.announcements.push(text);
      heard(text);
    });
    socket.addEventListener("message", (event) => peer.receiveAndSend(JSON.parse(event.data)));
    socket.addEventListener("close", (event) => {
      peer.rejectAllPendingRequests(`closed with ${event.code}`);
      reject(new Error(`closed with ${event.code}`));
    });
    const timer = setTimeout(() => reject(new Error(`not open after ${LIMIT} ms`)), LIMIT);
    socket.addEventListener("open", () => {
      clearTimeout(timer);
      resolve(peer);
    });
  });
  // The error a promise rejected with, as JSON can carry it.
  window.failure = async (promise) => {
    try {
      return {resolved: await promise};
    } catch (error) {
      return {code: error.code, message: error.message, data: error.data};
    }
  };
}"""


@pytest.fixture
def server(serve: type[Uvicorn], tmp_path: Path) -> Uvicorn:
    """`tests.rpc_app:app` under uvicorn, logging the notifications the service ran."""
    npm_package("browser_rpc", "json-rpc-2.0")
    logging = log_config(tmp_path / "logging.json", "tests.rpc_app", "bocws")
    started = serve("tests.rpc_app:app", "--log-config", str(logging))
    started.start()
    return started


@pytest.fixture
def page(context: BrowserContext, server: Uvicorn) -> Iterator[Page]:
    """The server's page, json-rpc-2.0 loaded, `connect()` defined."""
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    opened.goto(server.url + "/")
    assert opened.evaluate("typeof window.JSONRPC.JSONRPCServerAndClient") == "function"
    opened.evaluate(CONNECT, TIMEOUT * 1000)
    yield opened
    assert errors == []


def run(page: Page, script: str) -> Any:
    return page.evaluate(f"async () => {{ const peer = await connect(); {script} }}")


def test_the_page_calls_the_servers_methods(page: Page) -> None:
    results = run(
        page,
        """return [
            await peer.request("subtract", [42, 23]),
            await peer.request("subtract", {subtrahend: 23, minuend: 42}),
            await peer.request("sum", [1, 2, 4]),
            await peer.request("get_data"),
        ];""",
    )
    assert results == [19, 19, 7, ["hello", 5]]


def test_the_pages_notifications_run_and_are_not_answered(page: Page, server: Uvicorn) -> None:
    answer = run(
        page,
        """peer.notify("update", [1, 2, 3, 4, 5]);
        peer.notify("notify_hello", {value: 7});
        return await peer.request("subtract", [1, 1]);""",
    )
    assert answer == 0
    server.wait_for(r"note: update \[1, 2, 3, 4, 5\]")
    server.wait_for(r"note: notify_hello \[7\]")


def test_the_page_gets_the_servers_errors(page: Page) -> None:
    failures = run(
        page,
        """return [
            await failure(peer.request("foobar")),
            await failure(peer.request("refuse")),
            await failure(peer.request("subtract", ["x", 1])),
            await failure(peer.request("subtract", [2, 1])),
        ];""",
    )
    missing, refused, invalid, fine = failures
    assert missing == {"code": -32601, "message": "Method not found", "data": None}
    assert refused == {"code": 4001, "message": "refused", "data": {"why": "a test"}}
    assert (invalid["code"], invalid["message"]) == (-32602, "Invalid params")
    assert invalid["data"][0]["loc"] == ["minuend"]
    assert fine == {"resolved": 1}  # the connection stayed open


def test_the_page_sends_a_batch(page: Page) -> None:
    answers = run(
        page,
        """const {createJSONRPCRequest, createJSONRPCNotification} = window.JSONRPC;
        return await peer.requestAdvanced([
            createJSONRPCRequest(1, "subtract", [42, 23]),
            createJSONRPCNotification("notify_hello", [7]),
            createJSONRPCRequest(2, "foobar"),
            createJSONRPCRequest(3, "get_data"),
        ]);""",
    )
    assert sorted(answers, key=lambda answer: answer["id"]) == [
        {"jsonrpc": "2.0", "result": 19, "id": 1},
        {"jsonrpc": "2.0", "error": {"code": -32601, "message": "Method not found"}, "id": 2},
        {"jsonrpc": "2.0", "result": ["hello", 5], "id": 3},
    ]


def test_the_server_calls_a_method_the_page_serves(page: Page) -> None:
    answers = run(
        page,
        """return [
            await peer.request("ask", {question: "sure?"}),
            await peer.request("ask", ["really?"]),
        ];""",
    )
    assert answers == ["yes to sure?", "yes to really?"]


def test_the_server_notifies_the_page(page: Page) -> None:
    announced = run(
        page,
        """const heard = announcement();
        const answer = await peer.request("announce", {text: "hello"});
        return [answer, await heard, window.announcements];""",
    )
    assert announced == ["announced", "hello", ["hello"]]


def test_the_page_discovers_the_service(page: Page) -> None:
    document = run(page, """return await peer.request("rpc.discover");""")
    assert document["openrpc"] == "1.3.2"
    (subtract,) = [method for method in document["methods"] if method["name"] == "subtract"]
    assert subtract["params"] == [
        {"name": "minuend", "schema": {"type": "integer"}, "required": True},
        {"name": "subtrahend", "schema": {"type": "integer"}, "required": True},
    ]
