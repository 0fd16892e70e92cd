"""Notebook 01 (data sourcing) in the smoke profile: the demo's tiles table and its numbers."""

from __future__ import annotations


def test_demo_tiles_recorded(smoke_report):
    rec = smoke_report["01_data_sourcing"]
    assert rec["source"] == "demo"
    # smoke: 3 WorldCover label tiles + one Sentinel-2 512-px window = 4 image patches
    assert rec["n_label_tiles"] == 3 and rec["n_image_tiles"] == 4
    assert rec["n_tiles"] == rec["n_label_tiles"] + rec["n_image_tiles"]
    assert rec["max_classes_in_a_tile"] == 9  # the nine-class window near lon 6.675, lat 0.399
    assert rec["n_flagged"] == 0 and rec["n_skipped"] == 0
    assert rec["n_plan_points"] == 6 and rec["n_plan_continents"] == 6
    assert "tiles" in rec["summary"]
