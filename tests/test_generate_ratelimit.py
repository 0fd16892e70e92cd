"""Pacing under the provider's rate limits: OpenAI's x-ratelimit headers, read from a local token-bucket server."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from cen import prompting as P
from cen.generate.ratelimit import AdaptiveLimiter, RateLimiter, parse_duration, read_limits
from cen.generate.runner import GenerateConfig, generate
from cen.stats import stats_table
from openai_server import OpenAIServer, format_duration, prompt_tokens_of


@pytest.fixture(autouse=True)
def _key(monkeypatch):
    monkeypatch.setenv("CEN_TEST_KEY", "sk-local-test")


def _requests(n: int, seed: int = 0) -> list[P.PromptRequest]:
    rng = np.random.default_rng(seed)
    maps = rng.integers(0, 12, (n, 32, 32)).astype(np.uint8)
    return P.build_requests(stats_table(maps, [f"r{seed}_{i:04d}" for i in range(n)]), "gpt35")


def test_durations_and_headers():
    assert parse_duration("6m0s") == 360.0 and parse_duration("1s") == 1.0 and parse_duration("20ms") == 0.02
    assert parse_duration("1h2m3.5s") == pytest.approx(3723.5) and parse_duration("8.64s") == pytest.approx(8.64)
    assert parse_duration("0.5") == 0.5 and parse_duration("") is None and parse_duration("soon") is None
    assert parse_duration("5m_") is None and parse_duration(None) is None
    for seconds in (0.0123, 0.5, 1.0, 8.64, 59.9, 360.0):
        assert parse_duration(format_duration(seconds)) == pytest.approx(seconds, abs=1e-3)
    lim = read_limits({"x-ratelimit-limit-requests": "600", "x-ratelimit-limit-tokens": "150000",
                       "x-ratelimit-remaining-requests": "599", "X-RateLimit-Remaining-Tokens": "149200",
                       "x-ratelimit-reset-requests": "100ms", "x-ratelimit-reset-tokens": "320ms"})
    assert (lim.limit_requests, lim.limit_tokens, lim.remaining_requests, lim.remaining_tokens) == (600, 150000, 599,
                                                                                                    149200)
    assert (lim.reset_requests, lim.reset_tokens) == (0.1, 0.32)
    assert read_limits({"content-type": "application/json"}) is None and read_limits(None) is None


def test_server_counts_prompt_plus_max_tokens(tmp_path):
    reqs = _requests(1)
    with OpenAIServer(tpm=10_000, rpm=100) as server:
        res = generate(reqs, GenerateConfig(backend="openai", base_url=server.base_url, model="gpt-3.5-turbo-1106",
                                            api_key_env="CEN_TEST_KEY", progress=False), cache_path=tmp_path / "c.sqlite")
        entry = server.log[-1]
    want = prompt_tokens_of(reqs[0].messages) + reqs[0].max_tokens
    assert res.counts == {"ok": 1} and entry["rl_tokens"] == want
    assert entry["usage"]["prompt_tokens"] == prompt_tokens_of(reqs[0].messages)


def test_limiter_learns_the_limits_and_the_token_count_from_the_answers():
    async def run() -> AdaptiveLimiter:
        lim = AdaptiveLimiter(concurrency=8)
        t = await lim.acquire(800)
        assert lim._window() == 1  # one request in flight until the first answer says whether there are limits
        await lim.release(t, {"x-ratelimit-limit-tokens": "6000", "x-ratelimit-remaining-tokens": "5000",
                              "x-ratelimit-reset-tokens": "1s"}, prompt_ratio=1.25)
        return lim

    lim = asyncio.run(run())
    assert lim._window() == 8 and lim.tok.capacity == 6000
    assert lim.tok.rate == pytest.approx(1000 * lim.safety)  # (limit - remaining) / reset, a little under
    assert lim.tok.level == pytest.approx(5000, abs=50) and lim.prompt_tokens(400) == 500
    # the server holding less than the mirror thought moves the mirror down
    async def drift() -> float:
        t = await lim.acquire(500)
        believed = t.belief_tokens
        await lim.release(t, {"x-ratelimit-limit-tokens": "6000", "x-ratelimit-remaining-tokens": str(int(believed - 2000)),
                              "x-ratelimit-reset-tokens": "3s"})
        return believed

    believed = asyncio.run(drift())
    assert lim.tok.level == pytest.approx(believed - 2000, abs=500)  # (less what refilled in between)
    # a 429 gives back what it reserved, pauses admissions and shrinks the number in flight
    async def reject() -> None:
        t = await lim.acquire(500)
        await lim.release(t, {"x-ratelimit-limit-tokens": "6000", "x-ratelimit-remaining-tokens": "0",
                              "x-ratelimit-reset-tokens": "6s"}, rejected=True, retry_after=0.01)

    asyncio.run(reject())
    assert lim.rejected == 1 and lim._window() == 5


@pytest.mark.parametrize("adaptive", [True, False])
def test_run_without_rpm_tpm_settles_under_the_server_limit(tmp_path, adaptive):
    """40 requests against a bucket of ~6 requests refilled in one second: the limiter that reads the
    headers is (almost) never answered 429; the one that only knows --rpm/--tpm bounces off it."""
    reqs = _requests(40, seed=1)
    per_request = prompt_tokens_of(reqs[0].messages) + reqs[0].max_tokens
    with OpenAIServer(latency=0.02, tpm=6 * per_request, window=1.0) as server:
        res = generate(reqs, GenerateConfig(backend="openai", base_url=server.base_url, model="gpt-3.5-turbo-1106",
                                            api_key_env="CEN_TEST_KEY", concurrency=16, progress=False,
                                            adapt_rate=adaptive, max_retries=20, backoff_base=0.05),
                       cache_path=tmp_path / "c.sqlite")
        posts = [e for e in server.log if e["path"] == "/v1/chat/completions"]
    n_429 = sum(e["status"] == 429 for e in posts)
    assert res.counts == {"ok": 40}
    assert res.requests["answered_429"] == n_429
    if adaptive:
        assert n_429 <= 2
    else:
        assert n_429 >= 10


def test_fixed_limiter_counts_what_it_is_given():
    async def run() -> tuple[float, float]:
        lim = RateLimiter(rpm=60, tpm=600)
        await lim.acquire(60, 40)
        return lim.rpm.current(), lim.tpm.current()

    req, tok = asyncio.run(run())
    assert req == pytest.approx(59, abs=0.1) and tok == pytest.approx(500, abs=1)


def test_requests_per_minute_limit_is_followed_too(tmp_path):
    """The requests bucket (5 per 1-s window here) is mirrored like the tokens bucket."""
    reqs = _requests(20, seed=2)
    with OpenAIServer(latency=0.02, rpm=5, window=1.0) as server:
        res = generate(reqs, GenerateConfig(backend="openai", base_url=server.base_url, model="gpt-3.5-turbo-1106",
                                            api_key_env="CEN_TEST_KEY", concurrency=16, progress=False,
                                            max_retries=20, backoff_base=0.05), cache_path=tmp_path / "c.sqlite")
        n_429 = sum(e["status"] == 429 for e in server.log if e["path"] == "/v1/chat/completions")
    assert res.counts == {"ok": 20} and n_429 <= 2
