"""Each example works as documented."""

from __future__ import annotations

from starlette.testclient import TestClient

from examples.echo import app as echo_app


def test_echo_example_serves_its_page() -> None:
    response = TestClient(echo_app).get("/")
    assert response.status_code == 200
    assert "new WebSocket(" in response.text


def test_echo_example_echoes_text() -> None:
    with TestClient(echo_app).websocket_connect("/") as session:
        session.send_text("hello")
        assert session.receive_text() == "hello"
        session.send_text("é 🥪")
        assert session.receive_text() == "é 🥪"
