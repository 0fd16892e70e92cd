"""The ``cen`` command line: one module per subcommand group, each with an ``add(sub)``.

Every subcommand has ``--help``. Library functions do the work; a command module only parses
arguments and prints, so anything the CLI does can be done from a notebook too. Expected
failures (bad input, a missing table, a server that refuses) end as one line
``cen <command>: <what went wrong>`` and exit 1; Ctrl-C ends with exit 130. Set
``CEN_DEBUG=1`` to see the traceback instead.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Callable

from cen.cli import analysis, export, generate, metrics, release, report, sample, scale, stats, tiles, verify
from cen.cli import vqa as vqa_cli

COMMAND_GROUPS: list[Callable[[argparse._SubParsersAction], None]] = [
    report.add,
    release.add,
    sample.add,
    tiles.add,
    scale.add,
    metrics.add,
    verify.add,
    generate.add,
    stats.add,
    analysis.add,
    export.add,
    vqa_cli.add,
]
"""Functions that add one subcommand (group) each; a new stage appends its module's ``add``."""

EXPECTED_ERRORS: tuple[type[BaseException], ...] = (ValueError, RuntimeError, OSError, LookupError, ImportError)
"""What a command turns into one line and exit 1: every ``cen`` error derives from one of these."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cen", description="ChatEarthNet toolkit")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in COMMAND_GROUPS:
        add(sub)
    return parser


def error_line(exc: BaseException) -> str:
    """The one-line text of an expected error (a ``KeyError``'s key without its quotes)."""
    if isinstance(exc, KeyError) and exc.args and isinstance(exc.args[0], str):
        text = exc.args[0]
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(text.split())


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt as exc:  # a stage may say how far it got: "interrupted after N captions"
        print(f"\ncen {args.command}: {str(exc) or 'interrupted'}; run the same command to resume", file=sys.stderr)
        return 130
    except EXPECTED_ERRORS as exc:
        if os.environ.get("CEN_DEBUG"):
            raise
        print(f"cen {args.command}: {error_line(exc)}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
