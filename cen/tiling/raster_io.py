"""Raster files in and out: windowed reads (local, ``http(s)://``, ``s3://``), reads by
coordinates onto a :class:`~cen.tiling.grid.Grid`, and atomic PNG / GeoTIFF writers.

:func:`read_tile` reads one window (never the whole raster); :func:`open_on_grid` /
:func:`read_on_grid` warp a raster onto a grid (nearest by default) so grids offset by a
fraction of a pixel or in another CRS line up; :func:`read_band_stack` stacks single-band
files of any native resolution. :func:`write_geotiff` writes a lossless tiled DEFLATE GeoTIFF,
:func:`write_png` / :func:`write_label_png` 8-bit PNGs; all writes are atomic (temporary name
in the same folder, then rename).
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator, Literal, Mapping, Sequence

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.windows import Window

from cen import landcover
from cen.tables import atomic_path
from cen.tiling.grid import TILE_SIZE, Grid, Tile, TilingError, tile_grid
from cen.tiling.products import S2_BANDS

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



def raster_tiles(
    path: str | Path, *, size: int = TILE_SIZE, stride: int | None = None, source: str | None = None,
    datetime: str | None = None, edge: str = "drop",
) -> list[Tile]:
    """:func:`tile_grid` over a raster file (only its header is read).

    ``source`` defaults to the file stem; ``datetime`` to the GeoTIFF ``date`` tag if present;
    ``edge`` as :func:`tile_grid`.
    """
    path = str(path)
    try:
        with rasterio.open(path) as src:
            if src.crs is None:
                raise TilingError(f"{path}: raster has no CRS; cannot georeference tiles")
            dt = datetime or src.tags().get("date") or src.tags().get("datetime")
            return tile_grid(src.width, src.height, src.transform, src.crs, source=source or Path(path).stem,
                             size=size, stride=stride, datetime=dt, path=path, edge=edge)
    except rasterio.RasterioIOError as exc:
        raise TilingError(f"{path}: cannot open raster ({exc})") from exc


def read_tile(src: str | Path | rasterio.io.DatasetReaderBase, tile: Tile, bands: Sequence[int] | None = None,
              *, fill: float | None = None) -> np.ndarray:
    """Read a tile's window: ``(bands, height, width)`` in the raster's dtype (1-based ``bands``).

    A window reaching past the raster (an ``edge="pad"`` tile) is read boundless, the outside
    filled with ``fill`` (default the raster's nodata, else 0).
    """
    if isinstance(src, (str, Path)):
        with rasterio.open(src) as ds:
            return read_tile(ds, tile, bands, fill=fill)
    indexes = list(bands) if bands is not None else list(range(1, src.count + 1))
    w = tile.window
    inside = w.col_off >= 0 and w.row_off >= 0 and w.col_off + w.width <= src.width and w.row_off + w.height <= src.height
    try:
        if inside:
            return src.read(indexes, window=w, boundless=False)
        value = fill if fill is not None else (src.nodata if src.nodata is not None else 0)
        out = np.full((len(indexes), int(w.height), int(w.width)), value, dtype=src.dtypes[0])
        r1, c1 = min(int(w.row_off + w.height), src.height), min(int(w.col_off + w.width), src.width)
        part = src.read(indexes, window=Window(w.col_off, w.row_off, c1 - w.col_off, r1 - w.row_off))
        out[:, : part.shape[1], : part.shape[2]] = part
        return out
    except rasterio.RasterioIOError as exc:
        raise TilingError(f"{src.name}: cannot read window {tile.window} of tile {tile.tile_id} ({exc})") from exc



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



def read_rgb(path: str | Path) -> np.ndarray:
    """The true-colour picture of an image GeoTIFF as ``(H, W, 3)`` uint8: the one RGB stretch
    of the project (:func:`cen.tiling.band_group_to_uint8` ``"rgb"``, the Sentinel-2 TCI stretch).

    Bands: the ones described ``B04``, ``B03``, ``B02`` (our nine-band tiles); else a nine-band
    stack in :data:`S2_BANDS` order; else bands 4, 3, 2 of a stack starting at B01; a three-band
    file is taken as red, green, blue and a one-band file as grey. A uint8 file is already 8 bit
    and is not stretched again. Raises :class:`TilingError` naming the file.
    """
    from cen.tiling.products import RGB_DN_PER_LEVEL

    try:
        with rasterio.open(path) as src:
            names = [(d or "").upper().replace("B0", "B") for d in src.descriptions]
            wanted = ["B4", "B3", "B2"]
            if all(w in names for w in wanted):
                use = [names.index(w) + 1 for w in wanted]
            elif src.count == len(S2_BANDS):
                use = [S2_BANDS.index(b) + 1 for b in ("B04", "B03", "B02")]
            elif src.count >= 4:
                use = [4, 3, 2]
            elif src.count == 3:
                use = [1, 2, 3]
            else:
                use = [1, 1, 1]
            data = src.read(use)
    except rasterio.RasterioIOError as exc:
        raise TilingError(f"{path}: cannot read image ({exc})") from exc
    if data.dtype == np.uint8:
        return np.moveaxis(data, 0, -1).copy()
    scaled = np.clip(np.rint(np.nan_to_num(data.astype(np.float32)) / RGB_DN_PER_LEVEL), 0, 255).astype(np.uint8)
    return np.moveaxis(scaled, 0, -1)


def png_bytes(image: np.ndarray) -> bytes:
    """An ``(H, W, 3)`` or ``(H, W)`` uint8 array as PNG bytes (in memory)."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.asarray(image, dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()
