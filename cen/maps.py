"""Where the samples are: an interactive folium map and static maps on Natural Earth boundaries.

Input is any table with one row per sample and either ``lon``/``lat`` columns (degrees, WGS84)
or a ``geometry`` column of footprints (their centroids are used): the demo's ``tiles.parquet``
(joined with captions), the ChatEarthNet release table (footprints decoded from tile names) or
a STAC-built dataset.

The interactive map works offline by default: Leaflet and Leaflet.markercluster are inlined
from the ``xstatic-leaflet`` and ``xstatic-leaflet-markercluster`` packages (the heat-map
plugin from folium itself) and the basemap is the committed Natural Earth country outlines
instead of web tiles, so the HTML file opens without internet. ``offline=False`` gives folium's
usual CDN links and OpenStreetMap tiles. All sample text (captions, ids, class names, layer
names) is HTML-escaped before it reaches the page.
"""

from __future__ import annotations

import base64
import html
import io
import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
from branca.element import Element, Template
from folium.elements import JSCSSMixin
from folium.map import Layer
from folium.plugins import HeatMap, MarkerCluster

from cen import places
from cen.tables import write_bytes

NATURAL_EARTH = places.NATURAL_EARTH_110M
"""Natural Earth 1:110m Admin 0 countries (public domain), committed with the demo data."""

LAYER_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                 "#bcbd22", "#17becf")

MapMode = Literal["auto", "markers", "cluster", "heat"]


# ----------------------------------------------------------------------------- input tables


def sample_points(df: pd.DataFrame, *, lon_col: str = "lon", lat_col: str = "lat", source: str = "samples") -> gpd.GeoDataFrame:
    """The samples as a point GeoDataFrame (EPSG:4326), keeping all columns.

    Uses ``lon_col``/``lat_col`` when present, else the centroids of a ``geometry`` column.
    Raises ``KeyError`` when neither is there and ``ValueError`` naming the first row whose
    coordinates are missing or out of range.
    """
    if lon_col in df.columns and lat_col in df.columns:
        lon = pd.to_numeric(df[lon_col], errors="coerce").to_numpy(dtype=float)
        lat = pd.to_numeric(df[lat_col], errors="coerce").to_numpy(dtype=float)
    elif "geometry" in df.columns:
        geoms = gpd.GeoSeries(df["geometry"], crs=getattr(df, "crs", None) or "EPSG:4326")
        if geoms.crs is not None and not geoms.crs.equals("EPSG:4326"):
            geoms = geoms.to_crs("EPSG:4326")
        empty = geoms.isna() | geoms.is_empty
        cent = geoms.where(~empty).representative_point()
        lon = np.where(empty, np.nan, cent.x.to_numpy())
        lat = np.where(empty, np.nan, cent.y.to_numpy())
    else:
        raise KeyError(f"{source}: needs columns {lon_col!r} and {lat_col!r} or a 'geometry' column "
                       f"(columns: {', '.join(map(str, df.columns))})")
    bad = ~(np.isfinite(lon) & np.isfinite(lat) & (np.abs(lon) <= 180) & (np.abs(lat) <= 90))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{source}: row {i} (index {df.index[i]!r}) has no valid lon/lat "
                         f"({lon[i]!r}, {lat[i]!r}); expected degrees within ±180/±90")
    plain = pd.DataFrame(df.drop(columns=["geometry"], errors="ignore")).copy()
    plain["lon"], plain["lat"] = lon, lat
    return gpd.GeoDataFrame(plain, geometry=gpd.points_from_xy(lon, lat), crs="EPSG:4326")


countries = places.world_110m
"""Natural Earth 1:110m countries (for drawing; :mod:`cen.places` counts on the 1:10m set)."""

locate = places.locate
assign_countries = places.assign_countries
region_counts = places.region_counts
coverage_counts = places.coverage_counts
NO_CONTINENT = places.NO_CONTINENT


# ----------------------------------------------------------------------------- interactive map


def _escape(value: Any) -> str:
    """HTML-escape for text that also travels inside a JS string literal."""
    return html.escape(str(value), quote=True).replace("`", "&#96;").replace("$", "&#36;")


