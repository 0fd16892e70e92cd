"""Caption generation throughput: the release's sequential loop vs ``cen.generate``, and kill+resume.

Both talk to the local OpenAI-compatible server (``tests/openai_server.py``, started as a
separate process) with a fixed latency per chat completion (200 ms by default):

* **release style**: one ``requests.post`` at a time, the release's retry helper (3 attempts,
  2 s apart), then ``time.sleep(0.5)`` after every request (as in
  ``generate_description_chatgpt3_5_text.py``);
* **ours**: :func:`cen.generate.generate` with the real ``openai`` client, ``--concurrency``
  requests in flight, writing every answer to the SQLite cache.

Then:

* **rate limits**: a server with a token-bucket limiter (600 RPM, 150,000 TPM, counting prompt
  tokens + ``max_tokens`` at admission, as OpenAI does) and no ``--rpm``/``--tpm`` given: ours
  (pacing by the ``x-ratelimit-*`` headers) vs the old limiter (``adapt_rate=False``, which only
  knows ``--rpm``/``--tpm``). Achieved tokens per minute as a share of the limit, measured after
  the initial full bucket (admitted tokens beyond the capacity / (rate x time from the first to
  the last admission)), and the share of requests answered 429. ``--quick`` shortens the
  server's "minute" to 10 s (same limits per window, six times the pace);
* **kill -9 and resume**: the server's ``kill_after`` hook SIGKILLs the client process right
  after its n-th billed answer; the run is resumed with and without ``recover_in_flight``;
  duplicate paid calls (two billed completions of the same messages) come from the server's log;
* **a closed port**: seconds until a run of 200 tiles gives up (circuit breaker);
* **the client's path**: CPU per request of ``chat.completions.with_raw_response.create`` (used)
  vs the raw ``client.post`` route (dropped: it saved less than 2 ms per request).

``python benchmarks/bench_generate.py [--quick]``; ends with ``RESULT`` lines.
"""

from __future__ import annotations

import argparse
import json
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


def start_server(tmp: Path, latency: float, *extra: str, name: str = "server") -> tuple[subprocess.Popen, str, Path]:
    """The fake API in its own process; returns (process, base_url, log path)."""
    port_file, log = tmp / f"{name}.port", tmp / f"{name}.jsonl"
    proc = subprocess.Popen([sys.executable, str(ROOT / "tests" / "openai_server.py"), "--latency", str(latency),
                             "--log", str(log), "--port-file", str(port_file), *extra])
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
             model="gpt-3.5-turbo-1106", api_key_env="CEN_BENCH_KEY", concurrency=int(sys.argv[4]), progress=False,
             recover_in_flight=sys.argv[5] == "1"), cache_path=sys.argv[3])
""")


def control(base_url: str, **settings) -> None:
    """POST settings to the fake server's ``/_control``."""
    import requests as http

    r = http.post(base_url.removesuffix("/v1") + "/_control", json=settings, timeout=10)
    r.raise_for_status()


