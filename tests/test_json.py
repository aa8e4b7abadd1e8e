"""`bocws._json`: the standard library's JSON, through orjson when installed.

Both backends are tested: the module as imported (orjson) and a fresh copy loaded with
orjson blocked (the standard library only). Each must give exactly what

    json.dumps(data, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    json.loads(text)

give, with three documented differences: a refusal (ValueError, TypeError or
RecursionError from `json.dumps`) is a `TypeError`; output that is not valid Unicode (a
lone surrogate) is written \\u-escaped, as `ensure_ascii=True` writes it; `uuid.UUID`
is written as its string and `enum.Enum` members as their value.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime
import decimal
import enum
import importlib.util
import json
import math
import sys
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any, NamedTuple

import orjson
import pydantic_core
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import bocws._codecs
import bocws._json
import bocws.websockets
from bocws import InvalidJSON, MessageTypeError, WebSocket
from bocws._endings import Ending

from .fake import connected, text

#: Examples per property and backend; the file runs in a few seconds.
JSON_EXAMPLES = 200

json_settings = settings(
    max_examples=JSON_EXAMPLES,
    deadline=None,  # a first example pays for building deep documents
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

STDLIB_COPY_NAME = "bocws_json_without_orjson"


def load_stdlib_backend() -> ModuleType:
    """A fresh copy of `bocws/_json.py`, loaded while `import orjson` fails.

    Neither the copy nor the blocked orjson stays in `sys.modules`.
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(sys.modules, "orjson", None)  # `import orjson` raises ImportError
        spec = importlib.util.spec_from_file_location(STDLIB_COPY_NAME, Path(bocws._json.__file__))
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return module


ORJSON_BACKEND = bocws._json
STDLIB_BACKEND = load_stdlib_backend()
BACKENDS = pytest.mark.parametrize(
    "backend", [ORJSON_BACKEND, STDLIB_BACKEND], ids=["orjson", "stdlib"]
)


# The reference: what the standard library says.


def standard_dumps(data: Any, *, ascii: bool = False) -> str:
    return json.dumps(
        data,
        separators=(",", ":"),
        ensure_ascii=ascii,
        allow_nan=False,
        default=uuid_and_enum,
    )


def uuid_and_enum(value: Any) -> Any:
    # What both backends serialise beyond the standard library (orjson does natively).
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def expected_dumps(data: Any) -> str | None:
    """What `dumps(data)` must return; `None` when it must raise `TypeError`."""
    try:
        output = standard_dumps(data)
    except (ValueError, TypeError, RecursionError):
        return None
    try:
        output.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: the whole document \u-escaped
        return standard_dumps(data, ascii=True)
    return output


def same_value(left: Any, right: Any) -> bool:
    """Equal, of the same types all the way down (an int stays an int), NaN equal to
    NaN, -0.0 apart from 0.0, dict keys in the same order. Iterative: the documents
    nest as deep as a parser goes."""
    pairs = [(left, right)]
    while pairs:
        left, right = pairs.pop()
        if type(left) is not type(right):
            return False
        if isinstance(left, float):
            if math.isnan(left) or math.isnan(right):
                if not (math.isnan(left) and math.isnan(right)):
                    return False
            elif left != right or math.copysign(1, left) != math.copysign(1, right):
                return False
        elif isinstance(left, list):
            if len(left) != len(right):
                return False
            pairs.extend(zip(left, right, strict=True))
        elif isinstance(left, dict):
            if list(left) != list(right):
                return False
            pairs.extend((left[key], right[key]) for key in left)
        elif left != right:
            return False
    return True


def outcome_of_loads(loads: Any, document: str) -> tuple[str, Any]:
    try:
        return "value", loads(document)
    except Exception as error:
        return "error", type(error)


def writable(value: Any) -> bool:
    """Whether `value` holds no NaN or infinity and nests at most MAX_DEPTH levels."""
    level = [(value, 1)]
    while level:
        item, depth = level.pop()
        if depth > bocws._json.MAX_DEPTH:
            return False
        if isinstance(item, float) and not math.isfinite(item):
            return False
        if isinstance(item, dict):
            level.extend((member, depth + 1) for member in item.values())
        elif isinstance(item, list):
            level.extend((member, depth + 1) for member in item)
    return True


