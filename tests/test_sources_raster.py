"""``cen tiles raster``: a user's own label raster, every pixel and every tile accounted for.

Real files only: the committed WorldCover v200 crop of São Tomé, rasters derived from it with
codes the product does not have, the full 36,000² tile of ../shared/data when present, a local
Range HTTP server, and the command line run as a user runs it (in-process and as a process).
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
from affine import Affine
from rasterio.windows import Window

from cen import cli, landcover, paths, tables, tiling
from cen.sources import classmap, raster

CROP = paths.DATA_DIR / "worldcover" / "ESA_WorldCover_10m_2021_v200_N00E006_SaoTome_Map.tif"
FULL_NAME = "ESA_WorldCover_10m_2021_v200_N00E006_Map.tif"
SAO_TOME = (6.45, 0.0, 6.80, 0.45)
SUMMARY = re.compile(r"^(\d+) tiles: (\d+) eligible, (\d+) excluded(?: \((.*)\))?$")


def parse_summary(line: str) -> tuple[int, int, int, dict[str, int]]:
    m = SUMMARY.match(line)
    assert m, line
    reasons = dict((k, int(v)) for k, v in (p.split(": ") for p in m.group(4).split(", "))) if m.group(4) else {}
    return int(m.group(1)), int(m.group(2)), int(m.group(3)), reasons


def run_cli(*args: str, capsys) -> tuple[int, str, str]:
    code = cli.main(["tiles", "raster", *map(str, args), "--no-progress"])
    out, err = capsys.readouterr()
    return code, out, err


def window_of(src, row: pd.Series) -> Window:
    """The source pixel window a tile's own transform describes."""
    r, c = rasterio.transform.rowcol(src.transform, *(Affine(*row["transform"]) * (0.5, 0.5)))
    return Window(int(c), int(r), int(row["width"]), int(row["height"]))


def rederive(src, row: pd.Series, region: Window) -> np.ndarray:
    """A tile's codes re-read from the source through the row's transform, nodata outside ``region``."""
    win = window_of(src, row)
    codes = src.read(1, window=win, boundless=True, fill_value=0)
    rr, cc = np.mgrid[0:win.height, 0:win.width]
    rr, cc = rr + win.row_off, cc + win.col_off
    inside = ((rr >= region.row_off) & (rr < region.row_off + region.height)
              & (cc >= region.col_off) & (cc < region.col_off + region.width))
    return np.where(inside, codes, 0)


def check_accounting(tiles, src_path: str | Path, region: Window | None = None, min_labelled: float = 0.9) -> None:
    """eligible + excluded = tiles; labelled pixels over tiles = labelled pixels of the window read
    directly; every labelled_fraction / eligible value re-derived from the source."""
    n, e, x, reasons = parse_summary(tiling.eligibility_summary(tiles))
    assert n == len(tiles) and e + x == n and sum(reasons.values()) == x
    assert e == int(tiles["eligible"].sum())
    with rasterio.open(src_path) as src:
        region = region or Window(0, 0, src.width, src.height)
        direct = int(np.count_nonzero(src.read(1, window=region)))
        summed = int(round((tiles["labelled_fraction"] * 256 * 256).sum()))
        assert summed == direct
        for _, row in tiles.iterrows():
            codes = rederive(src, row, region)
            frac = np.count_nonzero(codes) / codes.size
            assert row["labelled_fraction"] == frac
            assert row["eligible"] == (frac >= min_labelled)
            assert (pd.isna(row["exclude_reason"]) if row["eligible"] else row["exclude_reason"] == "mostly_nodata")
            assert row["crs"] == "EPSG:4326"
            if row["eligible"]:
                workdir = tiles.attrs.get("workdir", ".")
                with rasterio.open(tables.resolve_path(row["label_path"], workdir)) as tif:
                    np.testing.assert_array_equal(tif.read(1), codes)
                    assert list(tif.transform)[:6] == list(row["transform"])
                png = tables.resolve_path(row["label_png_path"], workdir)
                assert tiling.read_label_png(png).tolist() == landcover.codes_to_indices(codes).tolist()
            else:
                assert pd.isna(row["label_path"])


