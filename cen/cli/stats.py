"""``cen stats``."""

from __future__ import annotations

import argparse
from pathlib import Path


def _cmd_stats(args: argparse.Namespace) -> int:
    from cen import stats

    out = Path(args.out) if args.out else Path(args.tiles).parent / "stats.parquet"
    table = stats.compute_stats(args.tiles, out, compat=args.compat, seed=args.seed, force=args.force)
    print(f"{len(table)} tiles -> {out} (stats_version {stats.STATS_VERSION}, compat={args.compat})")
    frame = stats.DatasetStats.from_table(table).class_frame().drop(columns=["colour", "class_index"])
    print(frame.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    if args.show:
        missing = sorted(set(args.show) - set(table["tile_id"].astype(str)))
        if missing:
            raise LookupError(f"{out}: no tile {missing[0]!r} ({len(missing)} of the --show tiles are not in the table)")
        shown = table[table["tile_id"].astype(str).isin(args.show)]
        print("\n" + stats.format_contexts(shown, n=len(shown)))
    return 0


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "stats",
        help="land-cover statistics and prompt contexts of a tiles table",
        description="tiles.parquet -> stats.parquet: class counts of each label tile and its five regions, "
        "the GPT-3.5 and GPT-4V contexts (release-exact with --compat), and dataset-level class statistics.",
    )
    p.add_argument("tiles", help="tiles.parquet (rows with a label_path)")
    p.add_argument("-o", "--out", help="output Parquet [stats.parquet beside the tiles table]")
    p.add_argument("--compat", action="store_true", help="reproduce the release's context texts byte for byte")
    p.add_argument("--seed", type=int, default=0, help="seed of the per-tile noun choice [0]")
    p.add_argument("--force", action="store_true", help="recompute even if the output is up to date")
    p.add_argument("--show", nargs="*", metavar="TILE_ID", help="print these tiles' contexts")
    p.set_defaults(func=_cmd_stats)
