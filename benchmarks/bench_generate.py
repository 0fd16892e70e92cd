"""Caption generation throughput: the release's sequential loop vs ``cen.generate``, and kill+resume.

Both talk to the local OpenAI-compatible server (``tests/openai_server.py``, started as a
separate process) with a fixed latency per chat completion (200 ms by default):

* **release style**: one ``requests.post`` at a time, the release's retry helper (3 attempts,
  2 s apart), then ``time.sleep(0.5)`` after every request (as in
  ``generate_description_chatgpt3_5_text.py``);
* **ours**: :func:`cen.generate.generate` with the real ``openai`` client, ``--concurrency``
  requests in flight, writing every answer to the SQLite cache.

Then a client process is SIGKILLed mid-run and the run resumed; duplicate paid calls are
counted from the server's request log (two billed completions of the same messages).

``python benchmarks/bench_generate.py [--quick]``; ends with ``RESULT`` lines.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from openai_server import billed_calls, duplicate_paid_calls, read_log  # noqa: E402

from cen import prompting as P  # noqa: E402
from cen.generate.runner import GenerateConfig, generate  # noqa: E402
from cen.stats import stats_table  # noqa: E402

KEY_ENV = "CEN_BENCH_KEY"


def start_server(tmp: Path, latency: float) -> tuple[subprocess.Popen, str, Path]:
    """The fake API in its own process; returns (process, base_url, log path)."""
    port_file, log = tmp / "port", tmp / "server.jsonl"
    proc = subprocess.Popen([sys.executable, str(ROOT / "tests" / "openai_server.py"), "--latency", str(latency),
                             "--log", str(log), "--port-file", str(port_file)])
    deadline = time.time() + 30
    while not port_file.exists():
        if time.time() > deadline or proc.poll() is not None:
            raise RuntimeError("fake OpenAI server did not start")
        time.sleep(0.05)
    return proc, f"http://127.0.0.1:{port_file.read_text()}/v1", log


def make_requests(n: int, seed: int) -> tuple[list[P.PromptRequest], "object"]:
    rng = np.random.default_rng(seed)
    maps = rng.integers(0, 12, (n, 64, 64)).astype(np.uint8)
    table = stats_table(maps, [f"bench{seed}_{i:05d}" for i in range(n)])
    return P.build_requests(table, "gpt35"), table


def release_style(requests: list[P.PromptRequest], base_url: str, model: str) -> float:
    """Seconds for the release's loop: sequential POSTs with its retry helper and a 0.5 s sleep."""
    import requests as http

    def post_with_retry(url: str, headers: dict, json: dict, max_retries: int = 3, delay: float = 2.0):
        for _ in range(max_retries):
            try:
                r = http.post(url, headers=headers, json=json, timeout=60)
                r.raise_for_status()
                return r
            except http.exceptions.RequestException:
                time.sleep(delay)
        raise RuntimeError(f"Failed to POST to {url} after {max_retries} retries")

    headers = {"Authorization": f"Bearer {os.environ[KEY_ENV]}", "Content-Type": "application/json"}
    t0 = time.perf_counter()
    for req in requests:
        data = {"model": model, "max_tokens": req.max_tokens, "messages": req.messages}
        r = post_with_retry(f"{base_url}/chat/completions", headers, data)
        r.json()
        time.sleep(0.5)
    return time.perf_counter() - t0


_CLIENT = textwrap.dedent("""
    import sys, pandas as pd
    from cen import prompting as P
    from cen.generate.runner import GenerateConfig, generate
    table = pd.read_parquet(sys.argv[1])
    generate(P.build_requests(table, "gpt35"), GenerateConfig(backend="openai", base_url=sys.argv[2],
             model="gpt-3.5-turbo-1106", api_key_env="CEN_BENCH_KEY", concurrency=int(sys.argv[4]), progress=False),
             cache_path=sys.argv[3])
""")