# --- the committed crop ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def crop_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("crop")
    return raster.tile_raster(CROP, work, progress=False), work


def test_crop_every_pixel_in_exactly_one_tile(crop_run):
    run, work = crop_run
    tiles = run.tiles
    with rasterio.open(CROP) as src:
        # 3840 x 5040 px: 15 x 20 tiles; the bottom strip (5040 = 19 * 256 + 176) is padded, not dropped
        assert (src.width, src.height) == (3840, 5040)
    assert len(tiles) == 15 * 20 and tiles["tile_id"].is_unique
    offsets = {(int(m[0]), int(m[1])) for m in tiles["tile_id"].str.extract(r"_r(\d+)_c(\d+)$").values}
    assert offsets == {(r, c) for r in range(0, 5040, 256) for c in range(0, 3840, 256)}
    check_accounting(tiles, CROP)
    assert run.failures.empty and not tables.failures_path(run.table).exists()
    assert list(tiling.read_tiles_table(work / "tiles.parquet")["tile_id"]) == list(tiles["tile_id"])
    bottom = tiles[tiles["tile_id"].str.contains("_r04864_")]
    assert all(json.loads(p)["padded"] for p in bottom["provenance"])
    assert set(tiles["label_product"]) == {"ESA WorldCover 10m 2021 v200"}
    assert set(tiles["split"]) <= {"train", "val", "test"}


def test_sao_tome_bbox_is_clipped_to_the_crop(crop_run, tmp_path):
    run, _ = crop_run
    clipped = raster.tile_raster(CROP, tmp_path, bbox=SAO_TOME, progress=False)
    assert clipped.tiles["tile_id"].tolist() == run.tiles["tile_id"].tolist()
    assert clipped.tiles["labelled_fraction"].tolist() == run.tiles["labelled_fraction"].tolist()


def test_bbox_window_pixels_by_centre_and_padding_outside_it(tmp_path):
    bbox = (6.5, 0.1, 6.6, 0.2)
    run = raster.tile_raster(CROP, tmp_path, bbox=bbox, min_labelled=0.5, progress=False)
    with rasterio.open(CROP) as src:
        win = rasterio.windows.from_bounds(*bbox, transform=src.transform).round_offsets().round_lengths()
    # 0.1 degree = 1200 px: 5 x 5 tiles, the last row and column padded with nodata
    assert (win.width, win.height) == (1200, 1200) and len(run.tiles) == 25
    check_accounting(run.tiles, CROP, region=win, min_labelled=0.5)
    first = run.tiles.iloc[0]
    assert first["tile_id"].endswith(f"_r{win.row_off:05d}_c{win.col_off:05d}")


def test_rerun_skips_finished_work_and_changed_arguments_start_over(crop_run, capsys):
    run, work = crop_run
    tif = Path(run.tiles.loc[run.tiles["eligible"], "label_path"].iloc[0])
    mtime = tif.stat().st_mtime_ns
    again = raster.tile_raster(CROP, work, progress=False)
    assert again.n_resumed == len(run.tiles) and tif.stat().st_mtime_ns == mtime
    pd.testing.assert_frame_equal(pd.DataFrame(again.tiles), pd.DataFrame(run.tiles))
    # another threshold: eligibility recomputed, label files of unchanged content kept
    lower = raster.tile_raster(CROP, work, min_labelled=0.0, progress=False)
    assert lower.n_resumed == 0 and lower.tiles["eligible"].all()
    assert tif.stat().st_mtime_ns == mtime
    check_accounting(lower.tiles, CROP, min_labelled=0.0)
    raster.tile_raster(CROP, work, progress=False)  # back to the module's state


