"""Typed messages (`bocws._typed`): a type as a message kind, read and written by
pydantic or msgspec, with real models of both libraries.

Each library does its own work: what a typed codec decodes is checked against what
`TypeAdapter(T).validate_json()` or `msgspec.json.Decoder(T).decode()` return for the
same frame, for any JSON (a hypothesis property), and what it refuses is an
`InvalidMessage` carrying the library's errors, never the input.
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import functools
import json
import re
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Annotated, Any, Literal

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, Field, TypeAdapter
from pydantic_core import core_schema, to_jsonable_python
from starlette.testclient import TestClient
from starlette.types import Receive, Scope, Send
from typing_extensions import TypedDict

from bocws import Codec, InvalidJSON, InvalidMessage, MessageTypeError, WebSocket
from bocws._codecs import codec_for
from bocws._invalid import trimmed_errors
from bocws._typed import _reworded, is_type_form, typed_codec

from .fake import binary, connected, text
from .test_json import BACKENDS

# The types: a user of five fields, one nested, in each library, and the other shapes
# a TypeAdapter takes.


class Address(BaseModel):
    city: str
    zip: str


class User(BaseModel):
    name: str
    age: int
    email: str
    tags: list[str]
    address: Address


class StructAddress(msgspec.Struct):
    city: str
    zip: str


class StructUser(msgspec.Struct):
    name: str
    age: int
    email: str
    tags: list[str]
    address: StructAddress


@dataclasses.dataclass
class Point:
    x: int
    y: int


class Move(TypedDict):
    piece: str
    to: list[int]


class Cat(BaseModel):
    kind: Literal["cat"]
    lives: int


class Dog(BaseModel):
    kind: Literal["dog"]
    bark: str


Pet = Annotated[Cat | Dog, Field(discriminator="kind")]


class Circle(msgspec.Struct, tag="circle"):
    radius: float


class Square(msgspec.Struct, tag="square"):
    side: float


Shape = Circle | Square

USER = {
    "name": "Ada",
    "age": 36,
    "email": "ada@example.com",
    "tags": ["math", "engines"],
    "address": {"city": "London", "zip": "W1"},
}


@dataclasses.dataclass
class Typed:
    """A type, the library that reads it, a valid document and the value it stands for."""

    name: str
    tp: Any
    library: Literal["pydantic", "msgspec"]
    document: str
    value: Any

    @functools.cached_property
    def reference(self) -> Callable[[str | bytes], Any]:
        """The library's own decode, made here without bocws."""
        if self.library == "msgspec":
            return msgspec.json.Decoder(self.tp).decode  # type: ignore[no-any-return]
        return TypeAdapter(self.tp).validate_json  # type: ignore[no-any-return]

    def library_json(self, value: Any) -> str:
        """The library's own JSON for `value`."""
        if self.library == "msgspec":
            return msgspec.json.encode(value).decode()
        return TypeAdapter(self.tp).dump_json(value).decode()


TYPED = [
    Typed("pydantic model", User, "pydantic", json.dumps(USER), User.model_validate(USER)),
    Typed(
        "msgspec struct",
        StructUser,
        "msgspec",
        json.dumps(USER),
        msgspec.convert(USER, StructUser),
    ),
    Typed("dataclass", Point, "pydantic", '{"x": 1, "y": -2}', Point(1, -2)),
    Typed(
        "TypedDict", Move, "pydantic", '{"piece": "♞", "to": [6, 5]}', {"piece": "♞", "to": [6, 5]}
    ),
    Typed("list[int]", list[int], "pydantic", "[1, 2, 3]", [1, 2, 3]),
    Typed("list[int] with msgspec", list[int], "msgspec", "[1, 2, 3]", [1, 2, 3]),
    Typed(
        "discriminated union",
        Pet,
        "pydantic",
        '{"kind": "dog", "bark": "woof"}',
        Dog(kind="dog", bark="woof"),
    ),
    Typed(
        "tagged Struct union", Shape, "msgspec", '{"type": "circle", "radius": 1.5}', Circle(1.5)
    ),
]
TYPES = pytest.mark.parametrize("typed", TYPED, ids=[typed.name for typed in TYPED])


def codec_of(typed: Typed) -> Codec:
    return typed_codec(typed.tp, typed.library)


# Declaring a type.


