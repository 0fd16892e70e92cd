"""The partition engine: cut a tiles table into tile ranges, run a stage on each as one task,
write each result atomically with its fingerprint, and read or merge a stage folder."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import resource
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from cen.scale.cluster import ClientLike, connect, dashboard_link
from cen.tables import atomic_path

SCALE_VERSION = "1"
"""Version of the partition layout and metadata written by this module."""

META_KEY = b"cen.scale"
"""Parquet key-value metadata key holding a partition's :class:`PartitionMeta` as JSON."""

PART_GLOB = "part-*.parquet"
PLAN_FILE = "_plan.json"

Stage = Callable[[pd.DataFrame], pd.DataFrame]
"""A stage: tiles DataFrame -> result DataFrame keyed by tile id (picklable)."""


class ScaleError(RuntimeError):
    """A scaled run cannot proceed; the message names the folder, partition, file or tile."""




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
    """A DataFrame as an Arrow table; a GeoDataFrame keeps its GeoParquet ``geo`` metadata
    (written by geopandas' own ``to_parquet`` into memory, so the encoding is geopandas')."""
    import geopandas as gpd

    if isinstance(frame, gpd.GeoDataFrame):
        buf = io.BytesIO()
        frame.to_parquet(buf, index=False, compression=None)
        return pq.read_table(pa.BufferReader(buf.getvalue()))
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


