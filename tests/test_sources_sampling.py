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
