"""The chat loses nothing: two pages in headless Chromium, two uvicorn processes on Redis.

Ana's page talks to one process, Bob's to the other, through a real `redis-server`.
One process is killed (SIGKILL) while Bob talks and Ana types, then started again;
later Redis itself is restarted while Bob talks. At the end both pages show the same
transcript: every message exactly once, in the order the server gave them.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.processes import Uvicorn
from tests.redis_server import RedisServer

from .test_browser_chat import messages, say
from .test_scaling import chat_processes

WAIT = 30_000
"""Milliseconds for a page to reconnect or a message to arrive (the page's backoff grows
while a server is down)."""


@pytest.fixture
def servers(
    serve: type[Uvicorn], redis_server: RedisServer, tmp_path: Path
) -> tuple[Uvicorn, Uvicorn]:
    return chat_processes(serve, redis_server, tmp_path)


def join(browser: Browser, server: Uvicorn, room: str, name: str) -> Page:
    page = browser.new_context().new_page()
    page.goto(server.url + "/")
    page.fill("#room", room)
    page.fill("#name", name)
    page.click("#join button")
    expect(page.locator("#state")).to_have_attribute("data-state", "connected", timeout=WAIT)
    return page


def shows(page: Page, lines: list[str]) -> None:
    expect(page.locator("#messages .message")).to_have_count(len(lines), timeout=WAIT)
    assert messages(page) == lines


def test_two_pages_lose_nothing_across_a_killed_process_and_a_redis_restart(
    browser: Browser, servers: tuple[Uvicorn, Uvicorn], redis_server: RedisServer
) -> None:
    first, second = servers
    ana = join(browser, first, "r", "Ana")
    bob = join(browser, second, "r", "Bob")
    expect(ana.locator("#members li")).to_have_count(2, timeout=WAIT)
    say(ana, "a1")
    say(bob, "b1")
    for page in (ana, bob):
        shows(page, ["Ana: a1", "Bob: b1"])

    # Ana types as her process dies: her message is sent, or not, and kept until
    # acknowledged; Bob talks while she is away.
    say(ana, "a2")
    first.kill()
    expect(ana.locator("#state")).not_to_have_attribute("data-state", "connected", timeout=WAIT)
    say(bob, "b2")
    say(bob, "b3")
    expect(bob.locator("#messages .message .text").filter(has_text="b3")).to_have_count(
        1, timeout=WAIT
    )
    first.start()
    expect(ana.locator("#state")).to_have_attribute("data-state", "connected", timeout=WAIT)
    say(ana, "a3")
    expected = ["Ana: a1", "Bob: b1", "Ana: a2", "Bob: b2", "Bob: b3", "Ana: a3"]
    expect(ana.locator("#messages .message")).to_have_count(len(expected), timeout=WAIT)
    expect(bob.locator("#messages .message")).to_have_count(len(expected), timeout=WAIT)
    # Ana's a2 was published before the kill or after her page came back: either
    # way it is there once, and both pages agree on where.
    assert messages(ana) == messages(bob)
    assert sorted(messages(ana)) == sorted(expected)
    assert messages(ana)[-1] == "Ana: a3"

    # Redis restarts while Bob talks: his message waits, unacknowledged, and is sent
    # again once the processes have reconnected.
    before = messages(bob)
    redis_server.stop(kill=True)
    say(bob, "b4")
    expect(bob.locator("#pending")).to_be_visible(timeout=WAIT)
    redis_server.start()
    expect(bob.locator("#pending")).to_be_hidden(timeout=WAIT)
    say(ana, "a4")
    final = [*before, "Bob: b4", "Ana: a4"]
    for page in (ana, bob):
        expect(page.locator("#messages .message")).to_have_count(len(final), timeout=WAIT)
    assert messages(ana) == messages(bob) == final
    for line in final:
        assert final.count(line) == 1