def _thumbnail_uri(path: Any, size: int = 128) -> str | None:
    if path is None or (isinstance(path, float) and np.isnan(path)) or not str(path):
        return None
    from PIL import Image

    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            im.thumbnail((size, size))
            buf = io.BytesIO()
            im.save(buf, format="PNG")
    except (OSError, ValueError):
        return None  # a missing or unreadable thumbnail does not stop the map
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _classes_text(value: Any) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    if isinstance(value, (list, tuple, np.ndarray, pd.Series)):
        return ", ".join(map(str, value))
    if isinstance(value, dict):
        return ", ".join(f"{k} {v:.0%}" if isinstance(v, float) else f"{k} {v}" for k, v in value.items())
    return str(value)


def popup_html(row: pd.Series, *, text_col: str | None, id_col: str | None, classes_col: str | None,
               thumbnail_col: str | None, layer_col: str | None, max_chars: int = 1200) -> str:
    """The popup of one sample: id, layer, position, classes, thumbnail and caption, all escaped."""
    parts = []
    if id_col and id_col in row.index:
        parts.append(f"<b>{_escape(row[id_col])}</b>")
    meta = []
    if layer_col and layer_col in row.index:
        meta.append(_escape(row[layer_col]))
    meta.append(f"{row['lat']:.4f}°, {row['lon']:.4f}°")
    parts.append(f"<small>{' · '.join(meta)}</small>")
    if classes_col and classes_col in row.index:
        classes = _classes_text(row[classes_col])
        if classes:
            parts.append(f"<br><i>classes:</i> {_escape(classes)}")
    if thumbnail_col and thumbnail_col in row.index:
        uri = _thumbnail_uri(row[thumbnail_col])
        if uri:
            parts.append(f'<br><img src="{uri}" width="128" height="128" alt="thumbnail">')
    if text_col and text_col in row.index and isinstance(row[text_col], str):
        text = row[text_col]
        if len(text) > max_chars:
            text = text[:max_chars].rsplit(" ", 1)[0] + " …"
        parts.append(f'<p style="max-height:14em;overflow:auto;margin:.4em 0 0">{_escape(text)}</p>')
    return "".join(parts)


class PointLayer(Layer):
    """Many samples as one Leaflet layer: circle markers (optionally clustered) built in a JS loop.

    One JSON array instead of one JS object per marker keeps maps of thousands of samples small.
    Rows of ``points`` are ``[lat, lon, popup_html or ""]``.
    """

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        var {{ this.get_name() }} = {% if this.cluster %}L.markerClusterGroup({chunkedLoading: true, maxClusterRadius: 50}){% else %}L.featureGroup(){% endif %};
        (function () {
            var pts = {{ this.points_json }};
            for (var i = 0; i < pts.length; i++) {
                var p = pts[i];
                var m = L.circleMarker([p[0], p[1]], {radius: 6, weight: 1, color: "#222",
                    fillColor: {{ this.colour_json }}, fillOpacity: 0.85, className: "cen-sample"});
                if (p[2]) { m.bindPopup(p[2], {maxWidth: 380}); }
                {{ this.get_name() }}.addLayer(m);
            }
        })();
        {% endmacro %}
        """
    )

    def __init__(self, points: list[list[Any]], name: str, colour: str, cluster: bool, show: bool = True):
        super().__init__(name=name, overlay=True, control=True, show=show)
        self._name = "PointLayer"
        self.cluster = cluster
        self.n_points = len(points)
        self.points_json = _js_json(points)
        self.colour_json = json.dumps(colour)
        if cluster:
            self.add_child(_MarkerClusterAssets())


class _MarkerClusterAssets(JSCSSMixin):
    """Links Leaflet.markercluster from folium's CDN unless the map inlines it (offline)."""

    default_js = list(MarkerCluster.default_js)
    default_css = list(MarkerCluster.default_css)

    def __init__(self) -> None:
        super().__init__()
        self._name = "MarkerClusterAssets"


DETAIL_ZOOM = 6
"""From this zoom on, the offline basemap draws the 1:10m coastlines near the samples."""

