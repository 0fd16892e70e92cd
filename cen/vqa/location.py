"""``location``: in which country / on which continent is the tile? (multiple choice)

The tile centre (``lon``/``lat`` of the tiles table) is looked up in the same Natural Earth
boundaries the coverage maps count with (:func:`cen.places.locate`, 1:10m with small islands;
:mod:`cen.maps` where that module is absent); a centre in no country (open sea, or too
far from any polygon) is not asked. Four choices: for the country, three other countries of the
same continent (filled from other continents only if the continent has too few); for the
continent, three other continents.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd

from cen.vqa.features import TileFeatures
from cen.vqa.sampler import Chunk, Picks, pick

TASK = "location"
FORMAT = "multiple_choice"
N_CHOICES = 4
NOT_A_PLACE = ("(none)", "Seven seas (open ocean)", "", None)
"""Lookup results that name no country or continent."""

TEMPLATES = {
    "location.country": (
        ("location.country.0", "In which country is this image located?"),
        ("location.country.1", "Which country was this image taken in?"),
        ("location.country.2", "This image shows a place in which country?"),
    ),
    "location.continent": (
        ("location.continent.0", "On which continent is this image located?"),
        ("location.continent.1", "Which continent was this image taken in?"),
        ("location.continent.2", "This image shows a place on which continent?"),
    ),
}


def _places():
    """``cen.places`` (Natural Earth 1:10m, islands kept) where it exists, else None."""
    try:
        from cen import places
    except ImportError:
        return None
    return places if hasattr(places, "locate") else None


def lookup(lon: np.ndarray, lat: np.ndarray) -> pd.DataFrame:
    """``country`` and ``continent`` of each point (degrees, WGS84); ``None`` where there is none.

    Uses :func:`cen.places.locate` (the boundaries the coverage maps count with) when the
    package has it, else :func:`cen.maps.assign_countries`."""
    lon = np.asarray(lon, float)
    lat = np.asarray(lat, float)
    out = pd.DataFrame({"country": pd.Series([None] * len(lon), dtype=object),
                        "continent": pd.Series([None] * len(lon), dtype=object)})
    ok = np.isfinite(lon) & np.isfinite(lat) & (np.abs(lon) <= 180) & (np.abs(lat) <= 90)
    if ok.any():
        places = _places()
        if places is not None:
            found = places.locate(lon[ok], lat[ok]).rename(columns={"country": "NAME", "continent": "CONTINENT"})
        else:
            from cen import maps

            found = maps.assign_countries(maps.sample_points(pd.DataFrame({"lon": lon[ok], "lat": lat[ok]})))
        out.loc[ok, "country"] = found["NAME"].to_numpy(dtype=object)
        out.loc[ok, "continent"] = found["CONTINENT"].to_numpy(dtype=object)
    for col in ("country", "continent"):
        out[col] = out[col].where(~out[col].isin([v for v in NOT_A_PLACE if v is not None]), None)
    return out


@lru_cache(maxsize=1)
def countries_by_continent() -> dict[str, tuple[str, ...]]:
    """Country names per continent of the boundaries :func:`lookup` uses (sorted)."""
    places = _places()
    if places is not None:
        world = places.world_10m()
    else:
        from cen import maps

        world = maps.countries()
    out: dict[str, tuple[str, ...]] = {}
    for continent, names in world.groupby("CONTINENT")["NAME"]:
        if continent not in NOT_A_PLACE:
            out[str(continent)] = tuple(sorted(set(map(str, names))))
    return out


def _tile_places(chunk: Chunk) -> tuple[np.ndarray, np.ndarray]:
    meta, n = chunk.meta, len(chunk)
    country = meta["country"].to_numpy(dtype=object) if "country" in meta else np.full(n, None, object)
    continent = meta["continent"].to_numpy(dtype=object) if "continent" in meta else np.full(n, None, object)
    return country, continent


def candidates(chunk: Chunk) -> np.ndarray:
    """``(n, 2)`` bool: the tile has a country / a continent."""
    country, continent = _tile_places(chunk)
    return np.stack([pd.notna(country), pd.notna(continent)], axis=1).reshape(len(chunk), 2) & chunk.usable()[:, None]


def sample(chunk: Chunk, quota: np.ndarray, rng: np.random.Generator) -> Picks:
    country, continent = _tile_places(chunk)
    valid = candidates(chunk)
    rows, cols = pick(rng, valid, quota)
    if not len(rows):
        return Picks.none(TASK, FORMAT)
    table = countries_by_continent()
    continents = sorted(table)
    values, choices, pools = [], [], []
    for r, c in zip(rows.tolist(), cols.tolist()):
        if c == 0:
            right = str(country[r])
            same = [x for x in table.get(str(continent[r]), ()) if x != right]
            others = [x for k in continents if k != continent[r] for x in table[k] if x != right]
            picked = list(rng.permutation(same)[: N_CHOICES - 1]) if same else []
            if len(picked) < N_CHOICES - 1:
                picked += list(rng.permutation(others)[: N_CHOICES - 1 - len(picked)])
            pools.append("location.country")
        else:
            right = str(continent[r])
            picked = list(rng.permutation([k for k in continents if k != right])[: N_CHOICES - 1])
            pools.append("location.continent")
        values.append(right)
        choices.append([right] + [str(x) for x in picked])
    return Picks(TASK, FORMAT, rows, np.array(pools, dtype=object), values, list(values),
                 region=np.zeros(len(rows), np.int64), choices=choices)


def answer(f: TileFeatures, i: int, class_a: int, class_b: int, region: int, meta: dict) -> str | None:
    key = "continent" if ".continent." in str(meta.get("template_id", "")) else "country"
    value = meta.get(key)
    return None if value is None or (isinstance(value, float) and value != value) else str(value)
