"""A generation run as a paying user meets it, against the local OpenAI-compatible server driven by
the real openai client: exit codes and messages, a budget that holds across invocations, unknown
models, the circuit breaker, merging into captions.parquet, Ctrl-C and kill -9 at deterministic
points (the server's ``kill_after`` hook), duplicate ids."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cen import prompting as P
from cen.cli import main
from cen.generate.cache import GenerationCache
from cen.generate.runner import GenerateConfig, generate, generate_for_workdir, merge_captions, read_captions
from cen.stats import stats_table
from openai_server import OpenAIServer, billed_calls, duplicate_paid_calls

ROOT = Path(__file__).resolve().parents[1]
MODEL = "gpt-3.5-turbo-1106"  # 1.00 / 2.00 USD per 1M tokens


pytestmark = pytest.mark.usefixtures("openai_test_key")


@pytest.fixture
def server(openai_server):
    return openai_server


def _workdir(tmp_path: Path, n: int, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    maps = rng.integers(0, 12, (n, 32, 32)).astype(np.uint8)
    wd = tmp_path / "run"
    wd.mkdir(exist_ok=True)
    stats_table(maps, [f"w{seed}_{i:04d}" for i in range(n)]).to_parquet(wd / "stats.parquet")
    return wd


def _args(server, wd: Path, cache: Path, *extra: str) -> list[str]:
    return ["generate", "--workdir", str(wd), "--backend", "openai", "--base-url", server.base_url,
            "--api-key-env", "CEN_TEST_KEY", "--paradigm", "gpt35", "--cache", str(cache), *extra]


def _cfg(server, **kw) -> GenerateConfig:
    base = dict(backend="openai", base_url=server.base_url, model=MODEL, api_key_env="CEN_TEST_KEY", concurrency=8,
                backoff_base=0.01, progress=False)
    base.update(kw)
    return GenerateConfig(**base)


def _worst_case(wd: Path) -> float:
    """USD of one request's worst case (prompt tokens + max_tokens at gpt-3.5-turbo-1106's price)."""
    stats = pd.read_parquet(wd / "stats.parquet")
    req = P.build_requests(stats.head(1), "gpt35")[0]
    n_in = P.count_message_tokens(req.messages, MODEL)[0]
    return (n_in * 1.0 + req.max_tokens * 2.0) / 1e6


def test_budget_holds_across_invocations_and_exit_code_says_so(server, tmp_path, capsys):
    wd = _workdir(tmp_path, 40)
    cache = tmp_path / "c.sqlite"
    budget = 3.5 * _worst_case(wd)  # room for three requests' worst case
    codes = [main(_args(server, wd, cache, "--budget", f"{budget:.8f}", "--concurrency", "2")) for _ in range(3)]
    out = capsys.readouterr()
    assert codes == [2, 2, 2]  # captions are missing: never 0
    billed = billed_calls(server.log)
    paid = sum((e["usage"]["prompt_tokens"] * 1.0 + e["usage"]["completion_tokens"] * 2.0) / 1e6 for e in billed)
    assert 3 <= len(billed) < 40 and paid <= budget  # all three invocations together stay under the budget
    lines = [ln for ln in out.err.splitlines() if "budget_stopped" in ln]
    assert len(lines) == 3 and all("raise --budget" in ln and "(tiles w0_00" in ln for ln in lines)
    n_stopped = 40 - len(billed)
    assert lines[-1].startswith(f"cen generate: {n_stopped} captions budget_stopped (tiles ")
    assert f"{len(billed)} of 40 asked captions have an answer" in out.err
    assert "requests (" in out.out and "sent in" in out.out  # requests reported apart from caption rows
    # the ledger in the cache holds the run's total over the invocations
    from cen.generate.console import ledger_table

    table = ledger_table(cache)
    assert len(table) == 1 and table["calls"].iloc[0] == len(billed) and table["invocations"].iloc[0] >= 2
    assert table["cost_usd"].iloc[0] == pytest.approx(paid)
    assert main(["generate", "--ledger", "--cache", str(cache)]) == 0
    assert f"total {paid:.4f} USD" in capsys.readouterr().out
    caps = read_captions(wd / "captions.parquet")
    assert len(caps) == 40 and int(caps["status"].isin(["ok", "cached"]).sum()) == len(billed)


def test_unknown_model_is_never_priced_as_another(server, tmp_path, capsys):
    wd = _workdir(tmp_path, 3)
    cache = tmp_path / "c.sqlite"
    assert P.price_for("gpt-4o-mni") is None and P.price_for("gpt-4o-2024-08-06") == P.PRICES["gpt-4o"]
    assert main(_args(server, wd, cache, "--model", "gpt-4o-mni", "--budget", "1")) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no price for model 'gpt-4o-mni'" in err and "--price-in" in err
    assert not server.log  # refused before sending anything
    assert main(_args(server, wd, cache, "--model", "gpt-4o-mni", "--estimate")) == 0
    cap = capsys.readouterr()
    assert "False" in cap.out and "no price for model 'gpt-4o-mni'" in cap.err
    # with its prices given, the run is budgeted at those prices
    assert main(_args(server, wd, cache, "--model", "gpt-4o-mni", "--budget", "1", "--price-in", "100",
                      "--price-out", "200")) == 0
    billed = billed_calls(server.log)
    want = sum(e["usage"]["prompt_tokens"] * 100 + e["usage"]["completion_tokens"] * 200 for e in billed) / 1e6
    caps = read_captions(wd / "captions.parquet")
    assert len(billed) == 3 and caps["cost_usd"].sum() == pytest.approx(want)
    with pytest.raises(ValueError, match="no price for model 'my-model'"):
        generate(P.build_requests(pd.read_parquet(wd / "stats.parquet"), "gpt35"),
                 _cfg(server, model="my-model", budget_usd=1.0), cache_path=cache)


def test_circuit_breaker_unknown_model_and_closed_port(server, tmp_path, capsys):
    wd = _workdir(tmp_path, 200)
    server.configure(models=[MODEL])
    assert main(_args(server, wd, tmp_path / "c.sqlite", "--model", "gpt-4o-mini-typo", "--breaker-after", "4")) == 2
    err = capsys.readouterr().err
    posts = [e for e in server.log if e["path"] == "/v1/chat/completions"]
    # the time bound, as a request count: K identical failures (+ at most --concurrency in flight), no retries
    assert 4 <= len(posts) <= 4 + 32 and all(e["status"] == 404 for e in posts)
    assert "check --model" in err and "stopped http_404" in err
    caps = read_captions(wd / "captions.parquet")
    assert caps["status"].value_counts().to_dict() == {"stopped": 200 - len(posts), "failed": len(posts)}
    assert (caps.loc[caps["status"] == "failed", "attempts"] == 1).all()
    # a closed port: connection refused is not retried either
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    reqs = P.build_requests(pd.read_parquet(wd / "stats.parquet"), "gpt35")
    res = generate(reqs, GenerateConfig(backend="openai", base_url=f"http://127.0.0.1:{port}/v1", model=MODEL,
                                        api_key_env="CEN_TEST_KEY", progress=False, breaker_after=5),
                   cache_path=tmp_path / "d.sqlite")
    assert 5 <= res.requests["attempts"] <= 5 + 32 and res.requests["retries"] == 0
    assert set(res.counts) == {"failed", "stopped"}
    assert res.captions["error"].str.contains("connection_refused").all()


def test_merge_never_replaces_an_answer_by_a_failure(server, tmp_path, capsys):
    wd = _workdir(tmp_path, 6)
    good = generate_for_workdir(wd, _cfg(server), paradigms=["gpt35"], cache_path=tmp_path / "a.sqlite")
    assert good.counts == {"ok": 6}
    before = read_captions(wd / "captions.parquet")
    server.configure(faults=[{"status": 500, "times": 1000}])
    # a failing run with a fresh cache (every request fails), and a --limit run: no answer is lost, and
    # since every asked caption still has its answer, the command did what was asked
    assert main(_args(server, wd, tmp_path / "b.sqlite", "--max-retries", "0")) == 0
    assert "6 requests (6 failed)" in capsys.readouterr().out
    assert main(_args(server, wd, tmp_path / "b.sqlite", "--max-retries", "0", "--limit", "2")) == 0
    after = read_captions(wd / "captions.parquet")
    assert len(after) == 6 and after["text"].tolist() == before["text"].tolist()
    assert (after["status"] == "ok").all()
    # another model's answers are kept too, but they are not what this run asked for: exit 2
    assert main(_args(server, wd, tmp_path / "b.sqlite", "--model", "gpt-4o", "--budget", "0")) == 2
    err = capsys.readouterr().err
    assert "6 captions budget_stopped" in err and "0 of 6 asked captions have an answer" in err
    assert read_captions(wd / "captions.parquet")["text"].tolist() == before["text"].tolist()
    # a failure is improved by a later answer; new tiles are added
    old = before.assign(status=["ok", "failed", "ok", "ok", "ok", "ok"], text=[*before["text"][:1], None,
                                                                         *before["text"][2:]])
    extra = before.iloc[[1]].assign(tile_id="new_tile")
    merged = merge_captions(old, pd.concat([before.iloc[[1]], before.iloc[[0]].assign(status="failed", text=None),
                                            extra]))
    assert merged["tile_id"].tolist() == [*before["tile_id"], "new_tile"]
    assert merged["status"].eq("ok").all() and merged["text"].tolist()[:6] == before["text"].tolist()


def test_bad_arguments_and_bad_rows_are_one_line_errors(tmp_path, capsys):
    wd = _workdir(tmp_path, 4)
    for args, name in ((["--concurrency", "0"], "--concurrency"), (["--budget", "-1"], "--budget"),
                       (["--limit", "0"], "--limit"), (["--timeout", "0"], "--timeout"),
                       (["--price-in", "1"], "--price-in")):
        assert main(["generate", "--workdir", str(wd), *args]) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("cen generate: ") and name in err
    for args, name in ((["--concurrency", "abc"], "--concurrency"), (["--paradigm", "gpt5"], "--paradigm")):
        with pytest.raises(SystemExit) as exit_info:
            main(["generate", "--workdir", str(wd), *args])
        err = capsys.readouterr().err
        assert exit_info.value.code == 1 and err.count("\n") == 1 and name in err
    stats = pd.read_parquet(wd / "stats.parquet")
    stats.loc[2, "tile_id"] = stats.loc[0, "tile_id"]
    stats.to_parquet(wd / "stats.parquet")
    assert main(["generate", "--workdir", str(wd)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "stats.parquet" in err and "'w0_0000' appears 2 times" in err
    stats.loc[2, "tile_id"] = None
    stats.to_parquet(wd / "stats.parquet")
    assert main(["generate", "--workdir", str(wd)]) == 1
    assert "row 2 has no tile_id" in capsys.readouterr().err
    stats.loc[2, "tile_id"] = "fine"
    stats.loc[1, "gpt35_context"] = None
    stats.to_parquet(wd / "stats.parquet")
    assert main(["generate", "--workdir", str(wd), "--paradigm", "gpt35"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'w0_0001' has an empty 'gpt35_context'" in err
    reqs = P.build_requests(stats.drop(index=1), "gpt35")
    with pytest.raises(ValueError, match="appears twice"):
        generate(reqs + reqs[:1], GenerateConfig(progress=False))


def test_batch_mode_against_a_server_without_batch_api(server, tmp_path, capsys):
    wd = _workdir(tmp_path, 2)
    server.configure(batch_api=False)
    assert main(_args(server, wd, tmp_path / "c.sqlite", "--mode", "batch")) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no Batch API" in err and "--mode direct" in err


def test_cached_input_tokens_priced_at_the_cached_rate(server, tmp_path):
    wd = _workdir(tmp_path, 3)
    server.configure(cached_tokens=256)
    res = generate(P.build_requests(pd.read_parquet(wd / "stats.parquet"), "gpt35"), _cfg(server, model="gpt-4o-mini"),
                   cache_path=tmp_path / "c.sqlite")
    billed = billed_calls(server.log)
    want = sum(((e["usage"]["prompt_tokens"] - 256) * 0.15 + 256 * 0.075 + e["usage"]["completion_tokens"] * 0.60) / 1e6
               for e in billed)
    assert res.spent_usd == pytest.approx(want)
    assert res.ledger["cached_tokens"].sum() == 3 * 256 and res.captions["cached_tokens"].tolist() == [256.0] * 3


def test_fixed_part_of_every_prompt_comes_first():
    """Providers cache a prompt's longest repeated prefix: the tile-specific text comes after all fixed text."""
    rng = np.random.default_rng(5)
    maps = rng.integers(0, 12, (8, 32, 32)).astype(np.uint8)
    table = stats_table(maps, [f"f{i}" for i in range(8)])
    a, b = P.build_requests(table.iloc[[0]], "gpt35")[0], P.build_requests(table.iloc[[1]], "gpt35")[0]
    assert a.messages[0] == b.messages[0]  # the system message: all of the fixed instructions
    tpl = P.load_template("chatearthnet-gpt35-v1")
    fixed_user = tpl.texts["user.txt"].split("{context}")[0]
    assert a.messages[1]["content"].startswith(fixed_user) and b.messages[1]["content"].startswith(fixed_user)
    # the single-tile vision default: legend and constraints, then the tile's statistics, then its image
    single = P.load_template(P.SINGLE_TILE_VISION_TEMPLATE)
    fixed = single.texts["intro.txt"] + single.texts["instructions.txt"]
    labels = dict(zip(table["tile_id"], maps))
    v = P.build_requests(table.iloc[[2, 3]], "gpt4v", label_maps=labels, compat=False)
    texts = [r.messages[0]["content"][0]["text"] for r in v]
    assert single.name == "cen-gpt4v-single-v2" and all(t.startswith(fixed) for t in texts) and texts[0] != texts[1]
    assert [p["type"] for p in v[0].messages[0]["content"]] == ["text", "image_url"]


