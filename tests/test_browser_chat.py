"""The chat example's page in headless Chromium, against `uvicorn examples.chat:app`.

Run alone with `pytest tests/test_browser_chat.py`. Set `BOCWS_UPDATE_SCREENSHOT=1` to
write the screenshot that the README shows (`docs/images/chat.png`).
"""

from __future__ import annotations

import itertools
import os
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from examples import chat
from tests.processes import ROOT, Uvicorn, log_config

SCREENSHOT = ROOT / "docs" / "images" / "chat.png"
# When the page creates each WebSocket, in ms (Python learns of page events late).
COUNT_SOCKETS = """
window.opened = [];
window.WebSocket = class extends window.WebSocket {
  constructor(...args) {
    super(...args);
    window.opened.push(performance.now());
  }
};
"""
SLACK = 0.4
"""Seconds a handshake and the test's own bookkeeping may add to a wait."""


@pytest.fixture
def server(serve: type[Uvicorn], tmp_path: Path) -> Uvicorn:
    """The chat example under uvicorn, logging who joins and leaves."""
    logging = log_config(tmp_path / "log.json", "examples.chat")
    started = serve("examples.chat:app", "--log-config", str(logging))
    started.start()
    return started


class Users:
    """Opens one chat page per user, each in a browser profile of its own."""

    def __init__(self, browser: Browser, server: Uvicorn) -> None:
        self.browser = browser
        self.server = server
        self.profiles: list[BrowserContext] = []

    def join(self, room: str, name: str) -> Page:
        """A new user's page, joined to `room` as `name` and connected."""
        profile = self.browser.new_context(viewport={"width": 900, "height": 560})
        self.profiles.append(profile)
        page = profile.new_page()
        page.goto(self.server.url + "/")
        page.fill("#room", room)
        page.fill("#name", name)
        page.click("#join button")
        expect(page.locator("#state")).to_have_attribute("data-state", "connected")
        return page


@pytest.fixture
def users(browser: Browser, server: Uvicorn) -> Iterator[Users]:
    opened = Users(browser, server)
    yield opened
    for profile in opened.profiles:
        profile.close()


def say(page: Page, text: str) -> None:
    page.fill("#text", text)
    page.press("#text", "Enter")


def messages(page: Page) -> list[str]:
    """The chat lines on `page`, as "user: text"."""
    lines = page.locator("#messages .message").evaluate_all(
        "items => items.map(item => item.querySelector('.user').textContent"
        " + ': ' + item.querySelector('.text').textContent)"
    )
    return list(lines)


def members(page: Page) -> list[str]:
    return list(page.locator("#members li").all_inner_texts())


def test_a_message_reaches_its_room_only(users: Users, server: Uvicorn) -> None:
    ana = users.join("a", "Ana")
    bob = users.join("a", "Bob")
    eve = users.join("b", "Eve")
    expect(ana.locator("#members li")).to_have_text(["Ana (you)", "Bob"])
    expect(eve.locator("#members li")).to_have_text(["Eve (you)"])

    say(ana, "hello room a")
    expect(bob.locator("#messages .message .text")).to_have_text(["hello room a"])
    expect(ana.locator("#messages .message.own .text")).to_have_text(["hello room a"])
    # Eve's own message comes after Ana's was relayed: had room a's leaked, it would be first.
    say(eve, "anyone in b?")
    expect(eve.locator("#messages .message")).to_have_count(1)
    assert messages(eve) == ["Eve: anyone in b?"]
    say(bob, "hi Ana")
    expect(ana.locator("#messages .message")).to_have_count(2)
    assert messages(ana) == messages(bob) == ["Ana: hello room a", "Bob: hi Ana"]
    assert ana.evaluate("window.chat.socket.protocol") == chat.SUBPROTOCOL


def test_closing_a_page_updates_the_member_list(users: Users, server: Uvicorn) -> None:
    ana = users.join("a", "Ana")
    bob = users.join("a", "Bob")
    expect(ana.locator("#members li")).to_have_text(["Ana (you)", "Bob"])
    expect(ana.locator("#messages .notice").last).to_have_text("Bob joined.")

    bob.context.close()  # the browser says goodbye with 1001, going away
    expect(ana.locator("#members li")).to_have_text(["Ana (you)"])
    expect(ana.locator("#member-count")).to_have_text("1")
    expect(ana.locator("#messages .notice").last).to_have_text("Bob left.")
    server.wait_for(r"'Bob' left room 'a': disconnected with 1001$")


def test_pages_reconnect_after_a_server_restart(users: Users, server: Uvicorn) -> None:
    ana = users.join("a", "Ana")
    bob = users.join("a", "Bob")
    say(ana, "before the restart")
    expect(bob.locator("#messages .message .text")).to_have_text(["before the restart"])

    server.stop()  # uvicorn closes every socket with 1012, service restart
    for page in (ana, bob):
        # (The state line shows the latest failure: soon 1006, while the server is down.)
        expect(page.locator("#state")).to_have_attribute("data-state", "waiting")
        expect(page.locator("#text")).to_be_disabled()
        expect(page.locator("#messages .notice.bad")).to_have_text(
            ["Connection closed (1012 server restarting). Reconnecting…"]
        )
    server.start()
    for page in (ana, bob):
        expect(page.locator("#state")).to_have_attribute("data-state", "connected")
        expect(page.locator("#messages .notice.good")).to_have_text(["Reconnected."])
        expect(page.locator("#members li")).to_have_count(2)
    say(bob, "after the restart")
    expect(ana.locator("#messages .message .text")).to_have_text(
        ["before the restart", "after the restart"]
    )


