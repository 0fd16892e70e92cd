"""``tiles.parquet`` + label maps -> ``vqa.parquet``: the shared sampler loop and writer.

:func:`build_questions` streams the eligible tiles of a workdir's tiles table in chunks
(``chunk_size`` tiles: their label maps are read, :func:`~cen.vqa.features.tile_features`
computed for the whole chunk, every family asked for its questions), writes each chunk's rows
to one Parquet file under a temporary name and renames it when all chunks are done
(:func:`cen.tables.atomic_path`), so a killed run leaves no half-written ``vqa.parquet``.
:func:`questions_from_labels` is the same loop over maps already in memory.

Per tile, ``per_tile`` questions are shared out over the tasks asked, one round at a time
(:func:`quotas`: each task that can still ask a distinct question gets one more, in random
order), so a tile gets ``per_tile`` questions unless it has fewer to offer; the tasks share
them evenly where they can. After each chunk, yes/no
questions of a task whose running share of "yes" has left 45-55 % are dropped at random from the
majority answer until it is back inside, or until yes and no differ by one question (a task with
three questions can be 2 : 1); the drops are counted in :attr:`BuildResult.dropped`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Iterable, Iterator, Sequence

import numpy as np
import pandas as pd

from cen.vqa import adjacency, area, counting, dominant, location, presence, referring, relative_position, season
from cen.vqa.features import TileFeatures, tile_features
from cen.vqa.sampler import Chunk, PositionDealer, render

FAMILIES: dict[str, ModuleType] = {m.TASK: m for m in (
    presence, area, counting, dominant, adjacency, relative_position, location, season, referring)}
"""Question family modules by task name, in the order of :data:`TASKS`."""

TASKS: tuple[str, ...] = tuple(FAMILIES)
"""All tasks: presence, area, counting, dominant, adjacency, relative_position, location, season, referring."""

LABEL_FREE_TASKS = ("location", "season")
"""Tasks answered from the tile's metadata, not its label map."""

COLUMNS: tuple[str, ...] = ("tile_id", "qid", "task", "format", "question", "answer", "choices", "answer_value",
                            "class_a", "class_b", "region", "template_id", "split")
"""Columns of ``vqa.parquet``, in order (see the :mod:`cen.vqa` docstring)."""

VQA_VERSION = "1"
"""Version of the questions and their semantics; stored in the Parquet file's metadata (``cen_vqa_version``)."""

BALANCE_BAND = (0.45, 0.55)
"""Running share of "yes" a yes/no task is kept within (by dropping), tighter than the 40-60 % promised."""

DEFAULT_CHUNK = 1024


def _schema():
    import pyarrow as pa

    s = pa.string()
    fields = [pa.field(c, pa.list_(s) if c == "choices" else s) for c in COLUMNS]
    return pa.schema(fields, metadata={"cen_vqa_version": VQA_VERSION})


def _check_tasks(tasks: Iterable[str] | None) -> tuple[str, ...]:
    if tasks is None:
        return TASKS
    tasks = tuple(dict.fromkeys(str(t) for t in tasks))
    unknown = [t for t in tasks if t not in FAMILIES]
    if unknown:
        raise ValueError(f"unknown task {unknown[0]!r}; tasks are {', '.join(TASKS)}")
    if not tasks:
        raise ValueError("no task asked for")
    return tasks


@dataclass
class _State:
    """What carries from one chunk to the next: balance counts and the choice-position dealers."""

    yes: dict[str, int] = field(default_factory=dict)
    no: dict[str, int] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)
    dealers: dict[str, PositionDealer] = field(default_factory=dict)


def quotas(capacity: np.ndarray, per_tile: int, rng: np.random.Generator) -> np.ndarray:
    """Questions per tile and task ``(n, T)``: ``per_tile`` shared out round by round, one more
    question to each task that can still ask one (in random order per tile) until the tile has
    ``per_tile`` or no task has anything left. ``capacity`` ``(n, T)``: distinct questions each
    task could ask."""
    n, t = capacity.shape
    quota = np.zeros((n, t), np.int64)
    left = np.full(n, int(per_tile), np.int64)
    while True:
        spare = (capacity > quota) & (left > 0)[:, None]
        if not spare.any():
            return quota
        order = np.argsort(rng.random((n, t)) + 2.0 * ~spare, axis=1)
        spare_sorted = np.take_along_axis(spare, order, axis=1)
        take_sorted = spare_sorted & (np.cumsum(spare_sorted, axis=1) <= left[:, None])
        take = np.zeros_like(spare)
        np.put_along_axis(take, order, take_sorted, axis=1)
        quota += take
        left -= take.sum(axis=1)


