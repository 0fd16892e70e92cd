"""``cen release``."""

from __future__ import annotations

import argparse
from pathlib import Path


def _cmd_release(args: argparse.Namespace) -> int:
    from cen import tables
    from cen.sources import chatearthnet as rel

    if args.action == "download":
        kw = {"base_url": args.base_url} if args.base_url else {}
        files = rel.download_release(args.dest, images=args.images, extract=not args.no_extract, **kw)
        for name, path in files.items():
            print(f"{name}: {path} (md5 verified)")
        print(f"completeness: {rel.check_completeness(args.dest)}")
        return 0
    if args.action == "check":
        rep = rel.check_completeness(args.dest)
        print(rep)
        return 0 if rep.ok else 1
    frame = rel.load_captions(args.dest)
    out = tables.write_parquet(frame, args.out or Path(args.dest) / "captions_release.parquet")
    print(f"{len(frame)} captions -> {out}")
    for (v, s), (found, published) in rel.check_split_sizes(frame).items():
        print(f"note: caps_{v}_{s} has {found} records; the published release has {published}")
    return 0


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("release", help="download, check and load the published ChatEarthNet release (Zenodo 11003436)",
                       description="Download (resumable, md5-verified), check and load the ChatEarthNet release.")
    p.add_argument("action", choices=["download", "check", "load"])
    p.add_argument("dest", help="release folder")
    p.add_argument("--images", action="store_true", help="download: also the three image archives (~38 GB)")
    p.add_argument("--no-extract", action="store_true", help="download: keep the archives zipped")
    p.add_argument("--base-url", help="download: a mirror of the Zenodo files folder")
    p.add_argument("--out", help="load: output Parquet [DEST/captions_release.parquet]")
    p.set_defaults(func=_cmd_release)
