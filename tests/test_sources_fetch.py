"""cen.sources.fetch: one data source by name, as notebook 01 runs it."""

from __future__ import annotations

import pytest

from cen import sources, tiling


def test_fetch_demo_writes_the_tiles_table(tmp_path):
    fetched = sources.fetch("demo", tmp_path, smoke=True)
    assert fetched.captions is None and fetched.completeness is None and fetched.skipped.empty
    assert tiling.tile_counts(fetched.tiles)["n_label_tiles"] == 3
    assert tiling.read_tiles_table(tmp_path / "tiles.parquet")["tile_id"].tolist() == fetched.tiles["tile_id"].tolist()


def test_fetch_rejects_an_unknown_source(tmp_path):
    with pytest.raises(ValueError, match="source must be 'demo', 'stac' or 'chatearthnet', got 'zenodo'"):
        sources.fetch("zenodo", tmp_path)
    assert not any(tmp_path.iterdir())
