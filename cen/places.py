"""Which country and continent a point lies in, from Natural Earth boundaries that keep small islands.

Two committed boundary sets (public domain, see ``data/README.md``):

* **1:10m Admin 0 countries** (``ne_10m_admin_0_countries.geojson.gz``, 250 countries and
  territories, simplified to about 200 m with every island kept) for *counting*:
  :func:`locate`, :func:`assign_countries`, :func:`region_counts`. São Tomé and Príncipe,
  the Caribbean and the Pacific islands are in it; the 1:110m set has none of them.
* **1:110m Admin 0 countries** (:func:`world_110m`) for *drawing* world maps, where 1:10m
  detail would only add bytes.

A point inside no polygon (a tile centre on a simplified coastline, a tile over territorial
waters) takes the nearest country within ``max_distance_deg``; beyond that it is open sea and
gets :data:`NO_PLACE`.
"""

from __future__ import annotations

import gzip
import json
import warnings
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from cen import paths

NATURAL_EARTH_110M = paths.DATA_DIR / "naturalearth" / "ne_110m_admin_0_countries.shp"
"""Natural Earth 1:110m Admin 0 countries v4.1.0 (public domain): drawing world maps."""

NATURAL_EARTH_10M = paths.DATA_DIR / "naturalearth" / "ne_10m_admin_0_countries.geojson.gz"
"""Natural Earth 1:10m Admin 0 countries v5.1.1, simplified, islands kept (scripts/make_boundaries.py)."""

NO_PLACE = "(none)"
"""Country and continent of a point farther than ``max_distance_deg`` from every country."""

NO_CONTINENT = (NO_PLACE, "Seven seas (open ocean)")
"""Continent names that are not a continent: no country within reach, or the open ocean."""

MAX_DISTANCE_DEG = 0.5
"""Default reach of the nearest-country fallback, in degrees (about 55 km at the equator)."""


@dataclass(frozen=True)
class Place:
    """Where one point is: ``country`` (English name), ``iso_a3``, ``continent``; ``on_land`` is
    False when the point lies outside every polygon and took the nearest country."""

    country: str
    iso_a3: str
    continent: str
    on_land: bool


def _check(path) -> None:
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing; it is committed with the demo data (see data/README.md)")


@lru_cache(maxsize=1)
def world_110m() -> gpd.GeoDataFrame:
    """Natural Earth 1:110m countries with ``NAME``, ``ISO_A3``, ``CONTINENT`` (EPSG:4326), for drawing."""
    _check(NATURAL_EARTH_110M)
    world = gpd.read_file(NATURAL_EARTH_110M)
    missing = {"NAME", "ISO_A3", "CONTINENT"} - set(world.columns)
    if missing:
        raise KeyError(f"{NATURAL_EARTH_110M}: missing columns {sorted(missing)}")
    if "ADM0_A3" in world.columns:  # Natural Earth leaves ISO_A3 = -99 for e.g. France and Norway
        world["ISO_A3"] = world["ISO_A3"].where(world["ISO_A3"] != "-99", world["ADM0_A3"])
    return world[["NAME", "ISO_A3", "CONTINENT", "geometry"]].to_crs("EPSG:4326")


@lru_cache(maxsize=1)
def world_10m() -> gpd.GeoDataFrame:
    """Natural Earth 1:10m countries (islands kept) with ``NAME`` (English, e.g. "São Tomé and
    Príncipe"), ``ISO_A3``, ``CONTINENT``, ``REGION_UN``, ``SUBREGION`` (EPSG:4326), for counting."""
    _check(NATURAL_EARTH_10M)
    try:
        data = json.loads(gzip.decompress(NATURAL_EARTH_10M.read_bytes()))
        world = gpd.GeoDataFrame.from_features(data["features"], crs="EPSG:4326")
    except (OSError, ValueError, KeyError) as exc:
        raise ValueError(f"{NATURAL_EARTH_10M}: not a gzip-compressed GeoJSON feature collection ({exc})") from None
    missing = {"name", "iso_a3", "continent"} - set(world.columns)
    if missing:
        raise KeyError(f"{NATURAL_EARTH_10M}: missing properties {sorted(missing)}")
    invalid = ~world.geometry.is_valid  # rounding to 3 decimals can pinch a ring
    world.loc[invalid, "geometry"] = world.geometry[invalid].make_valid()
    world = world.rename(columns={"name": "NAME", "iso_a3": "ISO_A3", "continent": "CONTINENT",
                                  "region_un": "REGION_UN", "subregion": "SUBREGION"})
    return world[["NAME", "ISO_A3", "CONTINENT", "REGION_UN", "SUBREGION", "geometry"]]


