"""The API described: an AsyncAPI 3.0 document of an application's WebSocket routes.

`asyncapi_document(app)` walks the application's routes (mounted applications under
their prefix) and makes each bocws view (a `ViewEndpoint` behind a `WebSocketRoute`)
a channel: its address, its path parameters, its query parameters in the WebSockets
binding, the messages the application receives and sends, and the two operations
that name them. AsyncAPI speaks for the application: `action: receive` is what the
client sends, `action: send` what the application sends it.

A payload's schema comes from the route's kind: a type is described by the library
that reads it (pydantic's `TypeAdapter`, msgspec's `json.schema_components`), its
named schemas gathered in `components.schemas`; the built-in kinds have fixed schemas;
a codec of one's own is only named. A route serving a JSON-RPC object (one with an
`openrpc()` method, as `bocws.JsonRpc`) gets a message per method, from its OpenRPC
document.
"""

from __future__ import annotations

import copy
import inspect
import re
import typing
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import NoneType, UnionType
from typing import Any, Literal, NamedTuple, Protocol

from starlette.convertors import CONVERTOR_TYPES, Convertor
from starlette.routing import BaseRoute, Host, Mount, WebSocketRoute, compile_path

from ._codecs import codec_for
from ._parameters import ViewParameters, resolved_annotations, view_name
from ._typed import LIBRARIES, Library, SchemaMode, is_type_form, json_schemas, library_for
from .views import ViewEndpoint

__all__ = ["ASYNCAPI_VERSION", "DEFAULT_TITLE", "DEFAULT_VERSION", "asyncapi_document"]

ASYNCAPI_VERSION = "3.0.0"
DEFAULT_TITLE = "bocws application"
DEFAULT_VERSION = "1.0.0"
#: Where a named schema is: refs to it are written `#/components/schemas/<name>`.
SCHEMAS = "#/components/schemas/"
#: The version of AsyncAPI's WebSockets bindings written (its query parameters).
WS_BINDING_VERSION = "0.1.0"


class Routed(Protocol):
    """What `asyncapi_document()` reads: a Starlette application, router or mount."""

    @property
    def routes(self) -> list[BaseRoute]: ...


