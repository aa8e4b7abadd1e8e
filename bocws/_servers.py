"""What bocws can learn of the ASGI server it runs under, where the server tells.

ASGI gives an application no way to ask its server for its settings. Where a server's
own command-line parser can read them (uvicorn's, when uvicorn's command started this
process), bocws reads them with it, to warn about settings at odds with the app's.
"""

from __future__ import annotations

import sys
from pathlib import Path

__all__ = ["server_message_limit"]


def _started_by_uvicorn(argv: list[str]) -> bool:
    """Whether `argv` is uvicorn's command line: `uvicorn ...` or `python -m uvicorn ...`."""
    if not argv:
        return False
    program = Path(argv[0])
    return program.name == "uvicorn" or program.parts[-2:] == ("uvicorn", "__main__.py")


def server_message_limit(argv: list[str] | None = None) -> tuple[str, int] | None:
    """The largest WebSocket message the server assembles, in bytes, and where it is
    set; `None` where it cannot be read.

    Read from uvicorn's command line (`--ws-max-size`, or `UVICORN_WS_MAX_SIZE`), with
    uvicorn's own parser, when uvicorn's command started this process (its workers
    inherit the command line).
    """
    argv = sys.argv if argv is None else argv
    if not _started_by_uvicorn(argv):
        return None
    try:
        from uvicorn.main import main
    except ImportError:  # pragma: no cover - uvicorn's command without uvicorn
        return None
    try:
        context = main.make_context("uvicorn", list(argv[1:]), resilient_parsing=True)
    except Exception:  # a command line uvicorn itself would refuse: nothing to say
        return None
    limit = context.params.get("ws_max_size")
    if not isinstance(limit, int) or isinstance(limit, bool):
        return None
    return "uvicorn's --ws-max-size", limit