def test_codec_for_takes_a_type_and_makes_its_codec_once() -> None:
    codec = codec_for("value_type", User)
    assert isinstance(codec, Codec)
    assert codec.name == "User"
    assert repr(codec) == "<codec 'User'>"
    assert codec_for("receive_type", User) is codec  # each connection gets the same one


@pytest.mark.parametrize(
    ("tp", "name"),
    [
        (StructUser, "StructUser"),
        (list[int], "list[int]"),
        (Pet, "Cat | Dog"),
        (dict[str, list[Point]], "dict[str, list[Point]]"),
        (int | None, "int | None"),
        (Literal["a", 1], "Literal['a', 1]"),
        (tuple[int, ...], "tuple[int, ...]"),
    ],
    ids=repr,
)
def test_codec_for_takes_typing_constructs_too(tp: Any, name: str) -> None:
    assert is_type_form(tp)
    assert codec_for("send_type", tp).name == name


def test_an_unhashable_typing_construct_is_taken_too() -> None:
    documented = Annotated[int, {"doc": "a count"}]  # a dict: Annotated cannot be hashed
    codec = typed_codec(documented)
    assert codec.name == "int"
    assert codec.decode("3") == 3
    assert typed_codec(documented) is not codec  # made anew: it cannot be looked up


def test_a_struct_or_a_type_holding_one_is_read_by_msgspec_and_the_rest_by_pydantic() -> None:
    assert typed_codec(StructUser).__class__.__name__ == "_MsgspecCodec"
    assert typed_codec(list[StructUser]).__class__.__name__ == "_MsgspecCodec"
    assert typed_codec(Shape).__class__.__name__ == "_MsgspecCodec"
    assert typed_codec(User).__class__.__name__ == "_PydanticCodec"
    assert typed_codec(list[int]).__class__.__name__ == "_PydanticCodec"
    assert typed_codec(list[int], "msgspec").__class__.__name__ == "_MsgspecCodec"


def test_an_unknown_library_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="library must be 'pydantic' or 'msgspec', got 'attrs'"):
        typed_codec(User, "attrs")  # type: ignore[arg-type]


def test_a_codec_class_instead_of_an_instance_is_a_type_error() -> None:
    class Lines(Codec):
        name = "lines"

    with pytest.raises(
        TypeError, match=r"value_type takes a Codec instance: Lines\(\), not the class"
    ):
        codec_for("value_type", Lines)


@pytest.mark.parametrize(
    ("tp", "library", "named"),
    [
        (socket.socket, None, "pydantic cannot read messages of type socket"),
        (StructUser, "pydantic", "pydantic cannot read messages of type StructUser"),
        (
            StructUser | StructAddress,
            None,
            r"msgspec cannot read messages of type StructUser \| StructAddress: .* must be tagged",
        ),
        (socket.socket, "msgspec", "msgspec cannot read messages of type socket"),
    ],
    ids=["pydantic: no schema", "pydantic: a Struct", "msgspec: untagged", "msgspec: no hook"],
)
def test_a_type_the_library_cannot_read_is_a_type_error_naming_it(
    tp: Any, library: Any, named: str
) -> None:
    with pytest.raises(TypeError, match=named):
        typed_codec(tp, library)


def test_a_struct_holding_a_type_msgspec_does_not_know_is_refused_when_declared() -> None:
    class Wired(msgspec.Struct):
        name: str
        connection: socket.socket

    with pytest.raises(TypeError, match="Wired: socket is not a type it knows"):
        typed_codec(Wired)


def test_a_model_with_an_undefined_annotation_is_refused_when_declared() -> None:
    class Broken(BaseModel):
        other: Undefined  # type: ignore[name-defined]  # noqa: F821

    with pytest.raises(TypeError, match="Broken: name 'Undefined' is not defined"):
        typed_codec(Broken)


def test_a_type_without_pydantic_installed_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    @dataclasses.dataclass
    class Fresh:  # a type no codec was made for yet
        x: int

    monkeypatch.setitem(sys.modules, "pydantic", None)  # `import pydantic` fails
    with pytest.raises(TypeError, match=r"need pydantic, .*pip install 'bocws\[pydantic\]'"):
        codec_for("value_type", Fresh)