DETAIL_MAX_CELLS = 400
"""Detail is drawn around at most this many 1° cells holding samples (global sets stay light)."""


class _GeoJsonBackground(Layer):
    """Country outlines drawn with plain ``L.geoJSON`` (no tiles, no jQuery): the offline basemap.

    Natural Earth 1:110m for the world; from zoom :data:`DETAIL_ZOOM` on, Natural Earth 1:10m
    (islands kept) around the samples, so zoomed-in markers sit on the land they are on. The
    outlines live in their own pane below the markers (``leaflet-cenBasemap-pane``).
    """

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        var {{ this.get_name() }} = (function () {
            var map = {{ this._parent.get_name() }};
            if (!map.getPane("cenBasemap")) { map.createPane("cenBasemap").style.zIndex = 250; }
            var style = {color: "#888", weight: 0.6, fillColor: "#f2efe9", fillOpacity: 1};
            var opts = {interactive: false, style: style, pane: "cenBasemap"};
            var coarse = L.geoJSON({{ this.data_json }}, opts);
            var detail = L.geoJSON({{ this.detail_json }}, opts);
            var group = L.layerGroup([coarse]);
            var hasDetail = {{ this.has_detail }};
            function sw() {
                if (!group._map || !hasDetail) { return; }
                var zoomed = group._map.getZoom() >= {{ this.detail_zoom }};
                if (zoomed && !group.hasLayer(detail)) { group.removeLayer(coarse); group.addLayer(detail); }
                if (!zoomed && !group.hasLayer(coarse)) { group.removeLayer(detail); group.addLayer(coarse); }
            }
            group.on("add", function () { group._map.on("zoomend", sw); sw(); });
            group.on("remove", function (e) { e.target._map && e.target._map.off("zoomend", sw); });
            return group;
        })();
        {% endmacro %}
        """
    )

    def __init__(self, data: dict, detail: dict | None = None,
                 name: str = "countries (Natural Earth; 1:10m near the samples when zoomed in)"):
        super().__init__(name=name, overlay=False, control=True, show=True)
        self._name = "GeoJsonBackground"
        self.data_json = _js_json(data)
        detail = detail or {"type": "FeatureCollection", "features": []}
        self.has_detail = "true" if detail["features"] else "false"
        self.detail_json = _js_json(detail)
        self.detail_zoom = DETAIL_ZOOM


def _detail_geojson(lon: np.ndarray, lat: np.ndarray, pad_deg: float = 2.0) -> dict:
    """The 1:10m countries clipped to boxes (``pad_deg`` around each 1° cell with samples); empty
    when the samples fill more than :data:`DETAIL_MAX_CELLS` cells."""
    from shapely import box as make_box
    from shapely.ops import unary_union

    empty = {"type": "FeatureCollection", "features": []}
    if len(lon) == 0:
        return empty
    cells = np.unique(np.stack([np.floor(lon), np.floor(lat)], axis=1), axis=0)
    if len(cells) > DETAIL_MAX_CELLS:
        return empty
    area = unary_union([make_box(max(x - pad_deg, -180), max(y - pad_deg, -90), min(x + 1 + pad_deg, 180),
                                 min(y + 1 + pad_deg, 90)) for x, y in cells])
    world = places.world_10m()
    near = world[world.intersects(area)]
    if near.empty:
        return empty
    clipped = gpd.GeoDataFrame(geometry=near.geometry.intersection(area).values, crs="EPSG:4326")
    clipped = clipped.explode(index_parts=False)
    clipped = clipped[clipped.geom_type == "Polygon"]
    data = json.loads(clipped.to_json(drop_id=True))
    for feat in data["features"]:
        feat["properties"] = {}
        feat["geometry"]["coordinates"] = _round(feat["geometry"]["coordinates"], 3)
    return data


def _js_json(value: Any) -> str:
    """JSON for embedding inside a ``<script>`` element."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).replace("</", "<\\/")


