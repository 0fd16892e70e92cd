"""``cen verify``."""

from __future__ import annotations

import argparse
from pathlib import Path


def _eligibility_line(workdir: Path) -> str | None:
    """The eligibility line of the workdir's tiles table, if it has one."""
    tiles = workdir / "tiles.parquet"
    if not tiles.exists():
        return None
    import pandas as pd

    from cen.tiling import eligibility_summary

    return eligibility_summary(pd.read_parquet(tiles))


def _cmd_verify(args: argparse.Namespace) -> int:
    import json

    import pandas as pd

    from cen import verify
    from cen.stats import read_stats

    workdir = Path(args.workdir)
    if not workdir.is_dir():
        raise FileNotFoundError(f"{workdir}: no such workdir (it should hold captions.parquet and stats.parquet)")
    if args.verify_command == "run":
        decisions = None
        if args.decisions:
            try:
                decisions = json.loads(Path(args.decisions).read_text(encoding="utf-8"))
            except json.JSONDecodeError as exc:
                raise ValueError(f"{args.decisions}: not JSON ({exc.msg}, line {exc.lineno})") from exc
            if not isinstance(decisions, list):
                raise ValueError(f"{args.decisions}: expected a JSON list of {{key, action, text?, note?}}")
        line = _eligibility_line(workdir)
        if line:
            print(line)
        result = verify.table.verify_workdir(workdir, decisions, reviewer=args.reviewer)
        print(f"{len(result.table)} captions of {result.table['tile_id'].nunique()} tiles verified")
        print(result.counts_per_check().to_string(index=False))
        print(result.table["verification_status"].value_counts().to_string())
        print(f"wrote {workdir / 'captions_verified.parquet'}; {len(result.review_queue())} captions await review")
        return 0
    captions = verify.read_captions(workdir / "captions.parquet")
    if args.verify_command == "decide":
        decision = {"key": args.key, "action": args.action, "text": args.text, "note": args.note}
        written = verify.apply_decisions(verify.DecisionLog(workdir / "decisions.jsonl"), [decision],
                                         reviewer=args.reviewer, known_keys=verify.caption_keys(captions))
        print(f"{args.action} {args.key}: {'logged' if written else 'already logged'}")
        return 0
    if args.column not in captions.columns:
        raise LookupError(f"{workdir / 'captions.parquet'}: no column {args.column!r} to score "
                          f"(columns: {', '.join(map(str, captions.columns))})")
    counts = verify.align_counts(captions, read_stats(workdir / "stats.parquet"), source=str(workdir / "stats.parquet"))
    scores = verify.score_table(captions[args.column], counts, progress=True)
    print(json.dumps(verify.summarize_scores(scores), indent=2))
    if args.out:
        pd.concat([captions[["tile_id", "paradigm"]], scores], axis=1).to_csv(args.out, index=False)
    return 0


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "verify", help="check captions against the label statistics, fix, review, score",
        description="Caption verification (cen.verify) on a run's workdir: captions.parquet + stats.parquet.")
    g = p.add_subparsers(dest="verify_command", required=True, metavar="SUBCOMMAND")
    r = g.add_parser("run", help="run all checks and safe fixes; write captions_verified.parquet and decisions.jsonl")
    d = g.add_parser("decide", help="log a reviewer decision (accept / edit / reject) in decisions.jsonl")
    d.add_argument("key", help="caption key tile_id|paradigm (see the review queue)")
    d.add_argument("action", choices=["accept", "edit", "reject"])
    d.add_argument("--text", help="the new caption text (edit)")
    d.add_argument("--note", default="", help="why")
    s = g.add_parser("score", help="label-consistency scores of the captions (any model's) in the workdir")
    s.add_argument("--column", default="text", help="caption column to score [text]")
    s.add_argument("--out", help="write per-caption scores to this CSV")
    for q in (r, d, s):
        q.add_argument("--workdir", default="build/demo", help="folder with captions.parquet and stats.parquet [build/demo]")
    r.add_argument("--decisions", help="JSON file: list of {key, action, text?, note?} to log before verifying")
    r.add_argument("--reviewer", help="reviewer name stored with --decisions")
    d.add_argument("--reviewer", required=True, help="reviewer name stored with the decision")
    p.set_defaults(func=_cmd_verify)