def test_msgspec_without_msgspec_installed_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    @dataclasses.dataclass
    class Fresh:
        x: int

    monkeypatch.setitem(sys.modules, "msgspec", None)
    with pytest.raises(TypeError, match=r"need msgspec, .*pip install 'bocws\[msgspec\]'"):
        typed_codec(Fresh, "msgspec")


def test_bocws_works_without_pydantic_and_msgspec() -> None:
    script = """
import dataclasses, datetime, sys
sys.modules["pydantic"] = sys.modules["msgspec"] = None  # neither can be imported
import bocws
from bocws import _json
from bocws._codecs import codec_for

@dataclasses.dataclass
class Point:
    x: int

assert _json.dumps({"a": [1]}) == '{"a":[1]}'
assert _json.dumps([Point(1), datetime.date(2026, 1, 2)]) == '[{"x":1},"2026-01-02"]'
assert codec_for("value_type", "json").name == "json"
try:
    codec_for("value_type", Point)
except TypeError as error:
    assert "pip install 'bocws[pydantic]'" in str(error), error
else:
    raise AssertionError("no TypeError")
"""
    root = Path(__file__).parent.parent
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=root, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr


# Reading.


@TYPES
@pytest.mark.parametrize("frame", ["text", "binary"])
def test_a_typed_codec_reads_text_and_binary_frames(typed: Typed, frame: str) -> None:
    payload = typed.document if frame == "text" else typed.document.encode()
    value = codec_of(typed).decode(payload)
    assert value == typed.value
    assert type(value) is type(typed.value)
    assert value == typed.reference(payload)


WRONG_AGE = dict(USER, age="SECRET-VALUE")
NO_ZIP = dict(USER, address={"city": "London"})


@pytest.mark.parametrize("tp", [User, StructUser])
def test_a_field_of_the_wrong_type_is_an_invalid_message_naming_it(tp: Any) -> None:
    with pytest.raises(InvalidMessage) as raised:
        typed_codec(tp).decode(json.dumps(WRONG_AGE))
    error = raised.value
    assert not isinstance(error, InvalidJSON)
    assert isinstance(error, ValueError)
    assert error.close_code == 1007
    assert error.errors[0]["loc"] == ("age",)
    assert error.reason.startswith("invalid message: age: ")
    assert "integer" in error.reason or "`int`" in error.reason
    assert len(error.reason.encode()) <= 123


def test_pydantic_lists_every_bad_field_with_its_own_words() -> None:
    document = json.dumps(dict(WRONG_AGE, address={"city": "London"}))
    with pytest.raises(InvalidMessage) as raised:
        typed_codec(User).decode(document)
    assert raised.value.errors == [
        {
            "type": "int_parsing",
            "loc": ("age",),
            "msg": "Input should be a valid integer, unable to parse string as an integer",
        },
        {"type": "missing", "loc": ("address", "zip"), "msg": "Field required"},
    ]
    assert str(raised.value).startswith("invalid User: age: Input should be a valid integer")
    assert str(raised.value).endswith("(and 1 more)")


def test_a_missing_field_is_named() -> None:
    with pytest.raises(InvalidMessage) as pydantic_error:
        typed_codec(User).decode(json.dumps(NO_ZIP))
    assert pydantic_error.value.reason == "invalid message: address.zip: Field required"
    with pytest.raises(InvalidMessage) as msgspec_error:
        typed_codec(StructUser).decode(json.dumps(NO_ZIP))
    assert msgspec_error.value.errors == [
        {"type": "validation", "loc": ("address",), "msg": "Object missing required field `zip`"}
    ]
    assert msgspec_error.value.reason == (
        "invalid message: address: Object missing required field `zip`"
    )


def test_msgspec_paths_become_locations() -> None:
    class Scores(msgspec.Struct):
        rounds: list[dict[str, int]]

    codec = typed_codec(Scores)
    with pytest.raises(InvalidMessage) as raised:
        codec.decode('{"rounds": [{"a": 1}, {"b": "x"}]}')
    assert raised.value.errors[0]["loc"] == ("rounds", 1, "...")  # msgspec names no key
    assert raised.value.reason == "invalid message: rounds[1][...]: Expected `int`, got `str`"


