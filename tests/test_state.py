"""The strict state core, exhaustively: every state pair x every message, both directions."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from enum import IntEnum
from typing import Any

import pytest
import starlette.websockets
from hypothesis import given, settings
from hypothesis import strategies as st

from bocws import WebSocketState, WebSocketStateError
from bocws._codes import check_close
from bocws._state import ConnectionState


class CloseReason(IntEnum):
    NORMAL = 1000


CONNECTING = WebSocketState.CONNECTING
CONNECTED = WebSocketState.CONNECTED
DISCONNECTED = WebSocketState.DISCONNECTED
RESPONSE = WebSocketState.RESPONSE

CLIENT_STATES = (CONNECTING, CONNECTED, DISCONNECTED)
APPLICATION_STATES = (CONNECTING, CONNECTED, RESPONSE, DISCONNECTED)

# One well-formed message of each type.
INCOMING: dict[str, dict[str, Any]] = {
    "websocket.connect": {"type": "websocket.connect"},
    "websocket.receive": {"type": "websocket.receive", "text": "hi"},
    "websocket.disconnect": {"type": "websocket.disconnect", "code": 1001, "reason": "away"},
}
OUTGOING: dict[str, dict[str, Any]] = {
    "websocket.accept": {"type": "websocket.accept", "subprotocol": None, "headers": []},
    "websocket.send": {"type": "websocket.send", "bytes": b"hi"},
    "websocket.close": {"type": "websocket.close", "code": 1000, "reason": ""},
    "websocket.http.response.start": {
        "type": "websocket.http.response.start",
        "status": 401,
        "headers": [(b"content-type", b"text/plain")],
    },
    "websocket.http.response.body": {
        "type": "websocket.http.response.body",
        "body": b"no",
        "more_body": False,
    },
}


# The expected transitions, written out independently of the implementation.
# None means the message is refused with WebSocketStateError.
def expected_incoming(
    client: WebSocketState, application: WebSocketState, message_type: str
) -> WebSocketState | None:
    if client is CONNECTING:
        return {
            "websocket.connect": CONNECTED,
            "websocket.disconnect": DISCONNECTED,
        }.get(message_type)
    if client is CONNECTED:
        if message_type == "websocket.disconnect":
            return DISCONNECTED
        if message_type == "websocket.receive" and application in (CONNECTED, DISCONNECTED):
            return CONNECTED
    return None


def expected_outgoing(
    client: WebSocketState, application: WebSocketState, message_type: str
) -> WebSocketState | None:
    table = {
        CONNECTING: {
            "websocket.accept": CONNECTED if client is not CONNECTING else None,
            "websocket.close": DISCONNECTED,
            "websocket.http.response.start": RESPONSE,
        },
        CONNECTED: {"websocket.send": CONNECTED, "websocket.close": DISCONNECTED},
        RESPONSE: {"websocket.http.response.body": DISCONNECTED},
        DISCONNECTED: {},
    }
    return table[application].get(message_type)


def make_core(
    client: WebSocketState, application: WebSocketState, denial: bool = True
) -> ConnectionState:
    core = ConnectionState(denial_response=denial)
    core.client_state = client
    core.application_state = application
    core.open = client is CONNECTED and application is CONNECTED
    if client is DISCONNECTED:
        core.disconnect_code = 1001
    return core


STATE_PAIRS = list(itertools.product(CLIENT_STATES, APPLICATION_STATES))


def assert_refused(
    core: ConnectionState, call: Callable[[dict[str, Any]], object], message: dict[str, Any]
) -> None:
    """`call(message)` raises a state error naming the message and both states, changing none."""
    before = (core.client_state, core.application_state)
    with pytest.raises(WebSocketStateError) as info:
        call(message)
    text = str(info.value)
    assert message["type"] in text
    assert before[0].name in text
    assert before[1].name in text
    assert (core.client_state, core.application_state) == before


@pytest.mark.parametrize(("client", "application"), STATE_PAIRS)
@pytest.mark.parametrize("message_type", list(INCOMING))
def test_every_incoming_message_in_every_state(
    client: WebSocketState, application: WebSocketState, message_type: str
) -> None:
    core = make_core(client, application)
    expected = expected_incoming(client, application, message_type)
    if expected is None:
        assert_refused(core, core.receive, INCOMING[message_type])
    else:
        core.receive(INCOMING[message_type])
        assert core.client_state is expected
        assert core.application_state is application


@pytest.mark.parametrize(("client", "application"), STATE_PAIRS)
@pytest.mark.parametrize("message_type", list(OUTGOING))
def test_every_outgoing_message_in_every_state(
    client: WebSocketState, application: WebSocketState, message_type: str
) -> None:
    core = make_core(client, application)
    expected = expected_outgoing(client, application, message_type)
    if expected is None:
        assert_refused(core, core.send, OUTGOING[message_type])
    else:
        forward = core.send(OUTGOING[message_type])
        assert core.application_state is expected
        assert core.client_state is client
        assert forward is (client is not DISCONNECTED)


@pytest.mark.parametrize(("client", "application"), STATE_PAIRS)
def test_send_data_fast_path_agrees_with_send(
    client: WebSocketState, application: WebSocketState
) -> None:
    fast, full = make_core(client, application), make_core(client, application)
    try:
        full_result: bool | None = full.send(OUTGOING["websocket.send"])
    except WebSocketStateError:
        full_result = None
    if full_result is None:
        with pytest.raises(WebSocketStateError):
            fast.send_data()
    else:
        assert fast.send_data() is full_result


@pytest.mark.parametrize(("client", "application"), STATE_PAIRS)
def test_check_receive_in_every_state(client: WebSocketState, application: WebSocketState) -> None:
    core = make_core(client, application)
    allowed = client is CONNECTING or (
        client is CONNECTED and application in (CONNECTED, DISCONNECTED)
    )
    if allowed:
        core.check_receive()
    else:
        with pytest.raises(WebSocketStateError, match=client.name):
            core.check_receive()
    assert (core.client_state, core.application_state) == (client, application)


@pytest.mark.parametrize(("client", "application"), STATE_PAIRS)
def test_check_receive_for_data_needs_an_accepted_handshake(
    client: WebSocketState, application: WebSocketState
) -> None:
    core = make_core(client, application)
    if client is CONNECTED and application in (CONNECTED, DISCONNECTED):
        core.check_receive(data=True)
    else:
        with pytest.raises(WebSocketStateError, match=client.name):
            core.check_receive(data=True)


def test_receive_before_accept_says_to_accept() -> None:
    core = make_core(CONNECTED, CONNECTING)
    with pytest.raises(WebSocketStateError, match=r"call accept\(\) first"):
        core.check_receive()


def test_receive_after_disconnect_names_the_code() -> None:
    core = make_core(DISCONNECTED, CONNECTED)
    with pytest.raises(WebSocketStateError, match="code 1001"):
        core.check_receive()


def test_send_before_accept_says_to_accept() -> None:
    core = make_core(CONNECTED, CONNECTING)
    with pytest.raises(WebSocketStateError, match="auto_accept=True"):
        core.send(OUTGOING["websocket.send"])


def test_accept_before_connect_says_to_receive_connect() -> None:
    core = make_core(CONNECTING, CONNECTING)
    with pytest.raises(WebSocketStateError, match=r"receive websocket\.connect first"):
        core.send(OUTGOING["websocket.accept"])


def test_close_twice_is_a_state_error() -> None:
    core = make_core(CONNECTED, CONNECTED)
    core.send(OUTGOING["websocket.close"])
    with pytest.raises(WebSocketStateError, match="already closed"):
        core.send(OUTGOING["websocket.close"])


def test_denial_response_needs_the_extension() -> None:
    core = make_core(CONNECTED, CONNECTING, denial=False)
    with pytest.raises(WebSocketStateError, match=r"websocket\.http\.response extension"):
        core.send(OUTGOING["websocket.http.response.start"])
    assert core.application_state is CONNECTING


def test_response_body_with_more_body_keeps_the_response_open() -> None:
    core = make_core(CONNECTED, RESPONSE)
    core.send({"type": "websocket.http.response.body", "body": b"a", "more_body": True})
    assert core.application_state is RESPONSE
    core.send({"type": "websocket.http.response.body", "body": b"b"})
    assert core.application_state is DISCONNECTED


def test_disconnect_records_code_and_reason() -> None:
    core = make_core(CONNECTED, CONNECTED)
    core.receive({"type": "websocket.disconnect", "code": 4000, "reason": "bye"})
    assert (core.disconnect_code, core.disconnect_reason) == (4000, "bye")


def test_disconnect_without_code_means_1005() -> None:
    core = make_core(CONNECTED, CONNECTED)
    core.receive({"type": "websocket.disconnect"})
    assert core.disconnect_code == 1005


def test_disconnect_code_as_an_int_enum_is_stored_as_a_plain_int() -> None:
    # wsproto's CloseReason and websockets' CloseCode are IntEnums.
    core = make_core(CONNECTED, CONNECTED)
    core.receive({"type": "websocket.disconnect", "code": CloseReason.NORMAL})
    assert core.disconnect_code == 1000
    assert type(core.disconnect_code) is int


def test_close_accepts_int_enum_codes_but_not_bools() -> None:
    check_close(CloseReason.NORMAL, None, handshake_pending=False)
    with pytest.raises(TypeError, match="got bool"):
        check_close(True, None, handshake_pending=False)


def test_connection_lost_records_1006_once() -> None:
    core = make_core(CONNECTED, CONNECTED)
    core.connection_lost()
    assert (core.client_state, core.disconnect_code) == (DISCONNECTED, 1006)
    core.connection_lost(1011)
    assert core.disconnect_code == 1006


def test_a_disconnect_found_by_a_send_is_recorded_and_marks_the_loss() -> None:
    core = make_core(CONNECTED, CONNECTED)
    core.disconnect_found_by_send({"type": "websocket.disconnect", "code": 1001, "reason": "x"})
    assert (core.client_state, core.disconnect_code, core.disconnect_reason) == (
        DISCONNECTED,
        1001,
        "x",
    )
    assert core.lost
    with pytest.raises(WebSocketStateError, match="needs a connected client"):
        core.disconnect_found_by_send({"type": "websocket.disconnect", "code": 1000})
    with pytest.raises(WebSocketStateError, match=r"got 'websocket\.receive'"):
        make_core(CONNECTED, CONNECTED).disconnect_found_by_send(
            {"type": "websocket.receive", "text": "a"}
        )


def test_after_a_loss_the_servers_late_messages_change_nothing() -> None:
    core = make_core(CONNECTED, CONNECTED)
    core.connection_lost()
    core.receive({"type": "websocket.receive", "text": "sent before the loss"})
    core.receive({"type": "websocket.disconnect", "code": 1000})
    assert (core.client_state, core.disconnect_code) == (DISCONNECTED, 1006)
    with pytest.raises(ValueError, match="exactly one"):
        core.receive({"type": "websocket.receive"})
    with pytest.raises(WebSocketStateError):
        core.receive({"type": "websocket.connect"})


@pytest.mark.parametrize(
    "message",
    [
        {"type": "websocket.receive"},
        {"type": "websocket.receive", "text": "a", "bytes": b"a"},
        {"type": "websocket.receive", "text": b"a"},
        {"type": "websocket.receive", "bytes": "a"},
        {"type": "websocket.disconnect", "code": "1000"},
        {"type": "websocket.disconnect", "code": 1000, "reason": 5},
        {"type": "http.request"},
        {},
    ],
)
def test_malformed_incoming_message_is_refused(message: dict[str, Any]) -> None:
    core = make_core(CONNECTED, CONNECTED)
    with pytest.raises((ValueError, TypeError)):
        core.receive(message)
    assert (core.client_state, core.application_state) == (CONNECTED, CONNECTED)


@pytest.mark.parametrize(
    ("application", "message"),
    [
        (CONNECTED, {"type": "websocket.send"}),
        (CONNECTED, {"type": "websocket.send", "text": "a", "bytes": b"a"}),
        (CONNECTED, {"type": "websocket.send", "text": 1}),
        (CONNECTED, {"type": "websocket.send", "bytes": "a"}),
        (CONNECTED, {"type": "websocket.close", "code": 1005}),
        (CONNECTED, {"type": "websocket.close", "code": 1006}),
        (CONNECTED, {"type": "websocket.close", "code": 403}),
        (CONNECTED, {"type": "websocket.close", "code": 5000}),
        (CONNECTED, {"type": "websocket.close", "code": 1000.0}),
        (CONNECTED, {"type": "websocket.close", "code": 1000, "reason": "x" * 124}),
        (CONNECTED, {"type": "websocket.close", "code": 1000, "reason": b"x"}),
        (CONNECTING, {"type": "websocket.accept", "subprotocol": 1}),
        (CONNECTING, {"type": "websocket.accept", "headers": [("a", "b")]}),
        (CONNECTING, {"type": "websocket.accept", "headers": 5}),
        (CONNECTING, {"type": "websocket.http.response.start", "status": 99}),
        (CONNECTING, {"type": "websocket.http.response.start", "status": "401"}),
        (RESPONSE, {"type": "websocket.http.response.body", "body": "text"}),
        (CONNECTED, {"type": "websocket.bogus"}),
        (CONNECTED, {"type": None}),
    ],
)
def test_malformed_outgoing_message_is_refused(
    application: WebSocketState, message: dict[str, Any]
) -> None:
    core = make_core(CONNECTED, application)
    with pytest.raises((ValueError, TypeError)):
        core.send(message)
    assert (core.client_state, core.application_state) == (CONNECTED, application)


def test_close_403_is_allowed_only_before_accept() -> None:
    core = make_core(CONNECTED, CONNECTING)
    core.send({"type": "websocket.close", "code": 403})
    assert core.application_state is DISCONNECTED


@pytest.mark.parametrize("code", [1000, 1001, 1002, 1003, 1007, 1011, 1014, 3000, 4999])
def test_valid_close_codes_are_accepted(code: int) -> None:
    check_close(code, None, handshake_pending=False)


@pytest.mark.parametrize("code", [0, 999, 1004, 1005, 1006, 1015, 1100, 2999, 5000, 403])
def test_invalid_close_codes_are_refused(code: int) -> None:
    with pytest.raises(ValueError, match=f"invalid close code {code}"):
        check_close(code, None, handshake_pending=False)


def test_close_reason_limit_counts_utf8_bytes() -> None:
    check_close(1000, "é" * 61, handshake_pending=False)  # 122 bytes
    with pytest.raises(ValueError, match="124 bytes"):
        check_close(1000, "é" * 62, handshake_pending=False)


def test_states_are_starlettes_own_enum() -> None:
    """Code written for Starlette compares bocws's states with Starlette's, both ways."""
    assert WebSocketState is starlette.websockets.WebSocketState
    for ours in APPLICATION_STATES:
        theirs = starlette.websockets.WebSocketState[ours.name]
        assert ours == theirs
        assert theirs == ours
    assert [state.value for state in APPLICATION_STATES] == [0, 1, 3, 2]
    assert issubclass(WebSocketStateError, RuntimeError)


# Property-based: random sequences in both directions against the reference tables.

any_event = st.one_of(
    st.sampled_from([("in", m) for m in INCOMING.values()]),
    st.sampled_from([("out", m) for m in OUTGOING.values()]),
    st.just(("out", {"type": "websocket.close", "code": 1006})),
    st.just(("out", {"type": "websocket.send"})),
    st.just(("in", {"type": "websocket.receive"})),
    st.builds(
        lambda code: ("in", {"type": "websocket.disconnect", "code": code}),
        st.integers(1000, 4999),
    ),
)

ORDER = {CONNECTING: 0, CONNECTED: 1, RESPONSE: 1, DISCONNECTED: 2}


@settings(max_examples=400, deadline=None)
@given(events=st.lists(any_event, max_size=25), denial=st.booleans())
def test_random_sequences_follow_the_reference(
    events: list[tuple[str, dict[str, Any]]], denial: bool
) -> None:
    core = ConnectionState(denial_response=denial)
    accepted = closed = 0
    for direction, message in events:
        before = (core.client_state, core.application_state)
        message_type = message["type"]
        if direction == "in":
            expected = expected_incoming(*before, message_type)
            try:
                core.receive(message)
            except (WebSocketStateError, ValueError, TypeError) as error:
                assert (core.client_state, core.application_state) == before
                if isinstance(error, WebSocketStateError):
                    assert expected is None
                continue
            assert expected is not None
            assert core.client_state is expected
        else:
            expected = expected_outgoing(*before, message_type)
            if message_type == "websocket.http.response.start" and not denial:
                expected = None
            try:
                forward = core.send(message)
            except (WebSocketStateError, ValueError, TypeError) as error:
                assert (core.client_state, core.application_state) == before
                if isinstance(error, WebSocketStateError):
                    assert expected is None
                continue
            assert expected is not None
            assert core.application_state is expected
            assert forward is (core.client_state is not DISCONNECTED)
            accepted += message_type == "websocket.accept"
            closed += core.application_state is DISCONNECTED and before[1] is not DISCONNECTED
        # States never go backwards.
        assert ORDER[core.client_state] >= ORDER[before[0]]
        assert ORDER[core.application_state] >= ORDER[before[1]]
    assert accepted <= 1
    assert closed <= 1
