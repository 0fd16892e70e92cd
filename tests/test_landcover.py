import numpy as np
import pytest

from cen import landcover as lc


def test_eleven_classes_with_unique_codes_indices_and_colours():
    assert len(lc.LAND_COVER_CLASSES) == 11
    assert [c.index for c in lc.CLASSES] == list(range(12))
    assert len({c.worldcover_code for c in lc.CLASSES}) == 12
    assert len({c.colour for c in lc.CLASSES}) == 12
    assert len({c.worldcover_colour for c in lc.CLASSES}) == 12
    assert sorted(lc.WORLDCOVER_CODES) == [10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 100]


def test_names_per_prompt_style():
    assert lc.class_names("gpt35")[2] == "developed area"
    assert lc.class_names("gpt35")[7] == "bare land"
    assert lc.class_names("gpt4v")[2] == "developed"
    assert lc.class_names("gpt4v")[7] == "bare"
    with pytest.raises(ValueError, match="name style"):
        lc.class_names("gpt5")


def test_code_index_round_trip_all_classes():
    codes = np.array([[0, 10, 20, 30], [40, 50, 60, 70], [80, 90, 95, 100]], dtype=np.uint8)
    idx = lc.codes_to_indices(codes)
    assert idx.tolist() == [[0, 3, 4, 5], [6, 2, 7, 8], [1, 9, 10, 11]]
    assert np.array_equal(lc.indices_to_codes(idx), codes)


def test_unknown_code_is_named_with_position():
    codes = np.full((4, 4), 10, dtype=np.uint8)
    codes[2, 3] = 15
    with pytest.raises(ValueError, match=r"unknown WorldCover code 15 at \(2, 3\)"):
        lc.codes_to_indices(codes)


def test_colour_round_trip_both_palettes():
    rng = np.random.default_rng(0)
    idx = rng.integers(0, 12, size=(3, 64, 64), dtype=np.uint8)
    for palette in ("chatearthnet", "worldcover"):
        rgb = lc.indices_to_colour(idx, palette)
        assert rgb.shape == (3, 64, 64, 3) and rgb.dtype == np.uint8
        assert np.array_equal(lc.colour_to_indices(rgb, palette), idx)


def test_chatearthnet_colours_match_release():
    rgb = lc.indices_to_colour(np.arange(12, dtype=np.uint8)[None])
    assert rgb[0, 2].tolist() == [255, 0, 0]  # developed area
    assert rgb[0, 3].tolist() == [0, 192, 0]  # tree
    assert rgb[0, 4].tolist() == [200, 170, 120]  # shrub


def test_unknown_colour_is_named_with_position():
    rgb = lc.indices_to_colour(np.zeros((5, 5), dtype=np.uint8))
    rgb[1, 4] = (1, 2, 3)
    with pytest.raises(ValueError, match=r"unknown label colour \(1, 2, 3\) at pixel \(1, 4\)"):
        lc.colour_to_indices(rgb)


def test_bad_index_input():
    with pytest.raises(ValueError, match=r"label value 12 at \(0, 1\)"):
        lc.validate_indices(np.array([[0, 12]]))
    with pytest.raises(TypeError, match="integers"):
        lc.validate_indices(np.zeros((2, 2), dtype=float))
    with pytest.raises(ValueError, match="RGB image"):
        lc.colour_to_indices(np.zeros((4, 4), dtype=np.uint8))


@pytest.mark.parametrize("cog", ["committed crop over HTTP", "full tile"])
def test_worldcover_colour_table_matches_real_cog(cog, http_server, request):
    """The official palette equals the colour table inside real WorldCover COGs: the committed crops
    (read over the local Range server, as a remote COG is read) or the full tile in ../shared/data."""
    import shutil

    import rasterio

    from cen import paths
    from cen.tiling import GDAL_HTTP_ENV, gdal_path

    if cog == "full tile":
        sources = [request.getfixturevalue("shared_data") / "esa-worldcover" / "ESA_WorldCover_10m_2020_v100_N00E006_Map.tif"]
    else:
        sources = sorted((paths.DATA_DIR / "worldcover").glob("ESA_WorldCover_*.tif"))
        assert len(sources) == 3
        for src in sources:
            shutil.copy(src, http_server.root / src.name)
        sources = [f"{http_server.url}/{src.name}" for src in sources]
    for path in sources:
        with rasterio.Env(**GDAL_HTTP_ENV), rasterio.open(gdal_path(path)) as src:
            cmap = src.colormap(1)
        for code, rgba in lc.worldcover_colour_table().items():
            assert cmap[code][:3] == rgba[:3], (path, code)
    if cog != "full tile":
        assert any(r.range for r in http_server.requests)  # read as a remote COG, by byte ranges


def test_regions_follow_algorithm_1():
    assert lc.REGIONS == ("whole", "top left", "top right", "bottom left", "bottom right", "middle")
    assert lc.REGION_SLUGS[lc.BOTTOM_LEFT] == "bottom_left"
    assert lc.PARTS == lc.REGIONS[1:]
    boxes = lc.region_boxes(5, 7)
    assert list(boxes) == list(lc.PARTS)
    assert boxes["top right"] == (0, 2, 3, 7) and boxes["bottom left"] == (2, 5, 0, 3)
    assert boxes["middle"] == (1, 3, 1, 5)
    # the four quadrants tile the map exactly once
    cover = np.zeros((5, 7), int)
    for name in lc.PARTS[:4]:
        r0, r1, c0, c1 = boxes[name]
        cover[r0:r1, c0:c1] += 1
    assert (cover == 1).all()


def test_class_synonyms_one_list_for_every_reader():
    from cen import textstats
    from cen.verify import lexicon

    assert lexicon.CLASS_SYNONYMS is lc.CLASS_SYNONYMS
    assert lexicon.REGIONS is lc.REGIONS
    names = lc.class_names("gpt35")
    for word, idx in (("town", 2), ("field", 6), ("sand", 7), ("glacier", 8)):
        assert lexicon.class_of(word) == idx
        assert word in textstats.CLASS_WORDS[names[idx]]
    assert sum(map(len, lc.CLASS_SYNONYMS.values())) == len(
        {w for ws in lc.CLASS_SYNONYMS.values() for w in ws})
