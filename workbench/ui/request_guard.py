"""Checks every request to the dashboard's Flask server passes before any work is done.

- Host allowlist (against DNS rebinding: a page on attacker.example whose name is re-pointed
  at 127.0.0.1 makes the browser send `Host: attacker.example` to this server). Only the
  names the server was started for are answered: `127.0.0.1`, `localhost`, `[::1]`, plus the
  explicit `--host` and any `--allow-host` names, each with or without a `:port`. A missing or
  malformed Host header gets 400, any other name 421 (Misdirected Request), with a short plain
  text body. Names compare case-insensitively; IP literals in canonical form (IPv6 in
  brackets). A wildcard bind address (`0.0.0.0`, `::`) is not a name and allows nothing.
- Body cap: Flask's `MAX_CONTENT_LENGTH` = `MAX_BODY_BYTES` (4 MiB; the biggest legitimate
  bodies are circuit JSON uploads, base64-encoded, and the circuit graph figure the browser
  sends back), so a larger body gets 413 before it is read, never a 500. A chunked body
  (no Content-Length) is read up to the cap first and refused with 413 past it.
- Callback shape: a POST to `/_dash-update-component` must be a JSON object with an `output`
  string and `inputs`/`state` lists of `{id, property}` objects, else 400. A request of that
  shape that Dash still cannot dispatch (inputs that do not match the callback, an unknown
  output) is answered 400 as well, with the traceback in the server log: never a 500.
"""

from __future__ import annotations

import io
import ipaddress
import logging
import re
from collections.abc import Iterable

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)
CALLBACK_ROUTE = "/_dash-update-component"
MALFORMED_CALLBACK = (
    "Bad Request: malformed callback request (reload the page; the dashboard answers only "
    "the requests its own pages send)"
)

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")
MAX_BODY_BYTES = 4 * 2**20
MISDIRECTED = (
    "Misdirected Request: this dashboard answers only to 127.0.0.1, localhost, [::1] and "
    "the names given with --host / --allow-host"
)
_PORT = re.compile(r"[0-9]{1,5}")
_NAME = re.compile(r"[a-z0-9]([a-z0-9._-]{0,251}[a-z0-9])?")


def normalise_host(host: str) -> str | None:
    """`host` (a Host header value, or a name given on the command line) as a comparable name
    without its port, or None if it is not a well-formed host."""
    host = host.strip().lower()
    if host.startswith("["):
        end = host.find("]")
        name, rest = host[1:end], host[end + 1 :]
        if end < 0 or (rest and not (rest[0] == ":" and _PORT.fullmatch(rest[1:]))):
            return None
        try:
            return f"[{ipaddress.IPv6Address(name).compressed}]"
        except ValueError:
            return None
    if host.count(":") > 1:  # a bare IPv6 literal, as given to --host
        try:
            return f"[{ipaddress.IPv6Address(host).compressed}]"
        except ValueError:
            return None
    name, _, port = host.partition(":")
    if ":" in host and not _PORT.fullmatch(port):
        return None
    if not _NAME.fullmatch(name):
        return None
    try:
        return ipaddress.IPv4Address(name).compressed
    except ValueError:
        return name


def allowed_hosts(extra: Iterable[str] = ()) -> frozenset[str]:
    """The loopback names plus `extra` (normalised; wildcard bind addresses are left out)."""
    names = set()
    for host in [*LOOPBACK_HOSTS, *([extra] if isinstance(extra, str) else extra)]:
        name = normalise_host(host)
        if name is None:
            raise ValueError(f"host: {host!r} is not a host name or IP address")
        if name not in ("0.0.0.0", "[::]"):
            names.add(name)
    return frozenset(names)


def install(server: Flask, hosts: Iterable[str], *, max_body_bytes: int = MAX_BODY_BYTES) -> None:
    """Refuse requests to other hosts and bodies over `max_body_bytes` on `server`."""
    allowed = frozenset(hosts)
    server.config["MAX_CONTENT_LENGTH"] = max_body_bytes

    def check_request() -> Response | None:
        raw = request.environ.get("HTTP_HOST")
        if not raw:
            return _plain("Bad Request: missing Host header", 400)
        name = normalise_host(raw)
        if name is None:
            return _plain("Bad Request: malformed Host header", 400)
        if name not in allowed:
            return _plain(MISDIRECTED, 421)  # names no configured host: nothing to learn
        too_large = _plain(f"Request Entity Too Large: the limit is {max_body_bytes} bytes", 413)
        if (request.content_length or 0) > max_body_bytes:
            return too_large
        if request.content_length is None and "wsgi.input_terminated" in request.environ:
            # a chunked body: Werkzeug would silently cut it at the limit, so read it here
            body = request.environ["wsgi.input"].read(max_body_bytes + 1)
            if len(body) > max_body_bytes:
                return too_large
            request.environ["wsgi.input"] = io.BytesIO(body)
        if request.path.endswith(CALLBACK_ROUTE) and not _callback_body_ok():
            return _plain(MALFORMED_CALLBACK, 400)
        return None

    def callback_failed(err: Exception) -> Response:
        """A callback request Dash could not dispatch (inputs that do not match the callback,
        a forged output): 400 with one line, the traceback in the server log, never a 500."""
        if isinstance(err, HTTPException):
            return err
        if not request.path.endswith(CALLBACK_ROUTE):
            log.exception("request to %s failed", request.path)
            return _plain("Internal Server Error (see the server log)", 500)
        log.warning("callback request refused: %s: %s", type(err).__name__, err)
        log.debug("callback request traceback", exc_info=True)
        return _plain(MALFORMED_CALLBACK, 400)

    server.before_request(check_request)
    server.register_error_handler(Exception, callback_failed)


def _callback_body_ok() -> bool:
    """The shape every callback request of the Dash renderer has: a JSON object with an
    `output` string and `inputs` (and optional `state`) lists of `{id, property}` objects."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("output"), str):
        return False
    for field in ("inputs", "state"):
        items = body.get(field, [])
        if not isinstance(items, list):
            return False
        for item in items:
            entries = item if isinstance(item, list) else [item]  # pattern-matching ids
            if not all(isinstance(e, dict) and "id" in e and "property" in e for e in entries):
                return False
    changed = body.get("changedPropIds", [])
    return isinstance(changed, list) and all(isinstance(c, str) for c in changed)


def _plain(text: str, status: int) -> Response:
    return Response(text + "\n", status=status, mimetype="text/plain")


__all__ = [
    "CALLBACK_ROUTE",
    "LOOPBACK_HOSTS",
    "MAX_BODY_BYTES",
    "allowed_hosts",
    "install",
    "normalise_host",
]