def _spawn_cli(server, wd: Path, cache: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "CEN_TEST_KEY": "sk-local-test", "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "cen.cli", *_args(server, wd, cache, *extra)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_ctrl_c_stops_cleanly_and_the_same_command_resumes(tmp_path):
    wd = _workdir(tmp_path, 60, seed=3)
    cache = tmp_path / "c.sqlite"
    with OpenAIServer(latency=0.05) as server:
        proc = _spawn_cli(server, wd, cache, "--concurrency", "4")
        server.configure(kill_after={"billed": 12, "pid": proc.pid, "signal": int(signal.SIGINT)})
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 130, err[-2000:]
        assert "Traceback" not in err
        tail = err.strip().splitlines()[-1]
        n = int(tail.split("interrupted after ")[1].split()[0])
        assert tail == f"cen generate: interrupted after {n} captions; run the same command to resume"
        assert 12 - 4 <= n <= 12  # the 12th billed answer triggered it; up to --concurrency were still in flight
        caps = read_captions(wd / "captions.parquet")  # what was answered is written
        assert int(caps["status"].eq("ok").sum()) == n
        server.configure(kill_after=None)
        again = _spawn_cli(server, wd, cache, "--concurrency", "4")
        out2, err2 = again.communicate(timeout=120)
        assert again.returncode == 0, err2[-2000:]
        assert f"{n} cached" in out2 and duplicate_paid_calls(server.log) <= 4
        # the interrupted request(s) in flight are re-sent, and the warning saying so is printed once
        assert err2.count("were in flight when a previous run stopped") == 1
        assert read_captions(wd / "captions.parquet")["status"].isin(["ok", "cached"]).all()


_CLIENT = """
import sys, pandas as pd
from cen import prompting as P
from cen.generate.runner import GenerateConfig, generate
table = pd.read_parquet(sys.argv[1])
generate(P.build_requests(table, "gpt35"), GenerateConfig(backend="openai", base_url=sys.argv[2],
         model="gpt-3.5-turbo-1106", api_key_env="CEN_TEST_KEY", concurrency=16, progress=False,
         recover_in_flight=sys.argv[4] == "1"), cache_path=sys.argv[3])
"""


@pytest.mark.parametrize("recover", [True, False])
def test_kill_9_then_resume_pays_at_most_the_in_flight_requests_twice(tmp_path, recover):
    wd = _workdir(tmp_path, 120, seed=4)
    script = tmp_path / "client.py"
    script.write_text(_CLIENT)
    cache = tmp_path / "c.sqlite"
    with OpenAIServer(latency=0.25) as server:
        env = {**os.environ, "CEN_TEST_KEY": "sk-local-test", "PYTHONPATH": str(ROOT)}
        proc = subprocess.Popen([sys.executable, str(script), str(wd / "stats.parquet"), server.base_url, str(cache),
                                 "1" if recover else "0"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        server.configure(kill_after={"billed": 30, "pid": proc.pid, "signal": int(signal.SIGKILL)})
        proc.wait(timeout=120)
        assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()[-2000:]
        server.configure(kill_after=None)
        with GenerationCache(cache) as c:
            left = len(c.in_flight())
        assert 1 <= left <= 16  # the kill hit requests in flight: at most the concurrency
        res = generate(P.build_requests(pd.read_parquet(wd / "stats.parquet"), "gpt35"),
                       GenerateConfig(backend="openai", base_url=server.base_url, model=MODEL, api_key_env="CEN_TEST_KEY",
                                      concurrency=16, progress=False, recover_in_flight=recover, recover_grace=0.5),
                       cache_path=cache)
        caps = res.captions
        assert caps["text"].notna().all() and len(caps) == 120
        if recover:
            assert res.counts.get("recovered", 0) > 0 and duplicate_paid_calls(server.log) == 0
            assert len(billed_calls(server.log)) == 120
        else:
            assert res.counts.get("recovered", 0) == 0 and duplicate_paid_calls(server.log) <= 16
            assert any("sent again and may be billed twice" in n for n in res.notes)