def asyncapi_document(
    app: Routed,
    *,
    title: str = DEFAULT_TITLE,
    version: str = DEFAULT_VERSION,
    description: str | None = None,
    servers: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """An AsyncAPI 3.0.0 document of the WebSocket routes of `app`, as JSON-ready data.

    Parameters:
        app: a `bocws.App` (or any Starlette application or router); its bocws views
            are described, those of mounted applications under their prefix. Other
            WebSocket endpoints say nothing of their messages and are left out.
        title: the document's `info.title`.
        version: the version of the API (`info.version`), not of AsyncAPI.
        description: `info.description`, if given.
        servers: AsyncAPI Server Objects by name, as they are to be written (each
            with its `host` and `protocol`: `{"production": {"host": "example.com",
            "protocol": "wss"}}`); none unless given.

    Example:
        >>> document = asyncapi_document(app, title="Chat", version="2.1.0")
        >>> document["channels"]["chat"]["address"]
        '/chat/{room}'
    """
    info: dict[str, Any] = {"title": title, "version": version}
    if description is not None:
        info["description"] = description
    document: dict[str, Any] = {"asyncapi": ASYNCAPI_VERSION, "info": info}
    if servers:
        document["servers"] = {name: dict(server) for name, server in servers.items()}
    schemas = _Schemas()
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for route in _websocket_routes(app.routes):
        channel_id = _unique(_identifier(route.name) or _identifier(route.address), channels)
        channel, received, sent = _channel(route, channel_id, schemas)
        channels[channel_id] = channel
        operations[channel_id + ".receive"] = _operation("receive", channel_id, received)
        operations[channel_id + ".send"] = _operation("send", channel_id, sent)
    schemas.finish()
    document["channels"] = channels
    document["operations"] = operations
    if schemas.components:
        document["components"] = {"schemas": schemas.components}
    return document


# The routes.


class _Route(NamedTuple):
    """A bocws view as the document needs it: its full address (Starlette's syntax
    taken off: `/items/{id}`), name (with its mounts': `v2.chat`; empty for none
    worth giving), path parameters' convertors and endpoint."""

    address: str
    name: str
    convertors: dict[str, Convertor[Any]]
    endpoint: ViewEndpoint


def _websocket_routes(
    routes: Iterable[BaseRoute],
    prefix: str = "",
    names: tuple[str, ...] = (),
    convertors: Mapping[str, Convertor[Any]] | None = None,
) -> Iterator[_Route]:
    """The bocws views among `routes`, in routing order, those of mounts within."""
    for route in routes:
        if isinstance(route, WebSocketRoute) and isinstance(route.endpoint, ViewEndpoint):
            private = route.name.startswith("_")  # a method's (`_serve`): the address says more
            yield _Route(
                prefix + route.path_format,
                "" if private else ".".join((*names, route.name)),
                {**(convertors or {}), **route.param_convertors},
                route.endpoint,
            )
        elif isinstance(route, Mount):
            # The mount's own pattern (its `path_format` ends with the rest of the path).
            _, path_format, own = compile_path(route.path)
            yield from _websocket_routes(
                route.routes,
                prefix + path_format,
                (*names, route.name) if route.name else names,
                {**(convertors or {}), **own},
            )
        elif isinstance(route, Host):  # the host's parameters are not in the address
            yield from _websocket_routes(route.routes, prefix, names, convertors)


def _channel(
    route: _Route, channel_id: str, schemas: _Schemas
) -> tuple[dict[str, Any], list[str], list[str]]:
    """The channel of `route`, and the keys of its messages received and sent (each
    key the channel's id, a dot, the message's: `chat.received`, unique in the
    document as code generators want it)."""
    endpoint = route.endpoint
    channel: dict[str, Any] = {"address": route.address}
    if endpoint.__doc__:  # the view's own (a class's is not inherited)
        channel["description"] = inspect.cleandoc(endpoint.__doc__)
    declared = _declared_parameters(endpoint)
    if route.convertors:
        channel["parameters"] = {
            name: {"description": _path_description(convertor, declared.get(name))}
            for name, convertor in route.convertors.items()
        }
    query = _query_schema(declared, route.convertors)
    if query is not None:
        channel["bindings"] = {"ws": {"query": query, "bindingVersion": WS_BINDING_VERSION}}
    rpc = getattr(getattr(endpoint.view, "__self__", None), "openrpc", None)
    if callable(rpc):
        openrpc = rpc()
        messages, received, sent = _rpc_messages(openrpc, schemas)
        info = openrpc.get("info") or {}
        if info.get("title"):
            channel["title"] = info["title"]
        channel["description"] = "\n\n".join(filter(None, [info.get("description"), RPC_ABOUT]))
    else:
        messages, received, sent = _view_messages(endpoint.options, schemas)
    channel["messages"] = {f"{channel_id}.{key}": message for key, message in messages.items()}
    return (
        channel,
        [f"{channel_id}.{key}" for key in received],
        [f"{channel_id}.{key}" for key in sent],
    )


def _operation(action: Literal["receive", "send"], channel_id: str, keys: list[str]) -> Any:
    channel = "#/channels/" + channel_id
    return {
        "action": action,
        "channel": {"$ref": channel},
        "messages": [{"$ref": f"{channel}/messages/{key}"} for key in keys],
    }


# Parameters.


class _Declared(NamedTuple):
    """A parameter a function view declares: what bocws makes of it, and its signature's
    annotation and default."""

    required: bool
    description: str
    annotation: Any
    default: Any


def _declared_parameters(endpoint: ViewEndpoint) -> dict[str, _Declared]:
    """The parameters bocws fills of a function view, by name (a class view has none)."""
    view = endpoint.view
    if isinstance(view, type):
        return {}
    signature = inspect.signature(view)
    hints, _ = resolved_annotations(view, signature)  # resolved as bocws resolves them
    declared = {}
    for parameter in ViewParameters(view_name(view), view).parameters:
        found = signature.parameters[parameter.name]
        annotation = hints.get(parameter.name, found.annotation)
        declared[parameter.name] = _Declared(
            parameter.required, parameter.description, annotation, found.default
        )
    return declared


#: How the path convertors Starlette has read their segment, by name.
_CONVERTOR_DESCRIPTIONS = {
    "str": "a string",
    "path": "a path: the rest of the address, '/' included",
    "int": "an integer",
    "float": "a number",
    "uuid": "a UUID",
}
_CONVERTOR_NAMES = {id(convertor): name for name, convertor in CONVERTOR_TYPES.items()}


def _path_description(convertor: Convertor[Any], declared: _Declared | None) -> str:
    """What a path parameter takes: as its convertor reads it, or else its view."""
    name = _CONVERTOR_NAMES.get(id(convertor))
    if name == "str" and declared is not None:
        return declared.description  # bocws converts the string: "an integer"
    return _CONVERTOR_DESCRIPTIONS.get(name or "", f"a value matching {convertor.regex!r}")


#: The JSON Schemas of the types bocws converts a query parameter to.
_QUERY_TYPES: dict[Any, dict[str, str]] = {
    str: {"type": "string"},
    int: {"type": "integer"},
    float: {"type": "number"},
    bool: {"type": "boolean"},
    uuid.UUID: {"type": "string", "format": "uuid"},
}


def _query_schema(declared: Mapping[str, _Declared], path: Iterable[str]) -> dict[str, Any] | None:
    """The WebSockets binding's `query` schema of the view's parameters that the path
    does not give, or `None` if it has none."""
    query = {name: parameter for name, parameter in declared.items() if name not in path}
    if not query:
        return None
    properties = {}
    for name, parameter in query.items():
        json_type = _QUERY_TYPES.get(_optional_of(parameter.annotation), {"type": "string"})
        schema: dict[str, Any] = {**json_type, "description": parameter.description}
        default = parameter.default
        if isinstance(default, (str, int, float, bool, uuid.UUID)):  # not None, nor empty
            schema["default"] = str(default) if isinstance(default, uuid.UUID) else default
        properties[name] = schema
    schema = {"type": "object", "properties": properties}
    required = [name for name, parameter in query.items() if parameter.required]
    if required:
        schema["required"] = required
    return schema


def _optional_of(annotation: Any) -> Any:
    """`int` for `int | None` or `Optional[int]`; any other annotation as it is."""
    if isinstance(annotation, UnionType) or typing.get_origin(annotation) is typing.Union:
        members = [member for member in typing.get_args(annotation) if member is not NoneType]
        if len(members) == 1:
            return members[0]
    return annotation


# Messages of a view.


def _view_messages(
    options: Mapping[str, Any], schemas: _Schemas
) -> tuple[dict[str, Any], list[str], list[str]]:
    """The messages of a view with the route options `options`: what it receives and
    sends, and the error frame of `on_invalid="reply"`."""
    messages = {
        "received": _message(options, "receive_type", schemas),
        "sent": _message(options, "send_type", schemas),
    }
    sent = ["sent"]
    if options["on_invalid"] == "reply":
        (error,) = schemas.add(
            {INVALID_REPLY_NAME: INVALID_REPLY_SCHEMA}, [_ref(INVALID_REPLY_NAME)], own=True
        )
        messages["invalid"] = {
            "name": "invalid message",
            "summary": (
                "The answer to a message that is not valid (on_invalid='reply'): the "
                "message is skipped and the connection stays open."
            ),
            "contentType": "application/json",
            "payload": error,
        }
        sent.append("invalid")
    return messages, ["received"], sent


#: The messages of the built-in kinds, by name.
_KIND_MESSAGES: dict[str, dict[str, Any]] = {
    "text": {"name": "text", "contentType": "text/plain", "payload": {"type": "string"}},
    "bytes": {
        "name": "bytes",
        "summary": "A binary frame.",
        "contentType": "application/octet-stream",
        "payload": {"type": "string", "format": "binary"},
    },
    "json": {
        "name": "json",
        "summary": "Any JSON value, in a text frame (or a UTF-8 binary frame, received).",
        "contentType": "application/json",
        "payload": {},
    },
    "event": {
        "name": "event",
        "summary": "Text or binary frames, read and written by the view as raw ASGI events.",
    },
}


def _message(options: Mapping[str, Any], direction: str, schemas: _Schemas) -> dict[str, Any]:
    """The message of one direction (`receive_type` or `send_type`) of a route."""
    kind = options["value_type"] or options[direction] or "text"  # as `WebSocket` reads them
    if isinstance(kind, str):
        return copy.deepcopy(_KIND_MESSAGES[kind])
    if not is_type_form(kind):
        name = getattr(kind, "name", type(kind).__name__)
        return {"name": name, "summary": f"Messages of the codec {name!r}, which has no schema."}
    # The name `typed_codec()` gives the type (`Cat | Dog`); made already, so cached.
    name = codec_for(direction, kind, options["codec"]).name
    message = {"name": name, "contentType": "application/json"}
    library = library_for(kind, options["codec"])
    mode: SchemaMode = "validation" if direction == "receive_type" else "serialization"
    schemas.add_type(_Typed(kind, name, library, mode, message))
    return message


#: The error frame `on_invalid="reply"` sends: `bocws.invalid_reply()`'s shape.
INVALID_REPLY_NAME = "InvalidMessageReply"
INVALID_REPLY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "type": {"const": "error"},
        "error": {"const": "invalid message"},
        "detail": {
            "type": "array",
            "description": "What is wrong, as the decoding library says (trimmed).",
            "items": {
                "type": "object",
                "properties": {
                    "type": {"type": "string"},
                    "loc": {"type": "array", "items": {"type": ["string", "integer"]}},
                    "msg": {"type": "string"},
                },
                "required": ["type", "loc", "msg"],
            },
        },
    },
    "required": ["type", "error", "detail"],
}


