"""Notebook 02 (tiling and statistics) through the smoke report's recorded numbers."""

from __future__ import annotations

import pytest

NB = "02_tiling_and_statistics"


def test_nb02_statistics_of_the_demo_tiles(smoke_report):
    rec = smoke_report[NB]
    assert rec["n_tiles"] == rec["n_label_tiles"] + rec["n_image_tiles"]
    assert rec["n_label_tiles"] > 0 and rec["n_image_tiles"] > 0
    assert rec["n_stats_rows"] == rec["n_label_tiles"]  # one stats row per label tile
    # the demo's São Tomé tiles are chosen for their many classes
    assert rec["n_classes_present"] >= 5
    assert 2 <= rec["mean_classes_per_tile"] <= 11
    assert rec["pixel_share_sum"] == pytest.approx(1.0)
    assert rec["dominant_class"] in {"tree", "grass", "water", "crop", "developed area"}
    assert rec["compat"] is False and rec["stats_version"] == "2"
    assert 0 <= rec["n_context_diff_modes"] <= rec["n_stats_rows"]
