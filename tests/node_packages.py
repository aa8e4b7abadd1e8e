"""npm packages the tests use, installed by `.ci/run` with `npm ci --prefix tests/FOLDER`.

`npm_package(folder, name)` is the installed package's directory. Without Node.js the
tests that need one skip, except under CI (`$CI` set), where they fail; with Node.js
but without the package, it is installed here (`npm ci`, from the lock file), and if
that fails the tests fail and say which command installs it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent


def npm_package(folder: str, name: str) -> Path:
    """The directory of npm package `name`, installed under `tests/<folder>/node_modules`."""
    install = f"npm ci --prefix tests/{folder}"
    if shutil.which("node") is None:
        message = f"no Node.js: install node and npm, then run `{install}` (CI does)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    installed = TESTS / folder / "node_modules" / name
    if not (installed / "package.json").exists():
        _install(folder, install)
    if not (installed / "package.json").exists():
        pytest.fail(f"npm package {name} is not installed: run `{install}`")
    return installed


def _install(folder: str, install: str) -> None:
    """Install the folder's locked packages, as `.ci/run` does, for a fresh clone whose
    tests run before anyone ran npm (the README's test command)."""
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail(f"no npm to install the tests' npm packages: run `{install}`")
    command = [npm, "ci", "--prefix", str(TESTS / folder)]
    command += ["--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    if done.returncode != 0:
        pytest.fail(f"`{install}` failed:\n{done.stdout}{done.stderr}")
