"""Notebook 05 (global coverage and caption statistics) in the smoke profile."""

from __future__ import annotations


def test_coverage_and_caption_statistics_recorded(smoke_report):
    rec = smoke_report["05_global_coverage"]
    tiles = smoke_report["01_data_sourcing"]["n_tiles"]
    # every demo tile is on the map; one clickable marker per caption, or per tile without one
    assert rec["n_tiles"] == tiles and rec["n_samples"] >= tiles
    assert rec["map_mode"] == "markers" and rec["map_markers"] == rec["n_samples"]
    assert rec["map_layers"] >= 1 and rec["map_bytes"] > 100_000  # Leaflet is inlined
    # the demo's two places: the Virginia Sentinel-2 scene lies in the USA; the WorldCover crop
    # near lon 6.7, lat 0.4 (off the 110m coastline, São Tomé) finds no 110m country within 1°
    assert rec["n_countries"] >= 1 and rec["n_continents"] >= 1
    assert 0 < rec["n_captions"] <= rec["n_samples"]
    assert rec["words_min"] <= rec["words_median"] <= rec["words_max"]
    assert rec["words_min"] <= rec["words_mean"] <= rec["words_max"] and rec["words_min"] > 10
    assert rec["sentences_mean"] >= 1 and rec["vocabulary_size"] > 20
    assert "captions" in rec["summary"]
