"""``cen generate``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _cmd_generate(args: argparse.Namespace) -> int:
    from cen.generate.runner import GenerateConfig, build_workdir_requests, generate_for_workdir
    from cen.prompting import estimate_cost

    cfg = GenerateConfig(
        backend=args.backend, model=args.model, base_url=args.base_url, api_key_env=args.api_key_env,
        mode=args.mode, concurrency=args.concurrency, rpm=args.rpm, tpm=args.tpm, budget_usd=args.budget,
        max_retries=args.max_retries, temperature=args.temperature, store=not args.no_store,
    )
    paradigms = args.paradigm or ["gpt35"]
    if args.estimate:
        reqs = build_workdir_requests(args.workdir, paradigms, limit=args.limit, model=args.model, rgb=args.rgb)
        print(estimate_cost(reqs, model=args.model, batch=args.mode == "batch").to_string(index=False))
        return 0
    res = generate_for_workdir(args.workdir, cfg, paradigms=paradigms, limit=args.limit, rgb=args.rgb,
                               cache_path=args.cache)
    for note in res.notes:
        print(f"note: {note}", file=sys.stderr)
    print(f"{len(res.captions)} captions in {Path(args.workdir) / 'captions.parquet'}; requests by status "
          f"{res.counts}; spent {res.spent_usd:.4f} USD in {res.wall_s:.1f} s")
    return 0 if not res.counts.get("failed") else 2


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "generate",
        help="prompt a model (or the offline template captioner) for captions of a run's tiles",
        description="stats.parquet (+ tiles.parquet for gpt4v) in WORKDIR -> captions.parquet. The API key is "
        "read from the environment variable named by --api-key-env (never from the command line).",
    )
    p.add_argument("--workdir", default="build/demo", help="run folder with stats.parquet [build/demo]")
    p.add_argument("--backend", choices=["template", "openai"], default="template")
    p.add_argument("--paradigm", action="append", choices=["gpt35", "gpt4v"], help="repeatable [gpt35]")
    p.add_argument("--model", help="model id (default: the template's, e.g. gpt-3.5-turbo-1106)")
    p.add_argument("--base-url", help="any OpenAI-compatible endpoint, e.g. http://localhost:8000/v1")
    p.add_argument("--api-key-env", default="OPENAI_API_KEY", help="environment variable holding the key")
    p.add_argument("--mode", choices=["direct", "batch"], default="direct", help="batch: OpenAI Batch API")
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--rpm", type=float, help="requests-per-minute limit")
    p.add_argument("--tpm", type=float, help="tokens-per-minute limit")
    p.add_argument("--budget", type=float, help="stop before spending more than this many USD")
    p.add_argument("--max-retries", type=int, default=6)
    p.add_argument("--temperature", type=float)
    p.add_argument("--limit", type=int, help="only the first N tiles")
    p.add_argument("--rgb", action="store_true", help="gpt4v: send the Sentinel-2 picture beside each label map")
    p.add_argument("--cache", help="SQLite cache file [<cache dir>/generation.sqlite]")
    p.add_argument("--no-store", action="store_true", help="servers that reject store/metadata (no in-flight recovery)")
    p.add_argument("--estimate", action="store_true", help="only print the token and cost estimate")
    p.set_defaults(func=_cmd_generate)
