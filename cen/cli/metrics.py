"""``cen metrics``."""

from __future__ import annotations

import argparse
from pathlib import Path


def _cmd_metrics(args: argparse.Namespace) -> int:
    import json

    from cen import metrics

    if args.metrics_command == "setup-spice":
        dest = metrics.setup_spice(args.url or metrics.CORENLP_ZIP_URL, Path(args.dest) if args.dest else None)
        print(f"CoreNLP jars for SPICE in {dest}")
        return 0
    ev = metrics.evaluate_files(
        args.references, args.candidates, args.metrics or None, duplicates=args.duplicates,
        missing=args.missing, extra=args.extra, empty=args.empty)
    table = ev.bootstrap(args.bootstrap, seed=args.seed) if args.bootstrap else None
    for key, value in ev.scores.items():
        ci = f"  [{table.loc[key, 'low']:.4f}, {table.loc[key, 'high']:.4f}]" if table is not None else ""
        print(f"{key:8s} {value:.4f}{ci}")
    for key, reason in ev.not_computed.items():
        print(f"{key:8s} not computed: {reason}")
    for note in ev.notes:
        print(f"note: {note}")
    if args.per_image:
        ev.per_image.to_csv(args.per_image)
    if args.json:
        Path(args.json).write_text(json.dumps({
            "scores": ev.scores, "not_computed": ev.not_computed, "tokenizer": ev.tokenizer, "notes": ev.notes,
            "n_images": len(ev.per_image),
            "intervals": table.reset_index().to_dict(orient="records") if table is not None else None}, indent=2))
    return 0


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "metrics", help="COCO caption metrics (BLEU, METEOR, ROUGE-L, CIDEr-D, SPICE) with bootstrap intervals",
        description="Score caption files with cen.metrics (equal to pycocoevalcap's scorers) or install SPICE's jars.")
    g = p.add_subparsers(dest="metrics_command", required=True, metavar="SUBCOMMAND")
    e = g.add_parser("evaluate", help="score a candidates file against a references file",
                     description="Files: COCO results JSON, COCO annotations JSON, ChatEarthNet release JSON "
                     "({image, caption} records), JSON lines or CSV (id and caption columns).")
    e.add_argument("references")
    e.add_argument("candidates")
    e.add_argument("--metrics", nargs="*", help="Bleu METEOR ROUGE_L CIDEr SPICE [all]")
    e.add_argument("--missing", default="error", choices=["error", "empty", "drop"],
                   help="reference images without a candidate [error]")
    e.add_argument("--extra", default="error", choices=["error", "ignore"], help="candidates without references [error]")
    e.add_argument("--empty", default="error", choices=["error", "keep"], help="empty captions [error]")
    e.add_argument("--duplicates", default="error", choices=["error", "first", "last"],
                   help="several candidates for one image [error]")
    e.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for 95%% intervals, 0 = none [1000]")
    e.add_argument("--seed", type=int, default=0, help="bootstrap seed [0]")
    e.add_argument("--per-image", help="write the per-image scores to this CSV")
    e.add_argument("--json", help="write corpus scores, intervals and reasons to this JSON file")
    s = g.add_parser("setup-spice", help="download the Stanford CoreNLP 3.6.0 jars SPICE needs (needs internet)")
    s.add_argument("--url", help="the CoreNLP 3.6.0 zip or a mirror of it [Stanford's own]")
    s.add_argument("--dest", help="folder for the jars [<cache>/spice; or set $CEN_SPICE_CORENLP_DIR]")
    p.set_defaults(func=_cmd_metrics)