def _balance(frame: pd.DataFrame, task: str, state: _State, rng: np.random.Generator) -> pd.DataFrame:
    """Drop majority answers of a yes/no task's chunk rows until the running share is in the band."""
    is_yes = (frame["answer"] == "yes").to_numpy()
    y = state.yes.get(task, 0) + int(is_yes.sum())
    n = state.no.get(task, 0) + int((~is_yes).sum())
    hi = BALANCE_BAND[1]  # dropping the majority keeps the minority's share >= 1 - hi as well
    drop = 0
    majority_yes = y > n
    big, small = (y, n) if majority_yes else (n, y)
    while big - drop > 1 and (big - drop) / (big - drop + small) > hi:
        drop += 1
    keep = np.ones(len(frame), bool)
    if drop:
        idx = np.flatnonzero(is_yes if majority_yes else ~is_yes)
        keep[rng.choice(idx, size=min(drop, len(idx)), replace=False)] = False
        state.dropped[task] = state.dropped.get(task, 0) + int((~keep).sum())
    kept = frame[keep]
    k_yes = int((kept["answer"] == "yes").sum())
    state.yes[task] = state.yes.get(task, 0) + k_yes
    state.no[task] = state.no.get(task, 0) + len(kept) - k_yes
    return kept


def chunk_questions(chunk: Chunk, tasks: Sequence[str], per_tile: int, state: _State) -> pd.DataFrame:
    """The questions of one chunk (all tasks), rows ordered by tile then task, with ``qid``."""
    capacity = np.stack([FAMILIES[t].candidates(chunk).sum(axis=1) for t in tasks], axis=1)
    quota = quotas(capacity, per_tile, np.random.default_rng([chunk.seed, chunk.index, 1000]))
    parts = []
    for t, task in enumerate(tasks):
        module = FAMILIES[task]
        rng = np.random.default_rng([chunk.seed, chunk.index, TASKS.index(task)])
        picks = module.sample(chunk, quota[:, t], rng)
        frame = render(picks, chunk, module.TEMPLATES, rng, state.dealers.setdefault(task, PositionDealer()))
        frame["_tile"] = picks.tile
        frame["_task"] = t
        if module.FORMAT == "yes_no" and len(frame):
            frame = _balance(frame, task, state, rng)
        parts.append(frame)
    out = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=[*COLUMNS, "_tile", "_task"])
    out = out.sort_values(["_tile", "_task"], kind="stable", ignore_index=True)
    k = out.groupby(["_tile", "_task"], sort=False).cumcount().to_numpy()
    out["qid"] = [f"{a}/{b}/{c}" for a, b, c in zip(out["tile_id"].tolist(), out["task"].tolist(), k.tolist())]
    return out[list(COLUMNS)]


def _meta_frame(rows: pd.DataFrame, tasks: Sequence[str]) -> pd.DataFrame:
    """Metadata the label-free tasks read (lat, lon, country, continent, s2_date) for tiles ``rows``."""
    meta = pd.DataFrame(index=range(len(rows)))
    lon = pd.to_numeric(rows["lon"], errors="coerce").to_numpy(float) if "lon" in rows else np.full(len(rows), np.nan)
    lat = pd.to_numeric(rows["lat"], errors="coerce").to_numpy(float) if "lat" in rows else np.full(len(rows), np.nan)
    meta["lon"], meta["lat"] = lon, lat
    if "location" in tasks:
        found = location.lookup(lon, lat)
        meta["country"], meta["continent"] = found["country"].to_numpy(object), found["continent"].to_numpy(object)
    if "season" in tasks:
        has_item = rows["s2_item_id"].notna().to_numpy() if "s2_item_id" in rows else np.zeros(len(rows), bool)
        dates = pd.to_datetime(rows["datetime"], utc=True, errors="coerce") if "datetime" in rows else None
        meta["s2_date"] = (dates.where(has_item).to_numpy() if dates is not None
                           else np.full(len(rows), np.datetime64("NaT"), "datetime64[ns]"))
    return meta


def _features_of(maps: np.ndarray | list[np.ndarray | None]) -> tuple[TileFeatures, np.ndarray]:
    """Chunk-level features (zeros for tiles without a map) and the labelled mask."""
    if isinstance(maps, np.ndarray) and maps.ndim == 3:
        return tile_features(maps), np.ones(len(maps), bool)
    n = len(maps)
    feats = TileFeatures.empty(n)
    labelled = np.array([m is not None for m in maps], bool)
    by_shape: dict[tuple[int, int], list[int]] = {}
    for i, m in enumerate(maps):
        if m is not None:
            by_shape.setdefault(m.shape, []).append(i)
    for idx in by_shape.values():
        part = tile_features(np.stack([maps[i] for i in idx]))
        for name in TileFeatures.__dataclass_fields__:
            getattr(feats, name)[idx] = getattr(part, name)
    return feats, labelled


