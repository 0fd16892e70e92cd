"""Benchmark cen.export on 20,000 synthetic-but-valid tiles: ours (streaming shards) vs a naive
in-memory writer, for the ``hf`` and ``wds`` formats, in one run.

The workdir is real in every file a stage reads: a GeoParquet ``tiles.parquet`` made by
``cen.tiling.tiles_frame`` (footprints, CRS, transform, eligibility), one RGB PNG and one
ChatEarthNet-colour label PNG per tile (distinct files; their contents come from a pool of
blocky synthetic images, so making the workdir does not dominate the run), and a
``captions_verified.parquet`` with one accepted caption per tile.

Measured, each export in its own process (peak RSS of that process, polled):

* ``ours``: ``cen.export.export`` (Parquet row groups / tar members streamed, one shard at a
  time) -- rows/s and peak RSS; then the same export again (resume: everything unchanged is
  kept) as a fraction of the first run's time;
* ``naive``: every image read into one in-memory table, then written at once (one Parquet file
  or one tar per split) -- the way a first script would do it;
* the time to re-read each export with its consumer library (``datasets.load_dataset`` over
  the Parquet shards, iterating every row's id, caption and image bytes; ``webdataset``
  iterating every sample).

Goals (RESULT lines, per format): ours peak RSS < 1 GB and below the naive writer's; ours at
least 0.5x the naive writer's rows/s (streaming must not cost much speed); the second run
< 25 % of the first; re-read >= 1,000 rows/s. Rows/s of each side are printed above them.
``--quick`` runs 1,000 tiles (there the start-up memory of the imports dominates RSS).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil

SIZE = 256


def make_workdir(root: Path, n: int, pool: int = 64, seed: int = 0) -> Path:
    """A workdir of ``n`` tiles (see the module docstring); returns its path."""
    import pandas as pd
    from PIL import Image
    from shapely.geometry import box

    from cen import landcover, tiling

    rng = np.random.default_rng(seed)
    wd = root / "workdir"
    (wd / "tiles").mkdir(parents=True)
    rgb_pool, label_pool = [], []
    for _ in range(pool):
        small = rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)
        rgb = np.repeat(np.repeat(small, 16, 0), 16, 1)
        idx = np.repeat(np.repeat(rng.integers(1, 12, (8, 8), dtype=np.uint8), 32, 0), 32, 1)
        for arr, out in ((rgb, rgb_pool), (landcover.indices_to_colour(idx), label_pool)):
            buf = io.BytesIO()
            Image.fromarray(arr).save(buf, format="PNG")
            out.append(buf.getvalue())
    rows, caps = [], []
    for i in range(n):
        tid = f"synthetic_r{i // 100:05d}_c{i % 100:05d}"
        (wd / "tiles" / f"{tid}_rgb.png").write_bytes(rgb_pool[i % pool])
        (wd / "tiles" / f"{tid}_label.png").write_bytes(label_pool[(i * 7) % pool])
        x0, y0 = 200_000 + (i % 100) * 2560, 4_000_000 - (i // 100) * 2560
        lon, lat = 6.0 + (i % 100) * 0.023, 36.0 - (i // 100) * 0.023
        rows.append({"tile_id": tid, "source": "synthetic", "split": tiling.assign_split(tid),
                     "geometry": box(lon, lat - 0.023, lon + 0.023, lat), "lon": lon + 0.0115, "lat": lat - 0.0115,
                     "crs": "EPSG:32632", "transform": [10.0, 0.0, float(x0), 0.0, -10.0, float(y0)], "width": SIZE,
                     "height": SIZE, "label_png_path": f"tiles/{tid}_label.png", "rgb_png_path": f"tiles/{tid}_rgb.png",
                     "label_product": "ESA WorldCover 10m 2021 v200", "datetime": "2021-06-01T10:30:00Z",
                     "nodata_fraction": 0.0, "flags": [], "provenance": json.dumps({"kind": "synthetic"}),
                     "labelled_fraction": 1.0, "eligible": True, "exclude_reason": None})
        text = f"Synthetic caption {i}: tree covers a large share of the top left, water the rest."
        caps.append({"tile_id": tid, "paradigm": "gpt35", "text": text, "status": "ok", "model_returned": "template",
                     "key": f"{tid}|gpt35", "accepted_text": text, "verification_status": "clean",
                     "flags": [], "consistency": 1.0, "verify_version": "verify-1"})
    tiling.write_tiles_table(wd / "tiles.parquet", tiling.tiles_frame(rows))
    pd.DataFrame(caps).to_parquet(wd / "captions_verified.parquet", index=False)
    return wd


# --- the naive baseline: everything in memory, then one write --------------------------------

def naive_export(workdir: Path, out: Path, fmt: str) -> int:
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    from cen import tiling
    from cen.tables import resolve_path

    tiles = tiling.read_tiles_table(workdir / "tiles.parquet").set_index("tile_id")
    caps = pd.read_parquet(workdir / "captions_verified.parquet")
    table = caps.join(tiles.drop(columns=["geometry", "flags"]), on="tile_id")
    table["image"] = [{"bytes": Path(resolve_path(p, workdir)).read_bytes(), "path": None} for p in table["rgb_png_path"]]
    table["label"] = [{"bytes": Path(resolve_path(p, workdir)).read_bytes(), "path": None}
                      for p in table["label_png_path"]]
    out.mkdir(parents=True)
    for split, part in table.groupby("split"):
        keep = part[["key", "tile_id", "accepted_text", "image", "label", "lon", "lat", "crs", "datetime"]]
        if fmt == "hf":
            pq.write_table(pa.Table.from_pandas(keep, preserve_index=False), out / f"{split}.parquet")
        else:
            with tarfile.open(out / f"{split}.tar", "w") as tar:
                for r in keep.itertuples():
                    key = r.tile_id + "__gpt35"
                    for name, data in ((f"{key}.png", r.image["bytes"]), (f"{key}.txt", r.accepted_text.encode()),
                                       (f"{key}.label.png", r.label["bytes"])):
                        info = tarfile.TarInfo(name)
                        info.size = len(data)
                        tar.addfile(info, io.BytesIO(data))
    return len(table)


def ours_export(workdir: Path, out: Path, fmt: str) -> int:
    from cen.export import export

    return export(workdir, out, fmt, shard_size=1000, progress=False).n_exported


def reread(out: Path, fmt: str) -> int:
    if fmt == "hf":
        import datasets

        os.environ["HF_DATASETS_OFFLINE"] = "1"
        files = [str(p) for p in sorted(out.rglob("*.parquet"))]
        ds = datasets.load_dataset("parquet", data_files={"rows": files}, cache_dir=str(out.parent / f".cache-{out.name}"))
        ds = ds["rows"]
        text = "caption" if "caption" in ds.column_names else "accepted_text"
        ds = ds.select_columns(["image", text]).cast_column("image", datasets.Image(decode=False))
        return sum(bool(row["image"]["bytes"]) and bool(row[text]) for row in ds)
    import webdataset as wds

    return sum(1 for s in wds.WebDataset([str(p) for p in sorted(out.glob("*.tar"))], shardshuffle=False) if s["png"])


def run_child(args: list[str]) -> tuple[float, float, int]:
    """Run this script as ``--worker ...`` in a child; returns (seconds of the work, peak RSS of
    the child in MB, rows)."""
    proc = subprocess.Popen([sys.executable, __file__, "--worker", *args], stdout=subprocess.PIPE, text=True)
    peak = 0
    ps = psutil.Process(proc.pid)
    done = threading.Event()

    def poll() -> None:
        nonlocal peak
        while not done.is_set():
            try:
                peak = max(peak, ps.memory_info().rss)
            except psutil.Error:
                break
            time.sleep(0.02)

    t = threading.Thread(target=poll, daemon=True)
    t.start()
    out, _ = proc.communicate()
    done.set()
    t.join()
    if proc.returncode:
        raise SystemExit(f"worker {args} failed with exit code {proc.returncode}")
    rows, seconds = out.strip().splitlines()[-1].split()
    return float(seconds), peak / 1e6, int(rows)


def result(name: str, value: float, op: str, goal: float) -> str:
    met = value < goal if op == "<" else value >= goal
    return f"RESULT {name}={value:.3g} goal={op}{goal:g} met={'yes' if met else 'no'}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="1,000 tiles")
    parser.add_argument("--tiles", type=int, default=None, help="number of tiles [20000; 1000 with --quick]")
    parser.add_argument("--worker", nargs=4, metavar=("KIND", "FMT", "WORKDIR", "OUT"), help=argparse.SUPPRESS)
    parser.add_argument("--keep", help="build in this folder and keep it (default: a temporary folder)")
    args = parser.parse_args()
    if args.worker:
        kind, fmt, workdir, out = args.worker
        fn = {"ours": ours_export, "naive": naive_export, "reread": lambda w, o, f: reread(o, f)}[kind]
        import datasets  # noqa: F401  (imports are start-up, not work: loaded before the clock starts)
        import webdataset  # noqa: F401

        import cen.export.hf  # noqa: F401
        import cen.export.wds  # noqa: F401
        start = time.perf_counter()
        rows = fn(Path(workdir), Path(out), fmt)
        print(rows, time.perf_counter() - start)
        return
    n = args.tiles or (1_000 if args.quick else 20_000)
    with tempfile.TemporaryDirectory(dir=args.keep) as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        workdir = make_workdir(root, n)
        print(f"workdir of {n} tiles made in {time.perf_counter() - t0:.1f} s")
        lines = []
        for fmt in ("hf", "wds"):
            s_ours, rss_ours, rows = run_child(["ours", fmt, str(workdir), str(root / f"ours-{fmt}")])
            s_again, _, _ = run_child(["ours", fmt, str(workdir), str(root / f"ours-{fmt}")])
            s_naive, rss_naive, rows_naive = run_child(["naive", fmt, str(workdir), str(root / f"naive-{fmt}")])
            s_read, _, read = run_child(["reread", fmt, str(workdir), str(root / f"ours-{fmt}")])
            s_read_naive, _, _ = run_child(["reread", fmt, str(workdir), str(root / f"naive-{fmt}")])
            assert rows == rows_naive == read == n, (rows, rows_naive, read)
            print(f"{fmt}: ours {s_ours:.1f} s ({rows / s_ours:.0f} rows/s, peak RSS {rss_ours:.0f} MB); "
                  f"again {s_again:.1f} s; naive {s_naive:.1f} s ({n / s_naive:.0f} rows/s, peak RSS "
                  f"{rss_naive:.0f} MB); re-read ours {s_read:.1f} s ({n / s_read:.0f} rows/s), naive "
                  f"{s_read_naive:.1f} s")
            lines += [
                result(f"{fmt}_peak_rss_mb", rss_ours, "<", 1000),
                result(f"{fmt}_speed_vs_naive", s_naive / s_ours, ">=", 0.5),
                result(f"{fmt}_rss_vs_naive", rss_ours / rss_naive, "<", 1.0),
                result(f"{fmt}_second_run_fraction", s_again / s_ours, "<", 0.25),
                result(f"{fmt}_reread_rows_per_s", n / s_read, ">=", 1000),
            ]
        print("\n".join(lines))


if __name__ == "__main__":
    main()