def reference_loads(document: str) -> Any:
    """`json.loads`, held to what can be written back: bocws's rule for `loads`."""
    value = json.loads(document)
    if not writable(value):
        raise ValueError("cannot be written back")
    return value


# Values to serialise.


class Name(str):
    """A str subclass, with a __str__ the encoder must not use."""

    def __str__(self) -> str:
        return "not the content"


class Count(int):
    """An int subclass, with a __repr__ the encoder must not use."""

    def __repr__(self) -> str:
        return "not the number"


class Record(dict):  # type: ignore[type-arg]
    """A dict subclass."""


class Items(list):  # type: ignore[type-arg]
    """A list subclass."""


class Color(enum.Enum):
    RED = "red"
    GREEN = 2
    BLUE = 3.5
    DEEP = ("nested", None)


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2**70  # over 64 bits


class Mood(str, enum.Enum):
    HAPPY = "😀"


class Point(NamedTuple):
    x: Any
    y: Any


@dataclasses.dataclass
class Move:
    x: int
    y: int


#: Characters that make JSON interesting: lone surrogates, a surrogate pair written as
#: two code points, escapes, control and separator characters, non-ASCII, "null".
TRICKY = ["\ud800", "\udfff", "\ud83d\ude00", '"', "\\", "/", "\x00", "\x1f", "\x7f"]
TRICKY += ["\u2028", "\ufeff", "é", "€", "😀", "null", "NaN", "\b\f\n\r\t"]

characters = (
    st.characters()
    | st.characters(categories=["Cs"])  # lone surrogates, which st.characters() leaves out
    | st.sampled_from(TRICKY)
)
texts = st.lists(characters, max_size=12).map("".join)
#: Floats where the formatting of a float matters: exponents, subnormals, signed zeros.
FORMATTED_FLOATS = [1e-5, 1.5e-7, 1e-10, 0.0001, 1e16, 1e22, 5e-324, -0.0, 1.7976931348623157e308]
floats = st.floats() | st.sampled_from(FORMATTED_FLOATS)
integers = (
    st.integers()
    | st.integers(min_value=-(2**64) - 2, max_value=2**64 + 2)
    | st.sampled_from([2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63), -(2**63) - 1, 2**70])
)
scalars = (
    st.none()
    | st.booleans()
    | integers
    | floats
    | texts
    | texts.map(Name)
    | integers.map(Count)
    | st.uuids()
    | st.sampled_from([*Color, *Level, *Mood])
)
#: Keys the standard library converts: int, float (NaN refused), bool, None.
other_keys = st.none() | st.booleans() | integers | floats
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.lists(children, max_size=4).map(tuple)
        | st.lists(children, max_size=4).map(Items)
        | st.dictionaries(texts, children, max_size=4)
        | st.dictionaries(texts, children, max_size=4).map(Record)
        | st.dictionaries(texts.map(Name), children, max_size=3)
        | st.dictionaries(other_keys, children, max_size=3)
        | st.builds(Point, children, children)
    ),
    max_leaves=16,
)

# Texts to parse.

#: Numbers as JSON writes them, and some it does not (leading zeros, a bare point).
number_texts = st.from_regex(
    r"\A-?(0|[1-9][0-9]{0,30})(\.[0-9]{1,25})?([eE][+-]?[0-9]{1,4})?\Z"
) | st.from_regex(r"\A[-+]?[0-9.]{1,25}([eE][+-]?[0-9]{0,3})?\Z")
LITERALS = [
    "NaN",
    "-NaN",
    "Infinity",
    "-Infinity",
    "[NaN,Infinity,-Infinity]",
    "1e400",
    "-1e400",
    "1E400",
    "1e-400",
    "-0",
    "-0.0",
    str(2**70),
    str(-(2**70)),
    str(2**64),
    str(2**63),
    str(-(2**63) - 1),
    "123456789012345678",
    "1234567890123456789",
    "0.1000000000000000055511151231257827",
    '"\\ud800"',
    '"\\udc00\\ud800"',
    '"\\ud83d\\ude00"',
    '"\ud800"',  # the surrogate itself, not escaped
    '{"a":1,"a":2}',
    '{"a":1,"a":NaN}',
    "\ufeff[1]",
    "[1,]",
    '"\t"',
    '"\x7f"',
    "1\x00",
    " [ 1 , 2 ] \n",
    "\u00a01",
    "nul",
    "",
    "1" * 5000,  # over Python's int() digit limit: ValueError
]
#: Nesting around the depths where orjson (1024) and Python's recursion limit stop.
DEPTHS = [10, 254, 255, 500, 900, 990, 1000, 1010, 1023, 1024, 1025, 1100, 100_000]
NESTED = [
    opener * depth + "1" + closer * depth
    for depth in DEPTHS
    for opener, closer in [("[", "]"), ('{"a":', "}")]
]


