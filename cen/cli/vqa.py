"""``cen vqa``: label-grounded questions (``build``), baselines, paraphrases and scoring (``evaluate``)."""

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


def _config(args: argparse.Namespace):
    from cen.generate import GenerateConfig

    return GenerateConfig(backend="openai", model=args.model, base_url=args.base_url, api_key_env=args.api_key_env,
                          concurrency=args.concurrency, budget_usd=args.budget, progress=not args.quiet)


def _questions_of(args: argparse.Namespace):
    from cen.vqa.build import read_questions

    questions = read_questions(args.workdir / "vqa.parquet")
    if args.split:
        questions = questions[questions["split"].isin(args.split)].reset_index(drop=True)
        if questions.empty:
            raise LookupError(f"{args.workdir / 'vqa.parquet'}: no question in split(s) {', '.join(args.split)}")
    if args.limit:
        questions = questions.head(args.limit)
    return questions


def _cmd_baseline(args: argparse.Namespace) -> int:
    from cen.tables import write_parquet
    from cen.vqa import baselines
    from cen.vqa.build import read_questions

    questions = _questions_of(args)
    out = args.out or args.workdir / f"vqa_predictions_{args.baseline}.parquet"
    failed = 0
    if args.baseline == "prior":
        train = read_questions(args.workdir / "vqa.parquet")
        preds = baselines.prior_baseline(questions, train[train["split"] == "train"] if (train["split"] == "train").any()
                                         else train)
    elif args.baseline == "oracle":
        preds = baselines.oracle_predictions(questions, args.workdir)
        preds["prediction"] = preds["prediction"].map(lambda v: None if v is None else str(v))
    else:
        preds, result = baselines.vlm_predictions(questions, args.workdir, _config(args), image=args.image)
        failed = int(preds["prediction"].isna().sum())
        print(result.summary())
    write_parquet(preds, out)
    print(f"{len(preds)} predictions ({args.baseline}) -> {out}" + (f"; {failed} without an answer" if failed else ""))
    return 2 if failed else 0


def _cmd_paraphrase(args: argparse.Namespace) -> int:
    from cen.tables import write_parquet
    from cen.vqa import paraphrase

    questions = _questions_of(args)
    table, report, result = paraphrase.paraphrase_questions(questions, _config(args))
    out = args.out or args.workdir / "vqa_paraphrased.parquet"
    write_parquet(table, out)
    write_parquet(report, out.with_name(f"{out.stem}_report.parquet"))
    counts = report["status"].value_counts().to_dict()
    print(f"{len(table)} questions: {counts.get('accepted', 0)} paraphrased, {counts.get('rejected', 0)} rejected by "
          f"the check, {counts.get('failed', 0)} failed (kept as they were) -> {out}; {result.summary()}")
    return 2 if counts.get("failed") else 0


def _model_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("workdir", type=Path, help="run folder with vqa.parquet and tiles.parquet")
    p.add_argument("--split", nargs="+", help="only questions of these splits")
    p.add_argument("--limit", type=int, help="only the first N questions")
    p.add_argument("--model", default="gpt-4o-mini", help="model id [gpt-4o-mini]")
    p.add_argument("--base-url", help="any OpenAI-compatible endpoint, e.g. http://localhost:8000/v1")
    p.add_argument("--api-key-env", default="OPENAI_API_KEY", help="environment variable holding the key")
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--budget", type=float, help="stop before spending more than this many USD")
    p.add_argument("-o", "--out", type=Path, help="output Parquet")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


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
    bl = vs.add_parser("baseline", help="predictions of a baseline: prior (no image), oracle (the labels) or vlm "
                       "(an OpenAI-compatible vision model)")
    _model_arguments(bl)
    bl.add_argument("baseline", choices=["prior", "oracle", "vlm"], help="which baseline")
    bl.add_argument("--image", choices=["auto", "rgb", "label"], default="auto",
                    help="vlm: the picture sent (auto: Sentinel-2 true colour where the tile has one, else the "
                    "label map) [auto]")
    bl.set_defaults(func=_cmd_baseline)
    pp = vs.add_parser("paraphrase", help="reword the questions with an LLM; a check keeps every answer exact")
    _model_arguments(pp)
    pp.set_defaults(func=_cmd_paraphrase)
