"""``cen stats``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _cmd_stats(args: argparse.Namespace) -> int:
    from cen import stats

    out = Path(args.out) if args.out else Path(args.tiles).parent / "stats.parquet"
    run = stats.run_stats_stage(args.tiles, out, compat=args.compat, seed=args.seed, force=args.force)
    table = run.table
    print(run.eligibility)
    print(f"{run.summary()} (stats_version {stats.STATS_VERSION}, compat={args.compat})")
    frame = stats.DatasetStats.from_table(table).class_frame().drop(columns=["colour", "class_index"])
    print(frame.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    if args.show:
        missing = sorted(set(args.show) - set(table["tile_id"].astype(str)))
        if missing:
            raise LookupError(f"{out}: no tile {missing[0]!r} ({len(missing)} of the --show tiles are not in the table)")
        shown = table[table["tile_id"].astype(str).isin(args.show)]
        print("\n" + stats.format_contexts(shown, n=len(shown)))
    if run.failures:
        first = run.failures[0]
        print(f"cen stats: {len(run.failures)} of {len(run.failures) + len(table)} eligible tiles failed, "
              f"e.g. {first['tile_id']}: {first['error']} (all in {run.failures_path})", file=sys.stderr)
        return 2
    return 0


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "stats",
        help="land-cover statistics and prompt contexts of a tiles table",
        description="tiles.parquet -> stats.parquet: class counts of each eligible label tile and its five regions, "
        "the GPT-3.5 and GPT-4V contexts (release-exact with --compat), and dataset-level class statistics. "
        "A tile that cannot be read is recorded in stats_failures.parquet beside the output and the others "
        "go on (exit 2); no eligible tile, or every tile failing, is an error (exit 1).",
    )
    p.add_argument("tiles", help="tiles.parquet (its eligible rows with a label_path get statistics)")
    p.add_argument("-o", "--out", help="output Parquet [stats.parquet beside the tiles table]")
    p.add_argument("--compat", action="store_true", help="reproduce the release's context texts byte for byte")
    p.add_argument("--seed", type=int, default=0, help="seed of the per-tile noun choice [0]")
    p.add_argument("--force", action="store_true", help="recompute even if the output is up to date")
    p.add_argument("--show", nargs="*", metavar="TILE_ID", help="print these tiles' contexts")
    p.set_defaults(func=_cmd_stats)
