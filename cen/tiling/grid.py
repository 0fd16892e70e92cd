"""Pixel grids and tiles: where a tile is, in any CRS.

:func:`tile_grid` lays a regular grid of ``size x size`` pixel windows (256 by default) over a
raster; every :class:`Tile` keeps its window, CRS, affine transform, bounds, centre lon/lat,
EPSG:4326 footprint, source id and date. :class:`Grid` is a target pixel grid (CRS, transform,
size), e.g. a Sentinel-2 10 m UTM window made by :func:`utm_grid` or :func:`bounds_grid`.

A 512 x 512 tile splits into the four ChatEarthNet patches ``patch00``, ``patch01``,
``patch10``, ``patch11`` (first digit = row half, 0 top; second = column half, 0 left):
:func:`split_patches` for arrays, :func:`patch_tiles` for georeferenced tiles,
:func:`patch_parent` for ids.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Literal, Mapping, Sequence

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.warp import transform_geom
from rasterio.windows import Window
from shapely.geometry import Polygon, shape

TILE_SIZE = 256
"""ChatEarthNet patch size in pixels."""

PATCH_NAMES = ("patch00", "patch01", "patch10", "patch11")
"""The four patches of a 512 x 512 tile: ``patch{row half}{column half}``."""


class TilingError(ValueError):
    """A raster cannot be tiled or a tile cannot be read/written; the message names the file."""


@dataclass(frozen=True)
class Tile:
    """One square window of a georeferenced raster."""

    tile_id: str
    """Unique id: ``{source}_r{row_off:05d}_c{col_off:05d}`` (plus ``_patchIJ`` for patches)."""
    source: str
    """Source id (file stem, scene or item id)."""
    window: Window
    """Pixel window in the source raster."""
    crs: CRS
    transform: Affine
    """Affine transform of the tile (upper-left corner = the window's)."""
    width: int
    height: int
    datetime: str | None = None
    """Acquisition date/time (ISO 8601) of the source, if known."""
    path: str | None = None
    """The raster the tile was cut from, if it came from a file."""

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """``(left, bottom, right, top)`` in the tile's CRS."""
        x0, y0 = self.transform @ (0, 0)
        x1, y1 = self.transform @ (self.width, self.height)
        return (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))

    @property
    def footprint(self) -> Polygon:
        """Tile outline in EPSG:4326 (lon/lat), densified along the edges before reprojection."""
        return footprint_lonlat(self.bounds, self.crs)

    @property
    def centre_lonlat(self) -> tuple[float, float]:
        """Centre of the tile in lon/lat degrees (the pixel-centre of the window's middle)."""
        cx, cy = self.transform @ (self.width / 2, self.height / 2)
        geom = transform_geom(self.crs, "EPSG:4326", {"type": "Point", "coordinates": (cx, cy)})
        lon, lat = geom["coordinates"]
        return float(lon), float(lat)


def footprint_lonlat(bounds: Sequence[float], crs: CRS | str, densify: int = 8) -> Polygon:
    """Reproject a ``(left, bottom, right, top)`` box in ``crs`` to an EPSG:4326 polygon."""
    left, bottom, right, top = bounds
    xs = np.linspace(left, right, densify + 1)
    ys = np.linspace(bottom, top, densify + 1)
    ring = (
        [(x, bottom) for x in xs]
        + [(right, y) for y in ys[1:]]
        + [(x, top) for x in xs[::-1][1:]]
        + [(left, y) for y in ys[::-1][1:]]
    )
    geom = transform_geom(CRS.from_user_input(crs), "EPSG:4326", {"type": "Polygon", "coordinates": [ring]})
    return shape(geom)


