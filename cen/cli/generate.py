"""``cen generate``: captions for a run's tiles; exit 0 only when every asked tile x paradigm has one."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from cen.generate import DEFAULT_PARADIGMS

RECOVER_HELP = (
    "send requests with store=True so that a killed run's in-flight requests are collected from the provider "
    "instead of paid twice. Data retention: the provider then keeps every prompt and answer of the run (OpenAI: "
    "stored completions, listed in its dashboard). Off by default: without it, a kill re-sends at "
    "most --concurrency requests"
)


def _positive_int(name: str, value: int | None) -> None:
    if value is not None and value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")


def _positive(name: str, value: float | None, *, zero: bool = False) -> None:
    if value is not None and not (math.isfinite(value) and (value >= 0 if zero else value > 0)):
        raise ValueError(f"{name} must be {'>= 0' if zero else '> 0'}, got {value}")


def _check_args(args: argparse.Namespace) -> None:
    """One-line errors naming the argument (before anything is read or sent)."""
    for name in ("concurrency", "limit", "breaker_after"):
        _positive_int(f"--{name.replace('_', '-')}", getattr(args, name))
    if args.max_retries is not None and args.max_retries < 0:
        raise ValueError(f"--max-retries must be >= 0, got {args.max_retries}")
    for name in ("rpm", "tpm", "timeout"):
        _positive(f"--{name}", getattr(args, name))
    for name in ("budget", "price_in", "price_out", "recover_wait"):
        _positive(f"--{name.replace('_', '-')}", getattr(args, name), zero=True)
    if (args.price_in is None) != (args.price_out is None):
        raise ValueError("--price-in and --price-out go together (USD per million input / output tokens)")
    if args.recover_wait is not None and not args.recover_in_flight:
        raise ValueError("--recover-wait needs --recover-in-flight")


def _prices(args: argparse.Namespace, requests: list) -> dict | None:
    from cen.prompting import Price

    if args.price_in is None:
        return None
    models = {args.model} if args.model else {r.model for r in requests}
    return {m: Price(args.price_in, args.price_out) for m in models}


def _print_ledger(args: argparse.Namespace) -> int:
    from cen.generate.console import ledger_table
    from cen.paths import cache_dir

    path = Path(args.cache) if args.cache else cache_dir() / "generation.sqlite"
    table = ledger_table(path, args.run_name)
    if not len(table):
        print(f"no spending recorded in {path}" + (f" for run {args.run_name!r}" if args.run_name else ""))
        return 0
    print(f"spending recorded in {path} (USD; one row per run and model, all invocations):")
    print(table.to_string(index=False))
    print(f"total {table['cost_usd'].sum():.4f} USD")
    return 0


def _cmd_generate(args: argparse.Namespace) -> int:
    from cen.generate.console import (
        caption_line, eligibility_line, failure_lines, in_flight_line, missing_rows, money_line, request_line,
    )
    from cen.generate.runner import GenerateConfig, build_workdir_requests, default_run_name, generate_for_workdir
    from cen.prompting import estimate_cost

    _check_args(args)
    if args.ledger:
        return _print_ledger(args)
    paradigms = args.paradigm or list(DEFAULT_PARADIGMS)
    requests = build_workdir_requests(args.workdir, paradigms, limit=args.limit, model=args.model, rgb=args.rgb)
    n_tiles = len({t for r in requests for t in r.tile_ids})
    print(eligibility_line(args.workdir, n_tiles) + (f"; --limit {args.limit}" if args.limit else ""))
    prices = _prices(args, requests)
    if args.estimate:
        est = estimate_cost(requests, model=args.model, batch=args.mode == "batch", prices=prices)
        print(est.to_string(index=False))
        for m in est.loc[~est["priced"], "model"]:
            print(f"cen generate: no price for model {m!r} (not in cen.prompting.PRICES; a similar id is not used): "
                  "give --price-in and --price-out", file=sys.stderr)
        return 0
    cfg = GenerateConfig(
        backend=args.backend, model=args.model, base_url=args.base_url, api_key_env=args.api_key_env,
        mode=args.mode, concurrency=args.concurrency, rpm=args.rpm, tpm=args.tpm, budget_usd=args.budget,
        run_name=args.run_name or default_run_name(args.workdir, args.model or "+".join(sorted({r.model for r in requests})),
                                                   paradigms),
        max_retries=args.max_retries, timeout=args.timeout, breaker_after=args.breaker_after,
        temperature=args.temperature, prices=prices, recover_in_flight=args.recover_in_flight,
        recover_grace=args.recover_wait, adapt_rate=not args.no_adapt_rate,
    )
    if args.attributes:
        return _generate_attributes(args, cfg, paradigms)
    res = generate_for_workdir(args.workdir, cfg, paradigms=paradigms, cache_path=args.cache, requests=requests)
    for note in res.notes:
        print(f"note: {note}", file=sys.stderr)
    out = Path(args.workdir) / "captions.parquet"
    print(caption_line(res))
    print(request_line(res))
    print(money_line(res))
    if args.backend == "openai" and args.mode == "direct":
        print(in_flight_line(res))
    print(f"wrote {out} ({len(res.merged)} rows, earlier answers kept)")
    asked = res.captions
    missing = missing_rows(res.merged, asked)
    for line in failure_lines(missing):
        print(f"cen generate: {line}", file=sys.stderr)
    if len(missing):
        print(f"cen generate: {len(asked) - len(missing)} of {len(asked)} asked captions have an answer", file=sys.stderr)
        return 2
    return 0


def _generate_attributes(args: argparse.Namespace, cfg, paradigms: list[str]) -> int:
    """``--attributes``: one parallel caption set per variant, ``captions_<variant>.parquet``."""
    from cen.generate.console import caption_line, failure_lines, missing_rows
    from cen.generate.runner import generate_attributes_for_workdir

    code = 0
    for variant in dict.fromkeys(args.attributes):
        res = generate_attributes_for_workdir(args.workdir, variant, cfg, paradigms=paradigms, limit=args.limit,
                                              cache_path=args.cache)
        print(caption_line(res))
        print(f"wrote {Path(args.workdir) / f'captions_{variant}.parquet'} ({len(res.merged)} rows, attributes {variant})")
        missing = missing_rows(res.merged, res.captions)
        for line in failure_lines(missing):
            print(f"cen generate: {line}", file=sys.stderr)
        code = 2 if len(missing) else code
    return code


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "generate",
        help="prompt a model (or the offline template captioner) for captions of a run's tiles",
        description="stats.parquet (+ tiles.parquet for gpt4v) in WORKDIR -> captions.parquet, merged with what is "
        "there (an answered caption is never replaced by a failure). Exit 0 only when every asked tile x paradigm "
        "has a caption, 2 otherwise (one line per failure reason), 130 on Ctrl-C (run the same command to resume). "
        "The API key is read from the environment variable named by --api-key-env (never from the command line).",
    )
    p.add_argument("--workdir", default="build/demo", help="run folder with stats.parquet [build/demo]")
    p.add_argument("--backend", choices=["template", "openai"], default="template")
    p.add_argument("--paradigm", action="append", choices=["gpt35", "gpt4v"],
                   help=f"repeatable [{' and '.join(DEFAULT_PARADIGMS)}, as notebook 03]")
    p.add_argument("--model", help="model id (default: the template's, e.g. gpt-3.5-turbo-1106)")
    p.add_argument("--base-url", help="any OpenAI-compatible endpoint, e.g. http://localhost:8000/v1")
    p.add_argument("--api-key-env", default="OPENAI_API_KEY", help="environment variable holding the key")
    p.add_argument("--mode", choices=["direct", "batch"], default="direct", help="batch: OpenAI Batch API")
    p.add_argument("--concurrency", type=int, default=32, help="requests in flight at most [32]")
    p.add_argument("--rpm", type=float, help="our own requests-per-minute cap (the provider's limits are read from "
                   "its x-ratelimit headers anyway)")
    p.add_argument("--tpm", type=float, help="our own tokens-per-minute cap (prompt + max_tokens per request)")
    p.add_argument("--no-adapt-rate", action="store_true", help="ignore the provider's x-ratelimit headers")
    p.add_argument("--budget", type=float, help="USD cap on the run's total over all its invocations (the run: "
                   "workdir + model + paradigms, or --run-name); refuses to start for a model without a price")
    p.add_argument("--run-name", help="name of the run whose spending --budget caps (and --ledger shows)")
    p.add_argument("--price-in", type=float, help="USD per million input tokens, for a model not in the price table")
    p.add_argument("--price-out", type=float, help="USD per million output tokens (with --price-in)")
    p.add_argument("--ledger", action="store_true", help="print the spending recorded in the cache and exit")
    p.add_argument("--max-retries", type=int, default=6, help="retries of 429, 5xx, timeouts and malformed answers [6]")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds per request attempt [60]")
    p.add_argument("--breaker-after", type=int, default=5, help="stop after this many requests in a row failed "
                   "the same non-retryable way (401, 403, 404, connection refused, DNS) [5]")
    p.add_argument("--temperature", type=float)
    p.add_argument("--limit", type=int, help="only the first N tiles")
    p.add_argument("--rgb", action="store_true", help="gpt4v: send the Sentinel-2 picture beside each label map")
    p.add_argument("--cache", help="SQLite cache and ledger file [<cache dir>/generation.sqlite]")
    p.add_argument("--recover-in-flight", action="store_true", help=RECOVER_HELP)
    p.add_argument("--recover-wait", type=float, help="with --recover-in-flight: seconds after a killed run sent a "
                   "request before its stored answer is looked up [--timeout]")
    p.add_argument("--estimate", action="store_true", help="only print the token and cost estimate")
    p.add_argument("--attributes", action="append", choices=["full", "no_size", "no_position", "classes_only"],
                   help="repeatable: write the attribute-ablation caption set captions_VARIANT.parquet instead of "
                   "captions.parquet (template backend: from the counts; openai: prompt cen-gpt35-attributes-v1, "
                   "--paradigm gpt35)")
    p.set_defaults(func=_cmd_generate)

    def one_line_error(message: str) -> None:  # argparse's own errors (e.g. --concurrency abc) as one line, exit 1
        print(f"cen generate: {message}", file=sys.stderr)
        sys.exit(1)

    p.error = one_line_error  # type: ignore[method-assign]