# Messages of a JSON-RPC object.

RPC_ABOUT = (
    "JSON-RPC 2.0: each request is answered with its result or an error, a batch (an "
    "array of requests) with an array of answers; a notification (a request without an "
    "id) is not answered."
)
JSONRPC_ERROR_NAME = "JsonRpcErrorResponse"
_ID: dict[str, Any] = {"type": ["string", "integer"]}
JSONRPC_ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "jsonrpc": {"const": "2.0"},
        "error": {
            "type": "object",
            "properties": {
                "code": {"type": "integer"},
                "message": {"type": "string"},
                "data": {},
            },
            "required": ["code", "message"],
        },
        "id": {"type": ["string", "integer", "null"]},
    },
    "required": ["jsonrpc", "error", "id"],
}


def _rpc_messages(
    openrpc: Mapping[str, Any], schemas: _Schemas
) -> tuple[dict[str, Any], list[str], list[str]]:
    """The messages of a JSON-RPC object, from its OpenRPC document: for each method
    the request received and the response with its result sent, and the error
    response any request may get."""
    components = openrpc.get("components") or {}
    descriptors = components.get("contentDescriptors") or {}
    definitions = components.get("schemas") or {}

    def schema_of(descriptor: Mapping[str, Any]) -> Any:
        # Its named schemas join the document's (once: the same content is shared).
        return schemas.add(definitions, [descriptor.get("schema", {})])[0]

    messages: dict[str, Any] = {}
    received, sent = [], []
    for method in openrpc.get("methods", ()):
        name = method["name"]
        key = _identifier(name) or "method"
        params = [_resolved(param, descriptors) for param in method.get("params", ())]
        request = {
            "name": name,
            "title": f"{name} request",
            "contentType": "application/json",
            "payload": _request_schema(name, method, params, [schema_of(p) for p in params]),
        }
        for text in ("summary", "description"):
            if method.get(text):
                request[text] = method[text]
        request_key = _unique(key + ".request", messages)
        messages[request_key] = request
        received.append(request_key)
        result = _resolved(method.get("result"), descriptors)
        if result is not None:  # else a notification: never answered
            response_key = _unique(key + ".result", messages)
            messages[response_key] = {
                "name": name,
                "title": f"{name} result",
                "contentType": "application/json",
                "payload": _envelope(result=schema_of(result), id=_ID),
            }
            sent.append(response_key)
    (error,) = schemas.add(
        {JSONRPC_ERROR_NAME: JSONRPC_ERROR_SCHEMA}, [_ref(JSONRPC_ERROR_NAME)], own=True
    )
    error_key = _unique("error", messages)
    messages[error_key] = {
        "name": "error",
        "title": "error response",
        "summary": "The answer to a request that failed, or that is not a valid request.",
        "contentType": "application/json",
        "payload": error,
    }
    sent.append(error_key)
    return messages, received, sent


