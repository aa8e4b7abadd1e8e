"""Which browser origins may open a WebSocket: the check against cross-site hijacking.

A page on another site can open a WebSocket to yours, and the browser sends your
cookies with it; only the `Origin` header tells the two apart. The rule:

- a handshake without an `Origin` header is allowed: browsers always send one, so it
  comes from a non-browser client, which could send any `Origin` it likes anyway;
- a same-origin handshake is allowed: the `Origin`'s host and port are the `Host`
  header's (the page was served by this very host), and an `http:` page does not
  open a `wss:` socket (a page that may have been tampered with on the way would
  reach a socket that gets the secure cookies);
- any other is allowed only if an entry matches it: `"https://example.com"` (exact),
  `"https://*.example.com"` (any subdomain, not `example.com` itself), an entry
  without a scheme (`"example.com"`, `"*.example.com"`) for both http and https, an
  entry without a port for the scheme's default port only, and `"*"` for any origin.

Pure: no I/O, and nothing of the project is imported.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = ["OriginPolicy"]

_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
_WEB_SCHEMES = ("http", "https")

# A host as browsers write it: ASCII labels (internationalised names in punycode) or
# a bracketed IPv6 address; no empty label, no trailing dot.
_HOST_NAME = r"(?P<host>\[[0-9a-f:.]+\]|[a-z0-9_-]+(?:\.[a-z0-9_-]+)*)"
_PORT = r"(?::(?P<port>[0-9]{1,5}))?"
# scheme://host[:port], as browsers send it: no path, no user information.
_ORIGIN = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*)://" + _HOST_NAME + _PORT)
# An entry: an origin with the scheme optional and "*." allowed before the host.
_ENTRY = re.compile(
    r"(?:(?P<scheme>[a-z][a-z0-9+.-]*)://)?(?P<wildcard>\*\.)?" + _HOST_NAME + _PORT
)
# The Host header: host[:port].
_HOST = re.compile(_HOST_NAME + _PORT)


def _port(scheme: str, port: str | None) -> int | None:
    return int(port) if port else _DEFAULT_PORTS.get(scheme)


class _Entry:
    """One allowed origin, or a `*.` pattern of them."""

    __slots__ = ("host", "port", "schemes", "wildcard")

    def __init__(self, text: str) -> None:
        match = _ENTRY.fullmatch(text.lower())
        if match is None:
            hint = ""
            if not text.isascii():
                hint = "; write internationalised names in punycode, as browsers send them"
            raise ValueError(
                f"allowed_origins entry {text!r} is not an origin: use 'https://example.com', "
                "'https://*.example.com' (subdomains), 'example.com' (http and https) or '*'" + hint
            )
        scheme = match["scheme"]
        if scheme in ("ws", "wss"):
            raise ValueError(
                f"allowed_origins entry {text!r}: an origin is the page's, which browsers send "
                f"as http or https; use {'https' if scheme == 'wss' else 'http'}://"
                f"{text.split('://', 1)[1]}"
            )
        if match["port"] and not 0 < int(match["port"]) < 65536:
            raise ValueError(f"allowed_origins entry {text!r}: the port is not 1-65535")
        self.schemes = (scheme,) if scheme else _WEB_SCHEMES
        self.wildcard = match["wildcard"] is not None
        self.host = match["host"]
        self.port = int(match["port"]) if match["port"] else None

    def matches(self, scheme: str, host: str, port: int | None) -> bool:
        if scheme not in self.schemes:
            return False
        if self.wildcard:
            if not host.endswith("." + self.host):
                return False
        elif host != self.host:
            return False
        expected = self.port if self.port is not None else _DEFAULT_PORTS.get(scheme)
        return port == expected


class OriginPolicy:
    """The origins allowed to open a WebSocket, checked against a handshake's headers.

    Parameters:
        allowed: origins and patterns (see the module's rule), or one as a string.

    Raises:
        ValueError: an entry is not an origin or a pattern.
        TypeError: `allowed` is not a string or an iterable of strings.

    Example:
        >>> policy = OriginPolicy(["https://example.com", "*.example.org"])
        >>> policy.allows({"headers": [(b"origin", b"https://chat.example.org")]})
        True
    """

    __slots__ = ("allow_any", "entries")

    def __init__(self, allowed: str | Iterable[str]) -> None:
        items: Sequence[object] = [allowed] if isinstance(allowed, str) else _listed(allowed)
        entries: list[_Entry] = []
        self.allow_any = False
        for item in items:
            if not isinstance(item, str):
                raise TypeError(f"allowed_origins must hold strings, got {item!r}")
            if item == "*":
                self.allow_any = True
            else:
                entries.append(_Entry(item))
        self.entries = tuple(entries)

    def __repr__(self) -> str:
        return f"<OriginPolicy {'*' if self.allow_any else len(self.entries)}>"

    def allows(self, scope: Mapping[str, Any]) -> bool:
        """Whether the handshake of `scope` (its `headers`) may proceed."""
        origin, host = _origin_and_host(scope)
        if origin is None:
            return True  # not a browser (see the module's rule)
        if self.allow_any:
            return True
        match = _ORIGIN.fullmatch(origin.lower())
        if match is None:
            return False  # "null" (sandboxed pages, file://) or malformed
        scheme = match["scheme"]
        origin_host = match["host"]
        port = _port(scheme, match["port"])
        if host is not None and not (scheme == "http" and scope.get("scheme") == "wss"):
            own = _HOST.fullmatch(host.lower())
            if (
                own is not None
                and own["host"] == origin_host
                and _port(scheme, own["port"]) == port
            ):
                return True  # same origin
        return any(entry.matches(scheme, origin_host, port) for entry in self.entries)


def _listed(allowed: object) -> Sequence[object]:
    if isinstance(allowed, (bytes, bytearray)) or not isinstance(allowed, Iterable):
        raise TypeError(
            "allowed_origins must be a string or an iterable of strings, "
            f"got {type(allowed).__name__}"
        )
    return list(allowed)


def _origin_and_host(scope: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """The `Origin` and `Host` headers of a handshake (an empty string if repeated)."""
    origin: str | None = None
    host: str | None = None
    for name, value in scope["headers"]:
        if name == b"origin":
            # Two Origin headers: no browser sends that; match nothing rather than guess.
            origin = "" if origin is not None else value.decode("latin-1")
        elif name == b"host":
            host = "" if host is not None else value.decode("latin-1")
    return origin, host
