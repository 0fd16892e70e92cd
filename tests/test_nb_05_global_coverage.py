"""Notebook 05 (global coverage and caption statistics) in the smoke profile."""

from __future__ import annotations

import pandas as pd


def test_coverage_and_caption_statistics_recorded(smoke_report):
    rec = smoke_report["05_global_coverage"]
    tiles = smoke_report["01_data_sourcing"]["n_tiles"]
    # every demo tile is on the map; one clickable marker per caption, or per tile without one
    assert rec["n_tiles"] == tiles
    captioned_tiles = smoke_report["03_caption_generation"]["n_tiles"]
    paradigms = len(smoke_report["03_caption_generation"]["paradigms"])
    assert rec["n_captions"] == smoke_report["03_caption_generation"]["n_ok"] == captioned_tiles * paradigms
    assert rec["n_samples"] == rec["n_captions"] + (tiles - captioned_tiles)
    assert rec["map_mode"] == "markers" and rec["map_markers"] == rec["n_samples"]
    assert rec["map_bytes"] > 100_000  # Leaflet is inlined
    assert rec["words_min"] <= rec["words_median"] <= rec["words_max"]
    assert "captions" in rec["summary"]


def test_demo_places_are_sao_tome_and_virginia(smoke_report):
    """The demo's two places, derived independently: the WorldCover crops are São Tomé island
    (Africa), the Sentinel-2 scene the Eastern Shore of Virginia (USA). No sample is "(none)"."""
    rec = smoke_report["05_global_coverage"]
    assert rec["n_countries"] == 2 and rec["n_continents"] == 2
    assert rec["n_unplaced"] == 0
    countries = pd.DataFrame(rec["countries"])
    by_country = dict(zip(countries["country"], countries["total"]))
    assert set(by_country) == {"São Tomé and Príncipe", "United States of America"}
    assert set(countries["continent"]) == {"Africa", "North America"}
    # every label tile is a WorldCover crop over São Tomé; every image tile is in Virginia
    label_tiles = smoke_report["01_data_sourcing"]["n_label_tiles"]
    image_tiles = smoke_report["01_data_sourcing"]["n_image_tiles"]
    assert by_country["United States of America"] == image_tiles
    assert by_country["São Tomé and Príncipe"] == rec["n_samples"] - image_tiles
    assert rec["n_tiles"] == label_tiles + image_tiles