def _request_schema(
    name: str,
    method: Mapping[str, Any],
    params: Sequence[Mapping[str, Any]],
    schemas: Sequence[Any],
) -> dict[str, Any]:
    """The schema of a JSON-RPC request for `method`, its params by name (an object)
    or by position (an array), as its `paramStructure` says (either, by default)."""
    required = [param["name"] for param in params if param.get("required")]
    by_name: dict[str, Any] = {
        "type": "object",
        "properties": {
            param["name"]: schema for param, schema in zip(params, schemas, strict=True)
        },
    }
    if required:
        by_name["required"] = required
    by_position: dict[str, Any] = {"type": "array", "maxItems": len(params)}
    if schemas:
        by_position["items"] = list(schemas)
    leading = next((i for i, param in enumerate(params) if not param.get("required")), len(params))
    if leading:
        by_position["minItems"] = leading
    structure = method.get("paramStructure", "either")
    if structure == "by-name":
        params_schema = by_name
    elif structure == "by-position":
        params_schema = by_position
    else:
        params_schema = {"oneOf": [by_name, by_position]}
    request = _envelope(method={"const": name}, params=params_schema, id=_ID)
    # Params may be left out if none is required; the id is, by a notification.
    request["required"] = ["jsonrpc", "method", *(["params"] if required else [])]
    return request


