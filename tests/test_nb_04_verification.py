"""Notebook 04 (verification) under the smoke profile: the numbers it records."""

from __future__ import annotations

import pytest

from cen.verify import CHECK_CODES

NB = "04_verification"


@pytest.fixture(scope="module")
def rec(smoke_report):
    if NB not in smoke_report:
        pytest.fail(f"{NB} did not run in the smoke report")
    return smoke_report[NB]


def test_every_caption_checked_and_every_check_reported(rec):
    assert rec["n_captions"] > 0
    assert set(rec["flagged_per_check"]) == set(CHECK_CODES)
    assert all(0 <= v <= rec["n_captions"] for v in rec["flagged_per_check"].values())
    assert 0 <= rec["n_flagged"] <= rec["n_captions"]
    assert 0 <= rec["n_review_queue"] <= rec["n_flagged"]
    assert rec["captions_per_second"] > 0


def test_generated_captions_are_label_consistent(rec):
    # The smoke run captions with the statistics-driven template backend: every claim is true.
    assert 0.9 <= rec["mean_consistency"] <= 1.0
    assert 0.0 <= rec["min_consistency"] <= rec["mean_consistency"]
    assert rec["mean_precision"] >= 0.9


def test_planted_faults_are_caught(rec):
    assert rec["injected_planted"] >= 6  # at least one of each GPT-3.5 fault kind
    assert rec["injected_detected"] == rec["injected_planted"]
    assert rec["injected_detection_rate"] == 1.0
    assert rec["injected_auto_fixed"] >= 1  # the cross-image fault is corrected automatically
    assert rec["injected_mean_consistency"] < rec["mean_consistency"] or rec["mean_consistency"] < 1.0
