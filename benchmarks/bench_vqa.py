"""Benchmark cen.vqa: label-grounded questions per second over many label maps, and peak memory.

Maps: the embedded demo's real WorldCover tiles (built into a temporary folder), turned into
``--n`` different 256 x 256 maps by random rotations, flips, cyclic shifts and class
permutations, generated batch by batch (so memory holds one batch of maps). Timed:

1. ours: :func:`cen.vqa.build.stream_questions` (features in one compiled pass per map, the
   vectorised samplers, wording, choices) at ``--per-tile`` questions per tile, one core;
2. baseline: a plain per-tile Python implementation of the same label tasks (``np`` slicing per
   region and class, ``scipy.ndimage.label`` per class, one question at a time with ``random``),
   on ``--n-baseline`` maps of the same stream, in the same run.

Rates are per CPU-second of this (single-threaded) process, i.e. on one core, measured with
``time.process_time`` so that other work on a shared machine does not count; wall-clock rates
are printed beside them.

Goals (RESULT lines): >= 2,000 tiles/s on one core at 10 questions per tile; >= 10x the per-tile
baseline; peak RSS (the whole process, maps included) <= 1 GB. ``--quick`` runs a small version.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import tempfile
import time
from pathlib import Path

os.environ.setdefault("NUMBA_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from cen import vqa  # noqa: E402
from cen.vqa.build import stream_questions  # noqa: E402

SIZE = 256
LABEL_TASKS = ("presence", "area", "counting", "dominant", "adjacency", "relative_position", "referring")


def demo_maps() -> np.ndarray:
    """The demo's label tiles as ``(n, 256, 256)`` indices."""
    import pandas as pd

    from cen.sources.demo import build_demo_tiles
    from cen.stats import read_label_map
    from cen.tables import resolve_path

    work = Path(tempfile.mkdtemp(prefix="bench_vqa_"))
    build_demo_tiles(work)
    tiles = pd.read_parquet(work / "tiles.parquet")
    return np.stack([read_label_map(resolve_path(p, work)) for p in tiles["label_path"].dropna()])


def batches(pool: np.ndarray, n: int, size: int, seed: int):
    """``(maps, ids)`` batches of augmented pool maps, ``n`` maps in all."""
    rng = np.random.default_rng(seed)
    done = 0
    while done < n:
        k = min(size, n - done)
        out = np.empty((k, SIZE, SIZE), np.uint8)
        for i in range(k):
            m = pool[rng.integers(len(pool))]
            m = np.rot90(m, int(rng.integers(4)))
            if rng.random() < 0.5:
                m = m[:, ::-1]
            m = np.roll(m, (int(rng.integers(SIZE)), int(rng.integers(SIZE))), axis=(0, 1))
            perm = np.concatenate([[0], rng.permutation(11) + 1]).astype(np.uint8)
            out[i] = perm[m]
        yield out, [f"m{done + i:06d}" for i in range(k)]
        done += k


# ---------------------------------------------------------------------------------------------- baseline


REGIONS = ("whole", "top_left", "top_right", "bottom_left", "bottom_right", "middle")


