"""The JSON-RPC service the conformance and foreign-client tests talk to, and its app.

`service(note)` is a `JsonRpc` with the methods of the JSON-RPC 2.0 specification's
examples (`subtract`, `sum`, `update`, `notify_hello`, `notify_sum`, `get_data`; no
`foobar`), and a few for the calls in the other direction: `ask` calls the client's
`confirm` and answers with its result, `announce` sends the client an `announced`
notification, `refuse` raises an `RpcError`. What the notifications' methods receive
goes to `note(method, params)`, since nothing is answered to them.

`app` serves it at `/rpc` for `uvicorn tests.rpc_app:app` (tests/test_rpc_browser.py):
`/` is a page that loads the npm package json-rpc-2.0 from `/json-rpc-2.0.js`, and the
notes go to the `tests.rpc_app` logger.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from bocws import App, JsonRpc, RpcError, WebSocket

logger = logging.getLogger("tests.rpc_app")

CALL_TIMEOUT = 5.0
"""Seconds `ask` waits for the client's answer to `confirm`."""


def service(note: Callable[[str, list[Any]], None]) -> JsonRpc:
    """The specification's methods, and calls to the client; `note` hears the notifications."""
    rpc = JsonRpc(title="JSON-RPC 2.0 examples", version="2.0.0")

    @rpc.method
    async def subtract(minuend: int, subtrahend: int) -> int:
        """The first operand minus the second."""
        return minuend - subtrahend

    # The specification's `sum` takes any number of operands; bocws methods take no
    # *args, so it takes up to three.
    @rpc.method("sum")
    async def total(a: int, b: int = 0, c: int = 0) -> int:
        return a + b + c

    @rpc.method
    async def update(a: int, b: int, c: int, d: int, e: int) -> None:
        note("update", [a, b, c, d, e])

    @rpc.method
    async def notify_hello(value: int) -> None:
        note("notify_hello", [value])

    @rpc.method
    async def notify_sum(a: int, b: int, c: int) -> None:
        note("notify_sum", [a, b, c])

    @rpc.method
    def get_data() -> list[str | int]:  # a sync method
        return ["hello", 5]

    @rpc.method
    async def ask(ws: WebSocket, question: str) -> Any:
        """Ask the client to confirm `question`; answer with what it said."""
        return await rpc.call(ws, "confirm", {"question": question}, timeout=CALL_TIMEOUT)

    @rpc.method
    async def announce(ws: WebSocket, text: str) -> str:
        await rpc.notify(ws, "announced", {"text": text})
        return "announced"

    @rpc.method
    async def refuse() -> None:
        raise RpcError(4001, "refused", {"why": "a test"})

    return rpc


def _log_note(method: str, params: list[Any]) -> None:
    logger.info("note: %s %s", method, json.dumps(params))


app = App(allowed_origins=[])  # same-origin pages only
app.add_websocket_route("/rpc", service(_log_note))

JSON_RPC_2_0 = Path(__file__).resolve().parent / "browser_rpc/node_modules/json-rpc-2.0"
"""The npm package json-rpc-2.0, installed by `npm ci --prefix tests/browser_rpc`."""

PAGE = """<!doctype html>
<title>json-rpc-2.0</title>
<link rel="icon" href="data:,">
<script src="/json-rpc-2.0.js"></script>
"""

# json-rpc-2.0 ships CommonJS only (dist/*.js, no browser build): each file becomes a
# module function, and a `require` of a dozen lines links them; the package's index
# is `window.JSONRPC`. No bundler, and the code as npm installed it.
LOADER = """(() => {
  const modules = {MODULES};
  const loaded = {};
  const require = (name) => {
    const key = name.replace(/\\.js$/, "");
    if (!(key in modules)) {
      throw new Error(`json-rpc-2.0 requires ${name}, which is not in its dist/`);
    }
    if (!(key in loaded)) {
      const module = {exports: {}};
      loaded[key] = module;
      modules[key].call(module.exports, module.exports, require, module);
    }
    return loaded[key].exports;
  };
  window.JSONRPC = require("./index");
})();
"""


@app.route("/")
async def page(request: Request) -> HTMLResponse:
    """A page with json-rpc-2.0 loaded, for the tests' scripts to run in."""
    return HTMLResponse(PAGE)


@app.route("/json-rpc-2.0.js")
async def library(request: Request) -> Response:
    """json-rpc-2.0's dist/ files, linked for the browser (see LOADER)."""
    modules = ",\n".join(
        f"{json.dumps('./' + path.stem)}: function (exports, require, module) {{\n"
        f"{path.read_text()}\n}}"
        for path in sorted((JSON_RPC_2_0 / "dist").glob("*.js"))
    )
    return Response(LOADER.replace("{MODULES}", "{" + modules + "}"), media_type="text/javascript")
