"""`workbench app`: serve the dashboard (127.0.0.1:8050 unless told otherwise).

Checkpoints never run their own code unless `--trust-remote-code` is given here; the browser
cannot turn it on.
"""

from __future__ import annotations

import argparse

from workbench.cli._common import UsageError


def run(args: argparse.Namespace) -> int:
    if not 0 < args.port < 65536:
        raise UsageError(f"--port: {args.port} is not a valid port (1-65535)")
    from workbench.ui import serve

    serve(host=args.host, port=args.port, trust_remote_code=args.trust_remote_code)
    return 0


def register(sub, json_flag) -> None:
    app = sub.add_parser("app", help="serve the dashboard")
    app.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    app.add_argument("--port", type=int, default=8050, help="port (default 8050)")
    app.add_argument(
        "--trust-remote-code",
        action="store_true",
        help="let local/hub checkpoints run their own Python code (off by default)",
    )
    app.set_defaults(func=run)
