"""Files of the statistics stage: label maps in, ``stats.parquet`` out.

:func:`run_stats_stage` is the stage (``tiles.parquet`` -> ``stats.parquet`` plus a failures
table beside it; what ``cen stats`` runs), :func:`compute_stats` the same returning only the
table (notebook 02); :func:`stats_table_from_tiles` is its in-memory part; :func:`read_stats` is
how later stages read the table.

Only *eligible* tiles get statistics (:func:`cen.tiling.eligible_tiles`: the tiles table's
``eligible`` column, or every row with a label path in a table without it), so every later
stage, which works from ``stats.parquet``, sees eligible tiles only. Every label path stored in a
tiles table is opened through :func:`cen.tables.resolve_path` against the tiles table's folder
(the workdir), so relative paths and moved workdirs read back. A tile that cannot be read or
counted is recorded (``tile_id, stage, error``) and the others go on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from cen.stats.contexts import DEFAULT_SEED
from cen.stats.counting import LabelError
from cen.stats.table import STATS_REQUIRED, STATS_VERSION, stats_table
from cen.tables import failures_path, read_table, resolve_path, write_failures, write_parquet

STAGE = "stats"
"""The ``stage`` of this stage's rows in a failures table."""

TILE_ERRORS: tuple[type[BaseException], ...] = (OSError, ValueError, TypeError)
"""What a bad tile raises while it is read and counted (missing or unreadable file, codes outside
the product, a map of the wrong shape); :func:`stats_table_from_tiles` records these per tile."""


class StatsError(ValueError):
    """The statistics stage has nothing to do (no eligible tile, no label path, every tile failed)."""


def read_label_map(path: str | Path) -> np.ndarray:
    """Read a label file as ``(H, W)`` ChatEarthNet indices: band 1 of a GeoTIFF of WorldCover
    codes, or (``.png``) a label map rendered in the ChatEarthNet colours, as the release ships."""
    import rasterio

    from cen.landcover import codes_to_indices

    if Path(path).suffix.lower() == ".png":
        from cen import tiling

        if not Path(path).exists():
            raise FileNotFoundError(f"{path}: label PNG not found")
        try:
            return tiling.read_label_png(path)
        except ValueError as exc:
            raise LabelError(str(exc)) from exc

    try:
        with rasterio.open(path) as src:
            codes = src.read(1)
    except rasterio.errors.RasterioIOError as exc:
        raise FileNotFoundError(f"{path}: cannot read the label GeoTIFF ({exc})") from exc
    try:
        return codes_to_indices(codes)
    except (ValueError, TypeError) as exc:
        raise LabelError(f"{path}: {exc}") from exc


def tiles_workdir(tiles: pd.DataFrame | str | Path, base_dir: str | Path | None = None) -> Path:
    """The folder a tiles table's relative paths are relative to: ``base_dir`` if given, else the
    parquet's folder, else (a DataFrame) the current directory."""
    if base_dir is not None:
        return Path(base_dir)
    if isinstance(tiles, pd.DataFrame):
        return Path(".")
    return Path(tiles).parent


def label_paths(tiles: pd.DataFrame, tile_ids: Iterable[str], workdir: str | Path,
                source: str = "tiles table") -> list[Path]:
    """The label file of each of ``tile_ids`` (``label_path`` of the tiles table, resolved
    against ``workdir``); raises ``ValueError`` naming the first tile without one."""
    labelled = tiles[tiles["label_path"].notna()]
    paths = dict(zip(labelled["tile_id"].astype(str), labelled["label_path"]))
    out = []
    for tile_id in map(str, tile_ids):
        if tile_id not in paths:
            raise ValueError(f"{source}: no label_path for tile {tile_id!r}")
        out.append(resolve_path(paths[tile_id], workdir))
    return out


def _load_tiles(tiles: pd.DataFrame | str | Path) -> tuple[pd.DataFrame, str]:
    if isinstance(tiles, pd.DataFrame):
        table, source = tiles, "tiles table"
    else:
        source = str(tiles)
        table = read_table(Path(tiles), ("tile_id", "label_path"), what="tiles table",
                           made_by="notebook 01 / cen tiles")
    for col in ("tile_id", "label_path"):
        if col not in table.columns:
            raise KeyError(f"{source}: missing column {col!r} (columns: {', '.join(map(str, table.columns))})")
    return table, source


def stats_rows(tiles: pd.DataFrame) -> pd.DataFrame:
    """The rows of a tiles table that get statistics: eligible (:func:`cen.tiling.eligible_tiles`)
    and with a ``label_path``, in the table's order."""
    from cen.tiling import eligible_tiles

    rows = eligible_tiles(tiles)
    return rows[rows["label_path"].notna()].reset_index(drop=True)