def kill_and_resume(tmp: Path, base_url: str, log: Path, n: int, concurrency: int) -> dict:
    """SIGKILL a client process after about a third of its calls, resume, count duplicates."""
    _, table = make_requests(n, seed=7)
    table.to_parquet(tmp / "kill_stats.parquet")
    script = tmp / "client.py"
    script.write_text(_CLIENT)
    cache = tmp / "kill.sqlite"
    before = len(billed_calls(read_log(log)))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, str(script), str(tmp / "kill_stats.parquet"), base_url, str(cache),
                             str(concurrency)], env=env)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if len(billed_calls(read_log(log))) - before >= n // 3:
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    paid_at_kill = len(billed_calls(read_log(log))) - before
    reqs = P.build_requests(table, "gpt35")
    res = generate(reqs, GenerateConfig(backend="openai", base_url=base_url, model="gpt-3.5-turbo-1106",
                                        api_key_env=KEY_ENV, concurrency=concurrency, progress=False,
                                        recover_grace=1.0), cache_path=cache)
    entries = [e for e in read_log(log)[0:] if e.get("messages_sha")]
    shas = {P.messages_hash(r.messages) for r in reqs}
    mine = [e for e in entries if e.get("messages_sha") in shas]
    return {
        "paid_at_kill": paid_at_kill,
        "recovered": res.counts.get("recovered", 0),
        "resent_or_new": res.counts.get("ok", 0),
        "cached": res.counts.get("cached", 0),
        "captions_missing": int(res.captions["text"].isna().sum()),
        "duplicates": duplicate_paid_calls(mine),
        "billed": len(billed_calls(mine)),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small version (about 20 s)")
    ap.add_argument("--latency", type=float, default=0.2)
    ap.add_argument("--concurrency", type=int, default=64)
    args = ap.parse_args()
    n_release, n_ours, n_kill = (6, 400, 300) if args.quick else (20, 3000, 1000)
    os.environ.setdefault(KEY_ENV, "sk-bench-local")
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        server, base_url, log = start_server(tmp, args.latency)
        try:
            model = "gpt-3.5-turbo-1106"
            base_reqs, _ = make_requests(n_release, seed=1)
            t_release = release_style(base_reqs, base_url, model)
            release_rate = n_release / t_release

            reqs, _ = make_requests(n_ours, seed=2)
            import openai  # noqa: F401 - import cost is not a per-request cost
            cfg = GenerateConfig(backend="openai", base_url=base_url, model=model, api_key_env=KEY_ENV,
                                 concurrency=args.concurrency, progress=False)
            cpu0, t0 = time.process_time(), time.perf_counter()
            res = generate(reqs, cfg, cache_path=tmp / "ours.sqlite")
            wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
            assert res.counts == {"ok": n_ours}, res.counts
            ours_rate = n_ours / wall
            cpu_ms = 1000 * cpu / n_ours
            t1 = time.perf_counter()
            again = generate(reqs, cfg, cache_path=tmp / "ours.sqlite")
            rerun = time.perf_counter() - t1
            assert again.counts == {"cached": n_ours}

            kill = kill_and_resume(tmp, base_url, log, n_kill, args.concurrency)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=10)
    speedup = ours_rate / release_rate
    print(f"server latency {args.latency * 1000:.0f} ms/request; machine load average at start {load:.1f} on "
          f"{os.cpu_count()} cores (shared)")
    print(f"{'':24}{'requests':>10}{'seconds':>10}{'captions/s':>12}")
    print(f"{'release style (0.5 s)':24}{n_release:>10}{t_release:>10.2f}{release_rate:>12.2f}")
    print(f"{'cen.generate c=' + str(args.concurrency):24}{n_ours:>10}{wall:>10.2f}{ours_rate:>12.1f}")
    print(f"{'re-run from cache':24}{n_ours:>10}{rerun:>10.2f}{n_ours / rerun:>12.1f}")
    print(f"client CPU per request (ours): {cpu_ms:.2f} ms")
    print(f"kill -9 after {kill['paid_at_kill']} paid calls of {n_kill}; resume: {kill['cached']} cached, "
          f"{kill['recovered']} recovered from the server, {kill['resent_or_new']} sent; "
          f"{kill['captions_missing']} captions missing; {kill['billed']} billed calls; "
          f"{kill['duplicates']} duplicates")
    print(f"RESULT generate_speedup={speedup:.1f} goal=>=100 met={'yes' if speedup >= 100 else 'no'}")
    print(f"RESULT generate_captions_per_s={ours_rate:.1f} goal=>=143 met={'yes' if ours_rate >= 143 else 'no'}")
    print(f"RESULT generate_client_cpu_ms_per_request={cpu_ms:.2f} goal=<=5 met={'yes' if cpu_ms <= 5 else 'no'}")
    dup_ok = kill["duplicates"] == 0 and kill["captions_missing"] == 0
    print(f"RESULT generate_duplicate_paid_calls_after_kill={kill['duplicates']} goal===0 met={'yes' if dup_ok else 'no'}")


if __name__ == "__main__":
    main()
