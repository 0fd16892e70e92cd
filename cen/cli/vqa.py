"""``cen vqa``: label-grounded questions (``build``) and their scoring (``evaluate``)."""

from __future__ import annotations

import argparse
from pathlib import Path


def _cmd_build(args: argparse.Namespace) -> int:
    from cen import vqa

    result = vqa.build_questions(args.workdir, per_tile=args.per_tile, tasks=args.tasks, seed=args.seed,
                                 out=args.out, progress=not args.quiet)
    print(result.summary())
    return 2 if result.failed else 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from cen.vqa import scoring
    from cen.vqa.build import read_questions

    questions = read_questions(args.questions)
    predictions = scoring.read_predictions(args.predictions)
    ev = scoring.evaluate(questions, predictions, resamples=args.resamples, seed=args.seed)
    print(ev.summary())
    print(ev.table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    if args.out:
        from cen.tables import write_bytes

        write_bytes(args.out, ev.table.to_csv(index=False).encode())
        print(f"-> {args.out}")
    return 2 if ev.n_missing else 0


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "vqa",
        help="questions and answers computed from the label maps, and their scoring",
        description="build: tiles.parquet + label maps -> vqa.parquet (one row per question, answers exact by "
        "construction). evaluate: accuracy per task and format of a predictions file, with bootstrap intervals.",
    )
    vs = p.add_subparsers(dest="vqa_command", required=True, metavar="SUBCOMMAND")
    b = vs.add_parser("build", help="write WORKDIR/vqa.parquet from WORKDIR/tiles.parquet and its label maps")
    b.add_argument("workdir", type=Path, help="run folder with tiles.parquet")
    b.add_argument("--per-tile", type=int, default=10, help="questions per tile, shared out over the tasks [10]")
    b.add_argument("--tasks", nargs="+", metavar="TASK", help="only these tasks [all]: presence area counting "
                   "dominant adjacency relative_position location season referring")
    b.add_argument("--seed", type=int, default=0, help="random seed (same seed, same questions) [0]")
    b.add_argument("-o", "--out", type=Path, help="output Parquet [WORKDIR/vqa.parquet]")
    b.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    b.set_defaults(func=_cmd_build)
    e = vs.add_parser("evaluate", help="score predictions against vqa.parquet")
    e.add_argument("questions", type=Path, help="vqa.parquet")
    e.add_argument("predictions", type=Path, help="predictions: Parquet, CSV or JSON lines with columns qid, prediction")
    e.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples [1000]")
    e.add_argument("--seed", type=int, default=0, help="bootstrap seed [0]")
    e.add_argument("-o", "--out", type=Path, help="also write the table as CSV")
    e.set_defaults(func=_cmd_evaluate)