def stats_table_from_tiles(
    tiles: pd.DataFrame | str | Path,
    *,
    compat: bool = False,
    seed: int = DEFAULT_SEED,
    base_dir: str | Path | None = None,
    progress: bool = True,
    chunk_size: int = 2048,
    failures: list[dict] | None = None,
) -> pd.DataFrame:
    """Statistics of the eligible tiles of a tiles table (``tiles.parquet`` or its DataFrame).

    Reads the ``label_path`` of every row of :func:`stats_rows` (GeoTIFF of WorldCover codes or
    ChatEarthNet-colour PNG, see :func:`read_label_map`; relative paths resolve against
    ``base_dir``, default the parquet's folder, for a DataFrame the working directory), converts
    to ChatEarthNet indices and returns :func:`~cen.stats.stats_table` rows in the tiles table's
    order. Excluded tiles and rows without a ``label_path`` (image-only tiles) have no statistics
    and are left out. Maps are read ``chunk_size`` at a time (tiles of different sizes in groups
    of equal shape), so memory holds one chunk of maps plus the growing table.

    ``failures``: a list to append ``{tile_id, stage, error}`` to for each tile that cannot be
    read or counted (:data:`TILE_ERRORS`); that tile is left out and the others go on. Without
    it, the first bad tile raises.
    """
    table, _ = _load_tiles(tiles)
    workdir = tiles_workdir(tiles, base_dir)
    table = stats_rows(table)
    ids = table["tile_id"].astype(str).tolist()
    paths = table["label_path"].tolist()
    parts = []
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(table), desc="tile statistics", unit="tile")
    try:
        for start in range(0, len(table), chunk_size):  # bounded memory: one chunk of maps at a time
            maps: dict[int, np.ndarray] = {}
            for i, p in enumerate(paths[start : start + chunk_size], start=start):
                try:
                    maps[i] = read_label_map(resolve_path(p, workdir))
                except TILE_ERRORS as exc:
                    if failures is None:
                        raise
                    failures.append({"tile_id": ids[i], "stage": STAGE, "error": _one_line(exc)})
                    if bar is not None:
                        bar.set_postfix(failed=len(failures), refresh=False)
            by_shape: dict[tuple[int, int], list[int]] = {}
            for i, m in maps.items():
                by_shape.setdefault(m.shape, []).append(i)
            for idx in by_shape.values():
                part = stats_table(np.stack([maps[i] for i in idx]), [ids[i] for i in idx], compat=compat, seed=seed)
                part.index = idx
                parts.append(part)
            if bar is not None:
                bar.update(min(chunk_size, len(table) - start))
    finally:
        if bar is not None:
            bar.close()
    if not parts:
        return stats_table(np.zeros((0, 256, 256), np.uint8), [], compat=compat, seed=seed)
    return pd.concat(parts).sort_index().reset_index(drop=True)


def _one_line(exc: BaseException) -> str:
    text = exc.args[0] if isinstance(exc, KeyError) and exc.args else (str(exc) or type(exc).__name__)
    return " ".join(str(text).split())


def write_stats(table: pd.DataFrame, path: str | Path) -> Path:
    """Write a stats table to Parquet atomically (temporary name, then rename)."""
    return write_parquet(table, path)


def read_stats(path: str | Path) -> pd.DataFrame:
    """Read ``stats.parquet``, checking the columns later stages rely on and the version."""
    table = read_table(path, STATS_REQUIRED, what="stats table", made_by="notebook 02 / cen stats")
    versions = set(table["stats_version"].astype(str))
    if versions - {STATS_VERSION}:
        raise ValueError(f"{path}: column 'stats_version' holds {sorted(versions)}, this code reads {STATS_VERSION!r}")
    return table


@dataclass
class StatsRun:
    """What :func:`run_stats_stage` did: the table written, the tiles it accounts for."""

    table: pd.DataFrame
    """The statistics of every eligible tile that could be read (``stats.parquet``)."""
    out: Path
    failures: list[dict] = field(default_factory=list)
    """``{tile_id, stage, error}`` of each tile that failed (also in :attr:`failures_path`)."""
    eligibility: str = ""
    """The tiles table's eligibility line (:func:`cen.tiling.eligibility_summary`)."""
    n_reused: int = 0
    """Rows taken from an existing ``stats.parquet`` (same tiles, version, mode and seed)."""

    @property
    def failures_path(self) -> Path:
        """Where the failures table of this run is (:func:`cen.tables.failures_path`)."""
        return failures_path(self.out)

    def summary(self) -> str:
        """One line: tiles written, reused, failed (with the failures file)."""
        line = f"{len(self.table)} tiles -> {self.out}"
        if self.n_reused:
            line += f" ({self.n_reused} already up to date)"
        if self.failures:
            line += f"; {len(self.failures)} failed (see {self.failures_path})"
        return line


