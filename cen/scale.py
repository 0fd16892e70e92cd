"""Run the per-tile stages over many tiles on a Dask cluster (or one laptop), resumably.

``scale`` adds no pipeline logic of its own: it cuts a tiles table into contiguous *partitions*
(tile ranges), runs a stage function -- ``DataFrame of tiles -> DataFrame keyed by tile_id``,
e.g. :func:`cen.stats.stats_table` -- on each partition as one Dask task, and streams every
result into ``<out_dir>/part-NNNNN.parquet`` (GeoParquet when the result has geometry).

* **Where it runs.** Every entry point takes ``client``: a :class:`distributed.Client`, a
  scheduler address (``"tcp://10.0.0.5:8786"``), ``None`` (start a :class:`LocalCluster` sized
  to this machine: one single-threaded worker process per CPU) or ``"sync"`` (no Dask: run the
  same task code in this process, the single-process baseline).
* **Resume.** A partition file is written atomically (temporary dot-file + rename) and carries
  the fingerprint of its tile ids and stage in its Parquet metadata; a re-run skips partitions
  whose file has the right fingerprint, so finished work is never redone.
* **Failure.** A worker killed mid-task loses nothing: the scheduler re-runs the task elsewhere
  and the rename makes the partition appear once, complete. Each task checks that the stage
  returned every input tile exactly once, so tiles are neither lost nor duplicated.
* **Bounded memory.** At most ``max_in_flight`` partitions are submitted at a time, and
  :func:`reduce_partitions` folds partitioned tables (stats, captions) into an accumulator
  batch by batch, so millions of rows never need to fit in memory.
* **Progress.** A tqdm bar over completed partitions and the Dask dashboard link.

Entry points for the pipeline's stages (each the single-process function of its module, run per
partition): :func:`build_samples` (STAC scene + WorldCover labels per planned point,
:mod:`cen.sources.sampling`), :func:`run_stats` (:mod:`cen.stats`), :func:`estimate_cost`
(prompts and tokens, :mod:`cen.prompting`), :func:`generate_sharded` (:mod:`cen.generate`, one
shared cache), and over partitioned tables :func:`dataset_stats` and :func:`caption_stats`
(:mod:`cen.textstats`). Any other ``DataFrame -> DataFrame`` function runs with
:func:`run_stage`; :func:`reduce_partitions` folds any summary with bounded memory.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import resource
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Literal, Sequence, TypeVar, Union

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from cen.tables import atomic_path, read_table

log = logging.getLogger(__name__)

SCALE_VERSION = "1"
"""Version of the partition layout and metadata written by this module."""

META_KEY = b"cen.scale"
"""Parquet key-value metadata key holding a partition's :class:`PartitionMeta` as JSON."""

PART_GLOB = "part-*.parquet"
PLAN_FILE = "_plan.json"

ClientLike = Union["distributed.Client", str, None, Literal["sync"]]  # noqa: F821
Stage = Callable[[pd.DataFrame], pd.DataFrame]
A = TypeVar("A")


class ScaleError(RuntimeError):
    """A scaled run cannot proceed; the message names the folder, partition, file or tile."""


# --- clusters --------------------------------------------------------------------------------

def machine_workers() -> int:
    """Worker processes for a local cluster: the CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


TRIM_ENV = "MALLOC_TRIM_THRESHOLD_"
DASK_TRIM_DEFAULT = "65536"
"""Dask's nannies set ``MALLOC_TRIM_THRESHOLD_=65536`` in workers (and in the parent process)."""


