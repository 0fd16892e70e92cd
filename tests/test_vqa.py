"""cen.vqa on hand-built label maps whose every answer is known, and the build's bookkeeping."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from cen import vqa
from cen.cli import main
from cen.landcover import indices_to_codes
from cen.vqa import build as vqa_build
from cen.vqa.features import tile_features
from cen.vqa.sampler import Chunk, PositionDealer, render

WATER, DEVELOPED, TREE, SHRUB, GRASS, CROP = 1, 2, 3, 4, 5, 6


def all_questions(task: str, labels: np.ndarray, meta: pd.DataFrame | None = None) -> pd.DataFrame:
    """Every question a family can ask of these maps (no quota limit, no balance dropping)."""
    stack = labels if labels.ndim == 3 else labels[None]
    n = len(stack)
    feats = tile_features(stack)
    chunk = Chunk(0, 0, np.array([f"t{i}" for i in range(n)], object), np.array(["train"] * n, object),
                  np.ones(n, bool), feats, meta if meta is not None else pd.DataFrame(index=range(n)))
    module = vqa.FAMILIES[task]
    rng = np.random.default_rng(0)
    picks = module.sample(chunk, np.full(n, 10_000), rng)
    return render(picks, chunk, module.TEMPLATES, rng, PositionDealer())


def lake_north_of_forest() -> np.ndarray:
    m = np.full((64, 64), GRASS, np.uint8)
    m[0:20, 10:50] = WATER  # the lake, north
    m[40:64, 0:64] = TREE  # the forest, south
    return m


def one(frame: pd.DataFrame, **where) -> pd.Series:
    sel = frame
    for k, v in where.items():
        sel = sel[sel[k] == v]
    assert len(sel) == 1, f"expected one question with {where}, found {len(sel)}"
    return sel.iloc[0]


def value(row: pd.Series):
    return json.loads(row["answer_value"])


def test_lake_north_of_forest():
    m = lake_north_of_forest()
    rel = all_questions("relative_position", m)
    row = one(rel, class_a="water", class_b="tree")
    assert value(row) == "north" and row["answer"] == "north"
    assert value(one(rel, class_a="tree", class_b="water")) == "south"
    assert row["choices"] is not None and sorted(row["choices"]) == ["east", "north", "south", "west"]
    assert "\nOptions: A. " in row["question"]
    pres = all_questions("presence", m)
    assert value(one(pres, class_a="water", region="top_left")) is True
    assert value(one(pres, class_a="water", region="bottom_left")) is False  # rows 32-63 hold no water
    assert value(one(pres, class_a="crop", region="whole")) is False
    adj = all_questions("adjacency", m)
    pair = adj[adj["class_a"].isin(["water", "tree"]) & adj["class_b"].isin(["water", "tree"])]
    assert len(pair) == 1 and value(pair.iloc[0]) is False  # grass lies between lake and forest
    pair = adj[adj["class_a"].isin(["water", "grass"]) & adj["class_b"].isin(["water", "grass"])]
    assert value(pair.iloc[0]) is True
    ref = all_questions("referring", m)
    assert value(one(ref, class_a="water")) == [10, 0, 50, 20]  # x0, y0, x1, y1, ends exclusive
    assert one(ref, class_a="water")["answer"] == "{<16><0><78><31>}"  # GeoChat 0-100, rounded half up


def test_two_touching_fields_and_a_diagonal():
    m = np.zeros((32, 32), np.uint8)
    m[:, :16] = CROP
    m[:, 16:] = GRASS
    feats = tile_features(m)
    assert feats.adjacent[0, CROP, GRASS] and feats.adjacent[0, GRASS, CROP]
    d = np.zeros((32, 32), np.uint8)  # touch only at a corner: not 4-neighbours
    d[:16, :16] = CROP
    d[16:, 16:] = GRASS
    f2 = tile_features(d)
    assert not f2.adjacent[0, CROP, GRASS]
    assert not f2.adjacent[0, 0].any() and not f2.adjacent[0, :, 0].any()  # background touches nothing
    # the same class across a corner is one 8-connected patch
    c = np.zeros((32, 32), np.uint8)
    c[:16, :16] = CROP
    c[16:, 16:] = CROP
    f3 = tile_features(c)
    assert f3.largest[0, CROP] == 512 and f3.second[0, CROP] == 0 and f3.n_patches[0, CROP] == 1
    assert list(f3.bbox[0, CROP]) == [0, 0, 32, 32]


def test_the_20_pixel_threshold():
    m = np.full((64, 64), GRASS, np.uint8)
    m[2:6, 2:7] = CROP  # 20 px
    m[40:44, 40:45] = WATER
    m[43, 44] = GRASS  # 19 px
    pres = all_questions("presence", m)
    assert value(one(pres, class_a="crop", region="whole")) is True
    assert value(one(pres, class_a="water", region="whole")) is False
    assert value(one(pres, class_a="water", region="bottom_right")) is False
    counting = all_questions("counting", m)
    classes = counting[counting["class_a"].isna()]
    assert len(classes) == 1 and value(classes.iloc[0]) == 2  # grass and crop; water's 19 px do not count
    assert value(one(counting, class_a="crop")) == 1
    assert "water" not in set(counting["class_a"].dropna())  # absent classes are not asked
    ref = all_questions("referring", m)
    assert value(one(ref, class_a="crop")) == [2, 2, 7, 6]
    assert "water" not in set(ref["class_a"])  # largest patch < 20 px
    # a class of 25 px in two patches of 12 and 13 is present but has no patch of 20 px
    p = np.full((64, 64), GRASS, np.uint8)
    p[0:3, 0:4] = WATER
    p[30:33, 30:34] = WATER
    p[33, 30] = WATER
    counting = all_questions("counting", p)
    assert value(one(counting, class_a="water")) == 0


def test_equal_counts_are_not_asked():
    m = np.zeros((64, 64), np.uint8)
    m[:, :32] = TREE
    m[:, 32:] = CROP  # 50/50 everywhere except the quadrants
    dom = all_questions("dominant", m)
    assert "whole" not in set(dom["region"]) and "middle" not in set(dom["region"])
    assert value(one(dom, region="top_left")) == "tree" and value(one(dom, region="top_right")) == "crop"
    # a lead just below 5 % is not asked, at 5 % it is
    lead = np.zeros((20, 20), np.uint8)
    lead[:, :] = TREE
    lead[:, :10] = CROP
    lead[0, 10:19] = CROP  # crop 209, tree 191: lead 18 < 5 % of 400 = 20
    assert all_questions("dominant", lead).query("region == 'whole'").empty
    lead[0, 19] = CROP  # 210 vs 190: lead 20 = 5 %
    assert value(one(all_questions("dominant", lead), region="whole")) == "crop"
    # two equal largest patches: no single box to ask for
    two = np.full((64, 64), GRASS, np.uint8)
    two[0:5, 0:5] = WATER
    two[50:55, 50:55] = WATER
    assert "water" not in set(all_questions("referring", two)["class_a"])
    # an exact diagonal tie of the centroid offsets has no direction
    diag = np.full((64, 64), GRASS, np.uint8)
    diag[0:8, 0:8] = WATER
    diag[40:48, 40:48] = CROP
    rel = all_questions("relative_position", diag)
    assert not ((rel["class_a"] == "water") & (rel["class_b"] == "crop")).any()
    # an offset under 16 px is not asked
    near = np.full((64, 64), GRASS, np.uint8)
    near[20:30, 20:30] = WATER
    near[20:30, 34:44] = CROP  # centroids 14 px apart
    rel = all_questions("relative_position", near)
    assert not ((rel["class_a"] == "water") & (rel["class_b"] == "crop")).any()


def test_area_shares_and_bins():
    m = np.zeros((20, 20), np.uint8)  # 400 px; background is not counted
    m[:10, :] = TREE  # 200
    m[10:, :] = GRASS  # 200 labelled below...
    m[10:20, 0:2] = 0  # ... minus 20 background: labelled 380
    m[19, 2:4] = WATER  # 2 water px: 2/380 = 0.5 % -> rounds to 1 %
    area = all_questions("area", m)
    row = one(area, class_a="tree", region="whole")
    assert value(row) == round(200 / 380, 2) == 0.53 and row["answer"] == "large (50-79 %)"
    assert one(area, class_a="water", region="whole")["answer"] == "extra small (0-9 %)"
    assert set(row["choices"]) == set(vqa.area.BIN_LABELS)
    assert "snow" not in set(area["class_a"])  # classes without a pixel in the region are not asked


def test_season_and_hemispheres():
    maps = np.full((4, 32, 32), GRASS, np.uint8)
    meta = pd.DataFrame({
        "lat": [45.0, -33.9, 10.0, 50.0], "lon": [7.0, 18.4, 0.0, 7.0],
        "s2_item_id": ["S2A_x", "S2B_y", "S2A_z", None],
        "datetime": ["2021-07-15T10:00:00Z", "2021-07-15T10:00:00Z", "2021-01-01T00:00:00Z", "2021-01-01T00:00:00Z"],
    })
    q = vqa.questions_from_labels(maps, ["north", "south", "tropics", "no_s2"], meta=meta, tasks=["season"])
    assert dict(zip(q["tile_id"], q["answer"])) == {"north": "summer", "south": "winter"}
    assert all(sorted(c) == sorted(vqa.season.SEASONS) for c in q["choices"])


def test_location_choices_from_the_same_continent():
    maps = np.full((2, 32, 32), GRASS, np.uint8)
    meta = pd.DataFrame({"lon": [2.35, -30.0], "lat": [48.85, 0.0]})  # Paris; the middle of the Atlantic
    q = vqa.questions_from_labels(maps, ["paris", "sea"], meta=meta, tasks=["location"], per_tile=2)
    assert set(q["tile_id"]) == {"paris"}
    country = one(q, template_id=q.loc[q["template_id"].str.contains("country"), "template_id"].iloc[0])
    assert country["answer"] == "France"
    europe = set(vqa.location.countries_by_continent()["Europe"])
    assert set(country["choices"]) <= europe and len(country["choices"]) == 4
    continent = q[q["template_id"].str.contains("continent")].iloc[0]
    assert continent["answer"] == "Europe" and len(set(continent["choices"])) == 4


def test_background_is_never_a_class():
    m = np.zeros((64, 64), np.uint8)
    m[:20, :20] = WATER
    q = vqa.questions_from_labels(m[None], ["t"], per_tile=200)
    assert "background" not in set(q["class_a"].dropna()) | set(q["class_b"].dropna())
    assert not q["answer"].str.contains("background").any()


def _workdir(tmp_path, n_tiles: int = 3, relative: bool = True) -> tuple:
    import rasterio
    from rasterio.transform import from_origin

    rng = np.random.default_rng(1)
    rows = []
    (tmp_path / "tiles").mkdir()
    for i in range(n_tiles):
        m = np.full((64, 64), GRASS, np.uint8)
        m[: 10 + 5 * i, :30] = WATER
        m[40:, 10 + i :] = TREE
        m[rng.integers(0, 64, 30), rng.integers(0, 64, 30)] = CROP
        path = tmp_path / "tiles" / f"t{i}.tif"
        with rasterio.open(path, "w", driver="GTiff", width=64, height=64, count=1, dtype="uint8",
                           crs="EPSG:32631", transform=from_origin(448000, 5412000, 10, 10)) as dst:
            dst.write(indices_to_codes(m), 1)
        rows.append({"tile_id": f"t{i}", "split": "train" if i else "test",
                     "label_path": f"tiles/t{i}.tif" if relative else str(path), "lon": 2.35, "lat": 48.85,
                     "s2_item_id": None, "datetime": None})
    rows.append({"tile_id": "image_only", "split": "train", "label_path": None, "lon": 2.35, "lat": 48.85,
                 "s2_item_id": "S2A", "datetime": "2020-01-01T00:00:00Z"})
    tiles = pd.DataFrame(rows)
    tiles.to_parquet(tmp_path / "tiles.parquet")
    return tmp_path, tiles


def test_build_writes_the_columns_and_accounts(tmp_path, capsys):
    workdir, _ = _workdir(tmp_path)
    assert main(["vqa", "build", str(workdir), "--per-tile", "12", "-q"]) == 0
    line = capsys.readouterr().out
    assert "4 tiles in the table, 3 eligible, 3 label maps read" in line and "1 no_label" in line
    q = pd.read_parquet(workdir / "vqa.parquet")
    assert tuple(q.columns) == vqa.COLUMNS
    assert q["qid"].is_unique and set(q["tile_id"]) == {"t0", "t1", "t2"}
    assert (q.groupby("tile_id").size() <= 12).all() and (q.groupby("tile_id").size() >= 10).all()
    assert set(q.loc[q["tile_id"] == "t0", "split"]) == {"test"}
    assert q.loc[q["format"] != "multiple_choice", "choices"].isna().all()
    assert q.loc[q["format"] == "multiple_choice", "choices"].map(len).ge(4).all()
    decoded = vqa.answer_values(q)
    kinds = {f: {type(v).__name__ for v, g in zip(decoded, q["format"]) if g == f} for f in set(q["format"])}
    assert kinds["yes_no"] == {"bool"} and kinds["open"] == {"int"} and kinds["bbox"] == {"list"}
    assert set(q["region"]) <= set(vqa_build.FAMILIES["presence"].TEMPLATES and
                                   ("whole", "top_left", "top_right", "bottom_left", "bottom_right", "middle"))
    import pyarrow.parquet as pq

    assert pq.read_schema(workdir / "vqa.parquet").metadata[b"cen_vqa_version"] == vqa.VQA_VERSION.encode()


def test_build_records_unreadable_maps_and_exits_2(tmp_path, capsys):
    workdir, tiles = _workdir(tmp_path)
    (workdir / "tiles" / "t1.tif").write_bytes(b"not a tiff")
    assert main(["vqa", "build", str(workdir), "-q"]) == 2
    assert "1 failed" in capsys.readouterr().out
    fails = pd.read_parquet(workdir / "vqa_failures.parquet")
    assert list(fails["tile_id"]) == ["t1"] and "t1.tif" in fails["error"].iloc[0]
    assert "t1" not in set(pd.read_parquet(workdir / "vqa.parquet")["tile_id"])


def test_build_with_nothing_to_ask_exits_1_and_writes_nothing(tmp_path, capsys):
    workdir, tiles = _workdir(tmp_path)
    assert main(["vqa", "build", str(workdir), "--tasks", "season", "-q"]) == 1
    assert "no question could be asked" in capsys.readouterr().err
    assert not (workdir / "vqa.parquet").exists()
    assert not list(workdir.glob(".vqa*"))  # no temporary left behind


def test_duplicate_tile_ids_are_refused(tmp_path, capsys):
    workdir, tiles = _workdir(tmp_path)
    pd.concat([tiles, tiles.head(1)]).to_parquet(workdir / "tiles.parquet")
    assert main(["vqa", "build", str(workdir), "-q"]) == 1
    assert "tile_id 't0' occurs more than once" in capsys.readouterr().err
    assert not (workdir / "vqa.parquet").exists()


def test_eligible_column_is_respected(tmp_path, capsys):
    workdir, tiles = _workdir(tmp_path)
    tiles["eligible"] = [True, False, True, False]
    tiles["exclude_reason"] = [None, "mostly_nodata", None, "no_label"]
    tiles.to_parquet(workdir / "tiles.parquet")
    assert main(["vqa", "build", str(workdir), "-q"]) == 0
    assert "1 mostly_nodata, 1 no_label" in capsys.readouterr().out
    assert set(pd.read_parquet(workdir / "vqa.parquet")["tile_id"]) == {"t0", "t2"}


def test_reproducible_from_the_seed(tmp_path):
    workdir, _ = _workdir(tmp_path)
    a = vqa.build_questions(workdir, seed=3, out=workdir / "a.parquet", progress=False)
    b = vqa.build_questions(workdir, seed=3, out=workdir / "b.parquet", progress=False)
    c = vqa.build_questions(workdir, seed=4, out=workdir / "c.parquet", progress=False)
    ta, tb, tc = (pd.read_parquet(r.path) for r in (a, b, c))
    pd.testing.assert_frame_equal(ta, tb)
    assert not ta[["question", "answer"]].equals(tc[["question", "answer"]])
    # a task's questions do not depend on which other tasks are asked alongside it (same quota)
    only = vqa.questions_from_labels(np.full((2, 32, 32), GRASS, np.uint8), ["x", "y"], tasks=["presence"], seed=5)
    assert len(only) > 0


def test_every_template_is_worded_for_its_task():
    pools = vqa.templates()
    assert set(pools) == set(vqa.TASKS)
    for task, by_pool in pools.items():
        for pool, items in by_pool.items():
            assert len(items) >= 3, f"{pool}: a pool needs several phrasings"
            ids = [i for i, _ in items]
            assert len(set(ids)) == len(ids) and all(i.startswith(pool + ".") for i in ids)
            for _, text in items:
                assert text.endswith(("?", ".")) and "{" not in text.replace("{a}", "").replace(
                    "{b}", "").replace("{region}", "")


def test_views_balance_and_ablation_sets(tmp_path):
    from cen.vqa import views

    workdir, _ = _workdir(tmp_path, n_tiles=4)
    q = pd.read_parquet(vqa.build_questions(workdir, per_tile=15, progress=False).path)
    bal = views.balance_table(q).set_index("task")
    assert bal.loc["presence", "yes_share"] == (q.loc[q["task"] == "presence", "answer"] == "yes").mean()
    assert np.isnan(bal.loc["area", "yes_share"]) and 0 < bal.loc["area", "top_position_share"] <= 1
    pd.DataFrame({"tile_id": ["t0", "t1"], "paradigm": "gpt35", "text": "x"}).to_parquet(workdir / "captions_no_size.parquet")
    pd.DataFrame({"tile_id": ["t0"], "text": "x"}).to_parquet(workdir / "captions_verified.parquet")
    sets = views.ablation_sets(workdir, q)
    assert sets["variant"].tolist() == ["no_size"] and sets["rows"].tolist() == [2]
    want = int((q["task"].isin(["area", "dominant"]) & q["tile_id"].isin(["t0", "t1"])).sum())
    assert sets["questions"].tolist() == [want] and want > 0
    assert views.ablation_sets(tmp_path / "nowhere").empty
