"""Caption generation against a local OpenAI-compatible server, driven by the real openai client."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cen import prompting as P
from cen.generate.cache import GenerationCache
from cen.generate.ledger import BudgetExceeded, CostLedger
from cen.generate.ratelimit import backoff_delay
from cen.generate.runner import CAPTION_COLUMNS, GenerateConfig, generate, read_captions, write_captions
from cen.generate.split import split_answer
from cen.stats import stats_table
from openai_server import OpenAIServer, billed_calls, duplicate_paid_calls

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _key(monkeypatch):
    monkeypatch.setenv("CEN_TEST_KEY", "sk-local-test")


@pytest.fixture
def server():
    with OpenAIServer(latency=0.0, batch_delay=0.1) as s:
        yield s


def _table(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    maps = rng.integers(0, 12, (n, 32, 32)).astype(np.uint8)
    return stats_table(maps, [f"t{seed}_{i:04d}" for i in range(n)]), maps


def _cfg(server, **kw) -> GenerateConfig:
    base = dict(backend="openai", base_url=server.base_url, model="gpt-3.5-turbo-1106", api_key_env="CEN_TEST_KEY",
                concurrency=8, backoff_base=0.01, progress=False, recover_grace=0.2, batch_poll=0.02)
    base.update(kw)
    return GenerateConfig(**base)


def _chat_posts(server) -> list[dict]:
    return [e for e in server.log if e["method"] == "POST" and e["path"] == "/v1/chat/completions"]


def test_cache_hits_model_id_and_table(server, tmp_path):
    table, _ = _table(12)
    reqs = P.build_requests(table, "gpt35")
    cache = tmp_path / "c.sqlite"
    first = generate(reqs, _cfg(server), cache_path=cache)
    assert first.counts == {"ok": 12}
    caps = first.captions
    assert list(caps.columns) == list(CAPTION_COLUMNS)
    assert (caps["model_returned"] == "gpt-3.5-turbo-1106-0001").all()  # the id the server answered with
    assert (caps["model_requested"] == "gpt-3.5-turbo-1106").all()
    assert (caps["template_version"] == "chatearthnet-gpt35-v1@1").all()
    assert caps["messages_hash"].tolist() == [r.messages_hash for r in reqs]
    assert (caps["cost_usd"] > 0).all() and caps["paid_this_run"].all()
    assert first.spent_usd == pytest.approx(caps["cost_usd"].sum())
    # the request that left carried exactly the prompt messages (no key in the body); nothing stored
    assert len(billed_calls(server.log)) == 12
    assert all(e["metadata"] == {} for e in _chat_posts(server))  # store/metadata only with recover_in_flight
    second = generate(reqs, _cfg(server), cache_path=cache)
    assert second.counts == {"cached": 12} and second.spent_usd == 0
    assert len(billed_calls(server.log)) == 12  # nothing paid twice
    assert second.captions["text"].tolist() == caps["text"].tolist()
    assert not (second.captions["paid_this_run"]).any()
    # another model is another cache key
    third = generate(reqs[:2], _cfg(server, model="gpt-4o-mini"), cache_path=cache)
    assert third.counts == {"ok": 2}
    out = write_captions(caps, tmp_path / "captions.parquet")
    assert read_captions(out)["tile_id"].tolist() == caps["tile_id"].tolist()
    assert "sk-local-test" not in cache.read_bytes().decode("latin-1")


def test_retry_after_is_honoured_and_malformed_retried_and_billed(server, tmp_path):
    table, _ = _table(1)
    reqs = P.build_requests(table, "gpt35")
    server.configure(faults=[{"status": 429, "retry_after": 0.6}, {"status": "malformed"}, {"status": "empty_choices"},
                             {"status": "null_content"}, {"status": 503}])
    res = generate(reqs, _cfg(server, concurrency=1), cache_path=tmp_path / "c.sqlite")
    assert res.counts == {"ok": 1}
    posts = _chat_posts(server)
    assert [e["status"] for e in posts] == [429, "malformed", "empty_choices", "null_content", 503, 200]
    assert posts[1]["t_start"] - posts[0]["t_end"] >= 0.55  # waited for Retry-After, not the tiny backoff
    assert res.captions["attempts"].iloc[0] == 6
    assert res.requests["malformed"] == 3 and res.requests["retries"] == 5 and res.requests["answered_429"] == 1
    # every billed answer is in the ledger: the two with usage by it, the bad JSON by its worst case
    billed = billed_calls(server.log)
    assert [e["status"] for e in billed] == ["malformed", "empty_choices", "null_content", 200]
    est_in = P.count_message_tokens(reqs[0].messages, "gpt-3.5-turbo-1106")[0]
    want_in = est_in + sum(e["usage"]["prompt_tokens"] for e in billed[1:])
    want_out = reqs[0].max_tokens + sum(e["usage"]["completion_tokens"] for e in billed[1:])
    row = res.ledger.iloc[0]
    assert (row["calls"], row["billed_unusable"]) == (1, 3)
    assert (row["input_tokens"], row["output_tokens"]) == (want_in, want_out)
    assert res.captions["input_tokens"].iloc[0] == want_in
    assert res.spent_usd == pytest.approx((want_in * 1.0 + want_out * 2.0) / 1e6)  # gpt-3.5-turbo-1106: 1 / 2 USD per 1M


def test_final_status_after_last_retry(server, tmp_path):
    table, _ = _table(3)
    reqs = P.build_requests(table, "gpt35")
    server.configure(fail_marker=reqs[1].messages[1]["content"][-200:])
    res = generate(reqs, _cfg(server, max_retries=2), cache_path=tmp_path / "c.sqlite")
    caps = res.captions.set_index("tile_id")
    bad = caps.loc[reqs[1].tile_ids[0]]
    assert bad["status"] == "failed" and bad["error"].startswith("http_500") and bad["attempts"] == 3
    assert bad["error"].endswith("after 3 attempts")
    assert pd.isna(bad["text"])
    assert (caps.drop(reqs[1].tile_ids[0])["status"] == "ok").all()
    assert sum(e["messages_sha"] == P.messages_hash(reqs[1].messages) for e in _chat_posts(server)) == 3
    # a non-retryable error is final at once
    server.configure(fail_marker=None, faults=[{"status": 400}])
    table2, _ = _table(1, seed=9)
    res2 = generate(P.build_requests(table2, "gpt35"), _cfg(server), cache_path=tmp_path / "c.sqlite")
    assert res2.captions["status"].iloc[0] == "failed" and res2.captions["attempts"].iloc[0] == 1


def test_budget_stops_before_it_is_exceeded(server, tmp_path):
    table, _ = _table(10)
    reqs = P.build_requests(table, "gpt35")
    prices = {"priced-model": P.Price(1000.0, 1000.0)}  # USD per 1M tokens
    n_in = P.count_message_tokens(reqs[0].messages, "priced-model", prices)[0]
    worst = (n_in + 300) * 1000.0 / 1e6
    budget = 3.5 * worst
    res = generate(reqs, _cfg(server, model="priced-model", prices=prices, budget_usd=budget, concurrency=4),
                   cache_path=tmp_path / "c.sqlite")
    counts = res.counts
    assert counts.get("budget_stopped", 0) > 0 and counts.get("ok", 0) >= 3
    assert res.spent_usd <= budget
    assert len(billed_calls(server.log)) == counts["ok"]
    stopped = res.captions[res.captions["status"] == "budget_stopped"]
    assert stopped["text"].isna().all() and stopped["error"].str.contains("budget").all()
    assert res.ledger["calls"].sum() == counts["ok"]


def test_four_image_answers_split_or_flagged(server, tmp_path):
    table, maps = _table(8)
    labels = dict(zip(table["tile_id"], maps))
    reqs = P.build_requests(table, "gpt4v", label_maps=labels)
    assert [len(r.tile_ids) for r in reqs] == [4, 4]
    server.configure(answer="numbered")
    res = generate(reqs, _cfg(server, model="gpt-4o"), cache_path=tmp_path / "a.sqlite")
    assert res.counts == {"ok": 2}
    texts = res.captions["text"].tolist()
    assert all(t and not t.startswith("Image") for t in texts) and len(set(texts)) == 8
    assert (res.captions["request_tiles"] == 4).all() and res.captions["position"].tolist() == [0, 1, 2, 3] * 2
    server.configure(answer="broken")
    bad = generate(reqs, _cfg(server, model="gpt-4o"), cache_path=tmp_path / "b.sqlite")
    assert bad.counts == {"unsplittable": 2}
    assert bad.captions["text"].isna().all() and bad.captions["raw_text"].str.len().gt(50).all()


def test_batch_api_flow_and_resume(server, tmp_path):
    table, _ = _table(6)
    reqs = P.build_requests(table, "gpt35")
    cache = tmp_path / "c.sqlite"
    server.configure(batch_delay=0.8)
    with pytest.raises(TimeoutError, match="re-run"):
        generate(reqs, _cfg(server, mode="batch", batch_timeout=0.1), cache_path=cache)
    paths = [e["path"] for e in server.log]
    assert paths.count("/v1/files") == 1 and paths.count("/v1/batches") == 1
    with GenerationCache(cache) as c:
        assert len(c.pending_batches()) == 1
    res = generate(reqs, _cfg(server, mode="batch"), cache_path=cache)  # polls the same batch
    assert res.counts == {"ok": 6}
    assert [e["path"] for e in server.log].count("/v1/batches") == 1  # no second submission
    assert any("previous run" in n for n in res.notes)
    assert len(billed_calls(server.log)) == 6 and duplicate_paid_calls(server.log) == 0
    assert (res.captions["via"] == "batch").all()
    # batch price is half the direct price
    direct = P.cost_usd("gpt-3.5-turbo-1106", 1000, 100)
    assert P.cost_usd("gpt-3.5-turbo-1106", 1000, 100, batch=True) == pytest.approx(direct / 2)
    again = generate(reqs, _cfg(server, mode="batch"), cache_path=cache)
    assert again.counts == {"cached": 6} and [e["path"] for e in server.log].count("/v1/files") == 1
    written = [f for f in tmp_path.rglob("*") if f.is_file()]
    assert written and not [f for f in written if b"sk-local-test" in f.read_bytes()]  # the key is never written


def test_split_answer_layouts():
    assert split_answer("Image 1: a\nImage 2: b\nImage 3: c\nImage 4: d", 4) == ["a", "b", "c", "d"]
    assert split_answer("**First image:** a\n\n**Second image:** b\n\n**Third image:** c\n\n**Fourth image:** d", 4) == [
        "a", "b", "c", "d"]
    assert split_answer("p1 x.\n\np2 y.\n\np3\n\np4", 4) == ["p1 x.", "p2 y.", "p3", "p4"]
    assert split_answer("1. w\n2. x\n3. y\n4. z", 4) == ["w", "x", "y", "z"]
    assert split_answer("p1\n\np2\n\np3", 4) is None
    assert split_answer("Image 1: a\nImage 3: b\nImage 2: c\nImage 4: d", 4) is None  # out of order: not guessed
    assert split_answer("First image shows water.\n\nb\n\nc\n\nd", 4)[0] == "First image shows water."
    assert split_answer("", 4) is None


def test_backoff_and_ledger():
    import random

    r = random.Random(0)
    delays = [backoff_delay(k, base=1.0, cap=8.0, rng=r) for k in range(1, 8)]
    assert all(0 <= d <= min(8.0, 2 ** (k - 1)) for k, d in enumerate(delays, start=1))
    assert backoff_delay(1, base=0.01, retry_after=2.0) == 2.0
    led = CostLedger(budget_usd=1.0, prices={"m": P.Price(1e6 * 0.1, 0.0)}, prior_usd=0.2)
    booked = led.reserve("m", 5, 0)  # 0.5 USD worst case; 0.2 spent by an earlier invocation
    with pytest.raises(BudgetExceeded, match="0.2000 by earlier invocations"):
        led.reserve("m", 4, 0)
    assert led.settle(booked, "m", 3, 0) == pytest.approx(0.3)
    assert led.remaining() == pytest.approx(0.5) and led.run_total_usd == pytest.approx(0.5)
    assert led.frame()["calls"].tolist() == [1]
    # cached prompt tokens at the cached-input rate
    cheap = CostLedger(prices={"c": P.Price(2.0, 8.0, cached_input=0.5)})
    assert cheap.charge("c", 1000, 100, cached_tokens=400) == pytest.approx((600 * 2.0 + 400 * 0.5 + 100 * 8.0) / 1e6)


def test_template_backend_writes_captions_without_key(tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    table, _ = _table(5)
    res = generate(P.build_requests(table, "gpt35"), GenerateConfig(progress=False))
    assert res.counts == {"ok": 5}
    caps = res.captions
    assert (caps["model_returned"] == "template").all() and (caps["cost_usd"] == 0).all()
    assert (caps["text"].str.split().str.len() > 10).all() and caps["text"].str.endswith(".").all()
    with pytest.raises(RuntimeError, match="OPENAI_API_KEY"):
        generate(P.build_requests(table, "gpt35")[:1], GenerateConfig(backend="openai", base_url="http://127.0.0.1:9/v1",
                                                                    progress=False), cache_path=tmp_path / "x.sqlite")


def test_cli_generate_template_and_estimate(tmp_path, capsys):
    from cen.cli import main

    table, _ = _table(4)
    table.to_parquet(tmp_path / "stats.parquet")
    assert main(["generate", "--workdir", str(tmp_path), "--paradigm", "gpt35", "--estimate"]) == 0
    out = capsys.readouterr().out
    assert "gpt-3.5-turbo-1106" in out and out.splitlines()[0].startswith("4 tiles")
    assert main(["generate", "--workdir", str(tmp_path), "--paradigm", "gpt35", "--limit", "3"]) == 0
    caps = read_captions(tmp_path / "captions.parquet")
    assert len(caps) == 3 and (caps["status"] == "ok").all()
    assert main(["generate", "--workdir", str(tmp_path / "missing")]) == 1
    assert "stats.parquet" in capsys.readouterr().err


def test_timeout_is_retried(server, tmp_path):
    table, _ = _table(1, seed=13)
    server.configure(faults=[{"status": "hang", "seconds": 1.0}])
    res = generate(P.build_requests(table, "gpt35"), _cfg(server, timeout=0.3, concurrency=1),
                   cache_path=tmp_path / "c.sqlite")
    assert res.counts == {"ok": 1} and res.captions["attempts"].iloc[0] == 2


# --- summaries and figures of a captions table (notebook 03) ----------------------------------


def _template_result(n: int = 4):
    table, maps = _table(n, seed=21)
    reqs = P.build_requests(table, "gpt35")
    return generate(reqs, GenerateConfig(progress=False)), maps


def test_caption_summary_status_table_and_result_summary():
    from cen.generate import caption_summary, status_table

    res, _ = _template_result(4)
    caps = res.captions
    s = caption_summary(caps)
    assert s["n_tiles"] == 4 and s["n_captions"] == 4 and s["n_ok"] == 4 and s["n_failed"] == 0
    assert s["paradigms"] == ["gpt35"]
    assert s["mean_words"] == pytest.approx(caps["text"].str.split().str.len().mean())
    failed = caps.assign(status=["ok", "failed", "cached", "budget_stopped"], text=[caps["text"][0], None,
                                                                                   caps["text"][2], None])
    s2 = caption_summary(failed)
    assert s2["n_ok"] == 2 and s2["n_failed"] == 1 and s2["n_missing"] == 2
    assert s2["mean_words"] == pytest.approx(caps["text"][[0, 2]].str.split().str.len().mean())
    assert caption_summary(caps.assign(status="failed"))["mean_words"] == 0.0
    st = status_table(failed)
    assert list(st.columns) == ["paradigm", "status", "captions"] and st["captions"].sum() == 4
    assert res.status_table().to_dict("records") == [{"paradigm": "gpt35", "status": "ok", "captions": 4}]
    assert res.summary().startswith("4 captions: 4 answered (4 new, 0 cached, 0 recovered), 0 without an answer")
    assert "; 4 requests (4 ok); spent 0.0000 USD" in res.summary()


def test_plot_captions_returns_figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    from cen.generate import plot_captions
    from cen.landcover import indices_to_colour

    res, maps = _template_result(3)
    caps = pd.concat([res.captions, res.captions.assign(paradigm="gpt4v", text="Another caption.")])
    ids = caps["tile_id"].unique()
    labels = {ids[0]: maps[0], ids[2]: maps[2]}
    fig = plot_captions(caps, labels)
    assert isinstance(fig, Figure) and len(fig.axes) == 4  # two tiles x (label map, text)
    assert [fig.axes[0].get_title(), fig.axes[2].get_title()] == [ids[0], ids[2]]
    assert np.array_equal(fig.axes[0].images[0].get_array(), indices_to_colour(maps[0]))
    assert len(fig.legends) == 1 and len(fig.legends[0].get_texts()) == 11  # the classes' colours
    text = fig.axes[1].texts[0].get_text()
    assert text.startswith("[gpt35] " + res.captions["text"].iloc[0][:20]) and "\n\n[gpt4v] Another caption." in text
    plt.close(fig)
    pic = np.full((32, 32, 3), 200, np.uint8)
    fig = plot_captions(caps, labels, pictures={ids[0]: pic, ids[2]: None})
    assert len(fig.axes) == 6 and fig.axes[1].get_title() == "Sentinel-2 (true colour)"
    assert not fig.axes[4].images  # the second tile has no picture
    plt.close(fig)
    assert plot_captions(caps, {}) is None
