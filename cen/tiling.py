"""Cut georeferenced rasters into ChatEarthNet-size tiles and write the release's image products.

* **Grid**: :func:`tile_grid` lays a regular grid of ``size x size`` pixel windows (256 by
  default) over any raster (any CRS, any band count); every :class:`Tile` keeps its window, CRS,
  affine transform, bounds, centre lon/lat, EPSG:4326 footprint, source id and date.
  :func:`read_tile` reads one window (rasterio windowed read, never the whole raster);
  :func:`cut_raster` writes every tile (or every 512 -> 4 patches) of a raster as GeoTIFFs.
* **Patches**: a 512 x 512 tile splits into the four ChatEarthNet patches ``patch00``,
  ``patch01``, ``patch10``, ``patch11`` (first digit = row half, 0 top; second = column half,
  0 left): :func:`split_patches` for arrays, :func:`patch_tiles` for georeferenced tiles.
* **Quality**: :func:`nodata_fraction`, :func:`is_all_black`, :func:`is_all_white` and
  :func:`quality_flags` detect the nodata tiles and the all-black / all-white placeholders
  that the release contains.
* **Band groups** (as the release's three image archives): ``rgb`` = B4, B3, B2;
  ``b567`` = B5, B6, B7; ``b81112`` = B8, B11, B12. :func:`band_group_to_uint8` scales
  reflectance DNs (reflectance x 10 000, processing-baseline offset already removed) to 8 bit:

  - ``rgb``: ``clip(DN * 255 / 2000, 0, 255)``, the Sentinel-2 true-colour image (TCI) stretch
    (reflectance 0 … 0.2 maps to 0 … 255);
  - ``b567`` and ``b81112``: ``clip(DN / 32, 0, 255)``, the SatlasPretrain 8-bit encoding of the
    non-TCI bands that ChatEarthNet's images most likely went through.

  The multispectral stack is kept lossless as a DEFLATE GeoTIFF (:func:`write_geotiff`).
* **Labels**: :func:`write_label_png` renders ChatEarthNet indices with the ChatEarthNet palette
  (via :mod:`cen.landcover`) and :func:`read_label_png` parses such a PNG back.

* **Views** of a tiles table for the notebooks: :func:`tiles_overview`, :func:`tile_counts`,
  :func:`provenance_examples`, and figures returned (not shown) by :func:`plot_label_tiles`,
  :func:`plot_image_tiles`, :func:`plot_footprints` and :func:`plot_band_groups`.

All files are written atomically (temporary name in the same folder, then rename).
"""

from __future__ import annotations

import contextlib
import json
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Literal, Mapping, Sequence

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.warp import transform_geom
from rasterio.windows import Window
from shapely.geometry import Polygon, shape

from cen import landcover
from cen.tables import atomic_path, read_table

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

TILE_SIZE = 256
"""ChatEarthNet patch size in pixels."""

PATCH_NAMES = ("patch00", "patch01", "patch10", "patch11")
"""The four patches of a 512 x 512 tile: ``patch{row half}{column half}``."""

S2_BANDS: tuple[str, ...] = ("B02", "B03", "B04", "B05", "B06", "B07", "B08", "B11", "B12")
"""The nine Sentinel-2 bands ChatEarthNet releases, in stack order of our image GeoTIFFs."""

BAND_GROUPS: dict[str, tuple[str, ...]] = {
    "rgb": ("B04", "B03", "B02"),
    "b567": ("B05", "B06", "B07"),
    "b81112": ("B08", "B11", "B12"),
}
"""The release's three image archives as band triplets (PNG channel order)."""

RGB_DN_PER_LEVEL = 2000 / 255
"""RGB scaling: one 8-bit level per this many reflectance DNs (TCI stretch, 0 … 2000 -> 0 … 255)."""
OTHER_DN_PER_LEVEL = 32.0
"""B5-B7 and B8-B12 scaling: DN / 32 (SatlasPretrain's 8-bit encoding)."""