def local_cluster(n_workers: int | None = None, *, threads_per_worker: int = 1,
                  memory_limit: str | int = "auto", dashboard_address: str = ":8787",
                  malloc_trim_threshold: int | None = None, **kwargs: Any) -> "distributed.LocalCluster":  # noqa: F821
    """A :class:`LocalCluster` of worker *processes* (pure-Python stages hold the GIL).

    ``n_workers`` defaults to :func:`machine_workers`; ``memory_limit="auto"`` splits the
    machine's memory evenly between workers. If the dashboard port is taken, Dask picks another.

    ``malloc_trim_threshold=None`` leaves glibc's adaptive malloc in the workers: Dask's default
    (``MALLOC_TRIM_THRESHOLD_=65536``) turns off glibc's adaptive mmap threshold, so every
    label stack (tens of MB) is mapped and zero-faulted afresh; measured on the statistics stage
    that costs 4-10x the system time of one process (see ``benchmarks/bench_scale.py``).
    Pass a byte count to set the variable (Dask's choice returns memory to the OS sooner).
    """
    import dask
    from distributed import LocalCluster

    if malloc_trim_threshold is None and os.environ.get(TRIM_ENV) == DASK_TRIM_DEFAULT:
        # an earlier cluster's nanny wrote Dask's default into this process's environment;
        # spawned workers would inherit it whatever the config says
        del os.environ[TRIM_ENV]
    trim = None if malloc_trim_threshold is None else str(int(malloc_trim_threshold))
    with dask.config.set({f"distributed.nanny.pre-spawn-environ.{TRIM_ENV}": trim}):
        return LocalCluster(n_workers=n_workers or machine_workers(), threads_per_worker=threads_per_worker,
                            processes=True, memory_limit=memory_limit, dashboard_address=dashboard_address,
                            **kwargs)


@contextlib.contextmanager
def connect(client: ClientLike = None, **cluster_kwargs: Any) -> Iterator[Any]:
    """Yield a Dask client for ``client`` (see the module docstring); ``"sync"`` yields ``None``.

    A client passed in is used unchanged and left open; a client or cluster started here is
    closed on exit. ``cluster_kwargs`` go to :func:`local_cluster` when one is started.
    """
    if isinstance(client, str) and client == "sync":
        yield None
        return
    from distributed import Client

    if isinstance(client, Client):
        yield client
        return
    if isinstance(client, str):
        with Client(client) as c:
            log.info("connected to Dask scheduler %s (dashboard: %s)", client, c.dashboard_link)
            yield c
        return
    if client is not None:
        raise TypeError(f"client must be a distributed.Client, a scheduler address, None or 'sync', "
                        f"got {type(client).__name__}")
    with local_cluster(**cluster_kwargs) as cluster, Client(cluster) as c:
        log.info("started a LocalCluster of %d workers (dashboard: %s)", len(cluster.workers), c.dashboard_link)
        yield c


def dashboard_link(client: Any) -> str | None:
    """The Dask dashboard URL of a client (``None`` for the in-process ``"sync"`` mode)."""
    return None if client is None else client.dashboard_link


# --- partitions ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Partition:
    """One contiguous tile range of a plan: rows ``start:stop`` of the tiles table."""

    index: int
    start: int
    stop: int
    fingerprint: str
    """sha256 (hex, 16 chars) of the stage name and the partition's tile ids, in order."""

    @property
    def filename(self) -> str:
        return f"part-{self.index:05d}.parquet"


def _fingerprint(stage_name: str, tile_ids: Iterable[str]) -> str:
    h = hashlib.sha256(f"cen.scale/{SCALE_VERSION}/{stage_name}\n".encode())
    for t in tile_ids:
        h.update(str(t).encode())
        h.update(b"\n")
    return h.hexdigest()[:16]


def check_tiles(tiles: pd.DataFrame, key: str = "tile_id", *, source: str = "tiles table") -> None:
    """Raise :class:`ScaleError` unless ``tiles`` has a non-null, unique ``key`` column."""
    if key not in tiles.columns:
        raise ScaleError(f"{source}: no column {key!r} (columns: {', '.join(map(str, tiles.columns))})")
    ids = tiles[key]
    if ids.isna().any():
        raise ScaleError(f"{source}: column {key!r} is null in row {int(ids.isna().to_numpy().argmax())}")
    dup = ids.duplicated()
    if dup.any():
        raise ScaleError(f"{source}: column {key!r} repeats tile {ids[dup].iloc[0]!r} "
                         f"({int(dup.sum())} duplicate rows)")


def plan_partitions(tiles: pd.DataFrame, partition_size: int, stage_name: str,
                    key: str = "tile_id", keep_together: str | None = None) -> list[Partition]:
    """Cut ``tiles`` (in its row order) into ranges of ``partition_size`` rows.

    ``keep_together``: a column whose runs of equal consecutive values are never cut (e.g. the
    four patches of one 512-px tile, which one GPT-4V request covers); a partition then grows
    past ``partition_size`` to the end of the run.
    """
    if partition_size < 1:
        raise ScaleError(f"partition_size must be >= 1, got {partition_size}")
    check_tiles(tiles, key)
    ids = tiles[key].astype(str).tolist()
    if keep_together is not None and keep_together not in tiles.columns:
        raise ScaleError(f"tiles table: no column {keep_together!r} to keep partitions together by")
    groups = tiles[keep_together].tolist() if keep_together else None
    parts, start = [], 0
    while start < len(ids):
        stop = min(start + partition_size, len(ids))
        while groups is not None and 0 < stop < len(ids) and groups[stop] == groups[stop - 1]:
            stop += 1
        parts.append(Partition(len(parts), start, stop, _fingerprint(stage_name, ids[start:stop])))
        start = stop
    return parts


