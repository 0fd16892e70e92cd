"""Files of the statistics stage: label maps in, ``stats.parquet`` out.

:func:`compute_stats` is the stage (``tiles.parquet`` -> ``stats.parquet``, what ``cen stats``
and notebook 02 run); :func:`stats_table_from_tiles` is its in-memory part;
:func:`read_stats` is how later stages read the table. Every label path stored in a tiles table
is opened through :func:`cen.tables.resolve_path` against the tiles table's folder (the workdir),
so relative paths and moved workdirs read back.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from cen.stats.contexts import DEFAULT_SEED
from cen.stats.counting import LabelError
from cen.stats.table import STATS_REQUIRED, STATS_VERSION, stats_table
from cen.tables import read_table, resolve_path, write_parquet


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
        return tiles, "tiles table"
    path = Path(tiles)
    return read_table(path, ("tile_id", "label_path"), what="tiles table", made_by="notebook 01 / cen.sources"), str(path)


def stats_table_from_tiles(
    tiles: pd.DataFrame | str | Path,
    *,
    compat: bool = False,
    seed: int = DEFAULT_SEED,
    base_dir: str | Path | None = None,
    progress: bool = True,
    chunk_size: int = 2048,
) -> pd.DataFrame:
    """Statistics of every tile of a tiles table (``tiles.parquet`` or its DataFrame).

    Reads each row's ``label_path`` (GeoTIFF of WorldCover codes or ChatEarthNet-colour PNG, see
    :func:`read_label_map`; relative paths resolve against ``base_dir``, default the parquet's
    folder, for a DataFrame the working directory), converts to ChatEarthNet indices and returns
    :func:`~cen.stats.stats_table` rows in the tiles table's order. Rows without a
    ``label_path`` (image-only tiles) have no statistics and are left out. Maps are read
    ``chunk_size`` at a time (tiles of different sizes in groups of equal shape), so memory holds
    one chunk of maps plus the growing table.
    """
    table, source = _load_tiles(tiles)
    for col in ("tile_id", "label_path"):
        if col not in table.columns:
            raise KeyError(f"{source}: missing column {col!r} (columns: {', '.join(map(str, table.columns))})")
    workdir = tiles_workdir(tiles, base_dir)
    table = table[table["label_path"].notna()].reset_index(drop=True)
    ids = table["tile_id"].astype(str).tolist()
    paths = table["label_path"].tolist()
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(table), desc="tile statistics", unit="tile")
    parts = []
    for start in range(0, len(table), chunk_size):  # bounded memory: one chunk of maps at a time
        maps = [read_label_map(resolve_path(p, workdir)) for p in paths[start : start + chunk_size]]
        by_shape: dict[tuple[int, int], list[int]] = {}
        for i, m in enumerate(maps):
            by_shape.setdefault(m.shape, []).append(i)
        for idx in by_shape.values():
            part = stats_table(np.stack([maps[i] for i in idx]), [ids[start + i] for i in idx], compat=compat,
                               seed=seed)
            part.index = [start + i for i in idx]
            parts.append(part)
        if bar is not None:
            bar.update(len(maps))
    if bar is not None:
        bar.close()
    if not parts:
        return stats_table(np.zeros((0, 256, 256), np.uint8), [], compat=compat, seed=seed)
    return pd.concat(parts).sort_index().reset_index(drop=True)


def write_stats(table: pd.DataFrame, path: str | Path) -> Path:
    """Write a stats table to Parquet atomically (temporary name, then rename)."""
    return write_parquet(table, path)


def read_stats(path: str | Path) -> pd.DataFrame:
    """Read ``stats.parquet``, checking the columns later stages rely on and the version."""
    table = read_table(path, STATS_REQUIRED, what="stats table", made_by="notebook 02 / cen.stats")
    versions = set(table["stats_version"].astype(str))
    if versions - {STATS_VERSION}:
        raise ValueError(f"{path}: column 'stats_version' holds {sorted(versions)}, this code reads {STATS_VERSION!r}")
    return table


def compute_stats(
    tiles: str | Path,
    out: str | Path,
    *,
    compat: bool = False,
    seed: int = DEFAULT_SEED,
    force: bool = False,
    progress: bool = True,
) -> pd.DataFrame:
    """``tiles.parquet`` -> ``stats.parquet``; reuses an existing output made from the same tiles
    with the same version, mode and seed unless ``force``."""
    out = Path(out)
    if out.exists() and not force:
        try:
            old = read_stats(out)
            listed = pd.read_parquet(tiles, columns=["tile_id", "label_path"])
            ids = listed.loc[listed["label_path"].notna(), "tile_id"].astype(str).tolist()
            if (
                old["tile_id"].astype(str).tolist() == ids
                and bool((old["compat"] == compat).all())
                and ("seed" not in old or bool((old["seed"] == seed).all()))
            ):
                return old
        except (KeyError, ValueError):
            pass
    table = stats_table_from_tiles(tiles, compat=compat, seed=seed, progress=progress)
    write_stats(table, out)
    return table
