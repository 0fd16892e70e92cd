"""Notebook 01 (data sourcing): the smoke demo's exact numbers, and the ``raster`` source run on
the committed WorldCover crop with the numbers derived from the crop directly."""

from __future__ import annotations

import math

import numpy as np
import rasterio

from cen import paths
from cen.sources import demo

CROP = paths.DATA_DIR / "worldcover" / "ESA_WorldCover_10m_2021_v200_N00E006_SaoTome_Map.tif"


def test_demo_tiles_recorded(smoke_report):
    rec = smoke_report["01_data_sourcing"]
    assert rec["source"] == "demo"
    n_labels = demo.N_LABEL_TILES[True]  # label tiles kept in smoke mode
    n_images = demo.N_S2_WINDOWS[True] * (512 // 256) ** 2  # each 512-px window -> four 256-px patches
    assert (n_labels, n_images) == (3, 4)
    assert rec["n_label_tiles"] == n_labels and rec["n_image_tiles"] == n_images
    assert rec["n_tiles"] == n_labels + n_images
    # eligibility: the demo's label tiles are chosen without nodata, the image-only tiles have no label
    assert rec["n_eligible"] == n_labels and rec["n_excluded"] == n_images
    assert rec["excluded_by_reason"] == {"no_label": n_images}
    assert rec["eligibility"] == "7 tiles: 3 eligible, 4 excluded (no_label: 4)"
    assert rec["labelled_pixels"] == n_labels * 256 * 256
    assert rec["max_classes_in_a_tile"] == 9  # the nine-class window near lon 6.675, lat 0.399
    assert rec["n_flagged"] == 0 and rec["n_skipped"] == 0 and rec["n_failures"] == 0
    assert rec["n_plan_points"] == 6 and rec["n_plan_continents"] == 6
    assert rec["summary"].startswith("demo: 7 tiles (3 with WorldCover labels, 4 with Sentinel-2 images; 3 eligible)")


def test_raster_source_accounts_for_the_window(tmp_path):
    import papermill

    from cen.report import read_records

    bbox = [6.5, 0.1, 6.6, 0.2]
    out = tmp_path / "01.ipynb"
    papermill.execute_notebook(
        str(paths.NOTEBOOKS_DIR / "01_data_sourcing.ipynb"), str(out), cwd=str(paths.NOTEBOOKS_DIR),
        progress_bar=False, parameters=dict(workdir=str(tmp_path / "work"), smoke=True, source="raster",
                                            raster=str(CROP), bbox=bbox, min_labelled=0.9),
    )
    rec = read_records(out)
    # what the crop says directly: the pixels whose centres fall in the box, tile by tile
    with rasterio.open(CROP) as src:
        win = rasterio.windows.from_bounds(*bbox, transform=src.transform).round_offsets().round_lengths()
        codes = src.read(1, window=win)
    side = 256
    n_rows, n_cols = math.ceil(codes.shape[0] / side), math.ceil(codes.shape[1] / side)
    padded = np.zeros((n_rows * side, n_cols * side), codes.dtype)
    padded[: codes.shape[0], : codes.shape[1]] = codes
    fractions = (padded.reshape(n_rows, side, n_cols, side) != 0).mean(axis=(1, 3)).ravel()
    n_eligible = int((fractions >= 0.9).sum())
    assert rec["source"] == "raster" and rec["n_tiles"] == n_rows * n_cols == 25
    assert rec["labelled_pixels"] == int(np.count_nonzero(codes))
    assert rec["n_eligible"] == n_eligible == rec["n_label_tiles"]
    assert rec["excluded_by_reason"] == ({"mostly_nodata": 25 - n_eligible} if n_eligible < 25 else {})
    assert rec["eligibility"].startswith(f"25 tiles: {n_eligible} eligible, {25 - n_eligible} excluded")
    assert rec["n_image_tiles"] == 0 and rec["n_failures"] == 0
