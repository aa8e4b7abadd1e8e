"""A typed request/response service: pydantic and msgspec models in and out.

Each connection keeps a to-do list. Requests are a union of pydantic models told
apart by their `op` field; replies are a model too. A request that is not valid JSON,
or does not validate, is answered with an error frame, and the connection stays open
(`on_invalid="reply"`). A second route sums numbers with msgspec.

Run it with `uvicorn examples.typed:app`, then try, in a browser's console:

    ws = new WebSocket("ws://127.0.0.1:8000/todo")
    ws.onmessage = (event) => console.log(event.data)
    ws.send(JSON.stringify({op: "add", title: "water the plants"}))
    ws.send(JSON.stringify({op: "done", id: "first"}))   // an error frame comes back
"""

from __future__ import annotations

import datetime
from typing import Annotated, Literal

import msgspec
from pydantic import BaseModel, Field

from bocws import App, WebSocket

# The to-do service, with pydantic.


class Add(BaseModel):
    op: Literal["add"]
    title: Annotated[str, Field(min_length=1, max_length=200)]
    due: datetime.date | None = None


class Done(BaseModel):
    op: Literal["done"]
    id: int


class Show(BaseModel):
    op: Literal["show"]


#: What a client may ask: pydantic picks the model by `op`.
Request = Annotated[Add | Done | Show, Field(discriminator="op")]


class Item(BaseModel):
    id: int
    title: str
    due: datetime.date | None = None
    done: bool = False


class Reply(BaseModel):
    ok: bool = True
    items: list[Item] = []
    error: str | None = None


# Every route answers bad input instead of closing; /asyncapi.json describes them.
app = App(on_invalid="reply", asyncapi_url="/asyncapi.json")


@app.websocket_route("/todo", receive_type=Request, send_type=Reply)
async def todo(ws: WebSocket) -> None:
    """Keep this connection's to-do list: add, mark done, show."""
    items: dict[int, Item] = {}
    async for request in ws:
        if isinstance(request, Add):
            item = Item(id=len(items) + 1, title=request.title, due=request.due)
            items[item.id] = item
            await ws.send(Reply(items=[item]))
        elif isinstance(request, Done):
            if request.id not in items:
                await ws.send(Reply(ok=False, error=f"no item {request.id}"))
                continue
            items[request.id].done = True
            await ws.send(Reply(items=[items[request.id]]))
        else:
            await ws.send(Reply(items=list(items.values())))


# A calculator, with msgspec.


class Numbers(msgspec.Struct):
    values: list[float]


class Total(msgspec.Struct):
    total: float
    count: int


@app.websocket_route("/sum", receive_type=Numbers, send_type=Total)
async def add_up(ws: WebSocket) -> None:
    """Answer each list of numbers with their sum and count."""
    async for numbers in ws:
        await ws.send(Total(total=sum(numbers.values), count=len(numbers.values)))
