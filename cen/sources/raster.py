"""Tile a user's own land-cover raster (local file, ``http(s)://`` or ``s3://`` COG) into the
same ``tiles.parquet`` + label GeoTIFF/PNG layout as the demo, so ``cen stats``, ``cen
generate`` and ``cen verify`` run on it unchanged (``cen tiles raster``).

How it works (:func:`tile_raster`):

* **Window.** The whole raster, or the pixels whose centres fall inside ``bbox`` (lon/lat).
* **Grid.** ``native``: 256 x 256 windows of the raster's own pixels, starting at the window's
  upper-left pixel; ``utm10``: a north-up 10 m UTM grid over the window (nearest resampling,
  :func:`cen.tiling.open_on_grid`). The right and bottom edge tiles are padded with nodata
  (never dropped): every source pixel of the window is in exactly one tile, and no pixel
  outside the window is in any tile (``native``; ``utm10`` tiles cover the window's box).
  Each row's ``transform`` and ``crs`` describe the tile's own 256 x 256 grid.
* **Codes.** The ``product`` class map (:mod:`cen.sources.classmap`, ESA WorldCover by
  default) turns the product's codes into WorldCover codes; a tile holding a code the map does
  not know is written nowhere, recorded with ``exclude_reason`` ``invalid_codes`` and listed in
  the failures table (``tiles_failures.parquet``) with the code and pixel; the run goes on.
* **Eligibility.** :func:`cen.tiling.tile_eligibility` with ``min_labelled``; label files
  (``tiles/{tile_id}_label.tif`` / ``.png``) are written for eligible tiles only, and the
  other rows keep a null ``label_path``.
* **Bounded memory.** One strip of tiles (256 rows of the window) is read at a time, with
  GDAL's block cache capped at :data:`GDAL_CACHE_MB`.
* **Portable.** ``tiles.parquet`` stores the label paths relative to ``workdir`` (the returned
  frame holds them resolved), so the folder can be moved or zipped.
* **Resumable.** Each finished strip is saved under ``WORKDIR/.tiles_raster/``; a re-run
  skips finished strips (and a killed run loses at most the strip it was in). A run with other
  arguments in the same folder starts over (label files are rewritten when the raster, window,
  grid or class map changed). A strip that cannot be read (server error, truncated file) is
  recorded as failures for its tiles and retried by the next run.
"""

from __future__ import annotations

import contextlib
import json
import math
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from cen import tables, tiling
from cen.sources.classmap import ClassMap, default_product, load_classmap

GRIDS = ("native", "utm10")
"""``--grid`` choices: the raster's own pixels, or a 10 m UTM grid."""

GDAL_CACHE_MB = 128
"""GDAL block cache (``GDAL_CACHEMAX``) while tiling: enough for one strip of a COG's blocks."""

STAGE = "tiles raster"
"""``stage`` of this step's rows in the failures table."""

STATE_DIR = ".tiles_raster"
"""Hidden folder in the workdir that holds the finished strips and the run's arguments."""


@dataclass
class RasterTiles:
    """What :func:`tile_raster` produced: the tiles table, the failures (``tile_id``, ``stage``,
    ``error``), how many tiles a previous run had finished, and where the table is."""

    tiles: object
    failures: object
    n_resumed: int
    table: Path

    @property
    def summary(self) -> str:
        """The eligibility line (:func:`cen.tiling.eligibility_summary`)."""
        return tiling.eligibility_summary(self.tiles)