def test_cli_prints_the_eligibility_line(crop_run, capsys):
    _, work = crop_run
    code, out, err = run_cli(CROP, work, capsys=capsys)
    assert code == 0 and err == ""
    line = out.splitlines()[0]
    n, e, x, reasons = parse_summary(line.split(" (300 finished")[0])
    assert (n, e + x) == (300, 300) and reasons == {"mostly_nodata": x}
    assert "300 finished by an earlier run, skipped" in line


def test_stats_read_the_raster_tiles_unchanged(crop_run):
    from cen import stats

    run, work = crop_run
    frame = stats.stats_table_from_tiles(work / "tiles.parquet", progress=False)
    eligible = tiling.eligible_tiles(run.tiles)
    assert sorted(frame["tile_id"]) == sorted(eligible["tile_id"])


# --- other grids and products -------------------------------------------------------------------

def test_utm10_grid_tiles_match_a_warp_of_their_own_grid(tmp_path):
    run = raster.tile_raster(CROP, tmp_path, bbox=(6.6, 0.3, 6.65, 0.34), grid="utm10", min_labelled=0,
                             progress=False)
    tiles = run.tiles
    assert set(tiles["crs"]) == {"EPSG:32632"} and len(tiles) == 3 * 2  # 556 x 445 px at 10 m
    for _, row in tiles.iterrows():
        assert row["transform"][0] == 10.0 and row["transform"][4] == -10.0
        g = tiling.Grid(rasterio.crs.CRS.from_string(row["crs"]), Affine(*row["transform"]), 256, 256)
        with rasterio.open(row["label_path"]) as tif:
            got = tif.read(1)
        want = tiling.read_on_grid(CROP, g)
        assert got.shape == (256, 256)
        # inside the grid's extent the tile is the warp of its own grid; beyond it padded with nodata
        filled = want[got != 0]
        np.testing.assert_array_equal(got[got != 0], filled)


def write_like(path: Path, codes: np.ndarray, *, nodata: int | None = 0, dtype: str = "uint8",
               transform: Affine | None = None) -> Path:
    with rasterio.open(CROP) as src:
        profile = src.profile | {"dtype": dtype, "nodata": nodata, "width": codes.shape[1],
                                 "height": codes.shape[0], "transform": transform or src.transform,
                                 "blockxsize": 256, "blockysize": 256}
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(codes.astype(dtype), 1)
    return path


def test_invalid_codes_write_nothing_for_that_tile_and_the_run_goes_on(tmp_path, capsys):
    with rasterio.open(CROP) as src:
        codes = src.read(1, window=Window(0, 0, 768, 512))
    codes[300, 20] = 7  # tile r00256_c00000
    codes[10, 600] = 255  # tile r00000_c00512
    bad = write_like(tmp_path / "bad.tif", codes)
    work = tmp_path / "work"
    code, out, err = run_cli(bad, work, "--min-labelled", "0", capsys=capsys)
    assert code == 2 and err == ""
    assert parse_summary(out.splitlines()[0].split(" -> ")[0]) == (6, 4, 2, {"invalid_codes": 2})
    tiles = tiling.read_tiles_table(work / "tiles.parquet")
    failed = tiles[tiles["exclude_reason"] == "invalid_codes"].set_index("tile_id")
    assert sorted(failed.index) == ["bad_r00000_c00512", "bad_r00256_c00000"]
    assert failed["label_path"].isna().all() and not failed["eligible"].any()
    assert not list((work / "tiles").glob("bad_r00256_c00000*")) and not list((work / "tiles").glob("bad_r00000_c00512*"))
    failures = tables.read_failures(work / "tiles.parquet").set_index("tile_id")
    assert "code 7 at pixel (row 44, col 20)" in failures.loc["bad_r00256_c00000", "error"]
    assert "code 255 at pixel (row 10, col 88)" in failures.loc["bad_r00000_c00512", "error"]
    assert "valid: 0, 10, 20, 30" in failures.loc["bad_r00000_c00512", "error"]
    assert f"{len(failures)} tile(s) failed" in out


