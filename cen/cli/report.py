"""``cen report``."""

from __future__ import annotations

import argparse
from pathlib import Path


def _cmd_report(args: argparse.Namespace) -> int:
    from cen.report import run_report

    results = run_report(
        args.profile,
        out_dir=Path(args.out) if args.out else None,
        notebooks=args.notebooks or None,
        html_output=not args.no_html,
    )
    out = Path(results[0].output).parent
    print(f"{len(results)} notebooks executed; open {out / 'index.html'}")
    return 0


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        help="execute the numbered notebooks with papermill under a profile",
        description="Execute notebooks/NN_*.ipynb in order with a profile's parameters; write executed "
        "notebooks, HTML, records.json and index.html to reports/<profile>/.",
    )
    p.add_argument("--profile", default="demo", help="built-in profile (demo, smoke) or a YAML file [demo]")
    p.add_argument("--out", help="output folder [reports/<profile>]")
    p.add_argument("--no-html", action="store_true", help="skip the HTML conversion")
    p.add_argument("notebooks", nargs="*", help="only these notebooks (stems or two-digit numbers)")
    p.set_defaults(func=_cmd_report)