@dataclass(frozen=True)
class Layout:
    """Where the tiles of a run are: the window in grid pixels and the tile size."""

    grid: str
    crs: object
    transform: object
    """Affine of the grid the tiles are cut from (the raster's, or the UTM grid's)."""
    col0: int
    row0: int
    col1: int
    row1: int
    size: int = tiling.TILE_SIZE

    @property
    def n_cols(self) -> int:
        return math.ceil((self.col1 - self.col0) / self.size)

    @property
    def n_rows(self) -> int:
        return math.ceil((self.row1 - self.row0) / self.size)

    @property
    def n_tiles(self) -> int:
        return self.n_cols * self.n_rows

    def strip_rows(self) -> list[int]:
        """Grid row of the top of each strip of tiles."""
        return list(range(self.row0, self.row1, self.size))

    def window(self) -> list[int]:
        """``[col_off, row_off, width, height]`` of the tiled window in grid pixels."""
        return [self.col0, self.row0, self.col1 - self.col0, self.row1 - self.row0]


def check_bbox(bbox: Sequence[float] | None) -> tuple[float, float, float, float] | None:
    """``bbox`` as four floats, or a ``ValueError`` naming ``--bbox`` and the problem."""
    if bbox is None:
        return None
    if len(bbox) != 4:
        raise ValueError(f"--bbox needs MINLON MINLAT MAXLON MAXLAT, got {len(bbox)} value(s)")
    w, s, e, n = (float(v) for v in bbox)
    if not all(math.isfinite(v) for v in (w, s, e, n)):
        raise ValueError(f"--bbox {w} {s} {e} {n}: values must be finite numbers")
    if not (-180 <= w < e <= 180 and -90 <= s < n <= 90):
        raise ValueError(f"--bbox {w:g} {s:g} {e:g} {n:g}: need -180 <= MINLON < MAXLON <= 180 and "
                         "-90 <= MINLAT < MAXLAT <= 90")
    return (w, s, e, n)


def _lonlat_bounds(src) -> tuple[float, float, float, float]:
    from rasterio.warp import transform_bounds

    return tuple(transform_bounds(src.crs, "EPSG:4326", *src.bounds, densify_pts=21))  # type: ignore[return-value]


def _outside(bbox, src_name: str, covers) -> ValueError:
    w, s, e, n = bbox
    return ValueError(f"--bbox {w:g} {s:g} {e:g} {n:g} is outside {src_name} (it covers lon {covers[0]:.4f} … "
                      f"{covers[2]:.4f}, lat {covers[1]:.4f} … {covers[3]:.4f})")


def plan_layout(src, grid: str, bbox: tuple[float, float, float, float] | None, src_name: str) -> Layout:
    """The tiles of a run over an open raster (``native`` window of the raster's pixels, or the
    ``utm10`` grid over the window); ``ValueError`` when ``bbox`` misses the raster."""
    from rasterio.warp import transform_bounds
    from rasterio.windows import from_bounds

    covers = _lonlat_bounds(src)
    if grid == "native":
        col0, row0, col1, row1 = 0, 0, src.width, src.height
        if bbox is not None:
            left, bottom, right, top = transform_bounds("EPSG:4326", src.crs, *bbox, densify_pts=21)
            win = from_bounds(left, bottom, right, top, transform=src.transform)
            # pixels whose centres lie inside the box
            c0, r0 = math.floor(win.col_off + 0.5), math.floor(win.row_off + 0.5)
            c1, r1 = math.floor(win.col_off + win.width + 0.5), math.floor(win.row_off + win.height + 0.5)
            col0, row0, col1, row1 = max(c0, 0), max(r0, 0), min(c1, src.width), min(r1, src.height)
            if col0 >= col1 or row0 >= row1:
                raise _outside(bbox, src_name, covers)
        return Layout("native", src.crs, src.transform, col0, row0, col1, row1)
    box = covers
    if bbox is not None:
        box = (max(bbox[0], covers[0]), max(bbox[1], covers[1]), min(bbox[2], covers[2]), min(bbox[3], covers[3]))
        if box[0] >= box[2] or box[1] >= box[3]:
            raise _outside(bbox, src_name, covers)
    g = tiling.bounds_grid(box, resolution=10.0)
    return Layout("utm10", g.crs, g.transform, 0, 0, g.width, g.height)


