"""Notebook 02 (tiling and statistics) through the smoke report's recorded numbers.

The expected values are derived here from the smoke demo's label GeoTIFFs with plain numpy
(WorldCover codes, array slices), not through ``cen.stats``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

NB = "02_tiling_and_statistics"
CODES = [80, 50, 10, 20, 30, 40, 60, 70, 90, 95, 100]
"""WorldCover codes of the eleven classes in ChatEarthNet index order 1 … 11 (water, built-up, tree
cover, shrubland, grassland, cropland, bare, snow and ice, herbaceous wetland, mangroves, moss)."""


@pytest.fixture(scope="module")
def smoke_labels(tmp_path_factory):
    """The smoke demo's label tiles (WorldCover codes), built again outside the report."""
    import rasterio

    from cen.sources import demo
    from cen.tables import resolve_path

    wd = tmp_path_factory.mktemp("nb02_demo")
    demo.build_demo_tiles(wd, smoke=True)
    tiles = pd.read_parquet(wd / "tiles.parquet")
    maps = []
    for path in tiles["label_path"].dropna():
        with rasterio.open(resolve_path(path, wd)) as src:
            maps.append(src.read(1))
    return tiles, maps


def test_nb02_statistics_of_the_demo_tiles(smoke_report, smoke_labels):
    from cen.landcover import class_names

    rec = smoke_report[NB]
    tiles, maps = smoke_labels
    assert rec["eligibility"] == "7 tiles: 3 eligible, 4 excluded (no_label: 4)"
    assert (rec["n_tiles"], rec["n_label_tiles"], rec["n_image_tiles"]) == (7, 3, 4) == (
        len(tiles), len(maps), int(tiles["image_path"].notna().sum()))
    assert rec["n_eligible"] == rec["n_stats_rows"] == 3 and rec["n_failed"] == 0
    present = [set(np.unique(m)) - {0} for m in maps]
    assert rec["n_classes_present"] == len(set().union(*present)) == 9
    assert rec["mean_classes_per_tile"] == pytest.approx(np.mean([len(p) for p in present])) == pytest.approx(25 / 3)
    names = class_names("gpt35")
    dominant = [names[1 + CODES.index(int(c))] for c in
                (max(CODES, key=lambda code: int((m == code).sum())) for m in maps)]
    assert rec["dominant_class"] == max(set(dominant), key=dominant.count) == "tree"
    assert rec["pixel_share_sum"] == pytest.approx(1.0)

    def empty_lines(m: np.ndarray) -> bool:  # a part with no class of >= 20 pixels
        h, w = m.shape
        parts = [m[:h // 2, :w // 2], m[:h // 2, w // 2:], m[h // 2:, :w // 2], m[h // 2:, w // 2:],
                 m[h // 4:3 * h // 4, w // 4:3 * w // 4]]
        return any(max(int((p == c).sum()) for c in CODES) < 20 for p in parts)

    assert rec["n_empty_region_lines"] == sum(map(empty_lines, maps)) == 0
    # every demo tile has several classes, so the release's first-appearance order of the GPT-4V
    # class block differs from the default's order by area on each of them
    assert rec["n_context_diff_modes"] == 3
    assert rec["compat"] is False and rec["stats_version"] == "2"
