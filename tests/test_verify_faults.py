"""The hand-written fault set (data/verify_faults) and the checks' recall and precision on it."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from cen import verify
from cen.verify import inject


@pytest.fixture(scope="module")
def records() -> list[dict]:
    return [json.loads(line) for line in verify.FAULT_SET.read_text().splitlines() if line.strip()]


def test_the_set_is_written_against_the_real_demo_statistics(records, tmp_path_factory):
    from cen.sources.demo import build_demo_tiles
    from cen.stats import compute_stats, counts_from_table

    wd = tmp_path_factory.mktemp("demo_for_faults")
    build_demo_tiles(wd)
    st = compute_stats(wd / "tiles.parquet", wd / "stats.parquet", progress=False)
    counts = dict(zip(st["tile_id"].astype(str), counts_from_table(st)))
    assert len(records) == 26 and len({r["tile_id"] for r in records}) == 8
    for r in records:
        assert np.array_equal(np.asarray(r["region_counts"]), counts[r["tile_id"]]), r["id"]


def test_recall_and_precision_on_the_handwritten_set(records):
    expected = sum(len(r["expected_flags"]) for r in records)
    assert expected == 21 and sum(1 for r in records if not r["expected_flags"]) == 8
    result = verify.evaluate_fault_set()
    summary = result.summary()
    assert summary["detected"] == 21 and summary["false_flags"] == 0
    assert result.recall == 1.0 and result.precision == 1.0
    assert summary["recall"] == 1.0 and summary["precision"] == 1.0
    assert (result.cases["missed"].str.len() == 0).all() and (result.cases["false_flags"].str.len() == 0).all()
    assert summary["correct_without_flags"] == 8 and summary["faulty_fully_detected"] == 18
    per = result.per_check.set_index("check")
    assert per.loc["wrong_region", "expected"] == 4 and per.loc["wrong_region", "detected"] == 4
    assert per.loc["banned_word", "recall"] == 1.0 and (per["false_flags"] == 0).all()


def test_two_places_in_one_clause_are_told_apart():
    # the construction the first measurement missed (mixed-1, 20 of 21 flags before the parser
    # gave each class the places named after it): water in the top left, where it has no pixel
    case = verify.read_fault_set().set_index("id").loc["mixed-1"]
    flags = verify.check_caption(case["text"], case["region_counts"], case["paradigm"])
    wrong = [f for f in flags if f.code == "wrong_region"]
    assert len(wrong) == 1 and case["text"][wrong[0].start:wrong[0].end] == "lake"
    parsed = verify.parse_caption("Trees cover the western half and grass the eastern half.")
    assert [(m.cls, m.regions) for m in parsed.mentions] == [(3, (1, 3)), (5, (2, 4))]


def test_a_checker_that_misses_or_over_flags_is_scored_down(records):
    cases = verify.read_fault_set()
    # a stricter omission threshold flags correct captions: precision must fall below 1
    strict = verify.evaluate_fault_set(cases, verify.CheckConfig(omission_share=0.001))
    assert strict.precision < 1.0 and strict.summary()["false_flags"] > 0
    # a lenient proportion tolerance misses overstated shares: recall must fall
    lenient = verify.evaluate_fault_set(cases, verify.CheckConfig(tolerance=1.0, dominance_margin=1.0))
    assert lenient.recall < 20 / 21


def test_malformed_fault_set_is_refused(tmp_path):
    bad = tmp_path / "faults.jsonl"
    bad.write_text('{"id": "x", "tile_id": "t", "paradigm": "gpt35", "fault": "f", "expected_flags": ["made_up"], '
                   '"text": "t", "region_counts": ' + json.dumps(np.zeros((6, 12), int).tolist()) + "}\n")
    with pytest.raises(ValueError, match=r"faults.jsonl:1: unknown expected flag 'made_up'"):
        verify.read_fault_set(bad)
    bad.write_text('{"id": "x"}\n')
    with pytest.raises(ValueError, match=r"faults.jsonl:1: not a fault-set record"):
        verify.read_fault_set(bad)
    with pytest.raises(FileNotFoundError, match="fault set not found"):
        verify.read_fault_set(tmp_path / "none.jsonl")


def test_duplicates_after_review_count_only_copies_of_different_captions(tmp_path):
    counts = np.zeros((2, 6, 12), np.int64)
    counts[:, :, 3] = 1000
    counts[:, :, 5] = 30  # a little grass: room for an overstated share
    text = "Trees cover nearly all of the tile. Overall, the scene is a wooded landscape."
    caps = pd.DataFrame({"tile_id": ["a", "b"], "paradigm": ["gpt35", "gpt35"], "text": [text, text + " "]})
    injected = inject.inject_faults(caps.iloc[:1], counts[:1], seed=0)
    injected = injected[injected["fault"].isin(["hallucinated_lake", "wrong_proportion"])]
    table = inject.as_captions(injected)
    log = verify.DecisionLog(tmp_path / "d.jsonl")
    result = verify.verify_captions(table, counts[injected["row"].to_numpy()], log, progress=False, source="t")
    verify.apply_decisions(log, [{"key": k, "action": "edit", "text": text} for k in result.table["key"]],
                           reviewer="test", known_keys=list(result.table["key"]))
    result = verify.verify_captions(table, counts[injected["row"].to_numpy()], log, progress=False, source="t")
    raw = result.counts_per_check().set_index("check")
    fixed = inject.counts_per_check_by_source(result).set_index("check")
    # both copies restored to one text, but of one tile's statistics: not duplicates (cen.verify.checks.table_checks)
    assert len(result.table) == 2 and raw.loc["duplicate", "after_fixes_and_review"] == 0
    assert fixed.loc["duplicate", "after_fixes_and_review"] == 0  # ... of the same source caption