def tile_grid(
    width: int,
    height: int,
    transform: Affine,
    crs: CRS | str,
    *,
    source: str,
    size: int = TILE_SIZE,
    stride: int | None = None,
    datetime: str | None = None,
    path: str | None = None,
    edge: Literal["drop", "pad"] = "drop",
) -> list[Tile]:
    """Regular grid of ``size x size`` windows (row-major) over a ``width x height`` raster.

    ``stride`` defaults to ``size`` (no overlap). Partial windows at the right and bottom edges
    are dropped (``edge="drop"``) or kept as whole windows reaching past the raster
    (``edge="pad"``: read them boundless, the part outside is nodata), so every pixel is in a
    tile. ``"drop"`` raises :class:`TilingError` if the raster is smaller than one tile.
    """
    if size <= 0:
        raise TilingError(f"tile size must be positive, got {size}")
    if edge not in ("drop", "pad"):
        raise TilingError(f"edge must be 'drop' or 'pad', got {edge!r}")
    stride = stride or size
    if edge == "drop" and (width < size or height < size):
        raise TilingError(f"{path or source}: raster of {width}x{height} px is smaller than one {size}x{size} tile")
    crs = CRS.from_user_input(crs)
    tiles = []
    last_row, last_col = (height - size, width - size) if edge == "drop" else (height - 1, width - 1)
    for row in range(0, last_row + 1, stride):
        for col in range(0, last_col + 1, stride):
            win = Window(col, row, size, size)
            tiles.append(
                Tile(
                    tile_id=f"{source}_r{row:05d}_c{col:05d}",
                    source=source,
                    window=win,
                    crs=crs,
                    transform=rasterio.windows.transform(win, transform),
                    width=size,
                    height=size,
                    datetime=datetime,
                    path=path,
                )
            )
    return tiles


def split_patches(array: np.ndarray) -> dict[str, np.ndarray]:
    """Split ``(..., 2n, 2n)`` into the four ``(..., n, n)`` patches keyed ``patch00`` … ``patch11``.

    ``patch{i}{j}``: ``i`` row half (0 = top), ``j`` column half (0 = left). Views, not copies.
    """
    h, w = array.shape[-2:]
    if h != w or h % 2:
        raise TilingError(f"expected a square array with an even side (e.g. 512x512), got {h}x{w}")
    n = h // 2
    return {f"patch{i}{j}": array[..., i * n:(i + 1) * n, j * n:(j + 1) * n] for i in (0, 1) for j in (0, 1)}


def merge_patches(patches: Mapping[str, np.ndarray]) -> np.ndarray:
    """Inverse of :func:`split_patches`: stitch the four patches back into one array."""
    missing = [p for p in PATCH_NAMES if p not in patches]
    if missing:
        raise TilingError(f"cannot stitch patches: missing {', '.join(missing)}")
    top = np.concatenate([patches["patch00"], patches["patch01"]], axis=-1)
    bottom = np.concatenate([patches["patch10"], patches["patch11"]], axis=-1)
    return np.concatenate([top, bottom], axis=-2)


def patch_tiles(tile: Tile) -> dict[str, Tile]:
    """The four georeferenced patches of a square tile with an even side (512 -> 4 x 256)."""
    if tile.width != tile.height or tile.width % 2:
        raise TilingError(f"tile {tile.tile_id}: expected a square tile with an even side, got {tile.width}x{tile.height}")
    n = tile.width // 2
    out = {}
    for i in (0, 1):
        for j in (0, 1):
            name = f"patch{i}{j}"
            win = Window(tile.window.col_off + j * n, tile.window.row_off + i * n, n, n)
            out[name] = replace(
                tile, tile_id=f"{tile.tile_id}_{name}", window=win,
                transform=tile.transform @ Affine.translation(j * n, i * n), width=n, height=n,
            )
    return out



_PATCH_SUFFIX = re.compile(r"_(patch[01][01])$")


def patch_parent(tile_id: str) -> str:
    """The id of the 512-px window a ``..._patchIJ`` tile was cut from (other ids unchanged)."""
    return _PATCH_SUFFIX.sub("", str(tile_id))



