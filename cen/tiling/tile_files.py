"""One tile's files: the label GeoTIFF + PNG, the image GeoTIFF + band-group PNGs, and
:func:`cut_raster` (every tile, or every 512 -> 4 patches, of a raster as GeoTIFFs).

File names are ``{tile_id}_label.tif`` / ``_label.png`` / ``_image.tif`` / ``_{group}.png``;
finished files are kept unless ``overwrite`` (re-running is cheap).
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import rasterio

from cen import landcover
from cen.tiling.grid import TILE_SIZE, Tile, patch_tiles, split_patches
from cen.tiling.products import BAND_GROUPS, S2_BANDS, band_group_to_uint8
from cen.tiling.quality import NODATA_FLAG_FRACTION, nodata_fraction
from cen.tiling.raster_io import raster_tiles, read_tile, write_geotiff, write_label_png, write_png
from cen.tiling.table import tile_record

def write_label_tile(out_dir: str | Path, tile: Tile, codes: np.ndarray, *, product: str,
                     overwrite: bool = False) -> dict[str, str]:
    """Write a label tile: ``{tile_id}_label.tif`` (WorldCover codes, colour table) and
    ``{tile_id}_label.png`` (ChatEarthNet colours). Existing files are kept unless ``overwrite``.

    Raises ``ValueError`` naming the tile if ``codes`` holds a value that is not a WorldCover code;
    the codes are checked first, so nothing is written for such a tile.
    """
    out_dir = Path(out_dir)
    tif, png = out_dir / f"{tile.tile_id}_label.tif", out_dir / f"{tile.tile_id}_label.png"
    try:  # validate before anything is written for this tile
        indices = landcover.codes_to_indices(codes)
    except ValueError as exc:
        raise ValueError(f"tile {tile.tile_id}: {exc}") from exc
    if overwrite or not tif.exists():
        write_geotiff(tif, codes.astype(np.uint8), crs=tile.crs, transform=tile.transform, nodata=0,
                      band_names=["worldcover_code"], tags={"product": product, "tile_id": tile.tile_id},
                      colormap=landcover.worldcover_colour_table())
    if overwrite or not png.exists():
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
    overwrite: bool = False, progress: bool = True, edge: str = "pad",
) -> list[dict[str, object]]:
    """Cut a georeferenced raster (any CRS, any band count) into lossless tile GeoTIFFs.

    One window is read at a time (memory ~ one tile). With ``patches=True`` the grid is
    ``2 * size`` and each window is written as its four ``patchIJ`` quarters (512 -> 4 x 256).
    The right and bottom edge tiles are padded with ``nodata`` (``edge="pad"``, default; every
    pixel is in a tile) or left out (``edge="drop"``). Returns one record per written tile
    (:func:`tile_record` columns plus ``path``, ``nodata_fraction``, ``flags``); finished tiles
    are kept unless ``overwrite``. Values are not checked against any class list: for a label
    raster use :func:`cen.sources.raster.tile_raster` (``cen tiles raster``), which validates
    the codes and writes the tiles table.
    """
    from tqdm.auto import tqdm

    out_dir = Path(out_dir)
    step = 2 * size if patches else size
    tiles = raster_tiles(path, size=step, source=source, edge=edge)
    records = []
    with rasterio.open(path) as src:
        nodata = src.nodata if nodata is None else nodata
        names = [d or f"band{i}" for i, d in enumerate(src.descriptions, start=1)]
        for tile in tqdm(tiles, desc=f"cut {Path(path).name}", disable=not progress, leave=False):
            array = read_tile(src, tile, fill=0 if nodata is None else nodata)
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

