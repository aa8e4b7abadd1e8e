"""The interpreters the benchmarks run their variants in.

bocws, Starlette and Litestar share the project's own interpreter. Bocadillo 0.18.3
needs a 2019 Starlette (`<0.13`), so it gets a virtualenv of its own, made on first
use under `.bench-venvs/` and reused afterwards.
"""

from __future__ import annotations

import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENVS = ROOT / ".bench-venvs"

#: Bocadillo's own dependencies, installed by hand because its pins (an old uvicorn)
#: do not build on current Python; a current uvicorn serves it instead.
BOCADILLO_PACKAGES = [
    "starlette>=0.12.2,<0.13",
    "typesystem<0.3",
    "aiodine>=1.2.5,<2",
    "jinja2",
    "whitenoise",
    "requests",
    "python-multipart",
    "uvicorn>=0.30",
]


def bocadillo_python() -> Path:
    """The interpreter of the Bocadillo virtualenv, creating it if needed."""
    home = VENVS / "bocadillo"
    python = home / "bin" / "python"
    marker = home / "ready"
    if marker.exists():
        return python
    venv.EnvBuilder(with_pip=True, clear=True).create(home)
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, *BOCADILLO_PACKAGES], check=True)
    subprocess.run([*pip, "--no-deps", "bocadillo==0.18.3"], check=True)
    subprocess.run([str(python), "-c", "import bocadillo"], check=True)
    marker.write_text("bocadillo 0.18.3\n")
    return python


def project_python() -> Path:
    """The interpreter running the harness: bocws, Starlette, Litestar."""
    return Path(sys.executable)


if __name__ == "__main__":
    print(bocadillo_python())  # noqa: T201 - the path, for scripts
