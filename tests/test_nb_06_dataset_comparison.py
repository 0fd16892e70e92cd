"""Notebook 06 (dataset comparison) in the smoke profile."""

from __future__ import annotations

import csv

from cen import catalog


def test_comparison_recorded(smoke_report):
    rec = smoke_report["06_dataset_comparison"]
    with open(catalog.DATASETS_CSV, newline="") as f:
        published = list(csv.DictReader(f))
    assert rec["n_published"] == len(published) and rec["n_datasets"] == len(published) + 1
    assert rec["n_table_a1"] == sum(r["in_table_a1"] == "true" for r in published) == 10
    assert rec["chatearthnet_pairs"] == 163_488 + 10_000
    # the computed row matches what notebook 05 counted from the same tables
    coverage = smoke_report["05_global_coverage"]
    assert rec["our_pairs"] == coverage["n_captions"]
    assert abs(rec["our_mean_words"] - coverage["words_mean"]) < 0.06
    assert rec["our_granularity"] == ("Fine-grained" if coverage["words_mean"] >= 40 else "Coarse-grained")
    # the pairs are the captioned WorldCover tiles, all on São Tomé (the Virginia image tiles have no
    # labels, so no caption): one country, one continent, regional
    assert (rec["our_countries"], rec["our_continents"], rec["our_coverage"]) == (1, 1, "Regional")
    assert rec["known_licences"] == sum(bool(r["licence"]) for r in published)  # unknown licences stay unknown
    assert "datasets compared" in rec["summary"]
