"""cen.stats: region counts, GPT-3.5 / GPT-4V contexts (compat and default), tables, dataset stats."""

from __future__ import annotations

import random
import re

import numpy as np
import pandas as pd
import pytest

from cen import stats
from cen.stats import counting
from cen.landcover import CLASSES, class_names, indices_to_codes
from release_reference import (
    counts_reference,
    gpt4v_class_reference,
    gpt4v_region_reference,
    gpt35_reference,
)

HEAD = "The {} mainly contains the following land cover types, in descending order of content: "
REG = ["top left", "top right", "bottom left", "bottom right", "middle"]


def quadrants(tl: int, tr: int, bl: int, br: int, size: int = 32) -> np.ndarray:
    h = size // 2
    m = np.zeros((size, size), np.uint8)
    m[:h, :h], m[:h, h:], m[h:, :h], m[h:, h:] = tl, tr, bl, br
    return m


def nouns(seed: int, k: int) -> list[str]:
    r = random.Random(seed)
    return [r.choice(stats.NOUNS) for _ in range(k)]


def sample_maps(n: int, seed: int = 0, size: tuple[int, int] = (256, 256)):
    """Random and structured maps: noise, blocks, sparse rectangles, skewed class mixes."""
    rng = np.random.default_rng(seed)
    h, w = size
    for i in range(n):
        kind = i % 4
        if kind == 0:
            yield rng.integers(0, 12, size, dtype=np.uint8)
        elif kind == 1:
            b = int(rng.choice([2, 4, 8, 16]))
            g = rng.integers(0, 12, (-(-h // b), -(-w // b)), dtype=np.uint8)
            yield np.repeat(np.repeat(g, b, 0), b, 1)[:h, :w].copy()
        elif kind == 2:
            m = np.zeros(size, np.uint8)
            for _ in range(rng.integers(0, 6)):
                r, c = rng.integers(0, h), rng.integers(0, w)
                m[r : r + rng.integers(1, 12), c : c + rng.integers(1, 12)] = rng.integers(0, 12)
            yield m
        else:
            p = rng.dirichlet(np.ones(12) * 0.3)
            yield rng.choice(12, size=size, p=p).astype(np.uint8)


# ---------------------------------------------------------------- counts


def test_region_counts_quadrants_exact():
    m = quadrants(1, 2, 3, 4)
    c = stats.region_counts(m)
    assert c.shape == (6, 12) and c.dtype == np.int64
    assert c[0].tolist() == [0, 256, 256, 256, 256, 0, 0, 0, 0, 0, 0, 0]
    for r, cls in enumerate([1, 2, 3, 4], start=1):
        expected = np.zeros(12, int)
        expected[cls] = 256
        assert c[r].tolist() == expected.tolist()
    assert c[5].tolist() == [0, 64, 64, 64, 64, 0, 0, 0, 0, 0, 0, 0]
    assert stats.REGIONS == ("whole", "top left", "top right", "bottom left", "bottom right", "middle")


@pytest.mark.parametrize("shape", [(2, 2), (3, 5), (7, 9), (37, 53), (256, 256)])
def test_region_counts_match_slices_any_shape(shape):
    maps = list(sample_maps(8, seed=shape[0], size=shape))
    batch = stats.region_counts(np.stack(maps))
    assert batch.shape == (8, 6, 12)
    for m, got in zip(maps, batch):
        assert np.array_equal(got, counts_reference(m))
        assert np.array_equal(stats.region_counts(m), got)
        assert got[1:5].sum() == m.size  # quadrants tile the map
    assert np.array_equal(batch[0, :, :].sum(axis=1), stats.region_sizes(*shape))


def test_region_counts_accepts_other_integer_dtypes():
    m = quadrants(5, 6, 7, 8)
    for dt in (np.int64, np.int8, np.uint16):
        assert np.array_equal(stats.region_counts(m.astype(dt)), stats.region_counts(m))


# ---------------------------------------------------------------- GPT-3.5


def test_gpt35_ties_first_appearance_and_region_tie_order():
    # tree in the top left is scanned first; all four classes have 256 pixels (a four-way tie)
    m = quadrants(3, 1, 2, 4)
    n = nouns(7, 8)
    compat = stats.gpt35_context(m, compat=True, rng=random.Random(7))
    assert compat == (
        "tree; water; developed area; shrub; \n"
        + HEAD.format("top left") + f"tree (extra large {n[0]}).\n"
        + HEAD.format("top right") + f"water (extra large {n[1]}).\n"
        + HEAD.format("bottom left") + f"developed area (extra large {n[2]}).\n"
        + HEAD.format("bottom right") + f"shrub (extra large {n[3]}).\n"
        # middle: 64 px of each, ties in descending class index in compat mode
        + HEAD.format("middle") + f"shrub (medium {n[4]}), tree (medium {n[5]}), and developed area (medium {n[6]}).\n"
    )
    default = stats.gpt35_context(m, rng=random.Random(7))
    assert default.startswith("water; developed area; tree; shrub; \n")  # ties: ascending index
    assert default.endswith(
        HEAD.format("middle") + f"water (medium {n[4]}), developed area (medium {n[5]}), and tree (medium {n[6]}).\n"
    )
    assert compat == gpt35_reference(m, random.Random(7))


def test_gpt35_threshold_19_20_and_empty_regions():
    m = np.zeros((32, 32), np.uint8)
    m[0, :10], m[1, :10] = 5, 5  # 20 px of grass
    m[2, :10], m[3, :9] = 6, 6  # 19 px of crop
    c = stats.region_counts(m)
    assert c[1, 5] == 20 and c[1, 6] == 19
    n = nouns(3, 2)
    compat = stats.gpt35_context(m, compat=True, rng=random.Random(3))
    # grass: 20 / 39 non-background pixels = 0.51 -> large; the other regions list nothing and
    # the release's header then runs on without a newline
    assert compat == (
        "grass; \n"
        + HEAD.format("top left") + f"grass (large {n[0]}).\n"
        + HEAD.format("top right") + HEAD.format("bottom left") + HEAD.format("bottom right") + HEAD.format("middle")
    )
    assert compat == gpt35_reference(m, random.Random(3))
    default = stats.gpt35_context(m, rng=random.Random(3))
    # default mode: shares of the whole region; 985 of 1024 px of the image and 217 of the 256 px
    # of the top left are background, so grass is 20 / 256 = 8 % of the top left (extra small)
    assert default == (
        "grass; \n"
        + "96% of the image is unlabelled.\n"
        + HEAD.format("top left") + f"grass (extra small {n[0]}).\n"
        + "85% of the top left is unlabelled.\n"
        + "The top right contains no labelled land cover.\n"
        + "The bottom left contains no labelled land cover.\n"
        + "The bottom right contains no labelled land cover.\n"
        + "The middle contains no labelled land cover.\n"
    )
    # a region with labelled pixels, none reaching 20
    m2 = np.zeros((32, 32), np.uint8)
    m2[20, 20:39] = 9  # 12 px of wetland in the bottom right
    m2[16, 0:19] = 9  # 16 px in the bottom left
    d2 = stats.gpt35_context(m2)
    assert "The bottom right contains only scattered land cover, no type covers 20 pixels.\n" in d2
    assert d2.startswith("wetland; \n")  # 28 px over the whole map


def test_gpt35_all_background():
    m = np.zeros((16, 16), np.uint8)
    assert stats.gpt35_context(m, compat=True) == "\n" + "".join(HEAD.format(r) for r in REG)
    assert stats.gpt35_context(m, compat=True) == gpt35_reference(m, random.Random(0))
    d = stats.gpt35_context(m)
    assert d.startswith("no land cover type covers 20 pixels or more; \n")
    assert d.count("contains no labelled land cover.\n") == 5


def test_gpt35_single_class_and_default_rng():
    m = np.full((64, 64), 8, np.uint8)
    n = nouns(stats.DEFAULT_SEED, 5)
    expected = "snow; \n" + "".join(HEAD.format(r) + f"snow (extra large {k}).\n" for r, k in zip(REG, n))
    assert stats.gpt35_context(m, compat=True) == expected
    assert stats.gpt35_context(m) == expected  # no bug is triggered: both modes agree
    r = random.Random(11)
    stats.gpt35_context(m, rng=r)
    assert r.getstate() != random.Random(11).getstate()  # the caller's generator is used


def test_gpt35_all_eleven_classes():
    m = np.zeros((64, 64), np.uint8)
    flat = m.reshape(-1)
    start = 0
    for c in range(1, 12):  # class c gets 30 * c pixels, laid out in scan order
        flat[start : start + 30 * c] = c
        start += 30 * c
    text = stats.gpt35_context(m, compat=True, rng=random.Random(1))
    names = ["moss", "mangroves", "wetland", "snow", "bare land", "crop", "grass", "shrub", "tree",
             "developed area", "water"]
    assert text.split("\n")[0] == "; ".join(names) + "; "
    assert text == gpt35_reference(m, random.Random(1))
    assert stats.gpt35_context(m, rng=random.Random(1)).split("\n")[0] == text.split("\n")[0]
    cls_block, reg_block = stats.gpt4v_context(m, compat=True)
    assert len(cls_block.splitlines()) == 11
    assert cls_block == gpt4v_class_reference(m) and reg_block == gpt4v_region_reference(m)


def test_default_shares_are_of_the_whole_region_on_a_partly_labelled_tile():
    # trees in the left half, no label (background) in the right half: 50 % of the image unlabelled
    m = np.zeros((256, 256), np.uint8)
    m[:, :128] = 3
    n = nouns(4, 4)
    default = stats.gpt35_context(m, rng=random.Random(4))
    assert default == (
        "tree; \n50% of the image is unlabelled.\n"
        + HEAD.format("top left") + f"tree (extra large {n[0]}).\n"
        + "The top right contains no labelled land cover.\n"
        + HEAD.format("bottom left") + f"tree (extra large {n[1]}).\n"
        + "The bottom right contains no labelled land cover.\n"
        # the middle is half trees: "large" (50-79 %) of the whole middle, and it says the rest
        + HEAD.format("middle") + f"tree (large {n[2]}).\n" + "50% of the middle is unlabelled.\n"
    )
    compat = stats.gpt35_context(m, compat=True, rng=random.Random(4))
    # the release measured labelled pixels only: the half-empty middle is "extra large" tree
    assert compat.endswith(HEAD.format("middle") + f"tree (extra large {n[2]}).\n")
    assert compat == gpt35_reference(m, random.Random(4))
    _, reg = stats.gpt4v_context(m)
    assert reg.splitlines()[4] == "middle distribution: tree: 0.50; unlabelled: 0.50;"
    assert reg.splitlines()[1] == "top_right distribution: no labelled land cover;"
    # 30 water pixels in a corner of an otherwise unlabelled tile (the one-pixel-water tile,
    # large enough to be listed): extra small in default mode, extra large in the release's
    m = np.zeros((256, 256), np.uint8)
    m[:3, :10] = 1
    default = stats.gpt35_context(m, rng=random.Random(0))
    assert "Under 1% of the image" not in default and "100% of the image" not in default
    assert default.startswith("water; \n99% of the image is unlabelled.\n" + HEAD.format("top left") + "water (extra small ")
    assert "99% of the top left is unlabelled.\n" in default  # 16,354 of 16,384 px: never rounded to 100 %
    assert (HEAD.format("top left") + "water (extra large ") in stats.gpt35_context(m, compat=True)
    assert stats.unlabelled_sentence("middle", 1, 16384) == "Under 1% of the middle is unlabelled.\n"


# ---------------------------------------------------------------- GPT-4V


def test_gpt4v_exact_blocks_and_denominator_quirk():
    m = quadrants(3, 1, 0, 1)  # 32x32: quadrants of 256 px
    cls_compat, reg_compat = stats.gpt4v_context(m, compat=True)
    # the release divides by 128*128 whatever the size: 256 px -> 1.56 %
    assert cls_compat == (
        "tree:  top left part: 1.56%  top right part: 0.00%  bottom left part: 0.00%  "
        "bottom right part: 0.00%  middle part: 0.39% \n"
        "water:  top left part: 0.00%  top right part: 1.56%  bottom left part: 0.00%  "
        "bottom right part: 1.56%  middle part: 0.78% \n"
    )
    assert reg_compat == (
        "top_left distribution: tree: 1.00;\n"
        "top_right distribution: water: 1.00;\n"
        "bottom_left distribution:\n"
        "bottom_right distribution: water: 1.00;\n"
        "middle distribution: water: 0.50; tree: 0.25;\n"
    )
    cls_default, reg_default = stats.gpt4v_context(m)
    assert cls_default == (  # real region sizes; whole-map count order (water 512 > tree 256)
        "water:  top left part: 0.00%  top right part: 100.00%  bottom left part: 0.00%  "
        "bottom right part: 100.00%  middle part: 50.00% \n"
        "tree:  top left part: 100.00%  top right part: 0.00%  bottom left part: 0.00%  "
        "bottom right part: 0.00%  middle part: 25.00% \n"
    )
    # the middle is a quarter background (the bottom-left quadrant's corner): said in default mode
    assert reg_default == reg_compat.replace("bottom_left distribution:\n",
                                             "bottom_left distribution: no labelled land cover;\n").replace(
        "middle distribution: water: 0.50; tree: 0.25;\n", "middle distribution: water: 0.50; tree: 0.25; unlabelled: 0.25;\n")


def test_gpt4v_default_divides_by_each_region_size():
    m = np.full((37, 53), 3, np.uint8)  # regions of 468 ... 513 px
    parts = "  ".join(f"{p}: 100.00%" for p in ("top left part", "top right part", "bottom left part",
                                                 "bottom right part", "middle part"))
    assert stats.gpt4v_context(m)[0] == f"tree:  {parts} \n"
    sizes = stats.region_sizes(37, 53)[1:]
    compat = stats.gpt4v_context(m, compat=True)[0]
    assert compat == "tree: " + "".join(f" {p}: {s / 16384:.2%} " for p, s in zip(
        ("top left part", "top right part", "bottom left part", "bottom right part", "middle part"), sizes)) + "\n"
    big = np.full((300, 300), 2, np.uint8)  # compat on maps larger than 256: shares above 100 %
    assert "top left part: 137.33%" in stats.gpt4v_context(big, compat=True)[0]
    assert stats.gpt4v_context(big, compat=True)[0] == gpt4v_class_reference(big)


def test_gpt4v_region_ties_ascending_index():
    m = quadrants(6, 2, 6, 2)
    reg = stats.gpt4v_context(m, compat=True)[1]
    assert reg.splitlines()[4] == "middle distribution: developed: 0.50; crop: 0.50;"
    assert reg == gpt4v_region_reference(m)


def test_256_maps_default_4v_equals_compat_up_to_class_order():
    for m in sample_maps(8, seed=3):
        cc, rc = stats.gpt4v_context(m, compat=True)
        cd, rd = stats.gpt4v_context(m)
        assert sorted(cc.splitlines()) == sorted(cd.splitlines())
        if (m != 0).reshape(4, 64, 4, 64).any(axis=(1, 3)).all():
            assert re.sub(r" unlabelled: \d\.\d\d;", "", rd) == rc
            assert (" unlabelled: " in rd) == bool((m == 0).any())


# ---------------------------------------------------------------- compat == release transcription


@pytest.mark.parametrize("size", [(256, 256), (64, 48), (9, 13)])
def test_compat_equals_release_transcription(size):
    n = 120 if size == (256, 256) else 60
    for i, m in enumerate(sample_maps(n, seed=size[1], size=size)):
        assert stats.gpt35_context(m, compat=True, rng=random.Random(i)) == gpt35_reference(m, random.Random(i)), i
        cls_block, reg_block = stats.gpt4v_context(m, compat=True)
        assert cls_block == gpt4v_class_reference(m), i
        assert reg_block == gpt4v_region_reference(m), i


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "bad, exc, words",
    [
        (np.zeros((8, 8), np.float32), TypeError, "integer"),
        (np.zeros((8, 8), bool), TypeError, "integer"),
        (np.zeros(64, np.uint8), stats.LabelError, "shape (64,)"),
        (np.zeros((2, 2, 8, 8), np.uint8), stats.LabelError, "shape"),
        (np.zeros((1, 8), np.uint8), stats.LabelError, "at least 2x2"),
    ],
)
def test_bad_inputs_raise_clear_errors(bad, exc, words):
    with pytest.raises(exc, match=None) as info:
        stats.region_counts(bad)
    assert words in str(info.value)


def test_out_of_range_values_name_map_and_pixel():
    stack = np.zeros((3, 8, 8), np.uint8)
    stack[2, 5, 6] = 12
    with pytest.raises(stats.LabelError, match=r"map 2 has value 12 at pixel \(row 5, col 6\)"):
        stats.region_counts(stack)
    neg = np.zeros((8, 8), np.int16)
    neg[1, 1] = -1
    with pytest.raises(stats.LabelError, match="value -1"):
        stats.gpt35_context(neg)
    with pytest.raises(stats.LabelError, match="one \\(H, W\\) label map"):
        stats.gpt4v_context(np.zeros((2, 8, 8), np.uint8))
    with pytest.raises(stats.LabelError, match="value 80"):  # WorldCover codes, not indices
        stats.stats_table(np.full((1, 8, 8), 80, np.uint8), ["t"])


# ---------------------------------------------------------------- tables


def test_stats_table_rows_match_functions_and_are_batch_independent():
    maps = np.stack(list(sample_maps(12, seed=9, size=(64, 64))) + [np.zeros((64, 64), np.uint8)])
    ids = [f"tile{i:02d}" for i in range(len(maps))]
    for compat in (False, True):
        t = stats.stats_table(maps, ids, compat=compat, seed=5)
        t1 = stats.stats_table(maps, ids, compat=compat, seed=5, batch_size=1)
        pd.testing.assert_frame_equal(t, t1)
        assert t["tile_id"].tolist() == ids
        assert np.array_equal(stats.counts_from_table(t), stats.region_counts(maps))
        for i in (0, 5, 12):
            rng = stats.tile_rng(5, ids[i])
            assert t.loc[i, "gpt35_context"] == stats.gpt35_context(maps[i], compat=compat, rng=rng)
            blocks = (t.loc[i, "gpt4v_class_block"], t.loc[i, "gpt4v_region_block"])
            assert blocks == stats.gpt4v_context(maps[i], compat=compat)
        assert set(t["stats_version"]) == {stats.STATS_VERSION} and set(t["compat"]) == {compat}
    assert np.allclose(t[list(stats.SHARE_COLUMNS)].sum(axis=1), 1.0)
    last = t.iloc[-1]
    assert last["dominant_class"] == "background" and pd.isna(last["top1_class"]) and last["n_classes"] == 0
    assert last["empty_regions"] == "top left,top right,bottom left,bottom right,middle"
    # reordering tiles does not change any tile's text (per-tile noun generators)
    rev = stats.stats_table(maps[::-1], ids[::-1], seed=5).set_index("tile_id").loc[ids]
    fwd = stats.stats_table(maps, ids, seed=5).set_index("tile_id")
    assert rev["gpt35_context"].tolist() == fwd["gpt35_context"].tolist()


def test_stats_table_top_classes():
    m = np.zeros((32, 32), np.uint8)
    m[:10] = 3
    m[10:14] = 1
    m[14:16] = 9
    t = stats.stats_table(m, ["x"])
    assert (t.loc[0, "top1_class"], t.loc[0, "top2_class"], t.loc[0, "top3_class"]) == ("tree", "water", "wetland")
    assert t.loc[0, "dominant_class"] == "tree" and t.loc[0, "n_classes"] == 3
    assert t.loc[0, "share_tree"] == pytest.approx(320 / 1024)
    assert t.loc[0, "count_top_left_tree"] == 160 and t.loc[0, "count_middle_water"] == 4 * 16


def test_stats_table_rejects_bad_ids():
    maps = np.zeros((2, 8, 8), np.uint8)
    with pytest.raises(ValueError, match="2 label maps but 1 tile ids"):
        stats.stats_table(maps, ["a"])
    with pytest.raises(ValueError, match="'a' occurs more than once"):
        stats.stats_table(maps, ["a", "a"])


def _write_label_tif(path, indices):
    import rasterio
    from rasterio.transform import from_origin

    codes = indices_to_codes(indices)
    with rasterio.open(path, "w", driver="GTiff", width=codes.shape[1], height=codes.shape[0], count=1,
                       dtype="uint8", crs="EPSG:4326", transform=from_origin(10, 50, 1e-4, 1e-4)) as dst:
        dst.write(codes, 1)


def test_stats_from_tiles_parquet_roundtrip(tmp_path):
    maps = list(sample_maps(5, seed=4, size=(32, 32))) + [np.full((16, 24), 2, np.uint8)]
    (tmp_path / "labels").mkdir()
    rows = []
    for i, m in enumerate(maps):
        rel = f"labels/t{i}.tif"
        _write_label_tif(tmp_path / rel, m)
        rows.append({"tile_id": f"t{i}", "label_path": rel})
    rows.insert(2, {"tile_id": "image-only", "label_path": None})  # e.g. a Sentinel-2 window
    tiles_path = tmp_path / "tiles.parquet"
    pd.DataFrame(rows).to_parquet(tiles_path)
    t = stats.stats_table_from_tiles(tiles_path, progress=False)
    assert t["tile_id"].tolist() == [f"t{i}" for i in range(6)]
    pd.testing.assert_frame_equal(t, stats.stats_table_from_tiles(tiles_path, progress=False, chunk_size=2))
    for i, m in enumerate(maps):
        assert np.array_equal(stats.counts_from_table(t)[i], stats.region_counts(m))
    assert (t.loc[5, "height"], t.loc[5, "width"]) == (16, 24)

    out = tmp_path / "work" / "stats.parquet"
    first = stats.compute_stats(tiles_path, out, progress=False)
    mtime = out.stat().st_mtime_ns
    again = stats.compute_stats(tiles_path, out, progress=False)
    assert out.stat().st_mtime_ns == mtime  # reused, not recomputed
    pd.testing.assert_frame_equal(first, again)
    stats.compute_stats(tiles_path, out, compat=True, progress=False)
    assert bool(stats.read_stats(out)["compat"].all())
    assert not list(out.parent.glob(".*tmp"))


def test_stats_from_tiles_errors_name_file_and_column(tmp_path):
    with pytest.raises(FileNotFoundError, match="tiles.parquet"):
        stats.stats_table_from_tiles(tmp_path / "tiles.parquet")
    pd.DataFrame({"tile_id": ["a"]}).to_parquet(tmp_path / "t.parquet")
    with pytest.raises(KeyError, match="label_path"):
        stats.stats_table_from_tiles(tmp_path / "t.parquet")
    bad = tmp_path / "bad.tif"
    import rasterio

    with rasterio.open(bad, "w", driver="GTiff", width=4, height=4, count=1, dtype="uint8") as dst:
        dst.write(np.full((4, 4), 33, np.uint8), 1)
    pd.DataFrame({"tile_id": ["a"], "label_path": [str(bad)]}).to_parquet(tmp_path / "t2.parquet")
    with pytest.raises(stats.LabelError, match="bad.tif.*unknown WorldCover code 33"):
        stats.stats_table_from_tiles(tmp_path / "t2.parquet", progress=False)
    pd.DataFrame({"tile_id": ["a"]}).to_parquet(tmp_path / "s.parquet")
    with pytest.raises(KeyError, match="s.parquet: missing column 'count_whole_background'"):
        stats.read_stats(tmp_path / "s.parquet")


# ---------------------------------------------------------------- dataset-level


def test_dataset_stats_exact_and_streaming():
    a = quadrants(3, 3, 1, 0)  # tree dominant everywhere it is present
    b = np.zeros((32, 32), np.uint8)  # all background
    c = quadrants(5, 5, 5, 6)
    acc = stats.DatasetStats().update_labels(np.stack([a, b, c]))
    assert acc.n_tiles == 3
    assert acc.class_pixels[[0, 1, 3, 5, 6]].tolist() == [256 + 1024, 256, 512, 768, 256]
    assert acc.class_presence[[0, 1, 3, 5, 6]].tolist() == [2, 1, 1, 1, 1]
    assert acc.dominant.tolist() == [1, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0]
    # bottom left: water in a, nothing in b, grass in c
    assert acc.region_dominant[3].tolist() == [1, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0]
    frame = acc.class_frame()
    assert frame["pixel_share"].sum() == pytest.approx(1.0)
    assert frame.loc[3, "presence_share"] == pytest.approx(1 / 3)
    regions = acc.region_frame()
    assert len(regions) == 6 * 12 and regions.groupby("region")["tiles_dominant"].sum().eq(3).all()

    maps = np.stack(list(sample_maps(40, seed=2, size=(64, 64))))
    whole = stats.DatasetStats().update_labels(maps)
    streamed = stats.DatasetStats()
    for i in range(0, 40, 7):
        streamed.update_labels(maps[i : i + 7])
    merged = stats.DatasetStats().update_labels(maps[:13]).merge(stats.DatasetStats().update_labels(maps[13:]))
    table = stats.DatasetStats.from_table(stats.stats_table(maps, [str(i) for i in range(40)]))
    for other in (streamed, merged, table):
        assert other.n_tiles == 40
        for name in ("class_pixels", "class_presence", "dominant", "region_dominant"):
            assert np.array_equal(getattr(other, name), getattr(whole, name)), name
    with pytest.raises(ValueError, match=r"\(N, 6, 12\)"):
        stats.DatasetStats().update(np.zeros((3, 12)))


def test_region_boxes_agree_with_counts():
    m = np.stack(list(sample_maps(1, seed=8, size=(37, 53))))[0]
    counts = stats.region_counts(m)
    for r, (name, (r0, r1, c0, c1)) in enumerate(stats.region_boxes(*m.shape).items(), start=1):
        assert name == stats.REGIONS[r]
        assert np.array_equal(np.bincount(m[r0:r1, c0:c1].ravel(), minlength=12), counts[r])


def _tiles_with_labels(tmp_path, maps, eligible=None, reasons=None):
    """Label GeoTIFFs under tmp_path/labels (relative paths) and their tiles.parquet."""
    (tmp_path / "labels").mkdir(exist_ok=True)
    rows = []
    for i, m in enumerate(maps):
        rel = f"labels/t{i}.tif"
        _write_label_tif(tmp_path / rel, m)
        rows.append({"tile_id": f"t{i}", "label_path": rel})
    frame = pd.DataFrame(rows)
    if eligible is not None:
        frame["eligible"] = eligible
        frame["exclude_reason"] = reasons
    frame.to_parquet(tmp_path / "tiles.parquet")
    return tmp_path / "tiles.parquet"


def test_stats_of_eligible_tiles_only(tmp_path, capsys):
    from cen.cli import main

    maps = [quadrants(1, 2, 3, 4), quadrants(5, 5, 0, 0), quadrants(3, 3, 3, 3)]
    tiles = _tiles_with_labels(tmp_path, maps, eligible=[True, False, True], reasons=[None, "mostly_nodata", None])
    assert main(["stats", str(tiles)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "3 tiles: 2 eligible, 1 excluded (mostly_nodata: 1)"
    assert "2 tiles -> " in out
    table = stats.read_stats(tmp_path / "stats.parquet")
    assert table["tile_id"].tolist() == ["t0", "t2"]  # the excluded tile has no statistics
    assert not (tmp_path / "stats_failures.parquet").exists()
    # a tiles table written before the eligibility columns existed: every labelled row counts
    legacy = pd.read_parquet(tiles).drop(columns=["eligible", "exclude_reason"])
    legacy.loc[len(legacy)] = {"tile_id": "image-only", "label_path": None}
    assert stats.stats_table_from_tiles(legacy, base_dir=tmp_path, progress=False)["tile_id"].tolist() == ["t0", "t1", "t2"]


def test_bad_tiles_are_recorded_and_the_rest_written(tmp_path, capsys):
    import rasterio

    from cen.cli import main
    from cen.tables import read_failures

    maps = [quadrants(1, 2, 3, 4), quadrants(5, 5, 6, 6), quadrants(3, 3, 3, 3), quadrants(9, 9, 9, 9)]
    tiles = _tiles_with_labels(tmp_path, maps)
    with rasterio.open(tmp_path / "labels/t1.tif", "r+") as dst:  # codes outside WorldCover
        codes = dst.read(1)
        codes[2, 3], codes[4, 5] = 7, 255
        dst.write(codes, 1)
    (tmp_path / "labels/t3.tif").unlink()
    assert main(["stats", str(tiles)]) == 2
    captured = capsys.readouterr()
    assert "2 tiles -> " in captured.out and "2 failed" in captured.out
    err = [line for line in captured.err.splitlines() if line.startswith("cen stats:")]
    assert len(err) == 1 and err[0].startswith("cen stats: 2 of 4 eligible tiles failed, e.g. t1: ")
    assert "unknown WorldCover code 7 at (2, 3)" in err[0]
    assert stats.read_stats(tmp_path / "stats.parquet")["tile_id"].tolist() == ["t0", "t2"]
    failures = read_failures(tmp_path / "stats.parquet")
    assert failures["tile_id"].tolist() == ["t1", "t3"] and set(failures["stage"]) == {"stats"}
    assert "t3.tif" in failures.loc[1, "error"] and "\n" not in "".join(failures["error"])
    # fix the files and run again: only the two missing tiles are computed, the failures table goes
    _write_label_tif(tmp_path / "labels/t1.tif", maps[1])
    _write_label_tif(tmp_path / "labels/t3.tif", maps[3])
    run = stats.run_stats_stage(tiles, tmp_path / "stats.parquet", progress=False)
    assert run.n_reused == 2 and run.failures == [] and not run.failures_path.exists()
    assert run.table["tile_id"].tolist() == ["t0", "t1", "t2", "t3"]
    pd.testing.assert_frame_equal(run.table, stats.stats_table_from_tiles(tiles, progress=False))
    # every tile failing is an error, not an empty table
    for i in range(4):
        (tmp_path / f"labels/t{i}.tif").unlink()
    assert main(["stats", str(tiles), "--force"]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("cen stats: ") and "all 4 eligible tiles failed" in err and "stats_failures.parquet" in err


@pytest.mark.parametrize("case, message", [
    ("empty", "the tiles table has no rows, so there is nothing to compute"),
    ("none_eligible", "no tile is eligible (2 tiles: 0 eligible, 2 excluded (mostly_nodata: 2)); nothing to compute"),
    ("no_label_path", "no tile is eligible (2 tiles: 0 eligible, 2 excluded (no_label: 2)); nothing to compute"),
    ("eligible_without_label", "no eligible tile has a label_path"),
])
def test_stats_with_nothing_to_do_is_an_error_that_says_why(tmp_path, capsys, case, message):
    from cen.cli import main

    tiles = _tiles_with_labels(tmp_path, [quadrants(1, 2, 3, 4), quadrants(3, 3, 3, 3)])
    frame = pd.read_parquet(tiles)
    if case == "empty":
        frame = frame.head(0)
    elif case == "none_eligible":
        frame = frame.assign(eligible=False, exclude_reason="mostly_nodata")
    elif case == "no_label_path":
        frame = frame.assign(label_path=None)
    else:
        frame = frame.assign(label_path=None, eligible=True, exclude_reason=None)
    frame.to_parquet(tiles)
    assert main(["stats", str(tiles)]) == 1
    err = capsys.readouterr().err.strip()
    assert err == f"cen stats: {tiles}: {message}" or (case == "eligible_without_label" and message in err)
    assert not (tmp_path / "stats.parquet").exists()


def test_cli_stats_writes_table_and_shows_contexts(tmp_path, capsys):
    from cen.cli import main

    m = quadrants(3, 1, 0, 5)
    _write_label_tif(tmp_path / "a.tif", m)
    pd.DataFrame({"tile_id": ["a"], "label_path": ["a.tif"]}).to_parquet(tmp_path / "tiles.parquet")
    assert main(["stats", str(tmp_path / "tiles.parquet"), "--compat", "--show", "a"]) == 0
    out = capsys.readouterr().out
    assert "1 tiles -> " in out and "compat=True" in out
    assert stats.gpt35_context(m, compat=True, rng=stats.tile_rng(0, "a")) in out
    assert bool(stats.read_stats(tmp_path / "stats.parquet")["compat"].all())
    assert main(["stats", str(tmp_path / "missing.parquet")]) == 1
    assert "missing.parquet" in capsys.readouterr().err


@pytest.mark.parametrize("shape", [(256, 256), (37, 53), (2, 2), (64, 48)])
def test_numba_and_numpy_counting_agree(shape):
    maps = np.stack(list(sample_maps(10, seed=shape[1], size=shape)))
    expected = counting.cell_counts(maps, "bincount")
    assert counting.default_kernel() == "numba"  # numba is a dependency: the fast kernel is the default
    assert np.array_equal(counting.cell_counts(maps, "numba"), expected)
    # regions from either kernel match the release-style reference
    assert np.array_equal(np.matmul(counting.REGION_OF_CELL, expected)[0], counts_reference(maps[0]))
    with pytest.raises(ValueError, match="unknown kernel 'pairs'"):
        counting.cell_counts(maps, "pairs")


def test_empty_inputs_give_empty_tables(tmp_path):
    t = stats.stats_table(np.zeros((0, 8, 8), np.uint8), [])
    assert len(t) == 0 and set(stats.STATS_REQUIRED) <= set(t.columns)
    pd.DataFrame({"tile_id": ["img"], "label_path": [None]}).to_parquet(tmp_path / "tiles.parquet")
    t2 = stats.stats_table_from_tiles(tmp_path / "tiles.parquet", progress=False)
    assert len(t2) == 0 and list(t2.columns) == list(t.columns)
    assert stats.DatasetStats.from_table(t2).n_tiles == 0


def test_label_png_in_chatearthnet_colours(tmp_path):
    from cen import tiling

    m = quadrants(3, 1, 9, 5)
    tiling.write_label_png(tmp_path / "a.png", m)
    assert np.array_equal(stats.read_label_map(tmp_path / "a.png"), m)
    pd.DataFrame({"tile_id": ["a"], "label_path": ["a.png"]}).to_parquet(tmp_path / "tiles.parquet")
    t = stats.stats_table_from_tiles(tmp_path / "tiles.parquet", compat=True, progress=False)
    assert t.loc[0, "gpt4v_region_block"] == gpt4v_region_reference(m)
    bad = np.zeros((8, 8, 3), np.uint8)
    bad[2, 3] = (1, 2, 3)
    tiling.write_png(tmp_path / "bad.png", bad)
    with pytest.raises(stats.LabelError, match=r"bad.png.*\(1, 2, 3\)"):
        stats.read_label_map(tmp_path / "bad.png")


# ---------------------------------------------------------------- real WorldCover (shared data)


def _worldcover_windows(path, offsets, size=256):
    import rasterio
    from rasterio.windows import Window

    from cen.landcover import codes_to_indices
    from cen.tiling import GDAL_HTTP_ENV, gdal_path

    with rasterio.Env(**GDAL_HTTP_ENV), rasterio.open(gdal_path(path)) as src:
        return np.stack([codes_to_indices(src.read(1, window=Window(c, r, size, size))) for c, r in offsets])


def _served_worldcover(cog: str, full_name: str, crop_name: str, http_server, request):
    """A real WorldCover COG to read: the committed crop served over the local Range server (every
    clone), or the full tile in ../shared/data (where present)."""
    import shutil

    from cen import paths

    if cog == "full tile":
        return request.getfixturevalue("shared_data") / "esa-worldcover" / full_name
    shutil.copyfile(paths.DATA_DIR / "worldcover" / crop_name, http_server.root / crop_name)
    return f"{http_server.url}/{crop_name}"


CROP_OFFSET = (5400, 30960)
"""Pixel (col, row) of the committed São Tomé crop's upper-left corner in tile N00E006."""


@pytest.mark.parametrize("cog", ["committed crop over HTTP", "full tile"])
def test_real_worldcover_windows_compat_and_counts(cog, http_server, request):
    path = _served_worldcover(cog, "ESA_WorldCover_10m_2020_v100_N00E006_Map.tif",
                              "ESA_WorldCover_10m_2020_v100_N00E006_SaoTome_Map.tif", http_server, request)
    offsets = [(8096, 31216), (7840, 30960), (8352, 31472), (8864, 32240), (6048, 35312)]  # in the full tile
    if cog != "full tile":  # the same windows, inside the crop
        offsets = [(c - CROP_OFFSET[0], r - CROP_OFFSET[1]) for c, r in offsets]
    maps = _worldcover_windows(path, offsets)
    counts = stats.region_counts(maps)
    # the nine-class window of the PROVENANCE list: nine classes with >= 20 px each
    assert int((counts[0, 0, 1:] >= stats.THRESHOLD).sum()) == 9
    assert (counts[1:, 0, 1:] >= stats.THRESHOLD).sum(axis=1).tolist() == [8, 8, 8, 8]
    assert counts[2, 0, 2] == 5480 and counts[3, 0, 2] == 5308  # built-up px, as PROVENANCE lists
    table = stats.stats_table(maps, [f"w{i}" for i in range(len(maps))], compat=True)
    for i, m in enumerate(maps):
        assert np.array_equal(counts[i], counts_reference(m))
        assert table.loc[i, "gpt35_context"] == gpt35_reference(m, stats.tile_rng(0, f"w{i}"))
        assert table.loc[i, "gpt4v_class_block"] == gpt4v_class_reference(m)
        assert table.loc[i, "gpt4v_region_block"] == gpt4v_region_reference(m)
    assert "mangroves" in table.loc[0, "gpt35_context"].split("\n")[0]


@pytest.mark.parametrize("cog", ["committed crop over HTTP", "full tile"])
def test_real_worldcover_snow_and_moss_dataset_stats(cog, http_server, request):
    name = "ESA_WorldCover_10m_2020_v100_N66E177_Map.tif"  # committed unmodified (same sha256)
    path = _served_worldcover(cog, name, name, http_server, request)
    maps = _worldcover_windows(path, [(c, r) for r in range(0, 1024, 256) for c in range(0, 1024, 256)])
    acc = stats.DatasetStats()
    for k in range(0, 16, 5):
        acc.update_labels(maps[k : k + 5])
    frame = acc.class_frame().set_index("class")
    # PROVENANCE pixel counts of the downsampled tile: snow 15, moss 523 k, shrub 9
    assert (frame.loc["snow", "pixels"], frame.loc["shrub", "pixels"]) == (15, 9)
    assert 500_000 < frame.loc["moss", "pixels"] < 550_000
    assert acc.n_tiles == 16 and frame["pixels"].sum() == 1024 * 1024


# --- views for notebooks: tables, texts, figures -----------------------------------------------

@pytest.fixture
def small_tiles(tmp_path):
    """Three 32-px label maps written as ChatEarthNet-colour PNGs, their tiles table and stats table."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from cen import tiling

    maps = [quadrants(1, 2, 3, 4), quadrants(5, 5, 5, 5), quadrants(2, 2, 8, 1)]
    ids = [f"tile_{i}" for i in range(len(maps))]
    paths = [tiling.write_label_png(tmp_path / f"{t}.png", m) for t, m in zip(ids, maps)]
    tiles = pd.DataFrame({"tile_id": ids + ["image_only"], "label_path": [str(p) for p in paths] + [None]})
    yield maps, tiles, stats.stats_table(np.stack(maps), ids)
    plt.close("all")


def test_stats_overview_and_n_classes_present(small_tiles):
    maps, _, table = small_tiles
    view = stats.stats_overview(table)
    assert list(view.columns) == list(stats.OVERVIEW_COLUMNS) and len(view) == 3
    acc = stats.DatasetStats.from_table(table)
    assert acc.n_classes_present == len({c for m in maps for c in np.unique(m) if c}) == 6
    assert stats.DatasetStats().n_classes_present == 0


def test_region_class_counts_match_the_count_columns(small_tiles):
    maps, _, table = small_tiles
    out = stats.region_class_counts(table, n=2)
    assert list(out.columns) == list(stats.REGIONS) and out.index.names == ["tile_id", "class"]
    names = class_names("gpt35")
    assert out.index.tolist() == [("tile_0", names[c]) for c in (1, 2, 3, 4)] + [("tile_1", names[5])]
    for (tile_id, cls), row in out.iterrows():
        slug = cls.replace(" ", "_")
        for region, rslug in zip(stats.REGIONS, stats.REGION_SLUGS):
            assert row[region] == table.set_index("tile_id").loc[tile_id, f"count_{rslug}_{slug}"]
    assert out.loc[("tile_0", names[1])].tolist() == [256, 256, 0, 0, 0, 64]
    assert out.loc[("tile_1", names[5]), "whole"] == 32 * 32
    assert len(stats.region_class_counts(table)) == 4 + 1 + 3


def test_plot_regions_returns_figure(small_tiles):
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    from cen.landcover import indices_to_colour

    maps, tiles, table = small_tiles
    fig = stats.plot_regions(table, tiles, n=2)
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    ax = fig.axes[0]
    assert ax.get_title() == "tile_0\n4 classes, mostly water"
    np.testing.assert_array_equal(ax.get_images()[0].get_array(), indices_to_colour(maps[0]))
    boxes = {p.get_label(): p for p in ax.patches if isinstance(p, Rectangle)}
    assert set(boxes) == set(stats.REGIONS[1:])
    assert boxes["middle"].get_linestyle() == "--" and (boxes["middle"].get_width(), boxes["middle"].get_height()) == (16, 16)
    assert boxes["bottom right"].get_xy() == (15.5, 15.5)
    # the outlines are in a colour no class uses
    from matplotlib.colors import to_rgb

    outline = {tuple(round(255 * v) for v in box.get_edgecolor()[:3]) for box in boxes.values()}
    assert outline == {tuple(round(255 * v) for v in to_rgb(stats.REGION_OUTLINE))}
    distance = min(np.linalg.norm(np.subtract(c.colour, next(iter(outline)))) for c in CLASSES)
    assert distance >= 100
    # one legend: the classes of the two tiles shown (tile_0: 1-4, tile_1: 5), in class order
    assert [t.get_text() for t in fig.legends[0].get_texts()] == list(class_names("gpt35")[1:6])
    with pytest.raises(ValueError, match="no label_path for tile 'tile_2'"):
        stats.plot_regions(table, tiles[tiles.tile_id != "tile_2"], n=3)


def test_format_contexts(small_tiles):
    _, _, table = small_tiles
    text = stats.format_contexts(table, n=2)
    assert text.count("=== tile_") == 2 and "=== tile_2" not in text
    first = table.iloc[0]
    assert (f"=== tile_0 ===\n--- GPT-3.5 context ---\n{first.gpt35_context}\n--- GPT-4V per-class block ---\n"
            f"{first.gpt4v_class_block}--- GPT-4V per-region block ---\n{first.gpt4v_region_block}") in text


def test_context_differences_between_modes(small_tiles):
    maps, _, table = small_tiles
    other = stats.stats_table(np.stack(maps), list(table.tile_id), compat=True)
    diff = stats.context_differences(table, other)
    assert list(diff.columns) == ["tile_id", *stats.CONTEXT_COLUMNS, "empty_regions"]
    for col in stats.CONTEXT_COLUMNS:
        assert diff[col].tolist() == (table[col] != other[col]).tolist()
    # rows are matched by tile id, not position
    assert not stats.context_differences(table, table.iloc[::-1]).drop(columns=["tile_id", "empty_regions"]).any().any()
    edited = table.copy()
    edited.loc[1, "gpt35_context"] = "changed\n"
    diff = stats.context_differences(table, edited)
    assert diff["gpt35_context"].tolist() == [False, True, False]
    assert not diff["gpt4v_class_block"].any()
    with pytest.raises(ValueError, match="tile 'tile_2' is not in the other table"):
        stats.context_differences(table, table.head(2))


def test_context_difference_examples(small_tiles):
    _, _, table = small_tiles
    assert stats.context_difference_examples(table, table) == ""
    edited = table.copy()
    edited["compat"] = True
    edited.loc[2, "gpt4v_region_block"] = "changed\n"
    text = stats.context_difference_examples(table, edited)
    assert text == (f"gpt4v_region_block of tile_2:\n--- default mode ---\n{table.loc[2, 'gpt4v_region_block']}"
                    "--- compat mode ---\nchanged\n")


def test_plot_dataset_stats_returns_figure(small_tiles):
    _, _, table = small_tiles
    acc = stats.DatasetStats.from_table(table)
    fig = stats.plot_dataset_stats(acc)
    assert [ax.get_title() for ax in fig.axes] == [
        "pixel share (all pixels)", "share of tiles containing the class", "dominant class (tiles)"]
    classes = acc.class_frame()
    heights = [[bar.get_height() for bar in ax.patches] for ax in fig.axes]
    np.testing.assert_allclose(heights[0], classes["pixel_share"][1:])
    np.testing.assert_allclose(heights[1], classes["presence_share"][1:])
    np.testing.assert_allclose(heights[2], classes["tiles_dominant"])
    assert [t.get_text() for t in fig.axes[2].get_xticklabels()] == list(classes["class"])


def test_region_dominance_table_and_heatmap(small_tiles):
    _, _, table = small_tiles
    acc = stats.DatasetStats.from_table(table)
    dom = stats.region_dominance(acc)
    assert list(dom.columns) == list(stats.REGIONS)
    # tile_0: classes 1-4 tie where they meet (lowest index wins); tile_2: quadrants 2, 2 / 8, 1
    assert dom.index.tolist() == ["water", "developed area", "tree", "shrub", "grass", "snow"]
    assert dom.loc["water"].tolist() == [1, 1, 0, 0, 1, 1] and dom.loc["snow"].tolist() == [0, 0, 0, 1, 0, 0]
    assert (dom.sum(axis=0) == 3).all()
    assert dom.loc["grass"].tolist() == [1] * 6  # tile_1 is all grass (index 5)
    fig = stats.plot_region_dominance(acc)
    ax = fig.axes[0]
    assert ax.get_title() == "tiles whose region is dominated by each class"
    assert [t.get_text() for t in ax.texts] == [str(v) for v in dom.to_numpy().ravel()]
    assert [t.get_text() for t in ax.get_yticklabels()] == dom.index.tolist()
