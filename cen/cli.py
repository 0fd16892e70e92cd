"""The ``cen`` command line. Each pipeline stage adds its subcommand group here.

Every subcommand has ``--help``. Library functions do the work; this module only parses
arguments, so anything the CLI does can be done from a notebook too.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable


def _cmd_report(args: argparse.Namespace) -> int:
    from cen.report import ReportError, run_report

    try:
        results = run_report(
            args.profile,
            out_dir=Path(args.out) if args.out else None,
            notebooks=args.notebooks or None,
            html_output=not args.no_html,
        )
    except ReportError as exc:
        print(f"cen report: {exc}", file=sys.stderr)
        return 1
    out = Path(results[0].output).parent
    print(f"{len(results)} notebooks executed; open {out / 'index.html'}")
    return 0


def _add_report(sub: argparse._SubParsersAction) -> None:
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


COMMAND_GROUPS: list[Callable[[argparse._SubParsersAction], None]] = [
    _add_report,
]
"""Functions that add one subcommand (group) each; stages append theirs."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cen", description="ChatEarthNet toolkit")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in COMMAND_GROUPS:
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
