"""Global sampling plans: reproducible, over land, stratified, regional."""

from __future__ import annotations

import pytest
import shapely

from cen.sources import sampling


def test_plan_is_reproducible_over_land_and_stratified():
    plan = sampling.sample_plan(60, seed=7)
    again = sampling.sample_plan(60, seed=7)
    assert plan.equals(again)
    assert not plan.equals(sampling.sample_plan(60, seed=8))
    assert len(plan) == 60 and plan.sample_id.is_unique and plan.crs.to_epsg() == 4326
    land = shapely.union_all(sampling.land_polygons().geometry.values)
    assert shapely.contains_xy(land, plan.lon.values, plan.lat.values).all()
    per = plan.groupby("stratum").size()
    # every continent gets a sample; Asia (largest land area) gets the most; no Antarctica
    assert set(per.index) == {"Africa", "Asia", "Europe", "North America", "Oceania", "South America"}
    assert per.idxmax() == "Asia" and per.min() >= 1
    assert (plan.continent == plan.stratum).all() and plan.country.notna().all()
    assert plan.lat.between(-60, 84).all()


def test_allocation_is_proportional_with_minimum_one():
    import pandas as pd

    alloc = sampling._allocate(10, pd.Series({"a": 90.0, "b": 9.0, "c": 1.0}))
    assert alloc.sum() == 10 and alloc["c"] == 1 and alloc["a"] > alloc["b"]


def test_regional_plans():
    box_plan = sampling.sample_plan(12, seed=1, bbox=(-10, 35, 5, 44))  # Iberia
    assert box_plan.lon.between(-10, 5).all() and box_plan.lat.between(35, 44).all()
    assert set(box_plan.country) <= {"Spain", "Portugal", "France", "Morocco", "Algeria", "Andorra"}
    by_country = sampling.sample_plan(5, seed=1, countries=["Portugal", "Brazil"], stratify="country")
    assert set(by_country.country) == {"Portugal", "Brazil"}


def test_bad_plans():
    with pytest.raises(ValueError, match="unknown country"):
        sampling.sample_plan(3, countries=["Atlantis"])
    with pytest.raises(ValueError, match="no land"):
        sampling.sample_plan(3, bbox=(-30, -10, -20, 0))  # South Atlantic
    with pytest.raises(ValueError, match="positive"):
        sampling.sample_plan(0)


def test_stratify_by_worldcover_class_over_http(http_server):
    """Candidates on São Tomé labelled from the committed WorldCover crop served on 127.0.0.1."""
    import shutil

    import geopandas as gpd
    import numpy as np
    import pandas as pd
    import rasterio

    from cen import landcover, paths
    from cen.sources import worldcover

    crop = paths.DATA_DIR / "worldcover" / "ESA_WorldCover_10m_2020_v100_N00E006_SaoTome_Map.tif"
    shutil.copyfile(crop, http_server.root / crop.name)
    rng = np.random.default_rng(3)
    lon, lat = rng.uniform(6.46, 6.76, 400), rng.uniform(0.01, 0.41, 400)
    cand = gpd.GeoDataFrame({"sample_id": [f"c{i:03d}" for i in range(400)], "lon": lon, "lat": lat,
                             "continent": "Africa"}, geometry=gpd.points_from_xy(lon, lat), crs="EPSG:4326")
    hrefs = {"N00E006": f"{http_server.url}/{crop.name}"}
    codes = worldcover.codes_at_points(lon, lat, hrefs=hrefs)
    with rasterio.open(crop) as src:
        expected = np.array([v[0] for v in src.sample(zip(lon, lat))])
    np.testing.assert_array_equal(codes, expected)
    picked = sampling.stratify_by_class(cand, 12, seed=0, hrefs=hrefs)
    assert len(picked) == 12 and (picked.worldcover_code > 0).all()
    counts = picked.worldcover_class.value_counts()
    # balanced: tree cover dominates the island but gets no more than any other class; a class
    # with fewer picks than the largest has run out of candidates
    available = pd.Series(codes[codes > 0]).map({c.worldcover_code: c.worldcover_name for c in landcover.CLASSES}).value_counts()
    assert available["Tree cover"] > 10 * counts["Tree cover"]
    for name, k in counts.items():
        assert k >= counts.max() - 1 or k == available[name]  # the last round is partial
    assert len(counts) >= 4
    assert picked.equals(sampling.stratify_by_class(cand, 12, seed=0, hrefs=hrefs))
    assert set(picked.stratum.str.split("/").str[0]) == {"Africa"}


def test_plot_plan_returns_figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    import pandas as pd

    plan = sampling.sample_plan(6, seed=0)
    tiles = pd.DataFrame({"source": ["a", "a", "b"], "lon": [1.0, 2.0, 3.0], "lat": [4.0, 5.0, 6.0]})
    captions = pd.DataFrame({"tile_col": [1, 1, 2], "tile_row": [1, 1, 2], "lon": [10.0, 10.0, 20.0],
                             "lat": [30.0, 30.0, 40.0]})
    fig = sampling.plot_plan(plan, tiles=tiles, captions=captions)
    (ax,) = fig.axes
    assert ax.get_title() == "Tiles and sampling plan"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "sampling plan", "a (2)", "b (1)", "release tiles (2)"]
    offsets = [c.get_offsets() for c in ax.collections[-4:]]
    np.testing.assert_allclose(offsets[0], plan[["lon", "lat"]].to_numpy())
    np.testing.assert_allclose(offsets[3], [[10.0, 30.0], [20.0, 40.0]])
    assert ax.get_xlim() == (-180, 180) and ax.get_ylim() == (-60, 85)
    only_plan = sampling.plot_plan(plan)
    assert [t.get_text() for t in only_plan.axes[0].get_legend().get_texts()] == ["sampling plan"]
    plt.close("all")