def _run_key(src: str, layout: Layout, cmap: ClassMap, min_labelled: float) -> dict:
    return {"src": src, "grid": layout.grid, "window": layout.window(), "crs": str(layout.crs),
            "transform": list(layout.transform)[:6], "classmap": cmap.digest(), "product": cmap.name,
            "min_labelled": min_labelled, "tiles_version": tiling.TILES_VERSION}


_CONTENT_KEYS = ("src", "grid", "window", "crs", "transform", "classmap")
"""Arguments that change the label files (``min_labelled`` only changes which are written)."""


def _prepare_state(state: Path, key: dict, out_dir: Path) -> bool:
    """Keep the finished strips of a run with the same arguments; otherwise start over.
    Returns whether label files must be rewritten (the content changed)."""
    run_file = state / "run.json"
    rewrite = False
    if run_file.exists():
        try:
            old = json.loads(run_file.read_text())
        except ValueError:
            old = {}
        if old != key:
            rewrite = any(old.get(k) != key[k] for k in _CONTENT_KEYS) and out_dir.exists()
            shutil.rmtree(state / "strips", ignore_errors=True)
    (state / "strips").mkdir(parents=True, exist_ok=True)
    for folder in (state / "strips", out_dir):  # temporaries of a killed run (kill -9 skips their cleanup)
        for tmp in folder.glob(".*.tmp*") if folder.exists() else ():
            tmp.unlink(missing_ok=True)
    tables.write_bytes(run_file, json.dumps(key, indent=1).encode())
    return rewrite


def _tile(layout: Layout, row: int, col: int, source: str, datetime: str | None, src_path: str) -> tiling.Tile:
    import rasterio
    from rasterio.windows import Window

    win = Window(col, row, layout.size, layout.size)
    suffix = "" if layout.grid == "native" else f"_utm{layout.crs.to_epsg() or 'x'}"
    return tiling.Tile(f"{source}{suffix}_r{row:05d}_c{col:05d}", source, win, layout.crs,
                       rasterio.windows.transform(win, layout.transform), layout.size, layout.size,
                       datetime=datetime, path=src_path)


def _read_strip(reader, layout: Layout, row: int, fill: int, dtype) -> np.ndarray:
    """``(size, n_cols * size)`` codes of one strip, padded with ``fill`` beyond the window."""
    from rasterio.windows import Window

    size = layout.size
    height = min(size, layout.row1 - row)
    width = layout.col1 - layout.col0
    strip = np.full((size, layout.n_cols * size), fill, dtype=dtype)
    strip[:height, :width] = reader.read(1, window=Window(layout.col0, row, width, height))
    return strip


def _strip_rows(strip: np.ndarray, layout: Layout, row: int, *, cmap: ClassMap, fill: int, source: str,
                datetime: str | None, src: str, out_dir: Path, min_labelled: float, rewrite: bool,
                label_tiles: str | None) -> list[dict]:
    rows = []
    size = layout.size
    for k in range(layout.n_cols):
        col = layout.col0 + k * size
        tile = _tile(layout, row, col, source, datetime, src)
        codes, bad = cmap.convert(strip[:, k * size:(k + 1) * size])
        error = None
        if bad is not None:
            code, (r, c) = bad
            error = (f"tile {tile.tile_id}: code {code} at pixel (row {r}, col {c}) of the tile (grid pixel "
                     f"row {row + r}, col {col + c}) is not in class map {cmap.source} "
                     f"(valid: {', '.join(map(str, cmap.valid_codes))})")
            elig = tiling.tile_eligibility(labels=np.zeros_like(codes), invalid_codes=True)
            elig["labelled_fraction"] = None
        else:
            elig = tiling.tile_eligibility(labels=codes, min_labelled=min_labelled)
        rec = tiling.tile_record(tile)
        rec["geometry"] = rec["geometry"].wkb
        if elig["eligible"]:
            files = tiling.write_label_tile(out_dir, tile, codes, product=cmap.name, overwrite=rewrite)
            rec.update({k: tables.relative_to_workdir(v, out_dir.parent) for k, v in files.items()})
        present = np.flatnonzero(np.bincount(codes.ravel(), minlength=256)[1:]) + 1 if bad is None else []
        rec.update(
            split=tiling.assign_split(tile.tile_id), label_product=cmap.name, label_tiles=label_tiles,
            nodata_fraction=None if bad is not None else float(np.count_nonzero(codes == 0) / codes.size),
            flags=[] if bad is not None else tiling.quality_flags(labels=codes),
            provenance=json.dumps({
                "kind": "raster", "href": src, "grid": layout.grid, "classmap": cmap.source,
                "window": layout.window(), "min_labelled": min_labelled, "n_classes": int(len(present)),
                "classes_present": [int(c) for c in present],
                "padded": bool(row + size > layout.row1 or col + size > layout.col1),
            }, sort_keys=True),
            **elig, _error=error,
        )
        rows.append(rec)
    return rows


