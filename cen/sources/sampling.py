"""Global sampling plans and the per-sample pipeline (Sentinel-2 L2A scene + WorldCover labels).

* :func:`sample_plan`: ``n`` points over land, stratified by continent (allocation proportional
  to land area, at least one per continent), uniform in area within each stratum (longitude
  uniform, sine of latitude uniform, rejection on Natural Earth land polygons), reproducible from
  ``seed``. Optional region: a ``(west, south, east, north)`` box or a list of countries.
* :func:`plot_plan`: a plan (and fetched tiles, release places) on a world map.
* :func:`stratify_by_class`: from an oversampled plan, pick points balanced over continent x
  WorldCover class (the class under each point read from the WorldCover COGs).
* :func:`build_samples`: for each planned point, the least-cloudy scene in the date range, the nine
  bands and the WorldCover labels on the same 256-px 10 m UTM grid, written as image GeoTIFF,
  label GeoTIFF and the release's colour PNGs, plus one row of the tiles table with full
  provenance. Finished samples are skipped on re-runs; failures become recorded skips with
  a reason (nothing already written is lost).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from cen import paths, tiling
from cen.tables import atomic_path, relative_to_workdir, resolve_path_columns

NATURAL_EARTH = paths.DATA_DIR / "naturalearth" / "ne_110m_admin_0_countries.shp"
EXCLUDED_CONTINENTS = ("Antarctica", "Seven seas (open ocean)")
"""WorldCover covers -60 .. 84 degrees latitude; Antarctica and open-ocean islands are left out."""


def land_polygons(countries: Sequence[str] | None = None):
    """Natural Earth 110 m countries (EPSG:4326) with ``continent`` and ``name`` columns."""
    import geopandas as gpd

    world = gpd.read_file(NATURAL_EARTH)[["NAME", "CONTINENT", "geometry"]].rename(
        columns={"NAME": "name", "CONTINENT": "continent"})
    world = world[~world["continent"].isin(EXCLUDED_CONTINENTS)]
    if countries:
        unknown = sorted(set(countries) - set(world["name"]))
        if unknown:
            raise ValueError(f"unknown country name(s) {unknown} (Natural Earth NAME, e.g. 'Portugal')")
        world = world[world["name"].isin(countries)]
    return world.reset_index(drop=True)


def _allocate(n: int, weights: pd.Series) -> pd.Series:
    """Largest-remainder allocation of ``n`` over strata, at least one each when ``n`` allows."""
    base = pd.Series(1 if n >= len(weights) else 0, index=weights.index)
    rest = n - int(base.sum())
    share = weights / weights.sum() * rest
    alloc = base + np.floor(share).astype(int)
    remainder = (share - np.floor(share)).sort_values(ascending=False)
    for key in remainder.index[: n - int(alloc.sum())]:
        alloc[key] += 1
    return alloc


def sample_plan(
    n: int, *, seed: int = 0, bbox: Sequence[float] | None = None, countries: Sequence[str] | None = None,
    stratify: str = "continent",
):
    """``n`` reproducible sample points over land as a GeoDataFrame.

    Columns: ``sample_id``, ``lon``, ``lat``, ``continent``, ``country``, ``stratum``, ``geometry``.
    """
    import geopandas as gpd
    import shapely
    from shapely.geometry import box

    if n <= 0:
        raise ValueError(f"sample count must be positive, got {n}")
    land = land_polygons(countries)
    if bbox is not None:
        land = gpd.clip(land, box(*bbox))
        land = land[~land.geometry.is_empty]
    if land.empty:
        raise ValueError(f"no land in the requested region (bbox={bbox}, countries={countries})")
    if stratify not in ("continent", "country"):
        raise ValueError(f"stratify must be 'continent' or 'country', got {stratify!r}")
    column = "name" if stratify == "country" else "continent"
    area = land.to_crs("EPSG:6933").area  # equal-area, for proportional allocation
    weights = area.groupby(land[column]).sum().sort_index()
    alloc = _allocate(n, weights)
    rng = np.random.default_rng(seed)
    rows = []
    for stratum, k in alloc.items():
        if k == 0:
            continue
        part = land[land[column] == stratum]
        geom = shapely.union_all(part.geometry.values)
        w, s, e, nn = geom.bounds
        got: list[tuple[float, float]] = []
        while len(got) < k:
            m = max(64, 8 * k)
            lon = rng.uniform(w, e, m)
            lat = np.degrees(np.arcsin(rng.uniform(np.sin(np.radians(s)), np.sin(np.radians(nn)), m)))
            inside = shapely.contains_xy(geom, lon, lat)
            got += list(zip(lon[inside], lat[inside]))
        for lon_i, lat_i in got[:k]:
            rows.append((stratum, float(lon_i), float(lat_i)))
    plan = pd.DataFrame(rows, columns=["stratum", "lon", "lat"])
    pts = gpd.GeoDataFrame(plan, geometry=gpd.points_from_xy(plan.lon, plan.lat), crs="EPSG:4326")
    joined = gpd.sjoin(pts, land[["name", "continent", "geometry"]], how="left", predicate="within")
    joined = joined[~joined.index.duplicated()]
    pts["country"] = joined["name"].values
    pts["continent"] = joined["continent"].values
    pts.insert(0, "sample_id", [f"s{seed:04d}_{i:05d}" for i in range(len(pts))])
    return pts[["sample_id", "lon", "lat", "continent", "country", "stratum", "geometry"]]


def plot_plan(plan, tiles=None, captions=None):
    """World map (Natural Earth 110 m countries) of a sampling plan, with the centres of a tiles
    table's tiles (one colour per ``source``) and the distinct places of release captions
    (``tile_col``, ``tile_row``, ``lon``, ``lat``; :func:`cen.sources.chatearthnet.load_captions`)
    when given. Returns the ``matplotlib.figure.Figure``."""
    import matplotlib.pyplot as plt

    from cen import datacard

    fig, ax = plt.subplots(figsize=(10, 5))
    datacard.world_countries().plot(ax=ax, color="#e8e8e8", edgecolor="#999999", linewidth=0.3)
    ax.scatter(plan.lon, plan.lat, s=18, marker="x", color="black", label="sampling plan")
    if tiles is not None:
        for source, part in tiles.groupby("source"):
            ax.scatter(part.lon, part.lat, s=30, label=f"{source} ({len(part)})")
    if captions is not None:
        places = captions.drop_duplicates(["tile_col", "tile_row"])
        ax.scatter(places.lon, places.lat, s=2, color="tab:red", label=f"release tiles ({len(places)})")
    ax.set_xlim(-180, 180)
    ax.set_ylim(-60, 85)
    ax.legend(loc="lower left", fontsize=8)
    ax.set_title("Tiles and sampling plan")
    return fig


# --- per-sample pipeline ---------------------------------------------------------------------

def _done_path(out_dir: Path, sample_id: str) -> Path:
    return out_dir / f"{sample_id}.row.json"


def build_sample(
    sample_id: str, lon: float, lat: float, out_dir: str | Path, *, catalog, provider: str = "earth-search",
    dates: str = "2020-01-01/2020-12-31", max_cloud: float = 20.0, worldcover_year: int = 2020,
    worldcover_url: str | None = None, size: int = tiling.TILE_SIZE, max_nodata: float = 0.5,
    bands: Sequence[str] = tiling.S2_BANDS,
) -> dict:
    """One sample: scene search -> nine bands + WorldCover on one grid -> files + one tiles row.

    Returns the row (``status`` ``ok``) or ``{"sample_id", "status": "skipped", "reason"}``.
    A finished sample (its ``{sample_id}.row.json`` exists) is returned from disk.
    """
    from cen.sources import stac, worldcover

    out_dir = Path(out_dir)
    done = _done_path(out_dir, sample_id)
    if done.exists():
        return json.loads(done.read_text())
    try:
        item = stac.pick_least_cloudy(stac.search_scenes(catalog, point=(lon, lat), dates=dates, max_cloud=max_cloud))
        grid = stac.scene_grid(item, lon, lat, size)
        scene = stac.read_scene(item, grid, provider=provider, bands=bands)
        nodata = tiling.nodata_fraction(scene.stack, 0)
        if nodata >= 1.0:
            raise stac.StacError(f"scene {item.id} has no valid pixels at lon={lon:.4f}, lat={lat:.4f}")
        if nodata > max_nodata:
            raise stac.StacError(f"scene {item.id}: {nodata:.0%} of the tile is nodata (limit {max_nodata:.0%})")
        kw = {"base_url": worldcover_url} if worldcover_url else {}
        labels = worldcover.read_worldcover(grid, year=worldcover_year, **kw)
        if labels.nodata_fraction > max_nodata:
            raise worldcover.WorldCoverError(f"WorldCover is {labels.nodata_fraction:.0%} nodata on this tile")
    except Exception as exc:  # noqa: BLE001 - every failure becomes a recorded skip with its reason
        from cen.sources.stac import StacError
        from cen.sources.worldcover import WorldCoverError

        if not isinstance(exc, (StacError, WorldCoverError, tiling.TilingError)):
            raise
        return {"sample_id": sample_id, "lon": lon, "lat": lat, "status": "skipped",
                "reason": f"{type(exc).__name__}: {exc}"}
    tile = tiling.Tile(f"{sample_id}_{scene.item_id}", scene.item_id, tiling.Window(0, 0, size, size), grid.crs,
                       grid.transform, size, size, datetime=scene.datetime)
    row = tiling.tile_record(tile)
    row.update(tiling.write_image_tile(out_dir, tile, scene.stack, bands=bands, tags={
        "s2_item_id": scene.item_id, "datetime": scene.datetime, "processing_baseline": scene.processing_baseline,
        "offset_applied": scene.offset_applied}))
    row.update(tiling.write_label_tile(out_dir, tile, labels.codes, product=labels.product))
    has_rgb = set(tiling.BAND_GROUPS["rgb"]) <= set(bands)
    rgb8 = tiling.band_group_to_uint8(scene.stack, "rgb", bands) if has_rgb else None
    row.update(
        source=f"stac:{provider}", split=tiling.assign_split(tile.tile_id), label_product=labels.product,
        label_tiles=",".join(labels.tiles), s2_item_id=scene.item_id, processing_baseline=scene.processing_baseline,
        offset_applied=scene.offset_applied, nodata_fraction=nodata,
        flags=tiling.quality_flags(labels=labels.codes, image=scene.stack, image8=rgb8),
        **tiling.tile_eligibility(labels=labels.codes, image8=rgb8, label_nodata=worldcover.NODATA),
        provenance=json.dumps({
            "kind": "stac+worldcover", "sample_id": sample_id, "sample_lon": lon, "sample_lat": lat,
            "provider": provider, "item_id": scene.item_id, "cloud_cover": scene.cloud_cover,
            "scl_cloud_fraction": scene.scl_cloud_fraction, "band_hrefs": scene.hrefs,
            "offset_removed_here": scene.offset_removed_here, "worldcover_hrefs": list(labels.hrefs),
            "worldcover_missing_tiles": list(labels.missing), "resampling": "nearest (by coordinates)",
            "dates": dates, "max_cloud": max_cloud,
        }, sort_keys=True),
        status="ok",
    )
    row["geometry"] = row["geometry"].wkt
    for col in tiling.PATH_COLUMNS:  # the finished-sample record survives a moved workdir
        if isinstance(row.get(col), str):
            row[col] = relative_to_workdir(row[col], out_dir.parent)
    with atomic_path(done) as tmp:
        tmp.write_text(json.dumps(row, default=str))
    return row


def build_samples(
    plan, workdir: str | Path, *, catalog, progress: bool = True, **kwargs,
) -> tuple[object, pd.DataFrame]:
    """Run :func:`build_sample` over a plan (``sample_id``, ``lon``, ``lat``); write ``tiles.parquet``.

    Returns ``(tiles GeoDataFrame, skipped DataFrame)``; skips are also written to
    ``{workdir}/samples_skipped.csv``. Re-running continues where a previous run stopped.
    """
    workdir = Path(workdir)
    out_dir = workdir / "tiles"
    records = list(plan[["sample_id", "lon", "lat"]].itertuples(index=False))
    results = (build_sample(rec.sample_id, float(rec.lon), float(rec.lat), out_dir, catalog=catalog, **kwargs)
               for rec in tqdm(records, desc="samples", disable=not progress))
    return write_sample_results(results, workdir)


def write_sample_results(results: Iterable[Mapping], workdir: str | Path) -> tuple[object, pd.DataFrame]:
    """Split per-sample results into ``{workdir}/tiles.parquet`` (status ok) and
    ``{workdir}/samples_skipped.csv`` (everything else, with the reason); return both tables."""
    from shapely import wkt

    workdir = Path(workdir)
    rows, skipped = [], []
    for row in results:
        if row.get("status") == "ok":
            row = dict(row)
            if isinstance(row.get("geometry"), str):
                row["geometry"] = wkt.loads(row["geometry"])
            rows.append(row)
        else:
            skipped.append(row)
    frame = resolve_path_columns(tiling.tiles_frame(rows), workdir, tiling.PATH_COLUMNS)
    tiling.write_tiles_table(workdir / "tiles.parquet", frame)
    skipped_df = pd.DataFrame(skipped, columns=["sample_id", "lon", "lat", "status", "reason"])
    with atomic_path(workdir / "samples_skipped.csv") as tmp:
        skipped_df.to_csv(tmp, index=False)
    return frame, skipped_df



def stratify_by_class(candidates, n: int, *, seed: int = 0, by: Sequence[str] = ("continent",), **worldcover_kw):
    """Pick ``n`` of ``candidates`` balanced over (``by`` columns x WorldCover class at the point).

    Reads the WorldCover code under every candidate (:func:`cen.sources.worldcover.codes_at_points`,
    keyword arguments ``year``, ``base_url``, ``hrefs``), drops nodata points, then takes strata in
    seeded round-robin order so rare classes get as many samples as common ones while they last.
    Adds ``worldcover_code``, ``worldcover_class`` and sets ``stratum`` to ``"<by...>/<class>"``.
    """
    from cen import landcover
    from cen.sources import worldcover

    cand = candidates.copy()
    cand["worldcover_code"] = worldcover.codes_at_points(cand["lon"].values, cand["lat"].values, **worldcover_kw)
    cand = cand[cand["worldcover_code"] != worldcover.NODATA]
    if cand.empty:
        raise ValueError("no candidate point falls on WorldCover data")
    names = {c.worldcover_code: c.worldcover_name for c in landcover.CLASSES}
    cand["worldcover_class"] = cand["worldcover_code"].map(names)
    cand["stratum"] = cand[list(by)].astype(str).agg("/".join, axis=1) + "/" + cand["worldcover_class"]
    rng = np.random.default_rng(seed)
    cand = cand.assign(_r=rng.random(len(cand))).sort_values(["_r"])
    cand["_rank"] = cand.groupby("stratum").cumcount()
    order = rng.permutation(cand["stratum"].unique())
    cand["_s"] = cand["stratum"].map({s: i for i, s in enumerate(order)})
    picked = cand.sort_values(["_rank", "_s"]).head(n).drop(columns=["_r", "_rank", "_s"])
    return picked.sort_values("sample_id").reset_index(drop=True)