@st.composite
def mutated(draw: st.DrawFn, documents: st.SearchStrategy[str]) -> str:
    """A document with a character inserted, removed or replaced: often invalid JSON."""
    document = draw(documents)
    at = draw(st.integers(0, len(document)))
    action = draw(st.sampled_from(["insert", "remove", "replace"]))
    character = draw(characters | st.sampled_from(list('[]{}:,"0.eE-+ ')))
    if action == "insert":
        return document[:at] + character + document[at:]
    if action == "remove":
        return document[:at] + document[at + 1 :]
    return document[:at] + character + document[at + 1 :]


@st.composite
def dumped(draw: st.DrawFn) -> str:
    """A JSON document as `json.dumps` writes one: NaN and Infinity included."""
    value = draw(json_values)
    try:
        return json.dumps(
            value,
            ensure_ascii=draw(st.booleans()),
            default=uuid_and_enum,
            indent=draw(st.sampled_from([None, 1, "\t"])),
        )
    except (ValueError, TypeError):
        return json.dumps(str(value))


json_texts = (
    dumped()
    | mutated(dumped())
    | number_texts
    | mutated(number_texts)
    | st.sampled_from(LITERALS)
    | st.sampled_from(NESTED)
    | texts
)


# The backends.


def test_the_module_as_imported_uses_orjson() -> None:
    assert ORJSON_BACKEND.BACKEND == "orjson"


def test_the_copy_without_orjson_uses_the_standard_library_and_leaves_no_trace() -> None:
    assert STDLIB_BACKEND.BACKEND == "json"
    assert STDLIB_BACKEND.orjson is None
    assert sys.modules["orjson"] is orjson  # unblocked again
    assert STDLIB_COPY_NAME not in sys.modules
    assert sys.modules["bocws._json"] is ORJSON_BACKEND


# Properties.


@BACKENDS
@json_settings
@given(value=json_values)
@example(value=1e-05)
@example(value=["\ud800", "é"])
@example(value={"a": None, "b": float("nan")})
@example(value=2**70)
def test_dumps_is_the_standard_librarys_compact_json(backend: ModuleType, value: Any) -> None:
    expected = expected_dumps(value)
    if expected is None:
        with pytest.raises(TypeError):
            backend.dumps(value)
        with pytest.raises(TypeError):
            backend.dumps_bytes(value)
        return
    assert backend.dumps(value) == expected
    assert backend.dumps_bytes(value) == expected.encode("utf-8")


@BACKENDS
@json_settings
@given(document=json_texts)
@example(document="1" * 30)
@example(document="NaN")
@example(document="NaN0")
@example(document="-0.01E400:")
@example(document='"\\ud800"')
def test_loads_is_json_loads_held_to_what_can_be_written_back(
    backend: ModuleType, document: str
) -> None:
    expected = outcome_of_loads(reference_loads, document)
    actual = outcome_of_loads(backend.loads, document)
    if expected[0] == "error":
        assert actual == expected, f"json.loads raises {expected[1].__name__}"
    else:
        assert actual[0] == "value", f"json.loads returns {expected[1]!r}, loads raises"
        assert same_value(actual[1], expected[1])


@BACKENDS
@json_settings
@given(value=json_values)
def test_what_dumps_writes_loads_reads_back_as_json_loads_does(
    backend: ModuleType, value: Any
) -> None:
    try:
        document = backend.dumps(value)
    except TypeError:
        return
    assert same_value(backend.loads(document), json.loads(document))


# Specific behaviours.


