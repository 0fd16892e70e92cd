"""``cen export``: a built workdir (or the downloaded release) in a trainer's or a geo tool's format."""

from __future__ import annotations

import argparse
import sys


def _cmd_export(args: argparse.Namespace) -> int:
    from cen.export import export, export_release

    if args.release:
        if len(args.paths) != 1:
            raise ValueError("with --release DIR give only the output folder: cen export --release DIR OUT --format FMT")
        out = args.paths[0]
        result = export_release(args.release, out, args.format, images=args.images, splits=args.split,
                                paradigms=args.paradigm, shard_size=args.shard_size, seed=args.seed,
                                progress=not args.quiet)
    else:
        if len(args.paths) != 2:
            raise ValueError("give the workdir and the output folder: cen export WORKDIR OUT --format FMT")
        workdir, out = args.paths
        result = export(workdir, out, args.format, images=args.images, splits=args.split, captions=args.captions,
                        paradigms=args.paradigm, label_as_image=not args.skip_label_only,
                        multispectral=args.multispectral, shard_size=args.shard_size, seed=args.seed,
                        extras=not args.no_extras, progress=not args.quiet)
    if result.tiles_line:
        print(result.tiles_line)
    print(result.summary())
    for note in result.notes:
        print(f"note: {note}")
    for _, row in result.failed.head(10).iterrows():
        print(f"failed: {row['set']} {row['key']}: {row['error']}", file=sys.stderr)
    return 2 if len(result.failed) else 0


def add(sub: argparse._SubParsersAction) -> None:
    from cen.export.run import FORMATS
    from cen.export.samples import IMAGE_CHOICES

    p = sub.add_parser(
        "export", help="export a workdir (or the ChatEarthNet release) as llava, coco, hf, wds or stac",
        description="Write the accepted captions of a built workdir (or the downloaded release with --release DIR) "
        "in a format trainers and geo tools load: llava (LLaVA/GeoChat conversation JSON + PNGs), coco (COCO "
        "captions JSON), hf (Hugging Face Parquet shards + dataset card + croissant.json), wds (WebDataset tars), "
        "stac (static STAC catalog + stac-geoparquet). Every folder gets a manifest.json (counts, sha256 of each "
        "file, cen version); a second run keeps what is unchanged. Exit 0: all done; 2: some samples failed; "
        "1: nothing exported or bad input.")
    p.add_argument("paths", nargs="+", metavar="WORKDIR OUT", help="the workdir and the output folder (only OUT with --release)")
    p.add_argument("--format", required=True, choices=FORMATS)
    p.add_argument("--release", metavar="DIR", help="export the downloaded ChatEarthNet release in DIR instead of a workdir")
    p.add_argument("--images", default="rgb", choices=list(IMAGE_CHOICES), help="band group(s) to export [rgb]")
    p.add_argument("--split", nargs="*", help="only these splits (train val test) [all]")
    p.add_argument("--captions", default="accepted", choices=["accepted", "all"],
                   help="accepted: captions verification accepted; all: every caption with its status [accepted]")
    p.add_argument("--paradigm", nargs="*", help="only these paradigms (gpt35 gpt4v) [all]")
    p.add_argument("--multispectral", action="store_true", help="also the nine-band GeoTIFF of each tile")
    p.add_argument("--skip-label-only", action="store_true",
                   help="skip tiles without a Sentinel-2 image instead of using their label map as image")
    p.add_argument("--no-extras", action="store_true", help="leave out vqa.parquet and captions_<variant>.parquet")
    p.add_argument("--shard-size", type=int, default=1000, help="rows per shard (hf, wds) [1000]")
    p.add_argument("--seed", type=int, default=0, help="seed of the LLaVA instruction draw [0]")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_export)
