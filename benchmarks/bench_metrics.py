"""Benchmark: cen.metrics.evaluate against pycocoevalcap's scorers run directly, one after another.

Data (synthetic, said so): N random label maps (64 x 64 blocky ChatEarthNet-index maps, seed 0);
the reference of each is the ``template`` captioner's paragraph of the map, the candidate the
template paragraph (other wording seed) of the same map with one block of labels changed. So
captions are ~100-word land-cover paragraphs with the small vocabulary of real ones.

Baseline ("raw"): what a hand-written wrapper does: ``PTBTokenizer`` on references and on
candidates (as ``COCOEvalCap``), then ``Bleu(4)``, ``Meteor()``, ``Rouge()``, ``Cider()``, in
sequence. Ours: ``cen.metrics.evaluate`` (tokenize once, METEOR statistics in parallel processes,
Python scorers beside them). SPICE is left out of both (its CoreNLP jars cannot be installed
offline). Each side runs in its own Python process, so peak RSS is per side (Java children:
largest child RSS). Then 1,000 bootstrap resamples of ours.

Goals: identical numbers (|diff| <= 1e-9 per metric), ours >= 1.5x faster in total, bootstrap
< 30 s. ``--quick``: N = 1,000 and 200 resamples.

    .venv/bin/python benchmarks/bench_metrics.py [--quick] [--n N] [--resamples R]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

KEYS = ["Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "METEOR", "ROUGE_L", "CIDEr"]


def make_captions(n: int, seed: int = 0) -> tuple[dict[str, list[str]], dict[str, str]]:
    """Template captions of random blocky label maps (references) and of perturbed maps (candidates)."""
    from cen.generate.template import template_caption

    rng = np.random.default_rng(seed)
    refs, cands = {}, {}
    for i in range(n):
        k = int(rng.integers(2, 6))
        classes = rng.choice(np.arange(1, 12), size=k, replace=False)
        blocks = rng.choice(classes, size=(8, 8)).astype(np.uint8)
        labels = np.kron(blocks, np.ones((8, 8), dtype=np.uint8))
        changed = labels.copy()
        r, c = rng.integers(0, 8, size=2)
        changed[r * 8:(r + 1) * 8, c * 8:(c + 1) * 8] = rng.integers(1, 12)
        refs[f"tile_{i:05d}"] = [template_caption(labels, seed=0)]
        cands[f"tile_{i:05d}"] = template_caption(changed, seed=1)
    return refs, cands


def _peak() -> dict[str, float]:
    return {"python_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "java_child_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}


def run_raw(data: Path) -> dict:
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.meteor.meteor import Meteor
    from pycocoevalcap.rouge.rouge import Rouge
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    d = json.loads(data.read_text())
    refs, cands = d["refs"], d["cands"]
    seconds, scores = {}, {}
    start = t = time.perf_counter()
    tok = PTBTokenizer()
    gts = tok.tokenize({k: [{"caption": c} for c in v] for k, v in refs.items()})
    res = tok.tokenize({k: [{"caption": v}] for k, v in cands.items()})
    seconds["tokenize"] = time.perf_counter() - t
    t = time.perf_counter()
    b, _ = Bleu(4).compute_score(gts, res, verbose=0)
    scores.update({f"Bleu_{i + 1}": b[i] for i in range(4)})
    seconds["Bleu"] = time.perf_counter() - t
    t = time.perf_counter()
    m = Meteor()
    scores["METEOR"], _ = m.compute_score(gts, res)
    del m
    seconds["METEOR"] = time.perf_counter() - t
    t = time.perf_counter()
    scores["ROUGE_L"], _ = Rouge().compute_score(gts, res)
    seconds["ROUGE_L"] = time.perf_counter() - t
    t = time.perf_counter()
    scores["CIDEr"], _ = Cider().compute_score(gts, res)
    seconds["CIDEr"] = time.perf_counter() - t
    seconds["total"] = time.perf_counter() - start
    return {"scores": {k: float(v) for k, v in scores.items()}, "seconds": seconds, "peak": _peak()}


def run_ours(data: Path, resamples: int, processes: int | None = None) -> dict:
    from cen import metrics

    d = json.loads(data.read_text())
    t = time.perf_counter()
    ev = metrics.evaluate(d["refs"], d["cands"], metrics=KEYS, meteor_processes=processes)
    total = time.perf_counter() - t
    peak_eval = _peak()
    t = time.perf_counter()
    boot = ev.bootstrap(resamples, seed=0)
    boot_s = time.perf_counter() - t
    metrics.close_meteor_pool()  # reap the kept METEOR processes so their peak RSS is counted
    return {"scores": ev.scores, "seconds": {**ev.seconds, "total": total}, "bootstrap_s": boot_s,
            "bootstrap": boot.reset_index().to_dict(orient="records"), "peak": peak_eval, "peak_after_bootstrap": _peak()}


def _child(phase: str, data: Path, resamples: int, processes: int | None = None) -> dict:
    extra = ["--processes", str(processes)] if processes else []
    out = subprocess.run([sys.executable, __file__, "--phase", phase, "--data", str(data), "--resamples", str(resamples),
                          *extra],
                         stdout=subprocess.PIPE, check=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="N = 1,000 captions, 200 resamples")
    p.add_argument("--n", type=int, help="number of captions [10,000; quick 1,000]")
    p.add_argument("--resamples", type=int, help="bootstrap resamples [1,000; quick 200]")
    p.add_argument("--processes", type=int, help="METEOR processes for cen [cen.metrics default for N]")
    p.add_argument("--phase", choices=["raw", "ours"], help=argparse.SUPPRESS)
    p.add_argument("--data", help=argparse.SUPPRESS)
    args = p.parse_args()
    resamples = args.resamples or (200 if args.quick else 1000)
    if args.phase:
        result = run_raw(Path(args.data)) if args.phase == "raw" else run_ours(Path(args.data), resamples, args.processes)
        print(json.dumps(result))
        return 0

    n = args.n or (1000 if args.quick else 10000)
    print(f"bench_metrics: {n} synthetic template captions on random label maps (1 reference each), "
          f"{resamples} bootstrap resamples; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start")
    from cen.metrics import default_meteor_processes

    print(f"cen uses {args.processes or default_meteor_processes(n)} METEOR processes")
    t = time.perf_counter()
    refs, cands = make_captions(n)
    words = np.mean([len(c.split()) for c in cands.values()])
    print(f"made captions in {time.perf_counter() - t:.1f} s; mean {words:.0f} words per candidate")
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "captions.json"
        data.write_text(json.dumps({"refs": refs, "cands": cands}))
        raw = _child("raw", data, resamples)
        ours = _child("ours", data, resamples, args.processes)
    load_end = os.getloadavg()[0]

    print(f"\n{'step':10s} {'raw s':>8s} {'cen s':>8s}   (cen steps overlap: METEOR runs beside the Python scorers)")
    for step in ["tokenize", "Bleu", "METEOR", "ROUGE_L", "CIDEr", "total"]:
        print(f"{step:10s} {raw['seconds'][step]:8.2f} {ours['seconds'].get(step, float('nan')):8.2f}")
    diffs = {k: abs(raw["scores"][k] - ours["scores"][k]) for k in KEYS}
    print(f"\n{'metric':10s} {'raw':>12s} {'cen':>12s} {'|diff|':>9s}   95% CI (cen bootstrap)")
    ci = {r["metric"]: r for r in ours["bootstrap"]}
    for k in KEYS:
        print(f"{k:10s} {raw['scores'][k]:12.8f} {ours['scores'][k]:12.8f} {diffs[k]:9.1e}   "
              f"[{ci[k]['low']:.4f}, {ci[k]['high']:.4f}]")
    ratio = raw["seconds"]["total"] / ours["seconds"]["total"]
    print(f"\npeak RSS raw: Python {raw['peak']['python_mb']:.0f} MB, Java child {raw['peak']['java_child_mb']:.0f} MB; "
          f"cen: Python {ours['peak']['python_mb']:.0f} MB (after bootstrap "
          f"{ours['peak_after_bootstrap']['python_mb']:.0f} MB), largest Java child "
          f"{ours['peak_after_bootstrap']['java_child_mb']:.0f} MB")
    print(f"total raw {raw['seconds']['total']:.1f} s, cen {ours['seconds']['total']:.1f} s, ratio {ratio:.2f}x; "
          f"bootstrap {resamples} resamples {ours['bootstrap_s']:.1f} s; load average at end {load_end:.1f}")
    max_diff = max(diffs.values())
    print(f"RESULT metrics_max_abs_diff={max_diff:.1e} goal=<=1e-09 met={'yes' if max_diff <= 1e-9 else 'no'}")
    print(f"RESULT metrics_speedup={ratio:.2f} goal=>=1.5 met={'yes' if ratio >= 1.5 else 'no'}")
    print(f"RESULT bootstrap_{resamples}_seconds={ours['bootstrap_s']:.1f} goal=<30 "
          f"met={'yes' if ours['bootstrap_s'] < 30 else 'no'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
