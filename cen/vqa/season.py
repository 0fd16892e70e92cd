"""``season``: in which meteorological season was the image taken? (multiple choice)

Meteorological seasons of the Sentinel-2 acquisition date (UTC) for the tile's hemisphere:
north of the equator December-February is winter, March-May spring, June-August summer,
September-November autumn; south of it the other way round. Asked only for tiles with a
Sentinel-2 date (an ``s2_item_id`` and a ``datetime``) and ``|lat| > 23.44`` degrees (outside
the tropics, where the four seasons mean little). Choices: the four seasons.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cen.vqa.features import TileFeatures
from cen.vqa.sampler import Chunk, Picks, pick

TASK = "season"
FORMAT = "multiple_choice"
TROPIC = 23.44
"""Latitude (degrees) of the tropics; tiles closer to the equator are not asked."""

SEASONS: tuple[str, ...] = ("winter", "spring", "summer", "autumn")

TEMPLATES = {
    "season": (
        ("season.0", "In which season was this image taken?"),
        ("season.1", "Which meteorological season does this image show?"),
        ("season.2", "During which season was this image acquired?"),
    ),
}


def season_of(month: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Season index into :data:`SEASONS` of months 1-12 at latitudes ``lat`` (degrees)."""
    month = np.asarray(month, np.int64)
    north = (month % 12) // 3  # Dec, Jan, Feb -> 0 (winter) ... Sep-Nov -> 3 (autumn)
    return np.where(np.asarray(lat, float) >= 0, north, (north + 2) % 4)


def candidates(chunk: Chunk) -> np.ndarray:
    """``(n, 1)`` bool: the tile has a Sentinel-2 date and lies outside the tropics."""
    meta = chunk.meta
    if "s2_date" not in meta or "lat" not in meta:
        return np.zeros((len(chunk), 1), bool)
    date = pd.to_datetime(meta["s2_date"], utc=True)
    lat = meta["lat"].to_numpy(dtype=float)
    return (date.notna().to_numpy() & np.isfinite(lat) & (np.abs(lat) > TROPIC) & chunk.usable())[:, None]


def sample(chunk: Chunk, quota: np.ndarray, rng: np.random.Generator) -> Picks:
    valid = candidates(chunk)
    if not valid.any():
        return Picks.none(TASK, FORMAT)
    date = pd.to_datetime(chunk.meta["s2_date"], utc=True)
    lat = chunk.meta["lat"].to_numpy(dtype=float)
    rows, _ = pick(rng, valid, quota)
    month = date.dt.month.to_numpy()[rows] if len(rows) else np.zeros(0, np.int64)
    idx = season_of(month, lat[rows])
    names = [SEASONS[k] for k in idx.tolist()]
    choices = [[SEASONS[k]] + [s for j, s in enumerate(SEASONS) if j != k] for k in idx.tolist()]
    return Picks(TASK, FORMAT, rows, np.full(len(rows), "season", object), names, list(names),
                 region=np.zeros(len(rows), np.int64), choices=choices)


def answer(f: TileFeatures, i: int, class_a: int, class_b: int, region: int, meta: dict) -> str | None:
    date, lat = meta.get("s2_date"), meta.get("lat")
    if date is None or pd.isna(date) or lat is None or not abs(float(lat)) > TROPIC:
        return None
    return SEASONS[int(season_of(np.array([pd.Timestamp(date).month]), np.array([float(lat)]))[0])]
