from __future__ import annotations

import pytest

# The browser tests' fixtures: `browser`, `context` and `serve` (tests/browser.py), and
# `redis_server` (tests/redis_server.py).
pytest_plugins = ["tests.browser", "tests.redis_server", "tests.redis_topologies"]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