BLACK_MAX = 0
"""A placeholder is all-black when every value is <= this."""
WHITE_MIN = 255
"""A placeholder is all-white when every value is >= this."""
NODATA_FLAG_FRACTION = 0.5
"""``quality_flags`` flags ``mostly_nodata`` above this fraction of nodata pixels."""


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
) -> list[Tile]:
    """Regular grid of ``size x size`` windows (row-major) over a ``width x height`` raster.

    ``stride`` defaults to ``size`` (no overlap). Partial windows at the right and bottom edges
    are dropped. Raises :class:`TilingError` if the raster is smaller than one tile.
    """
    if size <= 0:
        raise TilingError(f"tile size must be positive, got {size}")
    stride = stride or size
    if width < size or height < size:
        raise TilingError(f"{path or source}: raster of {width}x{height} px is smaller than one {size}x{size} tile")
    crs = CRS.from_user_input(crs)
    tiles = []
    for row in range(0, height - size + 1, stride):
        for col in range(0, width - size + 1, stride):
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


def raster_tiles(
    path: str | Path, *, size: int = TILE_SIZE, stride: int | None = None, source: str | None = None,
    datetime: str | None = None,
) -> list[Tile]:
    """:func:`tile_grid` over a raster file (only its header is read).

    ``source`` defaults to the file stem; ``datetime`` to the GeoTIFF ``date`` tag if present.
    """
    path = str(path)
    try:
        with rasterio.open(path) as src:
            if src.crs is None:
                raise TilingError(f"{path}: raster has no CRS; cannot georeference tiles")
            dt = datetime or src.tags().get("date") or src.tags().get("datetime")
            return tile_grid(src.width, src.height, src.transform, src.crs, source=source or Path(path).stem,
                             size=size, stride=stride, datetime=dt, path=path)
    except rasterio.RasterioIOError as exc:
        raise TilingError(f"{path}: cannot open raster ({exc})") from exc


def read_tile(src: str | Path | rasterio.io.DatasetReaderBase, tile: Tile, bands: Sequence[int] | None = None) -> np.ndarray:
    """Read a tile's window: ``(bands, height, width)`` in the raster's dtype (1-based ``bands``)."""
    if isinstance(src, (str, Path)):
        with rasterio.open(src) as ds:
            return read_tile(ds, tile, bands)
    indexes = list(bands) if bands is not None else list(range(1, src.count + 1))
    try:
        return src.read(indexes, window=tile.window, boundless=False)
    except rasterio.RasterioIOError as exc:
        raise TilingError(f"{src.name}: cannot read window {tile.window} of tile {tile.tile_id} ({exc})") from exc


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


# --- quality -------------------------------------------------------------------------------

def nodata_fraction(array: np.ndarray, nodata: float | None = 0, *, all_bands: bool = True) -> float:
    """Fraction of pixels that are nodata: ``(bands, H, W)`` or ``(H, W)``.

    A pixel of a multi-band array counts as nodata when every band (``all_bands=True``) or any
    band (``False``) equals ``nodata`` (NaN is always nodata for float arrays).
    """
    a = np.asarray(array)
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3 or a.shape[-1] == 0:
        raise TilingError(f"expected (bands, H, W) or (H, W), got shape {np.shape(array)}")
    mask = np.zeros(a.shape, dtype=bool)
    if nodata is not None:
        mask |= a == nodata
    if np.issubdtype(a.dtype, np.floating):
        mask |= np.isnan(a)
    per_pixel = mask.all(axis=0) if all_bands else mask.any(axis=0)
    return float(per_pixel.mean())


def is_all_black(image: np.ndarray) -> bool:
    """True if every value of the image is <= :data:`BLACK_MAX` (the release's black placeholder)."""
    return bool(np.asarray(image).max() <= BLACK_MAX)


def is_all_white(image: np.ndarray) -> bool:
    """True if every value of an 8-bit image is >= :data:`WHITE_MIN` (the release's white placeholder)."""
    return bool(np.asarray(image).min() >= WHITE_MIN)


def quality_flags(
    *, labels: np.ndarray | None = None, image8: np.ndarray | None = None, image: np.ndarray | None = None,
    label_nodata: int = 0, image_nodata: float | None = 0, max_nodata: float = NODATA_FLAG_FRACTION,
) -> list[str]:
    """Flags for one tile: ``mostly_nodata_label``, ``mostly_nodata_image``, ``all_black``, ``all_white``.

    ``labels`` are WorldCover codes (0 = nodata) or ChatEarthNet indices (0 = background);
    ``image`` the raw reflectance stack ``(bands, H, W)``; ``image8`` an 8-bit rendering.
    """
    flags = []
    if labels is not None and nodata_fraction(labels, label_nodata) > max_nodata:
        flags.append("mostly_nodata_label")
    if image is not None and nodata_fraction(image, image_nodata) > max_nodata:
        flags.append("mostly_nodata_image")
    if image8 is not None:
        if is_all_black(image8):
            flags.append("all_black")
        elif is_all_white(image8):
            flags.append("all_white")
    return flags


