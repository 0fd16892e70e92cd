"""``cen tiles``."""

from __future__ import annotations

import argparse
from pathlib import Path


def _cmd_tiles(args: argparse.Namespace) -> int:
    from cen import tiling
    from cen.sources import demo

    frame = demo.build_demo_tiles(args.workdir, smoke=args.smoke)
    print(tiling.tiles_summary(frame).to_string())
    print(f"-> {Path(args.workdir) / 'tiles.parquet'}")
    return 0


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tiles", help="build the embedded demo's tiles.parquet from the committed data")
    p.add_argument("action", choices=["demo"])
    p.add_argument("workdir", nargs="?", default="build/demo")
    p.add_argument("--smoke", action="store_true", help="a handful of tiles only")
    p.set_defaults(func=_cmd_tiles)