@lru_cache(maxsize=1)
def _countries_geojson() -> dict:
    world = countries()[["NAME", "geometry"]].copy()
    world["geometry"] = world.geometry.simplify(0.05)
    data = json.loads(world.to_json(drop_id=True))
    for feat in data["features"]:
        feat["properties"] = {}
        feat["geometry"]["coordinates"] = _round(feat["geometry"]["coordinates"])
    return data


def _round(coords: Any, decimals: int = 2) -> Any:
    if isinstance(coords, (int, float)):
        return round(coords, decimals)
    return [_round(c, decimals) for c in coords]


def offline_assets() -> dict[str, str]:
    """Leaflet, Leaflet.markercluster and Leaflet.heat sources for inlining (keys: ``css``, ``js``).

    Leaflet's CSS image references are turned into data URIs so nothing is fetched.
    """
    try:
        import xstatic.pkg.leaflet as xs_leaflet
        import xstatic.pkg.leaflet_markercluster as xs_cluster
    except ImportError as exc:  # pragma: no cover - both are dependencies
        raise ImportError("offline maps need the packages xstatic-leaflet and xstatic-leaflet-markercluster "
                          "(pip install xstatic-leaflet xstatic-leaflet-markercluster), or use offline=False") from exc
    leaflet_dir = Path(xs_leaflet.BASE_DIR)
    cluster_dir = Path(xs_cluster.BASE_DIR)
    heat_js = Path(folium.__file__).parent / "templates" / "leaflet_heat.min.js"

    def data_uri(match: re.Match) -> str:
        image = leaflet_dir / match.group(1)
        if not image.exists():
            return match.group(0)
        return "url(data:image/png;base64," + base64.b64encode(image.read_bytes()).decode("ascii") + ")"

    leaflet_css = re.sub(r"url\((images/[\w.-]+\.png)\)", data_uri, (leaflet_dir / "leaflet.css").read_text())
    css = "\n".join([leaflet_css, (cluster_dir / "MarkerCluster.css").read_text(),
                     (cluster_dir / "MarkerCluster.Default.css").read_text()])
    js = "\n;\n".join([(leaflet_dir / "leaflet.js").read_text(), (cluster_dir / "leaflet.markercluster.js").read_text(),
                       heat_js.read_text()])
    return {"css": css, "js": js, "leaflet_version": str(getattr(xs_leaflet, "VERSION", "?"))}


def _strip_cdn_assets(element: Any) -> None:
    for child in [element, *element._children.values()]:
        if isinstance(child, JSCSSMixin):
            child.default_js = []
            child.default_css = []
        if child is not element:
            _strip_cdn_assets(child)


