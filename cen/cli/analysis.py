"""``cen analysis``."""

from __future__ import annotations

import argparse
from pathlib import Path


def _cmd_analysis(args: argparse.Namespace) -> int:
    from cen import catalog

    if args.analysis_command == "datasets":
        table = catalog.load_datasets(args.csv or catalog.DATASETS_CSV)
        render = {"md": catalog.render_markdown, "html": catalog.render_html, "latex": catalog.render_latex}[args.format]
        text = render(table)
        if args.out:
            Path(args.out).write_text(text, encoding="utf-8")
            print(f"{len(table)} datasets -> {args.out}")
        else:
            print(text)
        return 0
    samples = catalog.load_samples(args.dataset, workdir=args.workdir, path=args.path, captions_path=args.captions,
                                   keep_uncaptioned=args.analysis_command == "map")
    if args.analysis_command == "captions":
        from cen import textstats

        st = textstats.caption_stats(samples[samples["text"].notna()], by=args.by, progress=True, total=len(samples))
        print(textstats.summary_table(st, by=args.by).round(2).to_string(index=False))
    else:
        from cen import maps

        m = maps.folium_map(samples, layer_col=args.layer, mode=args.mode, max_markers=args.max_markers,
                            offline=not args.online, classes_col="classes" if "classes" in samples.columns else None,
                            thumbnail_col="thumbnail" if "thumbnail" in samples.columns else None)
        out = maps.save_html(m, args.out)
        print(f"{m.cen_counts['samples']} samples ({m.cen_mode}, {m.cen_counts['markers']} markers) -> {out}")
    return 0


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("analysis", help="caption statistics, coverage maps and the dataset comparison table",
                       description="Caption statistics and an offline coverage map for the demo workdir, a "
                       "ChatEarthNet release folder or a tiles/captions Parquet pair; the comparison table.")
    g = p.add_subparsers(dest="analysis_command", required=True, metavar="SUBCOMMAND")
    src = argparse.ArgumentParser(add_help=False)
    src.add_argument("--dataset", default="demo", choices=["demo", "chatearthnet", "parquet"], help="[demo]")
    src.add_argument("--workdir", default="build/demo", help="demo: folder with tiles/captions.parquet [build/demo]")
    src.add_argument("--path", help="chatearthnet: release folder; parquet: tiles (or samples) Parquet")
    src.add_argument("--captions", help="parquet: captions Parquet (tile_id, text)")
    c = g.add_parser("captions", parents=[src], help="caption length, sentences and vocabulary per group")
    c.add_argument("--by", nargs="*", default=["version", "split"], help="grouping columns [version split]")
    m = g.add_parser("map", parents=[src], help="interactive coverage map as one HTML file (offline by default)")
    m.add_argument("-o", "--out", default="coverage_map.html", help="output HTML [coverage_map.html]")
    m.add_argument("--layer", default="split", help="one layer per value of this column [split]")
    m.add_argument("--mode", default="auto", choices=["auto", "markers", "cluster", "heat"])
    m.add_argument("--max-markers", type=int, default=2000, help="clickable markers at most [2000]")
    m.add_argument("--online", action="store_true", help="CDN Leaflet and OpenStreetMap tiles instead of inlined assets")
    d = g.add_parser("datasets", help="render the dataset comparison table (data/datasets.csv)")
    d.add_argument("--format", default="md", choices=["md", "html", "latex"])
    d.add_argument("--csv", help="another comparison table CSV")
    d.add_argument("--out", help="write to this file [stdout]")
    p.set_defaults(func=_cmd_analysis)
