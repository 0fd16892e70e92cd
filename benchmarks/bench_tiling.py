"""Benchmark ``cen tiles raster`` on the full ESA WorldCover tile N00E006 (36,000 x 36,000 px).

Each run is its own process (``python -m cen.cli tiles raster ...``), so its wall time and peak
RSS (``os.wait4``) are its own:

1. ours, from the local file: first run, then the same command again (finished strips skipped);
2. ours, over a local Range HTTP server (``tests/localserver.py``, GDAL ``/vsicurl/``): first
   run, then again;
3. the baseline in the same run: a plain rasterio whole-read (the full band in memory, then cut
   into the same padded 256-px tiles, the same eligibility and the same label files), which has
   nothing to resume, so its second run costs what the first did.

The full tile comes from ``../shared/data``; where that is not beside this checkout the
benchmark says so and uses the committed São Tomé crop (3,840 x 5,040 px), as ``--quick`` does.

Goals (RESULT lines): peak RSS < 1 GB from disk and over HTTP; a second run < 10 % of the first
(disk and HTTP); ours at >= 0.8x the whole-read baseline's tiles/s; ours at < 0.5x its peak RSS.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

FULL = "esa-worldcover/ESA_WorldCover_10m_2021_v200_N00E006_Map.tif"
CROP = ROOT / "data" / "worldcover" / "ESA_WorldCover_10m_2021_v200_N00E006_SaoTome_Map.tif"


def run_child(cmd: list[str]) -> dict:
    """Run ``cmd`` as a child process: wall seconds, its own peak RSS in MB (``os.wait4``), exit
    code, first output line and the end of its stderr."""
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        pid = os.posix_spawn(cmd[0], cmd, env, file_actions=[(os.POSIX_SPAWN_DUP2, out.fileno(), 1),
                                                              (os.POSIX_SPAWN_DUP2, err.fileno(), 2)])
        _, status, usage = os.wait4(pid, 0)
        wall = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        text, etext = out.read(), err.read()
    code = os.waitstatus_to_exitcode(status)
    return {"wall": wall, "rss": usage.ru_maxrss / 1024, "code": code,
            "line": (text.strip().splitlines() or [""])[0], "err": etext.strip()[-300:]}


def ours(src: str, work: Path) -> dict:
    return run_child([sys.executable, "-m", "cen.cli", "tiles", "raster", src, str(work), "--no-progress"])


def baseline(src: str, work: Path) -> dict:
    return run_child([sys.executable, str(Path(__file__).resolve()), "--worker", src, str(work)])


def baseline_worker(src: str, workdir: str) -> None:
    """The whole-read baseline: the full band in memory, cut into the same padded tiles."""
    import numpy as np
    import rasterio

    from cen import tiling
    from cen.sources.raster import Layout, _strip_rows
    from cen.sources.classmap import default_product, load_classmap

    work = Path(workdir)
    cmap = load_classmap(default_product(src))
    with rasterio.open(src) as ds:
        full = ds.read(1)  # the whole raster at once
        layout = Layout("native", ds.crs, ds.transform, 0, 0, ds.width, ds.height)
        tags = ds.tags()
    rows = []
    for row in layout.strip_rows():
        strip = np.zeros((256, layout.n_cols * 256), full.dtype)
        part = full[row:row + 256]
        strip[:part.shape[0], :part.shape[1]] = part
        rows += _strip_rows(strip, layout, row, cmap=cmap, fill=0, source=Path(src).stem,
                            datetime=tags.get("time_start"), src=src, out_dir=work / "tiles",
                            min_labelled=tiling.DEFAULT_MIN_LABELLED, rewrite=True, label_tiles=None)
    from shapely import wkb

    for r in rows:
        r["geometry"] = wkb.loads(r["geometry"])
        r.pop("_error")
    frame = tiling.tiles_frame(rows)
    tiling.write_tiles_table(work / "tiles.parquet", frame)
    print(tiling.eligibility_summary(frame))


def result(name: str, value: float, op: str, goal: float, fmt: str = ".3g") -> str:
    met = {"<": value < goal, ">=": value >= goal}[op]
    return f"RESULT {name}={value:{fmt}} goal={op}{goal:g} met={'yes' if met else 'no'}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="the committed São Tomé crop instead of the full tile")
    ap.add_argument("--data", help="folder holding esa-worldcover/ (default ../shared/data beside the checkout)")
    ap.add_argument("--worker", nargs=2, metavar=("SRC", "WORKDIR"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        baseline_worker(*args.worker)
        return 0

    from cen import paths
    from localserver import LocalHTTPServer

    data = Path(args.data) if args.data else paths.shared_data_dir()
    if args.quick:
        src, served_root, name = CROP, CROP.parent, CROP.name
        print("quick: the committed São Tomé crop (3,840 x 5,040 px)")
    elif data is None or not (data / FULL).exists():
        print("skip full tile: ../shared/data is not beside this checkout; using the committed crop")
        src, served_root, name = CROP, CROP.parent, CROP.name
    else:
        src, served_root, name = data / FULL, (data / FULL).parent, Path(FULL).name
    import rasterio

    with rasterio.open(src) as ds:
        print(f"source: {src} ({ds.width} x {ds.height} px, block {ds.block_shapes[0]})")

    tmp = Path(tempfile.mkdtemp(prefix="bench_tiling_"))
    try:
        disk1 = ours(str(src), tmp / "disk")
        disk2 = ours(str(src), tmp / "disk")
        with LocalHTTPServer(served_root) as server:
            url = f"{server.url}/{name}"
            http1 = ours(url, tmp / "http")
            n_req = len(server.requests)
            http2 = ours(url, tmp / "http")
            rerun_requests = len(server.requests) - n_req
        base1 = baseline(str(src), tmp / "base")
        base2 = baseline(str(src), tmp / "base")
        for label, r in (("ours disk", disk1), ("ours disk again", disk2), ("ours http", http1),
                         ("ours http again", http2), ("whole-read baseline", base1),
                         ("whole-read baseline again", base2)):
            print(f"{label:26s} exit {r['code']}  {r['wall']:7.1f} s  peak RSS {r['rss']:7.0f} MB  {r['line']}")
            if r["code"] != 0:
                print(f"  stderr: {r['err']}")
        import pandas as pd

        n_tiles = len(pd.read_parquet(tmp / "disk" / "tiles.parquet", columns=["tile_id"]))
        same = (pd.read_parquet(tmp / "disk" / "tiles.parquet", columns=["tile_id", "labelled_fraction", "eligible"])
                .equals(pd.read_parquet(tmp / "base" / "tiles.parquet",
                                        columns=["tile_id", "labelled_fraction", "eligible"])))
        print(f"{n_tiles} tiles; ours and the baseline agree on every tile's labelled_fraction and eligible: {same}; "
              f"HTTP requests of the second HTTP run: {rerun_requests}")
        ok = all(r["code"] == 0 for r in (disk1, disk2, http1, http2, base1, base2)) and same
        print(result("tiling_all_runs_ok", float(ok), ">=", 1, ".0f"))
        print(f"tiles/s: ours disk {n_tiles / disk1['wall']:.0f}, ours http {n_tiles / http1['wall']:.0f}, "
              f"baseline {n_tiles / base1['wall']:.0f}")
        print(result("tiling_peak_rss_mb", disk1["rss"], "<", 1024, ".0f"))
        print(result("tiling_http_peak_rss_mb", http1["rss"], "<", 1024, ".0f"))
        print(result("tiling_rerun_fraction", disk2["wall"] / disk1["wall"], "<", 0.10))
        print(result("tiling_http_rerun_fraction", http2["wall"] / http1["wall"], "<", 0.10))
        print(result("tiling_speed_vs_wholeread", base1["wall"] / disk1["wall"], ">=", 0.8))
        print(result("tiling_rss_vs_wholeread", disk1["rss"] / base1["rss"], "<", 0.5))
        print(f"baseline second run: {base2['wall'] / base1['wall']:.2f} of its first (it has nothing to resume)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
