"""Notebook 07 (benchmark) in the smoke profile: its recorded numbers, against values derived here.

The smoke demo's references are recomputed independently (demo tiles -> statistics -> template
captions of both paradigms), and the template oracle's scores recomputed with cen.metrics on them.
"""

from __future__ import annotations

import pytest

from cen.generate.template import TEMPLATE_CAPTIONER_VERSION, caption_from_counts

NB = "07_benchmark"


@pytest.fixture(scope="module")
def rec(smoke_report):
    return smoke_report[NB]


@pytest.fixture(scope="module")
def expected(tmp_path_factory):
    """Train/test split, references and template-oracle candidates of the smoke demo, rebuilt."""
    from cen.generate.runner import GenerateConfig, build_workdir_requests, generate
    from cen.sources.demo import build_demo_tiles
    from cen.stats import compute_stats, counts_from_table
    from cen.tiling import assign_split

    wd = tmp_path_factory.mktemp("nb07_expected")
    tiles = build_demo_tiles(wd, smoke=True)
    stats = compute_stats(wd / "tiles.parquet", wd / "stats.parquet", progress=False)
    caps = generate(build_workdir_requests(wd, ["gpt35", "gpt4v"], limit=8),
                    GenerateConfig(backend="template", progress=False)).captions
    refs: dict[str, list[str]] = {}
    for t, x in zip(caps["tile_id"], caps["text"]):
        refs.setdefault(str(t), []).append(x)
    ids = sorted(refs)
    split = {str(t): ("test" if s == "test" else "train") for t, s in zip(tiles["tile_id"], tiles["split"])}
    if {"train", "test"} <= {split[t] for t in ids}:
        test = [t for t in ids if split[t] == "test"]
    else:
        test = [t for t in ids if assign_split(t, (("test", 0.5), ("train", 0.5))) == "test"]
        if not test or len(test) == len(ids):
            test = ids[: max(1, len(ids) // 2)]
    counts = dict(zip(stats["tile_id"].astype(str), counts_from_table(stats)))
    return {"refs": refs, "test": test, "train": [t for t in ids if t not in test],
            "template": {t: caption_from_counts(counts[t], seed=1) for t in test}}


def test_split_and_references_are_the_smoke_demo(rec, expected):
    assert rec["n_test_images"] == len(expected["test"]) and rec["n_train_images"] == len(expected["train"])
    assert rec["n_test_references"] == 2 * len(expected["test"])  # one gpt35 and one gpt4v caption per tile
    assert rec["reference_source"] == f"cen template captioner ({TEMPLATE_CAPTIONER_VERSION})"


def test_systems_run_and_skipped(rec):
    assert rec["systems"] == ["constant", "nearest neighbour (land cover, oracle)", "template (oracle)"]
    assert set(rec["skipped"]) == {"nn_image", "vlm"}
    assert "no image" in rec["skipped"]["nn_image"] and "no vlm_model" in rec["skipped"]["vlm"]
    # SPICE cannot run offline: reported with the reason, never a number
    assert "cen metrics setup-spice" in rec["not_computed"]["SPICE"]
    assert all("SPICE" not in s for s in rec["scores"].values())


def test_template_oracle_scores_recomputed(rec, expected):
    from cen import metrics

    refs = {t: expected["refs"][t] for t in expected["test"]}
    ev = metrics.evaluate(refs, expected["template"], ["Bleu", "ROUGE_L", "CIDEr"])
    got = rec["scores"]["template (oracle)"]
    for key, value in ev.scores.items():
        assert got[key] == round(float(value), 6), key
    # the template captioner reads the labels its captions describe: every claim is true
    assert rec["label_consistency"]["template (oracle)"] == 1.0


def test_measured_and_reported_rows_in_separate_tables(rec):
    assert rec["n_measured_rows"] == 3 and rec["n_reported_rows"] == 6
    assert rec["reported_test_images"] == 3000
    assert {"test set", "references", "label consistency", "oracle"} <= set(rec["measured_table_columns"])
    assert "template captioner" in rec["reference_note"] and "label-consistency" in rec["reference_note"]


def test_showcase_is_not_the_constant_caption(rec):
    rank = "CIDEr" if rec["n_test_images"] > 1 else "ROUGE_L"
    others = {k: v for k, v in rec["scores"].items() if k != "constant"}
    assert rec["showcase"] == max(others, key=lambda k: others[k][rank])


def test_intervals_hold_their_scores(rec):
    for system, rows in rec["intervals"].items():
        assert {r["metric"] for r in rows} == set(rec["scores"][system])
        for row in rows:
            assert row["low"] - 1e-9 <= row["score"] <= row["high"] + 1e-9, (system, row)
