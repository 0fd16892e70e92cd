"""The pipeline's per-tile stages on Dask: each the single-process function of its module, run
per partition (statistics, source reads, caption generation, prompt cost, caption statistics)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from cen.scale.cluster import ClientLike, connect
from cen.scale.partitions import ScaleError, StageRun, merge_stage, read_stage, run_stage
from cen.scale.reduce import reduce_partitions
from cen.tables import read_table


# --- caption statistics over partitioned caption tables --------------------------------------

def merge_caption_stats(a: dict[tuple, Any], b: dict[tuple, Any]) -> dict[tuple, Any]:
    """Merge two :func:`cen.textstats.caption_stats` results (``b``'s captions after ``a``'s)."""
    out = dict(a)
    for key, sb in b.items():
        sa = out.get(key)
        out[key] = sb if sa is None else sa.merge(sb)
    return dict(sorted(out.items()))


def caption_stats(
    source: str | Path | Sequence[str | Path],
    *,
    text_col: str = "text",
    by: str | Sequence[str] | None = None,
    client: ClientLike = None,
    rows_per_chunk: int = 100_000,
    batch_size: int = 20_000,
    progress: bool = True,
    cluster_kwargs: dict[str, Any] | None = None,
) -> dict[tuple, Any]:
    """:func:`cen.textstats.caption_stats` over a partitioned caption table, chunk by chunk.

    ``source``: a Parquet file (cut at row groups), a folder of partitions or a list of files.
    Reads only ``text_col`` and the ``by`` columns; gives the same result as one pass over the
    whole table, with at most ``batch_size`` captions per worker in memory.
    """
    import functools

    from cen import textstats

    by_cols = [by] if isinstance(by, str) else list(by or [])
    partial = functools.partial(textstats.caption_stats, text_col=text_col, by=by_cols or None, source=str(source))
    return reduce_partitions(source, partial, merge_caption_stats, columns=[text_col, *by_cols], client=client,
                             rows_per_chunk=rows_per_chunk, batch_size=batch_size, progress=progress,
                             cluster_kwargs=cluster_kwargs)


# --- the statistics stage (cen.stats) --------------------------------------------------------

def _read_tiles(tiles: pd.DataFrame | str | Path) -> tuple[pd.DataFrame, Path | None]:
    if isinstance(tiles, pd.DataFrame):
        return tiles, None
    path = Path(tiles)
    return read_table(path, ("tile_id",), what="tiles table", made_by="notebook 01 / cen.sources"), path.parent


def run_stats(
    tiles: pd.DataFrame | str | Path,
    out_dir: str | Path,
    *,
    client: ClientLike = None,
    compat: bool = False,
    seed: int | None = None,
    base_dir: str | Path | None = None,
    partition_size: int = 512,
    merge_to: str | Path | None = None,
    **run_kwargs: Any,
) -> StageRun:
    """:func:`cen.stats.stats_table_from_tiles` over the labelled tiles of a tiles table, on Dask.

    Tiles without a ``label_path`` (image-only rows) are left out. Partitions go to ``out_dir``;
    ``merge_to`` (e.g. ``workdir / "stats.parquet"``) also writes the single table the next
    notebook reads. Relative label paths resolve against ``base_dir`` (default: the tiles
    table's folder). Other keyword arguments go to :func:`run_stage`.
    """
    import functools

    from cen import stats

    table, parent = _read_tiles(tiles)
    if "label_path" not in table.columns:
        raise ScaleError(f"{tiles if parent else 'tiles table'}: no column 'label_path'")
    labelled = table[table["label_path"].notna()].reset_index(drop=True)
    seed = stats.DEFAULT_SEED if seed is None else seed
    root = base_dir if base_dir is not None else parent
    stage = functools.partial(stats.stats_table_from_tiles, compat=compat, seed=seed,
                              base_dir=None if root is None else str(root), progress=False)
    name = f"cen.stats.stats_table_from_tiles[v{stats.STATS_VERSION},compat={compat},seed={seed}]"
    run = run_stage(stage, labelled, out_dir, client=client, partition_size=partition_size, stage_name=name,
                    **run_kwargs)
    if merge_to is not None:
        merge_stage(out_dir, merge_to)
    return run


def _stats_partial(frame: pd.DataFrame) -> Any:
    from cen.stats import DatasetStats

    return DatasetStats.from_table(frame)


def _stats_merge(a: Any, b: Any) -> Any:
    return a.merge(b)


def dataset_stats(source: str | Path | Sequence[str | Path], *, client: ClientLike = None,
                  rows_per_chunk: int = 100_000, batch_size: int = 20_000, progress: bool = True,
                  cluster_kwargs: dict[str, Any] | None = None) -> Any:
    """:class:`cen.stats.DatasetStats` of a stats table (file, partition folder or file list).

    Reads only the count columns, chunk by chunk, so any number of tiles fits in memory.
    """
    from cen.stats import COUNT_COLUMNS

    return reduce_partitions(source, _stats_partial, _stats_merge, columns=list(COUNT_COLUMNS), client=client,
                             rows_per_chunk=rows_per_chunk, batch_size=batch_size, progress=progress,
                             cluster_kwargs=cluster_kwargs)


# --- source read and label alignment (cen.sources.sampling) ----------------------------------

def build_sample_partition(plan: pd.DataFrame, out_dir: str, provider: str, catalog_url: str | None,
                           sample_kwargs: dict[str, Any]) -> pd.DataFrame:
    """Task body: :func:`cen.sources.sampling.build_sample` for each planned point of a partition.

    The STAC catalog is opened on the worker (clients do not travel between processes). One row
    per sample: ``sample_id``, ``status`` (``ok``/``skipped``), ``reason`` and ``row`` (the
    sample's tiles-table row as JSON, exactly as ``build_sample`` returns it).
    """
    from cen.sources import sampling, stac

    catalog = stac.open_catalog(provider, catalog_url)
    out = []
    for rec in plan[["sample_id", "lon", "lat"]].itertuples(index=False):
        row = sampling.build_sample(rec.sample_id, float(rec.lon), float(rec.lat), out_dir, catalog=catalog,
                                    provider=provider, **sample_kwargs)
        out.append({"sample_id": rec.sample_id, "status": row.get("status"), "reason": row.get("reason"),
                    "row": json.dumps(row, default=str)})
    return pd.DataFrame(out, columns=["sample_id", "status", "reason", "row"])


def build_samples(
    plan: pd.DataFrame,
    workdir: str | Path,
    *,
    client: ClientLike = None,
    provider: str = "earth-search",
    catalog_url: str | None = None,
    partition_size: int = 64,
    run_kwargs: dict[str, Any] | None = None,
    **sample_kwargs: Any,
) -> tuple[Any, pd.DataFrame, StageRun]:
    """:func:`cen.sources.sampling.build_samples` on Dask: scene search, nine-band read and
    WorldCover labels on one grid per planned point, partitions of ``partition_size`` points.

    Writes the tile files under ``{workdir}/tiles/``, the per-partition results under
    ``{workdir}/samples_parts/``, then ``tiles.parquet`` and ``samples_skipped.csv`` as the
    single-process function does. ``sample_kwargs`` go to ``build_sample`` (``dates``,
    ``max_cloud``, ``worldcover_url`` ...). Returns ``(tiles, skipped, run)``.
    """
    import functools

    from cen.sources import sampling

    workdir = Path(workdir)
    tiles_dir = workdir / "tiles"
    tiles_dir.mkdir(parents=True, exist_ok=True)
    for col in ("sample_id", "lon", "lat"):
        if col not in plan.columns:
            raise ScaleError(f"sample plan: no column {col!r} (columns: {', '.join(map(str, plan.columns))})")
    stage = functools.partial(build_sample_partition, out_dir=str(tiles_dir), provider=provider,
                              catalog_url=catalog_url, sample_kwargs=dict(sample_kwargs))
    name = f"cen.sources.sampling.build_sample[{provider},{json.dumps(sample_kwargs, sort_keys=True, default=str)}]"
    run = run_stage(stage, pd.DataFrame(plan[["sample_id", "lon", "lat"]]), workdir / "samples_parts",
                    client=client, partition_size=partition_size, stage_name=name, key="sample_id",
                    **(run_kwargs or {}))
    results = read_stage(workdir / "samples_parts")
    frame, skipped_df = sampling.write_sample_results(
        ({**json.loads(text), "status": status} for status, text in zip(results["status"], results["row"])), workdir)
    return frame, skipped_df, run


# --- caption generation sharded by tile range (cen.generate) ---------------------------------

COMPLETE_STATUSES = ("ok", "cached", "recovered", "unsplittable")
"""Caption statuses a finished shard may hold (``unsplittable`` is final: verification handles it)."""

_PATCH_SUFFIX = r"_patch[01][01]$"


def generate_shard(stats: pd.DataFrame, config: Any, paradigms: Sequence[str], cache_path: str,
                   templates: dict[str, str] | None, tiles_path: str | None, require_complete: bool,
                   budget_per_tile: float | None = None) -> pd.DataFrame:
    """Task body: prompts for one tile range (:func:`cen.prompting.build_requests`), answered by
    :func:`cen.generate.runner.generate` through the shared cache; the captions table rows.

    Raises :class:`ScaleError` when ``require_complete`` and a caption ended ``failed`` or
    ``budget_stopped``: the shard is then not written, and a re-run resends only what the cache
    does not hold.
    """
    from cen.generate.runner import generate
    from cen.prompting import build_requests, load_label_maps

    import dataclasses

    stats = stats.drop(columns=["_scale_group"], errors="ignore")
    if budget_per_tile is not None:
        config = dataclasses.replace(config, budget_usd=budget_per_tile * len(stats))
    requests = []
    for paradigm in paradigms:
        template = (templates or {}).get(paradigm)
        if paradigm == "gpt4v":
            if tiles_path is None:
                raise ScaleError("gpt4v prompts need the label maps: pass tiles= (the tiles table)")
            tiles = read_table(tiles_path, ("tile_id", "label_path"), what="tiles table",
                               made_by="notebook 01 / cen.sources")
            labels = load_label_maps(tiles, stats["tile_id"].astype(str).tolist(), base_dir=Path(tiles_path).parent)
            requests += build_requests(stats, "gpt4v", template=template, model=config.model, label_maps=labels)
        else:
            requests += build_requests(stats, paradigm, template=template, model=config.model)
    captions = generate(requests, config, cache_path=cache_path).captions
    bad = captions[~captions["status"].isin(COMPLETE_STATUSES)]
    if require_complete and len(bad):
        first = bad.iloc[0]
        raise ScaleError(f"{len(bad)} of {len(captions)} captions of tiles {stats['tile_id'].iloc[0]} .. "
                         f"{stats['tile_id'].iloc[-1]} not generated (first: tile {first['tile_id']!r}, "
                         f"status {first['status']!r}, error {first['error']!r})")
    return captions


def generate_sharded(
    stats: pd.DataFrame | str | Path,
    out_dir: str | Path,
    config: Any = None,
    *,
    client: ClientLike = None,
    paradigms: Sequence[str] = ("gpt35",),
    shard_size: int = 1000,
    cache_path: str | Path | None = None,
    templates: dict[str, str] | None = None,
    tiles: str | Path | None = None,
    require_complete: bool = True,
    merge_to: str | Path | None = None,
    run_kwargs: dict[str, Any] | None = None,
    cluster_kwargs: dict[str, Any] | None = None,
) -> StageRun:
    """Captions for a stats table, sharded by tile range across Dask workers.

    ``stats``: a stats DataFrame or the path of ``stats.parquet`` (read and checked by
    :func:`cen.stats.read_stats`: a missing file or column is named as the stats table's).
    ``tiles``: the tiles table whose label maps the ``gpt4v`` prompts need (relative paths taken
    from its folder by :func:`cen.tables.resolve_path`). Each shard (``shard_size`` tiles; the four patches of a 512-px tile never split) is one task
    running the asynchronous generation engine (``config``: a
    :class:`cen.generate.runner.GenerateConfig`) with ``config.concurrency`` requests in flight,
    against ONE SQLite cache (``cache_path``, default ``<cache dir>/generation.sqlite``) shared
    by all shards: an answer any shard got is never paid again, a shard re-run after a worker
    death takes its finished answers from the cache and recovers its in-flight ones, and
    finished shards are skipped. The cache must be on a local disk of one machine (SQLite WAL);
    on a multi-machine cluster run one shard set per machine or pin the workers to one host.

    Limits are global: ``rpm``/``tpm`` are divided among the shards that run at once and
    ``budget_usd`` among all shards in proportion to their tiles. The API key is read on the
    workers from ``config.api_key_env`` (workers of a LocalCluster inherit this environment).
    Shards are written to ``out_dir`` (one row per tile x paradigm); ``merge_to`` also writes
    the single ``captions.parquet``.
    """
    import dataclasses
    import functools

    from cen.generate.runner import GenerateConfig

    config = config or GenerateConfig()
    if isinstance(stats, pd.DataFrame):
        table = stats.reset_index(drop=True)
    else:
        from cen.stats import read_stats

        table = read_stats(stats).reset_index(drop=True)
    table["_scale_group"] = table["tile_id"].astype(str).str.replace(_PATCH_SUFFIX, "", regex=True)
    if cache_path is None:
        from cen.paths import cache_dir

        cache_path = cache_dir() / "generation.sqlite"
    n_shards = max(1, -(-len(table) // shard_size))
    with connect(client, **(cluster_kwargs or {})) as c:
        slots = 1 if c is None else max(1, sum(c.nthreads().values()))
        parallel = min(slots, n_shards)
        shared = {}
        if config.rpm:
            shared["rpm"] = config.rpm / parallel
        if config.tpm:
            shared["tpm"] = config.tpm / parallel
        budget_per_tile = None if config.budget_usd is None else config.budget_usd / max(len(table), 1)
        shard_config = dataclasses.replace(config, progress=False, **shared)
        stage = functools.partial(generate_shard, config=shard_config, paradigms=tuple(paradigms),
                                  cache_path=str(cache_path), templates=templates,
                                  tiles_path=None if tiles is None else str(tiles), require_complete=require_complete,
                                  budget_per_tile=budget_per_tile)
        name = (f"cen.generate[{config.backend},{config.mode},{config.model},{','.join(paradigms)},"
                f"{json.dumps(templates or {}, sort_keys=True)},seed={config.seed},t={config.temperature}]")
        run = run_stage(stage, table, out_dir, client=c if c is not None else "sync", partition_size=shard_size,
                        stage_name=name, unique_by=["tile_id", "paradigm"], keep_together="_scale_group",
                        **(run_kwargs or {}))
    if merge_to is not None:
        merge_stage(out_dir, merge_to)
    return run


# --- prompts: token and cost estimate over a partitioned stats table (cen.prompting) ---------

def _estimate_partial(frame: pd.DataFrame, paradigm: str, template: str | None, model: str | None,
                      batch: bool, output_tokens: int | None) -> pd.DataFrame:
    from cen.prompting import build_requests, estimate_cost

    requests = build_requests(frame, paradigm, template=template, model=model)
    return estimate_cost(requests, model=model, batch=batch, output_tokens=output_tokens)


def estimate_cost(source: str | Path | Sequence[str | Path], *, paradigm: str = "gpt35",
                  template: str | None = None, model: str | None = None, batch: bool = False,
                  output_tokens: int | None = None, client: ClientLike = None, rows_per_chunk: int = 20_000,
                  batch_size: int = 5_000, progress: bool = True,
                  cluster_kwargs: dict[str, Any] | None = None) -> pd.DataFrame:
    """:func:`cen.prompting.estimate_cost` of the prompts of a (partitioned) stats table.

    Builds each tile's prompt from its context and counts its tokens on the workers, batch by
    batch; the per-model totals are summed. GPT-3.5-style text prompts only (GPT-4V prompts need
    the label maps: use :func:`generate_sharded` with a dry-run budget instead).
    """
    import functools

    from cen.stats import COUNT_COLUMNS

    if paradigm != "gpt35":
        raise ScaleError(f"estimate_cost over partitions supports paradigm 'gpt35', not {paradigm!r}")
    partial = functools.partial(_estimate_partial, paradigm=paradigm, template=template, model=model, batch=batch,
                                output_tokens=output_tokens)
    columns = ["tile_id", "gpt35_context", "compat", *COUNT_COLUMNS]
    from cen.prompting import merge_estimates

    return reduce_partitions(source, partial, merge_estimates, columns=columns, client=client,
                             rows_per_chunk=rows_per_chunk, batch_size=batch_size, progress=progress,
                             cluster_kwargs=cluster_kwargs)

