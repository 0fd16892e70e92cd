"""Fold partitioned tables (a folder of parts, a Parquet file, a file list) into one summary
with bounded memory: chunks of row groups as tasks, folded in input order."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence, TypeVar

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from cen.scale.cluster import ClientLike, connect, dashboard_link
from cen.scale.partitions import ScaleError, _progress, partition_files

A = TypeVar("A")


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