# --- band groups and scaling ----------------------------------------------------------------

def band_group_to_uint8(stack: np.ndarray, group: str, bands: Sequence[str] = S2_BANDS) -> np.ndarray:
    """Render one band group of a reflectance stack ``(len(bands), H, W)`` as ``(H, W, 3)`` uint8.

    DNs are reflectance x 10 000 with any baseline-04.00 offset already removed. Scaling:
    ``rgb`` ``clip(DN * 255 / 2000)``, others ``clip(DN / 32)`` (see the module docstring).
    """
    if group not in BAND_GROUPS:
        raise TilingError(f"unknown band group {group!r}; expected one of {', '.join(BAND_GROUPS)}")
    stack = np.asarray(stack)
    if stack.ndim != 3 or stack.shape[0] != len(bands):
        raise TilingError(f"expected a stack of shape ({len(bands)}, H, W) for bands {list(bands)}, got {stack.shape}")
    missing = [b for b in BAND_GROUPS[group] if b not in bands]
    if missing:
        raise TilingError(f"band group {group} needs {', '.join(missing)}, not in the stack's bands {list(bands)}")
    idx = [list(bands).index(b) for b in BAND_GROUPS[group]]
    per_level = RGB_DN_PER_LEVEL if group == "rgb" else OTHER_DN_PER_LEVEL
    scaled = np.clip(np.rint(stack[idx].astype(np.float32) / per_level), 0, 255).astype(np.uint8)
    return np.moveaxis(scaled, 0, -1)


# --- writers ---------------------------------------------------------------------------------

def write_png(path: str | Path, image: np.ndarray) -> Path:
    """Write an ``(H, W, 3)`` or ``(H, W)`` uint8 array as PNG (atomically)."""
    from PIL import Image

    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[-1] != 3):
        raise TilingError(f"{path}: PNG needs uint8 (H, W) or (H, W, 3), got {image.dtype} {image.shape}")
    with atomic_path(path) as tmp:
        Image.fromarray(image).save(tmp, format="PNG")
    return Path(path)


