"""Notebook 06 (dataset comparison) in the smoke profile."""

from __future__ import annotations


def test_comparison_recorded(smoke_report):
    rec = smoke_report["06_dataset_comparison"]
    assert rec["n_table_a1"] == 10 and rec["chatearthnet_pairs"] == 173_488
    assert rec["n_datasets"] == rec["n_published"] + 1  # plus the row computed for this run
    # the computed row matches what notebook 05 counted from the same tables
    coverage = smoke_report["05_global_coverage"]
    assert rec["our_pairs"] == coverage["n_captions"]
    assert abs(rec["our_mean_words"] - coverage["words_mean"]) < 0.06
    assert rec["our_granularity"] == ("Fine-grained" if coverage["words_mean"] >= 40 else "Coarse-grained")
    assert rec["our_coverage"] in ("Regional", "Global")
    assert 0 < rec["known_licences"] < rec["n_datasets"]  # unknown licences stay unknown
    assert "datasets compared" in rec["summary"]