@pytest.mark.parametrize("tp", [User, StructUser])
@pytest.mark.parametrize(
    ("payload", "at"),
    [
        ('{"name": "Ada",\n "age": 3,\n "é€": x}', 34),
        (b'{"name": "\xc3\xa9", x}', 14),
        (b"\xff{}", 0),
        ("", 0),
    ],
    ids=["a bad token after non-ASCII text", "in a binary frame", "not UTF-8", "empty"],
)
def test_malformed_json_is_invalid_json_with_its_position(
    tp: Any, payload: str | bytes, at: int
) -> None:
    with pytest.raises(InvalidJSON) as raised:
        typed_codec(tp).decode(payload)
    error = raised.value
    assert isinstance(error, InvalidMessage)
    assert error.close_code == 1007
    assert error.pos == at
    assert error.doc == (
        payload if isinstance(payload, str) else payload.decode("utf-8", "replace")
    )
    assert [entry["type"] for entry in error.errors] == ["json_invalid"]
    assert error.reason.startswith("invalid JSON: ")
    assert len(error.reason.encode()) <= 123


def test_text_msgspec_cannot_encode_is_invalid_json() -> None:
    with pytest.raises(InvalidJSON, match="not valid Unicode") as raised:
        typed_codec(StructUser).decode('{"name": "\ud800"}')
    assert raised.value.pos == 10


def test_json_nested_too_deeply_for_msgspec_is_invalid_json() -> None:
    with pytest.raises(InvalidJSON):
        typed_codec(list[Any], "msgspec").decode("[" * 100_000 + "]" * 100_000)


class Wide(BaseModel):
    value: int = Field(alias="é" * 80)


class StructWide(msgspec.Struct, rename={"value": "é" * 80}):
    value: int


@pytest.mark.parametrize("tp", [Wide, StructWide])
def test_the_close_reason_is_cut_to_123_bytes_on_a_character(tp: Any) -> None:
    with pytest.raises(InvalidMessage) as raised:
        typed_codec(tp).decode(json.dumps({"é" * 80: "x"}))
    reason = raised.value.reason
    assert reason.startswith("invalid message: éé")
    assert reason.endswith("…")
    assert 120 <= len(reason.encode()) <= 123


SECRET = "SECRET-VALUE"


class Color(enum.Enum):
    RED = "red"


class Paint(msgspec.Struct):
    color: Color
    finish: Literal["matte", "gloss"]


class OnTheHour(datetime.datetime):
    """A datetime at an offset of one hour, as a core schema says it."""

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any) -> core_schema.CoreSchema:
        return core_schema.datetime_schema(tz_constraint=3600)


@pytest.mark.parametrize(
    ("tp", "document", "quoted"),
    [
        (User, json.dumps(dict(USER, age=SECRET)), SECRET),
        (Pet, json.dumps({"kind": SECRET}), SECRET),
        (uuid.UUID, json.dumps("x" + SECRET), "`x`"),
        (OnTheHour, json.dumps("2026-01-01T00:00:00+05:17"), "19020"),
        (StructUser, json.dumps(dict(USER, age=SECRET)), SECRET),
        (Shape, json.dumps({"type": SECRET}), SECRET),
        (Paint, json.dumps({"color": SECRET, "finish": "matte"}), SECRET),
        (Paint, json.dumps({"color": "red", "finish": SECRET}), SECRET),
        (list[Literal[1, 2]], "[1, 2, 31337]", "31337"),
    ],
    ids=[
        "pydantic: wrong type",
        "pydantic: unknown tag",
        "pydantic: not a UUID",
        "pydantic: another offset",
        "msgspec: wrong type",
        "msgspec: unknown tag",
        "msgspec: not in the enum",
        "msgspec: not a literal",
        "pydantic: not a literal",
    ],
)
def test_an_invalid_message_never_repeats_the_input(tp: Any, document: str, quoted: str) -> None:
    with pytest.raises(InvalidMessage) as raised:
        typed_codec(tp).decode(document)
    error = raised.value
    for said in [str(error), error.reason, repr(error.errors), repr(trimmed_errors(error.errors))]:
        assert quoted not in said


def test_a_reworded_message_falls_back_to_fixed_words_without_its_context() -> None:
    assert _reworded("union_tag_invalid", {}, f"Input tag '{SECRET}' found") == (
        "Input tag does not match any of the expected tags"
    )
    assert _reworded("int_parsing", {}, "Input should be a valid integer") == (
        "Input should be a valid integer"
    )


