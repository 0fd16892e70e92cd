"""``cen scale``."""

from __future__ import annotations

import argparse
from pathlib import Path


def _scale_client(args: argparse.Namespace):
    if args.sync:
        return "sync"
    return args.scheduler  # None: a LocalCluster sized to this machine (or --workers)


def _cmd_scale(args: argparse.Namespace) -> int:
    from cen import scale

    cluster = {"n_workers": args.workers} if args.workers else {}
    if args.scale_command == "stats":
        run = scale.run_stats(args.tiles, args.out, client=_scale_client(args), partition_size=args.partition_size,
                              compat=args.compat, seed=args.seed, merge_to=args.merge_to,
                              cluster_kwargs=cluster)
        print(f"{run.n_rows} tiles in {run.n_partitions} partitions ({run.n_computed} computed, "
              f"{run.n_skipped} already done) in {run.seconds:.1f} s -> {run.out_dir}")
    elif args.scale_command == "dataset-stats":
        acc = scale.dataset_stats(args.source, client=_scale_client(args), cluster_kwargs=cluster)
        print(acc.class_frame().drop(columns="colour").to_string(index=False))
    else:
        from cen import textstats

        st = scale.caption_stats(args.source, text_col=args.text_col, by=args.by or None,
                                 client=_scale_client(args), cluster_kwargs=cluster)
        print(textstats.summary_table(st, by=args.by or None).to_string(index=False))
    return 0


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "scale", help="run statistics on a Dask cluster (LocalCluster or an existing scheduler)",
        description="Per-tile statistics into partitioned Parquet (resumable), and dataset-level / caption "
        "statistics over partitioned tables in bounded memory, on Dask.")
    g = p.add_subparsers(dest="scale_command", required=True, metavar="SUBCOMMAND")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--scheduler", help="Dask scheduler address, e.g. tcp://10.0.0.5:8786 [start a LocalCluster]")
    common.add_argument("--workers", type=int, help="LocalCluster worker processes [one per CPU]")
    common.add_argument("--sync", action="store_true", help="no Dask: run in this process")
    s = g.add_parser("stats", parents=[common], help="tiles.parquet -> partitioned stats (+ stats.parquet)")
    s.add_argument("tiles", help="tiles.parquet")
    s.add_argument("out", help="folder for part-NNNNN.parquet (re-runs skip finished partitions)")
    s.add_argument("--merge-to", help="also write one stats table here, e.g. build/demo/stats.parquet")
    s.add_argument("--partition-size", type=int, default=512, help="tiles per task [512]")
    s.add_argument("--compat", action="store_true", help="contexts exactly as the release's scripts")
    s.add_argument("--seed", type=int, help="noun seed [cen.stats default]")
    d = g.add_parser("dataset-stats", parents=[common], help="class shares/presence over a stats table or folder")
    d.add_argument("source", help="stats.parquet or a folder of partitions")
    c = g.add_parser("caption-stats", parents=[common], help="caption statistics over a caption table or folder")
    c.add_argument("source", help="captions.parquet or a folder of partitions")
    c.add_argument("--text-col", default="text", help="caption column [text]")
    c.add_argument("--by", nargs="*", help="grouping columns, e.g. paradigm split")
    p.set_defaults(func=_cmd_scale)
