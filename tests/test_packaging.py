"""The package as users install it: the wheel's files, the version, where bocws comes from.

`.ci/test-wheel` runs the whole suite against the installed wheel, from a copy of the
tests without the source tree, with `BOCWS_TEST_INSTALLED` naming the wheel; the
source-tree run builds a wheel here and checks its file list.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from importlib import metadata
from pathlib import Path

import pytest

import bocws

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "bocws"
INSTALLED = os.environ.get("BOCWS_TEST_INSTALLED")


def _package_files(names: list[str]) -> set[str]:
    """The files of the package `bocws` among `names` (paths with `/`), bytecode left out."""
    return {
        name
        for name in names
        if name.startswith("bocws/") and "__pycache__" not in name and not name.endswith(".pyc")
    }


def _not_in_the_package(names: list[str]) -> set[str]:
    """Files in the wheel outside `bocws/` and its `.dist-info` directory."""
    return {
        name
        for name in names
        if not name.startswith("bocws/") and not name.split("/")[0].endswith(".dist-info")
    }


def test_version_comes_from_the_package_metadata() -> None:
    assert bocws.__version__ == metadata.version("bocws")
    assert bocws.__version__[0].isdigit()


@pytest.mark.skipif(not SOURCE.is_dir(), reason="no source tree here: the installed wheel runs")
def test_the_wheel_holds_every_module_and_py_typed_and_nothing_else(tmp_path: Path) -> None:
    """Build the wheel from the source tree; its files are exactly the package's."""
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("bocws-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    source = {
        path.relative_to(ROOT).as_posix()
        for path in SOURCE.rglob("*")
        if path.is_file()
        and (path.suffix == ".py" or path.name == "py.typed")
        and "__pycache__" not in path.parts
    }
    assert "bocws/broadcast/__init__.py" in source
    assert _package_files(names) == source
    assert _not_in_the_package(names) == set()


@pytest.mark.skipif(not INSTALLED, reason="the source-tree run; .ci/test-wheel runs this one")
def test_the_suite_imports_bocws_from_the_installed_wheel() -> None:
    """Under .ci/test-wheel: bocws comes from site-packages, installed from the wheel."""
    assert INSTALLED is not None
    package = Path(bocws.__file__).resolve().parent
    assert "site-packages" in package.parts
    assert not package.is_relative_to(ROOT)
    installed = [file.as_posix() for file in metadata.files("bocws") or []]
    files = _package_files(installed)
    assert {"bocws/__init__.py", "bocws/py.typed", "bocws/broadcast/__init__.py"} <= files
    assert _not_in_the_package(installed) == set()
    # What pip installed is this wheel, file for file.
    with zipfile.ZipFile(INSTALLED) as archive:
        assert _package_files(archive.namelist()) == files


@pytest.mark.skipif(not INSTALLED, reason="the source-tree run; .ci/test-wheel runs this one")
def test_servers_started_by_the_tests_import_the_installed_wheel() -> None:
    """A child process started from the tests' directory imports the same bocws."""
    found = subprocess.run(
        [sys.executable, "-c", "import bocws, bocws.broadcast; print(bocws.__file__)"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    assert Path(found).resolve() == Path(bocws.__file__).resolve()