def test_a_reworded_message_keeps_what_the_schema_expects() -> None:
    with pytest.raises(InvalidMessage) as tag:
        typed_codec(Pet).decode(json.dumps({"kind": SECRET}))
    assert tag.value.errors[0]["msg"] == (
        "Input tag found using 'kind' does not match any of the expected tags: 'cat', 'dog'"
    )
    with pytest.raises(InvalidMessage) as offset:
        typed_codec(OnTheHour).decode(json.dumps("2026-01-01T00:00:00+05:17"))
    assert offset.value.reason == "invalid message: Timezone offset of 3600 required"
    with pytest.raises(InvalidMessage) as enum_value:
        typed_codec(Paint).decode(json.dumps({"color": SECRET, "finish": "matte"}))
    assert enum_value.value.reason == "invalid message: color: Invalid enum value"


# Writing.


@TYPES
def test_a_typed_codec_writes_the_librarys_own_json_in_text_frames(typed: Typed) -> None:
    codec = codec_of(typed)
    payload = codec.encode(typed.value)
    assert isinstance(payload, str)
    assert payload == typed.library_json(typed.value)
    assert codec.decode(payload) == typed.value


@pytest.mark.parametrize(
    ("tp", "library", "value"),
    [
        (User, None, USER),  # a dict with the right fields is not a User
        (User, None, Point(1, 2)),
        (Point, None, {"x": 1, "y": 2}),
        (Point, None, User.model_validate(USER)),
        (Move, None, 3),
        (list[int], None, [1, "2"]),
        (list[int], None, (1, 2)),
        (StructUser, None, USER),
        (StructUser, None, User.model_validate(USER)),
        (list[int], "msgspec", [1, "2"]),
        (Shape, None, {"type": "circle", "radius": 1.0}),
    ],
    ids=repr,
)
def test_sending_a_value_of_another_type_is_a_type_error(tp: Any, library: Any, value: Any) -> None:
    codec = typed_codec(tp, library)
    with pytest.raises(TypeError, match=re.escape(codec.name)):
        codec.encode(value)


@pytest.mark.parametrize("tp", [User, StructUser])
def test_text_that_cannot_be_sent_is_a_type_error(tp: Any) -> None:
    value = typed_codec(tp).decode(json.dumps(USER))
    value.name = "\ud800"
    with pytest.raises(TypeError, match="cannot send"):
        typed_codec(tp).encode(value)


# The errors a client may be sent.


def test_trimmed_errors_keeps_ten_entries_without_input_or_context() -> None:
    with pytest.raises(InvalidMessage) as raised:
        typed_codec(list[int]).decode(json.dumps([SECRET] * 50))
    errors = raised.value.errors
    assert len(errors) == 50
    trimmed = trimmed_errors(errors)
    assert len(trimmed) == 10
    assert trimmed[0] == {
        "type": "int_parsing",
        "loc": [0],
        "msg": "Input should be a valid integer, unable to parse string as an integer",
    }
    assert SECRET not in json.dumps(trimmed)


def test_trimmed_errors_fit_in_four_kib_and_are_json() -> None:
    entry = {
        "type": "value_error",
        "loc": ("x" * 300, 2, True, None),
        "msg": "m" * 1000,
        "input": SECRET,
        "ctx": {"error": ValueError(SECRET)},
        "url": "https://errors.pydantic.dev",
    }
    trimmed = trimmed_errors([entry] * 30)
    document = json.dumps(trimmed, separators=(",", ":"), ensure_ascii=False)
    assert len(document.encode()) <= 4096
    size = len(json.dumps(trimmed[0], separators=(",", ":")))
    assert len(trimmed) == (4096 - 1) // (size + 1)  # the brackets, the commas
    assert trimmed[0]["loc"] == ["x" * 199 + "…", 2, "True", "None"]
    assert len(trimmed[0]["msg"]) == 200
    assert SECRET not in document


def test_trimmed_errors_stop_at_the_first_entry_that_does_not_fit() -> None:
    errors = [{"type": "a", "loc": (), "msg": "x" * 40}, {"type": "b", "loc": (), "msg": ""}]
    assert trimmed_errors(errors, max_bytes=40) == []
    assert [entry["type"] for entry in trimmed_errors(errors, max_bytes=100)] == ["a"]
    assert [entry["type"] for entry in trimmed_errors(errors, max_bytes=103)] == ["a", "b"]
    assert trimmed_errors(errors, max_entries=1) == [errors[0] | {"loc": []}]