def _region(m: np.ndarray, r: str) -> np.ndarray:
    h, w = m.shape
    return {"whole": m, "top_left": m[: h // 2, : w // 2], "top_right": m[: h // 2, w // 2 :],
            "bottom_left": m[h // 2 :, : w // 2], "bottom_right": m[h // 2 :, w // 2 :],
            "middle": m[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4]}[r]


def baseline_tile(m: np.ndarray, rng: random.Random, per_tile: int) -> list[dict]:
    """Up to ``per_tile`` questions of one map, the plain way."""
    from scipy import ndimage

    counts = {r: np.bincount(_region(m, r).ravel(), minlength=12) for r in REGIONS}
    present = [c for c in range(1, 12) if counts["whole"][c] >= 20]
    comps = {}
    for c in present:
        lab, k = ndimage.label(m == c, structure=np.ones((3, 3), bool))
        sizes = np.bincount(lab.ravel())[1:]
        comps[c] = (lab, sizes)
    out = []
    for _ in range(per_tile):
        task = rng.choice(LABEL_TASKS)
        if task == "presence":
            c, r = rng.randint(1, 11), rng.choice(REGIONS)
            out.append({"task": task, "answer": bool(counts[r][c] >= 20)})
        elif task == "area":
            r = rng.choice(REGIONS)
            cs = [c for c in range(1, 12) if counts[r][c] > 0]
            if cs:
                c = rng.choice(cs)
                out.append({"task": task, "answer": round(counts[r][c] / counts[r][1:].sum(), 2)})
        elif task == "counting" and present:
            c = rng.choice(present)
            out.append({"task": task, "answer": int((comps[c][1] >= 20).sum())})
        elif task == "dominant":
            r = rng.choice(REGIONS)
            order = np.argsort(-counts[r][1:])
            out.append({"task": task, "answer": int(order[0] + 1)})
        elif task == "adjacency" and len(present) >= 2:
            a, b = rng.sample(present, 2)
            touch = (((m[:, :-1] == a) & (m[:, 1:] == b)) | ((m[:, :-1] == b) & (m[:, 1:] == a))).any() or \
                (((m[:-1] == a) & (m[1:] == b)) | ((m[:-1] == b) & (m[1:] == a))).any()
            out.append({"task": task, "answer": bool(touch)})
        elif task == "relative_position" and len(present) >= 2:
            a, b = rng.sample(present, 2)
            ya, xa = np.nonzero(m == a)
            yb, xb = np.nonzero(m == b)
            dy, dx = ya.mean() - yb.mean(), xa.mean() - xb.mean()
            out.append({"task": task, "answer": ("north" if dy < 0 else "south") if abs(dy) > abs(dx)
                        else ("east" if dx > 0 else "west")})
        elif task == "referring" and present:
            c = rng.choice(present)
            lab, sizes = comps[c]
            ys, xs = np.nonzero(lab == int(np.argmax(sizes)) + 1)
            out.append({"task": task, "answer": [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1]})
        if out:
            out[-1]["question"] = f"{out[-1]['task']} question"
    return out


# ---------------------------------------------------------------------------------------------- main


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=20_000, help="label maps for ours [20000]")
    ap.add_argument("--n-baseline", type=int, default=500, help="label maps for the per-tile baseline [500]")
    ap.add_argument("--per-tile", type=int, default=10)
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="2,000 maps, 100 for the baseline")
    args = ap.parse_args()
    if args.quick:
        args.n, args.n_baseline = 2_000, 100
    pool = demo_maps()
    print(f"pool: {len(pool)} demo label tiles; ours on {args.n} maps, baseline on {args.n_baseline}, "
          f"{args.per_tile} questions per tile, batches of {args.batch}")

    # warm-up: compile the kernel and import everything once
    for _ in stream_questions(batches(pool, 64, 64, args.seed + 1), per_tile=args.per_tile, tasks=LABEL_TASKS):
        pass

    elapsed = 0.0
    wall = 0.0
    n_q = 0
    per_task: dict[str, int] = {}
    gen = batches(pool, args.n, args.batch, args.seed)
    while True:
        try:
            maps, ids = next(gen)
        except StopIteration:
            break
        t0, w0 = time.process_time(), time.perf_counter()
        frame = next(stream_questions([(maps, ids)], per_tile=args.per_tile, tasks=LABEL_TASKS, seed=args.seed))
        elapsed += time.process_time() - t0
        wall += time.perf_counter() - w0
        n_q += len(frame)
        for t, k in frame["task"].value_counts().items():
            per_task[t] = per_task.get(t, 0) + int(k)
    ours_tiles = args.n / elapsed
    ours_q = n_q / elapsed
    rss = peak_rss_mb()
    print(f"ours: {args.n} tiles, {n_q} questions ({n_q / args.n:.1f} per tile) in {elapsed:.2f} CPU s "
          f"({wall:.2f} s wall): {ours_tiles:,.0f} tiles/s, {ours_q:,.0f} questions/s per core "
          f"({args.n / wall:,.0f} tiles/s wall); per task {per_task}")

    rng = random.Random(args.seed)
    t_base = 0.0
    w_base = 0.0
    n_base_q = 0
    for maps, _ in batches(pool, args.n_baseline, 256, args.seed):
        t0, w0 = time.process_time(), time.perf_counter()
        for m in maps:
            n_base_q += len(baseline_tile(m, rng, args.per_tile))
        t_base += time.process_time() - t0
        w_base += time.perf_counter() - w0
    base_tiles = args.n_baseline / t_base
    print(f"baseline (plain per-tile Python + scipy.ndimage): {args.n_baseline} tiles, {n_base_q} questions in "
          f"{t_base:.2f} CPU s ({w_base:.2f} s wall): {base_tiles:,.0f} tiles/s, {n_base_q / t_base:,.0f} questions/s "
          "per core")
    ratio = ours_tiles / base_tiles
    print(f"peak RSS {rss:.0f} MB (vqa {vqa.VQA_VERSION})")
    print(f"RESULT vqa_tiles_per_s={ours_tiles:.0f} goal=>=2000 met={'yes' if ours_tiles >= 2000 else 'no'}")
    print(f"RESULT vqa_questions_per_s={ours_q:.0f} goal=>=20000 met={'yes' if ours_q >= 20000 else 'no'}")
    print(f"RESULT vqa_speedup_vs_per_tile_python={ratio:.1f} goal=>=10 met={'yes' if ratio >= 10 else 'no'}")
    print(f"RESULT vqa_peak_rss_mb={rss:.0f} goal=<=1024 met={'yes' if rss <= 1024 else 'no'}")


if __name__ == "__main__":
    main()