def _save_strip(path: Path, rows: list[dict]) -> None:
    import pandas as pd

    tables.write_parquet(pd.DataFrame(rows), path)


def _load_strips(state: Path, layout: Layout) -> dict[int, object]:
    import pandas as pd

    out = {}
    for row in layout.strip_rows():
        path = state / "strips" / f"r{row:06d}.parquet"
        if path.exists():
            try:
                out[row] = pd.read_parquet(path)
            except (OSError, ValueError):
                path.unlink(missing_ok=True)  # a damaged strip is made again
    return out


def tile_raster(
    src: str | Path, workdir: str | Path, *, bbox: Sequence[float] | None = None,
    min_labelled: float = tiling.DEFAULT_MIN_LABELLED, grid: str = "native", product: str | Path | None = None,
    progress: bool = True, cache_mb: int = GDAL_CACHE_MB,
) -> RasterTiles:
    """Tile a label raster into ``{workdir}/tiles.parquet`` and ``{workdir}/tiles/`` (see the module).

    ``src``: a local path, ``http(s)://`` URL, ``s3://bucket/key`` or GDAL ``/vsi…`` path;
    ``bbox``: ``(minlon, minlat, maxlon, maxlat)``; ``min_labelled``: the eligibility threshold
    (0 keeps every tile); ``grid``: :data:`GRIDS`; ``product``: a class map name or YAML path
    (default: WorldCover, v100 or v200 by the file name). Raises ``ValueError``/``OSError``
    naming the argument or file for bad input (before anything is written).
    """
    import geopandas as gpd
    import pandas as pd
    import rasterio
    from shapely import wkb
    from tqdm.auto import tqdm

    src = str(src)
    if grid not in GRIDS:
        raise ValueError(f"--grid must be one of {', '.join(GRIDS)}, got {grid!r}")
    if not 0 <= float(min_labelled) <= 1:
        raise ValueError(f"--min-labelled must be between 0 and 1, got {min_labelled}")
    min_labelled = float(min_labelled)
    bbox = check_bbox(bbox)
    cmap = load_classmap(product or default_product(src))
    workdir = Path(workdir)
    if workdir.exists() and not workdir.is_dir():
        raise ValueError(f"{workdir}: WORKDIR is a file, not a folder")
    out_dir = workdir / "tiles"
    state = workdir / STATE_DIR
    env = dict(tiling.GDAL_HTTP_ENV, GDAL_CACHEMAX=int(cache_mb))
    failures: list[dict] = []
    try:
        with rasterio.Env(**env), rasterio.open(tiling.gdal_path(src)) as ds:
            if ds.crs is None:
                raise tiling.TilingError(f"{src}: raster has no CRS; cannot georeference tiles")
            if not np.issubdtype(np.dtype(ds.dtypes[0]), np.integer):
                raise tiling.TilingError(f"{src}: a label raster holds integer class codes; band 1 is {ds.dtypes[0]}")
            # nodata: the class map's, else the raster's, else 0 when 0 is not a class
            cmap = cmap.with_nodata(int(ds.nodata) if ds.nodata is not None else None)
            cmap = cmap.with_nodata(0 if 0 not in cmap.classes else None)
            if cmap.nodata is None:
                raise ValueError(f"{cmap.source}: 'nodata' is null, {src} declares no nodata value and code 0 "
                                 "is a class: set 'nodata' in the class map (edge tiles are padded with it)")
            fill = cmap.nodata
            layout = plan_layout(ds, grid, bbox, src)
            key = _run_key(src, layout, cmap, min_labelled)
            rewrite = _prepare_state(state, key, out_dir)
            done = _load_strips(state, layout)
            tags = ds.tags()
            datetime = tags.get("time_start") or tags.get("datetime") or tags.get("date") or cmap.datetime
            source = Path(src.split("?")[0]).stem or "raster"
            label_tiles = tags.get("product_tile")
            n_resumed = sum(len(f) for f in done.values())
            todo = [r for r in layout.strip_rows() if r not in done]
            bar = tqdm(total=layout.n_tiles, initial=n_resumed, desc=f"tiles {source}", unit="tile",
                       disable=not progress)
            with bar:
                reader_cm = (tiling.open_on_grid(src, tiling.Grid(layout.crs, layout.transform,
                                                                  layout.n_cols * layout.size,
                                                                  layout.n_rows * layout.size),
                                                 src_nodata=fill, dst_nodata=fill)
                             if grid == "utm10" else contextlib.nullcontext(ds))
                with reader_cm as reader:
                    for row in todo:
                        try:
                            strip = _read_strip(reader, layout, row, fill, np.dtype(ds.dtypes[0]))
                        except (rasterio.RasterioIOError, tiling.TilingError) as exc:
                            msg = " ".join(f"{exc} {exc.__cause__ or ''}".split())
                            for k in range(layout.n_cols):
                                t = _tile(layout, row, layout.col0 + k * layout.size, source, datetime, src)
                                failures.append({"tile_id": t.tile_id, "stage": STAGE,
                                                 "error": f"{src}: cannot read strip at row {row} ({msg})"})
                            bar.update(layout.n_cols)
                            continue
                        rows = _strip_rows(strip, layout, row, cmap=cmap, fill=fill, source=source,
                                           datetime=datetime, src=src, out_dir=out_dir, min_labelled=min_labelled,
                                           rewrite=rewrite, label_tiles=label_tiles)
                        _save_strip(state / "strips" / f"r{row:06d}.parquet", rows)
                        done[row] = pd.DataFrame(rows)
                        bar.update(len(rows))
    except rasterio.RasterioIOError as exc:
        raise tiling.TilingError(f"{src}: cannot open raster ({' '.join(str(exc).split())})") from exc
    parts = [done[r] for r in layout.strip_rows() if r in done]
    frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["_error", "geometry"])
    for err, tid in zip(frame["_error"], frame.get("tile_id", [])):
        if isinstance(err, str):
            failures.append({"tile_id": tid, "stage": STAGE, "error": err})
    records = frame.drop(columns=["_error"]).to_dict("records")
    for rec in records:
        rec["geometry"] = wkb.loads(rec["geometry"])
        rec["transform"] = list(rec["transform"])
        rec["flags"] = list(rec["flags"])
    table = workdir / "tiles.parquet"
    tiles = tiling.tiles_frame(records) if records else gpd.GeoDataFrame(
        pd.DataFrame(columns=list(tiling.TILES_COLUMNS)), geometry="geometry", crs="EPSG:4326")
    tiles = tables.resolve_path_columns(tiles, workdir, tiling.PATH_COLUMNS)  # on disk: relative to workdir
    tiling.write_tiles_table(table, tiles)
    tables.write_failures(table, failures)
    return RasterTiles(tiles, pd.DataFrame(failures, columns=list(tables.FAILURE_COLUMNS)), n_resumed, table)