def folium_map(
    samples: pd.DataFrame,
    *,
    text_col: str | None = "text",
    layer_col: str | None = "split",
    id_col: str | None = "tile_id",
    classes_col: str | None = None,
    thumbnail_col: str | None = None,
    mode: MapMode = "auto",
    max_markers: int = 2000,
    offline: bool = True,
    seed: int = 0,
    source: str = "samples",
) -> folium.Map:
    """Interactive map of the samples, one toggleable layer per value of ``layer_col``.

    ``mode``: ``markers`` (one circle marker with a popup per sample), ``cluster`` (the same in
    marker clusters), ``heat`` (a heat map per layer, no popups), or ``auto``: markers up to 300
    samples, clusters up to ``max_markers``, and beyond that a heat map per layer plus clustered
    markers with popups for a seeded random subset of ``max_markers`` samples. The numbers drawn
    are in ``m.cen_counts`` (``{"samples", "markers", "heat_points", "layers"}``).
    Popups show the id, layer, position, classes, thumbnail (image path column) and caption.
    """
    pts = sample_points(samples, source=source)
    if layer_col is not None and layer_col not in pts.columns:
        raise KeyError(f"{source}: no layer column {layer_col!r} (columns: {', '.join(map(str, pts.columns))})")
    for col in (text_col, id_col, classes_col, thumbnail_col):
        if col is not None and col not in pts.columns and col not in ("text", "tile_id"):
            raise KeyError(f"{source}: no column {col!r} (columns: {', '.join(map(str, pts.columns))})")
    n = len(pts)
    if mode == "auto":
        mode_used = "markers" if n <= 300 else "cluster" if n <= max_markers else "heat+cluster"
    elif mode in ("markers", "cluster", "heat"):
        mode_used = mode
    else:
        raise ValueError(f"unknown map mode {mode!r}; expected auto, markers, cluster or heat")

    m = folium.Map(location=[20, 0], zoom_start=2, tiles=None if offline else "OpenStreetMap",
                   control_scale=True, prefer_canvas=False,
                   minZoom=1, maxZoom=18)  # passed to L.map itself: clusters need maxZoom when there are no tiles
    if offline:
        _GeoJsonBackground(_countries_geojson(), _detail_geojson(pts["lon"].to_numpy(), pts["lat"].to_numpy())).add_to(m)

    layers = pts[layer_col].astype(str) if layer_col else pd.Series(["samples"] * n, index=pts.index)
    marker_rows = np.arange(n)
    if mode_used == "heat+cluster":
        marker_rows = np.sort(np.random.default_rng(seed).choice(n, size=max_markers, replace=False))
    elif mode_used == "heat":
        marker_rows = np.array([], dtype=int)
    marker_mask = np.zeros(n, dtype=bool)
    marker_mask[marker_rows] = True

    counts = {"samples": n, "markers": 0, "heat_points": 0, "layers": 0}
    for i, value in enumerate(sorted(layers.unique())):
        colour = LAYER_COLOURS[i % len(LAYER_COLOURS)]
        in_layer = (layers == value).to_numpy()
        name = f"{_escape(value)} ({int(in_layer.sum()):,})"
        counts["layers"] += 1
        if mode_used in ("heat", "heat+cluster"):
            heat = pts.loc[in_layer, ["lat", "lon"]].to_numpy().round(5).tolist()
            HeatMap(heat, name=f"{name} density", radius=12, blur=15, min_opacity=0.3).add_to(m)
            counts["heat_points"] += len(heat)
        rows = pts[in_layer & marker_mask]
        if len(rows):
            points = [[float(r["lat"]), float(r["lon"]),
                       popup_html(r, text_col=text_col, id_col=id_col, classes_col=classes_col,
                                  thumbnail_col=thumbnail_col, layer_col=layer_col)]
                      for _, r in rows.iterrows()]
            label = name if mode_used != "heat+cluster" else f"{name}: {len(points):,} sampled markers"
            PointLayer(points, label, colour, cluster=mode_used != "markers").add_to(m)
            counts["markers"] += len(points)
    folium.LayerControl(collapsed=False).add_to(m)
    if n:
        lat0, lon0, lat1, lon1 = pts["lat"].min(), pts["lon"].min(), pts["lat"].max(), pts["lon"].max()
        pad = 0.5 if (lat1 - lat0) < 1 and (lon1 - lon0) < 1 else 0.0
        m.fit_bounds([[lat0 - pad, lon0 - pad], [lat1 + pad, lon1 + pad]])
    if offline:
        _strip_cdn_assets(m)
        assets = offline_assets()
        root = m.get_root()
        root.header.add_child(Element(f"<style>{assets['css']}</style>"), name="cen_offline_css")
        root.header.add_child(Element(f"<script>{assets['js']}</script>"), name="cen_offline_js")
    m.cen_counts = counts
    m.cen_mode = mode_used
    return m


def coverage_map(samples: pd.DataFrame, *, layer_col: str | None = "split", mode: MapMode = "auto",
                 max_markers: int = 2000, offline: bool = True, source: str = "samples") -> folium.Map:
    """:func:`folium_map` of a sample table (:func:`cen.catalog.load_samples`): popups with
    ``text`` and ``tile_id``, plus ``classes`` and ``thumbnail`` when those columns hold values."""
    has = {col: col if col in samples.columns and samples[col].notna().any() else None
           for col in ("classes", "thumbnail")}
    return folium_map(samples, text_col="text", layer_col=layer_col, id_col="tile_id", classes_col=has["classes"],
                      thumbnail_col=has["thumbnail"], mode=mode, max_markers=max_markers, offline=offline,
                      source=source)