def read_png(path: str | Path) -> np.ndarray:
    """Read a PNG as a uint8 array ``(H, W, 3)`` (RGB) or ``(H, W)``."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            if im.mode not in ("RGB", "L"):
                im = im.convert("RGB")
            return np.asarray(im)
    except (OSError, UnidentifiedImageError) as exc:
        raise TilingError(f"{path}: not a readable PNG ({exc})") from exc


def write_geotiff(
    path: str | Path, array: np.ndarray, *, crs: CRS | str, transform: Affine, nodata: float | None = None,
    band_names: Sequence[str] | None = None, tags: Mapping[str, object] | None = None,
    colormap: Mapping[int, tuple[int, int, int, int]] | None = None,
) -> Path:
    """Write ``(bands, H, W)`` (or ``(H, W)``) as a tiled DEFLATE GeoTIFF (lossless), atomically.

    ``band_names`` become band descriptions; ``tags`` dataset tags (values stringified).
    """
    array = np.asarray(array)
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3:
        raise TilingError(f"{path}: GeoTIFF needs (bands, H, W), got shape {array.shape}")
    count, h, w = array.shape
    profile = dict(driver="GTiff", width=w, height=h, count=count, dtype=array.dtype.name,
                   crs=CRS.from_user_input(crs), transform=transform, nodata=nodata,
                   compress="deflate", predictor=2 if np.issubdtype(array.dtype, np.integer) else 3)
    if h % 16 == 0 and w % 16 == 0:
        profile.update(tiled=True, blockxsize=min(256, w), blockysize=min(256, h))
    with atomic_path(path) as tmp:
        with rasterio.open(tmp, "w", **profile) as dst:
            dst.write(array)
            if band_names:
                for i, name in enumerate(band_names, start=1):
                    dst.set_band_description(i, name)
            if tags:
                dst.update_tags(**{k: str(v) for k, v in tags.items() if v is not None})
            if colormap:
                dst.write_colormap(1, dict(colormap))
    return Path(path)


def write_label_png(path: str | Path, indices: np.ndarray,
                    palette: Literal["chatearthnet", "worldcover"] = "chatearthnet") -> Path:
    """Render ChatEarthNet indices ``(H, W)`` with the palette and write them as an RGB PNG."""
    return write_png(path, landcover.indices_to_colour(indices, palette=palette))


def read_label_png(path: str | Path, palette: Literal["chatearthnet", "worldcover"] = "chatearthnet") -> np.ndarray:
    """Parse a colour-rendered label PNG back to ChatEarthNet indices ``(H, W)`` uint8.

    Unknown colours raise ``ValueError`` naming the file, the colour and the pixel.
    """
    image = read_png(path)
    if image.ndim != 3:
        raise TilingError(f"{path}: label PNG must be RGB, got a single-channel image")
    try:
        return landcover.colour_to_indices(image, palette=palette)
    except ValueError as exc:
        raise TilingError(f"{path}: {exc}") from exc


def write_band_group_pngs(stem: str | Path, stack: np.ndarray, bands: Sequence[str] = S2_BANDS,
                          groups: Sequence[str] = tuple(BAND_GROUPS)) -> dict[str, Path]:
    """Write ``{stem}_{group}.png`` for each band group; returns ``{group: path}``."""
    out = {}
    for group in groups:
        out[group] = write_png(f"{stem}_{group}.png", band_group_to_uint8(stack, group, bands))
    return out


def tile_record(tile: Tile) -> dict[str, object]:
    """Georeferencing columns of a tile as the tiles table stores them (see DEVELOPERS.md)."""
    lon, lat = tile.centre_lonlat
    return {
        "tile_id": tile.tile_id,
        "source": tile.source,
        "geometry": tile.footprint,
        "lon": lon,
        "lat": lat,
        "crs": tile.crs.to_string(),
        "transform": list(tile.transform)[:6],
        "width": tile.width,
        "height": tile.height,
        "datetime": tile.datetime,
    }


# --- target grids and reads by coordinates ---------------------------------------------------

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


GDAL_HTTP_ENV: dict[str, object] = {
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
    "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".tif,.TIF,.tiff,.TIFF",
    "GDAL_HTTP_MAX_RETRY": 2,
    "GDAL_HTTP_RETRY_DELAY": 0.5,
    "GDAL_HTTP_TIMEOUT": 30,
    "GDAL_HTTP_MULTIRANGE": "YES",
    "GDAL_HTTP_MERGE_CONSECUTIVE_RANGES": "YES",
    "VSI_CACHE": "TRUE",
}
"""GDAL options for COG reads over HTTP(S) (``/vsicurl/``): no directory listing, bounded retries."""


def gdal_path(href: str | Path) -> str:
    """A rasterio/GDAL path for a local file, ``http(s)://`` URL (``/vsicurl/``) or ``s3://`` key."""
    href = str(href)
    if href.startswith(("http://", "https://")):
        return f"/vsicurl/{href}"
    if href.startswith("s3://"):
        bucket, _, key = href[5:].partition("/")
        return f"/vsicurl/https://{bucket}.s3.amazonaws.com/{key}"
    return href


@contextlib.contextmanager
def open_on_grid(
    href: str | Path, grid: Grid, *, resampling: str = "nearest", src_nodata: float | None = None,
    dst_nodata: float | None = None,
) -> Iterator[rasterio.vrt.WarpedVRT]:
    """Open a raster (local path or URL) as a WarpedVRT on ``grid``; read windows of it.

    Pixels are matched by coordinates (so grids offset by a fraction of a pixel or in another
    CRS line up) with a near-exact transformer, so a window read equals a read of the same
    window's own grid. Outside the source: ``dst_nodata`` (default the source's nodata, else 0).
    Raises :class:`TilingError` naming the href.
    """
    from rasterio.enums import Resampling
    from rasterio.vrt import WarpedVRT

    path = gdal_path(href)
    try:
        with rasterio.Env(**GDAL_HTTP_ENV), rasterio.open(path) as src:
            if src.crs is None:
                raise TilingError(f"{href}: raster has no CRS; cannot place it on a grid")
            nodata = src_nodata if src_nodata is not None else src.nodata
            fill = dst_nodata if dst_nodata is not None else (nodata if nodata is not None else 0)
            with WarpedVRT(src, crs=grid.crs, transform=grid.transform, width=grid.width, height=grid.height,
                           resampling=getattr(Resampling, resampling), src_nodata=nodata, nodata=fill,
                           tolerance=1e-6) as vrt:
                yield vrt
    except rasterio.RasterioIOError as exc:
        raise TilingError(f"{href}: cannot read raster ({exc})") from exc