@dataclass(frozen=True)
class Grid:
    """A target pixel grid: CRS, affine transform and size (e.g. a Sentinel-2 10 m UTM window)."""

    crs: CRS
    transform: Affine
    width: int
    height: int

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """``(left, bottom, right, top)`` in the grid's CRS."""
        x0, y0 = self.transform @ (0, 0)
        x1, y1 = self.transform @ (self.width, self.height)
        return (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))

    def bounds_lonlat(self) -> tuple[float, float, float, float]:
        """``(west, south, east, north)`` of the grid in degrees."""
        return tuple(footprint_lonlat(self.bounds, self.crs).bounds)  # type: ignore[return-value]

    def tiles(self, *, source: str, size: int = TILE_SIZE, datetime: str | None = None) -> list[Tile]:
        """:func:`tile_grid` over this grid."""
        return tile_grid(self.width, self.height, self.transform, self.crs, source=source, size=size, datetime=datetime)

    def window_grid(self, window: Window) -> "Grid":
        """The sub-grid of a pixel window."""
        return Grid(self.crs, rasterio.windows.transform(window, self.transform), int(window.width), int(window.height))


def utm_crs(lon: float, lat: float) -> CRS:
    """The WGS 84 / UTM zone CRS (EPSG:326zz north, 327zz south) containing a point."""
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise TilingError(f"point lon={lon}, lat={lat} is outside -180..180 / -90..90")
    zone = min(int((lon + 180) // 6) + 1, 60)
    return CRS.from_epsg((32600 if lat >= 0 else 32700) + zone)


def utm_grid(
    lon: float, lat: float, *, width: int = TILE_SIZE, height: int | None = None, resolution: float = 10.0,
    anchor: Literal["centre", "upper_left"] = "centre", crs: CRS | str | None = None,
) -> Grid:
    """A north-up UTM grid of ``width x height`` pixels at ``resolution`` metres around a point.

    ``anchor="centre"`` centres the grid on the point, ``"upper_left"`` puts the point at the
    upper-left corner. Corners are snapped to multiples of ``resolution`` (like Sentinel-2 grids).
    """
    height = height or width
    crs = CRS.from_user_input(crs) if crs is not None else utm_crs(lon, lat)
    x, y = transform_geom("EPSG:4326", crs, {"type": "Point", "coordinates": (lon, lat)})["coordinates"]
    if anchor == "centre":
        x, y = x - width * resolution / 2, y + height * resolution / 2
    x0 = np.floor(x / resolution) * resolution
    y0 = np.ceil(y / resolution) * resolution
    return Grid(crs, Affine(resolution, 0, float(x0), 0, -resolution, float(y0)), width, height)


def bounds_grid(bounds_lonlat: Sequence[float], *, resolution: float = 10.0, crs: CRS | str | None = None,
                multiple: int = 1) -> Grid:
    """A UTM (or given CRS) grid covering a ``(west, south, east, north)`` box, snapped to ``resolution``.

    The size is rounded down to a multiple of ``multiple`` pixels (e.g. 256 for whole tiles).
    """
    west, south, east, north = bounds_lonlat
    crs = CRS.from_user_input(crs) if crs is not None else utm_crs((west + east) / 2, (south + north) / 2)
    poly = transform_geom("EPSG:4326", crs, footprint_lonlat((west, south, east, north), "EPSG:4326").__geo_interface__)
    left, bottom, right, top = shape(poly).bounds
    x0 = np.ceil(left / resolution) * resolution
    y0 = np.floor(top / resolution) * resolution
    width = int((right - x0) // resolution) // multiple * multiple
    height = int((y0 - bottom) // resolution) // multiple * multiple
    if width <= 0 or height <= 0:
        raise TilingError(f"box {tuple(bounds_lonlat)} is smaller than {multiple} px of {resolution} m")
    return Grid(crs, Affine(resolution, 0, float(x0), 0, -resolution, float(y0)), width, height)

