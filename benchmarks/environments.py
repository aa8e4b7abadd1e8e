"""The interpreters the benchmarks run their variants in.

bocws, Starlette and Litestar share the project's own interpreter. Bocadillo 0.18.3
needs a 2019 Starlette (`<0.13`), so it gets a virtualenv of its own, made on first
use under `.bench-venvs/` and reused afterwards.
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENVS = ROOT / ".bench-venvs"
#: Bocadillo's virtualenv, its interpreter, and the file saying it is made (and with what).
BOCADILLO_HOME = VENVS / "bocadillo"
BOCADILLO_PYTHON = BOCADILLO_HOME / "bin" / "python"
BOCADILLO_READY = BOCADILLO_HOME / "ready"

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
]

#: Not Bocadillo's: the server stack and the raw baseline's JSON library, at the very
#: versions of the project's interpreter, so that every variant runs on the same
#: uvicorn, WebSocket implementations, event loop and JSON (see worker.py).
SHARED_PACKAGES = ["uvicorn", "websockets", "wsproto", "uvloop", "httptools", "orjson", "granian"]


def _shared_pins() -> list[str]:
    pins = []
    for name in SHARED_PACKAGES:
        try:
            pins.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            pins.append(name)  # not in the project's interpreter: any version
    return pins


NO_BOCADILLO = "no Bocadillo virtualenv: make it with python -m benchmarks.environments"


def bocadillo_ready() -> bool:
    """Whether the Bocadillo virtualenv exists; under CI (`CI` set) it must.

    Raises:
        RuntimeError: under CI, the virtualenv was not made first.
    """
    ready = BOCADILLO_READY.exists()
    if not ready and os.environ.get("CI"):
        raise RuntimeError(f"CI runs every benchmark variant, Bocadillo's too: {NO_BOCADILLO}")
    return ready


def bocadillo_python() -> Path:
    """The interpreter of the Bocadillo virtualenv, creating it if needed.

    It is made anew when the pinned versions change (say, after a uvicorn upgrade).
    """
    packages = [*BOCADILLO_PACKAGES, *_shared_pins()]
    wanted = "bocadillo==0.18.3\n" + "\n".join(packages) + "\n"
    if BOCADILLO_READY.exists() and BOCADILLO_READY.read_text() == wanted:
        return BOCADILLO_PYTHON
    venv.EnvBuilder(with_pip=True, clear=True).create(BOCADILLO_HOME)
    python = str(BOCADILLO_PYTHON)
    pip = [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, *packages], check=True)
    subprocess.run([*pip, "--no-deps", "bocadillo==0.18.3"], check=True)
    subprocess.run([python, "-c", "import bocadillo, uvicorn, websockets"], check=True)
    BOCADILLO_READY.write_text(wanted)
    return BOCADILLO_PYTHON


def project_python() -> Path:
    """The interpreter running the harness: bocws, Starlette, Litestar."""
    return Path(sys.executable)


if __name__ == "__main__":
    print(bocadillo_python())  # noqa: T201 - the path, for scripts
