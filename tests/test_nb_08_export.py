"""Notebook 08 (exports) under the smoke profile: the numbers it records."""

from __future__ import annotations

import pytest

NB = "08_export"
FORMATS = ["llava", "coco", "hf", "wds", "stac"]


@pytest.fixture(scope="module")
def rec(smoke_report):
    if NB not in smoke_report:
        pytest.fail(f"{NB} did not run in the smoke report")
    return smoke_report[NB]


def test_every_format_exported_and_loaded_back_in_full(rec):
    assert rec["formats"] == FORMATS
    for fmt in FORMATS:
        assert rec["exported"][fmt] > 0
        assert rec["loaded"][fmt] == rec["exported"][fmt], fmt
        assert rec["failed"][fmt] == 0
        assert rec["exported"][fmt] + rec["skipped"][fmt] == rec["n_captions_verified"]
    assert rec["loaded"]["croissant"] == rec["exported"]["hf"]
    # one STAC item per captioned tile: the smoke run captions each tile in two paradigms
    assert rec["loaded"]["stac_items"] * 2 == rec["exported"]["stac"]


def test_second_export_rewrites_nothing_and_manifests_check_out(rec):
    assert rec["rewritten_on_second_run"] == dict.fromkeys(FORMATS, 0)
    assert rec["manifest_problems"] == dict.fromkeys(FORMATS, 0)


def test_dataset_sample_shape(rec):
    assert rec["dataset_image_shape"] == [3, 256, 256]
