"""Notebook 00 (overview) in the smoke profile."""

from __future__ import annotations

from cen import paths


def test_overview_records_classes_and_demo_data(smoke_report):
    rec = smoke_report["00_overview"]
    assert rec["n_classes"] == 11
    worldcover = sorted(paths.DATA_DIR.glob("worldcover/*.tif"))
    sentinel2 = sorted(paths.DATA_DIR.glob("sentinel2/**/*.tif"))
    assert rec["n_worldcover_files"] == len(worldcover) == 3
    assert rec["n_sentinel2_band_files"] == len(sentinel2) == 2 * 13  # two windows, 13 bands each
    assert rec["map_markers"] == len(worldcover) + len(sentinel2)  # one marker per file, offline map
    # São Tomé (WorldCover 2020 and 2021), Chukotka (WorldCover N66E177), Virginia (Sentinel-2)
    assert rec["demo_countries"] == ["Russia", "São Tomé and Príncipe", "United States of America"]
