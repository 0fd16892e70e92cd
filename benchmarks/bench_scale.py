"""Statistics over ChatEarthNet-many label tiles: one process vs a 2-worker Dask LocalCluster.

Part 1 (the goal): 173,488 label tiles (the release's 163,488 + 10,000 captions' worth), each a
256 x 256 map of ChatEarthNet indices synthesised per tile id (a seeded 16 x 16 block map of 2-5
classes, no files), through :func:`cen.stats.stats_table` (counts + both contexts) into
partitioned Parquet by :func:`cen.scale.run_stage`. The same task code runs twice: in this process
(``client="sync"``, the single-process baseline) and on a LocalCluster of 2 single-threaded worker
processes, taking turns on slices of the tiles (interleaved rounds) so that the load of other
users of a shared machine falls on both alike. Reports tiles/s, the ratio, CPU seconds per tile, peak memory per worker, machine load,
and checks both runs wrote identical tables.

Part 2 (the estimate): measured per-tile costs of rebuilding from COGs -- a 512-px WorldCover
label window (the real 36,000-px N00E006 COG from ``../shared/data`` when present, else the
committed crop) and a nine-band 512-px Sentinel-2 window (committed demo COGs), both read with
the real readers over HTTP from a local Range server, plus writing the four patches (GeoTIFF +
PNGs) -- and from them an estimate of the wall time to rebuild the 40,872 tiles on N workers.

    .venv/bin/python benchmarks/bench_scale.py [--quick] [--tiles N] [--workers 2]
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import shutil
import sys
import tempfile
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from cen import scale, stats

ROOT = Path(__file__).resolve().parents[1]
N_RELEASE_TILES = 173_488
N_REBUILD_TILES = 40_872
"""512-px tiles of the release (x 4 patches = 163,488)."""


# --- part 1 ----------------------------------------------------------------------------------

def synthetic_label(tile_id: str) -> np.ndarray:
    """A 256 x 256 uint8 label map: 16 x 16 blocks of 2-5 classes, seeded by the tile id."""
    rng = np.random.default_rng(zlib.crc32(tile_id.encode()))
    classes = rng.choice(12, rng.integers(2, 6), replace=False).astype(np.uint8)
    blocks = classes[rng.integers(0, len(classes), (16, 16))]
    return np.repeat(np.repeat(blocks, 16, axis=0), 16, axis=1)


def stats_stage(tiles: pd.DataFrame) -> pd.DataFrame:
    """Source read (synthesis) -> statistics for one partition of tiles."""
    ids = tiles["tile_id"].tolist()
    return stats.stats_table(np.stack([synthetic_label(t) for t in ids]), ids)


def _calibration_task(n: int) -> tuple[float, float]:
    t0, c0 = time.perf_counter(), time.process_time()
    stats_stage(pd.DataFrame({"tile_id": [f"cal_{i:06d}" for i in range(n)]}))
    return time.perf_counter() - t0, time.process_time() - c0


CALIBRATION: list[dict] = []
"""Each :func:`machine_ceiling` measurement: speed-up and CPU seconds per tile alone / together."""


def machine_ceiling(workers: int, n: int) -> float:
    """Speed-up the machine gives *right now* to ``workers`` plain processes on the same work (no Dask).

    One process alone does ``n`` tiles, then ``workers`` processes do ``n`` each at once; the
    ratio of throughputs is what any scheduler could get at best under the current load. CPU
    seconds per tile alone vs together show how much running side by side inflates CPU time
    on this machine by itself (shared caches / cores), with no Dask involved.
    """
    from concurrent.futures import ProcessPoolExecutor
    import multiprocessing as mp

    with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as pool:
        list(pool.map(_calibration_task, [200] * workers))  # warm up imports
        alone, alone_cpu = pool.submit(_calibration_task, n).result()
        t0 = time.perf_counter()
        together = list(pool.map(_calibration_task, [n] * workers))
        wall = time.perf_counter() - t0
    cpu_together = float(np.mean([c for _, c in together]))
    CALIBRATION.append({"ceiling": workers * alone / wall, "cpu_alone": alone_cpu / n, "cpu_together": cpu_together / n})
    return workers * alone / wall


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load {one:.2f}/{five:.2f} (1/5 min) on {os.cpu_count()} CPUs"


@dataclass
class Totals:
    """One mode's runs summed over the interleaved rounds."""

    seconds: float = 0.0
    cpu_seconds: float = 0.0
    n_rows: int = 0
    n_partitions: int = 0
    peak_rss_by_worker: dict = field(default_factory=dict)

    def add(self, run: scale.StageRun) -> None:
        self.seconds += run.seconds
        self.cpu_seconds += run.cpu_seconds
        self.n_rows += run.n_rows
        self.n_partitions += run.n_partitions
        for w, peak in run.peak_rss_by_worker.items():
            self.peak_rss_by_worker[w] = max(self.peak_rss_by_worker.get(w, 0), peak)

    @property
    def tiles_per_second(self) -> float:
        return self.n_rows / self.seconds