def read_on_grid(
    href: str | Path, grid: Grid, *, band: int = 1, resampling: str = "nearest",
    src_nodata: float | None = None, dst_nodata: float | None = None,
) -> np.ndarray:
    """Read one band of a raster (local path or URL) warped onto ``grid``: ``(height, width)``.

    See :func:`open_on_grid` for alignment and nodata.
    """
    with open_on_grid(href, grid, resampling=resampling, src_nodata=src_nodata, dst_nodata=dst_nodata) as vrt:
        try:
            return vrt.read(band)
        except rasterio.RasterioIOError as exc:
            raise TilingError(f"{href}: cannot read raster ({exc})") from exc


def read_band_stack(
    hrefs: Mapping[str, str | Path], grid: Grid, bands: Sequence[str] = S2_BANDS, *,
    resampling: str = "nearest", nodata: float = 0,
) -> np.ndarray:
    """Stack single-band rasters (one per band, any native resolution) onto ``grid``.

    Returns ``(len(bands), height, width)`` in the first band's dtype. 20 m and 60 m bands are
    matched to the 10 m grid by coordinates (WarpedVRT; ``nearest`` repeats each coarse pixel,
    as SatlasPretrain did). Raises :class:`TilingError` naming a missing band or unreadable href.
    """
    missing = [b for b in bands if b not in hrefs]
    if missing:
        raise TilingError(f"band(s) {', '.join(missing)} missing; available: {', '.join(hrefs)}")
    layers = [read_on_grid(hrefs[b], grid, resampling=resampling, src_nodata=nodata, dst_nodata=nodata) for b in bands]
    return np.stack(layers)


# --- per-tile outputs and the tiles table ----------------------------------------------------

TILES_COLUMNS: tuple[str, ...] = (
    "tile_id", "source", "split", "geometry", "lon", "lat", "crs", "transform", "width", "height",
    "label_path", "label_png_path", "image_path", "rgb_png_path", "b567_png_path", "b81112_png_path",
    "label_product", "label_tiles", "s2_item_id", "datetime", "processing_baseline", "offset_applied",
    "nodata_fraction", "flags", "provenance", "tiles_version",
)
"""Columns of ``tiles.parquet`` in order (DEVELOPERS.md). ``transform`` is the affine
``(a, b, c, d, e, f)``; paths are absolute (null where a tile has no image or no label);
``flags`` is a list of strings (:func:`quality_flags`), ``provenance`` a JSON string."""

TILES_VERSION = "tiles-1"
"""Version of the tiles table layout written by this code."""

SPLIT_FRACTIONS = (("train", 0.6), ("val", 0.1), ("test", 0.3))
"""Split shares of the release (98,092 / 16,348 / 49,048 captions = 0.6 / 0.1 / 0.3)."""


def assign_split(tile_id: str, fractions: Sequence[tuple[str, float]] = SPLIT_FRACTIONS) -> str:
    """Deterministic split of a tile id from a hash (same id -> same split on every machine)."""
    import hashlib

    u = int.from_bytes(hashlib.sha256(tile_id.encode()).digest()[:8], "big") / 2**64
    acc = 0.0
    for name, share in fractions:
        acc += share
        if u < acc:
            return name
    return fractions[-1][0]


def write_label_tile(out_dir: str | Path, tile: Tile, codes: np.ndarray, *, product: str,
                     overwrite: bool = False) -> dict[str, str]:
    """Write a label tile: ``{tile_id}_label.tif`` (WorldCover codes, colour table) and
    ``{tile_id}_label.png`` (ChatEarthNet colours). Existing files are kept unless ``overwrite``.

    Raises ``ValueError`` naming the tile if ``codes`` holds a value that is not a WorldCover code.
    """
    out_dir = Path(out_dir)
    tif, png = out_dir / f"{tile.tile_id}_label.tif", out_dir / f"{tile.tile_id}_label.png"
    if overwrite or not tif.exists():
        write_geotiff(tif, codes.astype(np.uint8), crs=tile.crs, transform=tile.transform, nodata=0,
                      band_names=["worldcover_code"], tags={"product": product, "tile_id": tile.tile_id},
                      colormap=landcover.worldcover_colour_table())
    if overwrite or not png.exists():
        try:
            indices = landcover.codes_to_indices(codes)
        except ValueError as exc:
            raise ValueError(f"tile {tile.tile_id}: {exc}") from exc
        write_label_png(png, indices)
    return {"label_path": str(tif.resolve()), "label_png_path": str(png.resolve())}