def test_invalid_message_keeps_its_constructors_and_defaults() -> None:
    plain = InvalidMessage("not a msgpack document")
    assert (plain.errors, plain.reason, str(plain)) == (
        [],
        "invalid message",
        "not a msgpack document",
    )
    assert InvalidMessage("x", errors=[{"type": "t"}], reason="r").reason == "r"
    assert InvalidMessage.reason == "invalid message"  # the class's is left alone
    bad_json = InvalidJSON("Expecting value", "{", 1)
    assert (bad_json.errors, bad_json.reason, bad_json.pos) == ([], "invalid JSON", 1)
    wrong_frame = MessageTypeError("text", "bytes", "receive_text()")
    assert (wrong_frame.errors, wrong_frame.reason) == ([], "unsupported frame type")
    assert isinstance(wrong_frame, TypeError)
    assert isinstance(wrong_frame, ValueError)


# The property: whatever the JSON, the library's answer or an InvalidMessage.

#: Text with lone surrogates too: raw in text frames, or escaped.
texts = st.text(st.characters() | st.characters(categories=["Cs"]), max_size=6)
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | texts
    | st.sampled_from(["cat", "dog", "circle", "square", "♞"])
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(texts, children, max_size=4),
    max_leaves=12,
)
user_like = st.fixed_dictionaries(
    {"name": st.text() | json_values, "age": st.integers() | json_values},
    optional={
        "email": st.text(),
        "tags": st.lists(st.text(max_size=4)) | json_values,
        "address": st.fixed_dictionaries({"city": st.text(), "zip": json_values}) | json_values,
    },
)
shape_like = st.fixed_dictionaries(
    {
        "kind": st.sampled_from(["cat", "dog", "bird"]),
        "type": st.sampled_from(["circle", "square", "triangle"]),
    },
    optional={
        "lives": json_values,
        "bark": json_values,
        "radius": json_values,
        "side": json_values,
    },
)
point_like = st.fixed_dictionaries({"x": json_values, "y": st.integers()})


@st.composite
def documents(draw: st.DrawFn) -> str | bytes:
    """A frame's payload: JSON of any value, or of a value shaped like the types,
    sometimes broken (a character replaced or cut), as text or bytes."""
    value = draw(json_values | user_like | shape_like | point_like | st.lists(st.integers()))
    document = json.dumps(value, ensure_ascii=draw(st.booleans()))
    if draw(st.booleans()) and document:  # broken: a character cut or added
        at = draw(st.integers(0, len(document) - 1))
        document = (
            document[:at] + draw(st.sampled_from(["", "{", '"', ",", "\\"])) + document[at + 1 :]
        )
    return document.encode("utf-8", "surrogatepass") if draw(st.booleans()) else document


@TYPES
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload=documents())
def test_a_typed_decode_returns_what_the_library_returns_or_raises_invalid_message(
    typed: Typed, payload: str | bytes
) -> None:
    reference = typed.reference
    try:
        expected = ("value", reference(payload))
    except Exception as error:
        expected = ("error", error)
    actual: tuple[str, Any]
    try:
        actual = ("value", codec_of(typed).decode(payload))
    except InvalidMessage as error:  # anything else fails the test
        actual = ("invalid", error)
    if expected[0] == "value":
        assert actual == expected
    else:
        assert actual[0] == "invalid", f"the library raises {expected[1]!r}"
        assert actual[1].errors
        assert len(actual[1].reason.encode()) <= 123


# send_json() and send() of other kinds write the libraries' values as they would.


class Kind(enum.Enum):
    SMALL = "s"


class Order(BaseModel):
    id: uuid.UUID
    at: datetime.datetime
    total: decimal.Decimal
    kind: Kind
    point: Point


class StructOrder(msgspec.Struct):
    id: uuid.UUID
    at: datetime.datetime
    total: decimal.Decimal
    raw: bytes


UTC_NOON = datetime.datetime(2026, 1, 2, 12, 0, 0, 500, tzinfo=datetime.timezone.utc)
ORDER = Order(
    id=uuid.UUID(int=7),
    at=UTC_NOON,
    total=decimal.Decimal("9.90"),
    kind=Kind.SMALL,
    point=Point(1, 2),
)