def run_part1(n_tiles: int, workers: int, partition_size: int, work: Path, rounds: int) -> dict:
    """Single process and cluster take turns on ``rounds`` slices of the tiles, so that the other
    sessions' load, which drifts over minutes, falls on both alike."""
    from distributed import Client

    tiles = pd.DataFrame({"tile_id": [f"bench_{i:06d}" for i in range(n_tiles)]})
    print(f"\n== statistics over {n_tiles:,} label tiles, partitions of {partition_size}, {rounds} interleaved rounds ==")
    ceilings = [machine_ceiling(workers, 3000)]
    print(f"machine ceiling now: {workers} plain processes run {ceilings[0]:.2f}x one process on the same work; {load()}")
    single, dist = Totals(), Totals()
    t0 = time.perf_counter()
    with scale.local_cluster(workers, dashboard_address=":0", silence_logs=logging.ERROR) as cluster, \
            Client(cluster) as client:
        client.wait_for_workers(workers)
        # imports and the first call of the compiled kernels belong to start-up, not to the run,
        # on the workers and in this process alike
        client.run(stats_stage, tiles.iloc[:8])
        stats_stage(tiles.iloc[:8])
        startup = time.perf_counter() - t0
        print(f"LocalCluster of {workers} workers up in {startup:.1f} s (dashboard {client.dashboard_link}); {load()}")
        bounds = np.linspace(0, n_tiles, rounds + 1).astype(int)
        for k in range(rounds):
            part = tiles.iloc[bounds[k]:bounds[k + 1]]
            one = scale.run_stage(stats_stage, part, work / "single" / f"round{k}", client="sync",
                                  partition_size=partition_size, stage_name="bench", progress=False)
            two = scale.run_stage(stats_stage, part, work / "cluster" / f"round{k}", client=client,
                                  partition_size=partition_size, stage_name="bench", progress=False)
            single.add(one)
            dist.add(two)
            print(f"round {k + 1}/{rounds}: single {one.tiles_per_second:,.0f} tiles/s, {workers} workers "
                  f"{two.tiles_per_second:,.0f} tiles/s ({two.tiles_per_second / one.tiles_per_second:.2f}x); {load()}")
    single_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    ceilings.append(machine_ceiling(workers, 3000))
    ceiling = float(np.mean(ceilings))
    print(f"single process: {single.seconds:.1f} s, {single.tiles_per_second:,.0f} tiles/s, "
          f"{1e3 * single.cpu_seconds / n_tiles:.3f} ms CPU/tile, peak RSS {single_peak / 2**20:.0f} MiB")
    print(f"{workers} workers: {dist.seconds:.1f} s, {dist.tiles_per_second:,.0f} tiles/s, "
          f"{1e3 * dist.cpu_seconds / n_tiles:.3f} ms CPU/tile")
    for w, peak in sorted(dist.peak_rss_by_worker.items()):
        print(f"  worker {w}: peak RSS {peak / 2**20:.0f} MiB")
    print(f"machine ceiling before/after: {ceilings[0]:.2f}x / {ceilings[1]:.2f}x; {load()}")
    inflation = np.mean([c["cpu_together"] / c["cpu_alone"] for c in CALIBRATION])
    print(f"plain processes (no Dask) side by side need {inflation:.2f}x the CPU per tile of one alone; the workers "
          f"needed {dist.cpu_seconds / single.cpu_seconds:.2f}x the single process's")

    # identical output: same files, same rows, same dataset-level statistics
    files_a = sorted((work / "single").glob("round*/part-*.parquet"))
    files_b = sorted((work / "cluster").glob("round*/part-*.parquet"))
    a = scale.dataset_stats(files_a, client="sync", progress=False)
    b = scale.dataset_stats(files_b, client="sync", progress=False)
    ids_a = pd.concat([pd.read_parquet(f, columns=["tile_id"]) for f in files_a])["tile_id"]
    ids_b = pd.concat([pd.read_parquet(f, columns=["tile_id"]) for f in files_b])["tile_id"]
    lost_or_dup = (n_tiles - ids_b.nunique()) + (len(ids_b) - ids_b.nunique())
    same = (ids_a.tolist() == ids_b.tolist() and a.class_frame().equals(b.class_frame())
            and a.region_frame().equals(b.region_frame())
            and pd.read_parquet(files_a[0]).equals(pd.read_parquet(files_b[0])))
    ratio = dist.tiles_per_second / single.tiles_per_second
    print(f"ratio {ratio:.2f}x; outputs identical: {same}; tiles lost or duplicated: {lost_or_dup}")
    return {"single": single, "dist": dist, "ratio": ratio, "same": same, "lost_or_dup": lost_or_dup,
            "single_peak": single_peak, "startup": startup, "ceiling": ceiling,
            "stats_cpu_per_tile": single.cpu_seconds / n_tiles}


