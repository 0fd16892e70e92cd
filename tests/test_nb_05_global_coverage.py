"""Notebook 05 (global coverage and caption statistics) in the smoke profile."""

from __future__ import annotations

import pandas as pd


def test_coverage_and_caption_statistics_recorded(smoke_report):
    rec = smoke_report["05_global_coverage"]
    sourcing = smoke_report["01_data_sourcing"]
    # eligible tiles only: the WorldCover tiles (with labels); the Sentinel-2 image tiles have no
    # label, are excluded by notebook 01 ("no_label") and counted, not mapped
    assert rec["n_tiles"] == sourcing["n_label_tiles"]
    assert rec["n_excluded"] == sourcing["n_tiles"] - sourcing["n_label_tiles"] == sourcing["n_image_tiles"]
    generation = smoke_report["03_caption_generation"]
    assert rec["n_captions"] == generation["n_ok"] == generation["n_tiles"] * len(generation["paradigms"])
    assert rec["n_samples"] == rec["n_captions"] + (rec["n_tiles"] - generation["n_tiles"])
    assert rec["map_mode"] == "markers" and rec["map_markers"] == rec["n_samples"]
    assert rec["map_bytes"] > 100_000  # Leaflet is inlined
    assert rec["words_min"] <= rec["words_median"] <= rec["words_max"]
    assert "captions" in rec["summary"]


def test_demo_samples_are_on_sao_tome(smoke_report):
    """The demo's labelled tiles are WorldCover crops of São Tomé island: every sample is placed in
    São Tomé and Príncipe, Africa (Natural Earth 1:10m); none is "(none)"."""
    rec = smoke_report["05_global_coverage"]
    assert (rec["n_countries"], rec["n_continents"], rec["n_unplaced"]) == (1, 1, 0)
    countries = pd.DataFrame(rec["countries"])
    assert countries.to_dict("records") == [
        {"country": "São Tomé and Príncipe", "continent": "Africa", "total": rec["n_samples"]}]