@BACKENDS
def test_dumps_writes_a_pydantic_model_as_model_dump_json_does(backend: ModuleType) -> None:
    assert backend.dumps(ORDER) == ORDER.model_dump_json()
    assert backend.dumps({"order": ORDER}) == json.dumps(
        {"order": ORDER.model_dump(mode="json")}, separators=(",", ":")
    )


@BACKENDS
def test_dumps_writes_a_struct_as_msgspec_does(backend: ModuleType) -> None:
    order = StructOrder(
        id=uuid.UUID(int=7), at=UTC_NOON, total=decimal.Decimal("9.90"), raw=b"\x00"
    )
    assert backend.dumps([order]) == "[" + msgspec.json.encode(order).decode() + "]"


@BACKENDS
@pytest.mark.parametrize(
    "value",
    [
        Point(1, 2),
        [Point(1, 2), {"nested": Point(3, 4)}],
        datetime.date(2026, 1, 2),
        datetime.datetime(2026, 1, 2, 3, 4, 5),
        UTC_NOON,
        datetime.time(3, 4, 5, 6),
        datetime.time(3, 4, tzinfo=datetime.timezone.utc),
        decimal.Decimal("1.50"),
        decimal.Decimal("-1E+7"),
        decimal.Decimal("NaN"),
    ],
    ids=repr,
)
def test_dumps_writes_dataclasses_datetimes_and_decimals_as_pydantic_does(
    backend: ModuleType, value: Any
) -> None:
    expected = json.dumps(to_jsonable_python(value), separators=(",", ":"))
    assert backend.dumps(value) == expected
    assert backend.dumps_bytes(value) == expected.encode()


offsets = st.timedeltas(
    min_value=-datetime.timedelta(hours=23, minutes=59),
    max_value=datetime.timedelta(hours=23, minutes=59),
)
zones = st.none() | st.just(datetime.timezone.utc) | offsets.map(datetime.timezone)


@BACKENDS
@settings(max_examples=200, deadline=None)
@given(moment=st.datetimes(timezones=zones) | st.times(timezones=zones))
def test_dumps_writes_any_datetime_or_time_as_pydantic_does(
    backend: ModuleType, moment: datetime.datetime | datetime.time
) -> None:
    assert backend.dumps(moment) == json.dumps(to_jsonable_python(moment))


@pytest.mark.anyio
async def test_send_json_sends_a_model_as_its_json() -> None:
    server = connected()
    ws = server.websocket()
    await ws.send_json(ORDER)
    assert server.sent[-1] == {"type": "websocket.send", "text": ORDER.model_dump_json()}


# End to end: a WebSocket speaking models.


@pytest.mark.anyio
async def test_receive_returns_and_send_takes_models_with_value_type() -> None:
    server = connected(text(json.dumps(USER)), binary(json.dumps(USER).encode()))
    ws = server.websocket(value_type=User)
    first = await ws.receive()
    second = await ws.receive()
    assert first == second == User.model_validate(USER)
    await ws.send(first)
    assert server.sent[-1] == {"type": "websocket.send", "text": first.model_dump_json()}
    with pytest.raises(TypeError):
        await ws.send(USER)
    assert len(server.sent) == 2  # the accept and one message


def birthday(user: Any) -> Any:
    if isinstance(user, msgspec.Struct):
        return msgspec.structs.replace(user, age=user.age + 1)
    return user.model_copy(update={"age": user.age + 1})


def birthday_app(tp: Any) -> Callable[[Scope, Receive, Send], Any]:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        ws = WebSocket(scope, receive, send, value_type=tp)
        async with ws:
            async for user in ws:
                assert isinstance(user, tp)
                await ws.send(birthday(user))

    return app


@pytest.mark.parametrize("tp", [User, StructUser])
def test_a_typed_websocket_under_testclient_reads_and_writes_models(tp: Any) -> None:
    older = dict(USER, age=37)
    with TestClient(birthday_app(tp)).websocket_connect("/") as session:
        session.send_text(json.dumps(USER))
        assert session.receive_json() == older
        session.send_bytes(json.dumps(USER).encode())
        answer = session.receive()
        assert json.loads(answer["text"]) == older  # in a text frame
        session.send_text(json.dumps(WRONG_AGE))
        closed = session.receive()
    assert closed["type"] == "websocket.close"
    assert closed["code"] == 1007
    assert closed["reason"].startswith("invalid message: age: ")
    assert SECRET not in closed["reason"]
