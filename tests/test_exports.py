"""The public surface: what `bocws` exports, each name documented where users look.

Every name in `bocws.__all__` is importable from the package root, has a docstring
with a summary line, and appears in the API reference (docs/api.md); nothing private
leaks into `__all__`.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

import bocws

API_PAGE = Path(__file__).resolve().parent.parent / "docs" / "api.md"
PUBLIC = sorted(set(bocws.__all__) - {"__version__"})


def test_all_lists_only_public_names_that_exist() -> None:
    assert len(bocws.__all__) == len(set(bocws.__all__))
    for name in bocws.__all__:
        assert hasattr(bocws, name), name
        assert name == "__version__" or not name.startswith("_"), name


@pytest.mark.parametrize("name", PUBLIC)
def test_each_public_name_has_a_docstring(name: str) -> None:
    value = getattr(bocws, name)
    assert inspect.getdoc(value), f"bocws.{name} has no docstring"


@pytest.mark.skipif(not API_PAGE.exists(), reason="no docs/ beside the tests")
@pytest.mark.parametrize("name", PUBLIC)
def test_each_public_name_is_in_the_api_reference(name: str) -> None:
    page = API_PAGE.read_text()
    assert f"bocws.{name}" in page, f"docs/api.md does not mention bocws.{name}"