def _envelope(**members: Any) -> dict[str, Any]:
    """The schema of a JSON-RPC object with `members` (all required) besides `jsonrpc`."""
    return {
        "type": "object",
        "properties": {"jsonrpc": {"const": "2.0"}, **members},
        "required": ["jsonrpc", *members],
    }


def _resolved(descriptor: Any, descriptors: Mapping[str, Any]) -> Any:
    """An OpenRPC content descriptor, looked up if it is a reference to one."""
    ref = descriptor.get("$ref") if isinstance(descriptor, Mapping) else None
    if isinstance(ref, str) and ref.startswith("#/components/contentDescriptors/"):
        return descriptors.get(ref.rpartition("/")[2], {})
    return descriptor


# Schemas.


@dataclass
class _Typed:
    """A typed kind whose schema is to be made: the message it is the payload of."""

    kind: Any
    name: str
    library: Library
    mode: SchemaMode
    message: dict[str, Any] = field(repr=False)


class _Schemas:
    """The document's named schemas (`components.schemas`), and the schemas that refer
    to them: gathered while the channels are made, written in `finish()`.

    Each source names its schemas on its own: where a name is taken by another
    schema, the newcomer takes another (`Item_2`) and refs to it follow. Names go
    first to the routes' types, then to other sources (an OpenRPC document), bocws's
    own schemas last: a model keeps its name.
    """

    def __init__(self) -> None:
        self.components: dict[str, Any] = {}
        self._typed: list[_Typed] = []
        self._pending: list[tuple[bool, Mapping[str, Any], list[Any], list[dict[str, Any]]]] = []

    def add(
        self, definitions: Mapping[str, Any], schemas: Sequence[Any], *, own: bool = False
    ) -> list[dict[str, Any]]:
        """Placeholders for `schemas`, which refer to the named schemas `definitions`
        as `#/components/schemas/<name>`: `finish()` fills each with its schema, refs
        following the names the definitions got. `own`: bocws's schemas."""
        placeholders: list[dict[str, Any]] = [{} for _ in schemas]
        self._pending.append((own, definitions, list(schemas), placeholders))
        return placeholders

    def add_type(self, typed: _Typed) -> None:
        """Give `typed.message` its payload's schema in `finish()`."""
        self._typed.append(typed)

    def finish(self) -> None:
        """Name every schema and fill the placeholders and typed messages."""
        self._describe_types()
        for _, definitions, schemas, placeholders in sorted(self._pending, key=lambda p: p[0]):
            placed = self._place(definitions, schemas)
            for placeholder, schema in zip(placeholders, placed, strict=True):
                placeholder.update(
                    {} if schema is True else {"not": {}} if schema is False else schema
                )

    def _describe_types(self) -> None:
        """Make the schemas of the typed kinds, each library's at once (pydantic then
        names a model apart only where it reads and writes it differently)."""
        for library in LIBRARIES:
            batch = [typed for typed in self._typed if typed.library == library]
            if not batch:
                continue
            try:
                self._describe(batch, library)
            except TypeError:  # one of them: the others are described one by one
                for typed in batch:
                    try:
                        self._describe([typed], library)
                    except TypeError as error:
                        typed.message["summary"] = (
                            f"{typed.name}, which {library} cannot describe in JSON Schema: {error}"
                        )

    def _describe(self, batch: list[_Typed], library: Library) -> None:
        kinds = [typed.kind for typed in batch]
        found, definitions = json_schemas(kinds, library, SCHEMAS, [t.mode for t in batch])
        for typed, schema in zip(batch, self._place(definitions, found), strict=True):
            typed.message["payload"] = schema

    def _place(self, definitions: Mapping[str, Any], schemas: Sequence[Any]) -> list[Any]:
        """Add the named schemas `definitions` to the document's; return `schemas`,
        which refer to them, with the names they got.

        A schema whose name is taken by another takes the first of `<name>_2`,
        `<name>_3` ... that is free or holds the same schema.
        """
        names = {name: _component_name(name) for name in definitions}
        numbers = dict.fromkeys(definitions, 1)
        # Renaming a schema changes those that refer to it: again, until none moves.
        settled = False
        while not settled:
            settled = True
            taken: set[str] = set()
            for name, schema in definitions.items():
                wanted = _for_asyncapi(schema, names)
                while names[name] in taken or self.components.get(names[name], wanted) != wanted:
                    numbers[name] += 1
                    names[name] = f"{_component_name(name)}_{numbers[name]}"
                    settled = False
                taken.add(names[name])
        for name, schema in definitions.items():
            self.components[names[name]] = _for_asyncapi(schema, names)
        return [_for_asyncapi(schema, names) for schema in schemas]


