"""Notebook 04 (verification) under the smoke profile: the numbers it records.

The smoke demo captions its label tiles with the template backend, whose every claim is true, so
the generated captions raise no flag; the hand-written fault set's expected numbers are counted
from the data file here, independently of the notebook.
"""

from __future__ import annotations

import json

import pytest

from cen.verify import CHECK_CODES, FAULT_SET

NB = "04_verification"


@pytest.fixture(scope="module")
def rec(smoke_report):
    if NB not in smoke_report:
        pytest.fail(f"{NB} did not run in the smoke report")
    return smoke_report[NB]


def test_every_generated_caption_checked_and_none_flagged(rec, smoke_report):
    assert rec["n_captions"] == smoke_report["03_caption_generation"]["n_captions"]
    assert rec["flagged_per_check"] == {code: 0 for code in CHECK_CODES}
    assert rec["n_flagged"] == 0 and rec["n_review_queue"] == 0 and rec["n_auto_fixed"] == 0
    assert rec["n_rejected"] == 0


def test_generated_captions_are_fully_label_consistent(rec):
    assert rec["mean_consistency"] == 1.0 and rec["min_consistency"] == 1.0
    assert rec["mean_precision"] == 1.0 and rec["mean_recall"] == 1.0


def test_handwritten_fault_set_recall_and_precision(rec):
    cases = [json.loads(line) for line in FAULT_SET.read_text().splitlines() if line.strip()]
    expected = sum(len(c["expected_flags"]) for c in cases)
    hw = rec["handwritten"]
    assert hw["n_captions"] == len(cases) == 26
    assert hw["n_correct"] == sum(1 for c in cases if not c["expected_flags"]) == 8
    assert hw["expected_flags"] == expected == 21
    assert hw["detected"] == expected and hw["false_flags"] == 0
    assert hw["recall"] == 1.0 and hw["precision"] == 1.0
    assert {r["check"]: r["detected"] for r in rec["handwritten_per_check"]}["wrong_region"] == 4


def test_planted_faults_self_test(rec):
    # two captions per fault in smoke mode, seven faults (colour words on GPT-4V captions only)
    assert rec["injected_planted"] == 14 and rec["injected_detected"] == 14
    assert rec["injected_detection_rate"] == 1.0
    assert rec["injected_auto_fixed"] == 2  # the two cross-image faults, corrected automatically
    # after the scripted review: the faults it does not decide stay, nothing else (no duplicates
    # between copies of one caption restored to the same clean text)
    assert rec["injected_after_review"] == {"banned_word": 2, "colour_word": 2, "wrong_proportion": 2}
    assert rec["injected_mean_consistency"] < 1.0
