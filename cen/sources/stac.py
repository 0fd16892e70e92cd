"""Sentinel-2 L2A scenes from a STAC API (pystac-client) and their nine ChatEarthNet bands.

* Providers: Earth Search v1 (default, anonymous) and Microsoft Planetary Computer (asset hrefs
  signed through the optional ``planetary-computer`` package). Any STAC API URL can be given.
* :func:`search_scenes` searches by point or bbox, date range and cloud cover (the filters are
  also applied client-side, so a server without the query extension gives the same answer);
  :func:`pick_least_cloudy` picks the scene.
* :func:`read_scene` reads the nine bands B2, B3, B4, B5, B6, B7, B8, B11, B12 for one grid
  window from the COGs (windowed range requests; 20 m bands matched to the 10 m grid by
  coordinates, nearest) and removes the processing-baseline >= 04.00 offset of +1000 DN unless the
  provider already did (Earth Search's ``earthsearch:boa_offset_applied``): never twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from cen import tiling
from cen.tiling import Grid

EARTH_SEARCH_URL = "https://earth-search.aws.element84.com/v1"
PLANETARY_COMPUTER_URL = "https://planetarycomputer.microsoft.com/api/stac/v1"
COLLECTION = "sentinel-2-l2a"

PROVIDERS: dict[str, dict[str, Any]] = {
    "earth-search": {
        "url": EARTH_SEARCH_URL,
        "assets": {"B02": "blue", "B03": "green", "B04": "red", "B05": "rededge1", "B06": "rededge2",
                   "B07": "rededge3", "B08": "nir", "B11": "swir16", "B12": "swir22", "SCL": "scl"},
    },
    "planetary-computer": {
        "url": PLANETARY_COMPUTER_URL,
        "assets": {b: b for b in (*tiling.S2_BANDS, "SCL")},
    },
}
"""STAC API endpoint and band -> asset key per provider."""

BOA_OFFSET = 1000
"""DN offset added from processing baseline 04.00 (2022-01-25) on."""
OFFSET_BASELINE = (4, 0)
SCL_CLOUD = (3, 8, 9, 10)
"""Scene classification classes counted as cloud or shadow (shadow, medium, high, cirrus)."""


class StacError(RuntimeError):
    """A STAC search or scene read failed; the message names the endpoint, item or asset."""


class NoSceneError(StacError):
    """No scene matches the search (place, dates, cloud cover)."""


@dataclass
class SceneRead:
    """Bands of one scene on a grid, with provenance."""

    stack: np.ndarray
    """``(len(bands), H, W)`` uint16 reflectance DN (x 10 000), offset removed if there was one."""
    bands: tuple[str, ...]
    item_id: str
    datetime: str
    processing_baseline: str | None
    offset_applied: bool
    """True when the +1000 offset has been removed (by the provider or here)."""
    offset_removed_here: bool
    cloud_cover: float | None
    hrefs: dict[str, str] = field(default_factory=dict)
    scl_cloud_fraction: float | None = None


def open_catalog(provider: str = "earth-search", url: str | None = None):
    """A pystac-client ``Client`` for a provider (or any STAC API ``url``).

    Planetary Computer needs ``pip install planetary-computer`` to sign asset hrefs.
    """
    from pystac_client import Client
    from pystac_client.exceptions import APIError

    if provider not in PROVIDERS:
        raise ValueError(f"unknown STAC provider {provider!r}; expected one of {', '.join(PROVIDERS)}")
    modifier = None
    if provider == "planetary-computer":
        try:
            import planetary_computer
        except ImportError as exc:
            raise ImportError("the Planetary Computer provider needs `pip install planetary-computer` "
                              "(signs the asset hrefs)") from exc
        modifier = planetary_computer.sign_inplace
    endpoint = url or PROVIDERS[provider]["url"]
    try:
        return Client.open(endpoint, modifier=modifier)
    except (APIError, OSError, ValueError) as exc:
        raise StacError(f"{endpoint}: cannot open STAC API ({exc})") from exc


def _parse_baseline(value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    try:
        major, minor = str(value).split(".")[:2]
        return int(major), int(minor)
    except ValueError:
        raise StacError(f"unreadable s2:processing_baseline {value!r}") from None


def _props(item) -> Mapping[str, Any]:
    return item.properties if hasattr(item, "properties") else item["properties"]


def search_scenes(
    catalog, *, bbox: Sequence[float] | None = None, point: tuple[float, float] | None = None,
    dates: str | Sequence[str] = "2020-01-01/2020-12-31", max_cloud: float = 20.0,
    collection: str = COLLECTION, limit: int = 100, method: str = "GET",
) -> list:
    """Scenes (pystac Items) intersecting a point or bbox within ``dates`` and under ``max_cloud`` %.

    ``dates`` is ``"start/end"`` or ``(start, end)`` (ISO dates). Filters are re-applied here on
    the returned items (date range, cloud cover, footprint), so a plain static API behaves the same.
    """
    from pystac_client.exceptions import APIError
    from shapely.geometry import Point, box, shape

    if (bbox is None) == (point is None):
        raise ValueError("give exactly one of bbox=(w, s, e, n) or point=(lon, lat)")
    start, end = (dates.split("/") if isinstance(dates, str) else dates)
    where = box(*bbox) if bbox is not None else Point(*point)
    kwargs: dict[str, Any] = dict(collections=[collection], datetime=f"{start}/{end}", max_items=limit, method=method,
                                  query={"eo:cloud_cover": {"lt": max_cloud}})
    if bbox is not None:
        kwargs["bbox"] = list(bbox)
    else:
        kwargs["intersects"] = where.__geo_interface__
    try:
        items = list(catalog.search(**kwargs).items())
    except (APIError, OSError) as exc:
        raise StacError(f"STAC search failed ({exc})") from exc
    lo, hi = np.datetime64(start), np.datetime64(end) + np.timedelta64(1, "D")
    keep = []
    for it in items:
        props = _props(it)
        when = np.datetime64(str(props.get("datetime")).replace("Z", ""))
        cloud = props.get("eo:cloud_cover")
        if not (lo <= when < hi) or (cloud is not None and cloud >= max_cloud):
            continue
        if it.geometry is not None and not shape(it.geometry).intersects(where):
            continue
        keep.append(it)
    return keep


def pick_least_cloudy(items: Sequence) -> Any:
    """The item with the lowest ``eo:cloud_cover`` (ties: the newest, then the smallest id)."""
    if not items:
        raise NoSceneError("no Sentinel-2 scene matches the place, dates and cloud cover")
    return sorted(items, key=lambda it: (_props(it).get("eo:cloud_cover", 100.0),
                                         -np.datetime64(str(_props(it)["datetime"]).replace("Z", "")).astype("datetime64[s]").astype(int),
                                         it.id))[0]


def band_hrefs(item, provider: str = "earth-search", bands: Sequence[str] = tiling.S2_BANDS) -> dict[str, str]:
    """``{band: href}`` of an item's band assets; raises :class:`StacError` naming a missing asset."""
    keys = PROVIDERS[provider]["assets"]
    out = {}
    for band in bands:
        key = keys.get(band, band)
        if key not in item.assets:
            raise StacError(f"item {item.id}: no asset {key!r} for band {band}; assets: {', '.join(item.assets)}")
        out[band] = item.assets[key].href
    return out