def stream_questions(batches: Iterable[tuple[Any, Sequence[str]]], *, per_tile: int = 10,
                     tasks: Iterable[str] | None = None, seed: int = 0) -> Iterator[pd.DataFrame]:
    """The questions of batches of label maps in memory, one table per batch (each batch one
    chunk: ``(maps, tile_ids)`` with maps ``(N, H, W)`` or a list, ``None`` for a tile without a
    map). Label tasks only (no metadata); the balance state carries from batch to batch."""
    tasks = _check_tasks(tasks)
    state = _State()
    for c, (maps, tile_ids) in enumerate(batches):
        ids = np.array([str(t) for t in tile_ids], dtype=object)
        feats, labelled = _features_of(maps if isinstance(maps, np.ndarray) else list(maps))
        chunk = Chunk(c, int(seed), ids, np.full(len(ids), "train", object), labelled, feats,
                      pd.DataFrame(index=range(len(ids))))
        yield chunk_questions(chunk, tasks, per_tile, state)


def questions_from_labels(labels: np.ndarray | Sequence[np.ndarray], tile_ids: Sequence[str], *,
                          splits: Sequence[str] | None = None, meta: pd.DataFrame | None = None,
                          per_tile: int = 10, tasks: Iterable[str] | None = None, seed: int = 0,
                          chunk_size: int = DEFAULT_CHUNK) -> pd.DataFrame:
    """The questions of label maps in memory (``(N, H, W)`` or a list of maps; ``None`` for a tile
    without one), in :data:`COLUMNS`. ``meta``: optional per-tile ``lon``, ``lat``, ``s2_item_id``,
    ``datetime`` (for location and season). Same sampler as :func:`build_questions`."""
    tasks = _check_tasks(tasks)
    ids = np.array([str(t) for t in tile_ids], dtype=object)
    maps = list(labels)
    if len(maps) != len(ids):
        raise ValueError(f"{len(maps)} label maps but {len(ids)} tile ids")
    split = np.array(list(splits) if splits is not None else ["train"] * len(ids), dtype=object)
    rows = meta.reset_index(drop=True) if meta is not None else pd.DataFrame(index=range(len(ids)))
    state = _State()
    parts = []
    for c, start in enumerate(range(0, len(ids), chunk_size)):
        sl = slice(start, start + chunk_size)
        feats, labelled = _features_of(maps[sl])
        chunk = Chunk(c, int(seed), ids[sl], split[sl], labelled, feats, _meta_frame(rows.iloc[sl], tasks))
        parts.append(chunk_questions(chunk, tasks, per_tile, state))
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in COLUMNS})
    return pd.concat(parts, ignore_index=True)


@dataclass
class BuildResult:
    """What :func:`build_questions` did: counts for the accounting line."""

    path: Path | None
    n_tiles: int
    n_eligible: int
    n_read: int
    per_task: dict[str, int]
    skipped: dict[str, int]
    failed: int
    dropped: dict[str, int]

    @property
    def n_questions(self) -> int:
        return int(sum(self.per_task.values()))

    def summary(self) -> str:
        """One accounting line: tiles read, questions per task, tiles skipped with reason."""
        tasks = ", ".join(f"{t} {n}" for t, n in self.per_task.items())
        skipped = ", ".join(f"{n} {r}" for r, n in self.skipped.items() if n) or "none"
        dropped = sum(self.dropped.values())
        return (f"{self.n_tiles} tiles in the table, {self.n_eligible} eligible, {self.n_read} label maps read; "
                f"{self.n_questions} questions ({tasks}); skipped: {skipped}; {self.failed} failed"
                + (f"; {dropped} yes/no questions dropped for balance" if dropped else "")
                + (f" -> {self.path}" if self.path else ""))


def eligible_rows(tiles: pd.DataFrame) -> tuple[np.ndarray, dict[str, int]]:
    """Which rows of a tiles table get questions (:func:`cen.tiling.eligible_tiles`: the
    ``eligible`` column, or every row with a label path in a table without it) and the other
    rows' count per exclusion reason (:func:`cen.tiling.exclusion_counts`)."""
    from cen import tiling

    chosen = tiling.eligible_tiles(tiles)
    return np.asarray(tiles.index.isin(chosen.index), bool), tiling.exclusion_counts(tiles)