@BACKENDS
def test_big_integers_stay_exact_with_orjson(backend: ModuleType) -> None:
    for number in [2**63 - 1, 2**63, 2**64 - 1, 2**64, 2**70, -(2**63) - 1, 10**29 + 7]:
        assert backend.dumps(number) == str(number)
        assert backend.dumps({"n": [number]}) == f'{{"n":[{number}]}}'
        parsed = backend.loads(f'{{"n":[{number}]}}')
        assert parsed == {"n": [number]}
        assert type(parsed["n"][0]) is int
    thirty_digits = "123456789012345678901234567890"
    assert backend.loads(thirty_digits) == 123456789012345678901234567890
    assert backend.loads("-" + thirty_digits + ".5") == float("-" + thirty_digits + ".5")


@BACKENDS
def test_nan_is_refused_like_the_standard_library(backend: ModuleType) -> None:
    for value in [math.nan, math.inf, -math.inf, [1, math.nan], {"a": math.inf}, {math.nan: 1}]:
        with pytest.raises(TypeError, match="cannot serialise to JSON"):
            backend.dumps(value)
        with pytest.raises(TypeError, match="cannot serialise to JSON"):
            backend.dumps_bytes(value)
    # Reading them is refused too: what is read can be written back.
    for document in ["NaN", "[Infinity]", "-Infinity", "[1e400]", '{"a": -1e400}']:
        with pytest.raises(ValueError, match=r"not allowed|too large for a float") as raised:
            backend.loads(document)
        assert not isinstance(raised.value, json.JSONDecodeError)


@BACKENDS
def test_none_is_written_as_null_and_the_word_null_as_a_string(backend: ModuleType) -> None:
    assert backend.dumps(None) == "null"
    assert backend.dumps({"a": None, "null": "null"}) == '{"a":null,"null":"null"}'
    assert backend.dumps_bytes([None]) == b"[null]"


@BACKENDS
def test_uuid_and_enum_serialise_on_both_backends(backend: ModuleType) -> None:
    identifier = uuid.UUID("12345678-1234-5678-1234-567812345678")
    assert backend.dumps(identifier) == '"12345678-1234-5678-1234-567812345678"'
    assert backend.dumps({"id": identifier}) == '{"id":"12345678-1234-5678-1234-567812345678"}'
    assert backend.dumps([Color.RED, Color.GREEN, Color.BLUE]) == '["red",2,3.5]'
    assert backend.dumps(Color.DEEP) == '["nested",null]'
    assert backend.dumps([Level.LOW, Level.HIGH]) == f"[1,{2**70}]"
    assert backend.dumps(Mood.HAPPY) == '"😀"'
    assert backend.dumps_bytes(identifier) == b'"12345678-1234-5678-1234-567812345678"'


@BACKENDS
def test_an_enum_of_nan_is_refused(backend: ModuleType) -> None:
    class Odd(enum.Enum):
        NOT_A_NUMBER = math.nan

    with pytest.raises(TypeError):
        backend.dumps(Odd.NOT_A_NUMBER)


@BACKENDS
@pytest.mark.parametrize(
    "value",
    [
        Move(1, 2),
        datetime.datetime(2026, 1, 2, 3, 4, 5),
        datetime.datetime(2026, 1, 2, tzinfo=datetime.timezone.utc),
        datetime.date(2026, 1, 2),
        datetime.time(3, 4),
        decimal.Decimal("1.5"),
        [Move(1, 2)],
        {"when": datetime.datetime(2026, 1, 2)},
    ],
    ids=repr,
)
def test_dataclasses_datetimes_and_decimals_are_written_as_pydantic_writes_them(
    backend: ModuleType, value: Any
) -> None:
    expected = json.dumps(pydantic_core.to_jsonable_python(value), separators=(",", ":"))
    assert backend.dumps(value) == expected
    assert backend.dumps_bytes(value) == expected.encode()


@BACKENDS
@pytest.mark.parametrize(
    "value",
    [
        datetime.timedelta(seconds=1),
        {1, 2},
        b"bytes",
        bytearray(b"bytes"),
        object(),
        {uuid.UUID(int=1): 1},  # a key the standard library does not take
        {(1, 2): 1},
    ],
    ids=repr,
)
def test_what_json_has_no_one_way_to_write_is_refused_on_both_backends(
    backend: ModuleType, value: Any
) -> None:
    with pytest.raises(TypeError):
        backend.dumps(value)
    with pytest.raises(TypeError):
        backend.dumps_bytes(value)