def _lookup(lon: np.ndarray, lat: np.ndarray, max_distance_deg: float) -> pd.DataFrame:
    bad = ~(np.isfinite(lon) & np.isfinite(lat) & (np.abs(lon) <= 180) & (np.abs(lat) <= 90))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"point {i} has no valid lon/lat ({lon[i]!r}, {lat[i]!r}); expected degrees within ±180/±90")
    world = world_10m()
    pts = gpd.GeoDataFrame(geometry=gpd.points_from_xy(lon, lat), crs="EPSG:4326")
    joined = gpd.sjoin(pts, world, how="left", predicate="within")
    joined = joined[~joined.index.duplicated(keep="first")].sort_index()
    out = pd.DataFrame({"country": joined["NAME"], "iso_a3": joined["ISO_A3"], "continent": joined["CONTINENT"]},
                       index=pts.index).astype(object)
    out["on_land"] = out["country"].notna()
    unmatched = ~out["on_land"]
    if unmatched.any():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # distances in degrees are what is meant here
            near = gpd.sjoin_nearest(pts[unmatched], world, how="left", max_distance=max_distance_deg)
        near = near[~near.index.duplicated(keep="first")]
        out.loc[near.index, ["country", "iso_a3", "continent"]] = near[["NAME", "ISO_A3", "CONTINENT"]].to_numpy()
    out[["country", "iso_a3", "continent"]] = out[["country", "iso_a3", "continent"]].fillna(NO_PLACE)
    return out.reset_index(drop=True)


def locate(lon: Any, lat: Any, *, max_distance_deg: float = MAX_DISTANCE_DEG) -> Place | pd.DataFrame:
    """Country and continent of a point, or of many points.

    Scalars give a :class:`Place`; arrays (any sequence of the same length) give a DataFrame
    with one row per point, in input order, and columns ``country``, ``iso_a3``, ``continent``,
    ``on_land``. Degrees, WGS84. ``locate(6.73, 0.33)`` is São Tomé and Príncipe in Africa.
    Points in no 1:10m polygon take the nearest country within ``max_distance_deg``; the rest
    are :data:`NO_PLACE`. Raises ``ValueError`` naming the first point without valid degrees.
    """
    if np.ndim(lon) == 0 and np.ndim(lat) == 0:
        row = _lookup(np.array([float(lon)]), np.array([float(lat)]), max_distance_deg).iloc[0]
        return Place(str(row["country"]), str(row["iso_a3"]), str(row["continent"]), bool(row["on_land"]))
    lon_a, lat_a = np.asarray(lon, dtype=float).ravel(), np.asarray(lat, dtype=float).ravel()
    if lon_a.shape != lat_a.shape:
        raise ValueError(f"lon and lat differ in length ({lon_a.size} and {lat_a.size})")
    return _lookup(lon_a, lat_a, max_distance_deg)


def assign_countries(points: gpd.GeoDataFrame, max_distance_deg: float = MAX_DISTANCE_DEG) -> pd.DataFrame:
    """``NAME``, ``ISO_A3`` and ``CONTINENT`` of each point of a point GeoDataFrame, in input order
    (:func:`locate` on the point coordinates)."""
    geoms = points.geometry
    if geoms.crs is not None and not geoms.crs.equals("EPSG:4326"):
        geoms = geoms.to_crs("EPSG:4326")
    found = locate(geoms.x.to_numpy(), geoms.y.to_numpy(), max_distance_deg=max_distance_deg)
    return found.rename(columns={"country": "NAME", "iso_a3": "ISO_A3", "continent": "CONTINENT"})[
        ["NAME", "ISO_A3", "CONTINENT"]]


def region_counts(points: gpd.GeoDataFrame, by: str | None = None) -> dict[str, pd.DataFrame]:
    """Sample counts per continent and per country (``{"continent": ..., "country": ...}``).

    With ``by`` (e.g. ``"split"``) each table gets one count column per value of that column
    plus ``total``; rows are sorted by ``total``, descending.
    """
    where = assign_countries(points)
    if by is not None:
        where[by] = points[by].astype(str).to_numpy()
    out = {}
    for level, cols in (("continent", ["CONTINENT"]), ("country", ["NAME", "ISO_A3", "CONTINENT"])):
        if by is None:
            table = where.groupby(cols).size().rename("total").reset_index()
        else:
            table = where.pivot_table(index=cols, columns=by, aggfunc="size", fill_value=0)
            table.columns = [str(c) for c in table.columns]
            table["total"] = table.sum(axis=1)
            table = table.reset_index()
        table = table.rename(columns={"NAME": "country", "ISO_A3": "iso_a3", "CONTINENT": "continent"})
        out[level] = table.sort_values(["total", level], ascending=[False, True], ignore_index=True)
    return out


def coverage_counts(counts: dict[str, pd.DataFrame]) -> dict[str, int]:
    """``{"n_countries", "n_continents"}`` from :func:`region_counts`: distinct countries and
    continents with samples, leaving out :data:`NO_PLACE` and :data:`NO_CONTINENT`."""
    country, continent = counts["country"]["country"], counts["continent"]["continent"]
    return {"n_countries": int(country[country != NO_PLACE].nunique()),
            "n_continents": int(continent[~continent.isin(NO_CONTINENT)].nunique())}
