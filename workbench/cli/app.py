"""`workbench app`: serve the dashboard (127.0.0.1:8050 unless told otherwise).

Checkpoints never run their own code unless `--trust-remote-code` is given here; the browser
cannot turn it on. The browser opens checkpoint folders only inside `--models-dir` folders
(default: the current folder) and hub ids only with `--allow-hub`. Requests are answered only when their Host header names 127.0.0.1,
localhost, [::1], the `--host` served on, or an `--allow-host` name (against DNS rebinding). The per-request access log is off unless `--access-log` is given.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from workbench.cli._common import UsageError


def run(args: argparse.Namespace) -> int:
    """Run `workbench app` with parsed `args`; returns the exit code."""
    if not 0 < args.port < 65536:
        raise UsageError(f"--port: {args.port} is not a valid port (1-65535)")
    from workbench.ui import request_guard, serve

    try:
        request_guard.allowed_hosts([args.host, *args.allow_host])
    except ValueError as err:
        raise UsageError(f"--host/--allow-host: {err}") from None
    serve(
        host=args.host,
        port=args.port,
        trust_remote_code=args.trust_remote_code,
        allowed_hosts=list(args.allow_host),
        models_dirs=_folders(args.models_dir),
        allow_hub=args.allow_hub,
        access_log=args.access_log,
    )
    return 0


def _folders(paths: list[str]) -> list[str]:
    """The `--models-dir` folders, each checked to exist before the server starts."""
    for path in paths:
        if not Path(path).expanduser().is_dir():
            raise UsageError(f"--models-dir: {path} is not a folder")
    return paths


def register(sub, json_flag) -> None:
    """Add the `app` subcommand to the `workbench` parser's subparsers `sub`."""
    app = sub.add_parser("app", help="serve the dashboard")
    app.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    app.add_argument("--port", type=int, default=8050, help="port (default 8050)")
    app.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="NAME",
        help="also answer requests addressed to this host name (repeatable; "
        "127.0.0.1, localhost, [::1] and --host are always answered)",
    )
    app.add_argument(
        "--models-dir",
        action="append",
        default=[],
        metavar="DIR",
        help="a folder whose checkpoints the browser may open (repeatable; default: the "
        "current folder); zoo models are always available",
    )
    app.add_argument(
        "--allow-hub",
        action="store_true",
        help="let the browser load hub ids (downloads; off by default)",
    )
    app.add_argument(
        "--access-log",
        action="store_true",
        help="print one line per HTTP request (off by default: the log stays quiet)",
    )
    app.add_argument(
        "--trust-remote-code",
        action="store_true",
        help="let local/hub checkpoints run their own Python code (off by default)",
    )
    app.set_defaults(func=run)