@BACKENDS
def test_orjson_fragments_are_written_as_they_are_on_orjson_only(backend: ModuleType) -> None:
    # json.dumps refuses an orjson.Fragment; orjson writes its bytes as they are, which
    # is what whoever made one asked for: the other documented difference.
    for contents in [b"[1]", b"NaN"]:
        fragment = orjson.Fragment(contents)
        if backend.BACKEND == "orjson":
            assert backend.dumps(fragment) == contents.decode()
            assert backend.dumps_bytes({"raw": fragment}) == b'{"raw":' + contents + b"}"
        else:
            with pytest.raises(TypeError):
                backend.dumps(fragment)
            with pytest.raises(TypeError):
                backend.dumps_bytes({"raw": fragment})


@BACKENDS
def test_subclasses_are_written_like_the_standard_library(backend: ModuleType) -> None:
    value = {
        Name("key"): Name("content"),
        "count": Count(7),
        "record": Record(a=Items([1, 2])),
        "point": Point(1, 2),
        "ordered": collections.OrderedDict(b=1),
    }
    expected = '{"key":"content","count":7,"record":{"a":[1,2]},"point":[1,2],"ordered":{"b":1}}'
    assert backend.dumps(value) == expected == standard_dumps(value)


@BACKENDS
def test_non_string_keys_are_written_like_the_standard_library(backend: ModuleType) -> None:
    value = {1: "int", 1.5: "float", False: "bool", None: "none", 2**70: "big"}
    expected = f'{{"1":"int","1.5":"float","false":"bool","null":"none","{2**70}":"big"}}'
    assert backend.dumps(value) == expected == standard_dumps(value)


@BACKENDS
def test_small_floats_are_written_like_the_standard_library(backend: ModuleType) -> None:
    # repr() pads the exponent to two digits: 1e-05, not 1e-5.
    for number in [1e-5, 1.5e-7, 2.5e-9, 0.000012345]:
        assert backend.dumps(number) == repr(number)
        assert backend.dumps([number]) == f"[{number!r}]"
    assert backend.dumps([1e16, 1e22, 0.0001, -0.0]) == "[1e+16,1e+22,0.0001,-0.0]"


@BACKENDS
def test_non_ascii_text_is_kept_as_it_is(backend: ModuleType) -> None:
    assert backend.dumps({"é": "😀\u2028"}) == '{"é":"😀\u2028"}'
    assert backend.dumps_bytes("é") == '"é"'.encode()
    assert backend.dumps("\x00\x1f\x7f") == '"\\u0000\\u001f\x7f"'


@BACKENDS
def test_lone_surrogates_are_written_escaped_with_the_rest_of_the_document(
    backend: ModuleType,
) -> None:
    # Output with a lone surrogate cannot be sent as UTF-8: it is written as
    # ensure_ascii=True writes it, other non-ASCII text escaped too.
    assert backend.dumps(["\ud800", "é"]) == '["\\ud800","\\u00e9"]'
    assert backend.dumps({"\udfff": 1}) == '{"\\udfff":1}'
    assert backend.dumps("\ud83d\ude00") == '"\\ud83d\\ude00"'
    assert backend.dumps_bytes(["\ud800", "é"]) == b'["\\ud800","\\u00e9"]'


@BACKENDS
def test_circular_and_deeply_nested_values_are_type_errors(backend: ModuleType) -> None:
    circular: list[Any] = []
    circular.append(circular)
    nested: list[Any] = []
    for _ in range(100_000):
        nested = [nested]
    for value in [circular, {"a": circular}, nested]:
        with pytest.raises(TypeError, match="cannot serialise to JSON"):
            backend.dumps(value)
        with pytest.raises(TypeError, match="cannot serialise to JSON"):
            backend.dumps_bytes(value)


