"""Make ``data/earth-search-s2-l2a-29RKH/``: a CI-sized copy of the real Earth Search v1 fixture.

Reads ``../shared/data/earth-search-s2-l2a-29RKH/`` (the item JSON, ``B04.tif`` at 100 m and
``SCL.tif`` at 200 m from the test fixtures of ``cogeotiff/rio-tiler-pds``, see its
PROVENANCE.md) and writes beside the demo data: the item JSON and ``SCL.tif`` unmodified, and
``B04.tif`` cut to the 64 x 64 pixels (6.4 km) around (-11.5 E, 24.8 N), values, CRS, nodata and
pixel grid unchanged (a tiled, deflated GeoTIFF; only the window and its transform differ).

    .venv/bin/python scripts/make_earth_search_crop.py
"""

from __future__ import annotations

import shutil
from pathlib import Path

import rasterio
from pyproj import Transformer
from rasterio.windows import Window

from cen import paths

NAME = "earth-search-s2-l2a-29RKH"
POINT = (-11.5, 24.8)
SIZE = 64


def main() -> None:
    shared = paths.shared_data_dir()
    if shared is None:
        raise SystemExit("../shared/data is not beside this checkout")
    src_dir, out = shared / NAME, paths.DATA_DIR / NAME
    out.mkdir(exist_ok=True)
    for name in ("S2A_29RKH_20200219_0_L2A.json", "SCL.tif"):
        shutil.copyfile(src_dir / name, out / name)
    with rasterio.open(src_dir / "B04.tif") as src:
        x, y = Transformer.from_crs(4326, src.crs, always_xy=True).transform(*POINT)
        row, col = src.index(x, y)
        window = Window(col - SIZE // 2, row - SIZE // 2, SIZE, SIZE)
        profile = {**src.profile, "width": SIZE, "height": SIZE, "transform": src.window_transform(window),
                   "blockxsize": 16, "blockysize": 16, "tiled": True, "compress": "deflate"}
        with rasterio.open(out / "B04.tif", "w", **profile) as dst:
            dst.write(src.read(1, window=window), 1)
            dst.update_tags(source="B04.tif of rio-tiler-pds tests/fixtures (sha256 03d15e21...), "
                                   f"window col {window.col_off} row {window.row_off} size {SIZE}")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