def test_write_label_tile_checks_codes_before_writing(tmp_path):
    tile = tiling.tile_grid(256, 256, Affine(10, 0, 0, 0, -10, 0), "EPSG:32632", source="s")[0]
    codes = np.full((256, 256), 10, np.uint8)
    codes[3, 4] = 7
    with pytest.raises(ValueError, match="tile s_r00000_c00000: unknown WorldCover code 7"):
        tiling.write_label_tile(tmp_path, tile, codes, product="x")
    assert not any(tmp_path.iterdir())


def test_yaml_class_map_brings_another_product(tmp_path):
    # a Dynamic-World-like raster: codes 0 … 8, 255 = nodata
    dw = np.full((300, 260), 255, np.uint16)
    dw[:256, :256] = np.arange(256 * 256).reshape(256, 256) % 9
    path = write_like(tmp_path / "dw.tif", dw, nodata=None, dtype="uint16")
    run = raster.tile_raster(path, tmp_path / "w", product="dynamic-world", progress=False)
    first = run.tiles.iloc[0]
    assert first["label_product"] == "Dynamic World V1 label" and first["eligible"]
    with rasterio.open(first["label_path"]) as tif:
        got = tif.read(1)
    wanted = np.array([80, 10, 30, 90, 40, 20, 50, 60, 70])[dw[:256, :256] % 9]
    np.testing.assert_array_equal(got, wanted)
    assert len(run.tiles) == 4 and run.tiles["eligible"].sum() == 1  # the other three are nodata or padding
    # the shipped maps are consistent, and a user's YAML works the same way
    for name in classmap.BUILTIN:
        assert classmap.load_classmap(name).name
    own = tmp_path / "own.yaml"
    own.write_text("name: My map\nnodata: 255\nclasses:\n  0: 80\n  1: 10\n  2: 30\n  3: 90\n  4: 40\n"
                   "  5: 20\n  6: 50\n  7: 60\n  8: 70\n")
    mine = raster.tile_raster(path, tmp_path / "w2", product=own, progress=False)
    assert mine.tiles["labelled_fraction"].tolist() == run.tiles["labelled_fraction"].tolist()
    assert set(mine.tiles["label_product"]) == {"My map"}


# --- bad input: one line, exit 1, nothing written -------------------------------------------------

@pytest.mark.parametrize("args, message", [
    (["--bbox", "10", "10", "11", "11"], r"--bbox 10 10 11 11 is outside .*SaoTome_Map.tif \(it covers lon 6.4500"),
    (["--bbox", "6.7", "0", "6.6", "0.4"], r"--bbox 6.7 0 6.6 0.4: need -180 <= MINLON < MAXLON"),
    (["--min-labelled", "1.5"], r"--min-labelled must be between 0 and 1, got 1.5"),
    (["--product", "glc-fcs30"], r"--product glc-fcs30: neither a built-in class map"),
])
def test_wrong_arguments_are_one_line_errors(tmp_path, capsys, args, message):
    work = tmp_path / "work"
    code, out, err = run_cli(CROP, work, *args, capsys=capsys)
    assert code == 1 and out == ""
    assert len(err.strip().splitlines()) == 1 and re.search(message, err), err
    assert not (work / "tiles.parquet").exists()


