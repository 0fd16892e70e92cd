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
    with pytest.raises(ValueError, match="source must be 'demo', 'stac', 'chatearthnet' or 'raster', got 'zenodo'"):
        sources.fetch("zenodo", tmp_path)
    assert not any(tmp_path.iterdir())


def test_fetch_raster_tiles_a_label_raster(tmp_path):
    from cen import paths

    crop = paths.DATA_DIR / "worldcover" / "ESA_WorldCover_10m_2021_v200_N00E006_SaoTome_Map.tif"
    fetched = sources.fetch("raster", tmp_path, raster=crop, bbox=(6.5, 0.1, 6.6, 0.2), min_labelled=0.5)
    assert len(fetched.tiles) == 25 and fetched.failures.empty  # 1200 x 1200 px -> 5 x 5 tiles
    assert tiling.read_tiles_table(tmp_path / "tiles.parquet")["tile_id"].tolist() == fetched.tiles["tile_id"].tolist()
    with pytest.raises(ValueError, match="source 'raster' needs raster="):
        sources.fetch("raster", tmp_path / "none")
