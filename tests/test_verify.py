"""Caption verification: crafted captions per check, the release's own correction, decisions, score."""

from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd
import pytest

from cen import stats, verify
from cen.generate import template
from cen.verify import lexicon as lx
from cen.verify.checks import check_caption, check_captions, text_checks
from cen.verify.fixes import apply_safe_fixes
from cen.verify.review import DecisionLog, resolve
from cen.verify.score import consistency_score, score_table

# --- a hand-built tile ------------------------------------------------------------------------
# 256 x 256 tree background; developed block top left; water block bottom right; a thin grass
# strip in the bottom left. No crop, shrub, bare, snow, wetland, mangroves or moss.


def _counts(m: np.ndarray) -> np.ndarray:
    """Region counts by plain slicing (independent of cen.stats)."""
    h, w = m.shape
    regions = [m, m[: h // 2, : w // 2], m[: h // 2, w // 2:], m[h // 2:, : w // 2], m[h // 2:, w // 2:],
               m[h // 4: 3 * h // 4, w // 4: 3 * w // 4]]
    return np.stack([np.bincount(r.ravel(), minlength=12) for r in regions]).astype(np.int64)


def _tile() -> np.ndarray:
    m = np.full((256, 256), 3, np.uint8)
    m[0:100, 0:100] = 2
    m[160:256, 160:256] = 1
    m[200:210, 0:60] = 5
    return m


COUNTS = _counts(_tile())
# shares: developed 15 %, water 14 %, grass 1 %, tree 70 %; top left 61 % developed / 39 % tree;
# top right all tree; bottom right 56 % water; middle 8 % developed, 6 % water.


def test_hand_built_tile_shares():
    sh = verify.region_shares(COUNTS)
    assert sh[lx.TOP_LEFT, 2] == pytest.approx(10000 / 16384)
    assert sh[lx.TOP_RIGHT, 3] == 1.0
    assert sh[lx.BOTTOM_RIGHT, 1] == pytest.approx(9216 / 16384)
    assert sh[lx.WHOLE].sum() == pytest.approx(1.0)


def test_region_order_matches_stats():
    assert tuple(stats.REGIONS) == lx.REGIONS
    np.testing.assert_array_equal(stats.region_counts(_tile()), COUNTS)


# (caption, paradigm, code, expected?) -- true positives and false positives of every check.
CASES = [
    # cross-image references
    ("The fourth image shows dense trees across the tile.", "gpt4v", "cross_image", True),
    ("Similarly, trees cover most of the tile.", "gpt4v", "cross_image", True),
    ("Trees cover more ground here than in the other images.", "gpt4v", "cross_image", True),
    ("This image shows dense trees across the tile.", "gpt4v", "cross_image", False),
    ("At first glance, trees cover most of this image.", "gpt4v", "cross_image", False),
    ("Two patches of water lie in the bottom right; the first one is larger.", "gpt4v", "cross_image", False),
    ("Other patches of grass and the last patch of forest line the bottom left.", "gpt4v", "cross_image", False),
    ("Unlike the previous image, this one has a lake.", "gpt4v", "cross_image", True),
    # banned words and close variants
    ("Trees likely cover the top right.", "gpt35", "banned_word", True),
    ("Developed areas appear in the top left.", "gpt35", "banned_word", True),
    ("Trees apparently surround the water in the bottom right.", "gpt35", "banned_word", True),
    ("In this context, trees cover the top right.", "gpt35", "banned_word", True),
    ("In this context, trees cover the top right.", "gpt4v", "banned_word", False),  # 'context' is a 3.5-only ban
    ("The tree cover shows a gradual transition into water.", "gpt4v", "banned_word", True),
    ("Trees dominate, with a developed area in the top left.", "gpt35", "banned_word", False),
    # colour words (forbidden only by the GPT-4V prompt)
    ("The green areas in the bottom left are grass.", "gpt4v", "colour_word", True),
    ("The green areas in the bottom left are grass.", "gpt35", "colour_word", False),
    ("Greenery in the form of trees surrounds the water.", "gpt4v", "colour_word", False),
    # hallucinated classes (synonyms map to classes)
    ("Crop fields line the top right of the tile.", "gpt35", "hallucinated_class", True),
    ("A glacier fills the middle.", "gpt35", "hallucinated_class", True),
    ("Built-up land occupies the top left.", "gpt35", "hallucinated_class", False),
    ("A lake lies in the bottom right, surrounded by forest.", "gpt35", "hallucinated_class", False),
    ("There are no crops or snow in this image.", "gpt35", "hallucinated_class", False),
    # omissions: tree covers 70 % of the tile
    ("Developed areas occupy the top left and water the bottom right.", "gpt35", "omitted_class", True),
    ("Forest dominates, with a town in the top left and a lake in the bottom right.", "gpt35", "omitted_class", False),
    # region claims
    ("Water lies in the top left.", "gpt35", "wrong_region", True),
    ("The top right contains a patch of grass.", "gpt35", "wrong_region", True),
    ("There is no developed area in the top left.", "gpt35", "wrong_region", True),
    ("Water lies in the bottom right, while the top left is built up.", "gpt35", "wrong_region", False),
    ("There is no water in the top left.", "gpt35", "wrong_region", False),
    ("In the bottom left, trees surround a thin strip of grass.", "gpt35", "wrong_region", False),
    ("The lower half holds water and grass.", "gpt35", "wrong_region", False),
    ("The top left is built up, and the remaining quadrants are mostly forested.", "gpt35", "wrong_proportion", False),
    ("The top left is built up, and it is mostly forested.", "gpt35", "wrong_proportion", True),
    # proportion words
    ("The top left contains developed area (extra small amount) and tree (medium amount).", "gpt35",
     "wrong_proportion", True),
    ("The top left contains developed area (large amount) and tree (medium amount).", "gpt35",
     "wrong_proportion", False),
    ("The bottom left is dominated by grass.", "gpt35", "wrong_proportion", True),
    ("The top right is dominated by trees.", "gpt35", "wrong_proportion", False),
    ("Water covers 85% of the bottom right.", "gpt35", "wrong_proportion", True),
    ("Water covers about 56% of the bottom right.", "gpt35", "wrong_proportion", False),
    ("Trees cover the image entirely.", "gpt35", "wrong_proportion", True),
    ("The top right is covered entirely by trees.", "gpt35", "wrong_proportion", False),
    # text form
    ("", "gpt35", "empty", True),
    ("   ", "gpt4v", "empty", True),
    ("Trees dominate the image and the top left cont", "gpt35", "truncated", True),
    ("Trees dominate the image (about 70%).", "gpt35", "truncated", False),
    ("Trees cover most of the tile. Water lies in the bottom right. Trees cover most of the tile.", "gpt35",
     "duplicate_sentence", True),
]


@pytest.mark.parametrize("text,paradigm,code,expected", CASES)
def test_check_table_of_crafted_captions(text, paradigm, code, expected):
    flags = check_caption(text, COUNTS, paradigm)
    found = [f for f in flags if f.code == code]
    assert bool(found) == expected, (text, [(f.code, f.message) for f in flags])
    for f in found:  # every finding names its span inside the text
        assert 0 <= f.start <= f.end <= len(text) and f.message


def test_flag_spans_point_at_the_offending_words():
    text = "Developed areas appear in the top left, and crops fill the top right."
    flags = {f.code: f for f in check_caption(text, COUNTS, "gpt35")}
    assert text[flags["banned_word"].start:flags["banned_word"].end] == "appear"
    assert text[flags["hallucinated_class"].start:flags["hallucinated_class"].end] == "crops"
    assert "crop" in flags["hallucinated_class"].message and "0" in flags["hallucinated_class"].message


# --- the release's own example (paper-tables.md: manual verification) -------------------------

def test_release_example_corrected_as_the_authors_describe():
    before = ("Similarly, the fourth image is dominated by tree cover with a larger extent than in the other "
              "images. Water bodies occupy the bottom right corner.")
    after, fixes = apply_safe_fixes(before)
    assert after == "This image is dominated by tree cover. Water bodies occupy the bottom right corner."
    assert [f.rule for f in fixes] == ["drop_connector", "drop_comparison", "this_image"]
    assert fixes[1].before.strip() == "with a larger extent than in the other images"
    assert fixes[2].before == "the fourth image" and fixes[2].after == "this image"
    assert not [f for f in text_checks(after, "gpt4v") if f.code == "cross_image"]


@pytest.mark.parametrize("before,after", [
    ("The fourth image shows trees. Water lies in the bottom right.",
     "This image shows trees. Water lies in the bottom right."),
    ("Trees dominate. Likewise, the water in the bottom right forms a lake.",
     "Trees dominate. The water in the bottom right forms a lake."),
    ("In the second image, trees dominate, similar to the first image.", "In this image, trees dominate."),
    ("A lake lies in the bottom right.", "A lake lies in the bottom right."),
])
def test_safe_fixes(before, after):
    fixed, fixes = apply_safe_fixes(before)
    assert fixed == after
    assert bool(fixes) == (before != after)


# --- label-consistency score ------------------------------------------------------------------

def test_consistency_score_counts_hallucinations_omissions_and_regions():
    text = ("Forest covers most of the tile. Developed areas fill the top left, while crops line the top right. "
            "Water lies in the top left.")
    s = consistency_score(text, COUNTS)
    # mentioned tree, developed, crop, water; crop is absent
    assert s["precision"] == pytest.approx(3 / 4)
    assert s["n_hallucinated"] == 1
    # notable (>= 5 % and >= 20 px): tree, developed, water -> all mentioned
    assert s["recall"] == 1.0
    # spatial claims: developed@TL ok, crop@TR wrong, water@TL wrong
    assert s["spatial_accuracy"] == pytest.approx(1 / 3)
    assert s["n_spatial_claims"] == 3
    assert 0 < s["score"] < 1


def test_consistency_score_of_a_faithful_caption_is_one():
    text = ("Trees dominate the tile. The top left is mostly developed area, with trees around it. "
            "The top right is covered entirely by trees. The bottom left is forested, with a thin strip of grass. "
            "A lake fills much of the bottom right. Overall, a forested landscape with a small town and a lake.")
    s = consistency_score(text, COUNTS)
    assert s["precision"] == 1 and s["recall"] == 1 and s["spatial_accuracy"] == 1
    assert s["score"] == 1.0


def test_score_table_matches_single_scores_and_validates_shapes():
    texts = ["Water lies in the top left.", "Trees dominate the tile, with water in the bottom right.", ""]
    counts = np.stack([COUNTS] * 3)
    table = score_table(texts, counts)
    assert list(table.columns) == verify.SCORE_COLUMNS
    for i, t in enumerate(texts):
        single = consistency_score(t, COUNTS)
        for k, v in single.items():
            assert (np.isnan(v) and np.isnan(table.loc[i, k])) or table.loc[i, k] == pytest.approx(v)
    assert np.isnan(table.loc[2, "precision"])  # mentions nothing
    with pytest.raises(ValueError, match=r"3 captions need counts of shape \(3, 6, 12\)"):
        score_table(texts, counts[:2])
    with pytest.raises(ValueError, match="expected shape"):
        consistency_score("Trees.", COUNTS[:5])


def test_stats_contexts_read_as_captions_are_fully_consistent():
    """The GPT-3.5 context lines (the facts a captioner is given) pass every label check."""
    rng = np.random.default_rng(3)
    for _ in range(60):
        m = np.full((256, 256), rng.integers(1, 12), np.uint8)
        for _ in range(rng.integers(1, 6)):
            c, (y, x), (h, w) = rng.integers(1, 12), rng.integers(0, 256, 2), rng.integers(10, 150, 2)
            m[y:y + h, x:x + w] = c
        text = stats.gpt35_context(m).replace(";", ",").replace("\n", " ")
        counts = stats.region_counts(m)
        flags = [f for f in check_caption(text, counts, "gpt35") if f.code != "truncated"]
        assert not flags, (text, flags)
        s = consistency_score(text, counts)
        assert s["precision"] == 1 and s["spatial_accuracy"] == 1 and s["proportion_accuracy"] == 1


def test_proportion_check_judges_shares_of_the_whole_tile_unless_said_of_the_labelled_area():
    one_water = np.zeros((256, 256), np.uint8)  # the tile: a single water pixel, the rest unlabelled
    one_water[200, 30] = 1
    counts = _counts(one_water)
    overclaim = "Water is the dominant land cover type, covering an extra large amount of the image."
    flags = check_caption(overclaim, counts, "gpt35")
    assert [f.code for f in flags] == ["wrong_proportion"]  # "dominant" holds: water is the only class
    assert flags[0].message == ("'extra large amount' for water in the whole: measured 0% of all its pixels, "
                                "'extra large' means 80%–100%")
    honest = "Water is the only land cover type, covering an extra large amount of the labelled area."
    assert check_caption(honest, counts, "gpt35") == []
    half = np.zeros((256, 256), np.uint8)  # trees in the left half, the right half unlabelled
    half[:, :128] = 3
    counts = _counts(half)
    assert check_caption("Trees cover an extra large part of the top left.", counts, "gpt35") == []
    flags = check_caption("Trees cover an extra large part of the middle.", counts, "gpt35")
    assert [f.code for f in flags] == ["wrong_proportion"] and "measured 50% of all its pixels" in flags[0].message
    assert check_caption("Trees cover a large part of the middle.", counts, "gpt35") == []
    assert check_caption("In the middle, trees cover an extra large part of the labelled area.", counts, "gpt35") == []
    assert check_caption("Trees take up about half of the image.", counts, "gpt35") == []
    assert verify.region_shares(counts, of="tile")[lx.MIDDLE, 3] == 0.5
    assert verify.region_shares(counts)[lx.MIDDLE, 3] == 1.0  # of the labelled pixels


def test_contexts_of_partly_labelled_tiles_read_as_captions():
    """Default-mode contexts stay consistent on partly labelled tiles; the release's overclaim."""
    rng = np.random.default_rng(5)
    flagged_compat = 0
    for _ in range(40):
        m = np.zeros((256, 256), np.uint8)
        for _ in range(rng.integers(1, 5)):
            c, (y, x), (h, w) = rng.integers(1, 12), rng.integers(0, 256, 2), rng.integers(20, 150, 2)
            m[y:y + h, x:x + w] = c
        counts = stats.region_counts(m)
        text = stats.gpt35_context(m).replace(";", ",").replace("\n", " ")
        flags = [f for f in check_caption(text, counts, "gpt35") if f.code != "truncated"]
        assert not flags, (text, flags)
        compat = stats.gpt35_context(m, compat=True).replace(";", ",").replace("\n", " ")
        flagged_compat += any(f.code == "wrong_proportion" for f in check_caption(compat, counts, "gpt35"))
    assert flagged_compat >= 30  # the release's size words of labelled pixels overclaim on most such tiles


# --- injected faults --------------------------------------------------------------------------

CLEAN = [
    "Trees dominate this tile. The top left is mostly developed area, with trees around it. The top right is "
    "covered entirely by trees. The bottom left is forested, with a thin strip of grass. A lake fills much of "
    "the bottom right. Overall, a forested landscape with a small town and a lake.",
]


@pytest.mark.parametrize("paradigm", ["gpt35", "gpt4v"])
def test_injected_faults_are_detected(paradigm):
    captions = pd.DataFrame({"tile_id": ["t0"], "paradigm": [paradigm], "text": CLEAN})
    counts = COUNTS[None]
    assert not check_caption(CLEAN[0], COUNTS, paradigm)
    injected = verify.inject_faults(captions, counts, seed=1)
    expected_faults = set(verify.FAULTS) - ({"colour"} if paradigm == "gpt35" else set())
    assert set(injected["fault"]) == expected_faults
    detected = verify.detect_injected(injected, counts)
    missed = detected[~detected["detected"]]
    assert missed.empty, missed[["fault", "text", "codes"]].to_dict("records")
    rates = verify.detection_rates(detected)
    assert (rates["detection_rate"] == 1.0).all()


# --- tables: duplicates, length outliers, errors ----------------------------------------------

def _table(texts, tiles=None, paradigm="gpt35"):
    tiles = tiles or [f"t{i}" for i in range(len(texts))]
    return pd.DataFrame({"tile_id": tiles, "paradigm": [paradigm] * len(texts), "text": texts})


def test_duplicates_and_length_outliers_in_a_table():
    base = ["Trees dominate the tile, with a town in the top left and a lake in the bottom right, "
            f"and grass in the bottom left {'and trees ' * (i % 3)}near sample {i}." for i in range(24)]
    texts = base + [base[0], "Trees dominate the tile, " + "and trees surround the lake " * 30 + ".", base[1]]
    other = COUNTS.copy()
    other[:, 5] += 50  # tile 24: more grass, so the same text describes different statistics
    counts = np.stack([COUNTS] * 24 + [other, COUNTS, COUNTS])
    flags = check_captions(_table(texts), counts, progress=False)
    dup_rows = set(flags.loc[flags["code"] == "duplicate", "row"])
    assert dup_rows == {0, 24}  # row 26 repeats row 1, but for a tile of identical statistics: no flag
    assert "1 other tile(s) with different label statistics, e.g. t24" in flags.loc[flags["row"] == 0, "message"].iloc[0]
    assert set(flags.loc[flags["code"] == "length_outlier", "row"]) == {25}
    assert set(flags.columns) == set(verify.checks.FLAG_COLUMNS)
    # without statistics (release captions) every shared text across tiles is a duplicate
    no_stats = verify.check_texts(texts, ["gpt35"] * len(texts), [f"t{i}" for i in range(len(texts))], progress=False)
    assert set(no_stats.loc[no_stats["code"] == "duplicate", "row"]) == {0, 1, 24, 26}


def test_length_outliers_are_judged_against_tiles_of_comparable_complexity():
    simple = np.zeros((6, 12), np.int64)
    simple[:, 3] = [65536, 16384, 16384, 16384, 16384, 16384]  # trees only: complexity 5
    rich = _counts(_tile())  # parts: developed + tree, tree, tree + grass, tree + water, developed + tree + water
    partial = simple.copy()
    partial[[0, 2, 4], 0], partial[[0, 2, 4], 3] = 8000, [57536, 8384, 8384]  # the right half partly unlabelled
    assert verify.checks.label_complexity(np.stack([simple, rich, partial])).tolist() == [5, 10, 7]
    short = "Trees cover the whole tile, from the top left to the bottom right and the middle."  # 16 words
    rng = np.random.default_rng(0)
    long_texts = [" ".join(["Trees, developed area, water and grass share this tile"] + ["in detail"] * int(k))
                  + "." for k in rng.integers(30, 36, 70)]  # ~70 words each
    texts = [short] * 20 + long_texts
    counts = np.stack([simple] * 20 + [rich] * 70)
    flags = check_captions(_table(texts), counts, progress=False)
    # the short captions of simple tiles are not outliers: they are judged among their own kind
    assert "length_outlier" not in set(flags["code"])
    # judged against all captions of the paradigm, they would be
    pooled = verify.checks.table_checks(texts, ["gpt35"] * len(texts), [f"t{i}" for i in range(len(texts))])
    assert {i for i, f in pooled if f.code == "length_outlier"} == set(range(20))
    # a caption far longer than the other simple tiles' is still an outlier
    texts[3] = short + " Trees" * 200
    flags = check_captions(_table(texts), counts, progress=False)
    assert set(flags.loc[flags["code"] == "length_outlier", "row"]) == {3}


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="captions: missing column"):
        check_captions(pd.DataFrame({"tile_id": ["a"], "text": ["x."]}), COUNTS[None])
    with pytest.raises(ValueError, match="1 captions but 2 region-count rows"):
        check_captions(_table(["Trees."]), np.stack([COUNTS] * 2), progress=False)
    with pytest.raises(ValueError, match="unknown caption paradigm 'gpt5'"):
        check_caption("Trees.", COUNTS, "gpt5")
    with pytest.raises(ValueError, match="non-negative"):
        check_caption("Trees.", -COUNTS)


def test_throughput_is_enough_for_the_full_release():
    texts = [CLEAN[0]] * 1000
    t0 = time.perf_counter()
    check_captions(_table(texts, [f"t{i}" for i in range(1000)]), np.stack([COUNTS] * 1000), progress=False)
    per_caption = (time.perf_counter() - t0) / 1000
    # 173,488 captions in under ~15 minutes even on a loaded 2-core machine
    assert per_caption < 5e-3, per_caption


# --- decision log and the verified table ------------------------------------------------------

def test_decision_log_is_append_only_and_resolves(tmp_path):
    log = DecisionLog(tmp_path / "decisions.jsonl")
    log.accept("t1|gpt35", reviewer="ann")
    first = log.path.read_bytes()
    log.edit("t1|gpt35", "Trees dominate.", reviewer="bob", note="shorter")
    assert log.path.read_bytes().startswith(first)
    recs = log.records()
    assert [r["action"] for r in recs] == ["accept", "edit"]
    assert recs[1]["after"] == "Trees dominate." and recs[1]["time"].endswith("+00:00")
    assert resolve("Original.", recs) == ("Trees dominate.", "edited")
    assert resolve("Original.", recs + [{"action": "reject", "key": "t1|gpt35"}]) == (None, "rejected")
    with pytest.raises(ValueError, match="unknown review action 'approve'"):
        log.append("t1|gpt35", "approve", reviewer="ann")
    with pytest.raises(ValueError, match="needs the new caption text"):
        log.edit("t1|gpt35", " ", reviewer="ann")


def test_decision_log_names_a_bad_line_and_skips_a_cut_last_line(tmp_path):
    path = tmp_path / "decisions.jsonl"
    log = DecisionLog(path)
    log.accept("t1|gpt35", reviewer="ann")
    with open(path, "a") as fh:
        fh.write('{"key": "t2|gpt35", "act')  # a write cut short
    assert len(log.records()) == 1
    path.write_text(path.read_text() + "\n" + json.dumps({"key": "t3"}) + "\n")
    with pytest.raises(ValueError, match=r"decisions.jsonl:2: not a JSON decision record"):
        log.records()


def test_verify_captions_end_to_end(tmp_path):
    texts = [
        CLEAN[0],
        "Similarly, the fourth image is dominated by tree cover with a larger extent than in the other images.",
        "Crop fields line the top right, possibly irrigated.",
        "Water lies in the top left.",
    ]
    captions = _table(texts, ["a", "b", "c", "d"], paradigm="gpt4v")
    counts = np.stack([COUNTS] * 4)
    log_path = tmp_path / "decisions.jsonl"
    res = verify.verify_captions(captions, counts, log_path, progress=False)
    t = res.table.set_index("tile_id")
    assert t.loc["a", "verification_status"] == "clean" and t.loc["a", "accepted_text"] == texts[0]
    assert t.loc["b", "verification_status"] in ("auto_fixed", "needs_review")
    assert t.loc["b", "accepted_text"] == "This image is dominated by tree cover."
    assert "cross_image" in t.loc["b", "flags_original"] and "cross_image" not in t.loc["b", "flags"]
    hist = json.loads(t.loc["b", "history"])
    assert hist[0]["action"] == "auto_fix" and hist[0]["before"] == texts[1]
    assert hist[0]["rule"] == "drop_connector+drop_comparison+this_image"
    assert set(res.review_queue()["tile_id"]) >= {"c", "d"}
    counts_table = res.counts_per_check().set_index("check")
    assert counts_table.loc["cross_image", "captions_flagged"] == 1
    assert counts_table.loc["cross_image", "after_fixes_and_review"] == 0

    # human decisions: edit c, reject d; re-running adds no second auto-fix record
    log = DecisionLog(log_path)
    log.edit("c|gpt4v", "Trees cover the top right, and the whole tile is mostly forest.", reviewer="ann")
    log.reject("d|gpt4v", reviewer="ann", note="wrong quadrant")
    res2 = verify.verify_captions(captions, counts, log, progress=False)
    t2 = res2.table.set_index("tile_id")
    assert t2.loc["c", "verification_status"] == "edited" and t2.loc["c", "accepted_text"] == "Trees cover the top right, and the whole tile is mostly forest."
    assert t2.loc["c", "flags"] == []
    assert t2.loc["d", "verification_status"] == "rejected" and pd.isna(t2.loc["d", "accepted_text"])
    assert sum(r["action"] == "auto_fix" for r in log.records()) == 1
    assert len(json.loads(t2.loc["c", "history"])) == 1

    out = verify.write_verified(res2.table, tmp_path / "captions_verified.parquet")
    back = pd.read_parquet(out)
    assert list(back["verification_status"]) == list(res2.table["verification_status"])

    DecisionLog(log_path).accept("zz|gpt4v", reviewer="ann")
    with pytest.raises(ValueError, match="decisions.jsonl: decisions for 1 caption"):
        verify.verify_captions(captions, counts, log_path, progress=False)


def test_failed_generation_is_an_empty_caption_with_its_reason(tmp_path):
    captions = _table([CLEAN[0], None], ["a", "b"], paradigm="gpt4v").assign(
        status=["ok", "unsplittable"], error=[None, "answer could not be split into 4 captions"])
    res = verify.verify_captions(captions, np.stack([COUNTS] * 2), tmp_path / "d.jsonl", progress=False)
    msg = res.flags_original.loc[res.flags_original["row"] == 1, "message"].tolist()
    assert msg == ["no caption (generation status 'unsplittable'; answer could not be split into 4 captions)"]
    assert res.table.loc[1, "verification_status"] == "needs_review"


def test_highlight_html_marks_spans():
    text = "Developed areas appear in the top left & more."
    html = verify.highlight_html(text, check_caption(text, COUNTS, "gpt35"))
    assert "<mark" in html and "banned_word" in html and "&amp;" in html


# --- the template captioner and GPT-style prose -----------------------------------------------

def _random_maps(n: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    maps = []
    for _ in range(n):
        m = np.full((256, 256), rng.integers(1, 12), np.uint8)
        for _ in range(rng.integers(0, 7)):
            c, (y, x), (h, w) = rng.integers(0, 12), rng.integers(0, 256, 2), rng.integers(3, 150, 2)
            m[y:y + h, x:x + w] = c
        maps.append(m)
    return maps


def test_template_captions_score_full_consistency():
    maps = _random_maps(120, seed=7) + [_tile()]
    counts = np.stack([_counts(m) for m in maps])
    texts = [template.caption_from_counts(c, seed=i) for i, c in enumerate(counts)]
    table = _table(texts)
    flags = check_captions(table, counts, progress=False)
    assert flags.empty, flags[["row", "code", "message"]].head().to_dict("records")
    scores = score_table(texts, counts)
    for col in ("precision", "recall", "spatial_accuracy", "proportion_accuracy", "score"):
        defined = scores[col].dropna()
        assert (defined == 1.0).all(), (col, defined[defined < 1].head())
    assert scores["n_spatial_claims"].sum() > 100 and scores["n_proportion_claims"].sum() > 100


def test_injected_faults_in_template_captions_are_detected():
    maps = _random_maps(20, seed=11)
    counts = np.stack([_counts(m) for m in maps])
    texts = [template.caption_from_counts(c, seed=i) for i, c in enumerate(counts)]
    for paradigm in ("gpt35", "gpt4v"):
        injected = verify.inject_faults(_table(texts, paradigm=paradigm), counts, seed=2, per_fault=5)
        detected = verify.detect_injected(injected, counts)
        assert len(detected) >= 30
        assert detected["detected"].all(), detected.loc[~detected["detected"], ["fault", "codes"]]
        # planted content errors lower the label-consistency score
        hurt = detected[detected["fault"].isin(["hallucinated_lake", "wrong_quadrant", "wrong_proportion"])]
        before = score_table(texts, counts)["score"].to_numpy()[hurt["row"].to_numpy()]
        after = score_table(hurt["text"], counts[hurt["row"].to_numpy()])["score"].to_numpy()
        assert (after < before).all()


GPT_STYLE = [
    # GPT-3.5 style (bucket phrases, region walk, closing summary): all true of the hand-built tile
    "The image exhibits varied land cover types across different spatial locations. In the top left, there is "
    "a large amount of developed area, accompanied by a medium portion of trees. Moving to the top right, trees "
    "dominate with an extra large fraction. The bottom left features trees in an extra large portion and a small "
    "quantity of grass. In the bottom right, water takes up a large part, with trees covering a medium amount. "
    "The middle mainly contains trees, with extra small fractions of developed area and water. Overall, the image "
    "depicts a predominantly forested area with developed regions and water bodies.",
    # GPT-4V style (shapes, no buckets)
    "This image is characterized by a compact block of developed area in the top left corner, bordered by "
    "dense tree cover that extends across the top right and much of the bottom left, where a narrow strip of "
    "grass runs horizontally. A rectangular water body occupies the bottom right, its straight edges meeting "
    "the surrounding trees. The central part shows mostly trees, with small fractions of developed land and "
    "water at its edges. The overall theme presents a wooded landscape with a small settlement and a reservoir.",
]


@pytest.mark.parametrize("text", GPT_STYLE)
def test_faithful_gpt_style_prose_raises_no_flags(text):
    for paradigm in ("gpt35", "gpt4v"):
        flags = check_caption(text, COUNTS, paradigm)
        assert not flags, [(f.code, f.message) for f in flags]
    s = consistency_score(text, COUNTS)
    assert s["score"] == 1.0 and s["n_spatial_claims"] >= 4


def test_align_counts_by_tile_id():
    maps = _random_maps(4, seed=5)
    table = stats.stats_table(np.stack(maps), ["a", "b", "c", "d"])
    caps = _table(["x.", "y.", "z."], ["c", "a", "c"])
    got = verify.align_counts(caps, table)
    np.testing.assert_array_equal(got, np.stack([_counts(maps[2]), _counts(maps[0]), _counts(maps[2])]))
    with pytest.raises(ValueError, match=r"stats.parquet: no statistics for 1 captioned tile\(s\), e.g. 'q'"):
        verify.align_counts(_table(["x."], ["q"]), table)


def test_cli_run_decide_score(tmp_path, capsys):
    from cen.cli import main

    maps = _random_maps(3, seed=9)
    ids = ["a", "b", "c"]
    stats.write_stats(stats.stats_table(np.stack(maps), ids), tmp_path / "stats.parquet")
    texts = [template.caption_from_counts(_counts(m)) for m in maps]
    texts[1] = "Similarly, the second image " + texts[1][len("The image "):]
    texts[2] = texts[2] + " A glacier fills the middle."
    _table(texts, ids).to_parquet(tmp_path / "captions.parquet")
    wd = ["--workdir", str(tmp_path)]
    assert main(["verify", "run", *wd]) == 0
    out = pd.read_parquet(tmp_path / "captions_verified.parquet").set_index("tile_id")
    assert out.loc["a", "verification_status"] == "clean"
    assert out.loc["b", "n_auto_fixes"] > 0 and out.loc["b", "accepted_text"].startswith("This image ")
    assert out.loc["c", "verification_status"] == "needs_review" and "hallucinated_class" in out.loc["c", "flags"]
    assert main(["verify", "decide", "c|gpt35", "edit", "--text", texts[2][: -len(" A glacier fills the middle.")],
                 "--reviewer", "ann", *wd]) == 0
    assert main(["verify", "run", *wd]) == 0
    out = pd.read_parquet(tmp_path / "captions_verified.parquet").set_index("tile_id")
    assert out.loc["c", "verification_status"] == "edited" and len(out.loc["c", "flags"]) == 0
    assert main(["verify", "decide", "zz|gpt35", "reject", "--reviewer", "ann", *wd]) == 1
    assert "no caption with key 'zz|gpt35'" in capsys.readouterr().err
    assert main(["verify", "score", "--out", str(tmp_path / "s.csv"), *wd]) == 0
    assert len(pd.read_csv(tmp_path / "s.csv")) == 3


def test_cli_verify_run_says_what_is_wrong_in_one_line(tmp_path, capsys):
    from cen.cli import main

    maps = _random_maps(2, seed=3)
    good_stats = stats.stats_table(np.stack(maps), ["a", "b"])
    texts = [template.caption_from_counts(_counts(m)) for m in maps]
    wd = ["--workdir", str(tmp_path)]

    def run_error() -> str:
        assert main(["verify", "run", *wd]) == 1
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines[-1].splitlines()) == 1 and lines[-1].startswith("cen verify: ")
        return lines[-1]

    assert "captions.parquet: captions table not found" in run_error()
    _table(texts, ["a", "b"]).head(0).to_parquet(tmp_path / "captions.parquet")
    stats.write_stats(good_stats, tmp_path / "stats.parquet")
    assert "captions.parquet: the captions table has no rows, so there is nothing to verify" in run_error()
    _table(texts, ["a", "b"]).assign(paradigm=["gpt35", "gpt5"]).to_parquet(tmp_path / "captions.parquet")
    assert "captions.parquet: row 1 (tile 'b'): unknown caption paradigm 'gpt5'" in run_error()
    pd.DataFrame({"tile_id": ["a"]}).to_parquet(tmp_path / "captions.parquet")
    assert "captions.parquet: missing column 'paradigm'" in run_error()
    _table(texts, ["a", "b"]).to_parquet(tmp_path / "captions.parquet")
    (tmp_path / "stats.parquet").unlink()
    assert "stats.parquet: stats table not found" in run_error()
    stats.write_stats(good_stats.head(1), tmp_path / "stats.parquet")
    assert "stats.parquet: no statistics for 1 captioned tile(s), e.g. 'b'" in run_error()
    (tmp_path / "d.json").write_text('{"key": "a|gpt35"}')
    assert main(["verify", "run", *wd, "--decisions", str(tmp_path / "d.json"), "--reviewer", "ann"]) == 1
    assert "d.json: expected a JSON list" in capsys.readouterr().err
    assert main(["verify", "run", "--workdir", str(tmp_path / "nowhere")]) == 1
    assert "nowhere: no such workdir" in capsys.readouterr().err
    # with a tiles table in the workdir, the run starts with its eligibility line
    stats.write_stats(good_stats, tmp_path / "stats.parquet")
    pd.DataFrame({"tile_id": ["a", "b", "c"], "label_path": ["a.tif", "b.tif", "c.tif"], "eligible": [True, True, False],
                  "exclude_reason": [None, None, "mostly_nodata"]}).to_parquet(tmp_path / "tiles.parquet")
    assert main(["verify", "run", *wd]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "3 tiles: 2 eligible, 1 excluded (mostly_nodata: 1)"


def test_text_only_checks_for_release_captions():
    texts = ["Similarly, the fourth image perhaps shows a town, with trees around it and water to the south.",
             "The image shows trees across the tile, with a lake in the bottom right and a town in the top left.",
             "The image shows trees across the tile, with a lake in the bottom right and a town in the top left."]
    flags = verify.check_texts(texts, ["4v", "35", "35"], ["a.png", "b.png", "c.png"], progress=False)
    by_row = flags.groupby("row")["code"].agg(set)
    assert {"cross_image", "banned_word"} <= by_row[0]
    assert by_row[1] == by_row[2] == {"duplicate"}
    assert set(flags["paradigm"]) == {"gpt4v", "gpt35"}
    with pytest.raises(ValueError, match="differ in length"):
        verify.check_texts(texts, ["4v"], progress=False)


# --- tables, HTML and figures for notebook 04 ---------------------------------------------------

FIXABLE = "Similarly, the fourth image is dominated by tree cover with a larger extent than in the other images."


def _agg():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _verified(tmp_path):
    texts = [CLEAN[0], FIXABLE, "Crop fields line the top right, possibly irrigated.", "Water lies in the top left."]
    captions = _table(texts, ["a", "b", "c", "d"], paradigm="gpt4v")
    return verify.verify_captions(captions, np.stack([COUNTS] * 4), tmp_path / "decisions.jsonl", progress=False)


def _label_tiles(tmp_path, ids=("a", "b", "c", "d")):
    import rasterio
    from affine import Affine

    from cen.landcover import indices_to_codes

    path = tmp_path / "label.tif"
    profile = dict(driver="GTiff", width=256, height=256, count=1, dtype="uint8", crs="EPSG:32631",
                   transform=Affine(10, 0, 0, 0, -10, 2560))
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(indices_to_codes(_tile()), 1)
    return pd.DataFrame({"tile_id": list(ids), "label_path": [str(path)] * len(ids)})


def test_caption_keys_and_decision_log_frame(tmp_path):
    caps = pd.DataFrame({"tile_id": ["a", "b"], "paradigm": ["35", "gpt4v"], "text": ["x", "y"]})
    assert verify.caption_keys(caps) == ["a|gpt35", "b|gpt4v"]
    log = DecisionLog(tmp_path / "d.jsonl")
    assert list(log.to_frame().columns) == ["time", "key", "action", "reviewer", "rule", "before", "after",
                                            "note", "edits"] and log.to_frame().empty
    log.accept("a|gpt35", reviewer="ann", note="fine")
    log.reject("b|gpt4v", reviewer="bob")
    frame = log.to_frame(["key", "action", "reviewer", "note"])
    assert frame.to_dict("records") == [{"key": "a|gpt35", "action": "accept", "reviewer": "ann", "note": "fine"},
                                        {"key": "b|gpt4v", "action": "reject", "reviewer": "bob", "note": ""}]


def test_plot_counts_per_check_returns_figure(tmp_path):
    plt = _agg()
    from matplotlib.figure import Figure

    res = _verified(tmp_path)
    per_check = res.counts_per_check()
    fig = verify.plot_counts_per_check(per_check, title="flagged")
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    ax = fig.axes[0]
    assert ax.get_title() == "flagged" and [t.get_text() for t in ax.get_yticklabels()] == list(per_check["check"])
    widths = [p.get_width() for p in ax.patches]
    n = len(per_check)
    assert widths[:n] == list(per_check["captions_flagged"]) and widths[n:] == list(per_check["after_fixes_and_review"])
    plt.close(fig)


def test_plot_label_map_returns_figure_with_legend(tmp_path):
    plt = _agg()
    from matplotlib.figure import Figure

    rgb = verify.label_map_rgb(_label_tiles(tmp_path), "a")
    fig = verify.plot_label_map(rgb, title="a")
    assert isinstance(fig, Figure) and fig.axes[0].get_title() == "a"
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert legend == ["water", "developed area", "tree", "grass"]  # the classes of the hand-built tile
    plt.close(fig)
    fig2, ax = plt.subplots()
    assert verify.plot_label_map(rgb, ax=ax) is fig2
    plt.close(fig2)


def test_fixes_and_review_html(tmp_path):
    _agg()
    res = _verified(tmp_path)
    fixes = verify.fixes_html(res.table, n=3)
    assert fixes.count("<p>") == 1 and "<b>b|gpt4v</b>" in fixes
    assert "<i>before:</i> Similarly, the fourth image" in fixes and "<i>after:</i> This image is dominated" in fixes
    assert verify.fixes_html(res.table[res.table["n_auto_fixes"] == 0]) == ""
    assert "<b>[x] b</b>" in verify.fixes_html(res.table, label="[x] {tile_id}")

    queue = res.review_queue()
    html = verify.review_html(queue, res.flags, n=2)
    assert html.count("<h4>") == 2 and "<img" not in html and "<mark" in html
    assert html.index(f"<h4>{queue['key'].iloc[0]}</h4>") < html.index(f"<h4>{queue['key'].iloc[1]}</h4>")
    with_maps = verify.review_html(queue, res.flags, _label_tiles(tmp_path), n=2, label="[q] {tile_id}")
    assert with_maps.count('<img src="data:image/png;base64,') == 2 and "<h4>[q] " in with_maps
    with pytest.raises(ValueError, match="no tile 'zz'"):
        verify.review_html(queue.assign(tile_id="zz"), res.flags, _label_tiles(tmp_path), n=1)


def test_release_flag_tables_and_examples():
    texts = ["Similarly, the fourth image perhaps shows a town, with trees around it and water to the south.",
             "The image perhaps shows trees across the tile, with a lake in the bottom right and a town up top.",
             "The image shows trees across the tile, with a lake in the bottom right and a town in the top left."]
    versions = ["4v", "35", "35"]
    flags = verify.check_texts(texts, versions, ["a.png", "b.png", "c.png"], progress=False)
    table = verify.flags_by_paradigm(flags, versions)
    assert list(table.columns) == ["gpt35", "gpt4v", "gpt35 (%)", "gpt4v (%)"]
    assert table.loc["banned_word", "gpt35"] == 1 and table.loc["banned_word", "gpt4v"] == 1
    assert table.loc["banned_word", "gpt35 (%)"] == pytest.approx(50.0)
    assert table.loc["cross_image", "gpt4v (%)"] == pytest.approx(100.0) and table.loc["cross_image", "gpt35"] == 0
    counts = verify.flag_count_dict(table)
    assert counts["gpt35:banned_word"] == 1 and counts["gpt35:cross_image"] == 0
    assert set(counts) == {f"{p}:{c}" for c in table.index for p in ("gpt35", "gpt4v")}
    html = verify.flag_examples_html(texts, flags, "banned_word", n=3)
    assert html.count("<b>") == 2 and "<b>a.png</b>" in html and "<b>b.png</b>" in html and "c.png" not in html
    assert html.count("<mark") >= 3  # a.png: cross-image + hedge; b.png: hedge
    assert verify.flag_examples_html(texts, flags, "banned_word", n=1).count("<b>") == 1


def test_describe_scores_and_plot_consistency(tmp_path):
    plt = _agg()
    from matplotlib.figure import Figure

    table = _verified(tmp_path).table
    desc = verify.describe_scores(table)
    assert list(desc.index) == ["consistency", "label_precision", "label_recall", "spatial_accuracy"]
    assert list(desc.columns) == ["count", "mean", "min", "max"]
    assert desc.loc["consistency", "mean"] == pytest.approx(table["consistency"].mean())
    fig = verify.plot_consistency(table, title="scores")
    assert isinstance(fig, Figure) and fig.axes[0].get_title() == "scores"
    heights = [p.get_height() for p in fig.axes[0].patches]
    assert len(heights) == 20 and sum(heights) == table["consistency"].notna().sum()
    assert fig.axes[0].get_xlim()[0] <= 0 and fig.axes[0].get_xlim()[1] >= 1
    plt.close(fig)
    fig = verify.plot_consistency(pd.Series([0.0, 1.0, np.nan]))
    assert sum(p.get_height() for p in fig.axes[0].patches) == 2
    plt.close(fig)


def test_demo_review_script_and_score_by_fault():
    queue = pd.DataFrame({"key": ["k1", "k2", "k3", "k4"], "fault": ["truncated", "hedging", "wrong_quadrant",
                                                                       "hallucinated_lake"],
                          "original": ["o1", "o2", "o3", "o4"]})
    script = verify.demo_review_script(queue)
    assert script == [{"key": "k1", "action": "reject", "note": "truncated answer"},
                      {"key": "k3", "action": "edit", "text": "o3", "note": "restored the clean caption"},
                      {"key": "k4", "action": "edit", "text": "o4", "note": "restored the clean caption"}]
    scores = pd.DataFrame({"score": [1.0, 0.5, 0.7, np.nan]})
    out = verify.score_by_fault(scores, ["a", "b", "b", "a"], clean=0.9)
    assert out.to_dict("index") == {"a": {"mean consistency with the fault": 1.0, "clean": 0.9},
                                    "b": {"mean consistency with the fault": pytest.approx(0.6), "clean": 0.9}}
    assert list(verify.score_by_fault(scores, ["a"] * 4).columns) == ["mean consistency with the fault"]


# --- end to end on a real raster ----------------------------------------------------------------

def test_end_to_end_sao_tome_island_raster_to_verified_template_captions(tmp_path, capsys, monkeypatch):
    """cen tiles raster (v200 crop, São Tomé island) -> cen stats -> cen generate --backend template ->
    cen verify run: no failures, no review item; the cost estimate counts eligible tiles only.
    The workdir is given as a relative path, as a user types it."""
    from pathlib import Path

    from cen import paths
    from cen.cli import main
    from cen.tables import read_failures

    crop = paths.DATA_DIR / "worldcover" / "ESA_WorldCover_10m_2021_v200_N00E006_SaoTome_Map.tif"
    monkeypatch.chdir(tmp_path)
    wd = Path("island")
    assert main(["tiles", "raster", str(crop), str(wd), "--bbox", "6.45", "0.0", "6.80", "0.45",
                 "--product", "worldcover-v200"]) == 0
    tiles = pd.read_parquet(wd / "tiles.parquet")
    assert tiles["label_path"].dropna().str.startswith("tiles/").all()  # stored relative to the workdir
    eligible = int(tiles["eligible"].sum())
    assert len(tiles) == 300 and eligible == 285  # the rest is sea outside WorldCover's coverage
    line = "300 tiles: 285 eligible, 15 excluded (mostly_nodata: 15)"
    capsys.readouterr()

    assert main(["stats", str(wd / "tiles.parquet")]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == line and f"{eligible} tiles -> " in out
    table = stats.read_stats(wd / "stats.parquet")
    assert sorted(table["tile_id"]) == sorted(tiles.loc[tiles["eligible"], "tile_id"])
    assert read_failures(wd / "stats.parquet").empty

    assert main(["generate", "--workdir", str(wd), "--backend", "template"]) == 0
    captions = pd.read_parquet(wd / "captions.parquet")
    assert set(captions["tile_id"]) == set(table["tile_id"]) and (captions["status"] == "ok").all()
    capsys.readouterr()

    assert main(["verify", "run", "--workdir", str(wd)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == line
    verified = pd.read_parquet(wd / "captions_verified.parquet")
    assert len(verified) == len(captions) and set(verified["verification_status"]) == {"clean"}, \
        verified.loc[verified["verification_status"] != "clean", ["tile_id", "paradigm", "flags"]].head().to_dict("records")
    assert "0 captions await review" in out

    assert main(["generate", "--workdir", str(wd), "--backend", "openai", "--estimate"]) == 0
    out = capsys.readouterr().out
    rows = {ln.split()[0]: ln.split() for ln in out.splitlines() if ln.strip().startswith("gpt-")}
    assert rows["gpt-3.5-turbo-1106"][1] == str(eligible)  # one paid request per eligible tile, none for the sea