def test_user_text_is_shown_as_text_never_as_html(users: Users, server: Uvicorn) -> None:
    attack = '<img src=x onerror="window.injected = true">'
    ana = users.join("a", "Ana")
    mallory = users.join("a", attack[:32])
    say(mallory, f"<b>bold</b> {attack}")
    expect(ana.locator("#messages .message .text")).to_have_text([f"<b>bold</b> {attack}"])
    expect(ana.locator("#members li")).to_have_text([f"{attack[:32]}", "Ana (you)"])
    for page in (ana, mallory):
        assert page.locator("img, b").count() == 0
        assert page.evaluate("window.injected") is None


def test_a_room_name_that_is_no_path_segment_is_refused_in_the_page(
    context: BrowserContext, server: Uvicorn
) -> None:
    page = context.new_page()
    page.goto(server.url + "/")
    page.fill("#name", "Ana")
    for room in ("a/b", "..", "."):
        page.fill("#room", room)
        page.click("#join button")
        expect(page.locator("#join-error")).to_have_text(
            "A room name cannot contain / or be . or .."
        )
        expect(page.locator("#state")).to_have_attribute("data-state", "idle")


def test_the_address_picks_the_room(users: Users) -> None:
    page = users.join("lobby", "Ana")
    assert page.url.endswith("/#lobby")
    page.evaluate("location.hash = '#kitchen'")
    expect(page.locator("#room-title")).to_have_text("kitchen")
    expect(page.locator("#state")).to_have_attribute("data-state", "connected")
    expect(page.locator("#messages .notice")).to_have_text(["You joined #kitchen as Ana."])
    page.reload()  # the name was remembered: the page joins the address's room again
    expect(page.locator("#state")).to_have_attribute("data-state", "connected")
    expect(page.locator("#room-title")).to_have_text("kitchen")


def test_a_malformed_message_shows_1008_and_stops(users: Users, server: Uvicorn) -> None:
    page = users.join("a", "Ana")
    page.evaluate("window.chat.socket.send(JSON.stringify({text: 'hi', admin: true}))")
    expect(page.locator("#state")).to_have_attribute("data-state", "closed")
    expect(page.locator("#state-text")).to_have_text(
        f"disconnected (1008 policy violation: {chat.MALFORMED})"
    )
    expect(page.locator("#join")).to_be_visible()  # no retrying: the user acts first
    expect(page.locator("#join-error")).to_contain_text("1008 policy violation")
    server.wait_for(r"'Ana' left room 'a': closed with 1008$")
    page.click("#join button")  # joining again works
    expect(page.locator("#state")).to_have_attribute("data-state", "connected")


def test_an_oversized_message_shows_1009_and_reconnects(users: Users, server: Uvicorn) -> None:
    page = users.join("a", "Ana")
    size = chat.MAX_MESSAGE_BYTES + 1
    page.evaluate(f"window.chat.socket.send('x'.repeat({size}))")
    expect(page.locator("#messages .notice.bad")).to_have_text(
        ["Connection closed (1009 message too big: message too big). Reconnecting…"]
    )
    expect(page.locator("#state")).to_have_attribute("data-state", "connected")
    expect(page.locator("#messages .notice.good")).to_have_text(["Reconnected."])
    say(page, "still here")
    expect(page.locator("#messages .message .text")).to_have_text(["still here"])


def test_a_server_error_shows_1011_and_retries_ever_later(
    context: BrowserContext, serve: type[Uvicorn]
) -> None:
    server = serve("tests.browser_app:app")  # the chat page over a socket that raises
    server.start()
    page = context.new_page()
    page.add_init_script(COUNT_SOCKETS)
    page.goto(server.url + "/broken/")
    page.fill("#name", "Ana")
    page.click("#join button")
    expect(page.locator("#messages .notice.bad")).to_have_text(
        ["Connection closed (1011 server error: internal error). Reconnecting…"]
    )
    expect(page.locator("#state-text")).to_contain_text("internal error); retrying in")
    expect(page.locator("#retry")).to_be_visible()
    # The page tries again by itself, waiting 0.25-0.5 s, then 0.5-1 s, then 1-2 s:
    # accepting and failing at once does not reset the backoff.
    server.wait_for(r'"WebSocket /broken/chat/lobby\?name=Ana" \[accepted\]', times=4)
    expect(page.locator("#messages .notice")).to_have_count(1)  # said once, not every time
    opened = page.evaluate("window.opened")
    waits = [(later - earlier) / 1000 for earlier, later in itertools.pairwise(opened[:4])]
    assert waits[0] < 0.5 + SLACK, waits
    assert waits[2] >= 1.0, waits


def test_a_screenshot_of_two_users(users: Users, server: Uvicorn, tmp_path: Path) -> None:
    ana = users.join("lobby", "Ana")
    bob = users.join("lobby", "Bob")
    say(ana, "Hi Bob! Is the dashboard live yet?")
    expect(bob.locator("#messages .message")).to_have_count(1)
    say(bob, "It is: numbers stream in over bocws, no polling.")
    say(ana, "And if the server restarts?")
    say(bob, "The page reconnects by itself, with backoff.")
    expect(ana.locator("#messages .message")).to_have_count(4)
    target = SCREENSHOT if os.environ.get("BOCWS_UPDATE_SCREENSHOT") else tmp_path / "chat.png"
    target.parent.mkdir(parents=True, exist_ok=True)
    png = ana.screenshot(path=target)
    width, height = struct.unpack(">II", png[16:24])  # the PNG's IHDR chunk
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert (width, height) == (900, 560)
