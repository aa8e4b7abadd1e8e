from __future__ import annotations

import pytest

# The browser tests' fixtures: `browser`, `context` and `serve` (tests/browser.py).
pytest_plugins = ["tests.browser"]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