def kill_and_resume(tmp: Path, base_url: str, log: Path, n: int, concurrency: int, recover: bool) -> dict:
    """SIGKILL a client process right after its ``n // 3``-th billed answer (server hook), resume, count duplicates."""
    _, table = make_requests(n, seed=7 if recover else 8)
    stats = tmp / f"kill_stats_{int(recover)}.parquet"
    table.to_parquet(stats)
    script = tmp / "client.py"
    script.write_text(_CLIENT)
    cache = tmp / f"kill_{int(recover)}.sqlite"
    before = len(billed_calls(read_log(log)))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, str(script), str(stats), base_url, str(cache), str(concurrency),
                             "1" if recover else "0"], env=env)
    control(base_url, kill_after={"billed": before + n // 3, "pid": proc.pid, "signal": int(signal.SIGKILL)})
    proc.wait(timeout=300)
    control(base_url, kill_after=None)
    paid_at_kill = len(billed_calls(read_log(log))) - before
    reqs = P.build_requests(table, "gpt35")
    res = generate(reqs, GenerateConfig(backend="openai", base_url=base_url, model="gpt-3.5-turbo-1106",
                                        api_key_env=KEY_ENV, concurrency=concurrency, progress=False,
                                        recover_in_flight=recover, recover_grace=1.0), cache_path=cache)
    time.sleep(1.0)  # let the killed client's last requests finish on the server before counting
    shas = {P.messages_hash(r.messages) for r in reqs}
    mine = [e for e in read_log(log) if e.get("messages_sha") in shas]
    return {
        "killed": proc.returncode == -signal.SIGKILL,
        "paid_at_kill": paid_at_kill,
        "recovered": res.counts.get("recovered", 0),
        "resent_or_new": res.counts.get("ok", 0),
        "cached": res.counts.get("cached", 0),
        "captions_missing": int(res.captions["text"].isna().sum()),
        "duplicates": duplicate_paid_calls(mine),
        "billed": len(billed_calls(mine)),
    }


def rate_limit_run(tmp: Path, n: int, adaptive: bool, *, rpm: float, tpm: float, window: float, latency: float,
                   concurrency: int) -> dict:
    """``n`` GPT-3.5 requests against a fresh token-bucket server; usage of its TPM limit and 429 share."""
    name = f"rl_{'ours' if adaptive else 'old'}"
    server, base_url, log = start_server(tmp, latency, "--rpm", str(rpm), "--tpm", str(tpm), "--window", str(window),
                                         name=name)
    try:
        reqs, _ = make_requests(n, seed=11 if adaptive else 12)
        cfg = GenerateConfig(backend="openai", base_url=base_url, model="gpt-3.5-turbo-1106", api_key_env=KEY_ENV,
                             concurrency=concurrency, progress=False, adapt_rate=adaptive, max_retries=8,
                             backoff_base=0.5)
        t0 = time.perf_counter()
        res = generate(reqs, cfg, cache_path=tmp / f"{name}.sqlite")
        wall = time.perf_counter() - t0
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=10)
    posts = [e for e in read_log(log) if e.get("path") == "/v1/chat/completions" and e.get("method") == "POST"]
    admitted = [e for e in posts if e.get("status") != 429 and "t_admit" in e]
    tokens = sum(e["rl_tokens"] for e in admitted)
    times = sorted(e["t_admit"] for e in admitted)
    span = times[-1] - times[0] if len(times) > 1 else float("nan")
    rate = tpm / window
    share = (tokens - tpm) / (rate * span) if span > 0 and tokens > tpm else float("nan")
    return {"share": share, "rejected": sum(e.get("status") == 429 for e in posts) / max(1, len(posts)),
            "n_429": sum(e.get("status") == 429 for e in posts), "posts": len(posts), "wall": wall,
            "failed": int((~res.captions["status"].isin(["ok", "cached"])).sum()),
            "tokens_per_request": tokens / max(1, len(admitted))}


def closed_port(tmp: Path, n: int) -> tuple[float, int]:
    """Seconds until a run of ``n`` tiles against a closed port gives up, and the attempts it made."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    reqs, _ = make_requests(n, seed=13)
    cfg = GenerateConfig(backend="openai", base_url=f"http://127.0.0.1:{port}/v1", model="gpt-3.5-turbo-1106",
                         api_key_env=KEY_ENV, progress=False)
    t0 = time.perf_counter()
    res = generate(reqs, cfg, cache_path=tmp / "closed.sqlite")
    return time.perf_counter() - t0, res.requests.get("attempts", 0)


def client_paths(base_url: str, n: int) -> dict[str, float]:
    """Client CPU ms per request of the client's own path vs the raw ``client.post`` route (server in its own process)."""
    import asyncio

    from openai.types.chat import ChatCompletion

    from cen.generate.openai_backend import make_client

    reqs, _ = make_requests(n, seed=14)

    async def run(mode: str) -> float:
        client = make_client(base_url, api_key_env=KEY_ENV)
        sem = asyncio.Semaphore(32)

        async def one(r) -> None:
            async with sem:
                if mode == "post":
                    await client.post("/chat/completions", cast_to=ChatCompletion,
                                      body={"model": "m", "messages": r.messages, "max_tokens": r.max_tokens})
                else:
                    raw = await client.chat.completions.with_raw_response.create(model="m", messages=r.messages,
                                                                                 max_tokens=r.max_tokens)
                    json.loads(raw.text)

        await asyncio.gather(*(one(r) for r in reqs[:16]))
        c0 = time.process_time()
        await asyncio.gather(*(one(r) for r in reqs))
        cpu = time.process_time() - c0
        await client.close()
        return 1000 * cpu / n

    out = {m: [] for m in ("post", "create")}
    for _ in range(2):
        for m in out:
            out[m].append(asyncio.run(run(m)))
    return {m: min(v) for m, v in out.items()}


def result(name: str, value: float, op: str, goal: float, fmt: str = ".2f") -> str:
    met = {">=": value >= goal, "<=": value <= goal, "==": value == goal, "<": value < goal}[op]
    return f"RESULT {name}={value:{fmt}} goal={op}{goal:g} met={'yes' if met else 'no'}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small version (about a minute)")
    ap.add_argument("--latency", type=float, default=0.2)
    ap.add_argument("--concurrency", type=int, default=64)
    args = ap.parse_args()
    n_release, n_ours, n_kill = (6, 400, 300) if args.quick else (20, 3000, 1000)
    n_rl, window = (400, 10.0) if args.quick else (500, 60.0)
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
            paths = client_paths(base_url, 200 if args.quick else 600)

            kills = {rec: kill_and_resume(tmp, base_url, log, n_kill, args.concurrency, rec) for rec in (True, False)}
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=10)
        limits = dict(rpm=600.0, tpm=150_000.0, window=window, latency=args.latency, concurrency=args.concurrency)
        rl = {adaptive: rate_limit_run(tmp, n_rl, adaptive, **limits) for adaptive in (True, False)}
        t_closed, attempts_closed = closed_port(tmp, 200)
    speedup = ours_rate / release_rate
    print(f"server latency {args.latency * 1000:.0f} ms/request; machine load average at start {load:.1f} on "
          f"{os.cpu_count()} cores (shared)")
    print(f"{'':24}{'requests':>10}{'seconds':>10}{'captions/s':>12}")
    print(f"{'release style (0.5 s)':24}{n_release:>10}{t_release:>10.2f}{release_rate:>12.2f}")
    print(f"{'cen.generate c=' + str(args.concurrency):24}{n_ours:>10}{wall:>10.2f}{ours_rate:>12.1f}")
    print(f"{'re-run from cache':24}{n_ours:>10}{rerun:>10.2f}{n_ours / rerun:>12.1f}")
    print(f"client CPU per request (ours): {cpu_ms:.2f} ms; client path: with_raw_response.create "
          f"{paths['create']:.2f} ms, raw client.post {paths['post']:.2f} ms")
    for rec, kill in kills.items():
        print(f"kill -9 ({'with' if rec else 'without'} --recover-in-flight) after {kill['paid_at_kill']} paid calls "
              f"of {n_kill}: resume: {kill['cached']} cached, {kill['recovered']} recovered from the server, "
              f"{kill['resent_or_new']} sent; {kill['captions_missing']} captions missing; {kill['billed']} billed; "
              f"{kill['duplicates']} duplicates")
    print(f"rate limits: 600 RPM, 150,000 TPM per {window:g} s window, {n_rl} requests, no --rpm/--tpm; "
          f"{rl[True]['tokens_per_request']:.0f} tokens counted per request")
    print(f"{'':22}{'TPM share':>10}{'429 share':>10}{'429s':>7}{'posts':>7}{'failed':>7}{'seconds':>9}")
    for adaptive, name in ((True, "ours (headers)"), (False, "old limiter")):
        r = rl[adaptive]
        print(f"{name:22}{r['share']:>10.3f}{r['rejected']:>10.3f}{r['n_429']:>7}{r['posts']:>7}{r['failed']:>7}"
              f"{r['wall']:>9.1f}")
    print(f"closed port, 200 tiles: gave up after {t_closed:.2f} s and {attempts_closed} attempts")
    print(result("generate_speedup", speedup, ">=", 100, ".1f"))
    print(result("generate_captions_per_s", ours_rate, ">=", 143, ".1f"))
    print(result("generate_client_cpu_ms_per_request", cpu_ms, "<=", 5))
    print(result("generate_client_path_extra_cpu_ms", paths["create"] - paths["post"], "<=", 2))
    print(result("generate_ratelimit_tpm_share", rl[True]["share"], ">=", 0.9, ".3f"))
    print(result("generate_ratelimit_429_share", rl[True]["rejected"], "<=", 0.02, ".3f"))
    print(result("generate_ratelimit_tpm_share_old_limiter", rl[False]["share"], ">=", 0.9, ".3f"))
    print(result("generate_ratelimit_429_share_old_limiter", rl[False]["rejected"], "<=", 0.02, ".3f"))
    with_rec, without = kills[True], kills[False]
    lost = with_rec["captions_missing"] + without["captions_missing"]
    print(result("generate_duplicate_paid_calls_after_kill", with_rec["duplicates"], "==", 0, "d"))
    print(result("generate_duplicate_paid_calls_after_kill_without_recovery", without["duplicates"], "<=",
                 args.concurrency, "d"))
    print(result("generate_lost_captions_after_kill", lost, "==", 0, "d"))
    print(result("generate_closed_port_give_up_s", t_closed, "<", 10))


if __name__ == "__main__":
    main()
