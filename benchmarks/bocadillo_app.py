"""The Bocadillo 0.18.3 echo of the server benchmarks, the API bocws comes from.

Served from Bocadillo's own virtualenv (`benchmarks.environments.bocadillo_python()`),
so it imports Bocadillo and nothing of the project:
`.bench-venvs/bocadillo/bin/python -m uvicorn benchmarks.bocadillo_app:app`.
"""

# Bocadillo lives in its own virtualenv, not the project's: mypy cannot see it there.
from bocadillo import App, WebSocket, configure  # type: ignore[import-not-found]

app = App()


@app.websocket_route("/", value_type="text")  # type: ignore[untyped-decorator]
async def echo(ws: WebSocket) -> None:
    """Echo every text message; Bocadillo accepts, and ends quietly on the client's 1000."""
    async for message in ws:
        await ws.send(message)


configure(app)