def write_image_tile(out_dir: str | Path, tile: Tile, stack: np.ndarray, *, bands: Sequence[str] = S2_BANDS,
                     tags: Mapping[str, object] | None = None, overwrite: bool = False) -> dict[str, str]:
    """Write an image tile: ``{tile_id}_image.tif`` (lossless multi-band stack) and one 8-bit PNG
    per band group the stack holds (``{tile_id}_rgb.png``, ``_b567.png``, ``_b81112.png``)."""
    out_dir = Path(out_dir)
    tif = out_dir / f"{tile.tile_id}_image.tif"
    if overwrite or not tif.exists():
        write_geotiff(tif, stack, crs=tile.crs, transform=tile.transform, nodata=0, band_names=list(bands),
                      tags={**(tags or {}), "tile_id": tile.tile_id})
    out = {"image_path": str(tif.resolve())}
    for group in BAND_GROUPS:
        if not set(BAND_GROUPS[group]) <= set(bands):
            continue  # a partial stack (e.g. one band) gets the groups it can make
        png = out_dir / f"{tile.tile_id}_{group}.png"
        if overwrite or not png.exists():
            write_png(png, band_group_to_uint8(stack, group, bands))
        out[f"{group}_png_path"] = str(png.resolve())
    return out


def cut_raster(
    path: str | Path, out_dir: str | Path, *, size: int = TILE_SIZE, patches: bool = False,
    source: str | None = None, nodata: float | None = None, max_nodata: float = NODATA_FLAG_FRACTION,
    overwrite: bool = False, progress: bool = True,
) -> list[dict[str, object]]:
    """Cut a georeferenced raster (any CRS, any band count) into lossless tile GeoTIFFs.

    One window is read at a time (memory ~ one tile). With ``patches=True`` the grid is
    ``2 * size`` and each window is written as its four ``patchIJ`` quarters (512 -> 4 x 256).
    Returns one record per written tile (:func:`tile_record` columns plus ``path``,
    ``nodata_fraction``, ``flags``); finished tiles are kept unless ``overwrite``.
    """
    from tqdm.auto import tqdm

    out_dir = Path(out_dir)
    step = 2 * size if patches else size
    tiles = raster_tiles(path, size=step, source=source)
    records = []
    with rasterio.open(path) as src:
        nodata = src.nodata if nodata is None else nodata
        names = [d or f"band{i}" for i, d in enumerate(src.descriptions, start=1)]
        for tile in tqdm(tiles, desc=f"cut {Path(path).name}", disable=not progress, leave=False):
            array = read_tile(src, tile)
            parts = (
                {tile.tile_id: (tile, array)} if not patches else
                {t.tile_id: (t, split_patches(array)[name]) for name, t in patch_tiles(tile).items()}
            )
            for tile_id, (t, arr) in parts.items():
                out = out_dir / f"{tile_id}.tif"
                if overwrite or not out.exists():
                    write_geotiff(out, arr, crs=t.crs, transform=t.transform, nodata=nodata, band_names=names,
                                  tags={"tile_id": tile_id, "source_path": str(path)})
                rec = tile_record(t)
                frac = nodata_fraction(arr, nodata)
                rec.update(path=str(out.resolve()), nodata_fraction=frac,
                           flags=["mostly_nodata"] if frac > max_nodata else [])
                records.append(rec)
    return records


def tiles_frame(rows: Sequence[Mapping[str, object]]):
    """A GeoDataFrame (EPSG:4326) with exactly :data:`TILES_COLUMNS` from row dicts (missing -> null)."""
    import geopandas as gpd
    import pandas as pd

    df = pd.DataFrame([{c: r.get(c) for c in TILES_COLUMNS} for r in rows], columns=list(TILES_COLUMNS))
    df["tiles_version"] = TILES_VERSION
    for col in ("nodata_fraction", "lon", "lat"):
        df[col] = df[col].astype(float)
    df["offset_applied"] = df["offset_applied"].astype("boolean")
    return gpd.GeoDataFrame(df, geometry="geometry", crs="EPSG:4326")


def write_tiles_table(path: str | Path, frame) -> Path:
    """Write a tiles GeoDataFrame as GeoParquet, atomically."""
    with atomic_path(path) as tmp:
        frame.to_parquet(tmp, index=False)
    return Path(path)