def test_unreadable_file_and_bad_yaml_name_the_file(tmp_path, capsys):
    junk = tmp_path / "junk.tif"
    junk.write_bytes(b"II*\x00 this is not a GeoTIFF")
    code, _, err = run_cli(junk, tmp_path / "w", capsys=capsys)
    assert code == 1 and err.startswith(f"cen tiles: {junk}: cannot open raster") and err.count("\n") == 1
    code, _, err = run_cli(tmp_path / "missing.tif", tmp_path / "w", capsys=capsys)
    assert code == 1 and "missing.tif: cannot open raster" in err
    bad = tmp_path / "map.yaml"
    bad.write_text("name: x\nclasses: {1: [80\n")
    code, _, err = run_cli(CROP, tmp_path / "w", "--product", bad, capsys=capsys)
    assert code == 1 and err.startswith(f"cen tiles: {bad}: not valid YAML") and err.count("\n") == 1
    bad.write_text("name: x\nclasses:\n  1: 81\n")
    code, _, err = run_cli(CROP, tmp_path / "w", "--product", bad, capsys=capsys)
    assert code == 1 and f"{bad}: classes: 1 -> 81 is not a WorldCover code" in err
    floats = write_like(tmp_path / "float.tif", np.ones((256, 256)), dtype="float32")
    code, _, err = run_cli(floats, tmp_path / "w", capsys=capsys)
    assert code == 1 and "float.tif: a label raster holds integer class codes; band 1 is float32" in err
    assert not (tmp_path / "w" / "tiles.parquet").exists()


def test_open_ocean_has_nothing_eligible_and_says_why(tmp_path, capsys):
    ocean = write_like(tmp_path / "ocean.tif", np.zeros((256, 512), np.uint8))
    code, out, err = run_cli(ocean, tmp_path / "w", capsys=capsys)
    assert code == 1 and out.startswith("2 tiles: 0 eligible, 2 excluded (mostly_nodata: 2)")
    assert "ocean.tif: no eligible tile" in err and "lower --min-labelled" in err
    # the wrong class map: every tile has codes it does not know, and the hint says so
    code, out, err = run_cli(CROP, tmp_path / "dw", "--product", "dynamic-world", capsys=capsys)
    assert code == 1 and out.startswith("300 tiles: 0 eligible, 300 excluded (invalid_codes: 300)")
    assert err.strip().endswith("is --product right?") and err.count("\n") == 1
    # a file where the output folder should be
    (tmp_path / "afile").write_text("x")
    code, out, err = run_cli(CROP, tmp_path / "afile", capsys=capsys)
    assert code == 1 and err.strip() == f"cen tiles: {tmp_path / 'afile'}: WORKDIR is a file, not a folder"


# --- over HTTP, killed, and with a server that fails --------------------------------------------