# --- part 2 ----------------------------------------------------------------------------------

def _bytes(requests) -> int:
    total = 0
    for r in requests:
        if r.range and r.range.startswith("bytes=") and r.status == 206:
            lo, _, hi = r.range[6:].partition("-")
            if lo and hi:
                total += int(hi) - int(lo) + 1
    return total


def run_part2(work: Path, repeats: int) -> dict:
    """Per-512-px-tile cost of label + nine-band reads over HTTP and of writing four patches."""
    import rasterio

    sys.path.insert(0, str(ROOT / "tests"))
    from localserver import LocalHTTPServer

    from cen import paths, tiling
    from cen.sources import demo, worldcover

    www = work / "www"
    www.mkdir()
    shared = paths.shared_data_dir()
    real_wc = shared / "esa-worldcover" / "ESA_WorldCover_10m_2020_v100_N00E006_Map.tif" if shared else None
    wc_src = real_wc if real_wc and real_wc.exists() else demo.DEMO_WORLDCOVER[2020]
    shutil.copy(wc_src, www / "wc.tif")
    s2_dir = demo.s2_windows()[0]
    for b in tiling.S2_BANDS:
        shutil.copy(s2_dir / f"{b}.tif", www / f"{b}.tif")
    print(f"\n== per-tile cost of a rebuild from COGs (label COG: {wc_src.name}) ==")

    # the São Tomé land grid of the demo, cut into 512-px tiles
    grid = demo.label_grid(demo.DEMO_WORLDCOVER[2020], size=512)
    label_tiles = grid.tiles(source="bench", size=512)[:repeats]
    with rasterio.open(s2_dir / "B02.tif") as ref:
        s2_grid = tiling.Grid(ref.crs, ref.transform, 512, 512)
    out = work / "tiles"
    t_label, t_image, t_write, n_req_label, n_req_image, b_label, b_image = [], [], [], [], [], [], []
    with LocalHTTPServer(www) as server:
        base = server.url
        for k, tile in enumerate(label_tiles):
            tgrid = tiling.Grid(tile.crs, tile.transform, 512, 512)
            server.requests.clear()
            t0 = time.perf_counter()
            read = worldcover.read_worldcover(tgrid, hrefs={"N00E006": f"{base}/wc.tif?{k}"})
            t_label.append(time.perf_counter() - t0)
            n_req_label.append(len(server.requests))
            b_label.append(_bytes(server.requests))
            # a distinct query string per tile defeats GDAL's per-URL cache: every tile pays its header
            server.requests.clear()
            t0 = time.perf_counter()
            stack = tiling.read_band_stack({b: f"{base}/{b}.tif?{k}" for b in tiling.S2_BANDS}, s2_grid)
            t_image.append(time.perf_counter() - t0)
            n_req_image.append(len(server.requests))
            b_image.append(_bytes(server.requests))
            t0 = time.perf_counter()
            parent = tiling.Tile(f"bench{k}", "bench", tiling.Window(0, 0, 512, 512), s2_grid.crs, s2_grid.transform,
                                 512, 512)
            labels = tiling.split_patches(read.codes)
            images = tiling.split_patches(stack)
            for name, patch in tiling.patch_tiles(parent).items():
                tiling.write_label_tile(out, patch, labels[name], product=read.product, overwrite=True)
                tiling.write_image_tile(out, patch, images[name], overwrite=True)
            t_write.append(time.perf_counter() - t0)
    med = lambda xs: float(np.median(xs))  # noqa: E731
    costs = {"label_read": med(t_label), "image_read": med(t_image), "write_4_patches": med(t_write),
             "requests_label": med(n_req_label), "requests_image": med(n_req_image),
             "bytes_label": med(b_label), "bytes_image": med(b_image), "n": len(t_label)}
    print(f"medians over {len(t_label)} tiles of 512 px: label read {costs['label_read'] * 1e3:.0f} ms "
          f"({costs['requests_label']:.0f} HTTP requests, {costs['bytes_label'] / 1e3:.0f} kB); nine-band read "
          f"{costs['image_read'] * 1e3:.0f} ms ({costs['requests_image']:.0f} requests, "
          f"{costs['bytes_image'] / 1e3:.0f} kB); write 4 patches (GeoTIFF + PNGs) {costs['write_4_patches'] * 1e3:.0f} ms")
    return costs