def read_tiles_table(path: str | Path):
    """Read ``tiles.parquet``; raises ``ValueError`` naming the file and any missing column."""
    import geopandas as gpd

    return read_table(path, TILES_COLUMNS, what="tiles table", made_by="notebook 01 data sourcing",
                      reader=gpd.read_parquet, error=ValueError)


def tiles_summary(frame) -> pd.DataFrame:
    """Per ``source``: tiles, tiles with labels / images, flagged tiles, and tiles per split."""
    import pandas as pd

    g = frame.groupby("source")
    out = pd.DataFrame({
        "tiles": g.size(),
        "with_label": g["label_path"].apply(lambda s: int(s.notna().sum())),
        "with_image": g["image_path"].apply(lambda s: int(s.notna().sum())),
        "flagged": g["flags"].apply(lambda s: int(sum(len(f) > 0 for f in s))),
    })
    splits = pd.crosstab(frame["source"], frame["split"])
    return out.join(splits).fillna(0).astype(int)


# ----------------------------------------------------------------------------------------------
# views of a tiles table for notebooks: tables, numbers and figures (figures are returned, not shown)

OVERVIEW_COLUMNS: tuple[str, ...] = (
    "tile_id", "source", "split", "lon", "lat", "crs", "label_product", "s2_item_id", "datetime",
    "processing_baseline", "offset_applied", "nodata_fraction", "flags",
)
"""Columns of :func:`tiles_overview`: where a tile is, which products and scene, and its quality."""

_PATCH_SUFFIX = re.compile(r"_(patch[01][01])$")


def tiles_overview(frame, n: int = 12) -> pd.DataFrame:
    """The first ``n`` rows of a tiles table, :data:`OVERVIEW_COLUMNS` only."""
    return frame[list(OVERVIEW_COLUMNS)].head(n)


def _n_classes(provenance: object) -> int | None:
    if not isinstance(provenance, str):
        return None
    value = json.loads(provenance).get("n_classes")
    return None if value is None else int(value)


def tile_counts(frame) -> dict[str, int]:
    """Key numbers of a tiles table (all 0 for ``None``, e.g. a release-only run).

    ``n_tiles``; ``n_label_tiles`` / ``n_image_tiles`` (non-null ``label_path`` / ``image_path``);
    ``n_flagged`` (tiles with at least one quality flag); ``max_classes_in_a_tile`` (the largest
    ``n_classes`` in the label tiles' provenance, 0 without label tiles).
    """
    if frame is None:
        return dict.fromkeys(("n_tiles", "n_label_tiles", "n_image_tiles", "n_flagged", "max_classes_in_a_tile"), 0)
    labelled = frame["label_path"].notna()
    classes = [c for c in map(_n_classes, frame.loc[labelled, "provenance"]) if c is not None]
    return {
        "n_tiles": int(len(frame)),
        "n_label_tiles": int(labelled.sum()),
        "n_image_tiles": int(frame["image_path"].notna().sum()),
        "n_flagged": int(sum(len(f) > 0 for f in frame["flags"])),
        "max_classes_in_a_tile": int(max(classes, default=0)),
    }


def provenance_examples(frame, max_chars: int = 1200) -> str:
    """The provenance of the first image tile and the first label tile as indented JSON, each
    headed by its kind and id and cut to ``max_chars`` characters."""
    out = []
    for is_label, part in frame.groupby(frame["label_path"].notna()):
        row = part.iloc[0]
        out.append(f"{'label tile' if is_label else 'image tile'} {row['tile_id']}")
        out.append(json.dumps(json.loads(row["provenance"] or "{}"), indent=1)[:max_chars])
    return "\n".join(out)


def patch_parent(tile_id: str) -> str:
    """The id of the 512-px window a ``..._patchIJ`` tile was cut from (other ids unchanged)."""
    return _PATCH_SUFFIX.sub("", str(tile_id))


def plot_label_tiles(frame, n: int = 8) -> Figure | None:
    """The first ``n`` label tiles as rendered (their ChatEarthNet-colour PNGs), one panel each,
    titled with the tile centre and the number of classes; ``None`` if no tile has a label PNG."""
    import matplotlib.pyplot as plt

    shown = frame[frame["label_png_path"].notna()].head(n)
    if not len(shown):
        return None
    fig, axes = plt.subplots(1, len(shown), figsize=(2.6 * len(shown), 2.8), squeeze=False)
    for ax, (_, row) in zip(axes[0], shown.iterrows()):
        ax.imshow(read_png(row["label_png_path"]))
        n_classes = _n_classes(row["provenance"])
        ax.set_title(f"{row['lon']:.3f}, {row['lat']:.3f}\n{'?' if n_classes is None else n_classes} classes",
                     fontsize=8)
        ax.axis("off")
    fig.suptitle("WorldCover label tiles (ChatEarthNet colours)")
    return fig


