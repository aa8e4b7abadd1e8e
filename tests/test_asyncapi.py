"""The API described (`App.asyncapi()`, `bocws._asyncapi`): AsyncAPI 3.0 documents of
an application's WebSocket routes, checked part by part, then whole by the official
parser, `@asyncapi/parser` (installed by `.ci/run` with `npm ci --prefix
tests/asyncapi`; `tests/asyncapi/validate.mjs` runs it).
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
from typing import TYPE_CHECKING, Annotated, Any, Literal

import msgspec
import pytest
from pydantic import BaseModel, ConfigDict, Field, computed_field
from starlette.applications import Starlette
from starlette.routing import Host, Mount, WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocket as StarletteWebSocket

from bocws import App, Codec, ViewEndpoint, WebSocket, WebSocketView, websocket_view
from bocws._asyncapi import asyncapi_document
from examples import rpc as rpc_example
from examples import typed

from .node_packages import TESTS, npm_package
from .test_docs import FRAGMENT_CONTEXT, example

if TYPE_CHECKING:  # not imported at run time: the annotations naming it do not resolve
    from bocws import WebSocket as CheckedWebSocket

# The application described: one route of each kind, parameters, a class view, a
# mounted application and a JSON-RPC object.


class Address(BaseModel):
    street: str
    city: str


class User(BaseModel):
    """A user and where they live."""

    name: str
    address: Address


class Cat(BaseModel):
    kind: Literal["cat"]
    lives: int


class Dog(BaseModel):
    kind: Literal["dog"]
    good: bool


Pet = Annotated[Cat | Dog, Field(discriminator="kind")]


class Point(msgspec.Struct):
    x: float
    y: float


class Lines(Codec):
    name = "lines"

    def decode(self, data: str | bytes) -> Any:
        return str(data).splitlines()

    def encode(self, value: Any) -> str:
        return "\n".join(value)


class Calculator:
    """Stands in for `bocws.JsonRpc`: a view whose object has `openrpc()`."""

    def openrpc(self) -> dict[str, Any]:
        return {
            "openrpc": "1.3.2",
            "info": {"title": "Calculator", "version": "1.0.0"},
            "methods": [
                {
                    "name": "add",
                    "summary": "Add two integers.",
                    "params": [
                        {"name": "a", "schema": {"type": "integer"}, "required": True},
                        {"name": "b", "schema": {"type": "integer"}, "required": False},
                    ],
                    "result": {"name": "result", "schema": {"type": "integer"}},
                },
                {
                    "name": "chat.say",
                    "paramStructure": "by-name",
                    "params": [
                        {
                            "name": "to",
                            "schema": {"$ref": "#/components/schemas/Address"},
                            "required": True,
                        }
                    ],
                    "result": {"name": "result", "schema": {"type": "null"}},
                },
                {"name": "log", "paramStructure": "by-position", "params": []},
            ],
            "components": {
                "schemas": {
                    "Address": {"type": "object", "properties": {"line": {"type": "string"}}}
                }
            },
        }

    async def _serve(self, ws: WebSocket) -> None:
        """Not a description of the service."""


def described_app() -> App:
    app = App()

    @app.websocket_route("/text")
    async def text(ws: WebSocket) -> None:
        """Echo each text message.

        Longer text.
        """

    @app.websocket_route("/json", value_type="json")
    async def json_echo(ws: WebSocket) -> None: ...

    @app.websocket_route("/bytes", receive_type="bytes", send_type=Lines())
    async def raw(ws: WebSocket) -> None: ...

    @app.websocket_route("/events", value_type="event")
    async def events(ws: WebSocket) -> None: ...

    @app.websocket_route("/users", value_type=User, on_invalid="reply")
    async def users(ws: WebSocket) -> None:
        async for user in ws:
            await ws.send(user)

    @app.websocket_route("/pets", receive_type=Pet, send_type=list[Pet])
    async def pets(ws: WebSocket) -> None: ...

    @app.websocket_route("/points", value_type=Point)
    async def points(ws: WebSocket) -> None: ...

    @app.websocket_route("/rooms/{room}/items/{item_id:int}")
    async def items(
        ws: WebSocket,
        room: str,
        item_id: int,
        token: str,
        limit: int = 10,
        since: float | None = None,
        live: bool = False,
    ) -> None: ...

    @app.websocket_route("/echo/{name}")
    class Echo(WebSocketView):
        value_type = "json"

    sub = App()

    @sub.websocket_route("/feed/{topic:path}")
    async def text_feed(ws: WebSocket, topic: str) -> None: ...

    app.mount("/v2/{version}", sub)
    app.add_websocket_route("/rpc", ViewEndpoint(Calculator()._serve))
    return app


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return described_app().asyncapi()


def channel_of(document: dict[str, Any], channel_id: str) -> dict[str, Any]:
    channel: dict[str, Any] = document["channels"][channel_id]
    return channel


TEXT = {"name": "text", "contentType": "text/plain", "payload": {"type": "string"}}
JSON = {
    "name": "json",
    "summary": "Any JSON value, in a text frame (or a UTF-8 binary frame, received).",
    "contentType": "application/json",
    "payload": {},
}


# The document and a channel.


def test_document_is_asyncapi_3_with_the_info_given() -> None:
    document = described_app().asyncapi(
        title="Pets",
        version="2.1.0",
        description="Everything about pets.",
        servers={"production": {"host": "example.com", "protocol": "wss"}},
    )
    assert document["asyncapi"] == "3.0.0"
    assert document["info"] == {
        "title": "Pets",
        "version": "2.1.0",
        "description": "Everything about pets.",
    }
    assert document["servers"] == {"production": {"host": "example.com", "protocol": "wss"}}


def test_document_of_an_app_without_routes_has_no_channels() -> None:
    assert App().asyncapi() == {
        "asyncapi": "3.0.0",
        "info": {"title": "bocws application", "version": "1.0.0"},
        "channels": {},
        "operations": {},
    }


def test_text_route_is_a_channel_the_app_receives_and_sends_on(document: dict[str, Any]) -> None:
    assert channel_of(document, "text") == {
        "address": "/text",
        "description": "Echo each text message.\n\nLonger text.",
        "messages": {"text.received": TEXT, "text.sent": TEXT},
    }
    operations = document["operations"]
    assert operations["text.receive"] == {
        "action": "receive",
        "channel": {"$ref": "#/channels/text"},
        "messages": [{"$ref": "#/channels/text/messages/text.received"}],
    }
    assert operations["text.send"] == {
        "action": "send",
        "channel": {"$ref": "#/channels/text"},
        "messages": [{"$ref": "#/channels/text/messages/text.sent"}],
    }


def test_every_route_has_a_channel_and_two_operations_in_routing_order(
    document: dict[str, Any],
) -> None:
    channels = ["text", "json_echo", "raw", "events", "users", "pets", "points", "items"]
    channels += ["Echo", "text_feed", "rpc"]
    assert list(document["channels"]) == channels
    assert list(document["operations"]) == [
        f"{channel}.{action}" for channel in channels for action in ("receive", "send")
    ]


# Message kinds.


def test_json_route_takes_and_sends_any_json(document: dict[str, Any]) -> None:
    assert channel_of(document, "json_echo")["messages"] == {
        "json_echo.received": JSON,
        "json_echo.sent": JSON,
    }


def test_bytes_are_binary_and_a_codec_of_ones_own_is_only_named(document: dict[str, Any]) -> None:
    assert channel_of(document, "raw")["messages"] == {
        "raw.received": {
            "name": "bytes",
            "summary": "A binary frame.",
            "contentType": "application/octet-stream",
            "payload": {"type": "string", "format": "binary"},
        },
        "raw.sent": {
            "name": "lines",
            "summary": "Messages of the codec 'lines', which has no schema.",
        },
    }


def test_event_routes_have_no_payload_schema(document: dict[str, Any]) -> None:
    event = {
        "name": "event",
        "summary": "Text or binary frames, read and written by the view as raw ASGI events.",
    }
    assert channel_of(document, "events")["messages"] == {
        "events.received": event,
        "events.sent": event,
    }


def test_pydantic_model_and_its_nested_model_are_named_schemas(document: dict[str, Any]) -> None:
    messages = channel_of(document, "users")["messages"]
    user = {
        "name": "User",
        "contentType": "application/json",
        "payload": {"$ref": "#/components/schemas/User"},
    }
    assert messages["users.received"] == messages["users.sent"] == user
    schemas = document["components"]["schemas"]
    assert schemas["User"] == {
        "description": "A user and where they live.",
        "properties": {
            "name": {"title": "Name", "type": "string"},
            "address": {"$ref": "#/components/schemas/Address"},
        },
        "required": ["name", "address"],
        "title": "User",
        "type": "object",
    }
    assert schemas["Address"]["properties"] == {
        "street": {"title": "Street", "type": "string"},
        "city": {"title": "City", "type": "string"},
    }


def test_on_invalid_reply_sends_the_error_frame_too(document: dict[str, Any]) -> None:
    channel = channel_of(document, "users")
    assert channel["messages"]["users.invalid"] == {
        "name": "invalid message",
        "summary": (
            "The answer to a message that is not valid (on_invalid='reply'): the message is "
            "skipped and the connection stays open."
        ),
        "contentType": "application/json",
        "payload": {"$ref": "#/components/schemas/InvalidMessageReply"},
    }
    assert document["operations"]["users.send"]["messages"] == [
        {"$ref": "#/channels/users/messages/users.sent"},
        {"$ref": "#/channels/users/messages/users.invalid"},
    ]
    assert "text.invalid" not in channel_of(document, "text")["messages"]  # on_invalid="close"


def test_invalid_reply_schema_is_what_the_route_sends(document: dict[str, Any]) -> None:
    schema = document["components"]["schemas"]["InvalidMessageReply"]
    with TestClient(described_app()).websocket_connect("/users") as session:
        session.send_text('{"name": "Ann"}')
        reply = session.receive_json()
    assert sorted(reply) == sorted(schema["required"]) == sorted(schema["properties"])
    assert reply["type"] == schema["properties"]["type"]["const"]
    assert reply["error"] == schema["properties"]["error"]["const"]
    item = schema["properties"]["detail"]["items"]
    assert all(sorted(entry) == sorted(item["required"]) for entry in reply["detail"])


def test_discriminated_union_is_one_of_its_models_with_pydantics_tag_kept_aside(
    document: dict[str, Any],
) -> None:
    union = {
        "oneOf": [{"$ref": "#/components/schemas/Cat"}, {"$ref": "#/components/schemas/Dog"}],
        # AsyncAPI's `discriminator` is a string of another meaning: the OpenAPI object
        # pydantic writes is kept as an extension.
        "x-discriminator": {
            "propertyName": "kind",
            "mapping": {"cat": "#/components/schemas/Cat", "dog": "#/components/schemas/Dog"},
        },
    }
    messages = channel_of(document, "pets")["messages"]
    assert messages["pets.received"] == {
        "name": "Cat | Dog",
        "contentType": "application/json",
        "payload": union,
    }
    assert messages["pets.sent"] == {
        "name": "list[Cat | Dog]",
        "contentType": "application/json",
        "payload": {"type": "array", "items": union},
    }
    assert document["components"]["schemas"]["Cat"]["properties"]["kind"] == {
        "const": "cat",
        "title": "Kind",
        "type": "string",
    }


def test_msgspec_struct_is_described_by_msgspec(document: dict[str, Any]) -> None:
    point = {
        "name": "Point",
        "contentType": "application/json",
        "payload": {"$ref": "#/components/schemas/Point"},
    }
    assert channel_of(document, "points")["messages"] == {
        "points.received": point,
        "points.sent": point,
    }
    assert document["components"]["schemas"]["Point"] == {
        "title": "Point",
        "type": "object",
        "properties": {"x": {"type": "number"}, "y": {"type": "number"}},
        "required": ["x", "y"],
    }


def test_codec_option_picks_the_library_that_describes_the_type() -> None:
    @dataclasses.dataclass
    class Pair:
        left: int
        right: int

    app = App()

    @app.websocket_route("/by-pydantic", value_type=Pair)
    async def by_pydantic(ws: WebSocket) -> None: ...

    @app.websocket_route("/by-msgspec", value_type=Pair, codec="msgspec")
    async def by_msgspec(ws: WebSocket) -> None: ...

    document = app.asyncapi()
    payload = document["channels"]["by_msgspec"]["messages"]["by_msgspec.received"]["payload"]
    assert payload == {"$ref": "#/components/schemas/Pair_2"}
    schemas = document["components"]["schemas"]
    assert schemas["Pair"]["properties"]["left"] == {"title": "Left", "type": "integer"}  # pydantic
    assert schemas["Pair_2"]["properties"]["left"] == {"type": "integer"}  # msgspec


def test_model_read_and_written_differently_has_a_schema_each_way() -> None:
    class Item(BaseModel):
        price: float

        @computed_field  # type: ignore[prop-decorator]
        @property
        def total(self) -> float:
            return self.price * 2

    app = App()

    @app.websocket_route("/items", value_type=Item)
    async def items(ws: WebSocket) -> None: ...

    document = app.asyncapi()
    messages = document["channels"]["items"]["messages"]
    assert messages["items.received"]["payload"] == {"$ref": "#/components/schemas/Item-Input"}
    assert messages["items.sent"]["payload"] == {"$ref": "#/components/schemas/Item-Output"}
    schemas = document["components"]["schemas"]
    assert "total" not in schemas["Item-Input"]["properties"]
    assert schemas["Item-Output"]["properties"]["total"]["readOnly"] is True


def test_type_its_library_cannot_describe_is_named_and_the_others_described() -> None:
    class Handle:
        pass

    class Opaque(BaseModel):
        model_config = ConfigDict(arbitrary_types_allowed=True)
        handle: Handle

    app = App()

    @app.websocket_route("/opaque", receive_type=Opaque, send_type=User)
    async def opaque(ws: WebSocket) -> None: ...

    messages = app.asyncapi()["channels"]["opaque"]["messages"]
    received = messages["opaque.received"]
    assert "payload" not in received
    assert received["summary"].startswith(
        "Opaque, which pydantic cannot describe in JSON Schema: Cannot generate a JsonSchema"
    )
    assert messages["opaque.sent"]["payload"] == {"$ref": "#/components/schemas/User"}


def test_struct_msgspec_cannot_describe_is_named_without_a_schema(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refuse(types: Any, ref_template: str) -> Any:
        raise TypeError("Type 'Point' is not supported")

    monkeypatch.setattr(msgspec.json, "schema_components", refuse)
    app = App()

    @app.websocket_route("/points", value_type=Point)
    async def points(ws: WebSocket) -> None: ...

    received = app.asyncapi()["channels"]["points"]["messages"]["points.received"]
    assert received == {
        "name": "Point",
        "contentType": "application/json",
        "summary": (
            "Point, which msgspec cannot describe in JSON Schema: Type 'Point' is not supported"
        ),
    }


def test_tuples_are_written_as_draft_07_arrays() -> None:
    app = App()

    @app.websocket_route("/pairs", value_type=tuple[int, str])
    async def pairs(ws: WebSocket) -> None: ...

    @app.websocket_route("/rows", value_type=tuple[int, ...])
    async def rows_of_any_length(ws: WebSocket) -> None: ...

    document = app.asyncapi()
    pair = document["channels"]["pairs"]["messages"]["pairs.received"]["payload"]
    assert pair == {
        "items": [{"type": "integer"}, {"type": "string"}],
        "maxItems": 2,
        "minItems": 2,
        "type": "array",
    }
    rows = document["channels"]["rows_of_any_length"]["messages"]
    assert rows["rows_of_any_length.received"]["payload"] == {
        "items": {"type": "integer"},
        "type": "array",
    }


# Parameters.


def test_path_parameters_are_the_channels_and_the_others_its_query(
    document: dict[str, Any],
) -> None:
    channel = channel_of(document, "items")
    assert channel["address"] == "/rooms/{room}/items/{item_id}"  # {item_id:int} in Starlette's
    assert channel["parameters"] == {
        "room": {"description": "a string"},
        "item_id": {"description": "an integer"},
    }
    assert channel["bindings"] == {
        "ws": {
            "query": {
                "type": "object",
                "properties": {
                    "token": {"type": "string", "description": "a string"},
                    "limit": {"type": "integer", "description": "an integer", "default": 10},
                    "since": {"type": "number", "description": "a finite number"},
                    "live": {
                        "type": "boolean",
                        "description": "a boolean (true/false, 1/0, yes/no, on/off)",
                        "default": False,
                    },
                },
                "required": ["token"],
            },
            "bindingVersion": "0.1.0",
        }
    }


def test_path_parameter_a_view_converts_is_described_as_it_converts() -> None:
    app = App()

    @app.websocket_route("/orders/{order}")
    async def orders(ws: WebSocket, order: int, **more: Any) -> None: ...

    @app.websocket_route("/anything/{rest:path}/{when:float}")
    async def anything(ws: WebSocket, **params: Any) -> None: ...

    channels = app.asyncapi()["channels"]
    assert channels["orders"]["parameters"] == {"order": {"description": "an integer"}}
    assert "bindings" not in channels["orders"]  # **more takes nothing from the query
    assert channels["anything"]["parameters"] == {
        "rest": {"description": "a path: the rest of the address, '/' included"},
        "when": {"description": "a number"},
    }


def test_query_parameter_types_resolve_past_type_checking_imports() -> None:
    app = App()

    @app.websocket_route("/count")
    async def count(ws: CheckedWebSocket, start: int = 0) -> None: ...

    query = app.asyncapi()["channels"]["count"]["bindings"]["ws"]["query"]
    assert query["properties"] == {
        "start": {"type": "integer", "description": "an integer", "default": 0}
    }


# Class views, mounts and other routes.


def test_class_view_is_described_from_its_class_attributes(document: dict[str, Any]) -> None:
    assert channel_of(document, "Echo") == {
        "address": "/echo/{name}",
        "parameters": {"name": {"description": "a string"}},
        "messages": {"Echo.received": JSON, "Echo.sent": JSON},
    }


def test_mounted_app_routes_are_under_the_mounts_address(document: dict[str, Any]) -> None:
    assert channel_of(document, "text_feed") == {
        "address": "/v2/{version}/feed/{topic}",
        "parameters": {
            "version": {"description": "a string"},
            "topic": {"description": "a path: the rest of the address, '/' included"},
        },
        "messages": {"text_feed.received": TEXT, "text_feed.sent": TEXT},
    }


def test_names_are_made_unique_and_a_named_mount_prefixes_its_routes() -> None:
    @websocket_view
    async def echo(ws: WebSocket) -> None: ...

    app = App(
        routes=[
            WebSocketRoute("/echo", echo),
            Mount("/a", routes=[WebSocketRoute("/echo", echo)]),
            Mount("/b", routes=[WebSocketRoute("/echo", echo)], name="b"),
            Host("api.example.com", App(routes=[WebSocketRoute("/c/echo", echo)])),
            WebSocketRoute("/{room}/chat-room", echo, name="_private"),
        ]
    )
    channels = app.asyncapi()["channels"]
    assert {channel_id: channel["address"] for channel_id, channel in channels.items()} == {
        "echo": "/echo",
        "echo_2": "/a/echo",
        "b.echo": "/b/echo",
        "echo_3": "/c/echo",
        "room.chat-room": "/{room}/chat-room",
    }


def test_websocket_endpoints_that_are_not_bocws_views_are_left_out() -> None:
    async def starlette_endpoint(websocket: StarletteWebSocket) -> None: ...

    @websocket_view(value_type="json")
    async def view(ws: WebSocket) -> None: ...

    app = Starlette(
        routes=[WebSocketRoute("/plain", starlette_endpoint), WebSocketRoute("/view", view)]
    )
    assert list(asyncapi_document(app)["channels"]) == ["view"]


# JSON-RPC.


def test_json_rpc_route_has_a_request_and_a_result_message_per_method(
    document: dict[str, Any],
) -> None:
    channel = channel_of(document, "rpc")  # its route is named after `_serve`: the address
    assert channel["title"] == "Calculator"
    assert channel["description"].startswith("JSON-RPC 2.0: each request is answered")
    assert list(channel["messages"]) == [
        "rpc.add.request",
        "rpc.add.result",
        "rpc.chat.say.request",
        "rpc.chat.say.result",
        "rpc.log.request",
        "rpc.error",
    ]
    operations = document["operations"]
    assert operations["rpc.receive"]["messages"] == [
        {"$ref": f"#/channels/rpc/messages/rpc.{method}.request"}
        for method in ("add", "chat.say", "log")
    ]
    assert operations["rpc.send"]["messages"] == [
        {"$ref": "#/channels/rpc/messages/rpc.add.result"},
        {"$ref": "#/channels/rpc/messages/rpc.chat.say.result"},
        {"$ref": "#/channels/rpc/messages/rpc.error"},
    ]


def test_json_rpc_request_takes_params_by_name_or_by_position(document: dict[str, Any]) -> None:
    request = channel_of(document, "rpc")["messages"]["rpc.add.request"]
    assert request == {
        "name": "add",
        "title": "add request",
        "summary": "Add two integers.",
        "contentType": "application/json",
        "payload": {
            "type": "object",
            "properties": {
                "jsonrpc": {"const": "2.0"},
                "method": {"const": "add"},
                "params": {
                    "oneOf": [
                        {
                            "type": "object",
                            "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
                            "required": ["a"],
                        },
                        {
                            "type": "array",
                            "maxItems": 2,
                            "items": [{"type": "integer"}, {"type": "integer"}],
                            "minItems": 1,
                        },
                    ]
                },
                "id": {"type": ["string", "integer"]},
            },
            "required": ["jsonrpc", "method", "params"],
        },
    }


def test_json_rpc_param_structure_and_components_are_followed(document: dict[str, Any]) -> None:
    messages = channel_of(document, "rpc")["messages"]
    say = messages["rpc.chat.say.request"]["payload"]["properties"]["params"]
    # The OpenRPC document's Address is not the pydantic model's: it takes another name.
    assert say == {
        "type": "object",
        "properties": {"to": {"$ref": "#/components/schemas/Address_2"}},
        "required": ["to"],
    }
    assert document["components"]["schemas"]["Address_2"] == {
        "type": "object",
        "properties": {"line": {"type": "string"}},
    }
    log = messages["rpc.log.request"]["payload"]
    assert log["properties"]["params"] == {"type": "array", "maxItems": 0}
    assert log["required"] == ["jsonrpc", "method"]  # no params needed


def test_json_rpc_result_and_error_responses(document: dict[str, Any]) -> None:
    messages = channel_of(document, "rpc")["messages"]
    assert messages["rpc.add.result"] == {
        "name": "add",
        "title": "add result",
        "contentType": "application/json",
        "payload": {
            "type": "object",
            "properties": {
                "jsonrpc": {"const": "2.0"},
                "result": {"type": "integer"},
                "id": {"type": ["string", "integer"]},
            },
            "required": ["jsonrpc", "result", "id"],
        },
    }
    assert messages["rpc.error"]["payload"] == {"$ref": "#/components/schemas/JsonRpcErrorResponse"}
    error = document["components"]["schemas"]["JsonRpcErrorResponse"]
    assert error["required"] == ["jsonrpc", "error", "id"]
    assert error["properties"]["error"]["required"] == ["code", "message"]


def test_json_rpc_schemas_are_written_as_asyncapi_reads_them() -> None:
    class Shapes(Calculator):
        def openrpc(self) -> dict[str, Any]:
            return {
                "openrpc": "1.3.2",
                "info": {"version": "1"},
                "methods": [
                    {
                        "name": "draw",
                        "paramStructure": "by-position",
                        "params": [
                            {"$ref": "#/components/contentDescriptors/Shape"},
                            {"name": "anything", "schema": True},
                            {"name": "nothing", "schema": False},
                        ],
                        "result": {
                            "name": "result",
                            "schema": {"$ref": "#/components/schemas/Row"},
                        },
                    }
                ],
                "components": {
                    "contentDescriptors": {
                        "Shape": {
                            "name": "shape",
                            "schema": {"$ref": "#/components/schemas/Shape"},
                            "required": True,
                        }
                    },
                    "schemas": {
                        # JSON Schema 2020-12's tuple: a first integer, then strings.
                        "Row": {
                            "type": "array",
                            "prefixItems": [{"type": "integer"}],
                            "items": {"type": "string"},
                        },
                        "Nothing": {"type": "array", "prefixItems": [], "maxItems": 0},
                        # AsyncAPI's own discriminator, a property name, stays.
                        "Shape": {
                            "type": "object",
                            "discriminator": "kind",
                            "properties": {"kind": {"type": "string"}},
                            "required": ["kind"],
                        },
                    },
                },
            }

    app = App()
    app.add_websocket_route("/shapes", ViewEndpoint(Shapes()._serve))
    document = app.asyncapi()
    channel = document["channels"]["shapes"]
    assert "title" not in channel
    request = channel["messages"]["shapes.draw.request"]["payload"]
    assert request["properties"]["params"] == {
        "type": "array",
        "maxItems": 3,
        "items": [{"$ref": "#/components/schemas/Shape"}, {}, {"not": {}}],
        "minItems": 1,
    }
    schemas = document["components"]["schemas"]
    assert schemas["Row"] == {
        "type": "array",
        "items": [{"type": "integer"}],
        "additionalItems": {"type": "string"},
    }
    assert schemas["Nothing"] == {"type": "array", "maxItems": 0}
    assert schemas["Shape"]["discriminator"] == "kind"
    assert parser_verdict(document).returncode == 0


# Names of schemas.


def test_schemas_of_one_name_are_kept_apart_and_equal_ones_shared() -> None:
    class Calendar(Calculator):
        def openrpc(self) -> dict[str, Any]:
            document = super().openrpc()
            document["components"]["schemas"]["Point"] = {"type": "string"}
            return document

    app = App()
    app.add_websocket_route("/one", ViewEndpoint(Calculator()._serve), name="one")
    app.add_websocket_route("/two", ViewEndpoint(Calendar()._serve), name="two")

    @app.websocket_route("/points", value_type=Point)
    async def points(ws: WebSocket) -> None: ...

    schemas = app.asyncapi()["components"]["schemas"]
    # The routes' types name first, then the OpenRPC documents (the same Address once),
    # bocws's own schemas last.
    assert list(schemas) == ["Point", "Address", "Point_2", "JsonRpcErrorResponse"]
    assert schemas["Point_2"] == {"type": "string"}


def test_a_renamed_schema_is_followed_by_the_refs_to_it() -> None:
    class Pin(BaseModel):
        at: Address

    class Nested(Calculator):
        def openrpc(self) -> dict[str, Any]:
            return {
                "openrpc": "1.3.2",
                "info": {"title": "Nested", "version": "1"},
                "methods": [
                    {
                        "name": "pin",
                        "params": [{"name": "pin", "schema": {"$ref": "#/components/schemas/Pin"}}],
                        "result": {
                            "name": "result",
                            "schema": {"$ref": "#/components/schemas/Pin"},
                        },
                    }
                ],
                "components": {
                    "schemas": {
                        # Equal to the pydantic model's Pin, but its Address is another.
                        "Pin": {
                            "properties": {"at": {"$ref": "#/components/schemas/Address"}},
                            "required": ["at"],
                            "title": "Pin",
                            "type": "object",
                        },
                        "Address": {"type": "string"},
                        "My Thing[int]": {"$ref": "#/components/schemas/Address"},
                    }
                },
            }

    app = App()

    @app.websocket_route("/pins", value_type=Pin)
    async def pins(ws: WebSocket) -> None: ...

    app.add_websocket_route("/nested", ViewEndpoint(Nested()._serve))
    document = app.asyncapi()
    schemas = document["components"]["schemas"]
    assert schemas["Pin"]["properties"]["at"] == {"$ref": "#/components/schemas/Address"}
    assert schemas["Address_2"] == {"type": "string"}
    assert schemas["Pin_2"]["properties"]["at"] == {"$ref": "#/components/schemas/Address_2"}
    assert schemas["My_Thing_int_"] == {"$ref": "#/components/schemas/Address_2"}
    result = document["channels"]["nested"]["messages"]["nested.pin.result"]["payload"]
    assert result["properties"]["result"] == {"$ref": "#/components/schemas/Pin_2"}


# Serving it.


def test_asyncapi_url_serves_the_document_of_the_routes_as_they_are_now() -> None:
    app = App(asyncapi_url="/asyncapi.json")

    @app.websocket_route("/text")
    async def text(ws: WebSocket) -> None: ...

    client = TestClient(app)
    response = client.get("/asyncapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == app.asyncapi()
    assert list(response.json()["channels"]) == ["text"]

    @app.websocket_route("/later", value_type="json")
    async def later(ws: WebSocket) -> None: ...

    assert list(client.get("/asyncapi.json").json()["channels"]) == ["text", "later"]
    assert client.post("/asyncapi.json").status_code == 405


def test_no_document_is_served_unless_asked() -> None:
    assert TestClient(App()).get("/asyncapi.json").status_code == 404


def test_typed_example_serves_its_document() -> None:
    response = TestClient(typed.app).get("/asyncapi.json")
    assert response.status_code == 200
    document = response.json()
    assert list(document["channels"]) == ["todo", "add_up"]
    assert document["channels"]["add_up"]["address"] == "/sum"


# The official parser.

VALIDATE = TESTS / "asyncapi" / "validate.mjs"


def parser_verdict(document: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    """What `@asyncapi/parser` says of `document` (`validate.mjs`: exit status, errors)."""
    npm_package("asyncapi", "@asyncapi/parser")
    return subprocess.run(
        ["node", str(VALIDATE)],
        input=json.dumps(document),
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
    )


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: described_app().asyncapi(), id="described-app"),
        pytest.param(
            lambda: described_app().asyncapi(
                title="Pets",
                version="2.1.0",
                description="Everything about pets.",
                servers={"production": {"host": "example.com", "protocol": "wss"}},
            ),
            id="described-app-with-info-and-servers",
        ),
        pytest.param(lambda: typed.app.asyncapi(), id="examples.typed"),
        pytest.param(lambda: rpc_example.app.asyncapi(), id="examples.rpc"),
        pytest.param(lambda: App().asyncapi(), id="no-routes"),
    ],
)
def test_official_parser_finds_the_document_valid(make: Any) -> None:
    verdict = parser_verdict(make())
    assert verdict.returncode == 0, verdict.stderr
    assert verdict.stdout.strip() == "valid AsyncAPI 3.0.0 document"


def test_official_parser_refuses_what_bocws_translates() -> None:
    """An OpenAPI discriminator left as pydantic writes it is an error: the validation
    sees what bocws changes."""
    document = typed.app.asyncapi()
    payload = document["channels"]["todo"]["messages"]["todo.received"]["payload"]
    payload["discriminator"] = payload.pop("x-discriminator")
    verdict = parser_verdict(document)
    assert verdict.returncode == 1
    assert '"discriminator" property type must be string' in verdict.stderr


# The docs.


def test_docs_first_example_serves_the_chat_routes_document() -> None:
    app = example("asyncapi.md", 'app = App(asyncapi_url="/asyncapi.json")')["app"]
    client = TestClient(app)
    channel = client.get("/asyncapi.json").json()["channels"]["chat"]
    assert channel["address"] == "/chat/{room}"
    assert channel["description"] == "Talk in a room: each text message comes back from the room."
    assert channel["bindings"]["ws"]["query"]["properties"]["nick"]["default"] == "anonymous"
    assert channel["messages"]["chat.sent"]["payload"] == {"$ref": "#/components/schemas/Said"}
    with client.websocket_connect("/chat/lobby?nick=ann") as session:
        session.send_text("hi")
        assert session.receive_json() == {"room": "lobby", "nick": "ann", "text": "hi"}


def test_docs_own_route_serves_the_document_with_its_info_and_servers() -> None:
    app = example("asyncapi.md", '@app.route("/asyncapi.json")', context=FRAGMENT_CONTEXT)["app"]
    document = TestClient(app).get("/asyncapi.json").json()
    assert document["info"] == {"title": "Chat", "version": "2.1.0"}
    assert document["servers"] == {"production": {"host": "chat.example.com", "protocol": "wss"}}


def test_docs_show_the_typed_examples_document_as_it_is() -> None:
    page = (TESTS.parent / "docs" / "asyncapi.md").read_text(encoding="utf-8")
    shown = page.rpartition("```json\n")[2].partition("```")[0]
    assert json.loads(shown) == typed.app.asyncapi()
