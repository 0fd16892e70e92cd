"""ESA WorldCover labels from the public COGs, read onto any target grid (e.g. a Sentinel-2 tile).

The products are 3 x 3 degree tiles in EPSG:4326 at 1/12 000 degree, named by their lower-left
corner (``N45E006``, ``S03W060``), in the anonymous bucket ``s3://esa-worldcover``:

* 2020 v100 (the version ChatEarthNet cites): ``v100/2020/map/ESA_WorldCover_10m_2020_v100_{tile}_Map.tif``
* 2021 v200: ``v200/2021/map/ESA_WorldCover_10m_2021_v200_{tile}_Map.tif``

:func:`read_worldcover` finds the tiles a grid touches, reads each through a WarpedVRT with
nearest resampling (over HTTP range requests for URLs) and merges them, so a window across a
3-degree edge is whole. Tiles that do not exist (WorldCover has none over open ocean) count as
nodata; a grid with no WorldCover tile at all raises :class:`OutsideCoverageError`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from cen.tiling import Grid, TilingError, read_on_grid

WORLDCOVER_URL = "https://esa-worldcover.s3.eu-central-1.amazonaws.com"
"""Anonymous HTTPS endpoint of ``s3://esa-worldcover``."""

PRODUCTS: dict[int, str] = {2020: "v100", 2021: "v200"}
"""WorldCover map year -> product version."""

DEFAULT_YEAR = 2020
TILE_DEGREES = 3
NODATA = 0


class WorldCoverError(RuntimeError):
    """A WorldCover read failed (unreachable endpoint, corrupt file); the message names the href."""


class OutsideCoverageError(WorldCoverError):
    """No WorldCover tile covers the requested grid (e.g. open ocean or outside -60..84 degrees N)."""


@dataclass(frozen=True)
class LabelRead:
    """WorldCover codes on a grid, with where they came from."""

    codes: np.ndarray
    """``(height, width)`` uint8 WorldCover codes, 0 = nodata."""
    product: str
    """e.g. ``ESA WorldCover 10m 2020 v100``."""
    tiles: tuple[str, ...]
    """WorldCover tile names that contributed pixels."""
    hrefs: tuple[str, ...]
    missing: tuple[str, ...]
    """Tiles the grid touches that do not exist (404): treated as nodata."""

    @property
    def nodata_fraction(self) -> float:
        return float((self.codes == NODATA).mean())


def product_name(year: int = DEFAULT_YEAR) -> str:
    """Human-readable product id, e.g. ``ESA WorldCover 10m 2020 v100``."""
    return f"ESA WorldCover 10m {year} {_version(year)}"


def _version(year: int) -> str:
    if year not in PRODUCTS:
        raise ValueError(f"no WorldCover product for year {year}; available: {sorted(PRODUCTS)}")
    return PRODUCTS[year]


def tile_name(lon: float, lat: float) -> str:
    """Name of the 3-degree tile containing a point, by its lower-left corner (``N00E006``)."""
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise ValueError(f"point lon={lon}, lat={lat} is outside -180..180 / -90..90")
    lat0 = int(math.floor(lat / TILE_DEGREES) * TILE_DEGREES)
    lon0 = int(math.floor(min(lon, 179.999999) / TILE_DEGREES) * TILE_DEGREES)
    return f"{'N' if lat0 >= 0 else 'S'}{abs(lat0):02d}{'E' if lon0 >= 0 else 'W'}{abs(lon0):03d}"


def tile_bounds(name: str) -> tuple[float, float, float, float]:
    """``(west, south, east, north)`` of a tile name like ``N00E006`` or ``S03W060``."""
    try:
        lat = int(name[1:3]) * (1 if name[0] == "N" else -1)
        lon = int(name[4:7]) * (1 if name[3] == "E" else -1)
        if name[0] not in "NS" or name[3] not in "EW" or len(name) != 7:
            raise ValueError
    except (ValueError, IndexError):
        raise ValueError(f"not a WorldCover tile name: {name!r} (expected e.g. N00E006)") from None
    return (lon, lat, lon + TILE_DEGREES, lat + TILE_DEGREES)