def build_questions(workdir: str | Path, *, per_tile: int = 10, tasks: Iterable[str] | None = None, seed: int = 0,
                    out: str | Path | None = None, chunk_size: int = DEFAULT_CHUNK,
                    progress: bool = True) -> BuildResult:
    """``WORKDIR/tiles.parquet`` and its label maps -> ``WORKDIR/vqa.parquet`` (or ``out``).

    Raises ``FileNotFoundError`` / ``KeyError`` naming the tiles table when it is missing or
    lacks ``tile_id``/``label_path``, and ``RuntimeError`` (writing nothing) when no question
    could be asked. Tiles whose label map cannot be read are listed in ``vqa_failures.parquet``.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq
    from tqdm.auto import tqdm

    from cen.stats import read_label_map
    from cen.tables import atomic_path, read_table, resolve_path, write_failures

    if int(per_tile) < 1:
        raise ValueError(f"per_tile must be at least 1, got {per_tile}")
    tasks = _check_tasks(tasks)
    workdir = Path(workdir)
    tiles_path = workdir / "tiles.parquet"
    out = Path(out) if out is not None else workdir / "vqa.parquet"
    tiles = read_table(tiles_path, ("tile_id", "label_path"), what="tiles table", made_by="notebook 01 / `cen tiles`")
    tiles = tiles.drop(columns=["geometry"], errors="ignore").reset_index(drop=True)
    dup = tiles["tile_id"].astype(str).duplicated()
    if dup.any():
        raise ValueError(f"{tiles_path}: tile_id {tiles['tile_id'].astype(str)[dup].iloc[0]!r} occurs more than once "
                         f"({int(dup.sum())} repeated rows); question ids would collide")
    mask, skipped = eligible_rows(tiles)
    rows = tiles[mask].reset_index(drop=True)
    split = (rows["split"].astype(object).where(rows["split"].notna(), "unsplit") if "split" in rows
             else pd.Series("unsplit", index=rows.index, dtype=object)).to_numpy(object)
    ids = rows["tile_id"].astype(str).to_numpy(object)
    state = _State()
    failures: list[dict[str, Any]] = []
    per_task = {t: 0 for t in tasks}
    n_read = 0
    schema = _schema()
    with atomic_path(out) as tmp:
        writer = pq.ParquetWriter(tmp, schema)
        try:
            bar = tqdm(total=len(rows), desc="vqa questions", unit="tile", disable=not progress)
            for c, start in enumerate(range(0, len(rows), chunk_size)):
                part = rows.iloc[start : start + chunk_size]
                maps: list[np.ndarray | None] = []
                failed = np.zeros(len(part), bool)
                for k, (tile_id, value) in enumerate(zip(part["tile_id"].astype(str), part["label_path"])):
                    path = resolve_path(value, workdir)
                    if path is None:
                        maps.append(None)
                        continue
                    try:
                        maps.append(read_label_map(path))
                        n_read += 1
                    except (OSError, ValueError, TypeError) as exc:
                        failures.append({"tile_id": tile_id, "stage": "vqa", "error": " ".join(str(exc).split())})
                        maps.append(None)
                        failed[k] = True
                feats, labelled = _features_of(maps)
                sl = slice(start, start + len(part))
                chunk = Chunk(c, int(seed), ids[sl], split[sl], labelled, feats,
                              _meta_frame(part.reset_index(drop=True), tasks), failed)
                frame = chunk_questions(chunk, tasks, per_tile, state)
                for task, n in frame["task"].value_counts().items():
                    per_task[str(task)] += int(n)
                if len(frame):
                    writer.write_table(pa.Table.from_pandas(frame, schema=schema, preserve_index=False))
                bar.update(len(part))
            bar.close()
        finally:
            writer.close()
        total = sum(per_task.values())
        if total == 0:
            write_failures(out, failures)
            raise RuntimeError(f"{tiles_path}: no question could be asked ({len(tiles)} tiles, {int(mask.sum())} "
                               f"eligible, {n_read} label maps read, {len(failures)} unreadable; tasks asked: "
                               f"{', '.join(tasks)}); {out} not written")
    write_failures(out, failures)
    if failures:
        skipped["label map unreadable"] = len(failures)
    return BuildResult(out, len(tiles), int(mask.sum()), n_read, per_task, skipped, len(failures), dict(state.dropped))


def read_questions(path: str | Path) -> pd.DataFrame:
    """Read ``vqa.parquet``, checking its columns."""
    from cen.tables import read_table

    return read_table(path, COLUMNS, what="questions table", made_by="`cen vqa build` / notebook 09")


def answer_values(questions: pd.DataFrame) -> list[Any]:
    """The decoded ``answer_value`` column (bool, int, float, str or ``[x0, y0, x1, y1]``)."""
    return [json.loads(v) for v in questions["answer_value"]]