def plot_image_tiles(frame, n: int = 4) -> Figure | None:
    """The first ``n`` image tiles (rows) in the three band groups (columns, :data:`BAND_GROUPS`),
    from their 8-bit PNGs; ``None`` if no tile has an RGB PNG."""
    import matplotlib.pyplot as plt

    shown = frame[frame["rgb_png_path"].notna()].head(n)
    if not len(shown):
        return None
    fig, axes = plt.subplots(len(shown), len(BAND_GROUPS), figsize=(7.5, 2.6 * len(shown)), squeeze=False)
    for r, (_, row) in enumerate(shown.iterrows()):
        for c, group in enumerate(BAND_GROUPS):
            path = row[f"{group}_png_path"]
            if isinstance(path, str):
                axes[r][c].imshow(read_png(path))
            axes[r][c].set_title(f"{row['tile_id'][-7:]} {group}", fontsize=8)
            axes[r][c].axis("off")
    fig.suptitle("Sentinel-2 band groups")
    return fig


def plot_footprints(frame, annotate_max: int = 8) -> Figure:
    """EPSG:4326 footprints of the label tiles of a tiles GeoDataFrame, annotated with the end of
    their ids when there are at most ``annotate_max``."""
    import matplotlib.pyplot as plt

    labelled = frame[frame["label_path"].notna()]
    fig, ax = plt.subplots(figsize=(5, 4))
    if len(labelled):
        labelled.boundary.plot(ax=ax, color="tab:blue", linewidth=1)
    if len(labelled) <= annotate_max:
        for _, row in labelled.iterrows():
            ax.annotate(row["tile_id"][-12:], (row["lon"], row["lat"]), fontsize=6, ha="center")
    ax.set_title(f"{len(labelled)} label tiles (EPSG:4326 footprints)")
    ax.set_xlabel("lon")
    ax.set_ylabel("lat")
    return fig


def plot_band_groups(frame, parent: str | None = None) -> Figure | None:
    """One 512-px Sentinel-2 window in the three band groups, its four patches stitched back
    (:func:`merge_patches`; white lines mark the patch edges).

    ``parent`` is the window id (:func:`patch_parent` of its patches), default the first image
    tile's; a window with fewer than four patches shows its first patch. ``None`` if the table
    has no image tile; ``ValueError`` if no image tile belongs to ``parent``.
    """
    import matplotlib.pyplot as plt

    imaged = frame[frame["image_path"].notna()]
    if not len(imaged):
        return None
    parents = imaged["tile_id"].map(patch_parent)
    parent = parents.iloc[0] if parent is None else parent
    window = imaged[parents == parent]
    if not len(window):
        raise ValueError(f"tiles table: no image tile of window {parent!r}")
    by_patch = {str(row["tile_id"])[len(parent) + 1:]: row for _, row in window.iterrows()}  # "patch00" ...
    fig, axes = plt.subplots(1, len(BAND_GROUPS), figsize=(3.3 * len(BAND_GROUPS), 3.4), squeeze=False)
    for ax, group in zip(axes[0], BAND_GROUPS):
        found = {p: read_png(row[f"{group}_png_path"]) for p, row in by_patch.items()
                 if isinstance(row[f"{group}_png_path"], str)}
        if all(p in found for p in PATCH_NAMES):
            ax.imshow(merge_patches({p: found[p].transpose(2, 0, 1) for p in PATCH_NAMES}).transpose(1, 2, 0))
            ax.axhline(found["patch00"].shape[0] - 0.5, color="w", lw=1)
            ax.axvline(found["patch00"].shape[1] - 0.5, color="w", lw=1)
        elif found:
            ax.imshow(next(iter(found.values())))
        ax.set_title(f"{group}: {', '.join(BAND_GROUPS[group])}", fontsize=9)
        ax.axis("off")
    fig.suptitle(f"{parent}: 512 px window -> patch00 | patch01 / patch10 | patch11")
    return fig
