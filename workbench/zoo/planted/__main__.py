"""`python -m workbench.zoo.planted build [NAME ...] [--out DIR]`: (re)write the checkpoints."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from workbench.zoo import CHECKPOINT_DIR
from workbench.zoo.planted.build import build
from workbench.zoo.planted.designs import SPECS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workbench.zoo.planted")
    sub = parser.add_subparsers(dest="command", required=True)
    cmd = sub.add_parser("build", help="compile planted models into checkpoint folders")
    cmd.add_argument("names", nargs="*", help=f"default: all of {', '.join(SPECS)}")
    cmd.add_argument("--out", type=Path, default=CHECKPOINT_DIR, help="parent folder")
    args = parser.parse_args(argv)
    unknown = [name for name in args.names if name not in SPECS]
    if unknown:
        parser.error(f"unknown planted model {unknown[0]!r}; choose from {', '.join(SPECS)}")
    for name in args.names or list(SPECS):
        card = build(name, args.out / name)
        print(json.dumps({name: card["metrics"]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
