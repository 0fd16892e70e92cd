"""Tiling: grids, windows, patches, quality flags, band groups, writers, reads by coordinates."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.windows import Window

from cen import landcover, paths, tiling
from cen.tiling import Grid, TilingError
from cen.tables import atomic_path

S2_WIN = paths.DATA_DIR / "sentinel2" / "S2A_18SVG_20160112_L1C" / "r0256_c0768"
WC_CROP = paths.DATA_DIR / "worldcover" / "ESA_WorldCover_10m_2020_v100_N00E006_SaoTome_Map.tif"


def test_grid_matches_rasterio_windows_and_reads():
    tiles = tiling.raster_tiles(S2_WIN / "B02.tif")
    # 513 x 513 px -> 2 x 2 whole 256-px tiles, partial edge dropped
    assert len(tiles) == 4
    with rasterio.open(S2_WIN / "B02.tif") as src:
        for t in tiles:
            assert t.transform == src.window_transform(t.window)
            np.testing.assert_array_equal(tiling.read_tile(src, t)[0], src.read(1, window=t.window))
        t = tiles[3]
        assert t.tile_id == "B02_r00256_c00256"
        left, bottom, right, top = t.bounds
        assert (right - left, top - bottom) == (2560.0, 2560.0)
        assert (left, top) == src.xy(256, 256, offset="ul")
    assert t.datetime == "2016-01-12"
    lon, lat = t.centre_lonlat
    assert -75.8 < lon < -75.5 and 37.5 < lat < 37.8
    assert t.footprint.contains(__import__("shapely").geometry.Point(lon, lat))


def test_grid_rejects_small_raster_and_names_file(tmp_path):
    with pytest.raises(TilingError, match="smaller than one 256x256"):
        tiling.tile_grid(100, 300, Affine.identity(), "EPSG:32632", source="x")
    bad = tmp_path / "corrupt.tif"
    bad.write_bytes(b"II*\x00 not really a tiff")
    with pytest.raises(TilingError, match="corrupt.tif"):
        tiling.raster_tiles(bad)


def test_split_patches_row_half_then_column_half_and_georeferencing():
    a = np.arange(512 * 512).reshape(512, 512)
    p = tiling.split_patches(a)
    assert list(p) == list(tiling.PATCH_NAMES)
    assert p["patch01"][0, 0] == a[0, 256]  # top row, right column half
    assert p["patch10"][0, 0] == a[256, 0]  # bottom row, left column half
    np.testing.assert_array_equal(tiling.merge_patches(p), a)
    parent = tiling.tile_grid(512, 512, Affine(10, 0, 1000, 0, -10, 5000), "EPSG:32632", source="s", size=512)[0]
    sub = tiling.patch_tiles(parent)
    assert sub["patch01"].transform @ (0, 0) == (1000 + 2560, 5000)
    assert sub["patch10"].transform @ (0, 0) == (1000, 5000 - 2560)
    assert sub["patch11"].window == Window(256, 256, 256, 256)
    with pytest.raises(TilingError, match="square"):
        tiling.split_patches(np.zeros((512, 510)))


def test_quality_flags_detect_nodata_and_placeholders():
    labels = np.zeros((256, 256), np.uint8)
    labels[:100] = 10
    assert tiling.nodata_fraction(labels, 0) == pytest.approx(156 / 256)
    assert tiling.quality_flags(labels=labels) == ["mostly_nodata_label"]
    black = np.zeros((256, 256, 3), np.uint8)
    white = np.full((256, 256, 3), 255, np.uint8)
    assert tiling.quality_flags(image8=black) == ["all_black"]
    assert tiling.quality_flags(image8=white) == ["all_white"]
    nearly_white = white.copy()
    nearly_white[5, 5, 1] = 254
    assert tiling.quality_flags(image8=nearly_white) == []
    stack = np.ones((9, 4, 4), np.uint16)
    stack[:, 0, 0] = 0  # all bands 0 -> nodata; one band 0 -> not nodata
    stack[3, 1, 1] = 0
    assert tiling.nodata_fraction(stack, 0) == pytest.approx(1 / 16)


def test_band_group_scaling_is_documented_stretch():
    stack = np.zeros((9, 1, 4), np.uint16)
    bands = list(tiling.S2_BANDS)
    stack[bands.index("B04"), 0] = [0, 1000, 2000, 9000]
    stack[bands.index("B05"), 0] = [0, 32, 3200, 9000]
    rgb = tiling.band_group_to_uint8(stack, "rgb")
    assert rgb.shape == (1, 4, 3) and rgb.dtype == np.uint8
    assert rgb[0, :, 0].tolist() == [0, 128, 255, 255]  # B4 is the red channel
    assert tiling.band_group_to_uint8(stack, "b567")[0, :, 0].tolist() == [0, 1, 100, 255]
    with pytest.raises(TilingError, match="unknown band group"):
        tiling.band_group_to_uint8(stack, "swir")
    with pytest.raises(TilingError, match=r"\(9, H, W\)"):
        tiling.band_group_to_uint8(stack[:3], "rgb")


def test_geotiff_is_lossless_and_atomic(tmp_path):
    rng = np.random.default_rng(0)
    stack = rng.integers(0, 12000, (9, 256, 256), dtype=np.uint16)
    out = tiling.write_geotiff(tmp_path / "a.tif", stack, crs="EPSG:32618", transform=Affine(10, 0, 0, 0, -10, 0),
                               nodata=0, band_names=tiling.S2_BANDS, tags={"s2_item_id": "X"})
    with rasterio.open(out) as src:
        np.testing.assert_array_equal(src.read(), stack)
        assert src.descriptions == tiling.S2_BANDS
        assert src.tags()["s2_item_id"] == "X"
        assert src.compression.name.lower() == "deflate"
    assert [p.name for p in tmp_path.iterdir()] == ["a.tif"]  # no temporary left behind
    with pytest.raises(ValueError):
        with atomic_path(tmp_path / "b.tif") as tmp:
            tmp.write_text("half")
            raise ValueError("interrupted")
    assert not (tmp_path / "b.tif").exists() and len(list(tmp_path.iterdir())) == 1


def test_label_png_round_trip_and_unknown_colour(tmp_path):
    idx = np.arange(256 * 256).reshape(256, 256) % 12
    path = tiling.write_label_png(tmp_path / "l.png", idx)
    np.testing.assert_array_equal(tiling.read_label_png(path), idx)
    img = landcover.indices_to_colour(idx)
    img[3, 4] = (1, 2, 3)
    tiling.write_png(tmp_path / "bad.png", img)
    with pytest.raises(TilingError, match=r"bad.png.*\(1, 2, 3\)"):
        tiling.read_label_png(tmp_path / "bad.png")


def test_20m_band_on_10m_grid_matches_by_coordinates():
    with rasterio.open(S2_WIN / "B02.tif") as ref:
        grid = Grid(ref.crs, ref.transform, 512, 512)
    b05 = tiling.read_on_grid(S2_WIN / "B05.tif", grid)
    with rasterio.open(S2_WIN / "B05.tif") as src:
        native = src.read(1)
        # the 20 m file starts 10 m west of the 10 m grid: check by coordinates, not (0, 0)
        assert src.transform.c != grid.transform.c
        for r, c in [(0, 0), (1, 1), (100, 37), (511, 511)]:
            x, y = grid.transform @ (c + 0.5, r + 0.5)
            rr, cc = src.index(x, y)
            assert b05[r, c] == native[rr, cc]
    stack = tiling.read_band_stack({b: S2_WIN / f"{b}.tif" for b in tiling.S2_BANDS}, grid)
    assert stack.shape == (9, 512, 512) and stack.dtype == np.uint16
    with pytest.raises(TilingError, match="B12"):
        tiling.read_band_stack({b: S2_WIN / f"{b}.tif" for b in tiling.S2_BANDS[:-1]}, grid)


def test_utm_grids():
    assert tiling.utm_crs(6.6, 0.3).to_epsg() == 32632
    assert tiling.utm_crs(-75.6, 37.7).to_epsg() == 32618
    assert tiling.utm_crs(151.2, -33.9).to_epsg() == 32756
    g = tiling.utm_grid(6.6, 0.3)
    assert (g.width, g.height) == (256, 256) and g.transform.c % 10 == 0 and g.transform.f % 10 == 0
    w, s, e, n = g.bounds_lonlat()
    assert w < 6.6 < e and s < 0.3 < n
    with pytest.raises(TilingError):
        tiling.utm_crs(200, 0)


def test_split_assignment_is_stable_and_near_release_shares():
    ids = [f"t{i}" for i in range(5000)]
    splits = [tiling.assign_split(i) for i in ids]
    assert splits == [tiling.assign_split(i) for i in ids]
    shares = {s: splits.count(s) / len(ids) for s in ("train", "val", "test")}
    assert abs(shares["train"] - 0.6) < 0.03 and abs(shares["val"] - 0.1) < 0.02


def test_demo_tiles_table(tmp_path):
    from cen.sources import demo

    frame = demo.build_demo_tiles(tmp_path, smoke=True)
    assert list(frame.columns) == list(tiling.TILES_COLUMNS)
    assert frame.tile_id.is_unique
    labels = frame[frame.source == "demo-worldcover"]
    images = frame[frame.source == "demo-sentinel2"]
    assert len(labels) == demo.N_LABEL_TILES[True] and len(images) == 4
    assert labels.image_path.isna().all() and images.label_path.isna().all()
    first = labels.iloc[0]
    assert json.loads(first.provenance)["n_classes"] == 9  # the nine-class window near (6.675, 0.399)
    assert abs(first.lon - 6.686) < 0.01 and abs(first.lat - 0.387) < 0.01
    with rasterio.open(first.label_path) as src:
        codes = src.read(1)
        assert src.crs.to_epsg() == 32632 and src.res == (10.0, 10.0)
        assert list(src.transform)[:6] == list(first["transform"])
    assert len(np.unique(codes)) >= 9
    np.testing.assert_array_equal(tiling.read_label_png(first.label_png_path), landcover.codes_to_indices(codes))
    # the label tile equals a direct nearest warp of the committed crop onto that tile's grid
    g = Grid(src.crs, Affine(*first["transform"]), 256, 256)
    np.testing.assert_array_equal(tiling.read_on_grid(WC_CROP, g), codes)
    img = images.iloc[0]
    with rasterio.open(img.image_path) as src:
        assert src.count == 9 and src.descriptions == tiling.S2_BANDS and src.crs.to_epsg() == 32618
    assert not img.offset_applied
    back = tiling.read_tiles_table(tmp_path / "tiles.parquet")
    assert back.crs.to_epsg() == 4326 and len(back) == len(frame)
    # re-running reuses finished tile files
    mtime = (tmp_path / "tiles" / f"{first.tile_id}_label.tif").stat().st_mtime_ns
    demo.build_demo_tiles(tmp_path, smoke=True)
    assert (tmp_path / "tiles" / f"{first.tile_id}_label.tif").stat().st_mtime_ns == mtime


def test_tiles_table_missing_column_is_named(tmp_path):
    from cen.sources import demo

    frame = demo.build_demo_tiles(tmp_path, smoke=True, n_label_tiles=1, n_s2_windows=0)
    tiling.write_tiles_table(tmp_path / "t.parquet", frame.drop(columns=["label_path"]))
    with pytest.raises(ValueError, match=r"t.parquet.*label_path"):
        tiling.read_tiles_table(tmp_path / "t.parquet")


def test_cut_raster_any_crs_with_patches(tmp_path):
    # a geographic (EPSG:4326) WorldCover raster, 1024 x 1024: 512-px windows -> 4 patches each
    arctic = paths.DATA_DIR / "worldcover" / "ESA_WorldCover_10m_2020_v100_N66E177_Map.tif"
    recs = tiling.cut_raster(arctic, tmp_path / "arctic", patches=True, progress=False)
    assert len(recs) == 16 and len({r["tile_id"] for r in recs}) == 16
    assert {r["tile_id"][-7:] for r in recs} == set(tiling.PATCH_NAMES)
    with rasterio.open(arctic) as src:
        full = src.read(1)
        for r in recs:
            with rasterio.open(r["path"]) as t:
                assert t.crs == src.crs and t.shape == (256, 256)
                row, col = src.index(*(t.transform @ (0.5, 0.5)))
                np.testing.assert_array_equal(t.read(1), full[row:row + 256, col:col + 256])
    assert all(r["crs"] == "EPSG:4326" for r in recs)
    # a UTM raster of 513 x 513 px, 256-px tiles: the one-pixel right and bottom strips are padded,
    # not dropped, so every source pixel is in exactly one tile; re-running keeps finished files
    recs2 = tiling.cut_raster(S2_WIN / "B08.tif", tmp_path / "s2", progress=False)
    assert len(recs2) == 9
    with rasterio.open(S2_WIN / "B08.tif") as src:
        assert (src.width, src.height) == (513, 513)
        full = src.read(1)
        fill = 0 if src.nodata is None else src.nodata
    mosaic = np.full((768, 768), fill, full.dtype)
    for r in recs2:
        row, col = (int(v) for v in re.search(r"_r(\d+)_c(\d+)$", r["tile_id"]).groups())
        with rasterio.open(r["path"]) as t:
            mosaic[row:row + 256, col:col + 256] = t.read(1)
            assert t.transform == Affine(*r["transform"])
    np.testing.assert_array_equal(mosaic[:513, :513], full)
    assert (mosaic[513:] == fill).all() and (mosaic[:, 513:] == fill).all()
    assert len(tiling.cut_raster(S2_WIN / "B08.tif", tmp_path / "s2d", progress=False, edge="drop")) == 4
    mtime = (tmp_path / "s2" / f"{recs2[0]['tile_id']}.tif").stat().st_mtime_ns
    tiling.cut_raster(S2_WIN / "B08.tif", tmp_path / "s2", progress=False)
    assert (tmp_path / "s2" / f"{recs2[0]['tile_id']}.tif").stat().st_mtime_ns == mtime


# --- views of a tiles table (notebooks 01 and 02) ----------------------------------------------

@pytest.fixture(scope="module")
def demo_tiles(tmp_path_factory):
    import matplotlib

    matplotlib.use("Agg")
    from cen.sources import demo

    return demo.build_demo_tiles(tmp_path_factory.mktemp("demo"), smoke=True)


@pytest.fixture
def close_figures():
    import matplotlib.pyplot as plt

    yield
    plt.close("all")


def test_tile_counts_and_overview(demo_tiles):
    counts = tiling.tile_counts(demo_tiles)
    assert counts == {"n_tiles": 7, "n_label_tiles": 3, "n_image_tiles": 4, "n_flagged": 0,
                      "max_classes_in_a_tile": 9}
    assert set(tiling.tile_counts(None).values()) == {0}
    flagged = demo_tiles.copy()
    flagged["flags"] = [["mostly_nodata"]] + [[]] * (len(flagged) - 1)
    assert tiling.tile_counts(flagged)["n_flagged"] == 1
    view = tiling.tiles_overview(demo_tiles, n=5)
    assert list(view.columns) == list(tiling.OVERVIEW_COLUMNS) and len(view) == 5
    assert view["tile_id"].tolist() == demo_tiles["tile_id"].head(5).tolist()


def test_provenance_examples_one_of_each_kind(demo_tiles):
    image = demo_tiles[demo_tiles.label_path.isna()].iloc[0]
    label = demo_tiles[demo_tiles.label_path.notna()].iloc[0]
    image_part, label_part = tiling.provenance_examples(demo_tiles, max_chars=10**6).split(
        f"\nlabel tile {label.tile_id}\n")
    head, image_json = image_part.split("\n", 1)
    assert head == f"image tile {image.tile_id}"
    assert json.loads(image_json) == json.loads(image.provenance)
    assert json.loads(label_part) == json.loads(label.provenance) and json.loads(label_part)["n_classes"] == 9
    short = tiling.provenance_examples(demo_tiles, max_chars=50)
    assert len(short) == len(head) + len(f"\nlabel tile {label.tile_id}\n") + 1 + 2 * 50


def test_patch_parent():
    assert tiling.patch_parent("S2A_18SVG_r0000_c1024_patch10") == "S2A_18SVG_r0000_c1024"
    assert tiling.patch_parent("worldcover_r00000_c02304") == "worldcover_r00000_c02304"
    assert tiling.patch_parent("x_patch22") == "x_patch22"  # not a ChatEarthNet patch name


def test_plot_label_tiles_returns_figure(demo_tiles, close_figures):
    from matplotlib.figure import Figure

    fig = tiling.plot_label_tiles(demo_tiles, n=2)
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    first = demo_tiles[demo_tiles.label_path.notna()].iloc[0]
    lat, lon = first.lat, first.lon
    assert fig.axes[0].get_title() == f"{first.tile_id}\n{lat:.4f}°N, {lon:.4f}°E\n9 classes"
    assert 0 < lat < 1 and 6 < lon < 7  # São Tomé: north, east
    np.testing.assert_array_equal(fig.axes[0].get_images()[0].get_array(), tiling.read_png(first.label_png_path))
    assert "ChatEarthNet colours" in fig._suptitle.get_text()
    # one legend for the figure: the classes of the panels shown, in class order, named as in captions
    shown = [tiling.read_label_png(p) for p in demo_tiles[demo_tiles.label_path.notna()].label_png_path.head(2)]
    present = sorted(set(np.unique(shown[0])) | set(np.unique(shown[1])))
    assert [t.get_text() for t in fig.legends[0].get_texts()] == [landcover.CLASSES[i].name_gpt35 for i in present]
    assert tiling.plot_label_tiles(demo_tiles[demo_tiles.label_path.isna()]) is None


def test_plot_image_tiles_returns_figure(demo_tiles, close_figures):
    fig = tiling.plot_image_tiles(demo_tiles, n=2)
    assert len(fig.axes) == 2 * len(tiling.BAND_GROUPS)
    first = demo_tiles[demo_tiles.image_path.notna()].iloc[0]
    assert [ax.get_title() for ax in fig.axes[:3]] == [f"{tiling.tile_title(first)}\nrgb", "b567", "b81112"]
    assert tiling.tile_title(first).endswith("°N, " + f"{abs(first.lon):.4f}°W")  # Virginia: north, west
    row = demo_tiles[demo_tiles.image_path.notna()].iloc[1]
    np.testing.assert_array_equal(fig.axes[5].get_images()[0].get_array(), tiling.read_png(row.b81112_png_path))
    assert tiling.plot_image_tiles(demo_tiles[demo_tiles.image_path.isna()]) is None


def test_plot_footprints_returns_figure(demo_tiles, close_figures):
    fig = tiling.plot_footprints(demo_tiles)
    (ax,) = fig.axes
    assert ax.get_title() == "3 label tiles (EPSG:4326 footprints)"
    assert len(ax.texts) == 3 and ax.get_xlabel() == "lon"
    x0, x1 = ax.get_xlim()
    assert x0 < demo_tiles.loc[demo_tiles.label_path.notna(), "lon"].min() < x1
    assert len(tiling.plot_footprints(demo_tiles, annotate_max=2).axes[0].texts) == 0


def test_plot_band_groups_stitches_the_window(demo_tiles, close_figures):
    fig = tiling.plot_band_groups(demo_tiles)
    imaged = demo_tiles[demo_tiles.image_path.notna()].set_index("tile_id")
    parent = tiling.patch_parent(imaged.index[0])
    assert parent in fig._suptitle.get_text()
    assert [ax.get_title() for ax in fig.axes] == [f"{g}: {', '.join(b)}" for g, b in tiling.BAND_GROUPS.items()]
    merged = np.asarray(fig.axes[0].get_images()[0].get_array())
    assert merged.shape == (512, 512, 3)
    np.testing.assert_array_equal(merged[256:, :256], tiling.read_png(imaged.loc[f"{parent}_patch10", "rgb_png_path"]))
    # three patches: the window cannot be stitched, its first patch is shown
    three = demo_tiles[~demo_tiles.tile_id.str.endswith("patch11")]
    assert np.asarray(tiling.plot_band_groups(three, parent).axes[0].get_images()[0].get_array()).shape == (256, 256, 3)
    with pytest.raises(ValueError, match="no image tile of window 'nope'"):
        tiling.plot_band_groups(demo_tiles, "nope")
    assert tiling.plot_band_groups(demo_tiles[demo_tiles.image_path.isna()]) is None


# --- eligibility: the contract stats, generate, export and vqa read -----------------------------

def test_tile_eligibility_rule_and_reasons():
    labels = np.full((256, 256), 10, np.uint8)
    labels[:25] = 0  # 25 rows of 256 nodata: 231/256 = 0.902 labelled
    e = tiling.tile_eligibility(labels=labels)
    assert e == {"labelled_fraction": pytest.approx(231 / 256), "eligible": True, "exclude_reason": None}
    labels[25] = 0  # 230/256 = 0.898 < 0.9
    assert tiling.tile_eligibility(labels=labels)["exclude_reason"] == "mostly_nodata"
    assert tiling.tile_eligibility(labels=np.zeros((4, 4), np.uint8), min_labelled=0)["eligible"]
    black, white = np.zeros((4, 4, 3), np.uint8), np.full((4, 4, 3), 255, np.uint8)
    full = np.full((4, 4), 10, np.uint8)
    assert tiling.tile_eligibility(labels=full, image8=black)["exclude_reason"] == "placeholder_black"
    assert tiling.tile_eligibility(labels=full, image8=white)["exclude_reason"] == "placeholder_white"
    assert tiling.tile_eligibility(labels=full, invalid_codes=True)["exclude_reason"] == "invalid_codes"
    assert tiling.tile_eligibility(labels=None) == {"labelled_fraction": None, "eligible": False,
                                                    "exclude_reason": "no_label"}
    with pytest.raises(TilingError, match="min_labelled"):
        tiling.tile_eligibility(labels=full, min_labelled=1.5)


def _table(eligible, reasons, labelled=True):
    import pandas as pd

    return pd.DataFrame({"tile_id": [f"t{i}" for i in range(len(eligible))],
                         "label_path": ["x.tif" if labelled else None] * len(eligible),
                         "eligible": eligible, "exclude_reason": reasons})


def test_eligibility_summary_adds_up():
    t = _table([True, False, False, True, False], [None, "mostly_nodata", "invalid_codes", None, "mostly_nodata"])
    assert tiling.eligibility_summary(t) == "5 tiles: 2 eligible, 3 excluded (mostly_nodata: 2, invalid_codes: 1)"
    assert tiling.eligible_tiles(t)["tile_id"].tolist() == ["t0", "t3"]
    assert tiling.eligibility_summary(_table([True, True], [None, None])) == "2 tiles: 2 eligible, 0 excluded"
    assert tiling.eligibility_summary(t.iloc[:0]) == "0 tiles: 0 eligible, 0 excluded"
    # a table written before the columns existed: every row with a label path is eligible
    old = t.drop(columns=["eligible", "exclude_reason"])
    old.loc[1, "label_path"] = None
    assert tiling.eligible_tiles(old)["tile_id"].tolist() == ["t0", "t2", "t3", "t4"]
    assert tiling.eligibility_summary(old) == "5 tiles: 4 eligible, 1 excluded (no_label: 1)"


def test_demo_table_records_eligibility(demo_tiles):
    labels = demo_tiles[demo_tiles.label_path.notna()]
    images = demo_tiles[demo_tiles.label_path.isna()]
    for _, row in labels.iterrows():
        with rasterio.open(row.label_path) as src:
            codes = src.read(1)
        assert row.labelled_fraction == (codes != 0).mean() and row.eligible and row.exclude_reason is None
    assert not images.eligible.any() and (images.exclude_reason == "no_label").all()
    assert images.labelled_fraction.isna().all()
    assert tiling.eligibility_summary(demo_tiles) == "7 tiles: 3 eligible, 4 excluded (no_label: 4)"


# --- portable workdirs: paths stored relative, moved or zipped folders read back -----------------

def _open_all(tiles, workdir):
    from cen.tables import resolve_path

    opened = 0
    for col in tiling.PATH_COLUMNS:
        for value in tiles[col].dropna():
            path = resolve_path(value, workdir)
            assert path.is_file(), (col, value)
            opened += 1
    return opened


def test_tiles_table_stores_relative_paths_and_a_moved_or_zipped_workdir_reads(tmp_path):
    import shutil

    from cen import stats
    from cen.sources import demo

    built = tmp_path / "built"
    frame = demo.build_demo_tiles(built, smoke=True)
    stored = tiling.read_tiles_table(built / "tiles.parquet")
    for col in tiling.PATH_COLUMNS:
        values = stored[col].dropna()
        assert all(not v.startswith("/") and v.startswith("tiles/") for v in values), col
    first = frame[frame.label_path.notna()].iloc[0]
    assert stored.set_index("tile_id").at[first.tile_id, "label_path"] == f"tiles/{first.tile_id}_label.tif"
    assert Path(first.label_path).is_absolute()  # the returned frame holds paths to open
    n_files = _open_all(stored, built)
    assert n_files == 3 * 2 + 4 * 4  # label tif + png; image tif + three band-group PNGs
    moved = tmp_path / "elsewhere" / "moved"
    moved.parent.mkdir()
    shutil.move(str(built), moved)
    back = tiling.read_tiles_table(moved / "tiles.parquet")
    assert back.attrs["workdir"] == str(moved) and _open_all(back, moved) == n_files
    assert len(stats.stats_table_from_tiles(moved / "tiles.parquet", progress=False)) == 3
    fig = tiling.plot_label_tiles(back, n=1)  # views open the files through the table's folder
    assert fig is not None
    archive = shutil.make_archive(str(tmp_path / "workdir"), "zip", moved)
    unzipped = tmp_path / "unzipped"
    shutil.unpack_archive(archive, unzipped)
    assert _open_all(tiling.read_tiles_table(unzipped / "tiles.parquet"), unzipped) == n_files


def test_absolute_paths_of_older_tables_still_read(tmp_path):
    from cen import stats
    from cen.sources import demo
    from cen.tables import write_parquet

    frame = demo.build_demo_tiles(tmp_path / "w", smoke=True, n_s2_windows=0)
    write_parquet(frame.drop(columns=["labelled_fraction", "eligible", "exclude_reason"]), tmp_path / "old.parquet")
    old = tiling.read_tiles_table(tmp_path / "old.parquet")
    assert Path(old.label_path.iloc[0]).is_absolute() and _open_all(old, tmp_path / "unrelated") == 6
    assert len(stats.stats_table_from_tiles(tmp_path / "old.parquet", progress=False)) == 3
    # rewriting through write_tiles_table makes them relative to the new table's folder
    tiling.write_tiles_table(tmp_path / "w" / "again.parquet", old)
    assert tiling.read_tiles_table(tmp_path / "w" / "again.parquet").label_path.iloc[0].startswith("tiles/")


def test_plot_label_map_one_function_for_indices_and_rgb(close_figures):
    from cen import verify

    idx = np.zeros((64, 64), np.uint8)
    idx[:32] = 1
    idx[32:, :16] = 6
    fig = tiling.plot_label_map(idx, title="t")
    ax = fig.axes[0]
    assert ax.get_title() == "t"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["water", "crop", "no data"]
    np.testing.assert_array_equal(ax.get_images()[0].get_array(), landcover.indices_to_colour(idx))
    rgb = landcover.indices_to_colour(idx)
    for plotted in (tiling.plot_label_map(rgb), verify.plot_label_map(rgb)):  # verify delegates here
        got = plotted.axes[0]
        assert [t.get_text() for t in got.get_legend().get_texts()] == ["water", "crop", "no data"]
        np.testing.assert_array_equal(got.get_images()[0].get_array(), rgb)
    with pytest.raises(ValueError):
        tiling.plot_label_map(np.full((4, 4), 80, np.uint8))  # WorldCover codes are not indices


def test_tile_title_says_where():
    assert tiling.tile_title({"tile_id": "x", "lon": -75.6, "lat": -33.91234}) == "x\n33.9123°S, 75.6000°W"
    assert tiling.tile_title({"tile_id": "x", "lon": 6.7, "lat": 0.3}, with_id=False) == "0.3000°N, 6.7000°E"


def test_read_rgb_is_the_tci_stretch_by_band_name(tmp_path):
    stack = np.zeros((9, 16, 16), np.uint16)
    bands = list(tiling.S2_BANDS)
    stack[bands.index("B04")] = 2000  # red at the top of the stretch
    stack[bands.index("B03")] = 1000
    stack[bands.index("B05")] = 9999  # not a true-colour band
    path = tiling.write_geotiff(tmp_path / "s.tif", stack, crs="EPSG:32632", transform=Affine(10, 0, 0, 0, -10, 0),
                                band_names=bands)
    rgb = tiling.read_rgb(path)
    assert rgb.shape == (16, 16, 3) and rgb.dtype == np.uint8
    assert rgb[0, 0].tolist() == [255, 128, 0]
    np.testing.assert_array_equal(rgb, tiling.band_group_to_uint8(stack, "rgb"))
    with pytest.raises(TilingError, match="nope.tif"):
        tiling.read_rgb(tmp_path / "nope.tif")
