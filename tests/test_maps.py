"""Coverage maps: point counts, per-country counts, escaping, offline HTML, and a real browser."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import geopandas as gpd
import matplotlib
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import box

from cen import maps

matplotlib.use("Agg")

XSS = '<script>window.__cenXss=1</script><img src=x onerror="window.__cenXss=2"> `${window.__cenXss=3}`'

SAMPLES = pd.DataFrame({
    "tile_id": ["munich", "lima", "kampala", "tokyo", "paris", "sydney"],
    "lon": [11.58, -77.04, 32.58, 139.69, 2.35, 151.21],
    "lat": [48.14, -12.05, 0.35, 35.69, 48.86, -33.87],
    "split": ["train", "train", "val", "test", "train", "val"],
    "text": [XSS, "Tree cover dominates.", "Water & developed area.", "Developed area.", "Crop.", "Water."],
    "classes": [["tree", "water"], ["tree"], ["water", "developed area"], ["developed area"], ["crop"], ["water"]],
})


def test_sample_points_from_lonlat_and_footprints():
    pts = maps.sample_points(SAMPLES)
    assert len(pts) == 6 and pts.crs.to_epsg() == 4326
    assert pts.geometry.x.tolist() == SAMPLES["lon"].tolist()
    foot = gpd.GeoDataFrame({"split": ["a", "b"]}, geometry=[box(10, 40, 12, 42), box(-5, -5, -3, -3)], crs="EPSG:4326")
    pts = maps.sample_points(foot)
    assert pts["lon"].tolist() == pytest.approx([11, -4]) and pts["lat"].tolist() == pytest.approx([41, -4])
    utm = foot.to_crs("EPSG:3857")
    assert maps.sample_points(utm)["lon"].tolist() == pytest.approx([11, -4])


def test_sample_points_bad_rows_named():
    bad = SAMPLES.copy()
    bad.loc[3, "lat"] = 95.0
    with pytest.raises(ValueError, match=r"tiles.parquet: row 3 .*lon/lat"):
        maps.sample_points(bad, source="tiles.parquet")
    with pytest.raises(KeyError, match="needs columns 'lon' and 'lat'"):
        maps.sample_points(SAMPLES.drop(columns=["lon"]))


def test_region_counts():
    counts = maps.region_counts(maps.sample_points(SAMPLES), by="split")
    cont = counts["continent"].set_index("continent")
    assert cont.loc["Europe", "total"] == 2 and cont.loc["Europe", "train"] == 2
    assert cont.loc["Oceania", "val"] == 1 and cont["total"].sum() == 6
    country = counts["country"].set_index("iso_a3")
    assert set(country.index) == {"DEU", "PER", "UGA", "JPN", "FRA", "AUS"}  # FRA, not Natural Earth's -99
    # a point just off the coast still finds its country; mid-ocean stays unassigned
    sea = pd.DataFrame({"lon": [-9.52, -30.0], "lat": [38.70, 0.0]})
    where = maps.assign_countries(maps.sample_points(sea))
    assert where["NAME"].tolist() == ["Portugal", "(none)"]


def test_locate_finds_small_islands_the_110m_set_has_not():
    from shapely.geometry import Point

    # São Tomé (the demo's WorldCover crop), Príncipe, Malta, Tonga, Barbados: none is in 1:110m
    lon = [6.73, 7.40, 14.45, -175.22, -59.55]
    lat = [0.33, 1.62, 35.90, -21.20, 13.15]
    coarse = maps.countries()
    assert not any(coarse.contains(Point(x, y)).any() for x, y in zip(lon, lat))
    found = maps.locate(lon, lat)
    assert found["country"].tolist() == ["São Tomé and Príncipe", "São Tomé and Príncipe", "Malta", "Tonga", "Barbados"]
    assert found["continent"].tolist() == ["Africa", "Africa", "Europe", "Oceania", "North America"]
    assert found["iso_a3"].tolist() == ["STP", "STP", "MLT", "TON", "BRB"] and found["on_land"].all()
    one = maps.locate(6.73, 0.33)
    assert (one.country, one.continent, one.iso_a3, one.on_land) == ("São Tomé and Príncipe", "Africa", "STP", True)
    # just off a coast: the nearest country within reach, marked as not on land; open sea: none
    off = maps.locate(6.40, 0.20)
    assert off.country == "São Tomé and Príncipe" and off.on_land is False
    assert maps.locate(-30.0, 0.0).country == "(none)"
    assert maps.locate(-9.35, 38.70, max_distance_deg=0.0).country == "Portugal"  # inside the polygon
    with pytest.raises(ValueError, match="point 1 has no valid lon/lat"):
        maps.locate([0.0, 200.0], [0.0, 0.0])
    with pytest.raises(ValueError, match="differ in length"):
        maps.locate([0.0, 1.0], [0.0])


def test_boundary_files_are_the_documented_ones():
    """The committed 1:10m file is the one data/README.md lists (sha256), and every polygon is valid."""
    from cen import datacard, paths, places

    readme = (paths.DATA_DIR / "README.md").read_text()
    digest = datacard.sha256(places.NATURAL_EARTH_10M)
    assert f"`{digest}` | `naturalearth/ne_10m_admin_0_countries.geojson.gz`" in readme
    world = places.world_10m()
    assert len(world) == 250 and world.geometry.is_valid.all() and not world.geometry.is_empty.any()
    assert places.NATURAL_EARTH_10M.stat().st_size < 3_000_000


def test_popup_escapes_everything():
    html_text = maps.popup_html(SAMPLES.assign(lat=SAMPLES.lat, lon=SAMPLES.lon).iloc[0], text_col="text",
                                id_col="tile_id", classes_col="classes", thumbnail_col=None, layer_col="split")
    assert "<script" not in html_text and "<img src=x" not in html_text
    assert "&lt;script&gt;" in html_text and "&#96;" in html_text and "&#36;{" in html_text
    assert "tree, water" in html_text


def _map_html(tmp_path: Path, samples: pd.DataFrame, **kw) -> tuple[Path, object]:
    m = maps.folium_map(samples, classes_col="classes", **kw)
    return maps.save_html(m, tmp_path / "map.html"), m


def test_folium_map_offline_html(tmp_path):
    path, m = _map_html(tmp_path, SAMPLES)
    text = path.read_text()
    assert m.cen_mode == "markers" and m.cen_counts == {"samples": 6, "markers": 6, "heat_points": 0, "layers": 3}
    # every asset is inline: no script or stylesheet is fetched from anywhere
    assert not re.findall(r'<script[^>]+src=|<link[^>]+href=', text)
    assert "tile.openstreetmap" not in text
    # three layers (test, train, val) with the sample counts in their names
    for name in ("test (1)", "train (3)", "val (2)"):
        assert name in text
    points = [json.loads(block) for block in re.findall(r"var pts = (\[.*?\]);\n", text)]
    assert sum(len(p) for p in points) == 6
    assert "<script>window.__cenXss" not in text and "&lt;script&gt;window.__cenXss" in text


def test_folium_map_layer_names_escaped(tmp_path):
    evil = SAMPLES.assign(split=['<b onmouseover="x">train</b>'] * 6)
    text = _map_html(tmp_path, evil)[0].read_text()
    assert "<b onmouseover" not in text
    names = [json.loads(n) for n in re.findall(r'("[^"]*\(6\)")\s*:', text)]  # the layer control's labels
    assert names == ["&lt;b onmouseover=&quot;x&quot;&gt;train&lt;/b&gt; (6)"]


def test_folium_map_scales_to_heat_and_sampled_markers(tmp_path):
    rng = np.random.default_rng(1)
    n = 5000
    many = pd.DataFrame({"tile_id": [f"t{i}" for i in range(n)], "lon": rng.uniform(-170, 170, n),
                         "lat": rng.uniform(-60, 70, n), "split": rng.choice(["train", "val"], n),
                         "text": ["caption"] * n, "classes": [["tree"]] * n})
    path, m = _map_html(tmp_path, many, max_markers=500)
    assert m.cen_mode == "heat+cluster"
    assert m.cen_counts == {"samples": n, "markers": 500, "heat_points": n, "layers": 2}
    text = path.read_text()
    assert text.count("L.heatLayer(") == 2 and text.count("L.markerClusterGroup(") == 2
    assert path.stat().st_size < 2_000_000


def test_folium_map_online_uses_cdn(tmp_path):
    text = _map_html(tmp_path, SAMPLES, offline=False, mode="cluster")[0].read_text()
    assert "leaflet.markercluster" in text and re.search(r'<script[^>]+src="https://', text)


def test_static_maps_written(tmp_path):
    fig = maps.static_map(SAMPLES, kind="points", hue="split")
    ax = fig.axes[0]
    drawn = [c for c in ax.collections if c.get_gid() == "cen-samples"]
    assert len(drawn) == 3 and sum(len(c.get_offsets()) for c in drawn) == 6
    png = maps.save_figure(fig, tmp_path / "map.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    fig = maps.static_map(SAMPLES, kind="hexbin", gridsize=30)
    density = [c for c in fig.axes[0].collections if c.get_gid() == "cen-density"][0]
    assert density.get_array().sum() == 6  # every sample falls in some hexagon
    svg = maps.save_figure(fig, tmp_path / "map.svg")
    assert svg.read_text().lstrip().startswith("<?xml") and "<svg" in svg.read_text()
    with pytest.raises(ValueError, match="unsupported figure format"):
        maps.save_figure(fig, tmp_path / "map.gif")
    assert not list(tmp_path.glob(".*.tmp"))


# ----------------------------------------------------------------------------- headless Chromium

PROBE_HEAD = ("<script>window.__cenErrors=[];window.addEventListener('error',function(e){"
              "window.__cenErrors.push(String(e.message)+' @'+e.filename+':'+e.lineno)});</script>")
PROBE_TAIL = """<script>window.addEventListener('load', function () { setTimeout(function () {
  var map = null;
  for (var k in window) { if (k.indexOf('map_') === 0 && window[k] instanceof L.Map) { map = window[k]; } }
  var popups = [];
  map.eachLayer(function (layer) {
    if (layer.getPopup && layer.getPopup()) {
      layer.openPopup();
      var el = layer.getPopup().getElement().querySelector('.leaflet-popup-content');
      popups.push({text: el.textContent, scripts: el.querySelectorAll('script,img[src="x"]').length});
    }
  });
  var out = document.createElement('pre');
  out.id = 'cen-probe';
  out.textContent = JSON.stringify({errors: window.__cenErrors, xss: window.__cenXss || null,
    markers: document.querySelectorAll('path.cen-sample').length,
    layers: document.querySelectorAll('.leaflet-control-layers-overlays label').length,
    countries: document.querySelectorAll('.leaflet-cenBasemap-pane path').length,
    basemapBelowMarkers: (function () {
      var base = document.querySelector('.leaflet-cenBasemap-pane'), over = document.querySelector('.leaflet-overlay-pane');
      return Number(getComputedStyle(base).zIndex) < Number(getComputedStyle(over).zIndex); })(),
    popups: popups});
  document.body.appendChild(out);
  map.closePopup();
}, 300); });</script>"""


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("headless browser test needs Chromium: apt-get install -y chromium (Debian) — not installed here")


def _run_chromium(binary: str, url: str, *extra: str) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="cen-chromium-") as profile:
        return subprocess.run(
            [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--no-first-run", f"--user-data-dir={profile}",
             "--window-size=1200,800", "--virtual-time-budget=4000", *extra, url],
            capture_output=True, text=True, timeout=90,
        )


def _probe(binary: str, path, tmp_path, tail: str) -> dict:
    """Load the map with the probe script injected; return what the probe reported from the page."""
    import html as html_module

    page = path.read_text().replace("<head>", "<head>" + PROBE_HEAD, 1).replace("</body>", tail + "</body>", 1)
    probe = tmp_path / "probe.html"
    probe.write_text(page)
    result = _run_chromium(binary, probe.as_uri(), "--dump-dom")
    found = re.search(r'<pre id="cen-probe">(.*?)</pre>', result.stdout, re.S)
    assert found, f"the map page did not finish loading in Chromium; stderr tail:\n{result.stderr[-2000:]}"
    return json.loads(html_module.unescape(found.group(1)))


def test_map_renders_in_headless_chromium(tmp_path, test_output_dir):
    binary = _chromium()
    path, _ = _map_html(tmp_path, SAMPLES)
    report = _probe(binary, path, tmp_path, PROBE_TAIL)
    assert report["errors"] == [], report["errors"]
    assert report["markers"] == 6 and report["layers"] == 3
    assert report["countries"] > 100  # the offline Natural Earth basemap drew
    assert report["basemapBelowMarkers"] is True
    assert report["xss"] is None  # the caption's script, onerror and template literal never ran
    assert len(report["popups"]) == 6 and all(p["scripts"] == 0 for p in report["popups"])
    assert any("<script>window.__cenXss=1</script>" in p["text"] for p in report["popups"]), report["popups"]

    shot = test_output_dir / "coverage_map_chromium.png"
    shot.unlink(missing_ok=True)
    _run_chromium(binary, path.as_uri(), f"--screenshot={shot}")
    assert shot.exists() and shot.stat().st_size > 10_000, "Chromium wrote no screenshot"
    from PIL import Image

    with Image.open(shot) as im:
        pixels = np.asarray(im.convert("RGB"))
    assert pixels.shape[:2] == (800, 1200) and len(np.unique(pixels.reshape(-1, 3), axis=0)) > 20  # not a blank page


def test_large_map_clusters_and_heat_in_headless_chromium(tmp_path, test_output_dir):
    binary = _chromium()
    rng = np.random.default_rng(2)
    n = 3000
    many = pd.DataFrame({"tile_id": [f"t{i}" for i in range(n)], "lon": rng.uniform(-120, 140, n),
                         "lat": rng.uniform(-40, 60, n), "split": rng.choice(["train", "val"], n),
                         "text": ["caption"] * n, "classes": [["tree"]] * n})
    path, m = _map_html(tmp_path, many, max_markers=400)
    assert m.cen_mode == "heat+cluster"
    probe_tail = PROBE_TAIL.replace("markers: document", "clusters: document.querySelectorAll('.marker-cluster').length, "
                                    "heat: document.querySelectorAll('canvas.leaflet-heatmap-layer').length, markers: document")
    report = _probe(binary, path, tmp_path, probe_tail)
    assert report["errors"] == [], report["errors"]
    assert report["clusters"] > 0 and report["heat"] == 2 and report["layers"] == 4  # 2 heat + 2 marker layers
    shot = test_output_dir / "coverage_map_heat_chromium.png"
    shot.unlink(missing_ok=True)
    _run_chromium(binary, path.as_uri(), f"--screenshot={shot}")
    assert shot.exists() and shot.stat().st_size > 10_000


def test_basemap_adds_detail_only_near_the_samples(tmp_path):
    near = maps._detail_geojson(np.array([6.7]), np.array([0.3]))
    assert 0 < len(near["features"]) < 20  # São Tomé and Príncipe, Equatorial Guinea, Gabon ... clipped
    assert maps._detail_geojson(np.array([-140.0]), np.array([-40.0]))["features"] == []  # open sea: nothing
    rng = np.random.default_rng(0)
    spread = maps._detail_geojson(rng.uniform(-180, 180, 2000), rng.uniform(-60, 70, 2000))
    assert spread["features"] == []  # a global set keeps the map light: 1:110m only
    text = maps.save_html(maps.folium_map(SAMPLES.iloc[[1]]), tmp_path / "m.html").read_text()
    assert "var hasDetail = true" in text and f">= {maps.DETAIL_ZOOM}" in text


def test_coverage_counts_leave_out_unassigned_and_open_ocean():
    sea = pd.concat([SAMPLES, pd.DataFrame({"lon": [-30.0], "lat": [0.0], "split": ["train"]})], ignore_index=True)
    counts = maps.region_counts(maps.sample_points(sea), by="split")
    assert "(none)" in set(counts["country"]["country"])
    assert maps.coverage_counts(counts) == {"n_countries": 6, "n_continents": 5}
    fake = {"country": pd.DataFrame({"country": ["France", "(none)"]}),
            "continent": pd.DataFrame({"continent": ["Europe", "Seven seas (open ocean)", "(none)"]})}
    assert maps.coverage_counts(fake) == {"n_countries": 1, "n_continents": 1}


def test_coverage_map_adds_classes_and_thumbnails_when_present(tmp_path):
    from PIL import Image

    thumb = tmp_path / "thumb.png"
    Image.new("RGB", (8, 8), (200, 10, 10)).save(thumb)
    m = maps.coverage_map(SAMPLES.assign(thumbnail=[str(thumb)] + [None] * 5), layer_col="split")
    text = m.get_root().render()
    uri = maps._thumbnail_uri(str(thumb))
    assert m.cen_mode == "markers" and m.cen_counts["markers"] == 6 and m.cen_counts["layers"] == 3
    assert text.count("classes:") == 6 and text.count(uri[22:]) == 1  # the thumbnail's base64 PNG
    bare = maps.coverage_map(SAMPLES.assign(classes=None, thumbnail=None), layer_col=None)
    text = bare.get_root().render()
    assert bare.cen_counts["layers"] == 1 and "classes:" not in text and uri[22:] not in text