@dataclass(frozen=True)
class PartitionMeta:
    """What a partition file says about itself (stored under :data:`META_KEY`)."""

    index: int
    fingerprint: str
    n_tiles: int
    n_rows: int
    stage: str
    version: str = SCALE_VERSION


def read_partition_meta(path: str | Path) -> PartitionMeta | None:
    """The :class:`PartitionMeta` of a partition file, or ``None`` if it is missing or unreadable."""
    try:
        meta = pq.read_schema(path).metadata or {}
        return PartitionMeta(**json.loads(meta[META_KEY]))
    except (OSError, KeyError, ValueError, TypeError, pa.ArrowException):
        return None


def partition_files(out_dir: str | Path) -> list[Path]:
    """The finished partition files of a folder, in partition order (temporary files excluded)."""
    return sorted(Path(out_dir).glob(PART_GLOB))


# --- one task --------------------------------------------------------------------------------

@dataclass(frozen=True)
class PartitionResult:
    """What one partition task reports back (small: it travels through the scheduler)."""

    index: int
    path: str
    n_rows: int
    skipped: bool
    seconds: float
    worker: str
    peak_rss: int
    """Peak resident memory of the process that ran the task (bytes, ``getrusage`` max RSS)."""
    cpu_seconds: float = 0.0
    """CPU time of the process while the task ran (seconds; ~ the task's, one thread per worker)."""


def _to_arrow(frame: pd.DataFrame) -> pa.Table:
    """A DataFrame as an Arrow table; a GeoDataFrame keeps its GeoParquet ``geo`` metadata."""
    try:
        import geopandas as gpd
    except ImportError:  # pragma: no cover - geopandas is a dependency
        gpd = None
    if gpd is not None and isinstance(frame, gpd.GeoDataFrame):
        from geopandas.io.arrow import _geopandas_to_arrow

        return _geopandas_to_arrow(frame, index=False)
    return pa.Table.from_pandas(frame, preserve_index=False)


def write_partition(frame: pd.DataFrame, path: str | Path, meta: PartitionMeta) -> Path:
    """Write one partition atomically: a hidden temporary file beside ``path``, then rename."""

    table = _to_arrow(frame)
    table = table.replace_schema_metadata({**(table.schema.metadata or {}),
                                           META_KEY: json.dumps(meta.__dict__).encode()})
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")
    return Path(path)


def _check_result(result: Any, tiles: pd.DataFrame, key: str, unique_by: Sequence[str], where: str) -> None:
    if not isinstance(result, pd.DataFrame):
        raise ScaleError(f"{where}: stage returned {type(result).__name__}, expected a DataFrame")
    if key not in result.columns:
        raise ScaleError(f"{where}: stage result has no column {key!r}")
    want = set(tiles[key].astype(str))
    got = result[key].astype(str)
    missing = want - set(got)
    extra = set(got) - want
    if missing or extra:
        raise ScaleError(f"{where}: stage result does not match its tiles: "
                         f"{len(missing)} missing (e.g. {sorted(missing)[:3]}), "
                         f"{len(extra)} unexpected (e.g. {sorted(extra)[:3]})")
    dup = result.duplicated(subset=list(unique_by))
    if dup.any():
        row = result.loc[dup, list(unique_by)].iloc[0].to_dict()
        raise ScaleError(f"{where}: stage result repeats {row} ({int(dup.sum())} duplicate rows)")


def _worker_name() -> str:
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):
        return f"pid:{os.getpid()}"


def _peak_rss() -> int:
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024  # KiB on Linux