def tiles_for_bounds(bounds_lonlat: Sequence[float]) -> list[str]:
    """Tile names intersecting a ``(west, south, east, north)`` box, north-west first."""
    west, south, east, north = bounds_lonlat
    eps = 1e-9
    lats = range(int(math.floor(south / 3) * 3), int(math.floor((north - eps) / 3) * 3) + 1, 3)
    lons = range(int(math.floor(west / 3) * 3), int(math.floor((east - eps) / 3) * 3) + 1, 3)
    return [tile_name(lo + 1, la + 1) for la in sorted(lats, reverse=True) for lo in lons]


def tile_href(name: str, year: int = DEFAULT_YEAR, base_url: str = WORLDCOVER_URL) -> str:
    """URL (or path under a local mirror folder) of one tile's map COG, in the bucket's key layout."""
    version = _version(year)
    tile_bounds(name)
    return f"{base_url.rstrip('/')}/{version}/{year}/map/ESA_WorldCover_10m_{year}_{version}_{name}_Map.tif"


def _is_missing(exc: Exception) -> bool:
    text = str(exc)
    return "404" in text or "No such file" in text or "does not exist" in text


def read_worldcover(
    grid: Grid, *, year: int = DEFAULT_YEAR, base_url: str = WORLDCOVER_URL,
    hrefs: Mapping[str, str | Path] | None = None,
) -> LabelRead:
    """WorldCover codes on ``grid`` (nearest resampling), merged across 3-degree tile edges.

    ``hrefs`` maps tile names to explicit files/URLs (e.g. a committed crop) instead of the
    bucket layout under ``base_url``. Raises :class:`OutsideCoverageError` if no tile exists for
    the grid and :class:`WorldCoverError` for unreachable endpoints or corrupt files.
    """
    names = tiles_for_bounds(grid.bounds_lonlat())
    out = np.zeros((grid.height, grid.width), dtype=np.uint8)
    used, used_hrefs, missing = [], [], []
    for name in names:
        if hrefs is not None:
            if name not in hrefs:
                missing.append(name)
                continue
            href = str(hrefs[name])
        else:
            href = tile_href(name, year, base_url)
        try:
            codes = read_on_grid(href, grid, resampling="nearest", src_nodata=NODATA, dst_nodata=NODATA)
        except TilingError as exc:
            if _is_missing(exc):
                missing.append(name)
                continue
            raise WorldCoverError(f"WorldCover tile {name}: {exc}") from exc
        fill = (out == NODATA) & (codes != NODATA)
        out[fill] = codes[fill]
        used.append(name)
        used_hrefs.append(href)
    if not used:
        raise OutsideCoverageError(
            f"no WorldCover {year} tile covers lon/lat box {tuple(round(v, 4) for v in grid.bounds_lonlat())} "
            f"(tiles {', '.join(names)} do not exist)"
        )
    return LabelRead(out, product_name(year), tuple(used), tuple(used_hrefs), tuple(missing))


def codes_at_points(
    lons: Sequence[float], lats: Sequence[float], *, year: int = DEFAULT_YEAR, base_url: str = WORLDCOVER_URL,
    hrefs: Mapping[str, str | Path] | None = None,
) -> np.ndarray:
    """WorldCover code at each lon/lat point (uint8; 0 where no tile exists). One open per tile."""
    import rasterio

    from cen.tiling import GDAL_HTTP_ENV, gdal_path

    lons, lats = np.asarray(lons, float), np.asarray(lats, float)
    out = np.zeros(len(lons), dtype=np.uint8)
    names = np.array([tile_name(x, y) for x, y in zip(lons, lats)])
    for name in dict.fromkeys(names):
        idx = np.flatnonzero(names == name)
        href = str(hrefs[name]) if hrefs is not None and name in hrefs else (
            None if hrefs is not None else tile_href(name, year, base_url))
        if href is None:
            continue
        try:
            with rasterio.Env(**GDAL_HTTP_ENV), rasterio.open(gdal_path(href)) as src:
                vals = np.array([v[0] for v in src.sample(zip(lons[idx], lats[idx]), masked=False)])
                rows, cols = (np.asarray(a) for a in rasterio.transform.rowcol(src.transform, lons[idx], lats[idx]))
                inside = (rows >= 0) & (rows < src.height) & (cols >= 0) & (cols < src.width)
                out[idx] = np.where(inside, vals, NODATA)
        except rasterio.RasterioIOError as exc:
            if _is_missing(exc):
                continue
            raise WorldCoverError(f"WorldCover tile {name} ({href}): {exc}") from exc
    return out