def _ref(name: str) -> dict[str, str]:
    return {"$ref": SCHEMAS + name}


# The keywords whose values are schemas: maps of them, lists or one (`items` may be
# either in draft-07).
_SCHEMA_MAPS = frozenset(
    {"properties", "patternProperties", "$defs", "definitions", "dependentSchemas"}
)
_SCHEMA_LISTS = frozenset({"allOf", "anyOf", "oneOf", "prefixItems", "items"})
_SUBSCHEMAS = frozenset(
    {"items", "additionalItems", "additionalProperties", "not", "contains", "propertyNames"}
    | {"if", "then", "else", "unevaluatedProperties", "unevaluatedItems"}
)


def _for_asyncapi(schema: Any, names: Mapping[str, str]) -> Any:
    """`schema` (JSON Schema from pydantic, msgspec or OpenRPC) as an AsyncAPI Schema
    Object, a copy: refs to named schemas use their names in the document (`names`),
    and what AsyncAPI's draft-07 dialect reads otherwise is translated: 2020-12's
    `prefixItems` (tuples) to `items`, and OpenAPI's `discriminator` object (AsyncAPI's
    is a property name of an inheriting schema) kept as `x-discriminator`."""
    if not isinstance(schema, dict):
        return schema  # true, false
    result: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "$ref":
            result[key] = _renamed(value, names)
        elif key in _SCHEMA_MAPS and isinstance(value, dict):
            result[key] = {name: _for_asyncapi(item, names) for name, item in value.items()}
        elif key in _SCHEMA_LISTS and isinstance(value, list):
            result[key] = [_for_asyncapi(item, names) for item in value]
        elif key in _SUBSCHEMAS:
            result[key] = _for_asyncapi(value, names)
        else:
            result[key] = value
    discriminator = result.pop("discriminator", None)
    if isinstance(discriminator, dict):
        discriminator = dict(discriminator)
        if isinstance(discriminator.get("mapping"), dict):
            mapping = discriminator["mapping"].items()
            discriminator["mapping"] = {tag: _renamed(ref, names) for tag, ref in mapping}
        result["x-discriminator"] = discriminator
    elif discriminator is not None:
        result["discriminator"] = discriminator
    if "prefixItems" in result:
        positional = result.pop("prefixItems")
        if "items" in result:
            result["additionalItems"] = result.pop("items")
        if positional:
            result["items"] = positional
    return result


def _renamed(ref: Any, names: Mapping[str, str]) -> Any:
    """`ref` (`#/components/schemas/<name>`) to the name the schema got in the document."""
    if isinstance(ref, str) and ref.startswith(SCHEMAS):
        name = ref[len(SCHEMAS) :]
        return SCHEMAS + names.get(name, name)
    return ref


# Names.

_NOT_IN_NAMES = re.compile(r"[^A-Za-z0-9._-]+")
_NOT_IN_IDS = re.compile(r"[^A-Za-z0-9_-]+")


def _component_name(name: str) -> str:
    """`name` as AsyncAPI takes a component's name: `^[a-zA-Z0-9.\\-_]+$`."""
    return _NOT_IN_NAMES.sub("_", name) or "Schema"


def _identifier(text: str) -> str:
    """`text` (a route name, an address, a method) as an id: `/items/{id}` -> `items.id`,
    `_serve` -> `serve`."""
    return _NOT_IN_IDS.sub(".", text).strip("._-")


def _unique(name: str, *taken: Iterable[str]) -> str:
    """`name`, or `name_2`, `name_3` ... whichever is in none of `taken`."""
    used = set().union(*taken)
    found, number = name, 1
    while found in used:
        number += 1
        found = f"{name}_{number}"
    return found