@BACKENDS
def test_loads_keeps_lone_surrogate_escapes(backend: ModuleType) -> None:
    assert backend.loads('"\\ud800"') == "\ud800"
    assert backend.loads('["\\udc00\\ud800"]') == ["\udc00\ud800"]
    assert backend.loads('"\ud800"') == "\ud800"  # the character itself, too


@BACKENDS
def test_loads_keeps_the_last_of_duplicate_keys(backend: ModuleType) -> None:
    assert backend.loads('{"a":1,"b":2,"a":3}') == {"a": 3, "b": 2}


@BACKENDS
@pytest.mark.parametrize(
    "document", ["", "[1,]", "{'a':1}", "\ufeff1", '"\t"', "1\x00", "nul", "[1] 2", "01"]
)
def test_invalid_json_raises_json_decode_error(backend: ModuleType, document: str) -> None:
    with pytest.raises(json.JSONDecodeError) as raised:
        backend.loads(document)
    with pytest.raises(json.JSONDecodeError) as reference:
        json.loads(document)
    assert str(raised.value) == str(reference.value)  # Python's message, not orjson's


@BACKENDS
def test_an_integer_over_pythons_digit_limit_is_a_value_error(backend: ModuleType) -> None:
    document = "1" * 5000
    assert outcome_of_loads(backend.loads, document) == outcome_of_loads(json.loads, document)
    if hasattr(sys, "get_int_max_str_digits"):  # Python 3.11, and 3.10.7 on
        with pytest.raises(ValueError, match="digits") as raised:
            backend.loads(document)
        assert not isinstance(raised.value, json.JSONDecodeError)  # as json.loads raises it


@BACKENDS
@pytest.mark.parametrize("depth", [1, 255, 256, 257, 500, 900, 1000, 1010, 1024, 1025, 5000])
def test_nesting_up_to_max_depth_is_parsed_and_deeper_refused(
    backend: ModuleType, depth: int
) -> None:
    # Up to MAX_DEPTH (256) levels, what both parsers read and both writers write;
    # deeper, a ValueError, or the RecursionError of a parser that stopped first.
    for document in ["[" * depth + "]" * depth, '{"a":' * depth + "1" + "}" * depth]:
        outcome = outcome_of_loads(backend.loads, document)
        if depth <= bocws._json.MAX_DEPTH:
            assert outcome[0] == "value"
            assert same_value(outcome[1], json.loads(document))
            assert backend.loads(backend.dumps(outcome[1])) is not None  # written back
        else:
            assert outcome[0] == "error"
            assert issubclass(outcome[1], (ValueError, RecursionError))


@BACKENDS
def test_nesting_too_deep_for_orjson_and_python_raises_recursion_error(
    backend: ModuleType,
) -> None:
    with pytest.raises(RecursionError):
        backend.loads("[" * 100_000 + "]" * 100_000)


# Through the public API, on both backends.


@pytest.fixture(params=[ORJSON_BACKEND, STDLIB_BACKEND], ids=["orjson", "stdlib"])
def json_backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """`WebSocket` serialising and parsing through one backend."""
    backend: ModuleType = request.param
    monkeypatch.setattr(bocws._codecs, "_json", backend)
    monkeypatch.setattr(bocws.websockets, "_json", backend)  # its inlined JSON
    return backend


async def accepted(*incoming: dict[str, Any]) -> tuple[WebSocket, Any]:
    server = connected(*incoming)
    ws = server.websocket()
    await ws.accept()
    return ws, server


@pytest.mark.anyio
async def test_send_json_sends_a_uuid_as_its_string(json_backend: ModuleType) -> None:
    ws, server = await accepted()
    identifier = uuid.UUID("12345678-1234-5678-1234-567812345678")
    await ws.send_json({"id": identifier, "color": Color.RED})
    await ws.send_json([identifier], mode="binary")
    assert server.sent[1:] == [
        {"type": "websocket.send", "text": f'{{"id":"{identifier}","color":"red"}}'},
        {"type": "websocket.send", "bytes": f'["{identifier}"]'.encode()},
    ]


