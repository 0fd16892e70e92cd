"""Every answer of the demo's questions recomputed by a plain, independent implementation.

The label maps are the embedded demo's real WorldCover tiles; regions are sliced by hand,
components found by a breadth-first search, adjacency by shifted comparisons, centroids with
floats. Also: the balance limits and the choice positions on the same questions.
"""

from __future__ import annotations

import json
from collections import deque

import numpy as np
import pandas as pd
import pytest

from cen import vqa
from cen.landcover import class_names
from cen.stats import read_label_map
from cen.tables import resolve_path

NAMES = class_names("gpt35")
INDEX = {n: i for i, n in enumerate(NAMES)}


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    from cen.sources.demo import build_demo_tiles

    workdir = tmp_path_factory.mktemp("vqa_demo")
    build_demo_tiles(workdir)
    result = vqa.build_questions(workdir, per_tile=20, seed=7, progress=False)
    tiles = pd.read_parquet(workdir / "tiles.parquet")
    maps = {t: read_label_map(resolve_path(p, workdir)) for t, p in zip(tiles["tile_id"], tiles["label_path"])
            if p is not None and not (isinstance(p, float) and np.isnan(p))}
    return result, pd.read_parquet(result.path), maps


def region_slice(m: np.ndarray, region: str) -> np.ndarray:
    h, w = m.shape
    return {"whole": m, "top_left": m[: h // 2, : w // 2], "top_right": m[: h // 2, w // 2 :],
            "bottom_left": m[h // 2 :, : w // 2], "bottom_right": m[h // 2 :, w // 2 :],
            "middle": m[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4]}[region]


def components(m: np.ndarray) -> list[tuple[int, int, tuple[int, int, int, int]]]:
    """(class, size, (x0, y0, x1, y1)) of every 8-connected same-class component (BFS)."""
    h, w = m.shape
    seen = np.zeros((h, w), bool)
    grid = m.tolist()
    out = []
    for i in range(h):
        for j in range(w):
            if seen[i, j] or grid[i][j] == 0:
                continue
            c = grid[i][j]
            queue = deque([(i, j)])
            seen[i, j] = True
            size, x0, y0, x1, y1 = 0, j, i, j, i
            while queue:
                y, x = queue.popleft()
                size += 1
                x0, y0, x1, y1 = min(x0, x), min(y0, y), max(x1, x), max(y1, y)
                for dy in (-1, 0, 1):
                    for dx in (-1, 0, 1):
                        yy, xx = y + dy, x + dx
                        if 0 <= yy < h and 0 <= xx < w and not seen[yy, xx] and grid[yy][xx] == c:
                            seen[yy, xx] = True
                            queue.append((yy, xx))
            out.append((c, size, (x0, y0, x1 + 1, y1 + 1)))
    return out


def touches(m: np.ndarray, a: int, b: int) -> bool:
    pairs = [(m[:, :-1], m[:, 1:]), (m[:-1, :], m[1:, :])]
    return any(((p == a) & (q == b)).any() or ((p == b) & (q == a)).any() for p, q in pairs)


def expected(row: dict, m: np.ndarray, comps: list) -> object:
    task, a, b = row["task"], INDEX.get(row["class_a"]), INDEX.get(row["class_b"])
    reg = region_slice(m, row["region"])
    if task == "presence":
        return int((reg == a).sum()) >= 20
    if task == "area":
        labelled = int((reg > 0).sum())
        return round(np.floor(100 * (reg == a).sum() / labelled + 0.5 + 1e-9) / 100, 2)
    if task == "counting":
        if a is None:
            return sum(int((m == c).sum()) >= 20 for c in range(1, 12))
        return sum(1 for c, s, _ in comps if c == a and s >= 20)
    if task == "dominant":
        counts = sorted(((int((reg == c).sum()), c) for c in range(1, 12)), reverse=True)
        assert counts[0][0] - counts[1][0] >= 0.05 * int((reg > 0).sum())
        return NAMES[counts[0][1]]
    if task == "adjacency":
        return touches(m, a, b)
    if task == "relative_position":
        ya, xa = np.nonzero(m == a)
        yb, xb = np.nonzero(m == b)
        dy, dx = ya.mean() - yb.mean(), xa.mean() - xb.mean()
        assert max(abs(dy), abs(dx)) >= 16
        if abs(dy) > abs(dx):
            return "north" if dy < 0 else "south"
        return "east" if dx > 0 else "west"
    if task == "referring":
        sizes = sorted((s for c, s, _ in comps if c == a), reverse=True)
        assert sizes[0] >= 20 and (len(sizes) == 1 or sizes[0] > sizes[1])
        return list(next(box for c, s, box in comps if c == a and s == sizes[0]))
    raise AssertionError(task)


def test_every_label_answer_matches_an_independent_computation(demo):
    _, q, maps = demo
    label_tasks = q[~q["task"].isin(["location", "season"])]
    assert set(label_tasks["task"]) == {"presence", "area", "counting", "dominant", "adjacency",
                                        "relative_position", "referring"}
    comps = {t: components(m) for t, m in maps.items() if t in set(q["tile_id"])}
    checked = 0
    for row in label_tasks.to_dict("records"):
        want = expected(row, maps[row["tile_id"]], comps[row["tile_id"]])
        assert json.loads(row["answer_value"]) == want, row["qid"]
        if row["format"] == "yes_no":
            assert row["answer"] == ("yes" if want else "no")
        checked += 1
    assert checked == len(label_tasks) > 300


def test_area_and_choices_agree_with_the_bins(demo):
    _, q, _ = demo
    area = q[q["task"] == "area"]
    for row in area.to_dict("records"):
        pct = round(json.loads(row["answer_value"]) * 100)
        lo, hi = [int(v) for v in row["answer"].split("(")[1].split(" %")[0].split("-")]
        assert lo <= pct <= hi
        assert row["answer"] in list(row["choices"])
    mc = q[q["format"] == "multiple_choice"]
    assert all(a in list(c) for a, c in zip(mc["answer"], mc["choices"]))


def test_balance_limits(demo):
    result, q, _ = demo
    for task in ("presence", "adjacency"):
        share = (q.loc[q["task"] == task, "answer"] == "yes").mean()
        assert 0.40 <= share <= 0.60, (task, share)
    mc = q[q["format"] == "multiple_choice"]
    for task, g in mc.groupby("task"):
        pos = [list(c).index(a) for a, c in zip(g["answer"], g["choices"])]
        top = np.bincount(pos).max() / len(pos)
        assert top <= 0.35, (task, top, len(pos))
    assert q.groupby("tile_id").size().max() <= 20
    assert result.n_questions == len(q)


def test_location_answers_are_the_boundaries_under_the_tile_centre(demo):
    import geopandas as gpd
    from shapely.geometry import Point

    from cen.vqa import location

    _, q, _ = demo
    loc = q[q["task"] == "location"]
    if loc.empty:
        pytest.skip("no country boundaries under the demo tiles in this checkout")
    world = location._places().world_10m() if location._places() else None
    assert world is not None
    continents = set(location.countries_by_continent())
    for row in loc.to_dict("records"):
        choices = list(row["choices"])
        assert row["answer"] in choices and len(set(choices)) == 4
        if ".continent." in row["template_id"]:
            assert set(choices) <= continents
        else:
            continent = world.loc[world["NAME"] == row["answer"], "CONTINENT"].iloc[0]
            same = set(world.loc[world["CONTINENT"] == continent, "NAME"])
            assert set(choices) <= same  # distractors from the same continent
    # the demo's tiles lie on São Tomé: a plain point-in-polygon test agrees with every answer
    stp = world[world["NAME"] == "São Tomé and Príncipe"]
    assert len(stp) == 1
    for lon, lat in ((6.6747, 0.3987), (6.525, 0.04)):
        assert stp.geometry.iloc[0].distance(Point(lon, lat)) < 0.05
    countries = set(loc.loc[loc["template_id"].str.contains(".country."), "answer"])
    assert countries == {"São Tomé and Príncipe"}
    assert set(loc.loc[loc["template_id"].str.contains(".continent."), "answer"]) == {"Africa"}
    assert isinstance(world, gpd.GeoDataFrame)
