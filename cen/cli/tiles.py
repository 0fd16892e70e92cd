"""``cen tiles``: ``demo`` (the embedded demo) and ``raster`` (any label raster, local or remote)."""

from __future__ import annotations

import argparse
from pathlib import Path


def _cmd_demo(args: argparse.Namespace) -> int:
    from cen import tiling
    from cen.sources import demo

    frame = demo.build_demo_tiles(args.workdir, smoke=args.smoke)
    print(tiling.tiles_summary(frame).to_string())
    print(f"-> {Path(args.workdir) / 'tiles.parquet'}")
    return 0


def _cmd_raster(args: argparse.Namespace) -> int:
    from cen import tables
    from cen.sources import raster

    run = raster.tile_raster(args.src, args.workdir, bbox=args.bbox, min_labelled=args.min_labelled,
                             grid=args.grid, product=args.product, progress=not args.no_progress)
    resumed = f" ({run.n_resumed} finished by an earlier run, skipped)" if run.n_resumed else ""
    print(f"{run.summary}{resumed} -> {run.table}")
    if len(run.failures):
        first = run.failures.iloc[0]
        print(f"{len(run.failures)} tile(s) failed -> {tables.failures_path(run.table)}; first: {first['error']}")
    if len(run.tiles) == 0:
        raise RuntimeError(f"{args.src}: nothing was tiled ({len(run.failures)} tile(s) failed); "
                           "run the same command to retry")
    if not run.tiles["eligible"].any():
        reasons = run.tiles["exclude_reason"].value_counts()
        hint = ("no tile holds only codes of the class map: is --product right?"
                if len(reasons) and reasons.index[0] == "invalid_codes" else
                "lower --min-labelled or choose another --bbox")
        raise RuntimeError(f"{args.src}: no eligible tile ({run.summary}); {hint}")
    return 2 if len(run.failures) else 0


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tiles", help="build a tiles.parquet: the embedded demo, or any land-cover raster",
                       description="'demo' builds the embedded demo from the committed data; 'raster' tiles a "
                       "land-cover raster (local file, http(s):// or s3:// COG) into WORKDIR/tiles.parquet.")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    d = actions.add_parser("demo", help="the embedded demo's tiles.parquet from the committed data")
    d.add_argument("workdir", nargs="?", default="build/demo")
    d.add_argument("--smoke", action="store_true", help="a handful of tiles only")
    d.set_defaults(func=_cmd_demo)
    r = actions.add_parser("raster", help="tile a land-cover raster (windowed, resumable)",
                           description="Cut a land-cover raster into 256 x 256 tiles (edge tiles padded with "
                           "nodata), record labelled_fraction / eligible / exclude_reason per tile, and write "
                           "WORKDIR/tiles.parquet and WORKDIR/tiles/*_label.{tif,png} (eligible tiles). "
                           "Re-running skips finished work. Exit 0: all tiled; 2: some tiles failed "
                           "(WORKDIR/tiles_failures.parquet); 1: bad arguments or nothing to use.")
    r.add_argument("src", metavar="SRC", help="label raster: path, http(s):// URL, s3://bucket/key or /vsi… path")
    r.add_argument("workdir", metavar="WORKDIR", help="output folder")
    r.add_argument("--bbox", type=float, nargs=4, metavar=("MINLON", "MINLAT", "MAXLON", "MAXLAT"),
                   help="tile only this lon/lat box [the whole raster]")
    r.add_argument("--min-labelled", type=float, default=0.9, metavar="F",
                   help="eligible when at least this share of a tile is labelled; 0 keeps every tile [0.9]")
    r.add_argument("--grid", choices=["native", "utm10"], default="native",
                   help="native: the raster's own pixels; utm10: a 10 m UTM grid (nearest) [native]")
    r.add_argument("--product", metavar="NAME|YAML",
                   help="class map: worldcover-v100, worldcover-v200, dynamic-world, esri-lulc or a YAML file "
                   "[WorldCover, version from the file name]")
    r.add_argument("--no-progress", action="store_true", help="no progress bar")
    r.set_defaults(func=_cmd_raster)