def offset_to_remove(item) -> tuple[int, bool]:
    """``(dn_offset, provider_already_removed)`` for an item, from its processing baseline."""
    props = _props(item)
    baseline = _parse_baseline(props.get("s2:processing_baseline"))
    already = bool(props.get("earthsearch:boa_offset_applied", False))
    if baseline is None or baseline < OFFSET_BASELINE or already:
        return 0, already
    return BOA_OFFSET, False


def remove_offset(stack: np.ndarray, offset: int, nodata: int = 0) -> np.ndarray:
    """Subtract ``offset`` from valid DNs (nodata stays nodata; valid results clipped to >= 1)."""
    if offset == 0:
        return stack
    valid = stack != nodata
    out = np.where(valid, np.clip(stack.astype(np.int32) - offset, 1, None), nodata)
    return out.astype(stack.dtype)


def scene_grid(item, lon: float, lat: float, size: int = tiling.TILE_SIZE) -> Grid:
    """A ``size``-px 10 m grid centred on a point in the item's UTM CRS (``proj:epsg``)."""
    epsg = _props(item).get("proj:epsg") or _props(item).get("proj:code")
    crs = f"EPSG:{epsg}" if isinstance(epsg, int) else epsg
    return tiling.utm_grid(lon, lat, width=size, crs=crs)


def read_scene(
    item, grid: Grid, *, provider: str = "earth-search", bands: Sequence[str] = tiling.S2_BANDS,
    with_scl: bool = True,
) -> SceneRead:
    """Read ``bands`` of ``item`` on ``grid`` (windowed COG reads) and remove the offset once."""
    props = _props(item)
    hrefs = band_hrefs(item, provider, bands)
    try:
        stack = tiling.read_band_stack(hrefs, grid, bands)
    except tiling.TilingError as exc:
        raise StacError(f"item {item.id}: {exc}") from exc
    offset, already = offset_to_remove(item)
    stack = remove_offset(stack, offset)
    scl_fraction = None
    scl_key = PROVIDERS[provider]["assets"].get("SCL")
    if with_scl and scl_key in item.assets:
        try:
            scl = tiling.read_on_grid(item.assets[scl_key].href, grid, src_nodata=0, dst_nodata=0)
            valid = scl != 0
            scl_fraction = float(np.isin(scl[valid], SCL_CLOUD).mean()) if valid.any() else None
        except tiling.TilingError:
            scl_fraction = None
    return SceneRead(
        stack=stack, bands=tuple(bands), item_id=item.id, datetime=str(props.get("datetime")),
        processing_baseline=props.get("s2:processing_baseline"), offset_applied=bool(already or offset),
        offset_removed_here=bool(offset), cloud_cover=props.get("eo:cloud_cover"), hrefs=hrefs,
        scl_cloud_fraction=scl_fraction,
    )
