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


def _cmd_release(args: argparse.Namespace) -> int:
    from cen.sources import chatearthnet as rel

    try:
        if args.action == "download":
            kw = {"base_url": args.base_url} if args.base_url else {}
            files = rel.download_release(args.dest, images=args.images, extract=not args.no_extract, **kw)
            for name, path in files.items():
                print(f"{name}: {path} (md5 verified)")
            print(f"completeness: {rel.check_completeness(args.dest)}")
        elif args.action == "check":
            rep = rel.check_completeness(args.dest)
            print(rep)
            return 0 if rep.ok else 1
        else:
            frame = rel.load_captions(args.dest)
            bad = rel.check_split_sizes(frame)
            out = Path(args.out or Path(args.dest) / "captions_release.parquet")
            frame.to_parquet(out, index=False)
            print(f"{len(frame)} captions -> {out}")
            for (v, s), (found, published) in bad.items():
                print(f"note: caps_{v}_{s} has {found} records; the published release has {published}")
    except (rel.ReleaseError, ValueError) as exc:
        print(f"cen release: {exc}", file=sys.stderr)
        return 1
    return 0


def _add_release(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("release", help="download, check and load the published ChatEarthNet release (Zenodo 11003436)",
                       description="Download (resumable, md5-verified), check and load the ChatEarthNet release.")
    p.add_argument("action", choices=["download", "check", "load"])
    p.add_argument("dest", help="release folder")
    p.add_argument("--images", action="store_true", help="download: also the three image archives (~38 GB)")
    p.add_argument("--no-extract", action="store_true", help="download: keep the archives zipped")
    p.add_argument("--base-url", help="download: a mirror of the Zenodo files folder")
    p.add_argument("--out", help="load: output Parquet [DEST/captions_release.parquet]")
    p.set_defaults(func=_cmd_release)


def _cmd_sample(args: argparse.Namespace) -> int:
    from cen.sources import sampling

    plan = sampling.sample_plan(args.n, seed=args.seed, bbox=args.bbox, countries=args.countries)
    if args.action == "plan":
        out = Path(args.out or "sample_plan.parquet")
        plan.to_parquet(out, index=False)
        print(f"{len(plan)} sample points -> {out}")
        print(plan.groupby("stratum").size().to_string())
        return 0
    from cen.sources import stac

    try:
        catalog = stac.open_catalog(args.provider, url=args.stac_url)
    except (stac.StacError, ImportError) as exc:
        print(f"cen sample: {exc}", file=sys.stderr)
        return 1
    tiles, skipped = sampling.build_samples(
        plan, args.workdir, catalog=catalog, provider=args.provider, dates=args.dates, max_cloud=args.max_cloud,
        worldcover_year=args.worldcover_year, worldcover_url=args.worldcover_url)
    print(f"{len(tiles)} tiles -> {Path(args.workdir) / 'tiles.parquet'}; {len(skipped)} skipped "
          f"(reasons in {Path(args.workdir) / 'samples_skipped.csv'})")
    return 0


def _add_sample(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sample", help="global sample plans; Sentinel-2 L2A + WorldCover tiles for them",
                       description="'plan' writes N seeded, continent-stratified points over land; 'build' fetches "
                       "the least-cloudy scene and WorldCover labels for each and writes WORKDIR/tiles.parquet.")
    p.add_argument("action", choices=["plan", "build"])
    p.add_argument("workdir", nargs="?", default="build/stac", help="build: output folder [build/stac]")
    p.add_argument("-n", type=int, default=10, help="number of sample points [10]")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--bbox", type=float, nargs=4, metavar=("W", "S", "E", "N"), help="restrict to a lon/lat box")
    p.add_argument("--countries", nargs="+", help="restrict to Natural Earth country names")
    p.add_argument("--out", help="plan: output Parquet [sample_plan.parquet]")
    p.add_argument("--provider", default="earth-search", choices=["earth-search", "planetary-computer"])
    p.add_argument("--stac-url", help="another STAC API endpoint")
    p.add_argument("--dates", default="2020-01-01/2020-12-31", help="START/END [2020]")
    p.add_argument("--max-cloud", type=float, default=20.0, help="maximum scene cloud cover in %% [20]")
    p.add_argument("--worldcover-year", type=int, default=2020, choices=[2020, 2021])
    p.add_argument("--worldcover-url", help="mirror of s3://esa-worldcover (same key layout)")
    p.set_defaults(func=_cmd_sample)


def _cmd_tiles(args: argparse.Namespace) -> int:
    from cen import tiling
    from cen.sources import demo

    frame = demo.build_demo_tiles(args.workdir, smoke=args.smoke)
    print(tiling.tiles_summary(frame).to_string())
    print(f"-> {Path(args.workdir) / 'tiles.parquet'}")
    return 0


def _add_tiles(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tiles", help="build the embedded demo's tiles.parquet from the committed data")
    p.add_argument("action", choices=["demo"])
    p.add_argument("workdir", nargs="?", default="build/demo")
    p.add_argument("--smoke", action="store_true", help="a handful of tiles only")
    p.set_defaults(func=_cmd_tiles)


def _scale_client(args: argparse.Namespace):
    if args.sync:
        return "sync"
    return args.scheduler  # None: a LocalCluster sized to this machine (or --workers)


def _cmd_scale(args: argparse.Namespace) -> int:
    from cen import scale

    cluster = {"n_workers": args.workers} if args.workers else {}
    try:
        if args.scale_command == "stats":
            run = scale.run_stats(args.tiles, args.out, client=_scale_client(args), partition_size=args.partition_size,
                                  compat=args.compat, seed=args.seed, merge_to=args.merge_to,
                                  cluster_kwargs=cluster)
            print(f"{run.n_rows} tiles in {run.n_partitions} partitions ({run.n_computed} computed, "
                  f"{run.n_skipped} already done) in {run.seconds:.1f} s -> {run.out_dir}")
        elif args.scale_command == "dataset-stats":
            acc = scale.dataset_stats(args.source, client=_scale_client(args), cluster_kwargs=cluster)
            print(acc.class_frame().drop(columns="colour").to_string(index=False))
        else:
            from cen import textstats

            st = scale.caption_stats(args.source, text_col=args.text_col, by=args.by or None,
                                     client=_scale_client(args), cluster_kwargs=cluster)
            print(textstats.summary_table(st, by=args.by or None).to_string(index=False))
    except (scale.ScaleError, FileNotFoundError, KeyError, ValueError) as exc:
        print(f"cen scale: {exc}", file=sys.stderr)
        return 1
    return 0


def _add_scale(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "scale", help="run statistics on a Dask cluster (LocalCluster or an existing scheduler)",
        description="Per-tile statistics into partitioned Parquet (resumable), and dataset-level / caption "
        "statistics over partitioned tables in bounded memory, on Dask.")
    g = p.add_subparsers(dest="scale_command", required=True, metavar="SUBCOMMAND")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--scheduler", help="Dask scheduler address, e.g. tcp://10.0.0.5:8786 [start a LocalCluster]")
    common.add_argument("--workers", type=int, help="LocalCluster worker processes [one per CPU]")
    common.add_argument("--sync", action="store_true", help="no Dask: run in this process")
    s = g.add_parser("stats", parents=[common], help="tiles.parquet -> partitioned stats (+ stats.parquet)")
    s.add_argument("tiles", help="tiles.parquet")
    s.add_argument("out", help="folder for part-NNNNN.parquet (re-runs skip finished partitions)")
    s.add_argument("--merge-to", help="also write one stats table here, e.g. build/demo/stats.parquet")
    s.add_argument("--partition-size", type=int, default=512, help="tiles per task [512]")
    s.add_argument("--compat", action="store_true", help="contexts exactly as the release's scripts")
    s.add_argument("--seed", type=int, help="noun seed [cen.stats default]")
    d = g.add_parser("dataset-stats", parents=[common], help="class shares/presence over a stats table or folder")
    d.add_argument("source", help="stats.parquet or a folder of partitions")
    c = g.add_parser("caption-stats", parents=[common], help="caption statistics over a caption table or folder")
    c.add_argument("source", help="captions.parquet or a folder of partitions")
    c.add_argument("--text-col", default="text", help="caption column [text]")
    c.add_argument("--by", nargs="*", help="grouping columns, e.g. paradigm split")
    p.set_defaults(func=_cmd_scale)


def _cmd_metrics(args: argparse.Namespace) -> int:
    import json

    from cen import metrics

    try:
        if args.metrics_command == "setup-spice":
            dest = metrics.setup_spice(args.url, Path(args.dest) if args.dest else None)
            print(f"CoreNLP jars for SPICE in {dest}")
            return 0
        ev = metrics.evaluate_files(
            args.references, args.candidates, args.metrics or None, duplicates=args.duplicates,
            missing=args.missing, extra=args.extra, empty=args.empty)
    except (metrics.MetricsInputError, metrics.MetricsError, OSError) as exc:
        print(f"cen metrics: {exc}", file=sys.stderr)
        return 1
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


def _add_metrics(sub: argparse._SubParsersAction) -> None:
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
    s.add_argument("--url", default="http://nlp.stanford.edu/software/stanford-corenlp-full-2015-12-09.zip")
    s.add_argument("--dest", help="folder for the jars [<cache>/spice; or set $CEN_SPICE_CORENLP_DIR]")
    p.set_defaults(func=_cmd_metrics)


def _cmd_verify(args: argparse.Namespace) -> int:
    try:
        return _verify(args)
    except (ValueError, KeyError, FileNotFoundError) as exc:
        print(f"cen verify: {exc}", file=sys.stderr)
        return 1


def _verify(args: argparse.Namespace) -> int:
    import json

    import pandas as pd

    from cen import verify
    from cen.stats import read_stats

    workdir = Path(args.workdir)
    if args.verify_command == "run":
        decisions = json.loads(Path(args.decisions).read_text()) if args.decisions else None
        result = verify.table.verify_workdir(workdir, decisions, reviewer=args.reviewer)
        print(result.counts_per_check().to_string(index=False))
        print(result.table["verification_status"].value_counts().to_string())
        print(f"wrote {workdir / 'captions_verified.parquet'}; {len(result.review_queue())} captions await review")
        return 0
    captions = verify.read_captions(workdir / "captions.parquet")
    if args.verify_command == "decide":
        keys = [verify.caption_key(t, verify.lexicon.normalise_paradigm(p))
                for t, p in zip(captions["tile_id"], captions["paradigm"])]
        decision = {"key": args.key, "action": args.action, "text": args.text, "note": args.note}
        written = verify.apply_decisions(verify.DecisionLog(workdir / "decisions.jsonl"), [decision],
                                         reviewer=args.reviewer, known_keys=keys)
        print(f"{args.action} {args.key}: {'logged' if written else 'already logged'}")
        return 0
    counts = verify.align_counts(captions, read_stats(workdir / "stats.parquet"), source=str(workdir / "stats.parquet"))
    scores = verify.score_table(captions[args.column], counts, progress=True)
    print(json.dumps(verify.summarize_scores(scores), indent=2))
    if args.out:
        pd.concat([captions[["tile_id", "paradigm"]], scores], axis=1).to_csv(args.out, index=False)
    return 0


def _add_verify(sub: argparse._SubParsersAction) -> None:
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
    try:
        res = generate_for_workdir(args.workdir, cfg, paradigms=paradigms, limit=args.limit, rgb=args.rgb,
                                   cache_path=args.cache)
    except (FileNotFoundError, KeyError, RuntimeError, ValueError) as exc:
        print(f"cen generate: {exc}", file=sys.stderr)
        return 1
    for note in res.notes:
        print(f"note: {note}", file=sys.stderr)
    print(f"{len(res.captions)} captions in {Path(args.workdir) / 'captions.parquet'}; requests by status "
          f"{res.counts}; spent {res.spent_usd:.4f} USD in {res.wall_s:.1f} s")
    return 0 if not res.counts.get("failed") else 2


def _add_generate(sub: argparse._SubParsersAction) -> None:
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


def _cmd_stats(args: argparse.Namespace) -> int:
    from cen import stats

    out = Path(args.out) if args.out else Path(args.tiles).parent / "stats.parquet"
    try:
        table = stats.compute_stats(args.tiles, out, compat=args.compat, seed=args.seed, force=args.force)
    except (FileNotFoundError, KeyError, ValueError, TypeError) as exc:
        print(f"cen stats: {exc}", file=sys.stderr)
        return 1
    print(f"{len(table)} tiles -> {out} (stats_version {stats.STATS_VERSION}, compat={args.compat})")
    frame = stats.DatasetStats.from_table(table).class_frame().drop(columns=["colour", "class_index"])
    print(frame.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    for tile_id in args.show or []:
        rows = table[table["tile_id"] == tile_id]
        if rows.empty:
            print(f"cen stats: no tile {tile_id!r} in {out}", file=sys.stderr)
            return 1
        row = rows.iloc[0]
        print(f"\n=== {tile_id}\n--- GPT-3.5 context\n{row['gpt35_context']}\n--- GPT-4V per-class block\n"
              f"{row['gpt4v_class_block']}--- GPT-4V per-region block\n{row['gpt4v_region_block']}", end="")
    return 0


def _add_stats(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "stats",
        help="land-cover statistics and prompt contexts of a tiles table",
        description="tiles.parquet -> stats.parquet: class counts of each label tile and its five regions, "
        "the GPT-3.5 and GPT-4V contexts (release-exact with --compat), and dataset-level class statistics.",
    )
    p.add_argument("tiles", help="tiles.parquet (rows with a label_path)")
    p.add_argument("-o", "--out", help="output Parquet [stats.parquet beside the tiles table]")
    p.add_argument("--compat", action="store_true", help="reproduce the release's context texts byte for byte")
    p.add_argument("--seed", type=int, default=0, help="seed of the per-tile noun choice [0]")
    p.add_argument("--force", action="store_true", help="recompute even if the output is up to date")
    p.add_argument("--show", nargs="*", metavar="TILE_ID", help="print these tiles' contexts")
    p.set_defaults(func=_cmd_stats)


def _cmd_analysis(args: argparse.Namespace) -> int:
    from cen import catalog

    try:
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
    except (catalog.CatalogError, FileNotFoundError, KeyError, ValueError) as exc:
        print(f"cen analysis: {exc}", file=sys.stderr)
        return 1
    return 0


def _add_analysis(sub: argparse._SubParsersAction) -> None:
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


COMMAND_GROUPS: list[Callable[[argparse._SubParsersAction], None]] = [
    _add_report,
    _add_release,
    _add_sample,
    _add_tiles,
    _add_scale,
    _add_metrics,
    _add_verify,
    _add_generate,
    _add_stats,
    _add_analysis,
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