@pytest.mark.anyio
async def test_receive_json_keeps_a_30_digit_integer_exact(json_backend: ModuleType) -> None:
    number = 123456789012345678901234567890
    ws, _ = await accepted(
        text(f'{{"n":{number}}}'),
        {"type": "websocket.receive", "bytes": f"[{-number}]".encode()},
        {"type": "websocket.receive", "bytes": f"[{number}]".encode()},
    )
    received = await ws.receive_json()
    assert received == {"n": number}
    assert type(received["n"]) is int
    assert await ws.receive_json(mode="binary") == [-number]
    assert await ws.receive_json() == [number]  # a binary frame, in the default mode


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["text", "binary"])
async def test_send_json_of_nan_raises_type_error_and_sends_nothing(
    json_backend: ModuleType, mode: str
) -> None:
    ws, server = await accepted()
    with pytest.raises(TypeError, match="cannot serialise to JSON"):
        await ws.send_json({"x": math.nan}, mode=mode)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await ws.send_json({1, 2}, mode=mode)  # type: ignore[arg-type]
    assert server.types() == ["websocket.accept"]
    await ws.send_json(None, mode=mode)  # type: ignore[arg-type]  # still usable
    assert len(server.sent) == 2


@pytest.mark.anyio
async def test_send_json_of_nan_before_a_lazy_accept_accepts_nothing(
    json_backend: ModuleType,
) -> None:
    server = connected()
    ws = server.websocket()
    with pytest.raises(TypeError):
        await ws.send_json(math.inf)
    assert server.sent == []


@pytest.mark.anyio
async def test_send_json_escapes_a_lone_surrogate_echoed_from_the_client(
    json_backend: ModuleType,
) -> None:
    ws, server = await accepted(text('{"name":"\\ud800","city":"Zürich"}'))
    message = await ws.receive_json()
    assert message == {"name": "\ud800", "city": "Zürich"}
    await ws.send_json(message)
    await ws.send_json(message, mode="binary")
    expected = '{"name":"\\ud800","city":"Z\\u00fcrich"}'
    assert server.sent[1:] == [
        {"type": "websocket.send", "text": expected},
        {"type": "websocket.send", "bytes": expected.encode()},
    ]
    server.sent[1]["text"].encode("utf-8")  # what a server can send


@pytest.mark.anyio
async def test_receive_json_refuses_nan_and_infinity_it_could_not_send_back(
    json_backend: ModuleType,
) -> None:
    ws, _ = await accepted(text("[NaN,Infinity,1e400]"), text("[1.5]"))
    with pytest.raises(InvalidJSON, match="NaN is not allowed") as raised:
        await ws.receive_json()
    assert ws._ending_of(raised.value)[:2] == ("close", 1007)
    assert await ws.receive_json() == [1.5]  # the connection stays usable


@pytest.mark.anyio
@pytest.mark.parametrize("document", ["{", "[1,]", "NaN!", "[" * 100_000, "1" * 5000])
async def test_receive_json_of_invalid_json_is_the_clients_bad_data(
    json_backend: ModuleType, document: str
) -> None:
    ws, _ = await accepted(
        text(document), {"type": "websocket.receive", "bytes": document.encode()}
    )
    for _ in range(2):  # in a text frame, then in a binary frame
        with pytest.raises(InvalidJSON) as raised:
            await ws.receive_json()
        assert isinstance(raised.value, json.JSONDecodeError)
        detail = f"the client sent bad data: {raised.value}"
        assert ws._ending_of(raised.value) == Ending("close", 1007, "invalid JSON", detail)


@pytest.mark.anyio
async def test_receive_json_of_a_binary_frame_in_text_mode_is_unsupported_data(
    json_backend: ModuleType,
) -> None:
    ws, _ = await accepted({"type": "websocket.receive", "bytes": b"[1]"})
    with pytest.raises(MessageTypeError, match=r"receive_json\(mode='text'\)") as raised:
        await ws.receive_json(mode="text")
    detail = f"the client sent bad data: {raised.value}"
    assert ws._ending_of(raised.value) == Ending("close", 1003, "unsupported frame type", detail)


@pytest.mark.anyio
async def test_send_json_writes_small_floats_as_the_standard_library_does(
    json_backend: ModuleType,
) -> None:
    ws, server = await accepted()
    await ws.send_json({"p": 1.5e-05, "q": 2e-07})
    assert server.sent[1:] == [{"type": "websocket.send", "text": '{"p":1.5e-05,"q":2e-07}'}]