def cen_process(*args: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(paths.ROOT))
    return subprocess.Popen([sys.executable, "-m", "cen.cli", "tiles", "raster", *map(str, args), "--no-progress"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_http_cog_matches_the_local_run(crop_run, http_server, tmp_path):
    run, _ = crop_run
    shutil.copy(CROP, http_server.root / CROP.name)
    remote = raster.tile_raster(f"{http_server.url}/{CROP.name}", tmp_path, progress=False)
    assert remote.tiles["tile_id"].tolist() == run.tiles["tile_id"].tolist()
    assert remote.tiles["labelled_fraction"].tolist() == run.tiles["labelled_fraction"].tolist()
    assert any(r.status == 206 and r.range for r in http_server.requests)  # windowed range reads
    assert remote.failures.empty


def test_server_that_fails_or_truncates_then_recovers(http_server, tmp_path):
    shutil.copy(CROP, http_server.root / "wc.tif")
    url = f"{http_server.url}/wc.tif"
    http_server.fail_paths["/wc.tif"] = 503
    p = cen_process(url, tmp_path / "a")
    out, err = p.communicate(timeout=120)
    assert p.returncode == 1 and err.strip() == f"cen tiles: {url}: cannot open raster (HTTP response code: 503)"
    http_server.fail_paths.clear()
    http_server.truncate_after = 40_000  # the header reads; the larger blocks break off
    p = cen_process(url, tmp_path / "b")
    out, err = p.communicate(timeout=300)
    assert p.returncode == 2, err
    failures = tables.read_failures(tmp_path / "b" / "tiles.parquet")
    partial = tiling.read_tiles_table(tmp_path / "b" / "tiles.parquet")
    assert len(failures) > 0 and len(partial) + len(failures) == 300
    assert failures["error"].str.contains("cannot read strip at row").all()
    http_server.truncate_after = None
    p = cen_process(url, tmp_path / "b")
    out, err = p.communicate(timeout=300)
    assert p.returncode == 0, err
    assert f"({len(partial)} finished by an earlier run, skipped)" in out
    assert not tables.failures_path(tmp_path / "b" / "tiles.parquet").exists()
    check_accounting(tiling.read_tiles_table(tmp_path / "b" / "tiles.parquet"), CROP)


def test_kill_9_mid_run_then_resume(crop_run, tmp_path):
    run, _ = crop_run
    work = tmp_path / "w"
    p = cen_process(CROP, work)
    strips = work / raster.STATE_DIR / "strips"
    deadline = time.monotonic() + 120
    while not (strips.exists() and len(list(strips.glob("*.parquet"))) >= 2) and time.monotonic() < deadline:
        if p.poll() is not None:
            break
        time.sleep(0.005)
    assert p.poll() is None, "the run ended before it could be killed"
    os.kill(p.pid, signal.SIGKILL)
    p.wait(timeout=30)
    assert p.returncode == -signal.SIGKILL and not (work / "tiles.parquet").exists()
    resumed = raster.tile_raster(CROP, work, progress=False)
    # temporaries the killed run could not remove are gone; no half-written file under a final name
    assert not list(strips.glob(".*")) and not list((work / "tiles").glob(".*"))
    assert 0 < resumed.n_resumed < len(run.tiles)
    cols = ["tile_id", "labelled_fraction", "eligible", "exclude_reason", "transform"]
    pd.testing.assert_frame_equal(pd.DataFrame(resumed.tiles[cols]), pd.DataFrame(run.tiles[cols]))
    check_accounting(resumed.tiles, CROP)  # every label file whole and equal to the source


# --- the full 36,000² tile of ../shared/data ----------------------------------------------------

def labelled_pixels(path: Path) -> int:
    with rasterio.open(path) as src:
        return sum(int(np.count_nonzero(src.read(1, window=w))) for _, w in src.block_windows(1))


@pytest.mark.slow
def test_full_tile_from_disk_and_over_http(shared_data, http_server, tmp_path):
    full = shared_data / "esa-worldcover" / FULL_NAME
    local = raster.tile_raster(full, tmp_path / "disk", progress=False)
    assert len(local.tiles) == math.ceil(36000 / 256) ** 2 == 19881  # no partial strip dropped
    assert int(round((local.tiles["labelled_fraction"] * 65536).sum())) == labelled_pixels(full)
    n, e, x, reasons = parse_summary(local.summary)
    assert e + x == n == 19881 and reasons == {"mostly_nodata": x}
    # every eligible value re-derived through the row's transform, on a sample of rows
    sample = pd.concat([local.tiles[local.tiles["eligible"]].head(20), local.tiles[~local.tiles["eligible"]].head(20),
                        local.tiles.tail(20)])
    with rasterio.open(full) as src:
        for _, row in sample.iterrows():
            codes = rederive(src, row, Window(0, 0, 36000, 36000))
            assert row["labelled_fraction"] == np.count_nonzero(codes) / codes.size
            assert row["eligible"] == (row["labelled_fraction"] >= 0.9)
    os.symlink(full, http_server.root / FULL_NAME)
    remote = raster.tile_raster(f"{http_server.url}/{FULL_NAME}", tmp_path / "http", progress=False)
    assert remote.tiles["labelled_fraction"].tolist() == local.tiles["labelled_fraction"].tolist()
    assert remote.failures.empty
    before = len(http_server.requests)
    again = raster.tile_raster(f"{http_server.url}/{FULL_NAME}", tmp_path / "http", progress=False)
    assert again.n_resumed == 19881 and len(http_server.requests) - before < 10  # header only