def run_partition(stage: Stage, tiles: pd.DataFrame, path: str, partition: Partition, stage_name: str,
                  key: str = "tile_id", unique_by: Sequence[str] | None = None) -> PartitionResult:
    """Task body: skip if ``path`` is already finished, else run ``stage`` and write it atomically."""
    t0, c0 = time.perf_counter(), time.process_time()
    meta = read_partition_meta(path)
    if meta is not None and meta.fingerprint == partition.fingerprint:
        return PartitionResult(partition.index, path, meta.n_rows, True, 0.0, _worker_name(), _peak_rss())
    where = f"{path} (partition {partition.index}, tiles {partition.start}:{partition.stop})"
    result = stage(tiles)
    _check_result(result, tiles, key, unique_by or [key], where)
    write_partition(result, path, PartitionMeta(partition.index, partition.fingerprint, len(tiles),
                                                len(result), stage_name))
    return PartitionResult(partition.index, path, len(result), False, time.perf_counter() - t0,
                           _worker_name(), _peak_rss(), time.process_time() - c0)


# --- a whole stage ---------------------------------------------------------------------------

@dataclass
class StageRun:
    """Summary of :func:`run_stage`: partitions written or skipped, timing and memory per worker."""

    out_dir: Path
    n_tiles: int
    n_partitions: int
    n_computed: int
    n_skipped: int
    n_rows: int
    seconds: float
    dashboard: str | None
    peak_rss_by_worker: dict[str, int] = field(default_factory=dict)
    partitions: list[PartitionResult] = field(default_factory=list)

    @property
    def cpu_seconds(self) -> float:
        """CPU seconds of the computed partitions' tasks, summed over workers."""
        return sum(p.cpu_seconds for p in self.partitions if not p.skipped)

    @property
    def tiles_per_second(self) -> float:
        """Tiles of the computed partitions per wall-clock second (skipped ones excluded)."""
        computed = sum(p.n_rows for p in self.partitions if not p.skipped)
        return computed / self.seconds if self.seconds > 0 else float("nan")


def _slug(name: str) -> str:
    """Short label of a stage name for task keys and the progress bar (``stats_table_from_tiles``)."""
    import re

    return re.sub(r"[^A-Za-z0-9_]+", "-", name.split("[", 1)[0].rsplit(".", 1)[-1]).strip("-") or "stage"


def _stage_name(stage: Stage, name: str | None) -> str:
    if name:
        return name
    target = getattr(stage, "func", stage)  # functools.partial
    return f"{getattr(target, '__module__', '?')}.{getattr(target, '__qualname__', repr(target))}"


def _write_plan(out_dir: Path, stage_name: str, parts: list[Partition], n_tiles: int, overwrite: bool) -> None:
    plan = {"version": SCALE_VERSION, "stage": stage_name, "n_tiles": n_tiles, "n_partitions": len(parts),
            "fingerprint": _fingerprint(stage_name, (p.fingerprint for p in parts))}
    plan_path = out_dir / PLAN_FILE
    if not overwrite:
        if plan_path.exists():
            old = json.loads(plan_path.read_text())
            if old.get("fingerprint") != plan["fingerprint"]:
                raise ScaleError(
                    f"{out_dir}: holds partitions of another run (stage {old.get('stage')!r}, "
                    f"{old.get('n_tiles')} tiles); use another folder or overwrite=True to replace them")
        elif partition_files(out_dir):
            raise ScaleError(f"{out_dir}: holds partition files but no {PLAN_FILE}; use another folder or "
                             "overwrite=True to replace them")
    else:
        # keep what the new plan would write identically (e.g. a tiles table that only grew)
        wanted = {p.filename: p.fingerprint for p in parts}
        for f in partition_files(out_dir):
            meta = read_partition_meta(f)
            if meta is None or wanted.get(f.name) != meta.fingerprint:
                f.unlink()
    for stale in out_dir.glob(".part-*.tmp.parquet"):  # left by a writer killed before its rename
        stale.unlink(missing_ok=True)

    with atomic_path(plan_path) as tmp:
        tmp.write_text(json.dumps(plan, indent=1))


def _progress(total: int, desc: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="part", disable=not enabled)