def notebook_html(m: folium.Map, height: int = 520) -> str:
    """The map as one ``<iframe srcdoc>`` for a notebook output: self-contained (offline maps need
    no network) and without folium's "Trust Notebook" notice; display it with
    ``IPython.display.HTML(maps.notebook_html(m))`` or :func:`show`."""
    if "cen_offline_js" in m.get_root().header._children:
        _strip_cdn_assets(m)
    page = html.escape(m.get_root().render(), quote=True)
    return (f'<div class="cen-map"><iframe srcdoc="{page}" style="width:100%;height:{int(height)}px;border:1px solid #ccc" '
            'title="interactive map"></iframe></div>')


def show(m: folium.Map, height: int = 520):
    """Display an interactive map in a notebook (see :func:`notebook_html`); returns the display object."""
    from IPython.display import HTML

    return HTML(notebook_html(m, height=height))


def save_html(m: folium.Map, path: str | Path) -> Path:
    """Write the map as one HTML file (atomically); offline maps need nothing else."""
    if "cen_offline_js" in m.get_root().header._children:
        _strip_cdn_assets(m)  # plugins added after folium_map() also lose their CDN links
    return write_bytes(Path(path), m.get_root().render().encode("utf-8"))


# ----------------------------------------------------------------------------- static maps


def static_map(
    samples: pd.DataFrame,
    *,
    kind: Literal["points", "hexbin"] = "points",
    hue: str | None = "split",
    gridsize: int = 60,
    title: str | None = None,
    ax=None,
    source: str = "samples",
):
    """World map of the samples on Natural Earth 110m countries; returns the Figure.

    ``kind="points"`` draws one dot per sample coloured by ``hue``; ``kind="hexbin"`` draws
    sample density (log colour scale) for large datasets. Equirectangular (plate carrée) axes.
    """
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    pts = sample_points(samples, source=source)
    if ax is None:
        fig, ax = plt.subplots(figsize=(11, 5.6))
    else:
        fig = ax.figure
    countries().plot(ax=ax, color="#eeeeee", edgecolor="#999999", linewidth=0.4)
    if kind == "points":
        if hue is not None and hue in pts.columns:
            for i, (value, group) in enumerate(sorted(pts.groupby(pts[hue].astype(str)), key=lambda kv: kv[0])):
                ax.scatter(group["lon"], group["lat"], s=10, color=LAYER_COLOURS[i % len(LAYER_COLOURS)],
                           edgecolor="black", linewidth=0.2, label=f"{value} ({len(group):,})", zorder=3, gid="cen-samples")
            ax.legend(loc="lower left", fontsize="small", title=hue)
        else:
            ax.scatter(pts["lon"], pts["lat"], s=10, color=LAYER_COLOURS[0], edgecolor="black", linewidth=0.2, zorder=3,
                       gid="cen-samples")
    elif kind == "hexbin":
        hb = ax.hexbin(pts["lon"], pts["lat"], gridsize=gridsize, extent=(-180, 180, -90, 90), mincnt=1,
                       norm=LogNorm(), cmap="viridis", zorder=3, gid="cen-density")
        fig.colorbar(hb, ax=ax, shrink=0.7, label="samples per cell")
    else:
        raise ValueError(f"unknown static map kind {kind!r}; expected 'points' or 'hexbin'")
    ax.set_xlim(-180, 180)
    ax.set_ylim(-90, 90)
    ax.set_aspect("equal")
    ax.set_xlabel("longitude (°)")
    ax.set_ylabel("latitude (°)")
    ax.set_title(title or f"{len(pts):,} samples")
    ax.text(1.0, -0.1, "Boundaries: Natural Earth (public domain)", transform=ax.transAxes, ha="right",
            fontsize="x-small", color="#666")
    return fig


def save_figure(fig, path: str | Path, dpi: int = 150) -> Path:
    """Save a matplotlib figure (format from the suffix: .png, .svg, .pdf) atomically."""
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower()
    if fmt not in {"png", "svg", "pdf"}:
        raise ValueError(f"{path}: unsupported figure format {fmt!r}; use .png, .svg or .pdf")
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=dpi, bbox_inches="tight")
    return write_bytes(path, buf.getvalue())