def _reusable(out: Path, compat: bool, seed: int) -> pd.DataFrame | None:
    """The rows of an existing output made with the same version, mode and seed, else None."""
    if not out.exists():
        return None
    try:
        old = read_stats(out)
    except (KeyError, ValueError, OSError):
        return None
    if len(old) and not (bool((old["compat"] == compat).all()) and ("seed" not in old or bool((old["seed"] == seed).all()))):
        return None
    return old


def _unchanged(rows: pd.DataFrame, out: Path, workdir: Path) -> set[str]:
    """Ids of the rows whose label file is not newer than ``out`` (their statistics still hold)."""
    written = out.stat().st_mtime_ns
    keep = set()
    for tile_id, value in zip(rows["tile_id"].astype(str), rows["label_path"]):
        path = resolve_path(value, workdir)
        try:
            if isinstance(path, Path) and path.stat().st_mtime_ns <= written:
                keep.add(tile_id)
        except OSError:
            pass
    return keep


def run_stats_stage(
    tiles: str | Path,
    out: str | Path,
    *,
    compat: bool = False,
    seed: int = DEFAULT_SEED,
    force: bool = False,
    progress: bool = True,
) -> StatsRun:
    """``tiles.parquet`` -> ``stats.parquet`` for the eligible tiles, with a failures table beside it.

    Tiles already in an existing output made with the same version, mode and seed, whose label
    file is not newer than that output, are reused (unless ``force``), so a re-run computes only
    what is missing or changed (tiles that failed before, new tiles, rewritten label files) and
    rewrites nothing when nothing is. Tiles that fail are recorded in
    ``<out stem>_failures.parquet`` (:func:`cen.tables.write_failures`) and the others written.
    Raises :class:`StatsError` naming the file when there is nothing to compute (an empty tiles
    table, no eligible tile, no eligible tile with a label path) or when every tile failed.
    """
    from cen.tiling import eligibility_summary

    out = Path(out)
    table, source = _load_tiles(tiles)
    eligibility = eligibility_summary(table)
    if not len(table):
        raise StatsError(f"{source}: the tiles table has no rows, so there is nothing to compute")
    rows = stats_rows(table)
    if not len(rows):
        from cen.tiling import eligible_tiles

        why = ("no eligible tile has a label_path" if len(eligible_tiles(table))
               else "no tile is eligible")
        raise StatsError(f"{source}: {why} ({eligibility}); nothing to compute")
    ids = rows["tile_id"].astype(str).tolist()
    old = None if force else _reusable(out, compat, seed)
    keep = pd.DataFrame()
    if old is not None:
        keep = old[old["tile_id"].astype(str).isin(_unchanged(rows, out, tiles_workdir(tiles)))]
        if len(keep) == len(old) == len(ids):  # nothing missing, nothing stale: nothing to write
            write_failures(out, [])
            return StatsRun(keep.reset_index(drop=True), out, [], eligibility, n_reused=len(keep))
    done = set(keep["tile_id"].astype(str)) if len(keep) else set()
    todo = rows[~rows["tile_id"].astype(str).isin(done)]
    failures: list[dict] = []
    new = stats_table_from_tiles(todo, compat=compat, seed=seed, base_dir=tiles_workdir(tiles), progress=progress,
                                 failures=failures)
    parts = [p for p in (keep, new) if len(p)]
    result = pd.concat(parts, ignore_index=True) if parts else new
    if len(result):
        order = {t: k for k, t in enumerate(ids)}
        result = result.iloc[np.argsort([order[t] for t in result["tile_id"].astype(str)], kind="stable")]
        result = result.reset_index(drop=True)
    write_failures(out, failures)
    if not len(result):
        raise StatsError(f"{source}: all {len(ids)} eligible tiles failed (see {failures_path(out)}); "
                         f"first: {failures[0]['tile_id']}: {failures[0]['error']}")
    write_stats(result, out)
    return StatsRun(result, out, failures, eligibility, n_reused=len(keep))


def compute_stats(
    tiles: str | Path,
    out: str | Path,
    *,
    compat: bool = False,
    seed: int = DEFAULT_SEED,
    force: bool = False,
    progress: bool = True,
) -> pd.DataFrame:
    """:func:`run_stats_stage`, returning only the table written (``stats.parquet``)."""
    return run_stats_stage(tiles, out, compat=compat, seed=seed, force=force, progress=progress).table