def run_stage(
    stage: Stage,
    tiles: pd.DataFrame,
    out_dir: str | Path,
    *,
    client: ClientLike = None,
    partition_size: int = 512,
    stage_name: str | None = None,
    key: str = "tile_id",
    unique_by: Sequence[str] | None = None,
    retries: int = 2,
    max_in_flight: int | None = None,
    overwrite: bool = False,
    progress: bool = True,
    keep_together: str | None = None,
    cluster_kwargs: dict[str, Any] | None = None,
) -> StageRun:
    """Run ``stage`` over ``tiles`` in partitions of ``partition_size`` rows into ``out_dir``.

    ``stage`` maps a tiles DataFrame to a result DataFrame holding every input ``key`` (tile id)
    and unique by ``unique_by`` (default: ``key``; e.g. ``["tile_id", "paradigm"]``); it must be
    picklable (a module-level function or ``functools.partial``) to reach remote workers.
    Finished partitions are skipped; failed ones are retried ``retries`` times (worker deaths are
    retried by the scheduler), and partitions that still fail are named in the
    :class:`ScaleError` raised after all others have finished. A folder holding another run's
    partitions is refused unless ``overwrite``; then partitions the new plan would write
    identically are kept (a tiles table that only grew computes only its new partitions) and
    the others deleted. At most ``max_in_flight``
    (default: 2 per worker thread) partitions are queued at once. ``keep_together`` names a
    column whose consecutive equal values stay in one partition (see :func:`plan_partitions`).
    """
    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    name = _stage_name(stage, stage_name)
    tiles = tiles.reset_index(drop=True)
    parts = plan_partitions(tiles, partition_size, name, key, keep_together)
    _write_plan(out_dir, name, parts, len(tiles), overwrite)

    todo, results = [], []
    for p in parts:
        meta = read_partition_meta(out_dir / p.filename)
        if meta is not None and meta.fingerprint == p.fingerprint:
            results.append(PartitionResult(p.index, str(out_dir / p.filename), meta.n_rows, True, 0.0, "", 0))
        else:
            todo.append(p)

    def args(p: Partition) -> tuple:
        return (stage, tiles.iloc[p.start:p.stop], str(out_dir / p.filename), p, name, key, unique_by)

    failures: dict[int, BaseException] = {}
    with connect(client, **(cluster_kwargs or {})) as c, \
            _progress(len(parts), f"{_slug(name)} ({len(parts) - len(todo)} done before)", progress) as bar:
        bar.update(len(parts) - len(todo))
        link = dashboard_link(c)
        if link and todo and progress:
            bar.write(f"Dask dashboard: {link}")
        if c is None:
            for p in todo:
                try:
                    results.append(run_partition(*args(p)))
                except Exception as exc:  # noqa: BLE001 - reported together at the end, as on a cluster
                    failures[p.index] = exc
                bar.update(1)
        else:
            results += _run_on_cluster(c, todo, args, name, retries, max_in_flight, bar, failures)
    if failures:
        first_index, first = next(iter(failures.items()))
        raise ScaleError(
            f"{out_dir}: {len(failures)} of {len(parts)} partitions failed "
            f"({', '.join(parts[i].filename for i in sorted(failures))}); the others are written and "
            f"a re-run resumes. First error (partition {first_index}): {type(first).__name__}: {first}"
        ) from first

    results.sort(key=lambda r: r.index)
    peaks: dict[str, int] = {}
    for r in results:
        if not r.skipped:
            peaks[r.worker] = max(peaks.get(r.worker, 0), r.peak_rss)
    return StageRun(out_dir, len(tiles), len(parts), len(todo), len(parts) - len(todo),
                    sum(r.n_rows for r in results), time.perf_counter() - t0, link, peaks, results)


def _run_on_cluster(client: Any, todo: list[Partition], args: Callable[[Partition], tuple], name: str,
                    retries: int, max_in_flight: int | None, bar: Any,
                    failures: dict[int, BaseException]) -> list[PartitionResult]:
    from distributed import as_completed

    if max_in_flight is None:
        threads = sum(client.nthreads().values()) or 1
        max_in_flight = 2 * threads
    queue = iter(todo)
    results: list[PartitionResult] = []
    slug = _slug(name)

    index_of: dict[str, int] = {}

    def submit(p: Partition):
        key = f"cen-scale-{slug}-{p.index:05d}-{p.fingerprint}"
        index_of[key] = p.index
        return client.submit(run_partition, *args(p), key=key, retries=retries, pure=False)

    # range first: zip must not pull (and drop) a partition from the queue once the window is full
    pending = as_completed([submit(p) for _, p in zip(range(max_in_flight), queue)])
    for fut in pending:
        try:
            results.append(fut.result())
        except Exception as exc:  # noqa: BLE001 - reported together at the end
            failures[index_of[fut.key]] = exc
        fut.release()
        bar.update(1)
        nxt = next(queue, None)
        if nxt is not None:
            pending.add(submit(nxt))
    return results