def estimate(costs: dict, stats_cpu_per_tile: float, task_overhead: float, rtt: float, mbps: float,
             block_bytes: float, io_threads: int = 8, tiles_per_task: int = 16) -> pd.DataFrame:
    """Wall time to rebuild :data:`N_REBUILD_TILES` 512-px tiles on N workers (one thread each).

    Per tile: measured local costs (reads incl. decode and warp, writes, statistics of 4 patches)
    + a network term for a real bucket: every measured HTTP request pays ``rtt`` seconds (GDAL
    reads the bands one after another) and each of the ten reads moves about one real COG block
    (``block_bytes``) at ``mbps`` MB/s. Each task of ``tiles_per_task`` tiles pays the measured Dask
    ``task_overhead``; N workers divide the rest (start-up and the last, partly idle round ignored).
    Two columns: reads one after another (as ``build_sample`` does today), and ``io_threads``
    tiles in flight per worker (threads per worker), where a worker is bound by the larger of
    its CPU time and its network time / ``io_threads``.
    """
    local = costs["label_read"] + costs["image_read"] + costs["write_4_patches"] + 4 * stats_cpu_per_tile
    requests = costs["requests_label"] + costs["requests_image"]
    network = requests * rtt + 10 * block_bytes / (mbps * 1e6)
    per_tile = local + network
    overlapped = max(local, network / io_threads)  # io_threads tiles in flight per worker hide the latency
    efficiency = tiles_per_task * per_tile / (tiles_per_task * per_tile + task_overhead)
    rows = []
    for n in (1, 2, 8, 32, 128, 512):
        eff = efficiency
        wall = N_REBUILD_TILES * per_tile / (n * eff)
        wall_io = N_REBUILD_TILES * overlapped / (n * eff)
        rows.append({"workers": n, "hours_sequential_io": wall / 3600,
                     f"hours_{io_threads}_tiles_in_flight": wall_io / 3600,
                     "tiles_per_s": N_REBUILD_TILES / wall_io})
    print(f"\nper 512-px tile: {local:.3f} s measured locally + {network:.3f} s assumed network "
          f"({requests:.0f} requests x {rtt * 1e3:.0f} ms RTT + 10 x {block_bytes / 1e6:.1f} MB at {mbps:.0f} MB/s) "
          f"= {per_tile:.3f} s; tasks of {tiles_per_task} tiles, parallel efficiency {efficiency:.3f}")
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="12,000 tiles and 3 COG reads")
    parser.add_argument("--tiles", type=int, help=f"label tiles [{N_RELEASE_TILES:,}]")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--partition-size", type=int, default=500, help="tiles per task [500]")
    parser.add_argument("--rounds", type=int, help="interleaved single/cluster rounds [4; 2 with --quick]")
    parser.add_argument("--rebuild-tiles-per-task", type=int, default=16, help="512-px tiles per rebuild task [16]")
    parser.add_argument("--rtt", type=float, default=0.08, help="assumed bucket round trip per request, s [0.08]")
    parser.add_argument("--mbps", type=float, default=50.0, help="assumed per-worker bandwidth, MB/s [50]")
    parser.add_argument("--block-mb", type=float, default=1.5,
                        help="assumed bytes moved per band read (one 1024^2 uint16 DEFLATE block), MB [1.5]")
    args = parser.parse_args()
    n_tiles = args.tiles or (12_000 if args.quick else N_RELEASE_TILES)
    args.rounds = args.rounds or (2 if args.quick else 4)
    print(f"bench_scale: {n_tiles:,} tiles, {args.workers} workers; {load()}")
    work = Path(tempfile.mkdtemp(prefix="bench_scale_"))
    try:
        p1 = run_part1(n_tiles, args.workers, args.partition_size, work, args.rounds)
        costs = run_part2(work, repeats=3 if args.quick else 8)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    # Dask's cost per task, from CPU time (an upper bound: contention on this shared machine inflates it too)
    overhead = max(0.0, p1["dist"].cpu_seconds - p1["single"].cpu_seconds) / p1["dist"].n_partitions
    print(f"\nDask overhead: at most {overhead * 1e3:.0f} ms CPU per task (worker CPU minus single-process CPU "
          f"over {p1['dist'].n_partitions} tasks); wall-clock ratio per worker on this shared machine "
          f"{p1['ratio'] / args.workers:.2f}")
    table = estimate(costs, p1["stats_cpu_per_tile"], overhead, args.rtt, args.mbps, args.block_mb * 1e6,
                     tiles_per_task=args.rebuild_tiles_per_task)
    print(table.to_string(index=False, float_format=lambda v: f"{v:,.2f}"))
    print(f"(rebuild of {N_REBUILD_TILES:,} tiles of 512 px = {4 * N_REBUILD_TILES:,} patches; network figures are "
          "assumptions, see --rtt/--mbps/--block-mb)")
    peak_worker = max(p1["dist"].peak_rss_by_worker.values()) / 2**20
    print(f"\nsummary: single {p1['single'].tiles_per_second:,.0f} tiles/s, {args.workers} workers "
          f"{p1['dist'].tiles_per_second:,.0f} tiles/s, peak RSS per worker {peak_worker:.0f} MiB "
          f"(single process {p1['single_peak'] / 2**20:.0f} MiB); {load()}")
    cpu_ratio = args.workers * p1["single"].cpu_seconds / p1["dist"].cpu_seconds
    print(f"(if each worker had a core of its own: {cpu_ratio:.2f}x = {args.workers} x single-process CPU per tile / "
          f"worker CPU per tile, all Dask overhead included)")
    print(f"(speed-up {p1['ratio']:.2f}x = {p1['ratio'] / p1['ceiling']:.0%} of the {p1['ceiling']:.2f}x this loaded "
          f"machine gave {args.workers} plain processes during the run)")
    print(f"RESULT scale_speedup_{args.workers}workers={p1['ratio']:.2f} goal=>=1.7 "
          f"met={'yes' if p1['ratio'] >= 1.7 else 'no'}")
    print(f"RESULT scale_tiles_lost_or_duplicated={p1['lost_or_dup']} goal===0 "
          f"met={'yes' if p1['lost_or_dup'] == 0 else 'no'}")
    print(f"RESULT scale_outputs_identical={int(p1['same'])} goal===1 met={'yes' if p1['same'] else 'no'}")


if __name__ == "__main__":
    main()
