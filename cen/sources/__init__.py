"""Where tiles come from: the published ChatEarthNet release, Sentinel-2 L2A via STAC, ESA WorldCover
COGs, global sampling plans, a user's own land-cover raster, and the embedded demo (all through
the same readers).

Submodules are imported on use (``from cen.sources import worldcover``) so that optional clients
(pystac-client, planetary-computer) load only when needed. :func:`fetch` runs one source by name
(notebook 01's ``source`` parameter).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

SOURCES = ("demo", "stac", "chatearthnet", "raster")
"""The data sources of notebook 01 (``source`` parameter)."""


@dataclass
class Fetched:
    """What :func:`fetch` produced: ``tiles`` (tiles GeoDataFrame, ``None`` for the release),
    ``skipped`` (sampling plan points without a usable scene: ``sample_id``, ``lon``, ``lat``,
    ``status``, ``reason``; empty unless ``stac``), ``captions`` (release caption records, only
    ``chatearthnet``), ``completeness`` (:class:`cen.sources.chatearthnet.Completeness` of the
    release folder, only ``chatearthnet``) and ``failures`` (tiles that could not be read or hold
    invalid codes: ``tile_id``, ``stage``, ``error``; only ``raster``)."""

    tiles: Any = None
    skipped: Any = None
    captions: Any = None
    completeness: Any = None
    failures: Any = None


def fetch(
    source: str,
    workdir: str | Path,
    *,
    smoke: bool = False,
    n_samples: int = 8,
    seed: int = 0,
    region: Sequence[float] | None = None,
    countries: Sequence[str] | None = None,
    dates: str = "2020-01-01/2020-12-31",
    max_cloud: float = 20.0,
    stac_provider: str = "earth-search",
    stac_url: str | None = None,
    worldcover_url: str | None = None,
    worldcover_year: int = 2020,
    release_dir: str | Path = "../build/release",
    release_images: bool = False,
    release_kw: Mapping[str, Any] | None = None,
    raster: str | Path | None = None,
    bbox: Sequence[float] | None = None,
    min_labelled: float = 0.9,
    grid: str = "native",
    product: str | Path | None = None,
) -> Fetched:
    """Fetch tiles from one of :data:`SOURCES` into ``workdir`` (notebook 01's parameters).

    * ``demo``: :func:`cen.sources.demo.build_demo_tiles` (offline; ``smoke`` shrinks it);
    * ``stac``: a :func:`cen.sources.sampling.sample_plan` of ``n_samples`` points (``seed``,
      ``region`` box, ``countries``) built by :func:`cen.sources.sampling.build_samples` from the
      ``stac_provider`` catalogue (or ``stac_url``) and WorldCover (``worldcover_url`` mirror);
    * ``chatearthnet``: :func:`cen.sources.chatearthnet.download_release` into ``release_dir``
      (``release_images``: the ~38 GB image archives too; ``release_kw``: further arguments, e.g.
      ``base_url``), then its completeness and caption records;
    * ``raster``: :func:`cen.sources.raster.tile_raster` of the label raster ``raster`` (path or
      URL) over ``bbox`` (lon/lat, ``None``: all of it) with ``min_labelled``, ``grid`` and
      ``product`` (class map), resuming a previous run in ``workdir``.

    Demo, stac and raster write ``{workdir}/tiles.parquet``. Raises ``ValueError`` for another
    source (or ``raster`` without a raster).
    """
    import pandas as pd

    if source not in SOURCES:
        raise ValueError(f"source must be 'demo', 'stac', 'chatearthnet' or 'raster', got {source!r}")
    workdir = Path(workdir)
    if source == "raster":
        from cen.sources import raster as raster_source

        if raster is None:
            raise ValueError("source 'raster' needs raster= a label raster (path, http(s):// or s3:// URL)")
        run = raster_source.tile_raster(raster, workdir, bbox=bbox, min_labelled=min_labelled, grid=grid,
                                        product=product, progress=not smoke)
        return Fetched(tiles=run.tiles, skipped=pd.DataFrame(), failures=run.failures)
    if source == "demo":
        from cen.sources import demo

        tiles = demo.build_demo_tiles(workdir, smoke=smoke, year=worldcover_year)
        return Fetched(tiles=tiles, skipped=pd.DataFrame())
    if source == "stac":
        from cen.sources import sampling, stac

        plan = sampling.sample_plan(n_samples, seed=seed, bbox=region, countries=countries)
        catalog = stac.open_catalog(stac_provider, url=stac_url)
        tiles, skipped = sampling.build_samples(plan, workdir, catalog=catalog, provider=stac_provider, dates=dates,
                                                max_cloud=max_cloud, worldcover_year=worldcover_year,
                                                worldcover_url=worldcover_url)
        return Fetched(tiles=tiles, skipped=skipped)
    from cen.sources import chatearthnet

    chatearthnet.download_release(release_dir, images=release_images, **dict(release_kw or {}))
    completeness = chatearthnet.check_completeness(release_dir)
    return Fetched(skipped=pd.DataFrame(), captions=chatearthnet.load_captions(release_dir), completeness=completeness)