# --- reading and reducing partitioned tables -------------------------------------------------

def read_stage(out_dir: str | Path, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """All partitions of a stage folder as one DataFrame (GeoDataFrame if the files are GeoParquet).

    For tables too big for memory use :func:`reduce_partitions` or :func:`dask_frame`.
    """
    files = partition_files(out_dir)
    if not files:
        raise ScaleError(f"{out_dir}: no partition files ({PART_GLOB})")
    if b"geo" in (pq.read_schema(files[0]).metadata or {}):
        import geopandas as gpd

        return pd.concat([gpd.read_parquet(f, columns=columns) for f in files], ignore_index=True)
    return pd.concat([pd.read_parquet(f, columns=columns) for f in files], ignore_index=True)


def merge_stage(out_dir: str | Path, path: str | Path) -> Path:
    """Concatenate a stage folder's partitions into one Parquet file, one partition at a time.

    Memory holds one partition; the file is written atomically and keeps GeoParquet metadata
    when the partitions have it (e.g. to hand ``stats.parquet`` to the next notebook).
    """

    files = partition_files(out_dir)
    if not files:
        raise ScaleError(f"{out_dir}: no partition files ({PART_GLOB}) to merge")
    first = pq.read_schema(files[0])
    keep = {k: v for k, v in (first.metadata or {}).items() if k != META_KEY}
    try:  # an all-null column in one partition has type null: promote it to the others' type
        schema = pa.unify_schemas([pq.read_schema(f).remove_metadata() for f in files],
                                  promote_options="permissive").with_metadata(keep)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise ScaleError(f"{out_dir}: partitions have incompatible columns ({exc})") from exc
    with atomic_path(path) as tmp, pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
        for f in files:
            table = pq.read_table(f)
            if table.schema.names != schema.names:
                raise ScaleError(f"{f}: columns {table.schema.names} differ from {files[0].name}'s {first.names}")
            writer.write_table(table.replace_schema_metadata(keep).cast(schema))
    return Path(path)


def dask_frame(source: str | Path, columns: Sequence[str] | None = None) -> "dask.dataframe.DataFrame":  # noqa: F821
    """A lazy :mod:`dask.dataframe` over a stage folder (one Dask partition per file) or a Parquet file."""
    import dask.dataframe as dd

    files = [str(f) for f in _parquet_files(source)]
    return dd.read_parquet(files, columns=list(columns) if columns else None)


def _parquet_files(source: str | Path | Sequence[str | Path]) -> list[Path]:
    if isinstance(source, (list, tuple)):
        return [Path(s) for s in source]
    source = Path(source)
    if source.is_dir():
        files = partition_files(source) or sorted(
            p for p in source.glob("*.parquet") if not p.name.startswith((".", "_")))
        if not files:
            raise ScaleError(f"{source}: no Parquet files")
        return files
    if not source.exists():
        raise ScaleError(f"{source}: no such file or folder")
    return [source]


@dataclass(frozen=True)
class Chunk:
    """A run of row groups of one Parquet file: the unit of work of :func:`reduce_partitions`."""

    path: str
    row_groups: tuple[int, ...]
    n_rows: int


def plan_chunks(source: str | Path | Sequence[str | Path], rows_per_chunk: int = 100_000) -> list[Chunk]:
    """Split Parquet input (a file, a folder of parts or a list of files) into row-group chunks.

    A chunk holds whole row groups of one file, at most ``rows_per_chunk`` rows unless a single
    row group is larger.
    """
    chunks = []
    for f in _parquet_files(source):
        try:
            md = pq.ParquetFile(f).metadata
        except (OSError, pa.ArrowException) as exc:
            raise ScaleError(f"{f}: not a readable Parquet file ({exc})") from exc
        groups: list[int] = []
        n = 0
        for g in range(md.num_row_groups):
            rows = md.row_group(g).num_rows
            if groups and n + rows > rows_per_chunk:
                chunks.append(Chunk(str(f), tuple(groups), n))
                groups, n = [], 0
            groups.append(g)
            n += rows
        if groups:
            chunks.append(Chunk(str(f), tuple(groups), n))
    return chunks


def reduce_chunk(chunk: Chunk, partial: Callable[[pd.DataFrame], A], combine: Callable[[A, A], A],
                 columns: Sequence[str] | None, batch_size: int) -> A | None:
    """Task body: fold ``partial`` over ``chunk`` in record batches of ``batch_size`` rows."""
    pf = pq.ParquetFile(chunk.path)
    missing = [c for c in columns or [] if c not in pf.schema_arrow.names]
    if missing:
        raise ScaleError(f"{chunk.path}: no column {missing[0]!r} (columns: {', '.join(pf.schema_arrow.names)})")
    acc: A | None = None
    for batch in pf.iter_batches(batch_size=batch_size, row_groups=list(chunk.row_groups),
                                 columns=list(columns) if columns else None):
        part = partial(batch.to_pandas())
        acc = part if acc is None else combine(acc, part)
    return acc


def reduce_partitions(
    source: str | Path | Sequence[str | Path],
    partial: Callable[[pd.DataFrame], A],
    combine: Callable[[A, A], A],
    *,
    columns: Sequence[str] | None = None,
    client: ClientLike = None,
    rows_per_chunk: int = 100_000,
    batch_size: int = 10_000,
    progress: bool = True,
    cluster_kwargs: dict[str, Any] | None = None,
) -> A:
    """Fold a partitioned table into one accumulator with bounded memory.

    ``partial(batch) -> acc`` summarises a DataFrame of at most ``batch_size`` rows (only
    ``columns``); ``combine(a, b) -> acc`` merges two summaries and must be associative; it need not be
    commutative (results are folded in input order, so order-keeping summaries such as per-caption
    length lists come out as in one pass). Each chunk of row groups is one task; the client folds
    task results as soon as all earlier chunks are in, so memory stays at one batch per worker
    plus the accumulators.
    """
    chunks = plan_chunks(source, rows_per_chunk)
    if not chunks:
        raise ScaleError(f"{source}: no rows to reduce")
    acc: A | None = None

    def fold(part: A | None) -> None:
        nonlocal acc
        acc = part if acc is None else (acc if part is None else combine(acc, part))

    with connect(client, **(cluster_kwargs or {})) as c, _progress(len(chunks), "reduce", progress) as bar:
        if c is None:
            for ch in chunks:
                fold(reduce_chunk(ch, partial, combine, columns, batch_size))
                bar.update(1)
        else:
            from distributed import as_completed

            link = dashboard_link(c)
            if link and progress:
                bar.write(f"Dask dashboard: {link}")
            futures = [c.submit(reduce_chunk, ch, partial, combine, columns, batch_size, pure=False)
                       for ch in chunks]
            position = {f.key: i for i, f in enumerate(futures)}
            done: dict[int, A | None] = {}
            next_index = 0
            # fold in input order (combine need not be commutative), as soon as a prefix is ready
            for fut in as_completed(futures):
                done[position[fut.key]] = fut.result()
                fut.release()
                while next_index in done:
                    fold(done.pop(next_index))
                    next_index += 1
                bar.update(1)
    if acc is None:
        raise ScaleError(f"{source}: no rows to reduce")
    return acc


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
            tiles = pd.read_parquet(tiles_path, columns=["tile_id", "label_path"])
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

    Each shard (``shard_size`` tiles; the four patches of a 512-px tile never split) is one task
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
    table, _ = _read_tiles(stats)
    table = table.reset_index(drop=True)
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


def _estimate_merge(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    both = pd.concat([a, b], ignore_index=True)
    summed = both.groupby("model", sort=False).agg(
        requests=("requests", "sum"), captions=("captions", "sum"), input_tokens=("input_tokens", "sum"),
        output_tokens=("output_tokens", "sum"), usd_per_1m_in=("usd_per_1m_in", "first"),
        usd_per_1m_out=("usd_per_1m_out", "first"), cost_usd=("cost_usd", "sum"),
        exact_tokens=("exact_tokens", "all"), priced=("priced", "all")).reset_index()
    summed["cost_usd"] = summed["cost_usd"].where(summed["priced"])  # unpriced stays NaN
    return summed[list(a.columns)]


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
    return reduce_partitions(source, partial, _estimate_merge, columns=columns, client=client,
                             rows_per_chunk=rows_per_chunk, batch_size=batch_size, progress=progress,
                             cluster_kwargs=cluster_kwargs)
